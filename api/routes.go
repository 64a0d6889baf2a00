package api

import "net/http"

// router is what the routes are added to: an *http.ServeMux, or a test
// that lists them (to check them against openapi.yaml).
type router interface {
	Handle(pattern string, handler http.Handler)
}

// addRoutes lists every route of aptflow.
func addRoutes(mux router, d Deps) {
	log := d.Logger
	auth := requireToken(d.Pool, log)
	idem := idempotent(d.Pool, log)
	v1 := func(h http.Handler) http.Handler { return auth(h) }
	post := func(h http.Handler) http.Handler { return auth(idem(h)) }

	mux.Handle("POST /v1/procedures", post(handleCreateProcedure(d)))
	mux.Handle("POST /v1/procedures/{id}/instructeurs", post(handleAddInstructeur(d)))
	mux.Handle("POST /v1/dossiers", post(handleCreateDossier(d)))
	mux.Handle("GET /v1/dossiers/{id}", v1(handleGetDossier(d)))
	mux.Handle("PATCH /v1/dossiers/{id}", v1(handlePatchDossier(d)))
	mux.Handle("POST /v1/dossiers/{id}/events", post(handleEvent(d)))
	mux.Handle("PUT /v1/dossiers/{id}/followers/{email}", v1(handleFollow(d, true)))
	mux.Handle("DELETE /v1/dossiers/{id}/followers/{email}", v1(handleFollow(d, false)))
	mux.Handle("POST /v1/dossiers/{id}/messages", post(handleMessage(d)))
	mux.Handle("POST /v1/dossiers/{id}/avis", post(handleAvis(d)))
	mux.Handle("GET /v1/dossiers/{id}/attestation.pdf", v1(handleAttestationPDF(d)))
	mux.Handle("GET /v1/instructeurs/{email}/dossiers", v1(handleListDossiers(d)))
	mux.Handle("PUT /v1/instructeurs/{email}/preferences", v1(handlePreferences(d)))
	mux.Handle("POST /v1/procedures/{id}/webhooks", post(handleCreateWebhook(d)))
	mux.Handle("GET /v1/procedures/{id}/webhooks", v1(handleListWebhooks(d)))
	mux.Handle("DELETE /v1/procedures/{id}/webhooks/{wid}", v1(handleDeleteWebhook(d)))
	mux.Handle("POST /v1/procedures/{id}/webhooks/{wid}/secret/rotate", post(handleRotateWebhookSecret(d)))
	mux.Handle("GET /v1/procedures/{id}/webhooks/{wid}/deliveries", v1(handleListWebhookDeliveries(d)))
	mux.Handle("POST /v1/procedures/{id}/webhooks/{wid}/deliveries/{did}/retry", post(handleRetryWebhookDelivery(d)))
	mux.Handle("/v1/", v1(handle(log, func(w http.ResponseWriter, r *http.Request) error {
		return errf(codeNotFound, "route inconnue")
	})))

	// Public: an employer checks an attestation. Rate limited per client
	// (60 a minute, bursts of 20): codes are unguessable, guessing is noise.
	mux.Handle("GET /attestations/{code}", newRateLimiter(60, 20).limit(d.TrustProxy, handleVerify(d)))
	mux.Handle("GET /openapi.yaml", handleOpenAPI())

	addOpsRoutes(mux, d)
}

// addOpsRoutes lists the routes of the ops listener (METRICS_ADDR), which
// the main one serves too.
func addOpsRoutes(mux router, d Deps) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	ops := opsOnly(d.OpsBasicAuth, d.TrustProxy)
	if d.Metrics != nil {
		mux.Handle("GET /metrics", ops(d.Metrics))
	}
	if d.RiverUI != nil {
		mux.Handle("/riverui/", ops(d.RiverUI))
	}
	if d.Profiler != nil {
		mux.Handle("/debug/pprof/", ops(d.Profiler))
	}
}
