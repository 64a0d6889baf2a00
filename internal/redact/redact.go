// Package redact keeps secrets out of logs and errors: it masks the
// passwords of connection strings and URLs where aptflow prints them on
// purpose (the configuration at start), and it rewrites every log record
// and error message that would still hold one, whatever put it there (a
// library's error quoting a connection string, a panic value).
//
// What it masks: the secrets it was given (the database, SMTP and ops
// passwords, and any added later, such as webhook secrets and keys), in
// their plain and URL-escaped forms; and, by their shape, aptflow API
// tokens (aptf_…), webhook secrets (whsec_…) and PEM private keys.
package redact

import (
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Mask replaces what is hidden.
const Mask = "xxxxx"

// kvPassword is a password in a key=value connection string (libpq's
// syntax: a value is a word or a single-quoted string with \-escapes).
var kvPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('(?:\\.|[^'\\])*'?|[^\s]*)`)

// DSN returns a PostgreSQL connection string, URL or key=value, with its
// passwords masked.
func DSN(s string) string {
	if strings.Contains(s, "://") {
		return URL(s)
	}
	return kvPassword.ReplaceAllString(s, "${1}"+Mask)
}

// URL returns a URL with the password of its user info, and the values of
// its query parameters that name a password or a secret, masked. A string
// that does not parse as a URL is masked whole: it may still hold one.
func URL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable: " + Mask + ")"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	q := u.Query()
	changed := false
	for k := range q {
		if l := strings.ToLower(k); strings.Contains(l, "password") || strings.Contains(l, "secret") {
			q.Set(k, Mask)
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Passwords returns the passwords of a connection string or URL as they
// are written in it (escaped, quoted) and as they read once decoded: a
// Redactor given them all finds the secret in any text that quotes the
// string. Either form of PostgreSQL's connection strings is read.
func Passwords(s string) []string {
	var out []string
	if rest, ok := strings.CutPrefix(s[strings.Index(s, "://")+1:], "//"); ok && strings.Contains(s, "://") {
		authority := rest
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(authority[:at], ":"); ok {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil {
					out = append(out, dec)
				}
			}
		}
		if u, err := url.Parse(s); err == nil {
			for k, vs := range u.Query() {
				if l := strings.ToLower(k); strings.Contains(l, "password") || strings.Contains(l, "secret") {
					out = append(out, vs...)
				}
			}
		}
		return out
	}
	for _, m := range kvPassword.FindAllStringSubmatch(s, -1) {
		v := m[2]
		out = append(out, v)
		if uq, ok := strings.CutPrefix(v, "'"); ok {
			uq = strings.TrimSuffix(uq, "'")
			out = append(out, uq, strings.NewReplacer(`\'`, "'", `\\`, `\`).Replace(uq))
		}
	}
	return out
}

// shapes are secrets known by their form.
var shapes = []struct {
	hint string
	re   *regexp.Regexp
	repl string
}{
	{"aptf_", regexp.MustCompile(`aptf_[A-Za-z0-9_-]{8,}`), "aptf_" + Mask},
	{"whsec_", regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]{8,}`), "whsec_" + Mask},
	{"PRIVATE KEY", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)`), "(private key: " + Mask + ")"},
}

// Redactor masks secrets in strings, log records and errors. It is safe
// for concurrent use; secrets may be added while it is in use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so that no part of one is left
}

// New returns a Redactor of these secrets (empty ones are ignored).
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add adds secrets, each in its plain and URL-escaped forms.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("u", s).String()[2:]} {
			if !slices.Contains(r.secrets, form) {
				r.secrets = append(r.secrets, form)
			}
		}
	}
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	r.mu.RLock()
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Mask)
		}
	}
	r.mu.RUnlock()
	for _, sh := range shapes {
		if strings.Contains(s, sh.hint) {
			s = sh.re.ReplaceAllString(s, sh.repl)
		}
	}
	return s
}

// Error returns err with its message masked; errors.Is and errors.As
// still see what it wraps. nil stays nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Handler returns a slog.Handler that masks the secrets in every record's
// message and attributes (strings, errors, anything printed as text, in
// groups too) before h sees it.
func (r *Redactor) Handler(h slog.Handler) slog.Handler { return &handler{r: r, h: h} }

type handler struct {
	r *Redactor
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.attr(a)
	}
	return &handler{r: h.r, h: h.h.WithAttrs(masked)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, h: h.h.WithGroup(name)}
}

// attr masks one attribute: its value, resolved, as the handler would
// print it.
func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		masked := make([]slog.Attr, len(group))
		for i, g := range group {
			masked[i] = h.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(masked...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.r.String(x.String()))
		case []byte:
			return slog.String(a.Key, h.r.String(string(x)))
		default:
			// Structures (a slice, a map) are printed by the handler as
			// JSON or with %+v: check that text, and keep the value
			// unless a secret shows in it.
			s := slog.AnyValue(x).String()
			if m := h.r.String(s); m != s {
				return slog.String(a.Key, m)
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
