package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// EventSignalerInactif is the event of the history row the stale scan
// writes when it flags a dossier (from and to en_construction, no
// instructeur). It is not a transition: the state does not change.
const EventSignalerInactif = "signaler_inactif"

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
	return NewCronJob("scan_stale", schedule, func(slot time.Time) river.JobArgs {
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
	res, err := ScanStale(ctx, w.deps.Pool, river.ClientFromContext[pgx.Tx](ctx), w.cfg, job.Args.At)
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

// staleLockKey is the session advisory lock held during a scan ("apts"),
// distinct from the migrations' and the test template's keys.
const staleLockKey int64 = 0x61707473

// ScanStale flags the dossiers en construction whose last applicant
// activity is older than their procedure's stale_after_days as of now,
// and writes the e-mails that go with it, enqueued with client (whose
// workers, wherever they run, send them):
//
//   - in batches of DefaultStaleBatch, each one transaction, walking the
//     partial index dossiers_stale_scan_idx: lock the eligible dossiers
//     (SKIP LOCKED: a dossier in the middle of a transition is left for the
//     next scan, never waited for), set stale_since = now, write a history
//     row « signaler_inactif » and the applicant's reminder (stale_usager);
//   - then in one transaction, one e-mail (stale_instructeur) per
//     instructeur listing its dossiers flagged as of now and still flagged:
//     those it follows, and those of its procedures that nobody follows;
//     the same transaction marks the scan finished in stale_scans.
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
func ScanStale(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], cfg Config, now time.Time) (ScanResult, error) {
	return scanStale(ctx, pool, client, cfg, now, scanOptions{})
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

func scanStale(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], cfg Config, now time.Time, o scanOptions) (ScanResult, error) {
	cfg.Defaults()
	if o.batch <= 0 {
		o.batch = DefaultStaleBatch
	}
	res := ScanResult{At: canonicalTime(now)}
	at := res.At

	unlock, err := lockScan(ctx, pool)
	if err != nil {
		return res, err
	}
	defer unlock()

	var finished *time.Time
	var dossiers, emails *int
	if err := pool.QueryRow(ctx, `
		WITH ins AS (INSERT INTO stale_scans (scanned_at) VALUES ($1) ON CONFLICT DO NOTHING)
		SELECT finished_at, dossiers, instructeur_emails FROM stale_scans WHERE scanned_at = $1`, at,
	).Scan(&finished, &dossiers, &emails); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("stale scan %s: %w", at.Format(time.RFC3339), err)
	}
	if finished != nil {
		res.AlreadyDone = true
		res.Listed, res.InstructeurEmails = deref(dossiers), deref(emails)
		return res, nil
	}

	// Scans killed before their last step: their flagged dossiers still wait
	// for their instructeur e-mails, which no later scan would list.
	rows, err := pool.Query(ctx, `SELECT scanned_at FROM stale_scans WHERE finished_at IS NULL AND scanned_at <> $1 ORDER BY scanned_at`, at)
	if err != nil {
		return res, fmt.Errorf("unfinished stale scans: %w", err)
	}
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return res, fmt.Errorf("unfinished stale scans: %w", err)
	}
	for _, t := range orphans {
		n, listed, err := finishScan(ctx, pool, client, cfg, t)
		if err != nil {
			return res, err
		}
		res.Recovered++
		res.InstructeurEmails += n
		res.Listed += listed
	}

	// The index range scan stops at the cutoff of the shortest stale delay;
	// dossiers of procedures with a longer one are checked row by row.
	var minDays *int
	if err := pool.QueryRow(ctx, `SELECT min(stale_after_days) FROM procedures`).Scan(&minDays); err != nil {
		return res, fmt.Errorf("stale delays: %w", err)
	}
	if minDays != nil {
		cutoff := at.Add(-time.Duration(*minDays) * 24 * time.Hour)
		var afterAt time.Time // keyset cursor on (last_activity_at, id)
		var afterID int64
		for batches := 1; ; batches++ {
			n, more, err := flagBatch(ctx, pool, client, cfg, at, cutoff, &afterAt, &afterID, o.batch)
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
	}

	n, listed, err := finishScan(ctx, pool, client, cfg, at)
	if err != nil {
		return res, err
	}
	res.InstructeurEmails += n
	res.Listed += listed
	return res, nil
}

// lockScan takes the cluster-wide scan lock on a connection of its own, or
// returns ErrScanRunning. The lock belongs to the session: if the process
// dies, PostgreSQL releases it with the connection.
func lockScan(ctx context.Context, pool *pgxpool.Pool) (unlock func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("stale scan lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, staleLockKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("stale scan lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrScanRunning
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, staleLockKey); err != nil {
			// A pooled session must not keep the lock: drop the connection.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// flagBatch flags the eligible dossiers among the next batch of candidates
// after the cursor, with their history rows and reminders, in one
// transaction, and moves the cursor. more is false once the candidates
// are exhausted.
func flagBatch(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], cfg Config,
	at, cutoff time.Time, afterAt *time.Time, afterID *int64, batch int) (flagged int, more bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Candidates: a range of the partial index, read without locks.
		rows, err := tx.Query(ctx, `
			SELECT id, last_activity_at FROM dossiers
			WHERE state = 'en_construction' AND stale_since IS NULL
				AND last_activity_at < $1 AND (last_activity_at, id) > ($2, $3)
			ORDER BY last_activity_at, id
			LIMIT $4`, cutoff, *afterAt, *afterID, batch)
		if err != nil {
			return fmt.Errorf("stale candidates: %w", err)
		}
		ids := make([]int64, 0, batch)
		var lastAt time.Time
		var lastID int64
		if _, err := pgx.ForEachRow(rows, []any{&lastID, &lastAt}, func() error {
			ids = append(ids, lastID)
			return nil
		}); err != nil {
			return fmt.Errorf("stale candidates: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		more = len(ids) == batch
		*afterAt, *afterID = lastAt, lastID

		// Each candidate is checked again under its lock: a transition or
		// an activity may have committed since it was read. Those locked
		// right now are skipped, not waited for.
		rows, err = tx.Query(ctx, `
			WITH eligible AS (
				SELECT d.id, d.usager_email, p.stale_after_days
				FROM dossiers d JOIN procedures p ON p.id = d.procedure_id
				WHERE d.id = ANY($1) AND d.state = 'en_construction' AND d.stale_since IS NULL
					AND d.last_activity_at < $2::timestamptz - p.stale_after_days * interval '24 hours'
				FOR UPDATE OF d SKIP LOCKED
			), flagged AS (
				UPDATE dossiers d SET stale_since = $2 FROM eligible e WHERE d.id = e.id
				RETURNING d.id
			), history AS (
				INSERT INTO dossier_history (dossier_id, event, from_state, to_state, at)
				SELECT id, $3, 'en_construction', 'en_construction', $2 FROM flagged
			)
			INSERT INTO email_deliveries (dossier_id, kind, recipient, params)
			SELECT e.id, $4, e.usager_email, jsonb_build_object('stale_days', e.stale_after_days)
			FROM eligible e JOIN flagged f ON f.id = e.id
			ORDER BY e.id
			RETURNING id`, ids, at, EventSignalerInactif, workflow.MailStaleUsager)
		if err != nil {
			return fmt.Errorf("flag stale dossiers: %w", err)
		}
		deliveries, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("flag stale dossiers: %w", err)
		}
		flagged = len(deliveries)
		return insertEmailJobs(ctx, tx, client, cfg, deliveries)
	})
	if err != nil {
		return 0, false, err
	}
	return flagged, more, nil
}

// finishScan writes, in one transaction, the instructeur e-mails of the
// scan as of at and marks it finished; a scan already finished is left
// alone.
func finishScan(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], cfg Config, at time.Time) (emails, listed int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var finished *time.Time
		if err := tx.QueryRow(ctx, `SELECT finished_at FROM stale_scans WHERE scanned_at = $1 FOR UPDATE`, at).Scan(&finished); err != nil {
			return fmt.Errorf("stale scan %s: %w", at.Format(time.RFC3339), err)
		}
		if finished != nil {
			return nil
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM dossiers WHERE stale_since = $1 AND state = 'en_construction'`, at).Scan(&listed); err != nil {
			return fmt.Errorf("stale dossiers of %s: %w", at.Format(time.RFC3339), err)
		}
		// Whom to tell of each dossier: its followers, or, when nobody
		// follows it, its procedure's instructeurs. Grouped in SQL, so that
		// the scan holds one row per instructeur, not per dossier. The
		// e-mail's delay is the shortest of the procedures of its dossiers:
		// each of them has been inactive at least that long.
		rows, err := tx.Query(ctx, `
			WITH stale AS (
				SELECT id, procedure_id FROM dossiers WHERE stale_since = $1 AND state = 'en_construction'
			), recipients AS (
				SELECT f.instructeur_id, s.id AS dossier_id, s.procedure_id
				FROM stale s JOIN follows f ON f.dossier_id = s.id
				UNION ALL
				SELECT pi.instructeur_id, s.id, s.procedure_id
				FROM stale s JOIN procedure_instructeurs pi ON pi.procedure_id = s.procedure_id
				WHERE NOT EXISTS (SELECT 1 FROM follows f WHERE f.dossier_id = s.id)
			)
			INSERT INTO email_deliveries (dossier_id, kind, recipient, params)
			SELECT NULL, $2, i.email, jsonb_build_object(
				'instructeur_id', i.id,
				'dossier_ids', array_agg(r.dossier_id ORDER BY r.dossier_id),
				'stale_days', min(p.stale_after_days))
			FROM recipients r
			JOIN instructeurs i ON i.id = r.instructeur_id
			JOIN procedures p ON p.id = r.procedure_id
			GROUP BY i.id, i.email
			ORDER BY i.id
			RETURNING id`, at, workflow.MailStaleInstructeur)
		if err != nil {
			return fmt.Errorf("instructeur e-mails of %s: %w", at.Format(time.RFC3339), err)
		}
		deliveries, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("instructeur e-mails of %s: %w", at.Format(time.RFC3339), err)
		}
		emails = len(deliveries)
		if err := insertEmailJobs(ctx, tx, client, cfg, deliveries); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE stale_scans SET finished_at = now(), dossiers = $2, instructeur_emails = $3
			WHERE scanned_at = $1`, at, listed, emails)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return emails, listed, nil
}

// insertEmailJobs inserts one send_email job per delivery in tx, with COPY:
// a batch of reminders is thousands of jobs.
func insertEmailJobs(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], cfg Config, deliveries []int64) error {
	if len(deliveries) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(deliveries))
	opts := &river.InsertOpts{MaxAttempts: cfg.EmailMaxAttempts}
	for i, id := range deliveries {
		params[i] = river.InsertManyParams{Args: SendEmailArgs{DeliveryID: id}, InsertOpts: opts}
	}
	if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert e-mail jobs: %w", err)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
