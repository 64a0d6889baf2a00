package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// rejectedPrefix marks the recipients the relay refuses with 550, as a
// server whose mailbox does not exist does.
const rejectedPrefix = "rejet-"

// relay is an SMTP server (emersion/go-smtp) in front of mailpit. Each
// command of a session is passed on to mailpit at once and mailpit's reply
// is the relay's, so mailpit's own faults (its chaos triggers) reach
// aptflow unchanged; a message is relayed when its DATA is complete, and
// the client gets mailpit's reply to it. Beside that it injects what
// mailpit cannot: a 550 for recipients named rejet-…, and, while dropping
// is on, a connection cut in the middle of DATA.
type relay struct {
	addr     string
	upstream string
	srv      *smtp.Server

	dropping atomic.Bool
	dropped  atomic.Int64 // connections cut during DATA
	rejected atomic.Int64 // 550s at RCPT
	relayed  atomic.Int64 // messages mailpit accepted

	mu     sync.Mutex
	stored map[string]stored // by Message-ID
}

func startRelay(upstream string) (*relay, error) {
	r := &relay{upstream: upstream}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	r.srv.Domain = "relay.chaos.localhost"
	r.srv.EnableSMTPUTF8 = true
	r.srv.MaxMessageBytes = 20 << 20
	r.srv.ReadTimeout, r.srv.WriteTimeout = time.Minute, time.Minute
	r.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = l.Addr().String()
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *relay) close() { _ = r.srv.Close() }

// relaySession is one client connection and its own connection to mailpit,
// opened at the first MAIL FROM.
type relaySession struct {
	r    *relay
	conn *smtp.Conn
	mu   sync.Mutex
	up   *smtp.Client
	// open: mailpit has a transaction of this session that DATA did not
	// finish (a MAIL FROM accepted, then a refusal or a RSET).
	open bool
}

// upstream returns the connection to mailpit, dialling it if needed.
func (s *relaySession) upstream() (*smtp.Client, error) {
	if s.up != nil {
		return s.up, nil
	}
	c, err := smtp.Dial(s.r.upstream)
	if err != nil {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "relay: mailpit unreachable"}
	}
	if err := c.Hello("relay.chaos.localhost"); err != nil {
		c.Close()
		return nil, passOn(err)
	}
	s.up = c
	return c, nil
}

// abandon closes the connection to mailpit without finishing its
// transaction: mailpit stores nothing of it.
func (s *relaySession) abandon() {
	if s.up != nil {
		s.up.Close()
		s.up, s.open = nil, false
	}
}

// passOn turns mailpit's reply into the relay's; an error that is not a
// reply (a broken connection) becomes a 451, as a relay would answer.
func passOn(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "relay: " + err.Error()}
}

// Reset passes RSET on only when mailpit has a transaction to forget:
// after a message, mailpit's is finished, and a round trip to mailpit
// would widen, beyond what a real server costs, the window in which a
// killed client loses the reply to a message already stored.
func (s *relaySession) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up != nil && s.open {
		s.open = false
		if err := s.up.Reset(); err != nil {
			s.abandon()
		}
	}
}

func (s *relaySession) Logout() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up != nil {
		_ = s.up.Quit()
		s.abandon()
	}
	return nil
}

func (s *relaySession) Mail(from string, opts *smtp.MailOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	up, err := s.upstream()
	if err != nil {
		return err
	}
	if err := up.Mail(from, opts); err != nil {
		return passOn(err)
	}
	s.open = true
	return nil
}

func (s *relaySession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if strings.HasPrefix(strings.ToLower(to), rejectedPrefix) {
		s.r.rejected.Add(1)
		// Quoting the address, as real servers do: aptflow must keep it
		// out of its logs.
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s>: Recipient address rejected: User unknown in local recipient table", to)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "relay: MAIL first"}
	}
	if err := s.up.Rcpt(to, opts); err != nil {
		return passOn(err)
	}
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r.dropping.Load() {
		// Part of the message, then the line goes dead: the client is
		// left without a reply, as when a network or a server dies.
		_, _ = io.CopyN(io.Discard, r, 2048)
		s.r.dropped.Add(1)
		s.abandon()
		_ = s.conn.Conn().Close()
		return errors.New("connection dropped by chaos")
	}
	if s.up == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "relay: MAIL first"}
	}
	// Streamed as it comes, as a direct connection would carry it; a
	// client cut mid-message leaves mailpit a DATA without its final dot,
	// which it discards with the connection.
	w, err := s.up.Data()
	if err != nil {
		return passOn(err)
	}
	head := &headReader{r: r}
	if _, err := io.Copy(w, head); err != nil {
		s.abandon()
		if head.err != nil { // the client's side
			return head.err
		}
		return passOn(err)
	}
	dot := time.Now() // the client's final dot is in
	if err := w.Close(); err != nil {
		return passOn(err)
	}
	s.open = false
	s.r.relayed.Add(1)
	s.r.record(head.messageID(), dot)
	return nil
}

// headReader passes a message on and keeps its start, for its Message-ID,
// and the error of the client's side.
type headReader struct {
	r    io.Reader
	head []byte
	err  error
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if len(h.head) < 8192 {
		h.head = append(h.head, p[:min(n, 8192-len(h.head))]...)
	}
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

// messageID returns the Message-ID header of the message, without its
// angle brackets ("" if it has none).
func (h *headReader) messageID() string {
	for line := range strings.Lines(string(h.head)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.Trim(strings.TrimSpace(v), "<>")
		}
		if strings.TrimSpace(line) == "" {
			break
		}
	}
	return ""
}

// stored is when mailpit had a message: the client's final dot was in at
// dot, mailpit's 250 at ok.
type stored struct{ dot, ok time.Time }

// record remembers when the message with Message-ID id was stored.
func (r *relay) record(id string, dot time.Time) {
	if id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored == nil {
		r.stored = map[string]stored{}
	}
	if _, ok := r.stored[id]; !ok { // the first copy
		r.stored[id] = stored{dot: dot, ok: time.Now()}
	}
}

// storedAt returns when the first copy of the message id was stored.
func (r *relay) storedAt(id string) (stored, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.stored[id]
	return st, ok
}
