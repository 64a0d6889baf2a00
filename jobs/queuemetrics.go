package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queues lists aptflow's queues, so that every one of them shows in the
// metrics even when it holds no job (an absent series cannot be alerted on).
var Queues = []string{QueueEmail, QueueEmailBulk, QueueAttestation, QueueNotification, QueueMaintenance}

// DefaultStatsTTL is how long QueueCollector reuses a query's result.
const DefaultStatsTTL = 5 * time.Second

// QueueCollector is a prometheus.Collector of what the database knows about
// the whole cluster's work: River jobs by queue and state, the age of the
// oldest job waiting in each queue, and the dossiers flagged stale.
//
// One round trip to the database serves a scrape, and its result is reused
// for TTL: several Prometheus servers, or every process of the cluster being
// scraped, cost one query per TTL each, not one per scrape and metric.
type QueueCollector struct {
	pool    *pgxpool.Pool
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	jobs, oldest, stale, up *prometheus.Desc
	cronLast, cronOverdue   *prometheus.Desc
	crons                   []Cron

	mu   sync.Mutex
	at   time.Time // when snap was taken; zero: never
	snap queueStats
	err  error
}

// queueStats is one reading of the database.
type queueStats struct {
	jobs   map[[2]string]float64 // {queue, state} → count
	oldest map[string]float64    // queue → seconds
	stale  float64
	crons  map[string]cronRun // name → its runs
}

// NewQueueCollector returns a collector reading pool, caching for ttl
// (DefaultStatsTTL if 0). Errors are logged with log and shown as
// aptflow_stats_up 0; the other series then keep their last values.
func NewQueueCollector(pool *pgxpool.Pool, ttl time.Duration, log *slog.Logger) *QueueCollector {
	if ttl <= 0 {
		ttl = DefaultStatsTTL
	}
	if log == nil {
		log = slog.Default()
	}
	return &QueueCollector{
		pool: pool, ttl: ttl, timeout: 3 * time.Second, log: log, now: time.Now,
		jobs: prometheus.NewDesc("aptflow_jobs",
			"River jobs in the database by queue and state, for the whole cluster (read every few seconds).",
			[]string{"queue", "state"}, nil),
		oldest: prometheus.NewDesc("aptflow_job_oldest_available_age_seconds",
			"Age of the oldest job of the queue that is due and not started (available, or scheduled or retryable with a past run time), since its run time; 0 when none waits.",
			[]string{"queue"}, nil),
		stale: prometheus.NewDesc("aptflow_dossiers_stale",
			"Dossiers en construction flagged stale by the scan and not modified since.",
			nil, nil),
		up: prometheus.NewDesc("aptflow_stats_up",
			"1 if the last database read behind aptflow_jobs, aptflow_job_oldest_available_age_seconds, aptflow_dossiers_stale and aptflow_cron_* succeeded, else 0.",
			nil, nil),
		cronLast: prometheus.NewDesc("aptflow_cron_last_success_timestamp_seconds",
			"Run time (the cron time it stood for) of the cron job's last successful run, for the whole cluster; absent before the first.",
			[]string{"cron"}, nil),
		cronOverdue: prometheus.NewDesc("aptflow_cron_overdue_seconds",
			"How long the last run that the cron job's schedule asked for has been due without succeeding (missed, failing or still running); 0 once it succeeded.",
			[]string{"cron"}, nil),
	}
}

// WithCrons makes the collector watch the runs of crons too: when a run
// due by its schedule has not succeeded, aptflow_cron_overdue_seconds
// grows from its run time. It returns c.
func (c *QueueCollector) WithCrons(crons []Cron) *QueueCollector {
	c.crons = crons
	return c
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.oldest
	ch <- c.stale
	ch <- c.up
	ch <- c.cronLast
	ch <- c.cronOverdue
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.read()
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if stats.jobs == nil {
		return // never read: no value is better than a false zero
	}
	for k, n := range stats.jobs {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, n, k[0], k[1])
	}
	for q, age := range stats.oldest {
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, q)
	}
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stats.stale)
	now := c.now()
	for _, cron := range c.crons {
		run := stats.crons[cron.Name]
		if run.last != nil {
			ch <- prometheus.MustNewConstMetric(c.cronLast, prometheus.GaugeValue, float64(run.last.UnixMilli())/1000, cron.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.cronOverdue, prometheus.GaugeValue, cron.overdue(run, now).Seconds(), cron.Name)
	}
}

// read returns the cached stats, refreshed if older than the TTL. Holding
// the lock during the query makes concurrent scrapes share one query.
func (c *QueueCollector) read() (queueStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < c.ttl {
		return c.snap, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	snap, err := c.query(ctx)
	c.at, c.err = c.now(), err
	if err != nil {
		c.log.Warn("metrics: read queue statistics", "err", err)
		return c.snap, err
	}
	c.snap = snap
	return snap, nil
}

// query reads the statistics in one round trip: jobs grouped by queue and
// state, the stale dossiers, and the cron jobs' runs.
//
// A job waits from its scheduled_at until a worker starts it, whatever its
// state says meanwhile: River inserts a job with a run time (a retry, a
// coalesced notification) as scheduled or retryable, and only its leader
// makes it available once due. Counting those too makes a cluster without a
// leader, or without workers, show as a growing age.
func (c *QueueCollector) query(ctx context.Context) (queueStats, error) {
	s := queueStats{jobs: map[[2]string]float64{}, oldest: map[string]float64{}, crons: map[string]cronRun{}}
	for _, q := range Queues {
		for _, st := range rivertype.JobStates() {
			s.jobs[[2]string{q, string(st)}] = 0
		}
		s.oldest[q] = 0
	}
	b := &pgx.Batch{}
	b.Queue(`
		SELECT queue, state::text, count(*),
			greatest(0, extract(epoch FROM now() - min(scheduled_at) FILTER (
				WHERE state IN ('available', 'scheduled', 'retryable') AND scheduled_at <= now())))::float8
		FROM river_job
		GROUP BY queue, state`).Query(func(rows pgx.Rows) error {
		var (
			queue, state string
			n            int64
			age          *float64
		)
		_, err := pgx.ForEachRow(rows, []any{&queue, &state, &n, &age}, func() error {
			s.jobs[[2]string{queue, state}] = float64(n)
			if _, ok := s.oldest[queue]; !ok {
				s.oldest[queue] = 0
			}
			if age != nil {
				s.oldest[queue] = max(s.oldest[queue], *age)
			}
			return nil
		})
		return err
	})
	b.Queue(`SELECT count(*) FROM dossiers WHERE stale_since IS NOT NULL AND state = 'en_construction'`).
		QueryRow(func(row pgx.Row) error {
			var n int64
			err := row.Scan(&n)
			s.stale = float64(n)
			return err
		})
	if len(c.crons) > 0 {
		queueCronRuns(b, s.crons)
	}
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return queueStats{}, fmt.Errorf("queue statistics: %w", err)
	}
	return s, nil
}

// JobMetrics are the durations of the jobs that this process works,
// observed from River's events. A process sees its own jobs only: sum the
// series of every `serve` and `work` process for the cluster's.
type JobMetrics struct {
	wait, run *prometheus.HistogramVec
}

// NewJobMetrics registers the job duration histograms on reg.
func NewJobMetrics(reg prometheus.Registerer) *JobMetrics {
	m := &JobMetrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aptflow_job_queue_wait_seconds",
			Help:    "Time a job worked by this process waited, runnable, for a worker (River's queue wait), by queue and kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"queue", "kind"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aptflow_job_run_seconds",
			Help: "Time a job took to run in this process, by queue, kind and outcome (completed, failed, cancelled, snoozed, interrupted).",
			// JOB_TIMEOUT defaults to 1m: longer runs were cut.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"queue", "kind", "outcome"}),
	}
	reg.MustRegister(m.wait, m.run)
	return m
}

// jobEvents are the River events that end a run of a job.
var jobEvents = []river.EventKind{
	river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled,
	river.EventKindJobSnoozed, river.EventKindJobInterrupted,
}

// Observe subscribes to client's job events and feeds the histograms until
// the client stops. Call it before client.Start, so that no event is missed;
// client must work jobs (have queues).
func (m *JobMetrics) Observe(client *river.Client[pgx.Tx]) {
	// River drops events when the channel is full: a large buffer rides out
	// a burst of short jobs.
	events, _ := client.SubscribeConfig(&river.SubscribeConfig{Kinds: jobEvents, ChanSize: 10_000})
	go func() {
		// The channel is closed when the client stops.
		for e := range events {
			m.observe(e)
		}
	}()
}

func (m *JobMetrics) observe(e *river.Event) {
	if e.Job == nil || e.JobStats == nil {
		return
	}
	outcome := strings.TrimPrefix(string(e.Kind), "job_")
	m.wait.WithLabelValues(e.Job.Queue, e.Job.Kind).Observe(e.JobStats.QueueWaitDuration.Seconds())
	m.run.WithLabelValues(e.Job.Queue, e.Job.Kind, outcome).Observe(e.JobStats.RunDuration.Seconds())
}
