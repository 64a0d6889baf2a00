package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/workflow"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// Deps are what the server needs.
type Deps struct {
	Service *workflow.Service
	Pool    *pgxpool.Pool
	Logger  *slog.Logger
	// Ready reports whether the process can serve (database reachable,
	// workers started); /readyz answers 503 with its error.
	Ready func(r *http.Request) error
	// Ops is served under /metrics and /riverui/, behind OpsAuth.
	Metrics http.Handler
	RiverUI http.Handler
	// Profiler, if set, is served under /debug/pprof/ behind the ops guard
	// too: see Profiler.
	Profiler http.Handler
	// OpsBasicAuth is "user:password"; empty: ops endpoints answer loopback
	// clients only.
	OpsBasicAuth string
	// TrustedProxies are the proxies whose X-Forwarded-For is read, right
	// to left (TRUSTED_PROXIES); none: the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// OpsHosts are what the ops routes answer to in the Host header beside
	// loopback names: PUBLIC_URL, HTTP_ADDR and METRICS_ADDR (URLs or
	// host:port).
	OpsHosts []string
	// tokens authenticates the bearer tokens; NewServer sets it.
	tokens *tokenAuth
	// HTTPMetrics, if set, counts the requests by route.
	HTTPMetrics *HTTPMetrics
}

// NewServer returns the HTTP handler of aptflow.
func NewServer(deps Deps) http.Handler {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	deps.tokens = newTokenAuth(deps.Pool, deps.Logger)
	mux := http.NewServeMux()
	addRoutes(deps.HTTPMetrics.router(mux), deps)
	return deps.HTTPMetrics.instrument(recoverPanics(deps.Logger, problemErrors(mux)))
}

// NewOpsServer returns the handler of the ops endpoints alone: /healthz,
// /readyz, and /metrics and /riverui/ behind the ops guard when deps has
// them. `aptflow work` serves it on METRICS_ADDR, having no API.
func NewOpsServer(deps Deps) http.Handler {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	addOpsRoutes(deps.HTTPMetrics.router(mux), deps)
	return deps.HTTPMetrics.instrument(recoverPanics(deps.Logger, problemErrors(mux)))
}

// problemErrors answers the mux's own 404 and 405 (no route for the path,
// or not for the method) as problem+json, like every other error; the
// mux's redirects (a path to clean) go out as they are.
func problemErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := newBufferedResponse()
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeProblem(w, problem(codeNotFound, "route inconnue", nil))
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeProblem(w, problem(codeMethodNotAllowed, "méthode non permise sur cette route", nil))
		default:
			rec.sendTo(w)
		}
	})
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc, writing its error as a problem.
func handle(log *slog.Logger, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, log, err)
		}
	})
}

// decode reads a JSON body into v: 415 if it is not JSON, 413 if too large,
// 400 invalid_json if malformed, 422 with the field for a wrong type or an
// unknown field.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errf(codeUnsupportedMedia, "le corps doit être du JSON (Content-Type: application/json)")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(codeBodyTooLarge, "le corps de la requête dépasse "+strconv.Itoa(MaxBodyBytes)+" octets")
		}
		return errf(codeInvalidJSON, "corps illisible")
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	err := workflow.DecodeJSON(body, v)
	var je *workflow.JSONError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &je) || je.Malformed:
		return errf(codeInvalidJSON, "JSON mal formé")
	case je.Field.Field != "":
		return &httpError{code: workflow.EInvalid, detail: "certains champs sont invalides", fields: []workflow.FieldError{je.Field}}
	default:
		return errf(codeInvalidJSON, "JSON invalide : objet attendu")
	}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// pathID parses the {id} path value; a malformed id is a 404, like an
// unknown one.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, workflow.Errorf(workflow.ENotFound, "ressource inconnue")
	}
	return id, nil
}

// recoverPanics answers 500 instead of dropping the connection, and logs
// the panic once.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic in handler", "route", r.Pattern, "panic", v)
				writeProblem(w, problem(codeInternal, "erreur interne", nil))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
