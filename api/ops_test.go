package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// opsServer is the API with stand-ins for the metrics and River UI
// handlers: what is under test is the guard in front of them.
func opsServer(basicAuth string, trustProxy bool) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops") })
	return NewServer(Deps{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:      ok,
		RiverUI:      ok,
		OpsBasicAuth: basicAuth,
		TrustProxy:   trustProxy,
	})
}

// opsPaths are guarded: the metrics, River UI's page and its API.
var opsPaths = []string{"/metrics", "/riverui/", "/riverui/api/features"}

type opsRequest struct {
	remoteAddr string
	user, pass string // basic auth when user != ""
	xff        []string
}

func (o opsRequest) do(h http.Handler, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = o.remoteAddr
	if o.user != "" {
		r.SetBasicAuth(o.user, o.pass)
	}
	for _, v := range o.xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestOpsGuard(t *testing.T) {
	t.Parallel()
	const local, remote = "127.0.0.1:52000", "203.0.113.7:52000"

	t.Run("BasicAuth", func(t *testing.T) {
		t.Parallel()
		h := opsServer("ops:s3cr3t:with-colon", false)
		for name, tc := range map[string]struct {
			req  opsRequest
			want int
		}{
			"NoCredentials":       {opsRequest{remoteAddr: remote}, 401},
			"NoCredentialsLocal":  {opsRequest{remoteAddr: local}, 401}, // once set, auth is required from anywhere
			"WrongPassword":       {opsRequest{remoteAddr: remote, user: "ops", pass: "s3cr3t"}, 401},
			"WrongUser":           {opsRequest{remoteAddr: remote, user: "admin", pass: "s3cr3t:with-colon"}, 401},
			"OK":                  {opsRequest{remoteAddr: remote, user: "ops", pass: "s3cr3t:with-colon"}, 200},
			"OKLocal":             {opsRequest{remoteAddr: local, user: "ops", pass: "s3cr3t:with-colon"}, 200},
			"SpoofedForwardedFor": {opsRequest{remoteAddr: remote, xff: []string{"127.0.0.1"}}, 401},
		} {
			t.Run(name, func(t *testing.T) {
				for _, p := range opsPaths {
					w := tc.req.do(h, p)
					if w.Code != tc.want {
						t.Errorf("%s: %d, want %d: %s", p, w.Code, tc.want, w.Body)
					}
					if tc.want == 401 {
						if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="aptflow ops", charset="UTF-8"` {
							t.Errorf("%s: WWW-Authenticate %q", p, got)
						}
						if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
							t.Errorf("%s: Content-Type %q", p, ct)
						}
					}
				}
			})
		}
	})

	t.Run("LoopbackOnly", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			trustProxy bool
			req        opsRequest
			want       int
		}{
			"IPv4Loopback":   {false, opsRequest{remoteAddr: local}, 200},
			"IPv6Loopback":   {false, opsRequest{remoteAddr: "[::1]:52000"}, 200},
			"Remote":         {false, opsRequest{remoteAddr: remote}, 403},
			"PrivateNetwork": {false, opsRequest{remoteAddr: "10.0.0.5:52000"}, 403},
			// Basic credentials are no way in when none are configured.
			"RemoteWithCredentials": {false, opsRequest{remoteAddr: remote, user: "ops", pass: "x"}, 403},
			// X-Forwarded-For is ignored unless TRUST_PROXY...
			"UntrustedForwardedFor": {false, opsRequest{remoteAddr: remote, xff: []string{"127.0.0.1"}}, 403},
			// ...and then the entry the proxy appended counts, not the client's.
			"ProxiedRemote":          {true, opsRequest{remoteAddr: local, xff: []string{"203.0.113.7"}}, 403},
			"ProxiedSpoofedLoopback": {true, opsRequest{remoteAddr: local, xff: []string{"127.0.0.1, 203.0.113.7"}}, 403},
			"ProxiedSpoofedHeader":   {true, opsRequest{remoteAddr: local, xff: []string{"127.0.0.1", "203.0.113.7"}}, 403},
			"ProxiedLocal":           {true, opsRequest{remoteAddr: local, xff: []string{"203.0.113.7, 127.0.0.1"}}, 200},
		} {
			t.Run(name, func(t *testing.T) {
				h := opsServer("", tc.trustProxy)
				for _, p := range opsPaths {
					w := tc.req.do(h, p)
					if w.Code != tc.want {
						t.Errorf("%s: %d, want %d: %s", p, w.Code, tc.want, w.Body)
					}
					if tc.want == 403 && w.Header().Get("Content-Type") != "application/problem+json" {
						t.Errorf("%s: Content-Type %q", p, w.Header().Get("Content-Type"))
					}
				}
			})
		}
	})

	t.Run("OpenEndpoints", func(t *testing.T) {
		t.Parallel()
		// Probes and client generators reach these from anywhere, without
		// credentials, whatever the ops configuration.
		for _, auth := range []string{"", "ops:s3cr3t"} {
			h := opsServer(auth, false)
			for _, p := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
				if w := (opsRequest{remoteAddr: remote}).do(h, p); w.Code != 200 {
					t.Errorf("OPS_BASIC_AUTH=%q %s: %d", auth, p, w.Code)
				}
			}
		}
	})

	t.Run("OpsServer", func(t *testing.T) {
		t.Parallel()
		// The METRICS_ADDR listener guards its /metrics the same way and has
		// no API.
		h := NewOpsServer(Deps{Metrics: http.NotFoundHandler(), OpsBasicAuth: "ops:s3cr3t"})
		for path, want := range map[string]int{"/metrics": 401, "/healthz": 200, "/readyz": 200, "/v1/dossiers/1": 404, "/openapi.yaml": 404} {
			if w := (opsRequest{remoteAddr: remote}).do(h, path); w.Code != want {
				t.Errorf("%s: %d, want %d", path, w.Code, want)
			}
		}
	})
}
