package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// seedStale fills a fresh database with one procedure (stale after 30
// days), two instructeurs, and three dossiers inactive since lastActivity,
// one of them followed by the first instructeur.
func seedStale(t *testing.T, url string, lastActivity time.Time) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	_, err = pool.Exec(t.Context(), `
		WITH p AS (
			INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			VALUES ('APT', 'Préfecture du Rhône', 'Lyon', 30, 20) RETURNING id
		), i AS (
			INSERT INTO instructeurs (email, nom) VALUES ('a@prefecture.test', 'A'), ('b@prefecture.test', 'B') RETURNING id, email
		), pi AS (
			INSERT INTO procedure_instructeurs (procedure_id, instructeur_id) SELECT p.id, i.id FROM p, i
		), d AS (
			INSERT INTO dossiers (procedure_id, usager_email, demandeur, last_activity_at)
			SELECT p.id, 'usager' || n || '@etudiant.test', '{"nom": "Dupré", "prenom": "Élodie"}', $1 FROM p, generate_series(1, 3) n
			RETURNING id
		)
		INSERT INTO follows (dossier_id, instructeur_id)
		SELECT (SELECT min(id) FROM d), id FROM i WHERE email = 'a@prefecture.test'`, lastActivity)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func getenvOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestScanStaleCommand: `aptflow scan-stale --now` flags, queues the
// e-mails for the workers, and says so; run again as of the same time, it
// does nothing.
func TestScanStaleCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := seedStale(t, url, time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
	getenv := getenvOf(map[string]string{"DATABASE_URL": url, "LOG_FORMAT": "text"})
	scanStale := func(now string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"scan-stale", "--now", now}, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("scan-stale --now %s: %v\n%s", now, err, stderr.String())
		}
		return stdout.String()
	}

	if out := scanStale("2026-10-31T09:00:00+01:00"); !strings.HasPrefix(out, "flagged 0 dossiers; 0 instructeur e-mails, 0 reminders") {
		t.Errorf("before the delay: %q", out)
	}
	out := scanStale("2026-11-26T06:00:00+01:00")
	// a follows the first dossier; nobody follows the other two: a and b.
	if !strings.HasPrefix(out, "flagged 3 dossiers; 2 instructeur e-mails, 3 reminders (as of 2026-11-26T05:00:00Z; queued") {
		t.Errorf("scan: %q", out)
	}
	if out := scanStale("2026-11-26T06:00:00+01:00"); !strings.Contains(out, "already done (it listed 3 dossiers in 2 instructeur e-mails)") {
		t.Errorf("same scan again: %q", out)
	}
	var deliveries, queued int
	if err := pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM email_deliveries WHERE status = 'pending'),
			(SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state = 'available')`).Scan(&deliveries, &queued); err != nil {
		t.Fatal(err)
	}
	if deliveries != 5 || queued != 5 {
		t.Errorf("%d pending deliveries and %d queued send_email jobs, want 5 and 5", deliveries, queued)
	}

	t.Run("BadNow", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"scan-stale", "--now", "demain"}, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestStaleScanCron: `aptflow work` registers the stale scan on
// STALE_SCAN_CRON; its leader runs it (every second here), and the workers
// send the e-mails it queues.
func TestStaleScanCron(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := seedStale(t, url, time.Now().Add(-40*24*time.Hour))
	mailDir := t.TempDir()
	getenv := getenvOf(map[string]string{
		"DATABASE_URL":    url,
		"STALE_SCAN_CRON": "@every 1s",
		"MAIL_DIR":        mailDir,
		"LOG_FORMAT":      "text",
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"work"}, getenv, &stdout, &stderr) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var scans, flagged int
		if err := pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM stale_scans WHERE finished_at IS NOT NULL),
				(SELECT count(*) FROM dossiers WHERE stale_since IS NOT NULL)`).Scan(&scans, &flagged); err != nil {
			t.Fatal(err)
		}
		emls, _ := filepath.Glob(filepath.Join(mailDir, "*.eml"))
		if scans >= 2 && flagged == 3 && len(emls) == 5 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("after 30s: %d scans, %d dossiers flagged, %d e-mails written\n%s", scans, flagged, len(emls), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("work: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("work did not stop")
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
	}{
		{plural(0, "digest"), "0 digests"},
		{plural(1, "digest"), "1 digest"},
		{plural(2, "instructeur e-mail"), "2 instructeur e-mails"},
		{pluralIrregular(1, "activity", "activities"), "1 activity"},
		{pluralIrregular(3, "activity", "activities"), "3 activities"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
