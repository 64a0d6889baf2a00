package pglock_test

import (
	"context"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/pglock"
)

// TestLock: one holder at a time; TryLock says when another holds it, Lock
// waits for its release, and a released lock is free again.
func TestLock(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	const key = 0x74657374

	release, ok, err := pglock.TryLock(ctx, pool, key)
	if err != nil || !ok {
		t.Fatalf("TryLock of a free lock: %v %v", ok, err)
	}
	if _, ok, err := pglock.TryLock(ctx, pool, key); err != nil || ok {
		t.Fatalf("TryLock of a held lock: %v %v", ok, err)
	}
	got := make(chan func())
	go func() {
		r, err := pglock.Lock(ctx, pool, key)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("Lock returned while another held the lock")
	case <-time.After(200 * time.Millisecond):
	}
	release()
	var second func()
	select {
	case second = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("Lock still waits after the release")
	}
	if _, ok, _ := pglock.TryLock(ctx, pool, key); ok {
		t.Fatal("TryLock took a lock that Lock holds")
	}
	second()
	again, ok, err := pglock.TryLock(ctx, pool, key)
	if err != nil || !ok {
		t.Fatalf("TryLock after both released: %v %v", ok, err)
	}
	again()
	// Canceled while waiting: an error, not a lock.
	hold, _, _ := pglock.TryLock(ctx, pool, key)
	defer hold()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := pglock.Lock(cctx, pool, key); err == nil {
		t.Fatal("Lock returned without the lock nor an error")
	}
}
