package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Cron is a cron job as the metrics watch it: the id of its periodic job
// (NewCronJob) and its schedule.
type Cron struct {
	Name     string
	Schedule river.PeriodicSchedule
}

// cronMeta is what NewCronJob puts in the metadata of the jobs it inserts,
// so that a run is recognised as a cron's, whatever its args.
type cronMeta struct {
	Cron string    `json:"aptflow_cron"`
	At   time.Time `json:"aptflow_cron_at"` // the run time it stands for
}

// cronInsertOpts are the insert options of a cron's job for slot: its
// metadata; the rest comes from its args' InsertOpts.
func cronInsertOpts(name string, slot time.Time) *river.InsertOpts {
	meta, err := json.Marshal(cronMeta{Cron: name, At: slot})
	if err != nil {
		panic(err) // a string and a time always marshal
	}
	return &river.InsertOpts{Metadata: meta}
}

// RegisterCrons notes, once per cluster, when each cron first ran with a
// process of it: a run due before then (aptflow was not there) is never
// counted as missed.
func RegisterCrons(ctx context.Context, pool *pgxpool.Pool, crons []Cron) error {
	names := make([]string, len(crons))
	for i, c := range crons {
		names[i] = c.Name
	}
	if _, err := pool.Exec(ctx, `INSERT INTO cron_runs (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, names); err != nil {
		return fmt.Errorf("register cron jobs: %w", err)
	}
	return nil
}

// cronRecorder is the River hook that records, in cron_runs, each cron job
// that has run without error: River forgets a completed job after a day,
// and a cron may run less often than that (the digests skip the weekend).
type cronRecorder struct {
	river.HookDefaults
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ rivertype.HookWorkEnd = (*cronRecorder)(nil)

// WorkEnd records a successful run of a cron's job. A failure to record is
// logged, not returned: the run itself went well, and a retry would run it
// again for nothing.
func (h *cronRecorder) WorkEnd(ctx context.Context, job *rivertype.JobRow, err error) error {
	if err != nil {
		return err
	}
	var m cronMeta
	if json.Unmarshal(job.Metadata, &m) != nil || m.Cron == "" || m.At.IsZero() {
		return nil
	}
	if _, rerr := h.pool.Exec(ctx, `
		INSERT INTO cron_runs (name, last_run_at, finished_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET
			last_run_at = greatest(cron_runs.last_run_at, EXCLUDED.last_run_at),
			finished_at = EXCLUDED.finished_at`, m.Cron, m.At); rerr != nil {
		h.log.WarnContext(ctx, "record cron run", "cron", m.Cron, "job_id", job.ID, "err", rerr)
	}
	return nil
}

// cronRun is what cron_runs knows of a cron.
type cronRun struct {
	registered time.Time
	last       *time.Time // run time of the last successful run
}

// queueCronRuns adds the read of cron_runs to a batch of the collector.
func queueCronRuns(b *pgx.Batch, into map[string]cronRun) {
	b.Queue(`SELECT name, registered_at, last_run_at FROM cron_runs`).Query(func(rows pgx.Rows) error {
		var (
			name string
			run  cronRun
		)
		_, err := pgx.ForEachRow(rows, []any{&name, &run.registered, &run.last}, func() error {
			into[name] = run
			return nil
		})
		return err
	})
}

// overdue is how long the last run that c's schedule asked for, as of now,
// has been due without succeeding; 0 when it succeeded, or when it was due
// before the cron was registered (run is the zero cronRun if it never was).
func (c Cron) overdue(run cronRun, now time.Time) time.Duration {
	due := previousRun(c.Schedule, now)
	if due.IsZero() || run.registered.IsZero() || due.Before(run.registered) {
		return 0
	}
	if run.last != nil && !run.last.Before(due) {
		return 0
	}
	return now.Sub(due)
}
