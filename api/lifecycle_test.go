package api_test

import (
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestProcedureConservation: a procedure keeps its dossiers
// conservation_mois months, 12 unless it says otherwise, from 1 to 120;
// a bad value is one entry among the bad fields, and creates nothing.
func TestProcedureConservation(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	in := func(conservation any) map[string]any {
		m := map[string]any{"libelle": "APT", "service": map[string]any{"nom": "Préfecture du Rhône", "adresse": "Lyon"},
			"stale_after_days": 30, "heures_hebdo_max": 20}
		if conservation != nil {
			m["conservation_mois"] = conservation
		}
		return m
	}
	if p := s.Must(201, "POST", "/v1/procedures", in(nil)); p["conservation_mois"] != float64(12) {
		t.Errorf("default conservation: %v", p["conservation_mois"])
	}
	if p := s.Must(201, "POST", "/v1/procedures", in(120)); p["conservation_mois"] != float64(120) {
		t.Errorf("conservation 120: %v", p["conservation_mois"])
	}
	for _, bad := range []int{0, 121} {
		m := in(bad)
		m["stale_after_days"] = 0
		p := s.Must(422, "POST", "/v1/procedures", m)
		var fields []string
		for _, e := range p["errors"].([]any) {
			fields = append(fields, e.(map[string]any)["field"].(string))
		}
		if len(fields) != 2 || fields[1] != "conservation_mois" {
			t.Errorf("conservation %d: errors on %v, want stale_after_days and conservation_mois", bad, fields)
		}
	}
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM procedures`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d procedures (%v), want the 2 valid ones", n, err)
	}
}
