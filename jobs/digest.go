package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	res, err := SendDigests(ctx, w.deps.Service, river.ClientFromContext[pgx.Tx](ctx), w.cfg, at)
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
	return NewCronJob(SendDigestsArgs{}.Kind(), schedule, func(slot time.Time) river.JobArgs {
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
// Each instructeur is one short transaction (workflow.Service.DigestTx):
// their follow rows are locked, the activities after each follow's cursor
// (and not after now, not their own) go into one delivery, whose job is
// enqueued with client, and the cursors advance past them, so that no
// activity is told twice, whatever crashes or reruns.
func SendDigests(ctx context.Context, svc *workflow.Service, client Inserter, cfg Config, now time.Time) (DigestResult, error) {
	var res DigestResult
	var after int64
	for {
		// Keyset pagination over the daily instructeurs, in batches.
		ids, err := svc.DailyInstructeurs(ctx, after, 500)
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			return res, nil
		}
		for _, id := range ids {
			var listed int
			err := pgx.BeginFunc(ctx, svc.Pool(), func(tx pgx.Tx) error {
				delivery, n, err := svc.DigestTx(ctx, tx, id, now)
				if err != nil || delivery == 0 {
					return err
				}
				listed = n
				return insertEmailJob(ctx, client, tx, delivery, workflow.MailDigest, cfg)
			})
			if err != nil {
				return res, fmt.Errorf("digest of instructeur %d: %w", id, err)
			}
			if listed > 0 {
				res.Digests++
				res.Activities += listed
			}
		}
		after = ids[len(ids)-1]
	}
}
