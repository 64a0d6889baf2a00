package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series reads a family of reg as "label=value,..." → sample (counter
// value or histogram count).
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			out[strings.Join(labels, ",")] = sampleValue(m)
		}
	}
	return out
}

func sampleValue(m *dto.Metric) float64 {
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

// TestHTTPMetrics: requests are counted by route pattern (never by path:
// no id, no e-mail address), method and status, with bounded values for
// what matches no route and for made-up methods; every route's duration
// series exists before its first request.
func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops") })
	h := NewServer(Deps{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:       func(*http.Request) error { return nil },
		Metrics:     ok,
		RiverUI:     ok,
		HTTPMetrics: NewHTTPMetrics(reg),
	})

	before := series(t, reg, "aptflow_http_request_duration_seconds")
	for _, rt := range []string{"/v1/dossiers/{id}", "/v1/dossiers/{id}/followers/{email}", "/healthz", "/riverui/", "/attestations/{code}"} {
		if n, ok := before["route="+rt]; !ok || n != 0 {
			t.Errorf("before any request: duration of %s = %v (present %v), want 0", rt, n, ok)
		}
	}

	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"},
		{"GET", "/healthz"},
		{"GET", "/v1/dossiers/123"}, // 401: no token
		{"PUT", "/v1/dossiers/7/followers/camille@prefecture.test"}, // 401
		{"GET", "/riverui/api/jobs"},
		{"GET", "/nowhere/42"},
		{"POST", "/healthz"},
		{"BREW", "/healthz"},
		{"GET", "/v1/nowhere"},
	} {
		req := httptest.NewRequest(r.method, r.path, nil)
		req.RemoteAddr, req.Host = "127.0.0.1:50000", "localhost" // the ops routes' loopback client
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	got := series(t, reg, "aptflow_http_requests_total")
	want := map[string]float64{
		"code=200,method=GET,route=/healthz":                            2,
		"code=401,method=GET,route=/v1/dossiers/{id}":                   1,
		"code=401,method=PUT,route=/v1/dossiers/{id}/followers/{email}": 1,
		"code=200,method=GET,route=/riverui/":                           1,
		"code=404,method=GET,route=unmatched":                           1,
		"code=405,method=POST,route=unmatched":                          1,
		"code=405,method=other,route=unmatched":                         1,
		"code=401,method=GET,route=/v1/":                                1, // the catch-all, behind the token
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("aptflow_http_requests_total{%s} = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series aptflow_http_requests_total{%s}", k)
		}
		if strings.Contains(k, "123") || strings.Contains(k, "@") || strings.Contains(k, "BREW") {
			t.Errorf("a path or method leaked into a label: %s", k)
		}
	}
	if d := series(t, reg, "aptflow_http_request_duration_seconds"); d["route=/healthz"] != 2 || d["route=unmatched"] != 3 {
		t.Errorf("durations: /healthz %v (want 2), unmatched %v (want 3)", d["route=/healthz"], d["route=unmatched"])
	}
}
