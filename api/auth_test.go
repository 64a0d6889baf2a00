package api

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// countingTracer counts the queries sent to the database.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *countingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *countingTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *countingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestTokenFreshness holds the revocation bound with a clock of its own: a
// token is checked against the database once, then from memory with no
// query at all while the generation was read less than tokenFreshFor ago;
// at tokenFreshFor, no request is served before a new read, which sees a
// revocation (or any change of a token) and forgets what it knew.
func TestTokenFreshness(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	tracer := &countingTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tok, err := NewToken(t.Context(), pool, TokenOptions{Name: "t", Scope: ScopeLecture})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := newTokenAuth(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.now = clock
	auth := func() error {
		r := httptest.NewRequest("GET", "/v1/dossiers/1", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := a.authenticate(r)
		return err
	}
	// waitReads waits for a read started in the background.
	waitReads := func() {
		a.mu.Lock()
		done := a.reading
		a.mu.Unlock()
		if done != nil {
			<-done
		}
	}

	if err := auth(); err != nil {
		t.Fatal(err)
	}
	before := tracer.n.Load()
	for i := 0; i < 100; i++ {
		if err := auth(); err != nil {
			t.Fatal(err)
		}
	}
	if n := tracer.n.Load() - before; n != 0 {
		t.Errorf("100 requests within the fresh window cost %d queries, want 0", n)
	}

	if _, err := pool.Exec(t.Context(), `UPDATE api_tokens SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	// Within the window the revocation is not seen yet: that window is the
	// bound DESIGN.md allows.
	advance(tokenRefreshAfter - time.Millisecond)
	if err := auth(); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	// A second after the last read (DESIGN.md allows 2), the request waits
	// for a read and is refused.
	advance(time.Second - (tokenRefreshAfter - time.Millisecond))
	if err := auth(); err != errTokenRevoked {
		t.Fatalf("a second after the last read: %v, want %v", err, errTokenRevoked)
	}

	t.Run("ReadAheadUnderLoad", func(t *testing.T) {
		tok2, err := NewToken(t.Context(), pool, TokenOptions{Name: "t2"})
		if err != nil {
			t.Fatal(err)
		}
		tok = tok2
		if err := auth(); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), `UPDATE api_tokens SET expires_at = now() WHERE name = 't2'`); err != nil {
			t.Fatal(err)
		}
		// Past tokenRefreshAfter a request is served at once and starts a
		// read; the read sees the change; the next request is refused.
		advance(tokenRefreshAfter + time.Millisecond)
		if err := auth(); err != nil {
			t.Fatalf("read ahead: %v", err)
		}
		waitReads()
		if err := auth(); err != errTokenExpired {
			t.Fatalf("after the read: %v, want %v", err, errTokenExpired)
		}
	})

	t.Run("LastUsedOncePerMinute", func(t *testing.T) {
		var id int64
		tok3, err := NewToken(t.Context(), pool, TokenOptions{Name: "t3"})
		if err != nil {
			t.Fatal(err)
		}
		tok = tok3
		if err := auth(); err != nil {
			t.Fatal(err)
		}
		var first time.Time
		if err := pool.QueryRow(t.Context(), `SELECT id, last_used_at FROM api_tokens WHERE name = 't3'`).Scan(&id, &first); err != nil {
			t.Fatal(err)
		}
		for step := 0; step < 4; step++ {
			advance(tokenRefreshAfter + time.Millisecond)
			if err := auth(); err != nil {
				t.Fatal(err)
			}
			waitReads()
		}
		var still time.Time
		if err := pool.QueryRow(t.Context(), `SELECT last_used_at FROM api_tokens WHERE id = $1`, id).Scan(&still); err != nil || !still.Equal(first) {
			t.Fatalf("last_used_at moved within a minute: %s → %s (%v)", first, still, err)
		}
		advance(lastUsedEvery)
		if err := auth(); err != nil {
			t.Fatal(err)
		}
		waitReads()
		advance(tokenRefreshAfter + time.Millisecond)
		if err := auth(); err != nil {
			t.Fatal(err)
		}
		waitReads()
		var later time.Time
		if err := pool.QueryRow(t.Context(), `SELECT last_used_at FROM api_tokens WHERE id = $1`, id).Scan(&later); err != nil || !later.After(first.Add(lastUsedEvery-time.Second)) {
			t.Fatalf("last_used_at not written after a minute: %s → %s (%v)", first, later, err)
		}
	})
}
