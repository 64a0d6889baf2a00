package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	for name, header := range map[string]string{
		"Missing":   "",
		"WrongKind": "Basic abc",
		"Unknown":   "Bearer aptf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"NoPrefix":  "Bearer " + strings.TrimPrefix(s.Token, "aptf_"),
	} {
		t.Run(name, func(t *testing.T) {
			r := s.Do("GET", "/v1/dossiers/1", nil, "Authorization", header)
			if r.StatusCode != 401 || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s: %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			if r.JSON(t)["code"] != "unauthorized" {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
	t.Run("PublicRoutesOpen", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := s.Do("GET", p, nil, "Authorization", ""); r.StatusCode != 200 {
				t.Fatalf("%s = %d", p, r.StatusCode)
			}
		}
	})
	t.Run("TokenStoredHashed", func(t *testing.T) {
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM api_tokens WHERE position($1::bytea in hash) > 0 OR name = $2`,
			[]byte(s.Token), s.Token).Scan(&n); err != nil || n != 0 {
			t.Fatalf("token found in clear: %d %v", n, err)
		}
	})
}

// TestRules checks each rule of the procedure through the API, with the
// status and code of DESIGN.md, and that a refused request changes nothing.
func TestRules(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	other := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	outsider := s.Instructeur(other, "Dominique Petit")
	id, _ := s.Dossier(proc)

	expect := func(t *testing.T, r *apptest.Response, status int, code string) map[string]any {
		t.Helper()
		if r.StatusCode != status {
			t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("Content-Type %q", ct)
		}
		p := r.JSON(t)
		if p["code"] != code || p["status"] != float64(status) || p["type"] == "" || p["title"] == "" {
			t.Fatalf("problem %s, want code %s", r.Body, code)
		}
		return p
	}
	events := fmt.Sprintf("/v1/dossiers/%d/events", id)

	t.Run("ErrNotInstructeur", func(t *testing.T) {
		expect(t, s.Event(id, "passer_en_instruction", outsider, ""), 403, "not_instructeur")
		expect(t, s.Event(id, "passer_en_instruction", "inconnu@prefecture.test", ""), 403, "not_instructeur")
		expect(t, s.Do("PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, outsider), nil), 403, "not_instructeur")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		expect(t, s.Event(999999, "passer_en_instruction", inst, ""), 404, "not_found")
		expect(t, s.Do("GET", "/v1/dossiers/999999", nil), 404, "not_found")
		expect(t, s.Do("GET", "/v1/dossiers/abc", nil), 404, "not_found")
		expect(t, s.Do("GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id), nil), 404, "not_found")
	})
	t.Run("ErrInvalidTransition", func(t *testing.T) {
		expect(t, s.Event(id, "accepter", inst, ""), 409, "invalid_transition")
		expect(t, s.Event(id, "repasser_en_construction", inst, ""), 409, "invalid_transition")
	})
	t.Run("ErrUnknownEvent", func(t *testing.T) {
		p := expect(t, s.Event(id, "supprimer", inst, ""), 422, "unknown_event")
		if errs := p["errors"].([]any); errs[0].(map[string]any)["field"] != "event" {
			t.Fatalf("errors %v", errs)
		}
	})
	t.Run("ErrInvalidJSON", func(t *testing.T) {
		expect(t, s.Do("POST", events, `{"event": "passer_en_instruction",`), 400, "invalid_json")
		expect(t, s.Do("POST", events, `[1,2]`), 400, "invalid_json")
		expect(t, s.Do("POST", "/v1/dossiers", `not json`), 400, "invalid_json")
	})
	t.Run("ErrUnsupportedMediaType", func(t *testing.T) {
		expect(t, s.Do("POST", events, `{}`, "Content-Type", "text/plain"), 415, "unsupported_media_type")
	})
	t.Run("ErrBodyTooLarge", func(t *testing.T) {
		big := `{"motivation": "` + strings.Repeat("a", 2<<20) + `"}`
		expect(t, s.Do("POST", events, big), 413, "body_too_large")
	})
	t.Run("ErrValidation", func(t *testing.T) {
		dem := apptest.Demandeur()
		dem["nom"] = ""
		dem["prenom"] = "Jean\x07"
		dem["date_naissance"] = "2003-02-30"
		emp := dem["employeur"].(map[string]any)
		emp["siret"] = "73282932000075"
		dem["heures_hebdo"] = 35
		dem["date_debut"], dem["date_fin"] = "2027-03-01", "2027-01-01"
		p := expect(t, s.Do("POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "pas-une-adresse", "demandeur": dem}),
			422, "validation_failed")
		got := map[string]string{}
		for _, e := range p["errors"].([]any) {
			m := e.(map[string]any)
			got[m["field"].(string)] = m["code"].(string)
			if m["pointer"] != "/"+strings.ReplaceAll(m["field"].(string), ".", "/") || m["detail"] == "" {
				t.Errorf("entry %v", m)
			}
		}
		want := map[string]string{
			"usager_email":              "invalid_email",
			"demandeur.nom":             "required",
			"demandeur.prenom":          "control_character",
			"demandeur.date_naissance":  "invalid_date",
			"demandeur.employeur.siret": "invalid_siret",
			"demandeur.heures_hebdo":    "out_of_range",
			"demandeur.date_fin":        "before_date_debut",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("errors\n got %v\nwant %v", got, want)
		}
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("a refused dossier was stored: %d %v", n, err)
		}
	})
	t.Run("ErrUnknownField", func(t *testing.T) {
		p := expect(t, s.Do("POST", "/v1/procedures", map[string]any{"libelle": "x", "colour": "red"}), 422, "validation_failed")
		if p["errors"].([]any)[0].(map[string]any)["field"] != "colour" {
			t.Fatalf("%v", p)
		}
	})
	t.Run("ErrMotivationRequired", func(t *testing.T) {
		d2, _ := s.Dossier(proc)
		if r := s.Event(d2, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
			t.Fatalf("instruction: %d %s", r.StatusCode, r.Body)
		}
		expect(t, s.Event(d2, "refuser", inst, "  "), 422, "motivation_required")
		expect(t, s.Event(d2, "classer_sans_suite", inst, ""), 422, "motivation_required")
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", d2), nil)
		if d["state"] != "en_instruction" || len(d["history"].([]any)) != 1 {
			t.Fatalf("refused events changed the dossier: %v", d)
		}
	})
	t.Run("ErrNotEditable", func(t *testing.T) {
		d3, _ := s.Dossier(proc)
		s.Must(200, "PATCH", fmt.Sprintf("/v1/dossiers/%d", d3), map[string]any{"demandeur": map[string]any{"emploi": "serveur"}})
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d3), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
		expect(t, s.Do("PATCH", fmt.Sprintf("/v1/dossiers/%d", d3), map[string]any{"demandeur": map[string]any{"emploi": "cuisinier"}}), 409, "not_editable")
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", d3), nil)
		if d["demandeur"].(map[string]any)["emploi"] != "serveur" {
			t.Fatalf("demandeur %v", d["demandeur"])
		}
	})
	t.Run("PatchValidation", func(t *testing.T) {
		d4, _ := s.Dossier(proc)
		p := expect(t, s.Do("PATCH", fmt.Sprintf("/v1/dossiers/%d", d4), map[string]any{"demandeur": map[string]any{"heures_hebdo": 0, "employeur": map[string]any{"siret": "123"}}}),
			422, "validation_failed")
		if n := len(p["errors"].([]any)); n != 2 {
			t.Fatalf("want 2 errors: %v", p)
		}
	})
}

func TestDossierLifecycle(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	a := s.Instructeur(proc, "Camille Martin")
	b := s.Instructeur(proc, "Dominique Petit")
	id, usager := s.Dossier(proc)
	path := fmt.Sprintf("/v1/dossiers/%d", id)

	d := s.Must(200, "GET", path, nil)
	if d["state"] != "en_construction" || d["usager_email"] != usager || d["attestation"] != nil || d["stale_since"] != nil {
		t.Fatalf("new dossier %v", d)
	}
	dem := d["demandeur"].(map[string]any)
	if dem["prenom"] != "Élodie" || dem["nom"] != "Dupré" || dem["employeur"].(map[string]any)["raison_sociale"] != "Boulangerie Œuvre & Fils" {
		t.Fatalf("unicode lost: %v", dem)
	}
	// The instructeur who takes the dossier follows it.
	d = s.Must(200, "POST", path+"/events", map[string]any{"event": "passer_en_instruction", "instructeur": strings.ToUpper(a)})
	if d["state"] != "en_instruction" || fmt.Sprint(d["followers"]) != fmt.Sprint([]any{a}) {
		t.Fatalf("after instruction: %v", d)
	}
	h := d["history"].([]any)[0].(map[string]any)
	if h["event"] != "passer_en_instruction" || h["from"] != "en_construction" || h["to"] != "en_instruction" || h["instructeur"] != a || h["at"] == nil {
		t.Fatalf("history %v", h)
	}
	s.Must(204, "PUT", path+"/followers/"+b, nil)
	s.Must(204, "PUT", path+"/followers/"+b, nil) // twice is fine
	d = s.Must(200, "GET", path, nil)
	if len(d["followers"].([]any)) != 2 {
		t.Fatalf("followers %v", d["followers"])
	}
	tabs := func(email, tab string) []any {
		return s.Must(200, "GET", "/v1/instructeurs/"+email+"/dossiers?tab="+tab, nil)["dossiers"].([]any)
	}
	other, _ := s.Dossier(proc)
	if n := len(tabs(b, "suivis")); n != 1 {
		t.Fatalf("suivis = %d", n)
	}
	if l := tabs(b, "a_suivre"); len(l) != 1 || l[0].(map[string]any)["id"] != float64(other) {
		t.Fatalf("a_suivre = %v", l)
	}
	s.Must(204, "DELETE", path+"/followers/"+b, nil)
	if n := len(tabs(b, "suivis")); n != 0 {
		t.Fatalf("suivis after unfollow = %d", n)
	}
	d = s.Must(200, "POST", path+"/events", map[string]any{"event": "refuser", "instructeur": b, "motivation": "Titre de séjour expiré."})
	if d["state"] != "refuse" || d["motivation"] != "Titre de séjour expiré." || d["decided_at"] == nil {
		t.Fatalf("after refusal %v", d)
	}
	if n := len(tabs(a, "traites")); n != 1 {
		t.Fatalf("traites = %d", n)
	}
	if n := len(tabs(a, "tous")); n != 2 {
		t.Fatalf("tous = %d", n)
	}
	r := s.Do("GET", "/v1/instructeurs/"+a+"/dossiers?tab=autre", nil)
	if r.StatusCode != 422 {
		t.Fatalf("bad tab: %d", r.StatusCode)
	}
	// Instructeur added twice: 200 the second time.
	s.Must(200, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc), map[string]any{"email": a, "nom": "Camille Martin"})
	s.Must(200, "PUT", "/v1/instructeurs/"+a+"/preferences", map[string]any{"notifications": "daily"})
	if r := s.Do("PUT", "/v1/instructeurs/"+a+"/preferences", map[string]any{"notifications": "weekly"}); r.StatusCode != 422 {
		t.Fatalf("bad preference: %d", r.StatusCode)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	body := map[string]any{"procedure_id": proc, "usager_email": "idem@etudiant.test", "demandeur": apptest.Demandeur()}
	first := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "k-1")
	second := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "k-1")
	if first.StatusCode != 201 || second.StatusCode != 201 || !bytes.Equal(first.Body, second.Body) {
		t.Fatalf("replay: %d %d\n%s\n%s", first.StatusCode, second.StatusCode, first.Body, second.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("dossiers = %d, %v", n, err)
	}
	body["usager_email"] = "autre@etudiant.test"
	if r := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "k-1"); r.StatusCode != 422 || r.JSON(t)["code"] != "idempotency_key_reused" {
		t.Fatalf("reuse: %d %s", r.StatusCode, r.Body)
	}
	// An error is replayed too.
	bad := map[string]any{"procedure_id": proc}
	a := s.Do("POST", "/v1/dossiers", bad, "Idempotency-Key", "k-2")
	b := s.Do("POST", "/v1/dossiers", bad, "Idempotency-Key", "k-2")
	if a.StatusCode != 422 || b.StatusCode != 422 || !bytes.Equal(a.Body, b.Body) {
		t.Fatalf("error replay %d %d", a.StatusCode, b.StatusCode)
	}
}

// TestConcurrentInstruction: sixteen instructeurs act on one dossier at
// once; exactly one wins, the fifteen others get 409, and one e-mail goes out.
func TestConcurrentInstruction(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	insts := make([]string, 16)
	for i := range insts {
		insts[i] = s.Instructeur(proc, fmt.Sprintf("Agent %d", i))
	}
	id, usager := s.Dossier(proc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	start := make(chan struct{})
	for _, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := s.Event(id, "passer_en_instruction", inst, "")
			mu.Lock()
			counts[r.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if counts[200] != 1 || counts[409] != 15 {
		t.Fatalf("statuses %v, want one 200 and fifteen 409", counts)
	}
	s.WaitDelivery(id, "en_instruction", "sent", 20*time.Second)
	s.Mailpit.WaitFor(t, "to:"+usager, 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // room for a wrongful second e-mail
	if n, err := s.Mailpit.Count(t.Context(), "to:"+usager); err != nil || n != 1 {
		t.Fatalf("e-mails to the applicant: %d, %v", n, err)
	}
	d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
	if len(d["history"].([]any)) != 1 || len(d["emails"].([]any)) != 1 || len(d["followers"].([]any)) != 1 {
		t.Fatalf("dossier %v", d)
	}
}

func TestNotFoundRoute(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	if r := s.Do("GET", "/v1/nothing", nil); r.StatusCode != http.StatusNotFound || r.JSON(t)["code"] != "not_found" {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
}
