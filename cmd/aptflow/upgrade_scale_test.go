package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/jobs"
)

// queueOldBulkEmail adds to the last release's database what it left while
// a stale scan's reminders were still queued: a pending stale_usager
// delivery and its send_email job, available, on the queue email, which was
// then the only one. It returns the job's id.
func queueOldBulkEmail(t *testing.T, db *pgxpool.Pool) int64 {
	t.Helper()
	var job int64
	if err := db.QueryRow(context.Background(), `
		WITH d AS (
			INSERT INTO email_deliveries (dossier_id, kind, recipient, params)
			SELECT id, 'stale_usager', usager_email, '{"stale_days": 30}' FROM dossiers WHERE state = 'en_construction'
			ORDER BY id LIMIT 1
			RETURNING id
		)
		INSERT INTO river_job (state, attempt, max_attempts, args, kind, queue, priority, scheduled_at)
		SELECT 'available', 0, 20, jsonb_build_object('delivery_id', d.id), 'send_email', 'email', 1, now() FROM d
		RETURNING id`).Scan(&job); err != nil {
		t.Fatal(err)
	}
	return job
}

// checkScaleUpgrade checks what migration 00009 made of the old release's
// data: each dossier counts its follows, each follow says whether its
// dossier is still open (those of decided dossiers are closed), the queued
// bulk e-mail moved to its queue, and the other e-mail jobs stayed on
// theirs.
func checkScaleUpgrade(t *testing.T, db *pgxpool.Pool, bulkJob int64) {
	t.Helper()
	ctx := context.Background()
	wrong, err := dbtest.FollowDrift(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrong {
		t.Error(w)
	}
	var followed, closed int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE followers > 0), (SELECT count(*) FROM follows WHERE NOT dossier_ouvert) FROM dossiers`).Scan(&followed, &closed); err != nil {
		t.Fatal(err)
	}
	if followed != 4 || closed != 3 {
		t.Errorf("fixture: %d dossiers followed, %d follows closed; want 4 and 3", followed, closed)
	}
	rows, _ := db.Query(ctx, `SELECT id, queue FROM river_job WHERE kind = 'send_email' AND state <> 'completed' ORDER BY id`)
	queues, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		ID    int64
		Queue string
	}])
	if err != nil {
		t.Fatal(err)
	}
	if len(queues) != 4 {
		t.Fatalf("pending e-mail jobs %v, want the fixture's 3 and the bulk one", queues)
	}
	for _, q := range queues {
		want := jobs.QueueEmail
		if q.ID == bulkJob {
			want = jobs.QueueEmailBulk
		}
		if q.Queue != want {
			t.Errorf("e-mail job %d on queue %s, want %s", q.ID, q.Queue, want)
		}
	}
}
