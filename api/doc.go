// Package api is aptflow's HTTP API: JSON over net/http's router, bearer
// tokens, RFC 9457 problem+json errors, Idempotency-Key replays.
//
// Start with routes.go (every route in one place), then errors.go (the one
// place where domain error codes become HTTP statuses). Handlers are
// functions that close over their dependencies and return http.Handler.
package api
