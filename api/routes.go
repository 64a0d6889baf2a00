package api

import (
	"net/http"
	"slices"
	"strings"
)

// router is what the routes are added to: an *http.ServeMux, or a test
// that lists them (to check them against openapi.yaml).
type router interface {
	Handle(pattern string, handler http.Handler)
}

// Who may take a route.
var (
	// public: anyone, without a token.
	public = access{kind: accessPublic}
	// ops: the ops guard (Host, same origin, OPS_BASIC_AUTH or loopback).
	ops = access{kind: accessOps}
	// adminEvery: an admin token of every procedure.
	adminEvery = access{kind: accessToken, every: true}
	// admin: an admin token (of the procedure at hand).
	admin = access{kind: accessToken}
)

// scopes is a route open to tokens of these scopes, and to admin tokens.
func scopes(s ...Scope) access { return access{kind: accessToken, scopes: s} }

// routes is every route of aptflow and who may take it: the one place
// where access is decided (DESIGN.md « Access: scoped tokens »). A token
// route checks the token's scope here (403 insufficient_scope); a token
// limited to some procedures finds nothing outside them (404 not_found):
// the workflow checks that where it reads the dossier, procedure or
// instructeur the request names, in the same query (workflow.
// OnlyProcedures). A POST with an Idempotency-Key replays its response.
// TestAuthorizationMatrix takes every route of this table with every scope;
// a route it has no case for fails it.
var routes = []route{
	{"POST /v1/procedures", adminEvery, handleCreateProcedure},
	{"POST /v1/procedures/{id}/instructeurs", admin, handleAddInstructeur},
	{"GET /v1/procedures/{id}/dossiers_supprimes", scopes(ScopeInstruction, ScopeDepot, ScopeLecture), handleDeletedDossiers},
	{"POST /v1/dossiers", scopes(ScopeDepot), handleCreateDossier},
	{"GET /v1/dossiers/{id}", scopes(ScopeInstruction, ScopeDepot, ScopeLecture), handleGetDossier},
	{"PATCH /v1/dossiers/{id}", scopes(ScopeDepot), handlePatchDossier},
	{"POST /v1/dossiers/{id}/events", scopes(ScopeInstruction), handleEvent},
	{"PUT /v1/dossiers/{id}/followers/{email}", scopes(ScopeInstruction), handleFollow(true)},
	{"DELETE /v1/dossiers/{id}/followers/{email}", scopes(ScopeInstruction), handleFollow(false)},
	// from "usager" takes depot, from an instructeur instruction: the
	// handler narrows it with requireScope.
	{"POST /v1/dossiers/{id}/messages", scopes(ScopeInstruction, ScopeDepot), handleMessage},
	{"POST /v1/dossiers/{id}/avis", scopes(ScopeInstruction), handleAvis},
	{"POST /v1/dossiers/{id}/conservation", scopes(ScopeInstruction), handleConservation},
	{"GET /v1/dossiers/{id}/attestation.pdf", scopes(ScopeInstruction, ScopeDepot, ScopeLecture), handleAttestationPDF},
	{"GET /v1/instructeurs/{email}/dossiers", scopes(ScopeInstruction, ScopeLecture), handleListDossiers},
	{"PUT /v1/instructeurs/{email}/preferences", scopes(ScopeInstruction), handlePreferences},
	// The procedure's webhooks: admin only (of the procedure).
	{"POST /v1/procedures/{id}/webhooks", admin, handleCreateWebhook},
	{"GET /v1/procedures/{id}/webhooks", admin, handleListWebhooks},
	{"DELETE /v1/procedures/{id}/webhooks/{wid}", admin, handleDeleteWebhook},
	{"POST /v1/procedures/{id}/webhooks/{wid}/secret/rotate", admin, handleRotateWebhookSecret},
	{"GET /v1/procedures/{id}/webhooks/{wid}/deliveries", admin, handleListWebhookDeliveries},
	{"POST /v1/procedures/{id}/webhooks/{wid}/deliveries/{did}/retry", admin, handleRetryWebhookDelivery},

	// An employer checks an attestation, and compares a file with it.
	{"GET /attestations/{code}", public, handleVerify},
	{"POST /attestations/{code}", public, handleCompareAttestation},
	{"GET /openapi.yaml", public, handleOpenAPI},
	{"GET /healthz", public, handleHealthz},
	{"GET /readyz", public, handleReadyz},
	{"GET /metrics", ops, func(d Deps) http.Handler { return d.Metrics }},
	{"/riverui/", ops, func(d Deps) http.Handler { return d.RiverUI }},
	{"/debug/pprof/", ops, func(d Deps) http.Handler { return d.Profiler }},
}

// opsListenerRoutes are the routes of routes that the ops listener
// (METRICS_ADDR) serves too.
var opsListenerRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

// route is a line of routes: its pattern, who may take it, and its
// handler, nil when Deps lacks what it serves.
type route struct {
	pattern string
	access  access
	handler func(Deps) http.Handler
}

type accessKind int

const (
	accessToken accessKind = iota
	accessPublic
	accessOps
)

// access says who may take a route.
type access struct {
	kind accessKind
	// scopes may take a token route beside admin.
	scopes []Scope
	// every: the token must see every procedure (what it makes would be
	// outside a limited token's procedures).
	every bool
}

// addRoutes adds every route of aptflow to mux.
func addRoutes(mux router, d Deps) {
	addTableRoutes(mux, d, nil)
	// Unknown /v1/ paths are a 404 problem, after the token check: no
	// route is revealed to a client without a token.
	mux.Handle("/v1/", d.tokens.authorize(d.Logger, Scopes, false, handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		return errf(codeNotFound, "route inconnue")
	})))
}

// addOpsRoutes adds the routes of the ops listener (METRICS_ADDR).
func addOpsRoutes(mux router, d Deps) {
	addTableRoutes(mux, d, opsListenerRoutes)
}

// addTableRoutes adds the routes of the table, only those patterns if
// only is not nil, each behind what its access says.
func addTableRoutes(mux router, d Deps, only []string) {
	guard := opsGuard(d)
	// The public routes are rate limited per client: codes are
	// unguessable, guessing is noise (60 a minute, bursts of 20); a
	// comparison reads up to 5 MB, so fewer of those.
	limits := map[string]*rateLimiter{
		"GET /attestations/{code}":  newRateLimiter(60, 20),
		"POST /attestations/{code}": newRateLimiter(30, 15),
	}
	for _, rt := range routes {
		if only != nil && !slices.Contains(only, rt.pattern) {
			continue
		}
		h := rt.handler(d)
		if h == nil {
			continue
		}
		switch rt.access.kind {
		case accessOps:
			h = guard(h)
		case accessPublic:
			if l := limits[rt.pattern]; l != nil {
				h = l.limit(d.TrustedProxies, h)
			}
		case accessToken:
			if strings.HasPrefix(rt.pattern, "POST ") {
				h = idempotent(d.Pool, d.Logger)(h)
			}
			h = d.tokens.authorize(d.Logger, rt.access.scopes, rt.access.every, h)
		}
		mux.Handle(rt.pattern, h)
	}
}
