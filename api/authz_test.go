package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aptflow/aptflow/api"
	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/workflow"
)

// authzWorld is what the matrix's requests act on: two procedures, an
// instructeur on each, and fresh dossiers made on demand (most requests
// change the dossier they act on).
type authzWorld struct {
	t        *testing.T
	s        *apptest.Stack
	in, out  int64 // the limited tokens see in, not out
	inst     map[int64]string
	verified string // the verification code of a rendered attestation
	seq      atomic.Int64
	// made counts the dossiers made per procedure; fresh are those of out
	// left en construction.
	made  map[int64]int
	fresh []int64
	// hooks is the webhook subscription of each procedure that the
	// matrix's webhook routes share.
	hooks map[int64]int64
}

// webhook returns a subscription of proc: the one shared, made on first
// use, or with fresh a new one (a request that deletes it).
func (w *authzWorld) webhook(proc int64, fresh bool) int64 {
	w.t.Helper()
	if id, ok := w.hooks[proc]; ok && !fresh {
		return id
	}
	h, err := w.s.Service.CreateWebhook(w.t.Context(), proc, workflow.WebhookInput{URL: "http://127.0.0.1:9/hooks"})
	if err != nil {
		w.t.Fatal(err)
	}
	if !fresh {
		if w.hooks == nil {
			w.hooks = map[int64]int64{}
		}
		w.hooks[proc] = h.ID
	}
	return h.ID
}

// webhookDelivery returns a delivery of the shared subscription of proc: a
// new dossier's dossier.created.
func (w *authzWorld) webhookDelivery(proc int64) (hook, delivery int64) {
	w.t.Helper()
	hook = w.webhook(proc, false)
	id := w.dossier(proc)
	if err := w.s.Pool.QueryRow(w.t.Context(), `SELECT d.id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.subscription_id = $1 AND e.data->>'dossier_id' = $2`, hook, fmt.Sprint(id)).Scan(&delivery); err != nil {
		w.t.Fatal(err)
	}
	return hook, delivery
}

func (w *authzWorld) procedure() int64 {
	w.t.Helper()
	p, err := w.s.Service.CreateProcedure(w.t.Context(), workflow.ProcedureInput{
		Libelle: "APT", Service: workflow.ProcedureService{Nom: "Préfecture du Rhône", Adresse: "Lyon"}, StaleAfterDays: 30, HeuresHebdoMax: 20,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return p.ID
}

// dossier makes a dossier of procedure proc, moved by events (by the
// procedure's instructeur).
func (w *authzWorld) dossier(proc int64, events ...workflow.Event) int64 {
	w.t.Helper()
	dem, _ := json.Marshal(apptest.Demandeur())
	d, err := w.s.Service.CreateDossier(w.t.Context(), workflow.DossierInput{
		ProcedureID: proc, UsagerEmail: fmt.Sprintf("usager-%d@etudiant.test", w.seq.Add(1)), Demandeur: dem,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.made[proc]++
	if proc == w.out && len(events) == 0 {
		w.fresh = append(w.fresh, d.ID)
	}
	for _, e := range events {
		if _, err := w.s.Service.Transition(w.t.Context(), d.ID, workflow.Command{Event: e, Instructeur: w.inst[proc]}); err != nil {
			w.t.Fatal(err)
		}
	}
	return d.ID
}

// rendered makes an accepted dossier of proc whose attestation is stored
// (the workers do not run here), and returns it and its code.
func (w *authzWorld) rendered(proc int64) (int64, string) {
	w.t.Helper()
	id := w.dossier(proc, workflow.PasserEnInstruction, workflow.Accepter)
	var code string
	if err := w.s.Pool.QueryRow(w.t.Context(), `
		UPDATE attestations SET pdf = $2, sha256 = 'x', rendered_at = now() WHERE dossier_id = $1 RETURNING code`,
		id, []byte(renderedPDF)).Scan(&code); err != nil {
		w.t.Fatal(err)
	}
	return id, code
}

// renderedPDF stands for the attestations that rendered stores.
const renderedPDF = "%PDF-1.4 matrix"

// authzRequest is one request of the matrix, on the resources of proc. A
// body of bytes is sent as a PDF, any other as JSON.
type authzRequest struct {
	method, path string
	body         any
}

// authzCase is how the matrix takes one route: the request on the
// resources of a procedure, with the token's scope (only messages differ by
// scope), and the status when the token may take it.
type authzCase struct {
	req func(w *authzWorld, proc int64, scope api.Scope) authzRequest
	ok  int
	// outside is the status of a token that may take the route, on
	// resources of a procedure it does not see: 404, as for what does
	// not exist (422 for a procedure_id in a body, as an unknown one).
	outside int
}

// authzCases has a case for every route of the route table: the matrix
// fails for a route without one.
var authzCases = map[string]authzCase{
	"POST /v1/procedures": {func(w *authzWorld, _ int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", "/v1/procedures", map[string]any{"libelle": "APT", "service": map[string]any{"nom": "Préfecture", "adresse": "Lyon"},
			"stale_after_days": 30, "heures_hebdo_max": 20}}
	}, 201, 0},
	"POST /v1/procedures/{id}/instructeurs": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc),
			map[string]any{"email": fmt.Sprintf("agent-%d@prefecture.test", w.seq.Add(1)), "nom": "Agent"}}
	}, 201, 404},
	"GET /v1/procedures/{id}/dossiers_supprimes": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", fmt.Sprintf("/v1/procedures/%d/dossiers_supprimes", proc), nil}
	}, 200, 404},
	"POST /v1/dossiers": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": "u@etudiant.test", "demandeur": apptest.Demandeur()}}
	}, 201, 422},
	"GET /v1/dossiers/{id}": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", fmt.Sprintf("/v1/dossiers/%d", w.dossier(proc)), nil}
	}, 200, 404},
	"PATCH /v1/dossiers/{id}": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"PATCH", fmt.Sprintf("/v1/dossiers/%d", w.dossier(proc)), map[string]any{"demandeur": map[string]any{"emploi": "serveuse"}}}
	}, 200, 404},
	"POST /v1/dossiers/{id}/events": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/dossiers/%d/events", w.dossier(proc)), map[string]any{"event": "passer_en_instruction", "instructeur": w.inst[proc]}}
	}, 200, 404},
	"PUT /v1/dossiers/{id}/followers/{email}": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", w.dossier(proc), w.inst[proc]), nil}
	}, 204, 404},
	"DELETE /v1/dossiers/{id}/followers/{email}": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"DELETE", fmt.Sprintf("/v1/dossiers/%d/followers/%s", w.dossier(proc, workflow.PasserEnInstruction), w.inst[proc]), nil}
	}, 204, 404},
	"POST /v1/dossiers/{id}/messages": {func(w *authzWorld, proc int64, scope api.Scope) authzRequest {
		// The back office writes as an instructeur, the applicant's side
		// as the applicant: each with its own scope (TestMessageAuthorScope).
		from := "usager"
		if scope == api.ScopeInstruction {
			from = w.inst[proc]
		}
		return authzRequest{"POST", fmt.Sprintf("/v1/dossiers/%d/messages", w.dossier(proc)), map[string]any{"from": from, "body": "Bonjour"}}
	}, 201, 404},
	"POST /v1/dossiers/{id}/avis": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/dossiers/%d/avis", w.dossier(proc)), map[string]any{"expert": "expert@prefecture.test", "body": "Favorable"}}
	}, 201, 404},
	"POST /v1/dossiers/{id}/conservation": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/dossiers/%d/conservation", w.dossier(proc)), map[string]any{"instructeur": w.inst[proc], "mois": 1}}
	}, 200, 404},
	"GET /v1/dossiers/{id}/attestation.pdf": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		id, _ := w.rendered(proc)
		return authzRequest{"GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id), nil}
	}, 200, 404},
	"GET /v1/instructeurs/{email}/dossiers": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", "/v1/instructeurs/" + w.inst[proc] + "/dossiers?tab=tous", nil}
	}, 200, 404},
	"PUT /v1/instructeurs/{email}/preferences": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"PUT", "/v1/instructeurs/" + w.inst[proc] + "/preferences", map[string]any{"notifications": "daily"}}
	}, 200, 404},

	"POST /v1/procedures/{id}/webhooks": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), map[string]any{"url": "http://127.0.0.1:9/nouveau"}}
	}, 201, 404},
	"GET /v1/procedures/{id}/webhooks": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), nil}
	}, 200, 404},
	"DELETE /v1/procedures/{id}/webhooks/{wid}": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"DELETE", fmt.Sprintf("/v1/procedures/%d/webhooks/%d", proc, w.webhook(proc, true)), nil}
	}, 204, 404},
	"POST /v1/procedures/{id}/webhooks/{wid}/secret/rotate": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/secret/rotate", proc, w.webhook(proc, false)), nil}
	}, 200, 404},
	"GET /v1/procedures/{id}/webhooks/{wid}/deliveries": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries", proc, w.webhook(proc, false)), nil}
	}, 200, 404},
	"POST /v1/procedures/{id}/webhooks/{wid}/deliveries/{did}/retry": {func(w *authzWorld, proc int64, _ api.Scope) authzRequest {
		hook, delivery := w.webhookDelivery(proc)
		return authzRequest{"POST", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries/%d/retry", proc, hook, delivery), nil}
	}, 202, 404},

	// Public and ops routes: the token changes nothing.
	"GET /attestations/{code}": {func(w *authzWorld, _ int64, _ api.Scope) authzRequest {
		return authzRequest{"GET", "/attestations/" + w.verified, nil}
	}, 200, 0},
	"POST /attestations/{code}": {func(w *authzWorld, _ int64, _ api.Scope) authzRequest {
		return authzRequest{"POST", "/attestations/" + w.verified, []byte(renderedPDF)}
	}, 200, 0},
	"GET /openapi.yaml": {static("/openapi.yaml"), 200, 0},
	"GET /healthz":      {static("/healthz"), 200, 0},
	"GET /readyz":       {static("/readyz"), 200, 0},
	"GET /metrics":      {static("/metrics"), 200, 0},
	"/riverui/":         {static("/riverui/"), 200, 0},
	"/debug/pprof/":     {static("/debug/pprof/"), 200, 0},
}

func static(path string) func(*authzWorld, int64, api.Scope) authzRequest {
	return func(*authzWorld, int64, api.Scope) authzRequest { return authzRequest{"GET", path, nil} }
}

// mayTake is DESIGN.md's table of scopes, written again here rather than
// read from routes.go: the matrix checks the route table against it.
var mayTake = map[string][]api.Scope{
	"POST /v1/procedures":                        {api.ScopeAdmin},
	"POST /v1/procedures/{id}/instructeurs":      {api.ScopeAdmin},
	"GET /v1/procedures/{id}/dossiers_supprimes": {api.ScopeAdmin, api.ScopeInstruction, api.ScopeDepot, api.ScopeLecture},
	"POST /v1/dossiers":                          {api.ScopeAdmin, api.ScopeDepot},
	"GET /v1/dossiers/{id}":                      {api.ScopeAdmin, api.ScopeInstruction, api.ScopeDepot, api.ScopeLecture},
	"PATCH /v1/dossiers/{id}":                    {api.ScopeAdmin, api.ScopeDepot},
	"POST /v1/dossiers/{id}/events":              {api.ScopeAdmin, api.ScopeInstruction},
	"PUT /v1/dossiers/{id}/followers/{email}":    {api.ScopeAdmin, api.ScopeInstruction},
	"DELETE /v1/dossiers/{id}/followers/{email}": {api.ScopeAdmin, api.ScopeInstruction},
	"POST /v1/dossiers/{id}/messages":            {api.ScopeAdmin, api.ScopeInstruction, api.ScopeDepot},
	"POST /v1/dossiers/{id}/avis":                {api.ScopeAdmin, api.ScopeInstruction},
	"POST /v1/dossiers/{id}/conservation":        {api.ScopeAdmin, api.ScopeInstruction},
	"GET /v1/dossiers/{id}/attestation.pdf":      {api.ScopeAdmin, api.ScopeInstruction, api.ScopeDepot, api.ScopeLecture},
	"GET /v1/instructeurs/{email}/dossiers":      {api.ScopeAdmin, api.ScopeInstruction, api.ScopeLecture},
	"PUT /v1/instructeurs/{email}/preferences":   {api.ScopeAdmin, api.ScopeInstruction},
	// « admin: everything, including … webhooks »
	"POST /v1/procedures/{id}/webhooks":                              {api.ScopeAdmin},
	"GET /v1/procedures/{id}/webhooks":                               {api.ScopeAdmin},
	"DELETE /v1/procedures/{id}/webhooks/{wid}":                      {api.ScopeAdmin},
	"POST /v1/procedures/{id}/webhooks/{wid}/secret/rotate":          {api.ScopeAdmin},
	"GET /v1/procedures/{id}/webhooks/{wid}/deliveries":              {api.ScopeAdmin},
	"POST /v1/procedures/{id}/webhooks/{wid}/deliveries/{did}/retry": {api.ScopeAdmin},
}

// everyProcedure are the routes that a token limited to some procedures
// may not take whatever its scope: what they make would be outside them.
var everyProcedure = []string{"POST /v1/procedures"}

// TestAuthorizationMatrix takes every route of the route table with a
// token of every scope, limited to one procedure (on its resources, then on
// another procedure's) or not limited, and asserts the status: the
// route's success, 403 insufficient_scope outside the scope, 404 (and
// nothing done) outside the token's procedures, 401 for a revoked or
// expired token. A route of the table without a case fails it.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	w := &authzWorld{t: t, s: s, inst: map[int64]string{}, made: map[int64]int{}}
	w.in, w.out = w.procedure(), w.procedure()
	for _, p := range []int64{w.in, w.out} {
		w.inst[p] = fmt.Sprintf("instructeur-%d@prefecture.test", p)
		if _, _, err := s.Service.AddInstructeur(t.Context(), p, w.inst[p], "Camille Martin"); err != nil {
			t.Fatal(err)
		}
	}
	_, w.verified = w.rendered(w.in)

	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops") })
	srv := httptest.NewServer(api.NewServer(api.Deps{Service: s.Service, Pool: s.Pool, Logger: slog.New(slog.NewJSONHandler(s.Logs, nil)),
		Metrics: stub, RiverUI: stub, Profiler: api.Profiler()}))
	t.Cleanup(srv.Close)
	do := func(t *testing.T, token string, r authzRequest) (int, map[string]any) {
		t.Helper()
		var body io.Reader
		ctype := "application/json"
		switch b := r.body.(type) {
		case nil:
		case []byte:
			body, ctype = bytes.NewReader(b), "application/pdf"
		default:
			j, _ := json.Marshal(b)
			body = bytes.NewReader(j)
		}
		req, err := http.NewRequest(r.method, srv.URL+r.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", ctype)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if strings.Contains(resp.Header.Get("Content-Type"), "json") {
			_ = json.Unmarshal(raw, &m)
		}
		return resp.StatusCode, m
	}

	tokens := map[string]string{}
	for _, scope := range api.Scopes {
		for _, limited := range []bool{false, true} {
			o := api.TokenOptions{Name: fmt.Sprintf("%s-%v", scope, limited), Scope: scope}
			if limited {
				o.Procedures = []int64{w.in}
			}
			tok, err := api.NewToken(t.Context(), s.Pool, o)
			if err != nil {
				t.Fatal(err)
			}
			tokens[o.Name] = tok
		}
	}
	revoked, _ := api.NewToken(t.Context(), s.Pool, api.TokenOptions{Name: "revoked"})
	if _, _, err := api.RevokeToken(t.Context(), s.Pool, "revoked"); err != nil {
		t.Fatal(err)
	}
	expired, _ := api.NewToken(t.Context(), s.Pool, api.TokenOptions{Name: "expired"})
	if _, err := s.Pool.Exec(t.Context(), `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'expired'`); err != nil {
		t.Fatal(err)
	}

	for _, rt := range api.RouteTable() {
		c, ok := authzCases[rt.Pattern]
		if !ok {
			t.Errorf("route %s has no case in the authorization matrix (authzCases)", rt.Pattern)
			continue
		}
		t.Run(rt.Pattern, func(t *testing.T) {
			if rt.Public || rt.Ops {
				// Any token, or none, gets the same.
				for name, tok := range map[string]string{"none": "", "lecture": tokens["lecture-true"], "revoked": revoked} {
					if got, body := do(t, tok, c.req(w, w.in, api.ScopeLecture)); got != c.ok {
						t.Errorf("token %s: %d, want %d: %v", name, got, c.ok, body)
					}
				}
				return
			}
			allowed, ok := mayTake[rt.Pattern]
			if !ok {
				t.Fatalf("no expected scopes for %s in mayTake", rt.Pattern)
			}
			for _, scope := range api.Scopes {
				may := slices.Contains(allowed, scope)
				for _, v := range []struct {
					name    string
					limited bool
					proc    int64
					want    int
				}{
					{"Unlimited", false, w.in, c.ok},
					{"Inside", true, w.in, c.ok},
					{"Outside", true, w.out, c.outside},
				} {
					want := v.want
					if !may || (v.limited && slices.Contains(everyProcedure, rt.Pattern)) {
						want = http.StatusForbidden
					}
					got, body := do(t, tokens[fmt.Sprintf("%s-%v", scope, v.limited)], c.req(w, v.proc, scope))
					if got != want {
						t.Errorf("%s token, %s: %d, want %d: %v", scope, v.name, got, want, body)
						continue
					}
					if want == http.StatusForbidden && body["code"] != "insufficient_scope" {
						t.Errorf("%s token, %s: code %v, want insufficient_scope", scope, v.name, body["code"])
					}
					if want == http.StatusNotFound && body["code"] != "not_found" {
						t.Errorf("%s token, %s: code %v, want not_found", scope, v.name, body["code"])
					}
				}
			}
			for name, tok := range map[string]string{"Revoked": revoked, "Expired": expired, "None": ""} {
				if got, body := do(t, tok, c.req(w, w.in, api.ScopeAdmin)); got != http.StatusUnauthorized || body["code"] != "unauthorized" {
					t.Errorf("%s token: %d %v, want 401 unauthorized", name, got, body)
				}
			}
		})
	}
	t.Run("UnknownRoute", func(t *testing.T) {
		if got, _ := do(t, "", authzRequest{"GET", "/v1/nope", nil}); got != 401 {
			t.Errorf("without a token: %d, want 401 (no route is revealed)", got)
		}
		if got, body := do(t, tokens["lecture-true"], authzRequest{"GET", "/v1/nope", nil}); got != 404 || body["code"] != "not_found" {
			t.Errorf("with a token: %d %v", got, body)
		}
	})
	// Outside its procedures, a token changed nothing: the dossiers made
	// en construction there still are, unfollowed, with no message, avis
	// or change; no dossier or instructeur was added; the instructeur's
	// preferences are as they were.
	var bad int
	if err := s.Pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM dossiers d WHERE d.id = ANY($1) AND (d.state <> 'en_construction' OR d.demandeur->>'emploi' = 'serveuse'))
			+ (SELECT count(*) FROM follows WHERE dossier_id = ANY($1))
			+ (SELECT count(*) FROM activities a JOIN dossiers d ON d.id = a.dossier_id WHERE d.procedure_id = $2)
			+ (SELECT count(*) FROM dossiers WHERE procedure_id = $2) - $3
			+ (SELECT count(*) FROM procedure_instructeurs WHERE procedure_id = $2) - 1
			+ (SELECT count(*) FROM instructeurs WHERE email = $4 AND notifications <> 'instant')`,
		w.fresh, w.out, w.made[w.out], w.inst[w.out]).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("requests outside the token's procedures changed %d things", bad)
	}
}

// TestMessageAuthorScope: a depot token writes as the applicant only, an
// instruction token as an instructeur only.
func TestMessageAuthorScope(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	path := fmt.Sprintf("/v1/dossiers/%d/messages", id)
	for _, tc := range []struct {
		scope api.Scope
		from  string
		want  int
	}{
		{api.ScopeDepot, "usager", 201},
		{api.ScopeDepot, inst, 403},
		{api.ScopeInstruction, inst, 201},
		{api.ScopeInstruction, "usager", 403},
		{api.ScopeAdmin, "usager", 201},
		{api.ScopeAdmin, inst, 201},
	} {
		tok, err := api.NewToken(t.Context(), s.Pool, api.TokenOptions{Name: string(tc.scope), Scope: tc.scope})
		if err != nil {
			t.Fatal(err)
		}
		r := s.Do("POST", path, map[string]any{"from": tc.from, "body": "Bonjour"}, "Authorization", "Bearer "+tok)
		if r.StatusCode != tc.want {
			t.Errorf("%s token, from %s: %d %s, want %d", tc.scope, tc.from, r.StatusCode, r.Body, tc.want)
		}
	}
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM activities WHERE dossier_id = $1`, id).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d messages stored (%v), want the 4 allowed", n, err)
	}
}
