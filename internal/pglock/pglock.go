// Package pglock takes cluster-wide PostgreSQL advisory locks that hold
// behind a pooler in transaction mode (DATABASE_POOLER=transaction) as well
// as on a plain connection.
//
// A session lock (pg_advisory_lock) belongs to a server connection, which
// PgBouncer in transaction mode gives to other clients between
// transactions: the lock would stay with whoever gets that connection next,
// and the unlock would go to another one. A transaction lock
// (pg_advisory_xact_lock) taken in a transaction kept open for as long as
// the lock is held pins the server connection to its holder instead, and is
// released at the end of the transaction, or with the connection if the
// process dies. The transaction only holds the lock: it takes no snapshot
// (VACUUM and CREATE INDEX CONCURRENTLY do not wait for it) and writes
// nothing.
package pglock

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lock waits for the lock key and holds it, on a connection of pool, until
// release is called.
func Lock(ctx context.Context, pool *pgxpool.Pool, key int64) (release func(), err error) {
	release, ok, err := lock(ctx, pool, `SELECT true FROM pg_advisory_xact_lock($1)`, key)
	if err == nil && !ok {
		err = fmt.Errorf("advisory lock %#x: not taken", key)
	}
	return release, err
}

// TryLock takes the lock key if no one holds it, and then holds it until
// release is called; ok is false when another session holds it.
func TryLock(ctx context.Context, pool *pgxpool.Pool, key int64) (release func(), ok bool, err error) {
	return lock(ctx, pool, `SELECT pg_try_advisory_xact_lock($1)`, key)
}

func lock(ctx context.Context, pool *pgxpool.Pool, query string, key int64) (release func(), ok bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("advisory lock %#x: %w", key, err)
	}
	rollback := func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	// The simple protocol: with the extended one, the statement's portal
	// would live on until the next one in the transaction, and with it the
	// snapshot it ran with, whose xmin CREATE INDEX CONCURRENTLY (in a
	// migration run under this lock) waits for, forever, and VACUUM
	// respects for as long as the lock is held.
	if err := tx.QueryRow(ctx, query, pgx.QueryExecModeSimpleProtocol, key).Scan(&ok); err != nil {
		rollback()
		return nil, false, fmt.Errorf("advisory lock %#x: %w", key, err)
	}
	if !ok {
		rollback()
		return nil, false, nil
	}
	return rollback, true, nil
}
