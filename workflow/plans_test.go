package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/explain"
	"github.com/aptflow/aptflow/workflow"
)

// explainingService returns a Service reading url through connections that
// explain every statement into the returned Log.
func explainingService(t *testing.T, url string) (*workflow.Service, *explain.Log) {
	t.Helper()
	log := &explain.Log{}
	pool, err := log.Open(t.Context(), url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return workflow.NewService(pool, nil, workflow.Options{PublicURL: "http://aptflow.test"}), log
}

// TestTabPlans guards the plans of the reads of the API without timing
// them: with 120,000 dossiers in a big procedure, seeded by SQL as a real
// one ages (the oldest decided, then those en instruction, followed, then
// those en construction), every tab of an instructeur of a small procedure
// of twenty, its dossiers and its verification page read a few buffers per
// row they return; so do the big procedure's tabs. A plan that walks a
// table, or every row of the procedure, reads thousands.
func TestTabPlans(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()

	// The small procedure, through the API: 20 dossiers, 8 en construction
	// (one followed by hand), 6 en instruction, 4 accepted, 2 refused.
	small := s.Procedure()
	inst := s.Instructeur(small, "Camille Martin")
	var ids []int64
	for i := range 20 {
		id, _ := s.Dossier(small)
		ids = append(ids, id)
		if i < 8 {
			continue
		}
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
		switch {
		case i >= 18:
			s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "refuser", "instructeur": inst, "motivation": "Pièces manquantes."})
		case i >= 14:
			s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": inst})
		}
	}
	s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", ids[0], inst), nil)

	// The big procedure, by SQL (the triggers that count follows are off
	// while it loads: the counts are written with the rows).
	// Three instructeurs share the big procedure: 3,200 open follows each,
	// which a plan that filters them after the fact reads all of.
	const big, bigInstructeurs = 120_000, 3
	var bigProc int64
	if err := s.Pool.QueryRow(ctx, `
		INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
		VALUES ('APT', 'Préfecture de Police', 'Paris', 30, 20) RETURNING id`).Scan(&bigProc); err != nil {
		t.Fatal(err)
	}
	bigInst := func(i int) string { return fmt.Sprintf("big-%d@prefecture.test", i) }
	for i := range bigInstructeurs {
		s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", bigProc), map[string]any{"email": bigInst(i), "nom": "Dominique"})
	}
	// One instructeur of both.
	s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", bigProc), map[string]any{"email": inst, "nom": "Camille Martin"})
	both := bigInst(bigInstructeurs)
	s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", small), map[string]any{"email": both, "nom": "Alix"})
	s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", bigProc), map[string]any{"email": both, "nom": "Alix"})
	if err := seedBigProcedure(ctx, s.Pool, bigProc, big, bigInstructeurs); err != nil {
		t.Fatal(err)
	}
	var code string
	if err := s.Pool.QueryRow(ctx, `SELECT code FROM attestations WHERE dossier_id = $1`, ids[14]).Scan(&code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE attestations SET pdf = '%PDF-', sha256 = 'x' WHERE dossier_id = $1`, ids[14]); err != nil {
		t.Fatal(err)
	}

	svc, plans := explainingService(t, s.Pool.Config().ConnString())
	// Each read runs seven times: from the sixth, PostgreSQL may plan a
	// prepared statement once for all parameters, which must be keyed too.
	const runs = 7
	check := func(t *testing.T, rows int, read func() (int, error)) {
		t.Helper()
		if _, err := plans.Take(); err != nil {
			t.Fatal(err)
		}
		for range runs {
			n, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if n != rows {
				t.Fatalf("%d rows, want %d", n, rows)
			}
		}
		got, err := plans.Take()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatal("no plan explained")
		}
		// A page reads each of its rows (a few index pages and one heap
		// page) and a few pages more: 8 a row and 40 is twice what the
		// plans read (docs/PERFORMANCE.md).
		budget := int64(40 + 8*rows)
		var max explain.Plan
		var total int64
		for _, p := range got {
			total += p.Buffers
			if p.Buffers > max.Buffers {
				max = p
			}
		}
		perRun := total / runs
		t.Logf("%d buffers a run for %d rows", perRun, rows)
		if perRun > budget {
			t.Errorf("%d buffers a run for %d rows, more than %d; the costliest statement (%d buffers):\n%s\n%s",
				perRun, rows, budget, max.Buffers, max.Query, max.Text)
		}
	}
	tab := func(email, name string, after int64, rows int) {
		t.Run(fmt.Sprintf("%s/%s/after%d", strings.Split(email, "@")[0], name, after), func(t *testing.T) {
			check(t, rows, func() (int, error) {
				l, err := svc.ListForInstructeur(ctx, email, workflow.ListFilter{Tab: name, Page: workflow.Page{AfterID: after}})
				return len(l), err
			})
		})
	}
	// The small procedure's instructeur, who is on the big one too: its
	// tabs merge both.
	tab(inst, workflow.TabASuivre, 0, 100)
	tab(inst, workflow.TabSuivis, 0, 7)
	tab(inst, workflow.TabTraites, 0, 100)
	tab(inst, workflow.TabTous, 0, 100)
	tab(inst, workflow.TabExpirant, 0, 100)
	// An instructeur of the small procedure alone.
	solo := s.Instructeur(small, "Sacha")
	tab(solo, workflow.TabASuivre, 0, 7)
	tab(solo, workflow.TabSuivis, 0, 0)
	tab(solo, workflow.TabTraites, 0, 6)
	tab(solo, workflow.TabTous, 0, 20)
	tab(solo, workflow.TabExpirant, 0, 0)
	// The big procedure's: the first page, and one far into it.
	tab(bigInst(1), workflow.TabASuivre, 0, 100)
	tab(bigInst(1), workflow.TabSuivis, 0, 100)
	tab(bigInst(1), workflow.TabTraites, 0, 100)
	tab(bigInst(1), workflow.TabTous, 0, 100)
	tab(bigInst(1), workflow.TabExpirant, 0, 100)
	first := ids[len(ids)-1]
	tab(bigInst(1), workflow.TabASuivre, first+big*9/10, 100)
	tab(bigInst(1), workflow.TabSuivis, first+big*82/100, 100)
	tab(bigInst(1), workflow.TabTraites, first+big*4/10, 100)
	tab(bigInst(1), workflow.TabExpirant, first+big*32/100, 100)
	// The last 50 of the 9,000 expiring within the notice: the walk stops
	// at the first expiry after it, not at the end of the procedure.
	tab(bigInst(1), workflow.TabExpirant, first+big*375/1000-50, 50)

	// The webhooks' delivery logs: the big procedure's subscription holds
	// 100,000 deliveries, the small one's 20.
	subs := map[int64]int64{}
	for proc, n := range map[int64]int{bigProc: 100_000, small: 20} {
		var sub int64
		if err := s.Pool.QueryRow(ctx, `
			WITH sub AS (
				INSERT INTO webhook_subscriptions (procedure_id, url, secret_key_id, secret)
				VALUES ($1, 'https://upstream.example/hook', 'k', '\x00') RETURNING id
			), ev AS (
				INSERT INTO webhook_events (procedure_id, type, data, occurred_at)
				SELECT $1, 'dossier.state_changed', '{}', now() FROM generate_series(1, $2) RETURNING id
			), dl AS (
				INSERT INTO webhook_deliveries (event_id, subscription_id, status, created_at)
				SELECT ev.id, sub.id, CASE WHEN ev.id % 50 = 0 THEN 'failed' ELSE 'delivered' END, now() FROM ev, sub
			)
			SELECT id FROM sub`, proc, n).Scan(&sub); err != nil {
			t.Fatal(err)
		}
		subs[proc] = sub
	}
	if _, err := s.Pool.Exec(ctx, `ANALYZE webhook_subscriptions, webhook_events, webhook_deliveries`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		proc   int64
		status string
		rows   int
	}{{bigProc, "", 100}, {small, "", 20}, {small, workflow.WebhookFailed, 0}, {bigProc, workflow.WebhookFailed, 100}} {
		t.Run(fmt.Sprintf("ListWebhookDeliveries/%d/%s", c.proc, c.status), func(t *testing.T) {
			check(t, c.rows, func() (int, error) {
				l, err := svc.ListWebhookDeliveries(ctx, c.proc, subs[c.proc], workflow.WebhookDeliveryFilter{Status: c.status})
				return len(l), err
			})
		})
	}
	t.Run("ListWebhooks", func(t *testing.T) {
		check(t, 1, func() (int, error) {
			l, err := svc.ListWebhooks(ctx, small)
			return len(l), err
		})
	})

	// The deletion lists: the big procedure's tombstones, the small one's
	// (none).
	for _, p := range []struct {
		id   int64
		rows int
	}{{bigProc, 100}, {small, 0}} {
		t.Run(fmt.Sprintf("ListDeleted/%d", p.id), func(t *testing.T) {
			check(t, p.rows, func() (int, error) {
				l, err := svc.ListDeleted(ctx, p.id, workflow.DeletedFilter{})
				return len(l), err
			})
		})
	}

	t.Run("GetDossier", func(t *testing.T) {
		check(t, 1, func() (int, error) {
			_, err := svc.GetDossier(ctx, ids[14])
			return 1, err
		})
	})
	t.Run("VerifyAttestation", func(t *testing.T) {
		check(t, 1, func() (int, error) {
			_, err := svc.VerifyAttestation(ctx, code)
			return 1, err
		})
	})
}

// seedBigProcedure loads n dossiers into procedure proc as time leaves them:
// ids in creation order, the oldest 80 % decided, then 8 % en instruction,
// then 12 % en construction; the oldest 30 % purged (tombstones), the
// others expiring in id order, those of the next 30 days first; each live
// dossier that went into instruction followed by one of the procedure's
// first k instructeurs (big-I@...), in turn. It runs with the triggers off,
// and writes the columns they keep.
func seedBigProcedure(ctx context.Context, pool *pgxpool.Pool, proc int64, n, k int) error {
	dem, err := json.Marshal(apptest.Demandeur())
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SET LOCAL session_replication_role = replica`, nil},
		{`CREATE TEMP TABLE seed ON COMMIT DROP AS
			SELECT g, g <= $1 * 0.30 AS purged, CASE
				WHEN g <= $1 * 0.60 THEN 'accepte' WHEN g <= $1 * 0.75 THEN 'refuse'
				WHEN g <= $1 * 0.80 THEN 'sans_suite' WHEN g <= $1 * 0.88 THEN 'en_instruction'
				ELSE 'en_construction' END AS state
			FROM generate_series(1, $1::int) g`, []any{n}},
		{`INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, decided_at, followers,
				expires_at, deleted_at, deletion_reason)
			SELECT $1, state, CASE WHEN purged THEN '' ELSE 'u' || g || '@etudiant.test' END,
				CASE WHEN purged THEN '{}' ELSE $2::jsonb END,
				CASE WHEN state IN ('accepte', 'refuse', 'sans_suite') THEN now() END,
				CASE WHEN state = 'en_construction' OR purged THEN 0 ELSE 1 END,
				CASE WHEN state <> 'en_instruction' THEN now() + (g - $3 * 0.30) / $3 * interval '400 days' END,
				CASE WHEN purged THEN now() END, CASE WHEN purged THEN 'expire' END
			FROM seed ORDER BY g`, []any{proc, dem, n}},
		{`INSERT INTO follows (dossier_id, instructeur_id, dossier_ouvert, procedure_id)
			SELECT d.id, i.id, d.state = 'en_instruction', d.procedure_id
			FROM dossiers d
			JOIN instructeurs i ON i.email = 'big-' || (d.id % $2) || '@prefecture.test'
			WHERE d.procedure_id = $1 AND d.state <> 'en_construction' AND d.deleted_at IS NULL`, []any{proc, k}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `ANALYZE dossiers, follows, procedure_instructeurs, instructeurs`)
	return err
}
