package jobs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/jobs"
)

// statements records the SQL a pool sends.
type statements struct {
	mu  sync.Mutex
	sql []string
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sql = append(s.sql, data.SQL)
	return ctx
}

func (*statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (s *statements) with(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, q := range s.sql {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), prefix) {
			out = append(out, q)
		}
	}
	return out
}

type nopArgs struct{}

func (nopArgs) Kind() string { return "nop" }

type nopWorker struct{ river.WorkerDefaults[nopArgs] }

func (nopWorker) Work(context.Context, *river.Job[nopArgs]) error { return nil }

// TestPollOnly: with Config.PollOnly (DATABASE_POOLER=transaction), a
// working River client never LISTENs, which a pooler in transaction mode
// would not carry; it still works its queues, by polling. Without it, the
// same client LISTENs at start.
func TestPollOnly(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	for _, pollOnly := range []bool{true, false} {
		rec := &statements{}
		pc, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		pc.MaxConns = 8
		pc.ConnConfig.Tracer = rec
		pool, err := pgxpool.NewWithConfig(context.Background(), pc)
		if err != nil {
			t.Fatal(err)
		}
		workers := river.NewWorkers()
		river.AddWorker(workers, nopWorker{})
		client, err := jobs.NewClient(pool, jobs.Config{PollOnly: pollOnly, FetchPollInterval: 50 * time.Millisecond}, workers)
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := client.Subscribe(river.EventKindJobCompleted)
		if err := client.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Insert(context.Background(), nopArgs{}, &river.InsertOpts{Queue: jobs.QueueMaintenance}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("PollOnly %v: the job never ran", pollOnly)
		}
		cancel()
		ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		if err := client.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		stop()
		pool.Close()
		listens := rec.with("LISTEN")
		if pollOnly && len(listens) > 0 {
			t.Errorf("PollOnly: the client LISTENed: %q", listens)
		}
		if !pollOnly && len(listens) == 0 {
			t.Errorf("without PollOnly, no LISTEN was seen: the check sees nothing")
		}
	}
}
