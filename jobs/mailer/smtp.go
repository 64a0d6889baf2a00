package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
)

// Defaults of an [SMTPMailer].
const (
	// DefaultDialTimeout bounds the TCP connection to the server.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTimeout bounds a whole send, from connection to the server's
	// answer to the data; the caller's context can only make it shorter.
	DefaultTimeout = 30 * time.Second
	// quitTimeout bounds the courtesy QUIT after a message was accepted: a
	// slow goodbye must not turn a sent e-mail into a failure.
	quitTimeout = 2 * time.Second
)

// SMTPMailer sends each message over its own SMTP connection, so it is safe
// for concurrent use without a pool.
type SMTPMailer struct {
	host        string
	port        int
	implicitTLS bool           // smtps://
	policy      mail.TLSPolicy // STARTTLS policy for smtp://
	user, pass  string
	tlsConfig   *tls.Config
	dialTimeout time.Duration
	timeout     time.Duration
	redacted    string
}

// SMTPOption changes an [SMTPMailer] made by [NewSMTP].
type SMTPOption func(*SMTPMailer)

// WithTLSConfig sets the TLS configuration for STARTTLS and smtps, e.g. to
// trust a private CA. ServerName defaults to the URL's host.
func WithTLSConfig(cfg *tls.Config) SMTPOption {
	return func(s *SMTPMailer) { s.tlsConfig = cfg.Clone() }
}

// WithTimeouts sets the connection timeout and the timeout of a whole send
// (see [DefaultDialTimeout] and [DefaultTimeout]); a value that is not
// positive keeps the default.
func WithTimeouts(dial, send time.Duration) SMTPOption {
	return func(s *SMTPMailer) {
		if dial > 0 {
			s.dialTimeout = dial
		}
		if send > 0 {
			s.timeout = send
		}
	}
}

// NewSMTP returns a mailer for an SMTP URL:
//
//	smtp://[user:password@]host[:port][?tls=none|opportunistic|mandatory]
//	smtps://[user:password@]host[:port]
//
// smtp:// defaults to port 25 and opportunistic STARTTLS (used, with the
// certificate verified, when the server offers it); smtps:// is implicit TLS,
// port 465 by default. With a user, the mailer authenticates with
// SCRAM-SHA-256, PLAIN or LOGIN, the latter two only over TLS or to a
// loopback server. Percent-encode special characters of the password.
func NewSMTP(rawURL string, opts ...SMTPOption) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's error quotes the URL, password included.
		return nil, errors.New("SMTP URL: cannot parse")
	}
	s := &SMTPMailer{
		host:        u.Hostname(),
		policy:      mail.TLSOpportunistic,
		dialTimeout: DefaultDialTimeout,
		timeout:     DefaultTimeout,
		redacted:    u.Redacted(),
	}
	switch u.Scheme {
	case "smtp":
		s.port = 25
	case "smtps":
		s.port, s.implicitTLS, s.policy = 465, true, mail.NoTLS
	default:
		return nil, fmt.Errorf("SMTP URL %s: scheme must be smtp or smtps", s.redacted)
	}
	if s.host == "" {
		return nil, fmt.Errorf("SMTP URL %s: no host", s.redacted)
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return nil, fmt.Errorf("SMTP URL %s: bad port", s.redacted)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("SMTP URL %s: unexpected path", s.redacted)
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return nil, fmt.Errorf("SMTP URL %s: empty user name", s.redacted)
		}
	}
	q := u.Query()
	for key := range q {
		if key != "tls" {
			return nil, fmt.Errorf("SMTP URL %s: unknown parameter %q", s.redacted, key)
		}
	}
	if q.Has("tls") {
		tlsParam := q.Get("tls")
		switch {
		case s.implicitTLS && tlsParam != "mandatory":
			return nil, fmt.Errorf("SMTP URL %s: smtps is always TLS", s.redacted)
		case s.implicitTLS:
		case tlsParam == "none":
			s.policy = mail.NoTLS
		case tlsParam == "opportunistic":
			s.policy = mail.TLSOpportunistic
		case tlsParam == "mandatory":
			s.policy = mail.TLSMandatory
		default:
			return nil, fmt.Errorf("SMTP URL %s: tls must be none, opportunistic or mandatory", s.redacted)
		}
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.tlsConfig == nil {
		s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = s.host
	}
	return s, nil
}

// String is the URL with the password masked, for the start-up log.
func (s *SMTPMailer) String() string { return s.redacted }

// Send sends m over a new connection. The connection's deadlines follow ctx,
// so cancelling ctx or reaching its deadline stops the send at any step.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	msg, err := prepare(ctx, m)
	if err != nil {
		return err
	}
	var conn net.Conn // set by the dialer, to close it if go-mail does not
	client, err := mail.NewClient(s.host, s.clientOptions(ctx, &conn)...)
	if err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	session, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// go-mail returns without closing when EHLO, STARTTLS or AUTH fails.
		if conn != nil {
			_ = conn.Close()
		}
		return classify(ctx, err, true)
	}
	defer session.Close()
	if err := client.SendWithSMTPClient(session, msg); err != nil && !msg.IsDelivered() {
		return classify(ctx, err, false)
	}
	// Accepted: whatever happens to QUIT, the message is sent and reporting
	// an error would make the caller send it twice.
	_ = session.UpdateDeadline(quitTimeout)
	_ = client.CloseWithSMTPClient(session)
	return nil
}

func (s *SMTPMailer) clientOptions(ctx context.Context, conn *net.Conn) []mail.Option {
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithTLSPolicy(s.policy), // go-mail defaults to mandatory
		mail.WithTLSConfig(s.tlsConfig),
		mail.WithDialContextFunc(s.dialer(ctx, conn)),
		// One message per fresh connection: no NOOP to check it, no RSET
		// after it (a failed RSET would report a delivered message as failed).
		mail.WithoutNoop(),
		mail.WithoutRset(),
	}
	if s.implicitTLS {
		opts = append(opts, mail.WithSSL()) // TLS is done by the dialer; this skips STARTTLS
	}
	if s.user != "" {
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(s.user), mail.WithPassword(s.pass))
	}
	return slices.Clip(opts)
}

// dialer connects, ties the connection's deadlines to sendCtx (go-mail
// only uses a context to dial, then sets its own deadlines) and keeps the
// connection in *opened.
func (s *SMTPMailer) dialer(sendCtx context.Context, opened *net.Conn) mail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: s.dialTimeout}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := newCtxConn(sendCtx, raw)
		*opened = conn
		if !s.implicitTLS {
			return conn, nil
		}
		// A *tls.Conn on top, so go-mail knows the session is encrypted.
		tc := tls.Client(conn, s.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = tc.Close()
			return nil, err
		}
		return tc, nil
	}
}

// aLongTimeAgo is a deadline in the past: it makes pending I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// ctxConn is a net.Conn whose deadlines never run past its context's, and
// which stops all I/O when the context is cancelled.
type ctxConn struct {
	net.Conn
	ctx  context.Context
	mu   sync.Mutex // orders a cancellation against go-mail setting a deadline
	stop func() bool
}

func newCtxConn(ctx context.Context, c net.Conn) *ctxConn {
	cc := &ctxConn{Conn: c, ctx: ctx}
	cc.stop = context.AfterFunc(ctx, func() {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		_ = c.SetDeadline(aLongTimeAgo)
	})
	return cc
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (c *ctxConn) SetDeadline(t time.Time) error      { return c.set(c.Conn.SetDeadline, t) }
func (c *ctxConn) SetReadDeadline(t time.Time) error  { return c.set(c.Conn.SetReadDeadline, t) }
func (c *ctxConn) SetWriteDeadline(t time.Time) error { return c.set(c.Conn.SetWriteDeadline, t) }

func (c *ctxConn) set(setter func(time.Time) error, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return setter(aLongTimeAgo)
	}
	if d, ok := c.ctx.Deadline(); ok && (t.IsZero() || d.Before(t)) {
		t = d
	}
	return setter(t)
}
