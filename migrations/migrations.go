// Package migrations holds aptflow's numbered SQL migrations, embedded in the
// binary, and applies them together with River's own tables.
//
// Files are named NNNNN_what.sql and run by goose in order. Never edit a
// migration that has shipped: add a new one.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/aptflow/aptflow/internal/pglock"
)

//go:embed *.sql
var files embed.FS

// lockKey is the advisory lock that serialises concurrent `aptflow migrate`
// runs (several containers starting at once), so each migration runs once.
const lockKey = 0x61707466 // "aptf"

// Result says what Up did.
type Result struct {
	App   []int64 // aptflow migration versions applied by this run
	River []int   // River migration versions applied by this run
}

// Up applies every pending migration, River's first (aptflow's tables do not
// depend on them, but the workers do), then aptflow's. It is idempotent and
// safe to run from several processes at once.
func Up(ctx context.Context, pool *pgxpool.Pool) (Result, error) {
	var res Result
	// Held on a connection of its own while the others migrate, through a
	// pooler in transaction mode too (internal/pglock).
	unlock, err := pglock.Lock(ctx, pool, lockKey)
	if err != nil {
		return res, fmt.Errorf("migrate: lock: %w", err)
	}
	defer unlock()

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return res, fmt.Errorf("migrate river: %w", err)
	}
	rr, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range rr.Versions {
		res.River = append(res.River, v.Version)
	}

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	sub, err := fs.Sub(files, ".")
	if err != nil {
		return res, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithTableName("aptflow_schema_migrations"))
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		res.App = append(res.App, r.Source.Version)
	}
	return res, nil
}

// Pending reports whether some aptflow migration has not been applied, so a
// process can refuse to start on an old schema with a clear message.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithTableName("aptflow_schema_migrations"))
	if err != nil {
		return false, err
	}
	return provider.HasPending(ctx)
}
