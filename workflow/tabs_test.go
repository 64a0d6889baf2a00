package workflow_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/workflow"
)

// TestTabsFollowState: the columns that key a_suivre and suivis
// (dossiers.followers, follows.dossier_ouvert, kept by triggers) follow
// every way a follow is made or undone and every decision, so that the tabs
// say what they said before they were keyed.
func TestTabsFollowState(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	a := s.Instructeur(proc, "Camille Martin")
	b := s.Instructeur(proc, "Dominique Lefèvre")
	tab := func(email, name string) []int64 {
		t.Helper()
		l, err := s.Service.ListForInstructeur(ctx, email, workflow.ListFilter{Tab: name})
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(l))
		for i, d := range l {
			ids[i] = d.ID
		}
		return ids
	}
	want := func(email, name string, ids ...int64) {
		t.Helper()
		if got := tab(email, name); !slices.Equal(got, ids) && !(len(got) == 0 && len(ids) == 0) {
			t.Errorf("%s of %s: %v, want %v", name, email, got, ids)
		}
	}
	consistent(t, s)
	d1, _ := s.Dossier(proc)
	d2, _ := s.Dossier(proc)
	want(a, workflow.TabASuivre, d1, d2)

	// Followed by hand, by two, then left by both.
	for _, step := range []struct {
		method, who string
		aSuivre     []int64
		suivisB     []int64
	}{
		{"PUT", a, []int64{d2}, nil},
		{"PUT", a, []int64{d2}, nil}, // twice counts once
		{"PUT", b, []int64{d2}, []int64{d1}},
		{"DELETE", a, []int64{d2}, []int64{d1}},
		{"DELETE", a, []int64{d2}, []int64{d1}}, // twice too
		{"DELETE", b, []int64{d1, d2}, nil},
	} {
		s.Must(204, step.method, fmt.Sprintf("/v1/dossiers/%d/followers/%s", d1, step.who), nil)
		want(a, workflow.TabASuivre, step.aSuivre...)
		want(b, workflow.TabSuivis, step.suivisB...)
		consistent(t, s)
	}

	// Taken into instruction: followed; given back: still followed;
	// decided: in traites, out of suivis, and a follow after the decision
	// is closed from the start.
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "passer_en_instruction", "instructeur": a})
	want(a, workflow.TabASuivre, d2)
	want(a, workflow.TabSuivis, d1)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "repasser_en_construction", "instructeur": a})
	want(a, workflow.TabSuivis, d1)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "passer_en_instruction", "instructeur": b})
	want(b, workflow.TabSuivis, d1)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "accepter", "instructeur": b})
	want(a, workflow.TabSuivis)
	want(b, workflow.TabSuivis)
	want(a, workflow.TabTraites, d1)
	want(a, workflow.TabASuivre, d2)
	s.Must(204, "DELETE", fmt.Sprintf("/v1/dossiers/%d/followers/%s", d1, a), nil)
	s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", d1, a), nil)
	want(a, workflow.TabSuivis)
	want(a, workflow.TabTous, d1, d2)
	consistent(t, s)

	// A follow written by hand, as another app on the database would:
	// the triggers keep the same counts.
	var bID int64
	if err := s.Pool.QueryRow(ctx, `SELECT id FROM instructeurs WHERE email = $1`, b).Scan(&bID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO follows (dossier_id, instructeur_id) VALUES ($1, $2)`, d2, bID); err != nil {
		t.Fatal(err)
	}
	want(a, workflow.TabASuivre)
	want(b, workflow.TabSuivis, d2)
	consistent(t, s)
}

// TestFollowCountsConcurrent: instructeurs following, leaving and taking
// the same dossiers at once never lose a count nor deadlock.
func TestFollowCountsConcurrent(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	var insts []string
	for i := range 6 {
		insts = append(insts, s.Instructeur(proc, fmt.Sprintf("Instructeur %d", i)))
	}
	var ds []int64
	for range 4 {
		id, _ := s.Dossier(proc)
		ds = append(ds, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i, inst := range insts {
		wg.Go(func() {
			for round := range 15 {
				for _, d := range ds {
					var err error
					switch (i + round) % 3 {
					case 0, 1:
						err = s.Service.Follow(ctx, d, inst)
					default:
						err = s.Service.Unfollow(ctx, d, inst)
					}
					if err != nil {
						errs <- fmt.Errorf("%s on dossier %d: %w", inst, d, err)
					}
				}
			}
		})
	}
	// Meanwhile the dossiers go into instruction and back, which follows
	// them, and one is decided.
	wg.Go(func() {
		for round := range 10 {
			for _, d := range ds {
				ev := workflow.PasserEnInstruction
				if round%2 == 1 {
					ev = workflow.RepasserEnConstruction
				}
				if _, err := s.Service.Transition(ctx, d, workflow.Command{Event: ev, Instructeur: insts[round%len(insts)]}); err != nil {
					errs <- fmt.Errorf("%s on dossier %d: %w", ev, d, err)
				}
			}
		}
		if _, err := s.Service.Transition(ctx, ds[0], workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: insts[0]}); err != nil {
			errs <- err
		}
		if _, err := s.Service.Transition(ctx, ds[0], workflow.Command{Event: workflow.Refuser, Instructeur: insts[0], Motivation: "Incomplet."}); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	consistent(t, s)
}

// consistent checks that the columns the triggers keep are right.
func consistent(t *testing.T, s *apptest.Stack) {
	t.Helper()
	wrong, err := dbtest.FollowDrift(t.Context(), s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrong {
		t.Error(w)
	}
}

// TestExpirantOrder: expirant lists the soonest expiry first, whatever the
// ids, and its pages follow one another from the last dossier of the
// previous one.
func TestExpirantOrder(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	var ids []int64
	for range 4 {
		id, _ := s.Dossier(proc)
		ids = append(ids, id)
	}
	// The later the id, the sooner the expiry (12 months after the last
	// activity); the last one expires after the notice's 30 days.
	for i, days := range []int{20, 10, 5, 40} {
		if _, err := s.Pool.Exec(ctx, `UPDATE dossiers SET last_activity_at = now() - interval '12 months' + $2 * interval '1 day' WHERE id = $1`,
			ids[i], days); err != nil {
			t.Fatal(err)
		}
	}
	page := func(after int64) []int64 {
		t.Helper()
		l, err := s.Service.ListForInstructeur(ctx, inst, workflow.ListFilter{Tab: workflow.TabExpirant, Page: workflow.Page{AfterID: after, Limit: 2}})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, d := range l {
			got = append(got, d.ID)
		}
		return got
	}
	if got, want := page(0), []int64{ids[2], ids[1]}; !slices.Equal(got, want) {
		t.Fatalf("first page %v, want %v", got, want)
	}
	if got, want := page(ids[1]), []int64{ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("second page %v, want %v", got, want)
	}
}
