package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// seedExpiring fills a fresh database with one procedure (kept 12 months)
// and three dossiers: one en construction inactive since 13 months before
// now (expired), one since 11 months and a half (to be announced), one en
// instruction for five years (never purged).
func seedExpiring(t *testing.T, url string, now time.Time) *pgxpool.Pool {
	t.Helper()
	pool := openDB(t, url)
	if _, err := pool.Exec(t.Context(), `
		WITH p AS (
			INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			VALUES ('APT', 'Préfecture du Rhône', 'Lyon', 30, 20) RETURNING id
		)
		INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, last_activity_at)
		SELECT p.id, s, 'usager' || n || '@etudiant.test', '{"nom": "Dupré", "prenom": "Élodie"}', $1::timestamptz - a
		FROM p, (VALUES (1, 'en_construction', interval '13 months'), (2, 'en_construction', interval '11 months 15 days'),
			(3, 'en_instruction', interval '5 years')) v(n, s, a)`, now); err != nil {
		t.Fatal(err)
	}
	return pool
}

// TestPurgeCommand: `aptflow purge --now` queues the notices for the
// workers and says so, and purges no dossier unannounced: the expired one
// is told, like the one to announce, and purged RETENTION_NOTICE after the
// notice, not a microsecond before; run again as of the same time, it does
// nothing.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	pool := seedExpiring(t, url, now)
	getenv := getenvOf(map[string]string{"DATABASE_URL": url, "LOG_FORMAT": "text"})
	purge := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), append([]string{"purge"}, args...), getenv, &stdout, &stderr); err != nil {
			t.Fatalf("purge %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	const want = "purged 0 dossiers (tombstones kept); 2 expiry notices queued (expiring by 2026-12-30T03:00:00Z); 0 idempotency keys forgotten (as of 2026-11-30T03:00:00Z)\n"
	if out := purge("--now", "2026-11-30T04:00:00+01:00"); out != want {
		t.Errorf("purge:\n%q, want\n%q", out, want)
	}
	if out := purge("--now", "2026-11-30T04:00:00+01:00"); !strings.HasPrefix(out, "purged 0 dossiers (tombstones kept); 0 expiry notices queued") {
		t.Errorf("same purge again: %q", out)
	}
	var tombstones, queued int
	var told time.Time
	if err := pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL),
			(SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state = 'available'),
			(SELECT expires_at FROM dossiers WHERE id = 1)`).Scan(&tombstones, &queued, &told); err != nil {
		t.Fatal(err)
	}
	if tombstones != 0 || queued != 2 {
		t.Errorf("%d tombstones and %d queued send_email jobs, want 0 and 2", tombstones, queued)
	}
	// The command's notice counts from the run's time, or from the clock
	// if that is later (this test runs after 2026-11-30T03:00Z).
	if min := now.Add(720 * time.Hour); told.Before(min) {
		t.Fatalf("the expired dossier expires at %v once told, want RETENTION_NOTICE after the run, %v or later", told, min)
	}
	if out := purge("--now", told.Add(-time.Microsecond).Format(time.RFC3339Nano)); !strings.HasPrefix(out, "purged 0 dossiers (tombstones kept); 0 expiry notices") {
		t.Errorf("purge a microsecond before RETENTION_NOTICE after the notice: %q", out)
	}
	// Both were told by the same run: the one to announce, whose own
	// expiry came before RETENTION_NOTICE after that run, goes with it.
	if out := purge("--now", told.Format(time.RFC3339Nano)); !strings.HasPrefix(out, "purged 2 dossiers (tombstones kept); 0 expiry notices") {
		t.Errorf("purge RETENTION_NOTICE after the notice: %q", out)
	}
	// Years later, the dossier en instruction is still not purged;
	// without --now, the purge runs as of now.
	if out := purge("--now", "2031-11-30T04:00:00+01:00"); !strings.HasPrefix(out, "purged 0 dossiers (tombstones kept); 0 expiry notices") {
		t.Errorf("purge in 2031: %q", out)
	}
	if out := purge(); !strings.HasPrefix(out, "purged 0 dossiers") {
		t.Errorf("purge now: %q", out)
	}

	t.Run("BadNow", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"purge", "--now", "cette nuit"}, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestPurgeCron: `aptflow work` registers the purge on PURGE_CRON; its
// leader runs it (every second here): the expired dossier's applicant is
// told by the workers, and the dossier becomes a tombstone only
// RETENTION_NOTICE (15s here) after the notice.
func TestPurgeCron(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := seedExpiring(t, url, time.Now())
	mailDir := t.TempDir()
	startRun(t, procEnv{"DATABASE_URL": url, "PURGE_CRON": "@every 1s", "RETENTION_NOTICE": "15s", "MAIL_DIR": mailDir, "LOG_FORMAT": "text"}, "", "work")
	waitSQL(t, pool, time.Minute, `SELECT (SELECT count(*) FROM river_job WHERE kind = 'purge' AND state = 'completed') >= 2
		AND (SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL) = 1`)
	var early int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers
		WHERE deleted_at IS NOT NULL AND (expiry_notice_at IS NULL OR deleted_at < expiry_notice_at + interval '15 seconds')`).Scan(&early); err != nil || early != 0 {
		t.Errorf("%d dossiers purged less than RETENTION_NOTICE after their notice (%v)", early, err)
	}
	var notices []string
	emls, _ := filepath.Glob(filepath.Join(mailDir, "*.eml"))
	for _, name := range emls {
		if eml, err := os.ReadFile(name); err == nil && strings.Contains(string(eml), "X-Aptflow-Kind: expiration_usager") {
			notices = append(notices, string(eml))
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "usager1@etudiant.test") {
		t.Errorf("%d notices written, want one to the applicant of the expired dossier, before its purge:\n%s", len(notices), notices)
	}
}
