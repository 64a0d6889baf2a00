package mailer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testServer is an in-process SMTP server (emersion/go-smtp) whose sessions
// can fail on demand: the faults mailpit cannot produce.
type testServer struct {
	Addr string

	// Fault hooks, set before the first connection.
	OnMail func(from string) error
	OnRcpt func(to string) error
	OnData func(c *smtp.Conn, r io.Reader) error
	// Password, when set, turns AUTH PLAIN on with this password.
	Password string

	mu       sync.Mutex
	received []received
	auths    []string
	closed   atomic.Int32 // sessions ended: the client hung up or quit
	opened   atomic.Int32 // sessions started: connections the client opened
}

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

// serverOptions changes the go-smtp server before it starts.
type serverOptions struct {
	startTLS    *tls.Config // offer STARTTLS
	implicitTLS *tls.Config // accept only TLS (smtps)
	// idleTimeout, when set, drops a client that sends nothing for that
	// long, as real servers do.
	idleTimeout time.Duration
}

func newTestServer(t *testing.T, configure func(*testServer), o serverOptions) *testServer {
	t.Helper()
	ts := &testServer{}
	if configure != nil {
		configure(ts)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.opened.Add(1)
		return &testSession{ts: ts, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if o.idleTimeout > 0 {
		srv.ReadTimeout = o.idleTimeout
	}
	srv.TLSConfig = o.startTLS

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS != nil {
		l = tls.NewListener(l, o.implicitTLS)
	}
	ts.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

// WaitClosed waits until n sessions have ended, and fails the test if that
// takes long: a client that keeps a dead connection open.
func (ts *testServer) WaitClosed(t *testing.T, n int32) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ts.closed.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections closed by the client", ts.closed.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// URL is the server's smtp:// URL with the given suffix (e.g. "?tls=none").
func (ts *testServer) URL(suffix string) string { return "smtp://" + ts.Addr + suffix }

// Received returns the messages the server accepted.
func (ts *testServer) Received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.received...)
}

type testSession struct {
	ts     *testServer
	conn   *smtp.Conn
	cur    received
	authed bool
}

func (s *testSession) Reset() { s.cur = received{} }
func (s *testSession) Logout() error {
	s.ts.closed.Add(1)
	return nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.Password != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	if s.ts.OnMail != nil {
		if err := s.ts.OnMail(from); err != nil {
			return err
		}
	}
	s.cur.From = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.OnRcpt != nil {
		if err := s.ts.OnRcpt(to); err != nil {
			return err
		}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	if s.ts.OnData != nil {
		if err := s.ts.OnData(s.conn, r); err != nil {
			return err
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = data
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.received = append(s.ts.received, s.cur)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.Password == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if password != s.ts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.authed = true
		s.ts.mu.Lock()
		s.ts.auths = append(s.ts.auths, username)
		s.ts.mu.Unlock()
		return nil
	}), nil
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aptflow test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// pdfBytes is a stand-in attachment holding every byte value, so a
// transfer-encoding mistake cannot go unnoticed.
func pdfBytes() []byte {
	b := []byte("%PDF-1.4\n")
	for i := range 4096 {
		b = append(b, byte(i))
	}
	return append(b, bytes.Repeat([]byte("\r\n.\r\n"), 10)...)
}
