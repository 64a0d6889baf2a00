package workflow_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// TestTransitionTx: a transition and its job commit together or not at all.
func TestTransitionTx(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	dem, _ := json.Marshal(apptest.Demandeur())

	run := func(t *testing.T, commit bool) int64 {
		tx, err := s.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		d, err := s.Service.CreateDossierTx(ctx, tx, workflow.DossierInput{ProcedureID: proc, UsagerEmail: "tx@etudiant.test", Demandeur: dem})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Service.TransitionTx(ctx, tx, d.ID, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst}); err != nil {
			t.Fatal(err)
		}
		job := rivertest.RequireInsertedTx[*riverpgxv5.Driver](ctx, t, tx, &jobs.SendEmailArgs{}, nil)
		if job.Args.DeliveryID == 0 || job.Queue != jobs.QueueEmail {
			t.Fatalf("job %+v", job)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return d.ID
	}
	count := func(t *testing.T, sql string, args ...any) int {
		var n int
		if err := s.Pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("RolledBack", func(t *testing.T) {
		id := run(t, false)
		if n := count(t, `SELECT count(*) FROM dossiers WHERE id = $1`, id); n != 0 {
			t.Fatal("dossier survived the rollback")
		}
		if n := count(t, `SELECT count(*) FROM river_job`); n != 0 {
			t.Fatalf("%d jobs after rollback", n)
		}
	})
	t.Run("Committed", func(t *testing.T) {
		id := run(t, true)
		rivertest.RequireInserted[*riverpgxv5.Driver](ctx, t, riverpgxv5.New(s.Pool), &jobs.SendEmailArgs{}, nil)
		if n := count(t, `SELECT count(*) FROM email_deliveries WHERE dossier_id = $1 AND status = 'pending'`, id); n != 1 {
			t.Fatalf("%d deliveries", n)
		}
	})
	t.Run("FailedTransitionEnqueuesNothing", func(t *testing.T) {
		err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			d, err := s.Service.CreateDossierTx(ctx, tx, workflow.DossierInput{ProcedureID: proc, UsagerEmail: "x@etudiant.test", Demandeur: dem})
			if err != nil {
				return err
			}
			_, err = s.Service.TransitionTx(ctx, tx, d.ID, workflow.Command{Event: workflow.Accepter, Instructeur: inst})
			if workflow.ErrorCode(err) != workflow.EInvalidTransition {
				t.Fatalf("accepter en construction: %v", err)
			}
			rivertest.RequireNotInsertedTx[*riverpgxv5.Driver](ctx, t, tx, &jobs.RenderAttestationArgs{}, nil)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestRepasserRestartsStaleClock: a dossier given back to the applicant is
// not stale for the time it spent in instruction.
func TestRepasserRestartsStaleClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	clock := &now
	s := apptest.Start(t, apptest.Options{NoWorkers: true, Now: func() time.Time { return *clock }})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	ctx := t.Context()
	if _, err := s.Service.Transition(ctx, id, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(60 * 24 * time.Hour)
	clock = &later
	d, err := s.Service.Transition(ctx, id, workflow.Command{Event: workflow.RepasserEnConstruction, Instructeur: inst})
	if err != nil {
		t.Fatal(err)
	}
	if !d.LastActivityAt.Equal(later) {
		t.Fatalf("last_activity_at %v, want %v", d.LastActivityAt, later)
	}
}

// TestWithTx: under WithTx the Service's methods write in the caller's
// transaction, each in a savepoint: they commit or roll back with it, a
// failing one leaves the transaction usable, and OnTransition waits for the
// caller's commit.
func TestWithTx(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	var counted atomic.Int32
	svc := workflow.NewService(s.Pool, jobs.NewEnqueuer(s.River, jobs.Config{}), workflow.Options{
		OnTransition: func(workflow.Event) { counted.Add(1) },
	})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	state := func() string {
		t.Helper()
		d, err := svc.GetDossier(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return string(d.State)
	}
	instruire := workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst}

	run := func(commit bool) {
		t.Helper()
		tx, err := s.Pool.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(t.Context()) //nolint:errcheck
		ctx, committed := workflow.WithTx(t.Context(), tx)
		// A refused transition rolls back to its savepoint only.
		if _, err := svc.Transition(ctx, id, workflow.Command{Event: workflow.Accepter, Instructeur: inst}); workflow.ErrorCode(err) != workflow.EInvalidTransition {
			t.Fatalf("accepter en construction: %v", err)
		}
		if _, err := svc.Transition(ctx, id, instruire); err != nil {
			t.Fatal(err)
		}
		if state() != "en_construction" || counted.Load() != 0 {
			t.Fatalf("before the caller's commit: state %s, %d counted", state(), counted.Load())
		}
		if commit {
			if err := tx.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			committed()
		}
	}
	run(false)
	if state() != "en_construction" || counted.Load() != 0 {
		t.Fatalf("rolled back: state %s, %d counted", state(), counted.Load())
	}
	run(true)
	if state() != "en_instruction" || counted.Load() != 1 {
		t.Fatalf("committed: state %s, %d counted", state(), counted.Load())
	}
}

// TestTransitionDeliveryNamesHistory: the delivery of a transition's e-mail
// names the transition's own history row, so that each e-mail of a dossier
// given back twice says what to change that time.
func TestTransitionDeliveryNamesHistory(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	for _, c := range []workflow.Command{
		{Event: workflow.PasserEnInstruction, Instructeur: inst},
		{Event: workflow.RepasserEnConstruction, Instructeur: inst, Motivation: "Ajoutez le contrat."},
		{Event: workflow.PasserEnInstruction, Instructeur: inst, Motivation: "Complet."},
		{Event: workflow.RepasserEnConstruction, Instructeur: inst, Motivation: "Le contrat n'est pas signé."},
	} {
		if _, err := s.Service.Transition(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT e.kind, h.event, coalesce(h.motivation, '')
		FROM email_deliveries e JOIN dossier_history h ON h.id = (e.params->>'history_id')::bigint
		WHERE e.dossier_id = $1 ORDER BY e.id`, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var kind, event, motivation string
		err := r.Scan(&kind, &event, &motivation)
		return kind + " " + event + " " + motivation, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"en_instruction passer_en_instruction ",
		"en_construction repasser_en_construction Ajoutez le contrat.",
		"en_instruction passer_en_instruction Complet.",
		"en_construction repasser_en_construction Le contrat n'est pas signé.",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("deliveries and their history rows:\n got %q\nwant %q", got, want)
	}
}
