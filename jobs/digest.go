package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// SendDigestsArgs sends the daily digests that are due as of At, the cron
// run time that enqueued it (see NewCronJob).
type SendDigestsArgs struct {
	At time.Time `json:"at"`
}

// Kind is the job kind; it never changes once shipped.
func (SendDigestsArgs) Kind() string { return "send_digests" }

// InsertOpts puts the digests on the maintenance queue, unique by run time:
// a new leader does not enqueue a run time twice (a second run would find
// nothing new anyway).
func (SendDigestsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SendDigestsWorker runs SendDigests.
type SendDigestsWorker struct {
	river.WorkerDefaults[SendDigestsArgs]
	cfg  Config
	deps Deps
}

// Work sends the digests as of the job's run time. It is safe to run twice:
// an activity goes into one digest only.
func (w *SendDigestsWorker) Work(ctx context.Context, job *river.Job[SendDigestsArgs]) error {
	at := job.Args.At
	if at.IsZero() { // inserted by hand
		at = time.Now()
	}
	res, err := SendDigests(ctx, w.deps.Pool, river.ClientFromContext[pgx.Tx](ctx), w.cfg, at)
	if err != nil {
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "digests enqueued", "digests", res.Digests, "activities", res.Activities)
	return nil
}

// NewSendDigestsPeriodicJob returns the cron job of the daily digests on
// schedule (DIGEST_CRON). Register it on every process: River's leader
// enqueues it, once per cluster.
func NewSendDigestsPeriodicJob(schedule river.PeriodicSchedule) *river.PeriodicJob {
	return NewCronJob("send_digests", schedule, func(slot time.Time) river.JobArgs {
		return SendDigestsArgs{At: slot}
	})
}

// DigestResult counts what SendDigests did.
type DigestResult struct {
	Digests    int // e-mails enqueued, one per instructeur with news
	Activities int // activities they list
}

// SendDigests enqueues one digest e-mail for each instructeur in daily mode
// with activity on a followed dossier since their last digest, as of now.
// Each instructeur is one short transaction: their follow rows are locked,
// the activities after each follow's cursor (and not after now, not their
// own) go into one delivery, and the cursors advance past them, so that no
// activity is told twice, whatever crashes or reruns.
func SendDigests(ctx context.Context, pool *pgxpool.Pool, client Inserter, cfg Config, now time.Time) (DigestResult, error) {
	var res DigestResult
	var after int64
	for {
		// Keyset pagination over the daily instructeurs, in batches.
		rows, err := pool.Query(ctx, `
			SELECT id FROM instructeurs WHERE notifications = 'daily' AND id > $1 ORDER BY id LIMIT 500`, after)
		if err != nil {
			return res, fmt.Errorf("daily instructeurs: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return res, fmt.Errorf("daily instructeurs: %w", err)
		}
		if len(ids) == 0 {
			return res, nil
		}
		for _, id := range ids {
			n, err := digestOne(ctx, pool, client, cfg, id, now)
			if err != nil {
				return res, fmt.Errorf("digest of instructeur %d: %w", id, err)
			}
			if n > 0 {
				res.Digests++
				res.Activities += n
			}
		}
		after = ids[len(ids)-1]
	}
}

// digestOne builds the digest of one instructeur and returns how many
// activities it lists.
func digestOne(ctx context.Context, pool *pgxpool.Pool, client Inserter, cfg Config, instID int64, now time.Time) (int, error) {
	var listed int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var email, mode string
		if err := tx.QueryRow(ctx, `SELECT email, notifications FROM instructeurs WHERE id = $1 FOR UPDATE`, instID).Scan(&email, &mode); err != nil {
			return err
		}
		if mode != workflow.NotifyDaily {
			return nil // switched meanwhile
		}
		rows, err := tx.Query(ctx, `
			SELECT dossier_id, notified_through FROM follows
			WHERE instructeur_id = $1 ORDER BY dossier_id FOR UPDATE`, instID)
		if err != nil {
			return err
		}
		type follow struct{ dossier, cursor int64 }
		follows, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (follow, error) {
			var f follow
			return f, r.Scan(&f.dossier, &f.cursor)
		})
		if err != nil {
			return err
		}
		var all []int64
		for _, f := range follows {
			ids, last, err := newActivities(ctx, tx, f.dossier, instID, f.cursor, &now)
			if err != nil {
				return err
			}
			all = append(all, ids...)
			if last > f.cursor {
				if _, err := tx.Exec(ctx, `UPDATE follows SET notified_through = $3 WHERE dossier_id = $1 AND instructeur_id = $2`,
					f.dossier, instID, last); err != nil {
					return err
				}
			}
		}
		if len(all) == 0 {
			return nil
		}
		listed = len(all)
		return enqueueDeliveryWith(ctx, client, tx, 0, workflow.MailDigest, email,
			deliveryParams{InstructeurID: instID, ActivityIDs: all}, cfg)
	})
	return listed, err
}
