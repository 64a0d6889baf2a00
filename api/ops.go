package api

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// opsGuard protects the ops routes (/metrics, /riverui/, /debug/pprof/),
// in this order:
//
//   - the Host header must name this service (hostAllowed), or the request
//     is 421 misdirected_request: a page of another site whose name an
//     attacker points at 127.0.0.1 (DNS rebinding) sends its own name;
//   - a state-changing request from another origin (Origin, or
//     Sec-Fetch-Site cross-site or same-site) is 403 cross_origin: a page
//     of another site cannot cancel or retry jobs through the browser of
//     an operator who has River UI open;
//   - HTTP basic auth when OPS_BASIC_AUTH is set (401), else loopback
//     clients only (403), the client being found through TRUSTED_PROXIES.
func opsGuard(d Deps) func(http.Handler) http.Handler {
	user, pass, hasAuth := strings.Cut(d.OpsBasicAuth, ":")
	hosts := allowedHosts(d.OpsHosts)
	csrf := http.NewCrossOriginProtection()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hostAllowed(r, hosts) {
				writeProblem(w, problem(codeMisdirected, "hôte inconnu de ce service : les routes d'exploitation ne répondent qu'à leurs noms", nil))
				return
			}
			if err := csrf.Check(r); err != nil {
				writeProblem(w, problem(codeCrossOrigin, "requête d'un autre site refusée", nil))
				return
			}
			if hasAuth {
				u, p, ok := r.BasicAuth()
				// Both comparisons always run: no timing hint on which was wrong.
				okUser := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
				okPass := subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
				if !ok || !okUser || !okPass {
					w.Header().Set("WWW-Authenticate", `Basic realm="aptflow ops", charset="UTF-8"`)
					writeProblem(w, problem(codeUnauthorized, "identifiants d'exploitation requis", nil))
					return
				}
			} else if ip := clientIP(r, d.TrustedProxies); !ip.IsValid() || !ip.IsLoopback() {
				writeProblem(w, problem(codeForbidden, "réservé aux clients locaux tant que OPS_BASIC_AUTH n'est pas défini", nil))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// allowedHosts returns the lower-cased host names of hostPorts (URLs or
// host:port, as PUBLIC_URL, HTTP_ADDR and METRICS_ADDR are), leaving out
// the empty and unspecified ones (":8080", "0.0.0.0:8080" listen on every
// address: the address a request came to is allowed then, see hostAllowed).
func allowedHosts(hostPorts []string) []string {
	var hosts []string
	for _, hp := range hostPorts {
		if i := strings.Index(hp, "://"); i >= 0 {
			hp = hp[i+3:]
			if j := strings.IndexAny(hp, "/?#"); j >= 0 {
				hp = hp[:j]
			}
		}
		h := hostOnly(hp)
		if ip, err := netip.ParseAddr(h); h == "" || (err == nil && ip.IsUnspecified()) {
			continue
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// hostOnly is the lower-cased host of a Host header or a host:port,
// without brackets or a trailing dot.
func hostOnly(hostPort string) string {
	h := hostPort
	if host, _, err := net.SplitHostPort(hostPort); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// hostAllowed says whether the request's Host names this service: one of
// hosts (PUBLIC_URL's, HTTP_ADDR's, METRICS_ADDR's), a loopback name, or
// the address of this machine the connection came to (a listener on every
// address is reached by its addresses). Only a name can be rebound to
// another address: an address literal that is ours is ours.
func hostAllowed(r *http.Request, hosts []string) bool {
	h := hostOnly(r.Host)
	if h == "" {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err == nil && ip.Unmap().IsLoopback() {
		return true
	}
	for _, allowed := range hosts {
		if h == allowed {
			return true
		}
	}
	if err == nil {
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(local.String()); err == nil && ap.Addr().Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// clientIP is the address of the client. It is the connection's peer,
// unless that peer is one of the trusted proxies: then X-Forwarded-For is
// read right to left (each proxy appends the peer it saw), skipping the
// trusted hops, and the first address that is not one of them is the
// client. The entries left of it come from the client and prove nothing:
// a client sending "X-Forwarded-For: 127.0.0.1" must not pass for local.
// An entry that is not an address ends the walk with no client (invalid).
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := remoteAddr(r)
	if !isTrusted(peer, trusted) {
		return peer
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			e := strings.TrimSpace(entries[j])
			if e == "" {
				continue
			}
			ip, err := netip.ParseAddr(e)
			if err != nil {
				return netip.Addr{}
			}
			ip = ip.Unmap()
			if !isTrusted(ip, trusted) {
				return ip
			}
			peer = ip
		}
	}
	// Every hop is trusted: the leftmost is as close to the client as we
	// can tell.
	return peer
}

func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	ip, _ := netip.ParseAddr(r.RemoteAddr)
	return ip.Unmap()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
