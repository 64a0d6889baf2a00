package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// Queue names.
const (
	QueueEmail        = "email"
	QueueEmailBulk    = "email_bulk" // bulk mail: workflow.IsBulkMail
	QueueAttestation  = "attestation"
	QueueNotification = "notification"
	QueueMaintenance  = "maintenance"
	// QueueWebhook has its own workers: a slow or dead receiver never
	// holds up an e-mail.
	QueueWebhook = "webhook"
)

// Config tunes the River client and the workers.
type Config struct {
	// JobTimeout bounds one run of a job; RescueAfter is when a job left
	// running by a dead process goes back to the queue. RescueAfter must be
	// longer than JobTimeout.
	JobTimeout  time.Duration
	RescueAfter time.Duration
	// NotifyCoalesce groups a burst of activity on one dossier into one
	// e-mail per follower.
	NotifyCoalesce time.Duration
	// EmailMaxAttempts is how many times an e-mail is tried before it is
	// marked failed; RetryBase and RetryMax bound the backoff between tries
	// (RetryBase·2^(attempt-1), at most RetryMax).
	EmailMaxAttempts int
	RetryBase        time.Duration
	RetryMax         time.Duration
	// EmailWorkers and AttestationWorkers size the queues. A render costs
	// about 3 ms of CPU and its job as long again waiting on the database:
	// 8 attestation workers keep two cores busy where 4 left a fifth of
	// them idle (docs/PERFORMANCE.md).
	EmailWorkers       int
	AttestationWorkers int
	// BulkEmailWorkers sizes the bulk e-mail queue (default 5), apart
	// from EmailWorkers: bulk mail never takes the workers of the e-mails
	// people wait for. Under BulkRate it is at most the rate, rounded up.
	// Five send a stale scan's reminders at hundreds a second.
	BulkEmailWorkers int
	// BulkRate caps the bulk e-mails this process sends, in messages a
	// second (SMTP_MAX_RATE); 0 means no cap.
	BulkRate float64
	// StaleListMax is how many dossiers an instructeur's stale e-mail lists
	// at most (default 100); it counts the others. The first scan over a
	// large backlog would otherwise send e-mails of thousands of lines.
	StaleListMax int
	// IdempotencyTTL is how long an idempotency key and the response it
	// stored are kept (IDEMPOTENCY_TTL, default 24h); the purge forgets
	// older ones.
	IdempotencyTTL time.Duration
	// MailFrom is the sender of every e-mail; PublicURL the base of links.
	MailFrom  string
	PublicURL string
	// FetchPollInterval is how often an idle queue polls for jobs besides
	// LISTEN/NOTIFY (0: River's default).
	FetchPollInterval time.Duration
	// FetchCooldown is the shortest time between two fetches of a queue,
	// and between two insert notifications of a queue by one process. A
	// queue starts at most its workers' worth of jobs per cooldown: with
	// River's default (100 ms), 4 attestation workers capped acceptances at
	// 40/s. See docs/PERFORMANCE.md.
	FetchCooldown time.Duration
	// WebhookMaxAttempts is how many times a webhook delivery is tried
	// (WEBHOOK_MAX_ATTEMPTS, default 15: about three days with
	// WebhookBackoff); WebhookBackoff are the delays before the 2nd, 3rd...
	// attempt (the last repeats), each ±10 %.
	WebhookMaxAttempts int
	WebhookBackoff     []time.Duration
	// WebhookWorkers sizes the webhook queue; WebhookPerSubscription bounds
	// the deliveries in flight to one subscription in one process, so that
	// a receiver that does not answer holds that many workers at most
	// while the others serve the other receivers.
	WebhookWorkers         int
	WebhookPerSubscription int
	// PeriodicJobs are registered on every process; River's leader enqueues
	// them, once per cluster.
	PeriodicJobs []*river.PeriodicJob
	// PollOnly: River polls for new jobs and leadership changes instead of
	// LISTENing, which a pooler in transaction mode does not carry (a new
	// job then waits up to FetchPollInterval).
	PollOnly bool
	// Logger is shared with River.
	Logger *slog.Logger
}

// Defaults fills the zero fields of c.
func (c *Config) Defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.JobTimeout, time.Minute)
	set(&c.RescueAfter, 5*time.Minute)
	set(&c.NotifyCoalesce, 2*time.Minute)
	set(&c.RetryBase, 5*time.Second)
	set(&c.RetryMax, 10*time.Minute)
	set(&c.FetchCooldown, 20*time.Millisecond)
	set(&c.IdempotencyTTL, 24*time.Hour)
	if c.EmailMaxAttempts == 0 {
		c.EmailMaxAttempts = 20
	}
	if c.EmailWorkers == 0 {
		c.EmailWorkers = 20
	}
	if c.BulkEmailWorkers == 0 {
		c.BulkEmailWorkers = 5
	}
	if c.StaleListMax == 0 {
		c.StaleListMax = 100
	}
	if c.AttestationWorkers == 0 {
		c.AttestationWorkers = 8
	}
	if c.WebhookMaxAttempts == 0 {
		c.WebhookMaxAttempts = DefaultWebhookMaxAttempts
	}
	if c.WebhookBackoff == nil {
		c.WebhookBackoff = DefaultWebhookBackoff
	}
	if c.WebhookWorkers == 0 {
		c.WebhookWorkers = 16
	}
	if c.WebhookPerSubscription == 0 {
		c.WebhookPerSubscription = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// PoolSize is the number of database connections the workers of c need,
// plus headroom for River's maintenance and the API.
func (c *Config) PoolSize() int32 {
	// A webhook worker holds a connection only to read its delivery and
	// record the answer, not while it waits for the receiver: a quarter of
	// them. The bulk e-mail workers likewise, and they mostly wait for
	// their turn (SMTP_MAX_RATE): the e-mail workers' connections and the
	// headroom serve them.
	return int32(c.EmailWorkers + c.AttestationWorkers + 4 + 2 + c.WebhookWorkers/4 + 10)
}

// Deps are what the workers use.
type Deps struct {
	// Service makes every write to the domain's tables (deliveries, the
	// attestation, the stale scan, the notification and digest cursors),
	// with its clock: workers orchestrate, render and enqueue, and never
	// write those tables themselves. Its Enqueuer may have no client of its
	// own (NewEnqueuer(nil, ...)): in a worker, it inserts with the client
	// that runs the job.
	Service   *workflow.Service
	Pool      *pgxpool.Pool
	Mailer    mailer.Mailer
	Templates *templates.Templates
	// Attestations renders the attestation PDF.
	Attestations AttestationRenderer
	// Signer, if set, signs each attestation (ATTESTATION_SIGN_CERT and
	// ATTESTATION_SIGN_KEY); nil leaves them unsigned.
	Signer AttestationSigner
	// Metrics, if set, counts e-mails.
	Metrics *Metrics
	// Webhooks posts the webhook deliveries; nil: the deliver_webhook
	// worker is not registered (this process sends no webhook).
	Webhooks *webhook.Sender
}

// NewWorkers registers every worker of aptflow.
func NewWorkers(cfg Config, deps Deps) (*river.Workers, error) {
	if deps.Service == nil || deps.Pool == nil || deps.Mailer == nil || deps.Templates == nil || deps.Attestations == nil {
		return nil, errors.New("jobs: service, pool, mailer, templates and attestation renderer are required")
	}
	cfg.Defaults()
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &SendEmailWorker{cfg: cfg, deps: deps, pacer: newPacer(cfg.BulkRate)}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &RenderAttestationWorker{cfg: cfg, deps: deps}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &NotifyFollowerWorker{cfg: cfg, deps: deps}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &SendDigestsWorker{cfg: cfg, deps: deps}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &ScanStaleWorker{cfg: cfg, deps: deps}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &PurgeWorker{cfg: cfg, deps: deps}); err != nil {
		return nil, err
	}
	if deps.Webhooks != nil {
		if err := river.AddWorkerSafely(workers, newDeliverWebhookWorker(cfg, deps)); err != nil {
			return nil, err
		}
	}
	return workers, nil
}

// NewClient returns a River client. With workers nil it only inserts jobs
// (an API-only process); otherwise it works every queue.
func NewClient(pool *pgxpool.Pool, cfg Config, workers *river.Workers) (*river.Client[pgx.Tx], error) {
	cfg.Defaults()
	if cfg.RescueAfter <= cfg.JobTimeout {
		return nil, fmt.Errorf("jobs: RESCUE_AFTER (%s) must be longer than JOB_TIMEOUT (%s)", cfg.RescueAfter, cfg.JobTimeout)
	}
	if cfg.FetchPollInterval != 0 && cfg.FetchPollInterval < cfg.FetchCooldown {
		cfg.FetchCooldown = cfg.FetchPollInterval // River refuses a poll faster than the cooldown
	}
	rc := &river.Config{
		Logger:               cfg.Logger,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cfg.FetchPollInterval,
		FetchCooldown:        cfg.FetchCooldown,
		// Completed jobs are River's bookkeeping only: the delivery log and
		// the history are the durable record.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		PollOnly:                    cfg.PollOnly,
	}
	if workers != nil {
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{
			QueueEmail:        {MaxWorkers: cfg.EmailWorkers},
			QueueEmailBulk:    {MaxWorkers: bulkWorkers(cfg)},
			QueueAttestation:  {MaxWorkers: cfg.AttestationWorkers},
			QueueNotification: {MaxWorkers: 4},
			QueueMaintenance:  {MaxWorkers: 2},
			QueueWebhook:      {MaxWorkers: cfg.WebhookWorkers},
		}
		rc.PeriodicJobs = cfg.PeriodicJobs
		rc.Hooks = []rivertype.Hook{&cronRecorder{pool: pool, log: cfg.Logger}}
	} else {
		// An insert-only client cannot check kinds against its workers.
		rc.SkipUnknownJobCheck = true
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return client, nil
}

// Enqueuer turns workflow tasks into River jobs, inserted in the caller's
// transaction. It implements workflow.Enqueuer.
type Enqueuer struct {
	client *river.Client[pgx.Tx]
	cfg    Config
}

// NewEnqueuer returns an Enqueuer inserting with client. With client nil,
// it inserts with the client of the job running (river.ClientFromContext):
// that is the Enqueuer of the workers' Service, which exists before their
// client does.
func NewEnqueuer(client *river.Client[pgx.Tx], cfg Config) *Enqueuer {
	cfg.Defaults()
	return &Enqueuer{client: client, cfg: cfg}
}

var _ workflow.Enqueuer = (*Enqueuer)(nil)

// EnqueueTx inserts one job per task in tx.
func (e *Enqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, tasks ...workflow.Task) error {
	params := make([]river.InsertManyParams, 0, len(tasks))
	for _, t := range tasks {
		p, err := e.params(t)
		if err != nil {
			return err
		}
		params = append(params, p)
	}
	client := e.client
	if client == nil {
		var err error
		if client, err = river.ClientFromContextSafely[pgx.Tx](ctx); err != nil {
			return fmt.Errorf("insert jobs: no River client outside a job: %w", err)
		}
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

func (e *Enqueuer) params(t workflow.Task) (river.InsertManyParams, error) {
	switch t := t.(type) {
	case workflow.SendEmail:
		return emailJob(t.DeliveryID, t.Kind, e.cfg), nil
	case workflow.RenderAttestation:
		return river.InsertManyParams{Args: RenderAttestationArgs{DossierID: t.DossierID, DeliveryID: t.DeliveryID}}, nil
	case workflow.NotifyFollower:
		// Scheduled at the end of the coalescing window; while it waits, the
		// same pair's later activity dedupes into it.
		return river.InsertManyParams{Args: NotifyFollowerArgs{DossierID: t.DossierID, InstructeurID: t.InstructeurID},
			InsertOpts: &river.InsertOpts{ScheduledAt: time.Now().Add(e.cfg.NotifyCoalesce)}}, nil
	case workflow.DeliverWebhook:
		return river.InsertManyParams{Args: DeliverWebhookArgs{DeliveryID: t.DeliveryID, Generation: t.Generation},
			InsertOpts: &river.InsertOpts{MaxAttempts: e.cfg.WebhookMaxAttempts}}, nil
	default:
		return river.InsertManyParams{}, fmt.Errorf("jobs: unknown task %T", t)
	}
}

// backoff is the capped exponential retry delay of attempt (1-based).
func backoff(cfg Config, attempt int) time.Duration {
	d := cfg.RetryBase
	for i := 1; i < attempt && d < cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, cfg.RetryMax)
}
