package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// PurgeArgs runs the purge (RGPD) as of At.
type PurgeArgs struct {
	// At is the time the purge runs as of: the cron run time that enqueued
	// it, in the args so that the job is unique per run time (see
	// ScanStaleArgs).
	At time.Time `json:"at"`
}

// Kind is the job kind; it never changes once shipped.
func (PurgeArgs) Kind() string { return "purge" }

// InsertOpts puts the purge on the maintenance queue, unique by its run
// time: two leaders enqueue a run time once.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// NewPurgePeriodicJob returns the cron job of the purge on schedule
// (PURGE_CRON). Register it on every process: River's leader enqueues it,
// once per cluster, and on start for the last run time that has passed.
func NewPurgePeriodicJob(schedule river.PeriodicSchedule) *river.PeriodicJob {
	return NewCronJob("purge", schedule, func(slot time.Time) river.JobArgs {
		return PurgeArgs{At: slot}
	})
}

// PurgeWorker runs the purge.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	cfg  Config
	deps Deps
}

// Work runs the purge as of the job's run time. A purge that would outlive
// the job's timeout stops between two batches, everything before committed,
// and snoozes: its next run resumes where it stopped, without counting an
// attempt.
func (w *PurgeWorker) Work(ctx context.Context, job *river.Job[PurgeArgs]) error {
	var o purgeOptions
	if deadline, ok := ctx.Deadline(); ok {
		o.stopBy = deadline.Add(-min(10*time.Second, time.Until(deadline)/5))
	}
	res, err := purge(ctx, w.deps.Service, river.ClientFromContext[pgx.Tx](ctx), w.cfg, job.Args.At, o)
	switch {
	case errors.Is(err, ErrPurgeRunning):
		return river.JobSnooze(time.Minute)
	case errors.Is(err, errPurgePaused):
		w.cfg.Logger.InfoContext(ctx, "purge paused before the job's timeout; it resumes", "at", res.At,
			"notices", res.Notices, "purged", res.Purged, "idempotency_keys", res.IdempotencyKeys)
		return river.JobSnooze(time.Second)
	case err != nil:
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "purge done", "at", res.At,
		"notices", res.Notices, "purged", res.Purged, "idempotency_keys", res.IdempotencyKeys)
	return nil
}

// ErrPurgeRunning is returned by Purge when another purge holds the lock.
var ErrPurgeRunning = errors.New("another purge is running")

// PurgeResult is what one call of Purge did.
type PurgeResult struct {
	// At is the time the purge ran as of (UTC, microseconds).
	At time.Time
	// Notices is the number of applicants told that their dossier will
	// be deleted; Purged, the dossiers purged (tombstones left);
	// IdempotencyKeys, the idempotency keys forgotten.
	Notices, Purged, IdempotencyKeys int
}

// DefaultPurgeBatch is how many rows one transaction of the purge takes: a
// batch of dossiers commits in a fraction of a second and holds their row
// locks no longer (a transition on one of them waits that long at most).
const DefaultPurgeBatch = 1000

// purgeLockKey is the session advisory lock held during a purge ("aptp").
const purgeLockKey int64 = 0x61707470

// Purge runs the purge (RGPD, docs/DATA.md) as of now with svc, each step
// in batches of DefaultPurgeBatch, each batch one transaction:
//
//   - the idempotency keys older than cfg.IdempotencyTTL are forgotten,
//     with the responses they stored;
//   - the applicants of the dossiers that expire within the Service's
//     RetentionNotice of now, or expired already, are told once
//     (expiration_usager), their send_email jobs enqueued in the
//     transaction of their e-mails; a dossier told less than
//     RetentionNotice ahead of its expiry has its expiry moved to
//     RetentionNotice after the notice (workflow.Service.NoticeExpiringTx);
//   - the dossiers told and whose expiry is at or before now lose their
//     personal data, and keep their tombstone
//     (workflow.Service.PurgeExpiredTx). So no dossier is purged less than
//     RetentionNotice after its applicant's notice.
//
// No job it enqueues carries more than a delivery id. Every step is
// idempotent: a purge killed half-way has committed its batches, and a
// rerun (the job's retry, the next night's run) does what is left, never
// twice. One purge runs at a time in the cluster (ErrPurgeRunning
// otherwise), so that tombstones are stamped in the order of their
// commits, which GET /v1/procedures/{id}/dossiers_supprimes?since= relies
// on.
func Purge(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time) (PurgeResult, error) {
	return purge(ctx, svc, client, cfg, now, purgeOptions{})
}

// purgeOptions tune a purge for the worker, tests and benchmarks.
type purgeOptions struct {
	batch int // rows per transaction; 0 means DefaultPurgeBatch
	// crashAfter > 0 stops the purge with errCrash after that many
	// batches (of all steps), as a killed process would.
	crashAfter int
	// stopBy, if set, stops the purge with errPurgePaused before a batch
	// that would start after it.
	stopBy time.Time
}

// errPurgePaused is the error of a purge stopped by purgeOptions.stopBy.
var errPurgePaused = errors.New("purge paused")

func purge(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time, o purgeOptions) (PurgeResult, error) {
	cfg.Defaults()
	if o.batch <= 0 {
		o.batch = DefaultPurgeBatch
	}
	run := workflow.NewPurgeRun(now)
	res := PurgeResult{At: run.At}

	unlock, err := clusterLock(ctx, svc.Pool(), purgeLockKey, ErrPurgeRunning)
	if err != nil {
		return res, err
	}
	defer unlock()

	batches := 0
	// step runs batches of one step until it says there is no more.
	step := func(batch func(tx pgx.Tx) (n int, more bool, err error), count *int) error {
		for {
			if !o.stopBy.IsZero() && time.Now().After(o.stopBy) {
				return errPurgePaused
			}
			var n int
			var more bool
			err := pgx.BeginFunc(ctx, svc.Pool(), func(tx pgx.Tx) (err error) {
				n, more, err = batch(tx)
				return err
			})
			if err != nil {
				return err
			}
			*count += n
			if batches++; batches == o.crashAfter {
				return errCrash
			}
			if !more {
				return nil
			}
		}
	}
	forgetBefore := run.At.Add(-cfg.IdempotencyTTL)
	if err := step(func(tx pgx.Tx) (int, bool, error) {
		return svc.ForgetIdempotencyKeysTx(ctx, tx, forgetBefore, o.batch)
	}, &res.IdempotencyKeys); err != nil {
		return res, err
	}
	if err := step(func(tx pgx.Tx) (int, bool, error) {
		deliveries, more, err := svc.NoticeExpiringTx(ctx, tx, run, o.batch)
		if err != nil {
			return 0, false, err
		}
		return len(deliveries), more, insertEmailJobs(ctx, tx, client, cfg, workflow.MailExpirationUsager, deliveries)
	}, &res.Notices); err != nil {
		return res, err
	}
	if err := step(func(tx pgx.Tx) (int, bool, error) {
		return svc.PurgeExpiredTx(ctx, tx, run, o.batch)
	}, &res.Purged); err != nil {
		return res, err
	}
	return res, nil
}
