package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

	t.Run("LineSeparatorStaysInTheBody", func(t *testing.T) {
		dem := apptest.Demandeur()
		dem["prenom"] = "Élodie\u2028Bcc: " + evil
		usager := "separateur@etudiant.test"
		d := s.Must(201, "POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": usager, "demandeur": dem})
		id := int64(d["id"].(float64))
		if r := s.Event(id, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
			t.Fatalf("event: %d %s", r.StatusCode, r.Body)
		}
		s.WaitDelivery(id, "en_instruction", "sent", 20*time.Second)
		msgs := s.Mailpit.WaitFor(t, "to:"+usager, 1, 10*time.Second)
		if len(msgs) != 1 || len(msgs[0].To) != 1 || len(msgs[0].Cc) != 0 || len(msgs[0].Bcc) != 0 || msgs[0].To[0].Address != usager {
			t.Fatalf("recipients: %+v", msgs)
		}
		if n, err := s.Mailpit.Count(t.Context(), "to:"+evil); err != nil || n != 0 {
			t.Fatalf("%d e-mails to the injected address (%v)", n, err)
		}
		m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "Votre dossier nº "+strconv.FormatInt(id, 10)+" va être examiné" {
			t.Errorf("subject %q", m.Subject)
		}
		headers, err := s.Mailpit.Headers(t.Context(), msgs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range headers {
			for _, v := range vs {
				if strings.EqualFold(k, "Bcc") || strings.Contains(strings.ToLower(v), evil) || strings.ContainsRune(v, '\u2028') {
					t.Errorf("header %s: %q", k, v)
				}
			}
		}
		if !strings.Contains(m.Text, "Bcc: "+evil) {
			t.Errorf("the name is not in the body:\n%s", m.Text)
		}
	})
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
