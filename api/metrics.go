package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteUnmatched is the route label of a request that no route matched
// (a 404 or 405 of the router itself).
const RouteUnmatched = "unmatched"

// HTTPMetrics counts the server's requests by route pattern, never by path:
// a path holds ids and e-mail addresses, which would make one series per
// dossier (and put personal data in the metrics).
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers aptflow_http_requests_total{route,method,code}
// and aptflow_http_request_duration_seconds{route} on reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aptflow_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" when none), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aptflow_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern, until the handler returns.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// methods are the method label's values; any other method is "other", so
// that a client cannot make a series per made-up method.
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// routeLabel is the label of a ServeMux pattern: its path, without the
// method.
func routeLabel(pattern string) string {
	if pattern == "" {
		return RouteUnmatched
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// countedRouter records the patterns the server registers, so that each
// route's duration series exists from the start (a dashboard shows 0, not
// nothing).
type countedRouter struct {
	router
	m *HTTPMetrics
}

// router returns mux, recording its routes when m is not nil.
func (m *HTTPMetrics) router(mux *http.ServeMux) router {
	if m == nil {
		return mux
	}
	return countedRouter{mux, m}
}

// Handle registers the route on the router and its duration series.
func (r countedRouter) Handle(pattern string, h http.Handler) {
	r.m.duration.WithLabelValues(routeLabel(pattern))
	r.router.Handle(pattern, h)
}

// instrument counts the requests of next, a ServeMux (possibly wrapped by
// middleware that passes the request on as it is): the route is read from
// the request's Pattern once the mux has routed it. A nil m counts nothing.
func (m *HTTPMetrics) instrument(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// The mux sets Pattern on the request it was given: this one.
			rt := routeLabel(r.Pattern)
			method := r.Method
			if !methods[method] {
				method = "other"
			}
			m.requests.WithLabelValues(rt, method, strconv.Itoa(sw.status())).Inc()
			m.duration.WithLabelValues(rt).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets handlers that stream (pprof, River UI) flush through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is what the client got: 200 if the handler wrote nothing.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
