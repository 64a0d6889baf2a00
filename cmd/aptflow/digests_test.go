package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// TestSendDigestsCommand: `aptflow send-digests --now` queues one digest
// per daily instructeur with news as of that time, and says so; run again,
// it finds nothing new.
func TestSendDigestsCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// One procedure, a daily instructeur following a dossier with two
	// activities (one before --now, one after), an instant one too.
	_, err = pool.Exec(context.Background(), `
		WITH p AS (INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
		           VALUES ('APT', 'Préfecture', 'Lyon', 30, 20) RETURNING id),
		     i AS (INSERT INTO instructeurs (email, nom, notifications)
		           VALUES ('daily@prefecture.test', 'Camille', 'daily'), ('instant@prefecture.test', 'Sacha', 'instant') RETURNING id),
		     pi AS (INSERT INTO procedure_instructeurs (procedure_id, instructeur_id) SELECT p.id, i.id FROM p, i),
		     d AS (INSERT INTO dossiers (procedure_id, usager_email, demandeur)
		           SELECT id, 'u@etudiant.test', '{"nom": "Dupré", "prenom": "Élodie"}' FROM p RETURNING id),
		     f AS (INSERT INTO follows (dossier_id, instructeur_id) SELECT d.id, i.id FROM d, i)
		INSERT INTO activities (dossier_id, kind, author, body, at)
		SELECT d.id, 'message_usager', 'usager', 'avant', '2026-11-26 07:00+01'::timestamptz FROM d
		UNION ALL SELECT d.id, 'message_usager', 'usager', 'après', '2026-11-26 10:00+01'::timestamptz FROM d`)
	if err != nil {
		t.Fatal(err)
	}
	getenv := getenvOf(map[string]string{"DATABASE_URL": url, "LOG_FORMAT": "text"})
	send := func(now string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"send-digests", "--now", now}, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("send-digests --now %s: %v\n%s", now, err, stderr.String())
		}
		return stdout.String()
	}
	if out := send("2026-11-26T09:00:00+01:00"); !strings.HasPrefix(out, "enqueued 1 digest listing 1 activity (sent") {
		t.Errorf("first run: %q", out)
	}
	if out := send("2026-11-26T09:00:00+01:00"); !strings.HasPrefix(out, "enqueued 0 digests listing 0 activities (sent") {
		t.Errorf("same time again: %q", out)
	}
	if out := send(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).Format(time.RFC3339)); !strings.HasPrefix(out, "enqueued 1 digest listing 1 activity (sent") {
		t.Errorf("next day: %q", out)
	}
	var digests, jobs int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM email_deliveries WHERE kind = 'digest' AND recipient = 'daily@prefecture.test'),
		       (SELECT count(*) FROM river_job WHERE kind = 'send_email')`).Scan(&digests, &jobs); err != nil {
		t.Fatal(err)
	}
	if digests != 2 || jobs != 2 {
		t.Fatalf("%d digests and %d send_email jobs, want 2 and 2", digests, jobs)
	}
}
