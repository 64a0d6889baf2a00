package api_test

import (
	"fmt"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/workflow"
)

// TestListPages: a tab comes in pages of DefaultListLimit dossiers (or
// limit), and a full page says where the next one starts.
func TestListPages(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	first, _ := s.Dossier(proc)
	// One more than a page, copied in SQL: a hundred API calls would only
	// make the test slower.
	if _, err := s.Pool.Exec(t.Context(), `
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, state)
		SELECT procedure_id, 'u' || g || '@etudiant.test', demandeur, state
		FROM dossiers, generate_series(1, $2) g WHERE id = $1`, first, workflow.DefaultListLimit); err != nil {
		t.Fatal(err)
	}
	list := "/v1/instructeurs/" + inst + "/dossiers?tab=a_suivre"
	page := func(query string) ([]any, any) {
		t.Helper()
		r := s.Must(200, "GET", list+query, nil)
		return r["dossiers"].([]any), r["next_after"]
	}
	ds, next := page("")
	if len(ds) != workflow.DefaultListLimit || next != ds[len(ds)-1].(map[string]any)["id"] {
		t.Fatalf("first page: %d dossiers, next_after %v", len(ds), next)
	}
	ds, next = page(fmt.Sprintf("&after=%v", next))
	if len(ds) != 1 || next != nil {
		t.Fatalf("last page: %d dossiers, next_after %v", len(ds), next)
	}
	ds, next = page("&limit=2")
	if len(ds) != 2 || next != ds[1].(map[string]any)["id"] {
		t.Fatalf("limit=2: %d dossiers, next_after %v", len(ds), next)
	}
	r := s.Do("GET", list+fmt.Sprintf("&limit=%d", workflow.MaxListLimit+1), nil)
	if p := r.JSON(t); r.StatusCode != 422 || p["errors"].([]any)[0].(map[string]any)["field"] != "limit" {
		t.Fatalf("limit above the maximum: %d %s", r.StatusCode, r.Body)
	}
}
