package openapitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// dossier is a Dossier as openapi.yaml describes it.
const dossier = `{"id": 7, "procedure_id": 1, "state": "en_construction", "usager_email": "elodie@etudiant.test",
	"demandeur": {"nom": "Dupré", "prenom": "Élodie", "date_naissance": "2003-04-12", "lieu_naissance": "Montréal",
		"nationalite": "canadienne", "titre_sejour": {"numero": "6912345678", "expire_le": "2027-09-30"},
		"etablissement": "Lyon 2", "employeur": {"raison_sociale": "Boulangerie", "siret": "73282932000074", "adresse": "Lyon"},
		"emploi": "vendeuse", "heures_hebdo": 17.5, "date_debut": "2026-12-01", "date_fin": "2027-06-30"},
	"motivation": null, "decided_at": null, "last_activity_at": "2026-11-30T10:00:00Z", "stale_since": null, "expires_at": "2027-11-30T10:00:00Z",
	"created_at": "2026-11-30T10:00:00Z", "updated_at": "2026-11-30T10:00:00Z",
	"history": [], "followers": [], "emails": [], "attestation": null}`

const problemNotFound = `{"type": "urn:aptflow:problem:not_found", "title": "Not Found", "status": 404, "code": "not_found"}`

// TestTransport: every response of a watched server is checked, and a
// response that breaks the document fails the test with the operation and
// the response named; other servers pass unchecked.
func TestTransport(t *testing.T) {
	t.Parallel()
	// A server that answers what each case says, as aptflow would or
	// should not.
	var mu sync.Mutex
	answer := map[string]struct {
		status      int
		contentType string
		body        string
	}{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a, ok := answer[r.Method+" "+r.URL.Path]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, method, path string
		status             int
		contentType, body  string
		want               string // in the failure; "" for none
	}{
		{"OK", "GET", "/v1/dossiers/7", 200, "application/json", dossier, ""},
		{"ProblemOK", "GET", "/v1/dossiers/8", 404, "application/problem+json", problemNotFound, ""},
		{"BodyBreaksSchema", "GET", "/v1/dossiers/9", 200, "application/json", strings.Replace(dossier, `"state": "en_construction"`, `"state": "perdu"`, 1),
			"the response 200 of GET /v1/dossiers/{id} (getDossier) breaks api/openapi.yaml"},
		{"MissingField", "GET", "/v1/dossiers/10", 200, "application/json", strings.Replace(dossier, `"attestation": null`, `"x": 1`, 1),
			`property "attestation" is missing`},
		{"UndescribedStatus", "GET", "/v1/dossiers/11", 418, "application/problem+json", problemNotFound,
			"api/openapi.yaml does not describe the response 418 of GET /v1/dossiers/{id} (getDossier)"},
		{"WrongContentType", "GET", "/v1/dossiers/12", 200, "text/plain", "ok",
			"the response 200 of GET /v1/dossiers/{id} (getDossier) breaks api/openapi.yaml"},
		{"UndescribedRoute", "GET", "/v1/webhooks", 200, "application/json", `{}`,
			"api/openapi.yaml describes no operation GET /v1/webhooks"},
		{"UnknownRoute404", "GET", "/v1/nothing", 404, "application/problem+json", problemNotFound, ""},
		{"UnknownRouteBadProblem", "DELETE", "/v1/dossiers", 405, "application/problem+json", `{"code": 3}`,
			"DELETE /v1/dossiers answered 405 with a problem that breaks the Problem schema"},
		{"NoRouteServerError", "GET", "/v1/boom", 500, "application/problem+json", `{}`,
			"api/openapi.yaml describes no operation GET /v1/boom"},
		{"UnknownRouteNotProblem", "GET", "/nowhere", 404, "text/plain; charset=utf-8", "404 page not found",
			"GET /nowhere answered 404 as \"text/plain; charset=utf-8\": a 4xx is application/problem+json"},
		{"HeadStatusOnly", "HEAD", "/healthz", 200, "application/json", "", ""},
		{"Subtree", "GET", "/riverui/api/features", 200, "application/json", `{}`, ""},
		{"SubtreeUndescribedStatus", "GET", "/riverui/api/jobs", 500, "application/json", `{}`,
			"api/openapi.yaml does not describe the response 500 of GET /riverui/api/jobs (riverUI), below /riverui/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			answer[tc.method+" "+tc.path] = struct {
				status      int
				contentType string
				body        string
			}{tc.status, tc.contentType, tc.body}
			mu.Unlock()
			rec := &Recorder{TB: t}
			tr := &Transport{}
			tr.Watch(rec, srv.URL)
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			got := rec.Errors()
			if tc.want == "" {
				if err != nil || len(got) > 0 {
					t.Fatalf("a response that matches the document failed: %v %q", err, got)
				}
				resp.Body.Close()
				return
			}
			if err == nil || len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("want one failure with %q; got err %v, failures %q", tc.want, err, got)
			}
		})
	}

	t.Run("OtherServersUnchecked", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}))
		t.Cleanup(other.Close)
		rec := &Recorder{TB: t}
		tr := &Transport{}
		tr.Watch(rec, srv.URL)
		resp, err := (&http.Client{Transport: tr}).Get(other.URL + "/api/v1/messages")
		if err != nil || resp.StatusCode != http.StatusTeapot || len(rec.Errors()) > 0 {
			t.Fatalf("another server's response: %v %v", err, rec.Errors())
		}
		resp.Body.Close()
	})
}
