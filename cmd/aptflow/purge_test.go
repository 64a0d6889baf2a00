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

// TestPurgeCommand: `aptflow purge --now` purges the expired dossier,
// queues the notice for the workers and says so; run again as of the same
// time, it does nothing.
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
	const want = "purged 1 dossier (tombstones kept); 1 expiry notice queued (expiring by 2026-12-30T03:00:00Z); 0 idempotency keys forgotten (as of 2026-11-30T03:00:00Z)\n"
	if out := purge("--now", "2026-11-30T04:00:00+01:00"); out != want {
		t.Errorf("purge:\n%q, want\n%q", out, want)
	}
	if out := purge("--now", "2026-11-30T04:00:00+01:00"); !strings.HasPrefix(out, "purged 0 dossiers (tombstones kept); 0 expiry notices queued") {
		t.Errorf("same purge again: %q", out)
	}
	var tombstones, queued int
	if err := pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL),
			(SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state = 'available')`).Scan(&tombstones, &queued); err != nil {
		t.Fatal(err)
	}
	if tombstones != 1 || queued != 1 {
		t.Errorf("%d tombstones and %d queued send_email jobs, want 1 and 1", tombstones, queued)
	}
	// Years later, the announced dossier is purged too, never the one en
	// instruction; without --now, the purge runs as of now.
	if out := purge("--now", "2031-11-30T04:00:00+01:00"); !strings.HasPrefix(out, "purged 1 dossier (tombstones kept); 0 expiry notices") {
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
// leader runs it (every second here): the expired dossier becomes a
// tombstone and the workers send the other one's notice.
func TestPurgeCron(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := seedExpiring(t, url, time.Now())
	mailDir := t.TempDir()
	startRun(t, procEnv{"DATABASE_URL": url, "PURGE_CRON": "@every 1s", "MAIL_DIR": mailDir, "LOG_FORMAT": "text"}, "", "work")
	waitSQL(t, pool, 30*time.Second, `SELECT (SELECT count(*) FROM river_job WHERE kind = 'purge' AND state = 'completed') >= 2
		AND (SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL) = 1`)
	// The stale scan, on its own cron, writes its reminders beside.
	waitSQL(t, pool, 30*time.Second, `SELECT count(*) = 1 FROM email_deliveries WHERE kind = 'expiration_usager' AND status = 'sent'`)
	var notices []string
	emls, _ := filepath.Glob(filepath.Join(mailDir, "*.eml"))
	for _, name := range emls {
		if eml, err := os.ReadFile(name); err == nil && strings.Contains(string(eml), "X-Aptflow-Kind: expiration_usager") {
			notices = append(notices, string(eml))
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "usager2@etudiant.test") {
		t.Errorf("%d notices written, want one to the applicant of the dossier to announce:\n%s", len(notices), notices)
	}
}
