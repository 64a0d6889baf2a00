package migrations_test

import (
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/migrations"
)

// TestLifecycleBackfill: migration 6 gives every dossier written before it
// its expiry, over more rows than one of its batches (5000) holds: 12
// months after the decision, or after the last activity en construction,
// and none en instruction. Then the trigger keeps it.
func TestLifecycleBackfill(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, dbtest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	// The schema as the release before the data lifecycle left it.
	before, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("."), goose.WithTableName("aptflow_schema_migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	const n = 12_001
	at := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(ctx, `
		WITH p AS (
			INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			VALUES ('APT', 'Préfecture', 'Lyon', 30, 20) RETURNING id
		)
		INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, last_activity_at, decided_at)
		SELECT p.id, (ARRAY['en_construction', 'en_instruction', 'accepte'])[i % 3 + 1], 'u' || i || '@etudiant.test', '{}',
			$1::timestamptz - i * interval '1 hour', CASE WHEN i % 3 = 2 THEN $1::timestamptz + i * interval '1 minute' END
		FROM p, generate_series(1, $2::int) i`, at, n); err != nil {
		t.Fatal(err)
	}

	if _, err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var wrong, instruction int
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE state <> 'en_instruction' AND expires_at IS DISTINCT FROM
				(coalesce(decided_at, last_activity_at) AT TIME ZONE 'Europe/Paris' + interval '1 year') AT TIME ZONE 'Europe/Paris'),
			count(*) FILTER (WHERE state = 'en_instruction' AND expires_at IS NULL)
		FROM dossiers`).Scan(&wrong, &instruction); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 || instruction != (n+2)/3 { // i % 3 = 1
		t.Errorf("after the backfill: %d dossiers with a wrong expiry, %d en instruction without one (want 0 and %d)", wrong, instruction, (n+2)/3)
	}
	// Then the trigger: 31 January + 1 month is the last day of February,
	// at the same hour in Paris.
	var feb time.Time
	if err := pool.QueryRow(ctx, `
		WITH p AS (
			INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max, conservation_mois)
			VALUES ('APT', 'Préfecture', 'Lyon', 30, 20, 1) RETURNING id
		)
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, last_activity_at)
		SELECT id, 'fevrier@etudiant.test', '{}', $1 FROM p RETURNING expires_at`, at).Scan(&feb); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC); !feb.Equal(want) {
		t.Errorf("31 January + 1 month = %v, want %v", feb, want)
	}
}
