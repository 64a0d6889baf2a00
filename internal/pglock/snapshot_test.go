package pglock_test

import (
	"context"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/pglock"
)

// TestLockHoldsNoSnapshot: the transaction that holds a lock pins no xmin,
// so that CREATE INDEX CONCURRENTLY (migration 00009 runs some under
// migrate's lock) finishes while it is held.
func TestLockHoldsNoSnapshot(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	release, err := pglock.Lock(ctx, pool, 0x736e6170)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var pinned int
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle in transaction' AND backend_xmin IS NOT NULL`).Scan(&pinned); err != nil {
		t.Fatal(err)
	}
	if pinned != 0 {
		t.Errorf("%d idle transactions pin an xmin while the lock is held", pinned)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE t (a int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE INDEX CONCURRENTLY t_a ON t (a)`); err != nil {
		t.Fatalf("CREATE INDEX CONCURRENTLY under the lock: %v", err)
	}
}
