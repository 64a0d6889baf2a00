package main

import (
	"bytes"
	"context"
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
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	_, err = pool.Exec(t.Context(), `
		WITH p AS (
			INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			VALUES ('APT', 'Préfecture du Rhône', 'Lyon', 30, 20) RETURNING id
		)
		INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, last_activity_at)
		SELECT p.id, s, 'usager' || n || '@etudiant.test', '{"nom": "Dupré", "prenom": "Élodie"}', $1::timestamptz - a
		FROM p, (VALUES (1, 'en_construction', interval '13 months'), (2, 'en_construction', interval '11 months 15 days'),
			(3, 'en_instruction', interval '5 years')) v(n, s, a)`, now)
	if err != nil {
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
	getenv := getenvOf(map[string]string{
		"DATABASE_URL": url,
		"PURGE_CRON":   "@every 1s",
		"MAIL_DIR":     mailDir,
		"LOG_FORMAT":   "text",
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"work"}, getenv, &stdout, &stderr) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var runs, tombstones int
		if err := pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM river_job WHERE kind = 'purge' AND state = 'completed'),
				(SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL)`).Scan(&runs, &tombstones); err != nil {
			t.Fatal(err)
		}
		// The stale scan, on its own cron, writes its reminders beside.
		var notices []string
		emls, _ := filepath.Glob(filepath.Join(mailDir, "*.eml"))
		for _, name := range emls {
			if eml, err := os.ReadFile(name); err == nil && strings.Contains(string(eml), "X-Aptflow-Kind: expiration_usager") {
				notices = append(notices, string(eml))
			}
		}
		if runs >= 2 && tombstones == 1 && len(notices) == 1 {
			if !strings.Contains(notices[0], "usager2@etudiant.test") {
				t.Errorf("the notice is not to the applicant of the dossier to announce:\n%s", notices[0])
			}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("after 30s: %d purges, %d tombstones, %d notices written\n%s", runs, tombstones, len(notices), stderr.String())
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
