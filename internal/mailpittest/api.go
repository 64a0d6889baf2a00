package mailpittest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Address is a mailbox as mailpit decodes it: Name is the display name, with
// any RFC 2047 encoding undone.
type Address struct {
	Name    string
	Address string
}

// Summary is a message as listed by Messages and Search, newest first.
type Summary struct {
	ID          string // mailpit's own ID, for Message, Headers and Attachment
	MessageID   string // the Message-ID header, without angle brackets
	Read        bool
	From        Address
	To          []Address
	Cc          []Address
	Bcc         []Address
	ReplyTo     []Address
	Subject     string // decoded
	Created     time.Time
	Tags        []string
	Size        int
	Attachments int // how many
	Snippet     string
}

// Message is one message in full, decoded.
type Message struct {
	ID          string
	MessageID   string // the Message-ID header, without angle brackets
	From        Address
	To          []Address
	Cc          []Address
	Bcc         []Address
	ReplyTo     []Address
	ReturnPath  string // the envelope sender (MAIL FROM)
	Subject     string
	Date        time.Time
	Tags        []string
	Text        string // the text/plain part, decoded
	HTML        string // the text/html part, decoded
	Size        int
	Inline      []Attachment // parts with a Content-ID shown inside the HTML
	Attachments []Attachment
}

// Attachment describes one attached part; Server.Attachment fetches its bytes.
type Attachment struct {
	PartID      string
	FileName    string
	ContentType string
	ContentID   string
	Size        int
	Checksums   struct{ MD5, SHA1, SHA256 string } // hex, of the decoded bytes
}

// ChaosTriggers says how the SMTP server fails on purpose. The zero value
// turns chaos off.
type ChaosTriggers struct {
	Sender         ChaosTrigger // at MAIL FROM
	Recipient      ChaosTrigger // at RCPT TO
	Authentication ChaosTrigger // at AUTH
}

// ChaosTrigger is one failure: the SMTP reply code to send (400 to 599; 0
// means mailpit's default, 451 or 535 for AUTH) and the chance of sending it
// on each command, in percent (0 to 100; 0 is off).
type ChaosTrigger struct {
	ErrorCode   int
	Probability int
}

// pageSize is how many summaries one API call returns while listing.
const pageSize = 500

// listResponse is mailpit's answer to /api/v1/messages and /api/v1/search.
type listResponse struct {
	MessagesCount int `json:"messages_count"` // all matching, not just this page
	Messages      []Summary
}

// Messages returns every message received, newest first.
func (s *Server) Messages(ctx context.Context) ([]Summary, error) {
	return s.list(ctx, "/api/v1/messages", url.Values{})
}

// Search returns the messages matching query, in mailpit's search syntax
// (e.g. `to:elodie@example.org subject:"accepté"`), newest first. An empty
// query matches every message.
func (s *Server) Search(ctx context.Context, query string) ([]Summary, error) {
	if strings.TrimSpace(query) == "" { // mailpit rejects an empty search
		return s.Messages(ctx)
	}
	return s.list(ctx, "/api/v1/search", url.Values{"query": {query}})
}

// Count returns how many messages match query (all of them when it is
// empty), without fetching them.
func (s *Server) Count(ctx context.Context, query string) (int, error) {
	path, params := "/api/v1/messages", url.Values{}
	if strings.TrimSpace(query) != "" {
		path, params = "/api/v1/search", url.Values{"query": {query}}
	}
	params.Set("limit", "1")
	var resp listResponse
	if err := s.getJSON(ctx, path, params, &resp); err != nil {
		return 0, err
	}
	return resp.MessagesCount, nil
}

func (s *Server) list(ctx context.Context, path string, params url.Values) ([]Summary, error) {
	all := []Summary{}
	for {
		params.Set("start", strconv.Itoa(len(all)))
		params.Set("limit", strconv.Itoa(pageSize))
		var page listResponse
		if err := s.getJSON(ctx, path, params, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Messages...)
		if len(page.Messages) == 0 || len(all) >= page.MessagesCount {
			return all, nil
		}
	}
}

// DeleteAll deletes every message mailpit holds.
func (s *Server) DeleteAll(ctx context.Context) error {
	_, err := s.do(ctx, http.MethodDelete, "/api/v1/messages", nil, nil)
	return err
}

// Message returns the message with mailpit ID id (Summary.ID), decoded.
func (s *Server) Message(ctx context.Context, id string) (*Message, error) {
	var m Message
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Raw returns message id exactly as mailpit received it over SMTP: the
// bytes to check a DKIM signature against.
func (s *Server) Raw(ctx context.Context, id string) ([]byte, error) {
	return s.do(ctx, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/raw", nil, nil)
}

// Headers returns the message's headers as sent, keyed in canonical form
// ("Message-Id", "Subject"): values keep their RFC 2047 encoding
// (=?utf-8?q?...?=), to be checked or decoded with mime.WordDecoder.
func (s *Server) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var h map[string][]string
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", nil, &h); err != nil {
		return nil, err
	}
	return h, nil
}

// Attachment returns the decoded bytes of part partID (Attachment.PartID) of
// message id.
func (s *Server) Attachment(ctx context.Context, id, partID string) ([]byte, error) {
	return s.do(ctx, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/part/"+url.PathEscape(partID), nil, nil)
}

// SetChaos replaces the SMTP server's failure triggers; SetChaos(ctx,
// ChaosTriggers{}) turns chaos off.
func (s *Server) SetChaos(ctx context.Context, triggers ChaosTriggers) error {
	body, err := json.Marshal(triggers)
	if err != nil {
		return err
	}
	_, err = s.do(ctx, http.MethodPut, "/api/v1/chaos", nil, bytes.NewReader(body))
	return err
}

// WaitFor polls until at least n messages match query and returns them,
// newest first; it fails the test if that takes longer than timeout. Like
// t.Fatal, call it from the test's own goroutine.
func (s *Server) WaitFor(t testing.TB, query string, n int, timeout time.Duration) []Summary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		found, err := s.Search(ctx, query)
		cancel()
		if err == nil && len(found) >= n {
			return found
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("mailpittest: waiting for %d messages matching %q: %v", n, query, err)
			}
			subjects := make([]string, len(found))
			for i, m := range found {
				subjects[i] = m.Subject
			}
			t.Fatalf("mailpittest: %d messages match %q after %s, want at least %d; their subjects: %q",
				len(found), query, timeout, n, subjects)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) getJSON(ctx context.Context, path string, params url.Values, v any) error {
	body, err := s.do(ctx, http.MethodGet, path, params, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("mailpit: GET %s: decode: %w", path, err)
	}
	return nil
}

// do calls the API and returns the body of a 2xx answer; any other status is
// an error carrying mailpit's message.
func (s *Server) do(ctx context.Context, method, path string, params url.Values, body io.Reader) ([]byte, error) {
	u := s.APIURL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mailpit: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("mailpit: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
