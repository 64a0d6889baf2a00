package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// TestEmailQueue: bulk kinds go to QueueEmailBulk, every other kind to
// QueueEmail, with the e-mails' attempts.
func TestEmailQueue(t *testing.T) {
	t.Parallel()
	cfg := Config{EmailMaxAttempts: 7}
	for kind, want := range map[string]string{
		workflow.MailEnInstruction: QueueEmail, workflow.MailEnConstruction: QueueEmail,
		workflow.MailAccepte: QueueEmail, workflow.MailRefuse: QueueEmail,
		workflow.MailMessageUsager: QueueEmail, workflow.MailNotification: QueueEmail,
		workflow.MailDigest: QueueEmailBulk, workflow.MailStaleInstructeur: QueueEmailBulk, workflow.MailStaleUsager: QueueEmailBulk,
		workflow.MailExpirationUsager: QueueEmailBulk,
	} {
		p := emailJob(42, kind, cfg)
		if p.InsertOpts.Queue != want || p.InsertOpts.MaxAttempts != 7 || p.Args.(SendEmailArgs).DeliveryID != 42 {
			t.Errorf("%s: %+v %+v, want queue %s", kind, p.Args, p.InsertOpts, want)
		}
	}
}

// TestBulkWorkers: the bulk queue has its own workers, no more than the
// rate needs.
func TestBulkWorkers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate float64
		want int
	}{{0, 5}, {0.05, 1}, {2.5, 3}, {10, 5}, {500, 5}} {
		c := Config{BulkRate: tc.rate}
		c.Defaults()
		if got := bulkWorkers(c); got != tc.want {
			t.Errorf("rate %v: %d workers, want %d", tc.rate, got, tc.want)
		}
	}
}

// TestPacer: the pacer lets one message go at once, then one every
// 1/rate; a turn further than maxPaceWait (or half what the job has left)
// is a snooze until it; an interrupted wait gives its turn back.
func TestPacer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := (*pacer)(nil).wait(ctx); err != nil {
		t.Fatalf("no rate: %v", err)
	}

	t.Run("Spaced", func(t *testing.T) {
		t.Parallel()
		p := newPacer(20)
		start := time.Now()
		for range 11 {
			if err := p.wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// The eleventh turn is ten intervals after the first: a lower bound
		// the limiter guarantees, however slow the machine.
		if d := time.Since(start); d < 500*time.Millisecond-time.Millisecond {
			t.Fatalf("11 messages at 20 a second in %s", d)
		}
	})
	t.Run("Snooze", func(t *testing.T) {
		t.Parallel()
		p := newPacer(0.1) // one every 10 s
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		var snooze *river.JobSnoozeError
		if err := p.wait(ctx); !errors.As(err, &snooze) || snooze.Duration < 9*time.Second {
			t.Fatalf("second message: %v, want a snooze of about 10 s", err)
		}
		// The snoozed turn was given back: the next one is no further.
		if err := p.wait(ctx); !errors.As(err, &snooze) || snooze.Duration > 10*time.Second {
			t.Fatalf("third message: %v", err)
		}
	})
	t.Run("ShortJob", func(t *testing.T) {
		t.Parallel()
		p := newPacer(1)
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		// A second away, but the job has 1.5 s left: snoozed, not timed out.
		short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		var snooze *river.JobSnoozeError
		if err := p.wait(short); !errors.As(err, &snooze) {
			t.Fatalf("%v, want a snooze", err)
		}
	})
	t.Run("Interrupted", func(t *testing.T) {
		t.Parallel()
		p := newPacer(0.5) // one every 2 s
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		stop, cancel := context.WithCancel(ctx)
		cancel()
		if err := p.wait(stop); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want the context's error", err)
		}
		// The cancelled turn was given back: the next is about 2 s away, not 4.
		r := p.lim.Reserve()
		defer r.Cancel()
		if d := r.Delay(); d > 2*time.Second {
			t.Fatalf("next turn in %s", d)
		}
	})
}
