package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestInstructeurScope: an instructeur acts on, writes about and sees the
// dossiers of their own procedures only.
func TestInstructeurScope(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	mine, theirs := s.Procedure(), s.Procedure()
	inst := s.Instructeur(mine, "Camille Martin")
	outsider := s.Instructeur(theirs, "Dominique Petit")
	id, _ := s.Dossier(mine)
	other, _ := s.Dossier(theirs)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})

	forbidden := func(t *testing.T, r *apptest.Response) {
		t.Helper()
		if r.StatusCode != http.StatusForbidden || r.JSON(t)["code"] != "not_instructeur" {
			t.Fatalf("%d %s, want 403 not_instructeur", r.StatusCode, r.Body)
		}
	}
	t.Run("MessageFromAnotherProcedure", func(t *testing.T) {
		forbidden(t, s.Do("POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": outsider, "body": "Bonjour, pièce manquante."}))
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM activities WHERE dossier_id = $1`, id).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a refused message left %d activities (%v)", n, err)
		}
		var deliveries int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM email_deliveries WHERE dossier_id = $1 AND kind <> 'en_instruction'`, id).Scan(&deliveries); err != nil || deliveries != 0 {
			t.Fatalf("a refused message queued %d e-mails (%v)", deliveries, err)
		}
	})
	t.Run("EventAndFollow", func(t *testing.T) {
		forbidden(t, s.Event(id, "refuser", outsider, "Pas de contrat."))
		forbidden(t, s.Do("PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, outsider), nil))
		if d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil); d["state"] != "en_instruction" {
			t.Fatalf("state %v after refused events", d["state"])
		}
	})
	t.Run("TabsShowOwnProceduresOnly", func(t *testing.T) {
		for _, tc := range []struct {
			email      string
			sees, hide int64
		}{{inst, id, other}, {outsider, other, id}} {
			var all []int64
			for _, tab := range []string{"a_suivre", "suivis", "traites", "tous"} {
				for _, d := range s.Must(200, "GET", "/v1/instructeurs/"+tc.email+"/dossiers?tab="+tab, nil)["dossiers"].([]any) {
					all = append(all, int64(d.(map[string]any)["id"].(float64)))
				}
			}
			if slices.Contains(all, tc.hide) || !slices.Contains(all, tc.sees) {
				t.Errorf("%s: tabs list %v; want %d and never %d", tc.email, all, tc.sees, tc.hide)
			}
		}
	})
}

// TestHeaderInjectionRefused: a line break in a name or an address is
// refused at the API, before anything is stored or e-mailed; and a name
// with a Unicode line separator, which is allowed, ends up in the body of
// one e-mail to one recipient, never in a header.
func TestHeaderInjectionRefused(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	const evil = "evil@attaquant.test"
	invalid := func(t *testing.T, r *apptest.Response, field string) {
		t.Helper()
		if r.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%d %s, want 422", r.StatusCode, r.Body)
		}
		var fields []string
		for _, e := range r.JSON(t)["errors"].([]any) {
			fields = append(fields, e.(map[string]any)["field"].(string))
		}
		if !slices.Contains(fields, field) {
			t.Fatalf("errors on %v, want %s", fields, field)
		}
	}

	t.Run("Create", func(t *testing.T) {
		for name, tc := range map[string]struct {
			field, value, usager string
		}{
			"NomCRLF":         {"nom", "Dupré\r\nBcc: " + evil, "ok-1@etudiant.test"},
			"PrenomLF":        {"prenom", "Élodie\nBcc: " + evil, "ok-2@etudiant.test"},
			"UsagerCRLF":      {"", "", "elodie@etudiant.test\r\nBcc: " + evil},
			"UsagerTrailing":  {"", "", "elodie@etudiant.test\r\n"},
			"UsagerFolded":    {"", "", "elodie@etudiant.test\r\n Bcc: " + evil},
			"EmployeurCRLF":   {"employeur.raison_sociale", "Œuvre\r\nBcc: " + evil, "ok-3@etudiant.test"},
			"EtablissementLF": {"etablissement", "Lyon 2\nX-Injected: 1", "ok-4@etudiant.test"},
		} {
			t.Run(name, func(t *testing.T) {
				dem := apptest.Demandeur()
				field := "usager_email"
				if tc.field != "" {
					field = "demandeur." + tc.field
					if emp, ok := strings.CutPrefix(tc.field, "employeur."); ok {
						dem["employeur"].(map[string]any)[emp] = tc.value
					} else {
						dem[tc.field] = tc.value
					}
				}
				invalid(t, s.Do("POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": tc.usager, "demandeur": dem}), field)
			})
		}
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("refused dossiers stored: %d %v", n, err)
		}
	})
	t.Run("Patch", func(t *testing.T) {
		id, _ := s.Dossier(proc)
		invalid(t, s.Do("PATCH", fmt.Sprintf("/v1/dossiers/%d", id), map[string]any{"demandeur": map[string]any{"nom": "Dupré\r\nBcc: " + evil}}), "demandeur.nom")
	})
	t.Run("Instructeur", func(t *testing.T) {
		path := fmt.Sprintf("/v1/procedures/%d/instructeurs", proc)
		invalid(t, s.Do("POST", path, map[string]any{"email": "agent@prefecture.test", "nom": "Agent\r\nBcc: " + evil}), "nom")
		invalid(t, s.Do("POST", path, map[string]any{"email": "agent@prefecture.test\r\nBcc: " + evil, "nom": "Agent"}), "email")
	})
	t.Run("Message", func(t *testing.T) {
		id, _ := s.Dossier(proc)
		invalid(t, s.Do("POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": inst + "\r\nBcc: " + evil, "body": "Bonjour"}), "from")
	})
}

// TestSpoofingRefused: the input rules of DESIGN.md « Access: scoped
// tokens », through the API: names and free text with a bidirectional
// override or isolate or a Unicode line separator, e-mail addresses that
// are not plain ASCII with a DNS domain, a 2-year-old applicant, a job of
// 0.001 hours a week. Each is a 422 naming the field, and changes nothing.
func TestSpoofingRefused(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
	draft, _ := s.Dossier(proc)
	snapshot := func() string {
		var out string
		if err := s.Pool.QueryRow(t.Context(), `SELECT concat_ws('|',
			(SELECT count(*) FROM dossiers), (SELECT count(*) FROM activities), (SELECT count(*) FROM procedures),
			(SELECT string_agg(email || nom, ',' ORDER BY id) FROM instructeurs),
			(SELECT string_agg(demandeur::text || state, ',' ORDER BY id) FROM dossiers))`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := snapshot()
	dem := func(change func(map[string]any)) map[string]any {
		d := apptest.Demandeur()
		change(d)
		return map[string]any{"procedure_id": proc, "usager_email": "ok@etudiant.test", "demandeur": d}
	}
	for name, tc := range map[string]struct {
		method, path string
		body         any
		field, code  string
	}{
		"NomRLO":              {"POST", "/v1/dossiers", dem(func(d map[string]any) { d["nom"] = "Dupré\u202Eetpecca" }), "demandeur.nom", "formatting_character"},
		"PrenomIsolate":       {"POST", "/v1/dossiers", dem(func(d map[string]any) { d["prenom"] = "\u2067Élodie" }), "demandeur.prenom", "formatting_character"},
		"PrenomLineSeparator": {"POST", "/v1/dossiers", dem(func(d map[string]any) { d["prenom"] = "Élodie\u2028Bcc: evil@attaquant.test" }), "demandeur.prenom", "formatting_character"},
		"EmployeurParagraph": {"POST", "/v1/dossiers", dem(func(d map[string]any) {
			d["employeur"].(map[string]any)["raison_sociale"] = "Œuvre\u2029& Fils"
		}), "demandeur.employeur.raison_sociale", "formatting_character"},
		"TwoYearsOld":         {"POST", "/v1/dossiers", dem(func(d map[string]any) { d["date_naissance"] = "2024-06-01" }), "demandeur.date_naissance", "too_young"},
		"TinyHours":           {"POST", "/v1/dossiers", dem(func(d map[string]any) { d["heures_hebdo"] = 0.001 }), "demandeur.heures_hebdo", "out_of_range"},
		"UsagerNoBreakSpace":  {"POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "elodie\u00a0@etudiant.test", "demandeur": apptest.Demandeur()}, "usager_email", "invalid_email"},
		"Usager8Bit":          {"POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "élodie@etudiant.test", "demandeur": apptest.Demandeur()}, "usager_email", "invalid_email"},
		"UsagerDomainLiteral": {"POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "a@[127.0.0.1]", "demandeur": apptest.Demandeur()}, "usager_email", "invalid_email"},
		"UsagerHyphenDomain":  {"POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "a@-b.fr", "demandeur": apptest.Demandeur()}, "usager_email", "invalid_email"},
		"PatchRLO":            {"PATCH", fmt.Sprintf("/v1/dossiers/%d", draft), map[string]any{"demandeur": map[string]any{"nom": "\u202Dx"}}, "demandeur.nom", "formatting_character"},
		"MessageBody":         {"POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Bonjour\u202E"}, "body", "formatting_character"},
		"AvisBody":            {"POST", fmt.Sprintf("/v1/dossiers/%d/avis", id), map[string]any{"expert": "expert@prefecture.test", "body": "Avis\u2028favorable"}, "body", "formatting_character"},
		"Motivation":          {"POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "refuser", "instructeur": inst, "motivation": "Pièce manquante\u2066"}, "motivation", "formatting_character"},
		"InstructeurNom":      {"POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc), map[string]any{"email": "agent@prefecture.test", "nom": "Agent\u202E"}, "nom", "formatting_character"},
		"InstructeurEmail":    {"POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc), map[string]any{"email": "agent@prefecture.test\u00a0", "nom": "Agent"}, "email", "invalid_email"},
		"ProcedureLibelle":    {"POST", "/v1/procedures", map[string]any{"libelle": "APT\u202E", "service": map[string]any{"nom": "Préfecture", "adresse": "Lyon"}, "stale_after_days": 30, "heures_hebdo_max": 20}, "libelle", "formatting_character"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.Do(tc.method, tc.path, tc.body)
			if r.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s, want 422", r.StatusCode, r.Body)
			}
			var got []string
			for _, e := range r.JSON(t)["errors"].([]any) {
				e := e.(map[string]any)
				got = append(got, e["field"].(string)+":"+e["code"].(string))
			}
			if len(got) != 1 || got[0] != tc.field+":"+tc.code {
				t.Fatalf("errors %v, want exactly %s:%s", got, tc.field, tc.code)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Errorf("refused requests changed the data:\n%s\n%s", before, after)
	}
}

// TestVerifyRateLimited: the public verification page, through its real
// route, answers 429 with Retry-After to a client past its burst, as a
// problem; codes are 160 random bits, so guessing is noise anyway.
func TestVerifyRateLimited(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	// The burst is 20; tokens come back at one a second, so however slow
	// the machine, a few hundred requests reach the limit.
	var first *apptest.Response
	allowed := 0
	for i := 0; i < 500 && first == nil; i++ {
		r := s.Do("GET", "/attestations/"+strings.Repeat("a", 32), nil, "Authorization", "", "Accept", "application/json")
		switch r.StatusCode {
		case http.StatusNotFound:
			allowed++
		case http.StatusTooManyRequests:
			first = r
		default:
			t.Fatalf("request %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	if first == nil {
		t.Fatal("500 requests and no 429")
	}
	if allowed < 20 {
		t.Errorf("limited after %d requests, want the burst of 20 first", allowed)
	}
	if ra, err := strconv.Atoi(first.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", first.Header.Get("Retry-After"))
	}
	if first.Header.Get("Content-Type") != "application/problem+json" || first.JSON(t)["code"] != "rate_limited" {
		t.Errorf("%s %s", first.Header.Get("Content-Type"), first.Body)
	}
}

// TestAddInstructeurKeepsName: putting an existing instructeur on a
// procedure (again, or on another one) keeps the name they have, as
// documented: a token of one procedure cannot rename the agent of another.
func TestAddInstructeurKeepsName(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	mine, theirs := s.Procedure(), s.Procedure()
	const email = "camille.martin@prefecture.test"
	r := s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", theirs), map[string]any{"email": email, "nom": "Camille Martin"})
	if r["instructeur"].(map[string]any)["nom"] != "Camille Martin" {
		t.Fatalf("created: %v", r)
	}
	for _, tc := range []struct {
		proc int64
		want int
	}{{theirs, 200}, {mine, 201}} {
		r := s.Must(tc.want, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", tc.proc), map[string]any{"email": "Camille.Martin@Prefecture.test", "nom": "Usurpateur"})
		if got := r["instructeur"].(map[string]any)["nom"]; got != "Camille Martin" {
			t.Errorf("procedure %d: nom %v, want the name kept", tc.proc, got)
		}
	}
	var nom string
	if err := s.Pool.QueryRow(t.Context(), `SELECT nom FROM instructeurs WHERE email = $1`, email).Scan(&nom); err != nil || nom != "Camille Martin" {
		t.Errorf("stored nom %q (%v)", nom, err)
	}
}
