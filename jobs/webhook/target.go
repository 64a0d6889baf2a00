package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which targets aptflow may call: https:// URLs whose host is
// a public address (or resolves only to public addresses), and http:// or
// https:// URLs whose addresses all lie in Allowed (WEBHOOK_ALLOWED_NETWORKS:
// an internal receiver, a test server on loopback).
type Policy struct {
	// Allowed are the networks that may be called although they are not
	// public, over http:// too.
	Allowed []netip.Prefix
	// Resolver resolves a subscription's host when it is created; nil:
	// net.DefaultResolver. Connections are checked on the address dialled,
	// whoever resolved it.
	Resolver Resolver
}

// ParseNetworks reads WEBHOOK_ALLOWED_NETWORKS: CIDR prefixes separated by
// commas or spaces (a bare address is its /32 or /128).
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// TargetError is a target the policy refuses. Its message says why, in
// French, without the URL.
type TargetError struct {
	code, reason string
}

func (e *TargetError) Error() string { return e.reason }

// Code is stable: it is the code of the API's field error.
func (e *TargetError) Code() string { return e.code }

func refuse(code, format string, args ...any) *TargetError {
	return &TargetError{code: code, reason: fmt.Sprintf(format, args...)}
}

// MaxURLLen bounds a subscription's URL.
const MaxURLLen = 2000

// CheckURL checks the URL of a new subscription: absolute http(s), no
// user information or fragment, and every address its host resolves to
// permitted for its scheme. The error is a *TargetError, whose Code says
// what is wrong: invalid_url, scheme_not_allowed, unresolvable_host or
// address_not_allowed.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLLen {
		return refuse("invalid_url", "l'URL dépasse %d caractères", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refuse("invalid_url", "une URL absolue https://hôte/chemin est attendue")
	}
	if u.User != nil {
		return refuse("invalid_url", "l'URL ne doit pas contenir d'identifiants (la signature authentifie aptflow)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return refuse("invalid_url", "l'URL ne doit pas contenir de fragment (#…)")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return refuse("scheme_not_allowed", "seules les URL https:// sont acceptées")
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		r := p.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return refuse("unresolvable_host", "le nom d'hôte ne se résout en aucune adresse")
		}
	}
	for _, a := range addrs {
		if err := p.Permits(u.Scheme, a); err != nil {
			return err
		}
	}
	return nil
}

// Permits says whether a connection to a for a URL of scheme may be made.
func (p *Policy) Permits(scheme string, a netip.Addr) error {
	a = a.Unmap()
	for _, n := range p.Allowed {
		if n.Contains(a) {
			return nil
		}
	}
	if scheme != "https" {
		return refuse("scheme_not_allowed", "http:// n'est accepté que vers WEBHOOK_ALLOWED_NETWORKS, où %s n'est pas ; https:// est attendu", a)
	}
	if !Public(a) {
		return refuse("address_not_allowed", "%s n'est pas une adresse publique (ni dans WEBHOOK_ALLOWED_NETWORKS)", a)
	}
	return nil
}

// Public reports whether a is an address of the public Internet: not
// loopback, private, link-local (cloud metadata services live there),
// shared (carrier-grade NAT), multicast, reserved, documentation or
// benchmarking, nor an IPv6 form that embeds an IPv4 address (NAT64,
// 6to4, Teredo, IPv4-compatible), which could lead back to one of those.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// notPublic are the special-purpose blocks (RFC 6890 and successors) that
// IsGlobalUnicast and IsPrivate let through.
var notPublic = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // shared address space (CGNAT)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"192.88.99.0/24",  // 6to4 relay anycast
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // IPv4-compatible (deprecated)
		"64:ff9b::/96",    // NAT64
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments (Teredo 2001::/32 among them)
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4
		"fec0::/10",       // site-local (deprecated)
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// ErrNotPermitted wraps the refusal of a connection by the policy.
var ErrNotPermitted = errors.New("webhook target not permitted")

// control returns the dialer's Control function for a URL scheme: it runs
// after the address is resolved and before the connection is made, so it
// sees the address actually dialled.
func (p *Policy) control(scheme string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrNotPermitted, address)
		}
		if err := p.Permits(scheme, ap.Addr()); err != nil {
			return fmt.Errorf("%w: %w", ErrNotPermitted, err)
		}
		return nil
	}
}
