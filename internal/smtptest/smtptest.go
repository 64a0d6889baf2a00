// Package smtptest is an in-process SMTP server (emersion/go-smtp) for the
// tests that need faults a real server cannot be asked for: a 550 for one
// recipient only, a connection dropped in the middle of DATA. Everything
// else is tested against a real mailpit (internal/mailpittest).
package smtptest

import (
	"io"
	"log"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Server is a running in-process SMTP server.
type Server struct {
	// Addr is host:port on the loopback interface.
	Addr string

	mu       sync.Mutex
	onRcpt   func(to string) error
	onData   func(conn net.Conn, to []string) error
	received []Message
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Header returns a header field of the message.
func (m Message) Header(name string) string {
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// Start starts a server for the test, closed at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the server as SMTP_URL, without TLS.
func (s *Server) URL() string { return "smtp://" + s.Addr + "?tls=none" }

// OnRcpt sets a hook run at each RCPT TO; its error is the server's reply
// (e.g. Reject(550, ...)).
func (s *Server) OnRcpt(f func(to string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRcpt = f
}

// OnData sets a hook run when DATA starts; it may close conn to drop the
// connection mid-message, or return an error as the server's reply.
func (s *Server) OnData(f func(conn net.Conn, to []string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = f
}

// Reject is an SMTP error reply.
func Reject(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

// Received returns the accepted messages.
func (s *Server) Received() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.received...)
}

// To returns the accepted messages for one recipient.
func (s *Server) To(rcpt string) []Message {
	var out []Message
	for _, m := range s.Received() {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				out = append(out, m)
			}
		}
	}
	return out
}

type session struct {
	s    *Server
	conn *smtp.Conn
	cur  Message
}

func (se *session) Reset()        { se.cur = Message{} }
func (se *session) Logout() error { return nil }

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.cur.From = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.s.mu.Lock()
	hook := se.s.onRcpt
	se.s.mu.Unlock()
	if hook != nil {
		if err := hook(to); err != nil {
			return err
		}
	}
	se.cur.To = append(se.cur.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	se.s.mu.Lock()
	hook := se.s.onData
	se.s.mu.Unlock()
	if hook != nil {
		if err := hook(se.conn.Conn(), se.cur.To); err != nil {
			return err
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.cur.Data = data
	se.s.mu.Lock()
	se.s.received = append(se.s.received, se.cur)
	se.s.mu.Unlock()
	return nil
}
