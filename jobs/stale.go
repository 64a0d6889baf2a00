package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/internal/pglock"
	"github.com/aptflow/aptflow/workflow"
)

// ScanStaleArgs runs the stale scan as of At.
type ScanStaleArgs struct {
	// At is the time the scan runs as of: the cron run time that enqueued
	// it. It lives in the args, not in River's scheduled_at (which a retry
	// moves), so that a retry resumes the same scan, and so that the job is
	// unique per run time.
	At time.Time `json:"at"`
}

// Kind is the job kind; it never changes once shipped.
func (ScanStaleArgs) Kind() string { return "scan_stale" }

// InsertOpts puts the scan on the maintenance queue, unique by its run
// time: two leaders (one elected after the other died) enqueue a run time
// once. River's default unique states include completed, so a scan that has
// run is not enqueued again while River retains it (24 hours); after that,
// the stale_scans table makes a second run of the same time a no-op.
func (ScanStaleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// NewScanStalePeriodicJob returns the cron job of the stale scan on
// schedule (STALE_SCAN_CRON). Register it on every process: River's leader
// enqueues it, once per cluster.
func NewScanStalePeriodicJob(schedule river.PeriodicSchedule) *river.PeriodicJob {
	return NewCronJob(ScanStaleArgs{}.Kind(), schedule, func(slot time.Time) river.JobArgs {
		return ScanStaleArgs{At: slot}
	})
}

// ScanStaleWorker runs the stale scan.
type ScanStaleWorker struct {
	river.WorkerDefaults[ScanStaleArgs]
	cfg  Config
	deps Deps
}

// Work runs the scan as of the job's run time, with the River client of the
// job to enqueue its e-mails. A scan that the job timeout cuts short has
// committed its batches; the retry resumes it.
func (w *ScanStaleWorker) Work(ctx context.Context, job *river.Job[ScanStaleArgs]) error {
	res, err := ScanStale(ctx, w.deps.Service, river.ClientFromContext[pgx.Tx](ctx), w.cfg, job.Args.At)
	if errors.Is(err, ErrScanRunning) {
		// Another process is scanning (a catch-up run, the CLI): try later
		// rather than wait on its lock or count a failure.
		return river.JobSnooze(time.Minute)
	}
	if err != nil {
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "stale scan done", "at", res.At, "already_done", res.AlreadyDone,
		"flagged", res.Flagged, "reminders", res.Reminders, "instructeur_emails", res.InstructeurEmails,
		"recovered_scans", res.Recovered)
	return nil
}

// ErrScanRunning is returned by ScanStale when another scan holds the lock.
var ErrScanRunning = errors.New("another stale scan is running")

// ScanResult is what one call of ScanStale did.
type ScanResult struct {
	// At is the time the scan ran as of (UTC, microseconds): the
	// stale_since of the dossiers it flagged.
	At time.Time
	// AlreadyDone says that the scan as of At had finished before: this
	// call did nothing, and the counts are those of that scan.
	AlreadyDone bool
	// Flagged is the number of dossiers flagged by this call; Reminders,
	// the applicant reminders it wrote (one per flagged dossier).
	Flagged, Reminders int
	// InstructeurEmails is the number of instructeur e-mails written (one
	// per instructeur concerned), and Listed the dossiers they list.
	InstructeurEmails, Listed int
	// Recovered is the number of earlier scans, killed before their last
	// step, whose instructeur e-mails this call wrote (counted above).
	Recovered int
}

// DefaultStaleBatch is how many dossiers one transaction of the scan
// considers: small enough that a batch commits in well under a second and
// holds its row locks no longer, large enough that round trips do not
// dominate.
const DefaultStaleBatch = 2000

// staleLockKey is the advisory lock held during a scan ("apts"),
// distinct from the migrations' and the test template's keys.
const staleLockKey int64 = 0x61707473

// ScanStale runs the stale scan as of now with svc, which flags the
// dossiers en construction whose last applicant activity is older than
// their procedure's stale_after_days and writes the e-mails that go with
// it; their send_email jobs are enqueued with client (whose workers,
// wherever they run, send them), each in the transaction of its e-mail:
//
//   - in batches of DefaultStaleBatch, each one transaction
//     (workflow.Service.FlagStaleTx): the eligible dossiers are flagged,
//     with a history row « signaler_inactif » and the applicant's reminder
//     (stale_usager);
//   - then in one transaction (workflow.Service.FinishStaleScanTx), one
//     e-mail (stale_instructeur) per instructeur listing its dossiers
//     flagged as of now and still flagged: those it follows, and those of
//     its procedures that nobody follows; the same transaction marks the
//     scan finished in stale_scans.
//
// A crash loses nothing and doubles nothing: a batch commits with its
// reminders or not at all; the instructeur e-mails are derived from the
// dossiers flagged as of now, so a rerun as of the same time (the job's
// retry) flags the rest and lists them all; a scan left unfinished is
// finished by the next one; a finished scan is never run again. One scan
// runs at a time in the cluster (ErrScanRunning otherwise).
//
// Stale alerts ignore the instructeurs' notification preference: "none"
// and "daily" silence the news of activity on followed dossiers, while a
// stale dossier is work left undone that someone must see (and it is at
// most one e-mail per instructeur per scan).
func ScanStale(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time) (ScanResult, error) {
	return scanStale(ctx, svc, client, cfg, now, scanOptions{})
}

// scanOptions tune a scan for tests and benchmarks.
type scanOptions struct {
	batch int // dossiers per transaction; 0 means DefaultStaleBatch
	// crashAfter > 0 stops the scan with errCrash after that many batches,
	// before its last step, as a killed process would.
	crashAfter int
}

// errCrash is the error of a scan stopped by scanOptions.crashAfter.
var errCrash = errors.New("stale scan stopped (test crash)")

func scanStale(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time, o scanOptions) (ScanResult, error) {
	cfg.Defaults()
	if o.batch <= 0 {
		o.batch = DefaultStaleBatch
	}
	res := ScanResult{At: canonicalTime(now)}

	unlock, err := lockScan(ctx, svc.Pool())
	if err != nil {
		return res, err
	}
	defer unlock()

	scan, err := svc.BeginStaleScan(ctx, res.At)
	if err != nil {
		return res, err
	}
	if scan.Finished {
		res.AlreadyDone = true
		res.Listed, res.InstructeurEmails = scan.Listed, scan.InstructeurEmails
		return res, nil
	}

	// Scans killed before their last step: their flagged dossiers still wait
	// for their instructeur e-mails, which no later scan would list.
	for _, t := range scan.Unfinished {
		n, listed, err := finishScan(ctx, svc, client, cfg, t)
		if err != nil {
			return res, err
		}
		res.Recovered++
		res.InstructeurEmails += n
		res.Listed += listed
	}

	for batches := 1; ; batches++ {
		var n int
		var more bool
		err := pgx.BeginFunc(ctx, svc.Pool(), func(tx pgx.Tx) error {
			reminders, m, err := svc.FlagStaleTx(ctx, tx, scan, o.batch)
			if err != nil {
				return err
			}
			n, more = len(reminders), m
			return insertEmailJobs(ctx, tx, client, cfg, workflow.MailStaleUsager, reminders)
		})
		if err != nil {
			return res, err
		}
		res.Flagged += n
		res.Reminders += n
		if batches == o.crashAfter {
			return res, errCrash
		}
		if !more {
			break
		}
	}

	n, listed, err := finishScan(ctx, svc, client, cfg, res.At)
	if err != nil {
		return res, err
	}
	res.InstructeurEmails += n
	res.Listed += listed
	return res, nil
}

// lockScan takes the cluster-wide scan lock, or returns ErrScanRunning.
func lockScan(ctx context.Context, pool *pgxpool.Pool) (unlock func(), err error) {
	return clusterLock(ctx, pool, staleLockKey, ErrScanRunning)
}

// clusterLock takes the cluster-wide lock key, or returns busy if another
// process holds it. It holds through a pooler in transaction mode, and
// goes with the connection if the process dies (internal/pglock).
func clusterLock(ctx context.Context, pool *pgxpool.Pool, key int64, busy error) (unlock func(), err error) {
	unlock, ok, err := pglock.TryLock(ctx, pool, key)
	if err != nil {
		return nil, fmt.Errorf("lock %#x: %w", key, err)
	}
	if !ok {
		return nil, busy
	}
	return unlock, nil
}

// finishScan writes, in one transaction, the instructeur e-mails of the
// scan as of at with their jobs, and marks it finished; a scan already
// finished is left alone.
func finishScan(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, at time.Time) (emails, listed int, err error) {
	err = pgx.BeginFunc(ctx, svc.Pool(), func(tx pgx.Tx) error {
		deliveries, n, err := svc.FinishStaleScanTx(ctx, tx, at)
		if err != nil {
			return err
		}
		emails, listed = len(deliveries), n
		return insertEmailJobs(ctx, tx, client, cfg, workflow.MailStaleInstructeur, deliveries)
	})
	if err != nil {
		return 0, 0, err
	}
	return emails, listed, nil
}

// insertEmailJobs inserts one send_email job per delivery in tx, with COPY:
// a batch of reminders is thousands of jobs.
func insertEmailJobs(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], cfg Config, kind string, deliveries []int64) error {
	if len(deliveries) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(deliveries))
	for i, id := range deliveries {
		params[i] = emailJob(id, kind, cfg)
	}
	if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert e-mail jobs: %w", err)
	}
	return nil
}
