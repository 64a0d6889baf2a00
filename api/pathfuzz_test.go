package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/aptflow/aptflow/api"
	"github.com/aptflow/aptflow/internal/apptest"
)

// FuzzRequestPaths: any bytes in a request's path or query, on any route,
// with a valid token or none, is answered below 500 (DESIGN.md: a 4xx,
// never a 5xx), and a 404 or 405 is problem+json. The handler runs
// in-process against a real database, so that the bytes reach it as they
// are, past what an HTTP client would escape.
func FuzzRequestPaths(f *testing.F) {
	s := apptest.Start(f, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	logs := &apptest.SyncBuffer{}
	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops") })
	h := api.NewServer(api.Deps{Service: s.Service, Pool: s.Pool, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics: stub, RiverUI: stub, Profiler: api.Profiler()})
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

	for _, seed := range []struct {
		method      uint8
		path, query string
		token       bool
	}{
		{0, "/attestations/\xff\xfe\xfd" + strings.Repeat("a", 29), "", false},
		{0, "/attestations/" + strings.Repeat("\xc3", 32), "", false},
		{0, "/attestations/\x00", "", false},
		{0, "/v1/dossiers/1", "", true},
		{0, "/v1/dossiers/\xff", "", true},
		{0, "/v1/dossiers/99999999999999999999999", "", true},
		{2, "/v1/dossiers/1/followers/\xff@b.fr", "", true},
		{4, "/v1/dossiers/1/followers/%ff%fe", "", true},
		{0, "/v1/instructeurs/" + inst + "/dossiers", "tab=\xff&limit=\xfe&after=\x00", true},
		{0, "/v1/instructeurs/\xe9@b.fr/dossiers", "tab=tous", true},
		{2, "/v1/instructeurs/a@b.fr\xff/preferences", "", true},
		{0, "/riverui/api/jobs", "state=\xff", false},
		{1, "/riverui/api/jobs/cancel", "", false},
		{0, "/debug/pprof/\xff", "debug=\xff", false},
		{0, "/metrics", "%", false},
		{4, "/healthz", "", false},
		{0, "/nowhere\xff", "", false},
		{0, "/v1/../../etc/passwd", "", true},
		{0, "//", "", false},
		{0, "/v1/dossiers/" + itoa(id) + "/attestation.pdf", "", true},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.token)
	}
	f.Fuzz(func(t *testing.T, method uint8, path, query string, token bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r := httptest.NewRequest("GET", "/", nil).WithContext(context.Background())
		r.Method = methods[int(method)%len(methods)]
		r.URL = &url.URL{Path: path, RawQuery: query}
		r.RequestURI = path + "?" + query
		r.Host = "127.0.0.1:8080"
		r.RemoteAddr = "127.0.0.1:50000"
		if token {
			r.Header.Set("Authorization", "Bearer "+s.Token)
			// And the verification page answers in JSON (problem+json).
			r.Header.Set("Accept", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q ? %q = %d: %s", r.Method, path, query, w.Code, w.Body)
		}
		// The verification page answers a person in HTML, a 404 too.
		page := strings.HasPrefix(path, "/attestations/") && strings.HasPrefix(w.Header().Get("Content-Type"), "text/html")
		if (w.Code == 404 || w.Code == 405) && w.Header().Get("Content-Type") != "application/problem+json" && !page {
			t.Fatalf("%s %q = %d as %q", r.Method, path, w.Code, w.Header().Get("Content-Type"))
		}
	})
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		f.Fatalf("an ERROR was logged:\n%s", logs.String())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
