package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// OpenAPI is the OpenAPI 3 description of every route of routes.go; a test
// keeps the two in step.
//
//go:embed openapi.yaml
var OpenAPI []byte

// handleOpenAPI serves openapi.yaml, open to anyone: it holds no secret and
// client generators fetch it without credentials.
func handleOpenAPI(Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(OpenAPI)))
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(OpenAPI)
	})
}
