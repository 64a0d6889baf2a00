package dbtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/migrations"
)

// DefaultAdminURL is the server used when TEST_DATABASE_URL is not set: the
// local PostgreSQL of a developer machine or CI, with trust authentication.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MaxConns is the size of the pools New returns: room for a River client (its
// producers, notifier and workers) and the test's own queries at once,
// without letting many parallel tests exhaust the server's max_connections.
const MaxConns = 20

const (
	// templateLockKey serialises building the template across test
	// processes. It differs from the migrations package's own lock key.
	templateLockKey int64 = 0x61707464 // "aptd"

	// staleAfter is the age after which a leftover test database is
	// dropped: far longer than any test run (`make test` times out at 8m).
	staleAfter = time.Hour

	// objectInUse is SQLSTATE 55006, returned by CREATE DATABASE while
	// another session is still connected to the template.
	objectInUse = "55006"
)

// server is the process-wide state: the admin pool and the template name.
type server struct {
	adminURL string
	admin    *pgxpool.Pool
	template string
}

var (
	// setup runs once per test process; its error is kept, so that every
	// test fails with the same message when the server is unreachable.
	setup   = sync.OnceValues(connect)
	counter atomic.Int64
)

// New returns a pool on a fresh database, migrated with migrations.Up, that
// no other test sees. The pool is closed and the database dropped when the
// test ends. It fails the test, never skips it, if PostgreSQL is unreachable.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	connString := URL(t)
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		t.Fatalf("dbtest: parse connection string: %v", err)
	}
	cfg.MaxConns = MaxConns
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("dbtest: open pool: %v", err)
	}
	// Registered after URL's cleanup, so it runs first: the pool's
	// connections are gone before the database is dropped.
	t.Cleanup(pool.Close)
	return pool
}

// URL returns the connection string of a fresh migrated database, for tests
// that need a string rather than a pool (to start the aptflow binary, say).
// The database is dropped when the test ends, its connections terminated.
func URL(t testing.TB) string {
	t.Helper()
	return databaseFor(t, Create)
}

// EmptyURL returns the connection string of a fresh database with nothing
// in it, not even aptflow's migrations: for tests that build a database the
// way an older release left it and upgrade it. It is dropped when the test
// ends, like URL's.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return databaseFor(t, func() (string, func() error, error) { return create(false) })
}

// databaseFor creates a database with create and drops it when t ends.
func databaseFor(t testing.TB, create func() (string, func() error, error)) string {
	t.Helper()
	connString, drop, err := create()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("TEST_DATABASE_KEEP") == "1" {
			t.Logf("dbtest: kept the database of this failed test: %s", connString)
			return
		}
		if err := drop(); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	return connString
}

// Create is URL for code that has no test to clean up after: a TestMain,
// or the examples it runs. It returns the connection string of a fresh
// migrated database and the function that drops it.
func Create() (connString string, drop func() error, err error) { return create(true) }

// create makes a database named so that dropStale recognises it: a clone of
// the migrated template, or an empty one.
func create(migrated bool) (connString string, drop func() error, err error) {
	s, err := setup()
	if err != nil {
		return "", nil, err
	}
	template := "template0"
	if migrated {
		template = s.template
	}
	name := fmt.Sprintf("aptflow_test_%d_%d_%d_%s", time.Now().Unix(), os.Getpid(), counter.Add(1), randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createDatabase(ctx, s.admin, name, template); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	return harness.WithDatabase(s.adminURL, name), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE terminates the sessions still connected (a River client
		// the test forgot to stop, a binary it started).
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}, nil
}

// connect opens the admin pool, makes sure the template of the current
// schema exists, and drops databases left behind by killed test processes.
func connect() (*server, error) {
	adminURL := cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultAdminURL)
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("TEST_DATABASE_URL is not a valid connection string: %w", err)
	}
	cfg.MaxConns = 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pingCtx, cancelPing := context.WithTimeout(ctx, 10*time.Second)
	defer cancelPing()
	admin, err := pgxpool.NewWithConfig(pingCtx, cfg)
	if err == nil {
		err = admin.Ping(pingCtx)
	}
	if err != nil {
		source := "the default; set TEST_DATABASE_URL to use another"
		if os.Getenv("TEST_DATABASE_URL") != "" {
			source = "from TEST_DATABASE_URL"
		}
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s:%d as %q (%s): %w\n"+
			"\tRun the tests with `make test`: it finds or starts a PostgreSQL (scripts/ensure-postgres.sh).\n"+
			"\tOr start one yourself, e.g. `docker compose up -d postgres`, and set\n"+
			"\tTEST_DATABASE_URL=postgres://aptflow:aptflow@127.0.0.1:5432/aptflow?sslmode=disable",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, source, err)
	}

	hash, err := schemaHash()
	if err != nil {
		admin.Close()
		return nil, err
	}
	s := &server{adminURL: adminURL, admin: admin, template: "aptflow_tmpl_" + hash}
	if err := s.ensureTemplate(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("template database %s: %w", s.template, err)
	}
	s.dropStale(ctx)
	return s, nil
}

// ensureTemplate builds the template database unless another process has.
// A template counts as built once it is marked IS_TEMPLATE, which is done
// last: one left half-migrated by a killed process is dropped and rebuilt.
func (s *server) ensureTemplate(ctx context.Context) error {
	// A dedicated connection, since the advisory lock belongs to the
	// session; closing it releases the lock whatever happens.
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("lock: %w", err)
	}

	var isTemplate bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", s.template).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return nil
	case err == nil:
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident(s.template)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop unfinished template: %w", err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}

	// template0 and an explicit UTF8: tests see the encoding production
	// has, whatever the cluster's default (SQL_ASCII under a C locale).
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(s.template)+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := migrate(ctx, harness.WithDatabase(s.adminURL, s.template)); err != nil {
		return err
	}
	// No connections from now on: a session on the template (someone's
	// psql) would make every CREATE DATABASE ... TEMPLATE fail.
	_, err = conn.Exec(ctx, "ALTER DATABASE "+ident(s.template)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	return err
}

func migrate(ctx context.Context, connString string) error {
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		return err
	}
	return nil
}

// createDatabase clones the template, retrying while the server still counts
// a session on it (a process that has just built it and closed its pool).
func createDatabase(ctx context.Context, admin *pgxpool.Pool, name, template string) error {
	query := "CREATE DATABASE " + ident(name) + " TEMPLATE " + ident(template)
	delay := 20 * time.Millisecond
	for {
		_, err := admin.Exec(ctx, query)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != objectInUse {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// dropStale drops the test databases of processes that could not clean up
// after themselves. It is best effort: a failure here must not fail a test.
func (s *server) dropStale(ctx context.Context) {
	rows, err := s.admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'aptflow\_test\_%'`)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		fields := strings.Split(name, "_")
		if len(fields) < 3 {
			continue
		}
		created, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || time.Since(time.Unix(created, 0)) < staleAfter {
			continue
		}
		_, _ = s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
	}
}

// schemaHash names the template after everything migrations.Up applies:
// the files of the migrations package (SQL and the Go that runs it) and the
// migrations of the River version in go.mod.
func schemaHash() (string, error) {
	dir, err := migrationsDir()
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read migrations: %w", err)
	}
	h := sha256.New()
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, "_test.go") ||
			!(strings.HasSuffix(name, ".sql") || strings.HasSuffix(name, ".go")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("read migrations: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{})
	if err != nil {
		return "", fmt.Errorf("river migrations: %w", err)
	}
	for _, m := range migrator.AllVersions() {
		fmt.Fprintf(h, "river %d %d\n", m.Version, len(m.SQLUp))
		io.WriteString(h, m.SQLUp)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// migrationsDir finds the migrations package's source: next to this file's
// when it was compiled, else (a -trimpath build) above the working directory,
// which go test sets to the package's directory.
func migrationsDir() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "migrations"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, "migrations"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "migrations.go")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("cannot find the migrations directory: run the tests from inside the aptflow module")
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
