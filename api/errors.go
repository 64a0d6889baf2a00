package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aptflow/aptflow/workflow"
)

// Error codes of the HTTP layer, beside the domain's (workflow.E...).
const (
	codeInvalidJSON           = "invalid_json"
	codeUnauthorized          = "unauthorized"
	codeBodyTooLarge          = "body_too_large"
	codeUnsupportedMedia      = "unsupported_media_type"
	codeInternal              = "internal"
	codeIdempotencyReused     = "idempotency_key_reused"
	codeIdempotencyKeyTooLong = "idempotency_key_too_long"
	codeInvalidIdempotencyKey = "invalid_idempotency_key"
	codeNotFound              = workflow.ENotFound
	codeForbidden             = "forbidden"
	codeRateLimited           = "rate_limited"
	codeUnavailable           = "unavailable"
	codeInsufficientScope     = "insufficient_scope"
	codeMisdirected           = "misdirected_request"
	codeCrossOrigin           = "cross_origin"
	codeMethodNotAllowed      = "method_not_allowed"
)

// statuses maps every error code the API answers with to its HTTP status:
// the one place where that happens. api/openapi.yaml lists the same codes
// (TestProblemCodesDocumented).
var statuses = map[string]int{
	workflow.ENotFound:              http.StatusNotFound,
	workflow.EInvalid:               http.StatusUnprocessableEntity,
	workflow.EMotivationRequired:    http.StatusUnprocessableEntity,
	workflow.EUnknownEvent:          http.StatusUnprocessableEntity,
	workflow.EInstructeurRequired:   http.StatusUnprocessableEntity,
	codeIdempotencyReused:           http.StatusUnprocessableEntity,
	workflow.EInvalidTransition:     http.StatusConflict,
	workflow.ENotEditable:           http.StatusConflict,
	workflow.EWebhookDisabled:       http.StatusConflict,
	workflow.ENotInstructeur:        http.StatusForbidden,
	workflow.EDossierSupprime:       http.StatusGone,
	codeForbidden:                   http.StatusForbidden,
	codeInsufficientScope:           http.StatusForbidden,
	codeCrossOrigin:                 http.StatusForbidden,
	codeMisdirected:                 http.StatusMisdirectedRequest,
	codeMethodNotAllowed:            http.StatusMethodNotAllowed,
	codeInvalidJSON:                 http.StatusBadRequest,
	codeIdempotencyKeyTooLong:       http.StatusBadRequest,
	codeInvalidIdempotencyKey:       http.StatusBadRequest,
	codeUnauthorized:                http.StatusUnauthorized,
	codeBodyTooLarge:                http.StatusRequestEntityTooLarge,
	codeUnsupportedMedia:            http.StatusUnsupportedMediaType,
	codeRateLimited:                 http.StatusTooManyRequests,
	codeUnavailable:                 http.StatusServiceUnavailable,
	workflow.EWebhooksNotConfigured: http.StatusServiceUnavailable,
	codeInternal:                    http.StatusInternalServerError,
}

// statusOf returns the HTTP status of an error code; 500 for a code
// statuses does not know, which TestProblemCodesDocumented rules out.
func statusOf(code string) int {
	if status, ok := statuses[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem detail, with aptflow's `code` and, for
// invalid input, one entry per bad field; for a purged dossier
// (dossier_supprime), the members of its tombstone.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Code   string         `json:"code"`
	Errors []fieldProblem `json:"errors,omitempty"`
	// The tombstone's fields (id, procedure_id, state, decided_at,
	// deleted_at, reason) are extension members of the problem; none when
	// nil.
	*workflow.Tombstone
}

type fieldProblem struct {
	workflow.FieldError
	// Pointer is the JSON pointer (RFC 6901) of the field in the request.
	Pointer string `json:"pointer"`
}

// problem builds the Problem of a code.
func problem(code, detail string, fields []workflow.FieldError) Problem {
	status := statusOf(code)
	p := Problem{
		Type:   "urn:aptflow:problem:" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
	for _, f := range fields {
		p.Errors = append(p.Errors, fieldProblem{FieldError: f, Pointer: pointer(f.Field)})
	}
	return p
}

// pointer turns "demandeur.employeur.siret" into "/demandeur/employeur/siret".
func pointer(field string) string {
	b := []byte("/")
	for i := 0; i < len(field); i++ {
		switch c := field[i]; c {
		case '.':
			b = append(b, '/')
		case '~':
			b = append(b, '~', '0')
		case '/':
			b = append(b, '~', '1')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError writes err as a problem. Domain errors keep their code and
// message; anything else is logged once, here, and answered as a 500 that
// says nothing of the cause.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var de *workflow.Error
	var he *httpError
	switch {
	case errors.As(err, &de):
		p := problem(de.Code, de.Message, de.Fields)
		p.Tombstone = de.Tombstone
		writeProblem(w, p)
	case errors.As(err, &he):
		writeProblem(w, problem(he.code, he.detail, he.fields))
	case unavailable(err):
		// The database restarts or is out of reach: the client may try
		// again shortly, and ops see the cause in one warning. A change
		// whose COMMIT was cut may have been made: tried again, it answers
		// 409, or with the same Idempotency-Key the first answer.
		log.WarnContext(r.Context(), "request failed: database unavailable", "method", r.Method, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(codeUnavailable, "service momentanément indisponible : réessayez dans un instant", nil))
	default:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "err", err)
		writeProblem(w, problem(codeInternal, "erreur interne", nil))
	}
}

// unavailable says whether err is the database being out of reach: not
// listening, shutting down, or gone in the middle of a request.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return true
	case errors.As(err, &pe):
		// 08: connection exception; 57P01-57P03: shutting down, crashed,
		// not accepting connections yet.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}

// httpError is an error of the HTTP layer itself (bad JSON, auth...).
type httpError struct {
	code, detail string
	fields       []workflow.FieldError
}

func (e *httpError) Error() string { return e.code + ": " + e.detail }

func errf(code, detail string) error { return &httpError{code: code, detail: detail} }
