// Package webhooktest is a webhook receiver for tests, the bench and the
// fault suite: a real HTTP server on loopback that verifies every delivery
// with the Standard Webhooks reference library
// (github.com/standard-webhooks/standard-webhooks/libraries), records it,
// and answers what the caller says: 2xx, an error status, or nothing at
// all (the request hangs until the sender gives up).
package webhooktest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Delivery is one request the receiver got.
type Delivery struct {
	// The three Standard Webhooks headers.
	ID, Timestamp, Signature string
	Body                     []byte
	// Type and Data are decoded from the body ({"type", "timestamp",
	// "data"}); EventTime is its "timestamp".
	Type      string
	EventTime string
	Data      map[string]any
	// At is when the request arrived.
	At time.Time
	// Verified is the reference library's verdict with the secret(s) the
	// receiver holds: nil if one of them verifies the signature (within
	// the library's 5-minute tolerance).
	Verified error
	// Status is what the receiver answered (0: nothing, the request hung).
	Status int
}

// DossierID is the data's dossier_id (0 if there is none).
func (d Delivery) DossierID() int64 {
	f, _ := d.Data["dossier_id"].(float64)
	return int64(f)
}

// Hang is the status a Respond function returns for a receiver that never
// answers: the request is held until the sender gives up or the receiver
// closes.
const Hang = 0

// Respond decides the answer to a delivery, given how many times its
// webhook-id arrived before (0 for the first).
type Respond func(d Delivery, seen int) int

// FirstThen answers first to the first attempt of each delivery, then
// then to the others (a retry).
func FirstThen(first, then int) Respond {
	return func(_ Delivery, seen int) int {
		if seen == 0 {
			return first
		}
		return then
	}
}

// Env is the configuration that lets an aptflow process reach receivers on
// the loopback (WEBHOOK_ALLOWED_NETWORKS) and seal their secrets (a new
// random WEBHOOK_SECRET_KEY).
func Env() ([]string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return []string{"WEBHOOK_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key), "WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8"}, nil
}

// Receiver is a running webhook receiver.
type Receiver struct {
	// URL is where to subscribe it.
	URL string

	srv     *httptest.Server
	mu      sync.Mutex
	secrets []*standardwebhooks.Webhook
	got     []Delivery
	seen    map[string]int
	respond Respond
	closed  chan struct{}
	closer  sync.Once
}

// Start starts a receiver on loopback that answers respond (nil: 204).
func Start(respond Respond) *Receiver {
	r := newReceiver(respond)
	r.srv = httptest.NewServer(r)
	r.URL = r.srv.URL + "/hooks/aptflow"
	return r
}

// StartTLS starts a receiver on loopback over HTTPS with a certificate for
// 127.0.0.1, and returns the client configuration that trusts it.
func StartTLS(respond Respond) (*Receiver, *tls.Config) {
	r := newReceiver(respond)
	r.srv = httptest.NewTLSServer(r)
	r.URL = r.srv.URL + "/hooks/aptflow"
	cfg := r.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return r, cfg
}

func newReceiver(respond Respond) *Receiver {
	if respond == nil {
		respond = func(Delivery, int) int { return http.StatusNoContent }
	}
	return &Receiver{seen: map[string]int{}, respond: respond, closed: make(chan struct{})}
}

// Close stops the receiver; hung requests return.
func (r *Receiver) Close() {
	r.closer.Do(func() { close(r.closed) })
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// AddSecret makes the receiver verify with secret (whsec_...) too: a
// delivery verifies if any of its secrets does.
func (r *Receiver) AddSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, wh)
	return nil
}

// SetSecret makes secret the only one the receiver verifies with.
func (r *Receiver) SetSecret(secret string) error {
	r.mu.Lock()
	r.secrets = nil
	r.mu.Unlock()
	return r.AddSecret(secret)
}

// Deliveries returns what arrived so far, in order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Count returns how many requests arrived.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// ErrNoSecret is the verdict on a delivery that arrived before the
// receiver had a secret.
var ErrNoSecret = errors.New("the receiver has no secret yet")

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	d := Delivery{
		ID:        req.Header.Get("webhook-id"),
		Timestamp: req.Header.Get("webhook-timestamp"),
		Signature: req.Header.Get("webhook-signature"),
		Body:      body,
		At:        time.Now(),
	}
	var payload struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &payload); err == nil {
		d.Type, d.EventTime, d.Data = payload.Type, payload.Timestamp, payload.Data
	}
	r.mu.Lock()
	d.Verified = ErrNoSecret
	for _, wh := range r.secrets {
		if d.Verified = wh.Verify(body, req.Header); d.Verified == nil {
			break
		}
	}
	seen := r.seen[d.ID]
	r.seen[d.ID]++
	respond := r.respond
	r.mu.Unlock()

	d.Status = respond(d, seen)
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	if d.Status == Hang {
		select {
		case <-req.Context().Done():
		case <-r.closed:
		}
		return
	}
	w.WriteHeader(d.Status)
}

// Wait polls until cond holds on the deliveries so far, and returns them;
// after timeout, an error with how many arrived.
func (r *Receiver) Wait(timeout time.Duration, cond func([]Delivery) bool) ([]Delivery, error) {
	deadline := time.Now().Add(timeout)
	for {
		got := r.Deliveries()
		if cond(got) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("webhook receiver: condition not met after %s (%d deliveries)", timeout, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Verify checks a delivery's body and headers with one secret (whsec_...),
// with the reference library.
func Verify(secret string, body []byte, h http.Header) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}

// ByType counts the deliveries of each event type.
func ByType(ds []Delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.Type]++
	}
	return m
}
