package dbtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// querier is what a pool and a connection have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func TestNew(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := dbtest.New(t), dbtest.New(t)

	if nameA, nameB := currentDatabase(t, a), currentDatabase(t, b); nameA == nameB {
		t.Fatalf("both pools are on database %s", nameA)
	}
	for _, pool := range []*pgxpool.Pool{a, b} {
		requireSchema(t, pool)
		if got := pool.Config().MaxConns; got != dbtest.MaxConns {
			t.Errorf("MaxConns = %d, want %d", got, dbtest.MaxConns)
		}
	}

	// A row written in one database is not seen from the other.
	if _, err := a.Exec(ctx, `INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
		VALUES ('APT étudiants', 'Préfecture du Rhône', '18 rue de Bonnel, 69003 Lyon', 30, 20)`); err != nil {
		t.Fatal(err)
	}
	for pool, want := range map[*pgxpool.Pool]int{a: 1, b: 0} {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM procedures").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d procedures, want %d", currentDatabase(t, pool), n, want)
		}
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	requireSchema(t, conn)

	// Names like « Élodie Dupré » must survive the database: UTF8 it is.
	var encoding, name string
	if err := conn.QueryRow(ctx, "SELECT pg_encoding_to_char(encoding), $1::text FROM pg_database WHERE datname = current_database()", "Élodie Dupré").Scan(&encoding, &name); err != nil {
		t.Fatal(err)
	}
	if encoding != "UTF8" || name != "Élodie Dupré" {
		t.Errorf("encoding %s, round trip %q", encoding, name)
	}
}

// TestCleanup checks that a test's database is gone once the test is over.
func TestCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("Inner", func(t *testing.T) {
		pool := dbtest.New(t)
		name = currentDatabase(t, pool)
	})
	// pg_database is shared by all databases: any one will do to look.
	var n int
	if err := dbtest.New(t).QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test", name)
	}
}

// TestParallel runs many tests at once, as packages using River will.
func TestParallel(t *testing.T) {
	t.Parallel()
	for i := range 12 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			requireSchema(t, dbtest.New(t))
		})
	}
}

// BenchmarkNew measures creating a database from the template and opening a
// pool on it. The databases are dropped at the end, outside the timing.
func BenchmarkNew(b *testing.B) {
	dbtest.New(b) // the template, built once per process
	for b.Loop() {
		dbtest.New(b)
	}
}

func currentDatabase(t *testing.T, q querier) string {
	t.Helper()
	var name string
	if err := q.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// requireSchema checks one table of aptflow's and one of River's.
func requireSchema(t *testing.T, q querier) {
	t.Helper()
	for _, table := range []string{"dossiers", "river_job"} {
		var found bool
		if err := q.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("table %s missing", table)
		}
	}
}
