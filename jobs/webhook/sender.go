package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// DefaultTimeout bounds one delivery: connection, TLS, request and answer.
const DefaultTimeout = 10 * time.Second

// SenderOptions configure a Sender.
type SenderOptions struct {
	// Policy is checked on every connection.
	Policy *Policy
	// Timeout bounds one delivery; DefaultTimeout when 0.
	Timeout time.Duration
	// TLS is the client's TLS configuration (nil: the system's roots); a
	// test gives the roots of its TLS server.
	TLS *tls.Config
	// UserAgent is sent with each delivery.
	UserAgent string
}

// Sender posts deliveries. It is safe for concurrent use and keeps its
// connections alive between deliveries to the same receiver.
type Sender struct {
	clients   map[string]*http.Client // by URL scheme
	timeout   time.Duration
	userAgent string
}

// NewSender returns a Sender whose every connection is checked against
// o.Policy at the moment it is made.
func NewSender(o SenderOptions) *Sender {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Policy == nil {
		o.Policy = &Policy{}
	}
	s := &Sender{clients: map[string]*http.Client{}, timeout: o.Timeout, userAgent: o.UserAgent}
	for _, scheme := range []string{"http", "https"} {
		dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second, Control: o.Policy.control(scheme)}
		tr := &http.Transport{
			// Never a proxy from the environment: the proxy would be the
			// address dialled, and checked, instead of the receiver.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       o.TLS,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   o.Timeout,
			ExpectContinueTimeout: time.Second,
			// A receiver's headers are bounded like its body.
			MaxResponseHeaderBytes: 64 << 10,
		}
		s.clients[scheme] = &http.Client{
			Transport: tr,
			Timeout:   o.Timeout,
			// A redirect is not followed: its target was never checked
			// nor subscribed. The 3xx is the answer, and not a 2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return s
}

// Timeout is the bound of one delivery.
func (s *Sender) Timeout() time.Duration { return s.timeout }

// Message is one delivery attempt.
type Message struct {
	URL       string
	ID        string    // webhook-id: the same on every attempt
	Timestamp time.Time // webhook-timestamp: this attempt's
	Body      []byte
	// Secrets are the decoded secrets to sign with, current first.
	Secrets [][]byte
}

// Result is a receiver's answer.
type Result struct {
	// StatusCode is the HTTP status (0 when no answer came).
	StatusCode int
	// Snippet is the start of the answer's body, made printable, for the
	// delivery log.
	Snippet string
}

// OK says whether the receiver took the delivery: any 2xx.
func (r Result) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// snippetLen bounds how much of an answer's body is read and kept; the
// rest is discarded unread (the connection is then not reused).
const snippetLen = 256

// Send posts m. An error means no HTTP answer came: the policy refused the
// address (ErrNotPermitted), or the connection failed or timed out; its
// text names neither the URL nor the body.
func (s *Sender) Send(ctx context.Context, m Message) (Result, error) {
	u, err := url.Parse(m.URL)
	if err != nil {
		return Result{}, errors.New("invalid URL")
	}
	client, ok := s.clients[u.Scheme]
	if !ok {
		return Result{}, fmt.Errorf("%w: scheme %q", ErrNotPermitted, u.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{}, errors.New("invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(m.Timestamp.Unix()))
	req.Header.Set(HeaderSignature, Sign(m.ID, m.Timestamp, m.Body, m.Secrets...))
	if s.userAgent != "" {
		req.Header.Set("User-Agent", s.userAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, describe(err, s.timeout)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	return Result{StatusCode: resp.StatusCode, Snippet: printable(head)}, nil
}

// describe says why no answer came, in a few words: the error of
// net/http quotes the URL, which may hold a token of the receiver's.
func describe(err error, timeout time.Duration) error {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.Is(err, ErrNotPermitted):
		var te *TargetError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s", ErrNotPermitted, te.reason)
		}
		return ErrNotPermitted
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: no answer within %s", ErrTimeout, timeout)
	case errors.As(err, &de):
		return errors.New("host name does not resolve")
	case errors.As(err, &oe) && oe.Op == "dial":
		return errors.New("connection refused or unreachable")
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return errors.New("TLS certificate not valid for the host")
	}
	return errors.New("connection failed before an answer")
}

// ErrTimeout wraps a delivery that got no answer in time.
var ErrTimeout = errors.New("timeout")

// printable keeps the printable part of a receiver's answer, on one line.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
