package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Defaults of an [SMTPMailer].
const (
	// DefaultDialTimeout bounds the TCP connection to the server.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTimeout bounds a whole send, from connection to the server's
	// answer to the data; the caller's context can only make it shorter.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxIdle is how many connections an [SMTPMailer] keeps open
	// between messages: as many as the e-mail queue has workers by default,
	// so that under a steady load each worker finds one.
	DefaultMaxIdle = 20
	// quitTimeout bounds the courtesy QUIT when a connection is closed: a
	// slow goodbye must not hold up a send.
	quitTimeout = 2 * time.Second
	// maxIdleTime is how long an unused connection stays in the pool. It is
	// well under what servers allow an idle client (RFC 5321 § 4.5.3.2.7
	// asks for 5 minutes), so that a reused connection is rarely one the
	// server has already dropped.
	maxIdleTime = 30 * time.Second
	// maxMessagesPerConn bounds the messages sent over one connection: some
	// relays refuse more than about a hundred per session.
	maxMessagesPerConn = 100
)

// SMTPMailer sends messages over a small pool of SMTP connections that it
// reuses: connecting, greeting, STARTTLS and AUTH cost more, on both sides,
// than sending a message. It is safe for concurrent use: each Send has a
// connection to itself, taken from the pool or opened for it, and gives it
// back once the server has accepted the message. A connection that failed
// in any way is closed, never reused.
type SMTPMailer struct {
	host        string
	port        int
	implicitTLS bool           // smtps://
	policy      mail.TLSPolicy // STARTTLS policy for smtp://
	user, pass  string
	tlsConfig   *tls.Config
	dialTimeout time.Duration
	timeout     time.Duration
	maxIdle     int
	redacted    string
	dkim        *DKIM // nil: unsigned

	mu     sync.Mutex
	idle   []*smtpConn // the most recently used last
	closed bool        // by Close: connections are no longer kept
}

// smtpConn is one connection to the server, between or during sends.
type smtpConn struct {
	client   *mail.Client // go-mail's options for this connection
	session  *smtp.Client
	conn     *ctxConn // the TCP connection under session (and TLS)
	sent     int      // messages accepted over it
	lastUsed time.Time
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

// WithDKIM signs every message with d; nil leaves them unsigned.
func WithDKIM(d *DKIM) SMTPOption {
	return func(s *SMTPMailer) { s.dkim = d }
}

// WithMaxIdle sets how many connections the mailer keeps open between
// messages (see [DefaultMaxIdle]); 0 closes each connection after its
// message.
func WithMaxIdle(n int) SMTPOption {
	return func(s *SMTPMailer) { s.maxIdle = max(0, n) }
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
		maxIdle:     DefaultMaxIdle,
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

// Send sends m over a pooled connection, or a new one. The connection's
// deadlines follow ctx, so cancelling ctx or reaching its deadline stops the
// send at any step.
//
// A pooled connection may have been dropped by the server while it was idle;
// that shows when the server does not answer MAIL FROM, before anything of
// the message was sent, and Send then sends it over a new connection.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	w, err := prepare(ctx, m, s.dkim)
	if err != nil {
		return err
	}
	for retried := false; ; retried = true {
		c, reused, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		if err = c.send(w); err == nil {
			// Accepted: the message is sent, whatever happens to the
			// connection after.
			c.sent++
			s.release(c)
			return nil
		}
		// After a failure the session's state is unknown (a reply half read,
		// a transaction open): the connection is closed, not reused.
		_ = c.session.Close()
		if reused && !retried && droppedWhileIdle(ctx, err) {
			continue
		}
		return classify(ctx, err, false)
	}
}

// send runs one mail transaction: MAIL FROM, RCPT TO, DATA with the exact
// bytes of w (go-mail's own send would render the message again, with new
// MIME boundaries, which would break its DKIM signature). It returns nil
// once the server has accepted the data. There is no NOOP before it (a
// dead pooled connection shows at MAIL FROM just as well, for free: see
// droppedWhileIdle) and no RSET after (the server resets when it accepts
// the data).
func (c *smtpConn) send(w *wire) error {
	if err := c.session.Mail(w.from); err != nil {
		return &stepError{step: stepMailFrom, err: err}
	}
	if err := c.session.Rcpt(w.to); err != nil {
		return &stepError{step: stepRcptTo, err: err}
	}
	data, err := c.session.Data()
	if err != nil {
		return &stepError{step: stepData, err: err}
	}
	if _, err := data.Write(w.data); err != nil {
		// The connection failed mid-way: Close would wait for a reply that
		// will not come. The caller closes the connection.
		return &stepError{step: stepData, err: err}
	}
	if err := data.Close(); err != nil {
		return &stepError{step: stepData, err: err}
	}
	return nil
}

// Close closes the connections kept for reuse, with a QUIT, and stops
// keeping any: a Send after Close closes its connection when done.
func (s *SMTPMailer) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range idle {
		s.quit(c)
	}
	return nil
}

// acquire returns the most recently used idle connection, bound to ctx, or
// a new one; reused says which.
func (s *SMTPMailer) acquire(ctx context.Context) (c *smtpConn, reused bool, err error) {
	var expired []*smtpConn
	s.mu.Lock()
	for len(s.idle) > 0 && c == nil {
		last := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(last.lastUsed) < maxIdleTime {
			c = last
		} else {
			expired = append(expired, last)
		}
	}
	s.mu.Unlock()
	for _, e := range expired {
		s.quit(e)
	}
	if c != nil {
		c.conn.bind(ctx)
		return c, true, nil
	}
	c, err = s.dial(ctx)
	return c, false, err
}

// dial opens a connection for a send: TCP, greeting, EHLO, STARTTLS, AUTH.
func (s *SMTPMailer) dial(ctx context.Context) (*smtpConn, error) {
	c := &smtpConn{}
	// One go-mail Client per connection: its AUTH discovery writes to the
	// Client, which several dials at once must not share.
	client, err := mail.NewClient(s.host, s.clientOptions(ctx, &c.conn)...)
	if err != nil {
		return nil, &SendError{Temporary: true, Err: err}
	}
	session, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// go-mail returns without closing when EHLO, STARTTLS or AUTH fails.
		if c.conn != nil {
			_ = c.conn.Close()
		}
		return nil, classify(ctx, err, true)
	}
	c.client, c.session = client, session
	return c, nil
}

// release gives a connection back after a message was accepted over it. It
// is kept for the next send if it is sound (its send's context did not
// fire mid-way) and the pool has room; otherwise it is closed.
func (s *SMTPMailer) release(c *smtpConn) {
	sound := c.conn.unbind()
	c.lastUsed = time.Now()
	s.mu.Lock()
	keep := sound && !s.closed && len(s.idle) < s.maxIdle && c.sent < maxMessagesPerConn
	if keep {
		s.idle = append(s.idle, c)
	}
	s.mu.Unlock()
	switch {
	case keep:
	case sound:
		s.quit(c)
	default:
		_ = c.session.Close()
	}
}

// quit says goodbye and closes the connection. The answer does not matter.
func (s *SMTPMailer) quit(c *smtpConn) {
	_ = c.session.UpdateDeadline(quitTimeout)
	_ = c.client.CloseWithSMTPClient(c.session)
	_ = c.session.Close()
}

// droppedWhileIdle reports whether err says that a reused connection was
// already dead when the send started: the server closed it while it was idle
// (no answer, or 421, to MAIL FROM). The server took nothing of the message,
// so sending it again over a new connection is safe.
func droppedWhileIdle(ctx context.Context, err error) bool {
	if contextErr(ctx) != nil {
		return false
	}
	var se *stepError
	if !errors.As(err, &se) || se.step != stepMailFrom {
		return false
	}
	var tp *textproto.Error
	return !errors.As(err, &tp) || tp.Code == 421
}

func (s *SMTPMailer) clientOptions(ctx context.Context, conn **ctxConn) []mail.Option {
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithTLSPolicy(s.policy), // go-mail defaults to mandatory
		mail.WithTLSConfig(s.tlsConfig),
		mail.WithDialContextFunc(s.dialer(ctx, conn)),
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
func (s *SMTPMailer) dialer(sendCtx context.Context, opened **ctxConn) mail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: s.dialTimeout}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := &ctxConn{Conn: raw}
		conn.bind(sendCtx)
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

// ctxConn is a net.Conn whose deadlines never run past those of the send
// using it, and which stops all I/O when that send's context is cancelled.
// A pooled connection is bound to one send's context at a time.
type ctxConn struct {
	net.Conn
	mu   sync.Mutex      // orders a cancellation against go-mail setting a deadline
	ctx  context.Context // the send's; nil while idle in the pool
	gen  uint64          // counts bindings: a late cancellation of a past send is ignored
	stop func() bool
}

// bind ties the connection to ctx until unbind.
func (c *ctxConn) bind(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.gen++
	gen := c.gen
	c.mu.Unlock()
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen == gen {
			_ = c.Conn.SetDeadline(aLongTimeAgo)
		}
	})
}

// unbind detaches the connection from its send. It returns false if the
// send's context fired: the connection may then have been stopped mid-way.
func (c *ctxConn) unbind() bool {
	stopped := c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	fired := !stopped || c.ctx.Err() != nil
	c.ctx = nil
	c.gen++
	return !fired
}

func (c *ctxConn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	return c.Conn.Close()
}

func (c *ctxConn) SetDeadline(t time.Time) error      { return c.set(c.Conn.SetDeadline, t) }
func (c *ctxConn) SetReadDeadline(t time.Time) error  { return c.set(c.Conn.SetReadDeadline, t) }
func (c *ctxConn) SetWriteDeadline(t time.Time) error { return c.set(c.Conn.SetWriteDeadline, t) }

func (c *ctxConn) set(setter func(time.Time) error, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return setter(t)
	}
	if c.ctx.Err() != nil {
		return setter(aLongTimeAgo)
	}
	if d, ok := c.ctx.Deadline(); ok && (t.IsZero() || d.Before(t)) {
		t = d
	}
	return setter(t)
}
