package api

import (
	"cmp"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// opsServer is the API with stand-ins for the metrics and River UI
// handlers: what is under test is the guard in front of them. trusted is
// TRUSTED_PROXIES.
func opsServer(basicAuth string, trusted ...string) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops") })
	var proxies []netip.Prefix
	for _, p := range trusted {
		proxies = append(proxies, netip.MustParsePrefix(p))
	}
	return NewServer(Deps{
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:        ok,
		RiverUI:        ok,
		OpsBasicAuth:   basicAuth,
		TrustedProxies: proxies,
		OpsHosts:       []string{"https://aptflow.example.fr", "127.0.0.1:8080", ":9090"},
	})
}

// opsPaths are guarded: the metrics, River UI's page and its API.
var opsPaths = []string{"/metrics", "/riverui/", "/riverui/api/features"}

type opsRequest struct {
	remoteAddr string
	user, pass string // basic auth when user != ""
	xff        []string
	host       string // the Host header; default the PUBLIC_URL's
	method     string // default GET
	headers    []string
}

func (o opsRequest) do(h http.Handler, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(cmp.Or(o.method, "GET"), path, nil)
	r.RemoteAddr = o.remoteAddr
	r.Host = cmp.Or(o.host, "aptflow.example.fr")
	for i := 0; i+1 < len(o.headers); i += 2 {
		r.Header.Set(o.headers[i], o.headers[i+1])
	}
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
		h := opsServer("ops:s3cr3t:with-colon")
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
		const proxy = "10.0.0.0/8"
		for name, tc := range map[string]struct {
			trusted []string
			req     opsRequest
			want    int
		}{
			"IPv4Loopback":   {nil, opsRequest{remoteAddr: local}, 200},
			"IPv6Loopback":   {nil, opsRequest{remoteAddr: "[::1]:52000"}, 200},
			"Remote":         {nil, opsRequest{remoteAddr: remote}, 403},
			"PrivateNetwork": {nil, opsRequest{remoteAddr: "10.0.0.5:52000"}, 403},
			// Basic credentials are no way in when none are configured.
			"RemoteWithCredentials": {nil, opsRequest{remoteAddr: remote, user: "ops", pass: "x"}, 403},
			// X-Forwarded-For is ignored unless the peer is a trusted proxy...
			"UntrustedForwardedFor":     {nil, opsRequest{remoteAddr: remote, xff: []string{"127.0.0.1"}}, 403},
			"UntrustedPeerWithTrusted":  {[]string{proxy}, opsRequest{remoteAddr: remote, xff: []string{"127.0.0.1"}}, 403},
			"LoopbackNotTrustedByProxy": {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"203.0.113.7"}}, 403},
			// ...and then it is read right to left: the first hop that is
			// not a trusted proxy is the client, whatever it wrote before.
			"ProxiedRemote":          {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"203.0.113.7"}}, 403},
			"ProxiedSpoofedLoopback": {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"127.0.0.1, 203.0.113.7"}}, 403},
			"ProxiedSpoofedHeader":   {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"127.0.0.1", "203.0.113.7"}}, 403},
			"ProxiedTwoHops":         {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"127.0.0.1, 203.0.113.7, 10.1.2.3"}}, 403},
			"ProxiedUnparsable":      {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"127.0.0.1, garbage"}}, 403},
			"ProxiedLocal":           {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"203.0.113.7, 127.0.0.1"}}, 200},
			"ProxiedLocalTwoHops":    {[]string{proxy}, opsRequest{remoteAddr: "10.0.0.5:52000", xff: []string{"127.0.0.1, 10.9.9.9"}}, 200},
			// The old TRUST_PROXY=true took the last entry from anyone.
			"LoopbackPeerNotAProxy": {[]string{proxy}, opsRequest{remoteAddr: remote, xff: []string{"127.0.0.1"}}, 403},
		} {
			t.Run(name, func(t *testing.T) {
				h := opsServer("", tc.trusted...)
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

	t.Run("Host", func(t *testing.T) {
		t.Parallel()
		// DNS rebinding: a page of evil.example whose name now points at
		// 127.0.0.1 reaches a loopback listener, with its own name in Host.
		h := opsServer("")
		for host, want := range map[string]int{
			"aptflow.example.fr":      200, // PUBLIC_URL
			"AptFlow.Example.FR:443":  200,
			"127.0.0.1:8080":          200, // HTTP_ADDR, and loopback
			"localhost:8080":          200,
			"[::1]:8080":              200,
			"evil.example":            421,
			"evil.example:8080":       421,
			"aptflow.example.fr.evil": 421,
			"localhost.evil.example":  421,
			"192.0.2.10:9090":         421, // an address, but not the one the request came to
		} {
			for _, p := range opsPaths {
				w := (opsRequest{remoteAddr: local, host: host}).do(h, p)
				if w.Code != want {
					t.Errorf("Host %s %s: %d, want %d", host, p, w.Code, want)
				}
				if want == 421 && (w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), `"misdirected_request"`)) {
					t.Errorf("Host %s %s: %s %s", host, p, w.Header().Get("Content-Type"), w.Body)
				}
			}
		}
		// The API and the public routes do not depend on Host.
		if w := (opsRequest{remoteAddr: local, host: "evil.example"}).do(h, "/healthz"); w.Code != 200 {
			t.Errorf("/healthz with a foreign Host: %d", w.Code)
		}
	})

	t.Run("CrossOrigin", func(t *testing.T) {
		t.Parallel()
		h := opsServer("")
		const cancel = "/riverui/api/jobs/cancel"
		for name, tc := range map[string]struct {
			headers []string
			want    int
		}{
			// What the security review did: a form or fetch from another
			// site, Content-Type text/plain to skip the preflight.
			"OtherOrigin":   {[]string{"Origin", "http://evil.example", "Content-Type", "text/plain"}, 403},
			"CrossSite":     {[]string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403},
			"SameSite":      {[]string{"Sec-Fetch-Site", "same-site", "Origin", "https://other.example.fr"}, 403},
			"NullOrigin":    {[]string{"Origin", "null"}, 403},
			"SameOrigin":    {[]string{"Sec-Fetch-Site", "same-origin", "Origin", "https://aptflow.example.fr"}, 200},
			"OriginMatches": {[]string{"Origin", "https://aptflow.example.fr"}, 200},
			"UserTyped":     {[]string{"Sec-Fetch-Site", "none"}, 200},
			"NotABrowser":   {nil, 200},
		} {
			t.Run(name, func(t *testing.T) {
				w := (opsRequest{remoteAddr: local, method: "POST", headers: tc.headers}).do(h, cancel)
				if w.Code != tc.want {
					t.Fatalf("%d, want %d: %s", w.Code, tc.want, w.Body)
				}
				if tc.want == 403 && !strings.Contains(w.Body.String(), `"cross_origin"`) {
					t.Errorf("body %s", w.Body)
				}
			})
		}
		// Reading stays possible from a link (safe methods change nothing).
		if w := (opsRequest{remoteAddr: local, headers: []string{"Sec-Fetch-Site", "cross-site"}}).do(h, "/riverui/"); w.Code != 200 {
			t.Errorf("GET from a link: %d", w.Code)
		}
	})

	t.Run("OpenEndpoints", func(t *testing.T) {
		t.Parallel()
		// Probes and client generators reach these from anywhere, without
		// credentials, whatever the ops configuration.
		for _, auth := range []string{"", "ops:s3cr3t"} {
			h := opsServer(auth)
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
		h := NewOpsServer(Deps{Metrics: http.NotFoundHandler(), OpsBasicAuth: "ops:s3cr3t", OpsHosts: []string{"aptflow.example.fr"}})
		for path, want := range map[string]int{"/metrics": 401, "/healthz": 200, "/readyz": 200, "/v1/dossiers/1": 404, "/openapi.yaml": 404} {
			w := (opsRequest{remoteAddr: remote}).do(h, path)
			if w.Code != want {
				t.Errorf("%s: %d, want %d", path, w.Code, want)
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: Content-Type %q", path, w.Header().Get("Content-Type"))
			}
		}
		if w := (opsRequest{remoteAddr: remote, host: "evil.example"}).do(h, "/metrics"); w.Code != 421 {
			t.Errorf("/metrics with a foreign Host: %d", w.Code)
		}
	})
}
