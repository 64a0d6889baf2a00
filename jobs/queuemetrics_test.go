package jobs

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// TestQueueCollector: the jobs and stale gauges follow the database, one
// read serves the scrapes of a TTL, and a failed read says so in
// aptflow_stats_up without failing the scrape.
func TestQueueCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	client, err := NewClient(pool, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	c := NewQueueCollector(pool, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(2 * time.Minute); mu.Unlock() }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	gauge := func(t *testing.T, name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for i, lp := range m.GetLabel() {
					if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
						continue metric
					}
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s %v", name, labels)
		return 0
	}

	t.Run("Empty", func(t *testing.T) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if mf.GetName() == "aptflow_jobs" {
				n = len(mf.GetMetric())
			}
		}
		if n != len(Queues)*8 {
			t.Errorf("aptflow_jobs has %d series, want every queue × state", n)
		}
		if v := gauge(t, "aptflow_jobs", "queue", "email", "state", "available"); v != 0 {
			t.Errorf("available = %v", v)
		}
		if v := gauge(t, "aptflow_stats_up"); v != 1 {
			t.Errorf("up = %v", v)
		}
	})

	// An e-mail available, two due since 10s and a minute ago (River
	// inserts them as scheduled until its leader makes them available), a
	// notification due in an hour, and a stale dossier.
	if _, err := client.Insert(ctx, SendEmailArgs{DeliveryID: 1}, nil); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{time.Now().Add(-time.Minute), time.Now().Add(-10 * time.Second)} {
		if _, err := client.Insert(ctx, SendEmailArgs{DeliveryID: 1}, &river.InsertOpts{ScheduledAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Insert(ctx, NotifyFollowerArgs{DossierID: 1, InstructeurID: 1}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		WITH p AS (INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			VALUES ('APT', 'Préfecture', 'Lyon', 30, 20) RETURNING id)
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, stale_since)
		SELECT id, 'u@example.test', '{}'::jsonb, now() FROM p
		UNION ALL SELECT id, 'v@example.test', '{}'::jsonb, NULL FROM p`); err != nil {
		t.Fatal(err)
	}

	t.Run("Cached", func(t *testing.T) {
		if v := gauge(t, "aptflow_jobs", "queue", "email", "state", "available"); v != 0 {
			t.Errorf("read again within the TTL: available = %v", v)
		}
	})
	t.Run("Refreshed", func(t *testing.T) {
		advance()
		if v := gauge(t, "aptflow_jobs", "queue", "email", "state", "available"); v != 1 {
			t.Errorf("available = %v, want 1", v)
		}
		if v := gauge(t, "aptflow_jobs", "queue", "email", "state", "scheduled"); v != 2 {
			t.Errorf("scheduled = %v, want 2", v)
		}
		if v := gauge(t, "aptflow_jobs", "queue", "notification", "state", "scheduled"); v != 1 {
			t.Errorf("scheduled = %v, want 1", v)
		}
		if v := gauge(t, "aptflow_job_oldest_available_age_seconds", "queue", "email"); v < 59 || v > 120 {
			t.Errorf("oldest e-mail age = %v, want about 60", v)
		}
		if v := gauge(t, "aptflow_job_oldest_available_age_seconds", "queue", "notification"); v != 0 {
			t.Errorf("oldest notification age = %v, want 0 (none due)", v)
		}
		if v := gauge(t, "aptflow_dossiers_stale"); v != 1 {
			t.Errorf("stale = %v, want 1", v)
		}
	})
	t.Run("DatabaseDown", func(t *testing.T) {
		advance()
		c.timeout = time.Nanosecond // every read fails
		if v := gauge(t, "aptflow_stats_up"); v != 0 {
			t.Errorf("up = %v, want 0", v)
		}
		if v := gauge(t, "aptflow_jobs", "queue", "email", "state", "available"); v != 1 {
			t.Errorf("last value lost: %v", v)
		}
	})
}
