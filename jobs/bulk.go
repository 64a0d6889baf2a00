package jobs

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/aptflow/aptflow/workflow"
)

// emailQueue is the queue of the e-mails of a kind: bulk mail
// (workflow.IsBulkMail) waits on QueueEmailBulk, beside the e-mails people
// wait for on QueueEmail, each queue with its own workers. River fetches
// the jobs of one queue in the order they were queued: with one queue, an
// acceptance queued after a stale scan's 46,000 reminders went out 213 s
// later (issue 19).
func emailQueue(kind string) string {
	if workflow.IsBulkMail(kind) {
		return QueueEmailBulk
	}
	return QueueEmail
}

// emailJob is the send_email job of the delivery id, of kind kind, on its
// queue: every send_email job is inserted through it.
func emailJob(id int64, kind string, cfg Config) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       SendEmailArgs{DeliveryID: id},
		InsertOpts: &river.InsertOpts{Queue: emailQueue(kind), MaxAttempts: cfg.EmailMaxAttempts},
	}
}

// bulkWorkers is how many workers the bulk queue runs: BulkEmailWorkers,
// or, under a rate of fewer messages a second, that many (at least one).
// Workers beyond the rate would only wait for their turn, each holding a
// job that another process could have sent.
func bulkWorkers(cfg Config) int {
	if cfg.BulkRate <= 0 {
		return cfg.BulkEmailWorkers
	}
	return max(1, min(cfg.BulkEmailWorkers, int(math.Ceil(cfg.BulkRate))))
}

// maxPaceWait is the longest a bulk e-mail waits for its turn inside its
// job (or half what is left of JOB_TIMEOUT, if less): beyond it, the job is
// snoozed until its turn, which spends no attempt.
const maxPaceWait = 5 * time.Second

// pacer spaces the bulk e-mails a process sends: at most perSecond a
// second, evenly, without bursts, so that a scan does not hit the SMTP
// provider's rate limit. A nil pacer does not wait.
type pacer struct {
	lim *rate.Limiter
}

// newPacer returns a pacer of perSecond messages a second, or nil for no
// limit (perSecond <= 0).
func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 {
		return nil
	}
	return &pacer{lim: rate.NewLimiter(rate.Limit(perSecond), 1)}
}

// wait returns when the next message may go, or a snooze error for River
// when that is more than maxPaceWait away. Interrupted by ctx, it gives its
// turn back and returns ctx's error, which River treats as an interrupted
// run.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	r := p.lim.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	longest := maxPaceWait
	if deadline, ok := ctx.Deadline(); ok {
		longest = min(longest, time.Until(deadline)/2) // JOB_TIMEOUT may be short
	}
	if d > longest {
		r.Cancel()
		return river.JobSnooze(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return fmt.Errorf("waiting for the bulk e-mail rate: %w", ctx.Err())
	}
}
