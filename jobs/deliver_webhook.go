package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/workflow"
)

// DefaultWebhookMaxAttempts is WEBHOOK_MAX_ATTEMPTS's default: with
// DefaultWebhookBackoff, the last attempt comes about three days after the
// first.
const DefaultWebhookMaxAttempts = 15

// DefaultWebhookBackoff are the delays before the 2nd, 3rd... attempt at a
// webhook delivery: quick at first (a receiver restarting), then spreading
// out; the 15th attempt comes 2.9 days after the first. Beyond the list,
// the last delay repeats.
var DefaultWebhookBackoff = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour,
	8 * time.Hour, 12 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// DeliverWebhookArgs posts one webhook delivery: one event to one
// subscription. Generation is the delivery's when the job was inserted: a
// manual retry moves the delivery on to the next, and inserts a job of its
// own; the older job stops when it finds out.
type DeliverWebhookArgs struct {
	DeliveryID int64 `json:"delivery_id"`
	Generation int64 `json:"generation,omitempty"`
}

// Kind is the job kind; it never changes once shipped.
func (DeliverWebhookArgs) Kind() string { return "deliver_webhook" }

// InsertOpts puts deliveries on their own queue.
func (DeliverWebhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueWebhook}
}

// DeliverWebhookWorker posts a delivery until its receiver takes it (any
// 2xx), answers 410 Gone (the subscription is disabled), or every attempt
// is spent. Each attempt is signed anew with its own webhook-timestamp, so
// that a retry days later still passes the receiver's tolerance; the
// webhook-id and the body are the same on every attempt.
type DeliverWebhookWorker struct {
	river.WorkerDefaults[DeliverWebhookArgs]
	cfg   Config
	deps  Deps
	slots *webhookSlots
}

func newDeliverWebhookWorker(cfg Config, deps Deps) *DeliverWebhookWorker {
	return &DeliverWebhookWorker{cfg: cfg, deps: deps, slots: &webhookSlots{max: cfg.WebhookPerSubscription, subs: map[int64]*subSlots{}}}
}

// NextRetry follows WebhookBackoff, ±10 %: deliveries that failed together
// (a receiver down) do not all come back at the same second.
func (w *DeliverWebhookWorker) NextRetry(job *river.Job[DeliverWebhookArgs]) time.Time {
	return time.Now().Add(jitter(webhookBackoff(w.cfg, job.Attempt), 0.1))
}

// Timeout leaves the receiver its whole delay (10 s), and the worker a few
// seconds to read the delivery and record the answer: under RESCUE_AFTER
// (checked at start), whatever JOB_TIMEOUT is, so that a delivery waiting
// on a slow receiver is never taken for a dead process's and sent twice.
func (w *DeliverWebhookWorker) Timeout(*river.Job[DeliverWebhookArgs]) time.Duration {
	return w.deps.Webhooks.Timeout() + 5*time.Second
}

// webhookBackoff is the delay after the failed attempt number attempt
// (1-based).
func webhookBackoff(cfg Config, attempt int) time.Duration {
	b := cfg.WebhookBackoff
	return b[min(max(attempt, 1), len(b))-1]
}

// jitter spreads d by ±frac.
func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1)))
}

// Work sends the delivery once more, unless it is no longer pending.
func (w *DeliverWebhookWorker) Work(ctx context.Context, job *river.Job[DeliverWebhookArgs]) error {
	id := job.Args.DeliveryID
	svc := w.deps.Service
	send, err := svc.WebhookSend(ctx, id)
	switch {
	case workflow.ErrorCode(err) == workflow.ENotFound:
		return river.JobCancel(fmt.Errorf("webhook delivery %d does not exist", id))
	case errors.Is(err, workflow.ErrWebhookSecret), workflow.ErrorCode(err) == workflow.EWebhooksNotConfigured:
		// WEBHOOK_SECRET_KEY lost the key of this secret: nothing can be
		// signed until it is back. The attempt counts, and says so.
		return w.failed(ctx, job, workflow.WebhookAttempt{Generation: job.Args.Generation, Error: "the secret cannot be opened with WEBHOOK_SECRET_KEY"})
	case err != nil:
		return err
	case send.Generation != job.Args.Generation:
		return nil // a manual retry superseded this job with its own
	case send.Status != workflow.WebhookPending:
		return nil // delivered, or failed, by an earlier run
	case !send.Active:
		return svc.AbandonWebhookDelivery(ctx, id, "subscription disabled or deleted")
	}

	release, ok, slow := w.slots.acquire(ctx, send.SubscriptionID)
	if !ok {
		// This receiver already has its share of the workers. Come back
		// later without spending an attempt: soon if it answers, after a
		// whole timeout if it does not.
		wait := time.Second
		if slow {
			wait = w.deps.Webhooks.Timeout()
		}
		return river.JobSnooze(jitter(wait, 0.5))
	}
	res, sendErr := w.deps.Webhooks.Send(ctx, webhook.Message{
		URL: send.URL, ID: send.MsgID, Timestamp: time.Now(), Body: send.Body, Secrets: send.Secrets,
	})
	release()
	if errors.Is(ctx.Err(), context.Canceled) {
		// Cut by a shutdown: no verdict on the receiver. River makes the
		// job available again at once, without spending the attempt.
		return fmt.Errorf("webhook delivery %d interrupted: %w", id, ctx.Err())
	}
	rec := context.WithoutCancel(ctx)
	switch {
	case sendErr == nil && res.OK():
		if err := persist(rec, func(ctx context.Context) error {
			return svc.RecordWebhookAttempt(ctx, id, workflow.WebhookAttempt{Generation: send.Generation, StatusCode: res.StatusCode})
		}); err != nil {
			return err
		}
		w.deps.Metrics.webhook(webhookDelivered)
		return nil
	case sendErr == nil && res.StatusCode == http.StatusGone:
		if err := persist(rec, func(ctx context.Context) error { return svc.WebhookGone(ctx, id) }); err != nil {
			return err
		}
		w.deps.Metrics.webhook(webhookDisabled)
		w.cfg.Logger.WarnContext(ctx, "webhook subscription disabled: its receiver answered 410 Gone",
			"webhook_id", send.SubscriptionID, "delivery_id", id)
		return river.JobCancel(fmt.Errorf("webhook delivery %d: HTTP 410, subscription %d disabled", id, send.SubscriptionID))
	}
	a := workflow.WebhookAttempt{Generation: send.Generation, StatusCode: res.StatusCode}
	if sendErr != nil {
		a.Error = sendErr.Error()
	} else {
		a.Error = fmt.Sprintf("HTTP %d", res.StatusCode)
		if res.Snippet != "" {
			a.Error += ": " + res.Snippet
		}
	}
	return w.failed(rec, job, a)
}

// failed records a failed attempt: the delivery stays pending and the job
// returns an error for River to retry it, or, once the attempts are spent,
// the delivery fails. The job's error names the delivery and the status,
// never the URL nor the receiver's answer.
func (w *DeliverWebhookWorker) failed(ctx context.Context, job *river.Job[DeliverWebhookArgs], a workflow.WebhookAttempt) error {
	id := job.Args.DeliveryID
	a.Final = job.Attempt >= job.MaxAttempts
	if err := w.deps.Service.RecordWebhookAttempt(ctx, id, a); err != nil {
		return err
	}
	outcome := webhookRetry
	if a.Final {
		outcome = webhookFailed
	}
	w.deps.Metrics.webhook(outcome)
	if a.StatusCode != 0 {
		return fmt.Errorf("webhook delivery %d: HTTP %d", id, a.StatusCode)
	}
	return fmt.Errorf("webhook delivery %d: no answer", id)
}

// persist runs a write that must not be lost once a receiver has
// answered (a delivery recorded as pending would be sent again): it is
// retried for up to persistPatience, through a database restart.
func persist(ctx context.Context, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, persistPatience)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := write(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// persistPatience bounds how long persist keeps trying.
const persistPatience = 30 * time.Second

// webhookSlots bounds the deliveries in flight to each subscription in
// this process. The map keeps an entry per subscription ever delivered to
// by this process: a few dozen small structs.
type webhookSlots struct {
	max  int
	mu   sync.Mutex
	subs map[int64]*subSlots
}

type subSlots struct {
	sem chan struct{}
	// lastDone is when an attempt to this subscription last ended (Unix
	// nanoseconds): none for a second while all slots are taken means the
	// receiver is slow.
	lastDone atomic.Int64
}

// slotWait is how long a delivery waits for a slot of a receiver that
// answers, before it snoozes.
const slotWait = time.Second

// acquire takes a slot of subscription sub. ok is false when none came
// free within slotWait (or at once, if the receiver is slow: slow is then
// true).
func (s *webhookSlots) acquire(ctx context.Context, sub int64) (release func(), ok, slow bool) {
	s.mu.Lock()
	ss := s.subs[sub]
	if ss == nil {
		ss = &subSlots{sem: make(chan struct{}, s.max)}
		ss.lastDone.Store(time.Now().UnixNano())
		s.subs[sub] = ss
	}
	s.mu.Unlock()
	release = func() {
		ss.lastDone.Store(time.Now().UnixNano())
		<-ss.sem
	}
	select {
	case ss.sem <- struct{}{}:
		return release, true, false
	default:
	}
	if time.Since(time.Unix(0, ss.lastDone.Load())) > slotWait {
		return nil, false, true
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case ss.sem <- struct{}{}:
		return release, true, false
	case <-t.C:
		return nil, false, false
	case <-ctx.Done():
		return nil, false, false
	}
}
