package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/workflow"
)

// SendDigestsArgs sends the daily digests that are due.
type SendDigestsArgs struct{}

// Kind is the job kind; it never changes once shipped.
func (SendDigestsArgs) Kind() string { return "send_digests" }

// InsertOpts puts the digests on the maintenance queue.
func (SendDigestsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance}
}

// SendDigestsWorker runs SendDigests.
type SendDigestsWorker struct {
	river.WorkerDefaults[SendDigestsArgs]
	cfg  Config
	deps Deps
}

// Work sends the digests as of now. It is safe to run twice: an activity
// goes into one digest only.
func (w *SendDigestsWorker) Work(ctx context.Context, job *river.Job[SendDigestsArgs]) error {
	res, err := SendDigests(ctx, w.deps.Pool, river.ClientFromContext[pgx.Tx](ctx), w.cfg, time.Now())
	if err != nil {
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "digests enqueued", "digests", res.Digests, "activities", res.Activities)
	return nil
}

// PeriodicDigests is the periodic job of the daily digests on schedule.
// Every process registers it; River's leader enqueues it, once per cluster.
func PeriodicDigests(schedule cron.Schedule) *river.PeriodicJob {
	return river.NewPeriodicJob(schedule, func() (river.JobArgs, *river.InsertOpts) {
		// Unique within the schedule's period, so that a change of leader
		// right at the due time does not enqueue the run twice (a second
		// run would find nothing new anyway).
		return SendDigestsArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: schedulePeriod(schedule, time.Now())}}
	}, nil)
}

// schedulePeriod is the time between the next two runs of schedule, at most
// an hour.
func schedulePeriod(s cron.Schedule, now time.Time) time.Duration {
	next := s.Next(now)
	p := s.Next(next).Sub(next)
	return max(min(p, time.Hour), time.Second)
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
		return enqueueDeliveryWith(ctx, client, tx, 0, KindDigest, email,
			deliveryParams{InstructeurID: instID, ActivityIDs: all}, cfg)
	})
	return listed, err
}
