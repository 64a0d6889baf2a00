package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProfilerBehindOpsGuard: /debug/pprof/ answers operators only, like
// /metrics.
func TestProfilerBehindOpsGuard(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	get := func(h http.Handler, remote string, auth bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
		r.RemoteAddr = remote
		r.Host = "localhost:8080"
		if auth {
			r.SetBasicAuth("ops", "s3cret")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	open := NewServer(Deps{Logger: logger, Profiler: Profiler()})
	guarded := NewServer(Deps{Logger: logger, Profiler: Profiler(), OpsBasicAuth: "ops:s3cret"})
	for _, tc := range []struct {
		name   string
		h      http.Handler
		remote string
		auth   bool
		want   int
	}{
		{"LoopbackWithoutOpsAuth", open, "127.0.0.1:5000", false, http.StatusOK},
		{"RemoteWithoutOpsAuth", open, "192.0.2.7:5000", false, http.StatusForbidden},
		{"NoCredentials", guarded, "127.0.0.1:5000", false, http.StatusUnauthorized},
		{"Credentials", guarded, "192.0.2.7:5000", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := get(tc.h, tc.remote, tc.auth)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == http.StatusOK && !strings.Contains(w.Body.String(), "goroutine") {
				t.Errorf("not pprof's index: %.200s", w.Body)
			}
		})
	}
	t.Run("NotServedWithoutProfiler", func(t *testing.T) {
		t.Parallel()
		w := get(NewServer(Deps{Logger: logger}), "127.0.0.1:5000", false)
		if w.Code != http.StatusNotFound {
			t.Fatalf("status %d, want 404", w.Code)
		}
	})
}
