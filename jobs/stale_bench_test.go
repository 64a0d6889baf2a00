package jobs_test

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// BenchmarkScanStale times one stale scan over 1,000,000 dossiers of which
// 100,000 are stale (APTFLOW_BENCH_DOSSIERS changes the total; a tenth is
// always stale), and reports the Go heap's peak during the scan:
//
//	go test -run '^$' -bench ScanStale -benchtime 1x ./jobs/
//
// The data: 10 procedures (stale after 30 days) with 5 instructeurs each;
// a tenth of the dossiers en construction and inactive for 31 to 400 days,
// the others en construction but recently active, or en instruction or
// decided with an old last activity (which the scan must not flag); 3% of
// the dossiers followed by one instructeur. Each iteration after the first
// starts again from unflagged dossiers and empty queues (untimed).
func BenchmarkScanStale(b *testing.B) {
	total := benchDossiers(b, 10)
	ctx := context.Background()
	pool := dbtest.New(b)
	now := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	start := time.Now()
	loadDossiers(b, pool, total, now)
	b.Logf("loaded %d dossiers (%d stale) in %s", total, total/10, time.Since(start).Round(time.Millisecond))

	cfg := jobs.Config{}
	client, err := jobs.NewClient(pool, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc := workflow.NewService(pool, jobs.NewEnqueuer(client, cfg), workflow.Options{})
	var elapsed time.Duration
	var peak uint64
	var wal int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 {
			b.StopTimer()
			resetStale(b, pool)
			b.StartTimer()
		}
		runtime.GC()
		lsn0 := walLSN(b, pool)
		stop := sampleHeap(&peak)
		t := time.Now()
		res, err := jobs.ScanStale(ctx, svc, client, cfg, now.Add(time.Duration(i)*time.Hour))
		elapsed += time.Since(t)
		stop()
		wal += walLSN(b, pool) - lsn0
		if err != nil {
			b.Fatal(err)
		}
		if res.Flagged != total/10 || res.Reminders != total/10 || res.InstructeurEmails != 50 {
			b.Fatalf("scan: %+v, want %d flagged and 50 instructeur e-mails", res, total/10)
		}
	}
	b.StopTimer()
	sec := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/scan")
	b.ReportMetric(float64(total)/sec, "dossiers/s")
	b.ReportMetric(float64(total/10)/sec, "flagged/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	// The server-wide WAL written during the scans (other sessions of the
	// server count too): the scan's cost is mostly there.
	b.ReportMetric(float64(wal)/float64(b.N)/(1<<20), "WAL-MB/scan")
}

// benchDossiers is the number of dossiers a benchmark loads: 1,000,000, or
// APTFLOW_BENCH_DOSSIERS, which must be at least least.
func benchDossiers(b *testing.B, least int) int {
	b.Helper()
	v := os.Getenv("APTFLOW_BENCH_DOSSIERS")
	if v == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		b.Fatalf("APTFLOW_BENCH_DOSSIERS=%q: a number ≥ %d expected", v, least)
	}
	return n
}

// walLSN is the server's current WAL insert position, in bytes.
func walLSN(b *testing.B, pool *pgxpool.Pool) int64 {
	b.Helper()
	var lsn int64
	if err := pool.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	return lsn
}

// loadDossiers writes the benchmark's data with a few INSERT ... SELECT.
func loadDossiers(b *testing.B, pool *pgxpool.Pool, total int, now time.Time) {
	b.Helper()
	dem, err := json.Marshal(apptest.Demandeur())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sql: `INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			SELECT 'APT ' || n, 'Préfecture ' || n, 'Adresse ' || n, 30, 20 FROM generate_series(1, 10) n`},
		{sql: `INSERT INTO instructeurs (email, nom)
			SELECT 'instructeur' || n || '@prefecture.test', 'Instructeur ' || n FROM generate_series(1, 50) n`},
		{sql: `INSERT INTO procedure_instructeurs (procedure_id, instructeur_id)
			SELECT p.id, i.id FROM procedures p JOIN instructeurs i ON (i.id - 1) % 10 = p.id - 1`},
		// n % 10 = 0: stale. 1-5: en construction, active in the last 29
		// days. 6-7: en instruction, 8-9: decided, both inactive for long.
		{sql: `INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, last_activity_at, created_at, updated_at)
			SELECT (n / 10) % 10 + 1,
				CASE WHEN n % 10 < 6 THEN 'en_construction' WHEN n % 10 < 8 THEN 'en_instruction' ELSE 'accepte' END,
				'usager' || n || '@etudiant.test', $1::jsonb, la, la, la
			FROM generate_series(1, $2::int) n,
				LATERAL (SELECT $3::timestamptz - CASE
					WHEN n % 10 BETWEEN 1 AND 5 THEN (n % 29) * interval '1 day' + interval '1 hour'
					ELSE (31 + n % 370) * interval '1 day' END AS la) l`, args: []any{dem, total, now}},
		{sql: `INSERT INTO follows (dossier_id, instructeur_id)
			SELECT d.id, pi.instructeur_id FROM dossiers d
			JOIN procedure_instructeurs pi ON pi.procedure_id = d.procedure_id
				AND pi.instructeur_id = (SELECT min(instructeur_id) FROM procedure_instructeurs WHERE procedure_id = d.procedure_id) + ((d.id / 7) % 5) * 10
			WHERE d.id % 97 < 3`},
		{sql: `VACUUM ANALYZE`},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			b.Fatalf("load: %v\n%s", err, q.sql)
		}
	}
}

// resetStale undoes a scan: no dossier flagged, no e-mail, no job.
func resetStale(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	for _, q := range []string{
		`UPDATE dossiers SET stale_since = NULL WHERE stale_since IS NOT NULL`,
		`TRUNCATE email_deliveries, dossier_history, stale_scans, river_job`,
		`VACUUM ANALYZE`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// sampleHeap records the peak of the Go heap's live and not yet swept
// objects every 5ms until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
