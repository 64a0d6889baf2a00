// Package apptest starts aptflow's whole stack in-process for a test: a
// fresh PostgreSQL database, River with the real workers, a real SMTP server
// (mailpit) unless the test brings its own, the workflow Service and the
// HTTP API on a loopback port, with an API token.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/api"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
	"github.com/aptflow/aptflow/internal/openapitest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/templates/attestation"
	"github.com/aptflow/aptflow/workflow"
)

// Options change the stack.
type Options struct {
	// SMTPURL sends e-mails there instead of a new mailpit.
	SMTPURL string
	// NoWorkers: River only inserts; no job runs.
	NoWorkers bool
	// Jobs overrides fields of the workers' configuration (zero fields keep
	// the test defaults: short retries and coalescing).
	Jobs jobs.Config
	// Now is the service's clock.
	Now func() time.Time
	// Logs receives the stack's logs too (they are kept in Stack.Logs and
	// printed if the test fails).
	Logs io.Writer
	// WrapRenderer wraps the attestation renderer, to inject faults.
	WrapRenderer func(jobs.AttestationRenderer) jobs.AttestationRenderer
	// Webhooks is the policy subscriptions are checked against; nil: the
	// loopback is allowed (WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8), where
	// the tests' receivers listen. WebhookSender, if set, is the policy
	// of the connections instead: a subscription made under one policy,
	// delivered under another.
	Webhooks      *webhook.Policy
	WebhookSender *webhook.Policy
	// WebhookTimeout bounds a delivery (webhook.DefaultTimeout when 0);
	// WebhookTLS is the client's TLS configuration (a test's TLS server).
	WebhookTimeout time.Duration
	WebhookTLS     *tls.Config
	// NoWebhookSecrets runs the stack as without WEBHOOK_SECRET_KEY.
	NoWebhookSecrets bool
	// Signer signs the attestations (nil: unsigned).
	Signer jobs.AttestationSigner
	// WrapHandler wraps the API's handler, to inject faults.
	WrapHandler func(http.Handler) http.Handler
}

// Stack is a running aptflow.
type Stack struct {
	T       testing.TB
	Pool    *pgxpool.Pool
	River   *river.Client[pgx.Tx]
	Service *workflow.Service
	Server  *httptest.Server
	// Client sends the test's requests: every response of Server is
	// checked against api/openapi.yaml (internal/openapitest).
	Client   *http.Client
	Token    string
	Mailpit  *mailpittest.Server // nil when Options.SMTPURL was given
	Jobs     jobs.Config
	Registry *prometheus.Registry
	Logs     *SyncBuffer
}

// SyncBuffer is a goroutine-safe buffer for captured logs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var seq atomic.Int64

// Start starts a stack for t and stops it at cleanup.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	ctx := context.Background()
	s := &Stack{T: t, Pool: dbtest.New(t), Registry: prometheus.NewRegistry(), Logs: &SyncBuffer{}}
	var logw io.Writer = s.Logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aptflow logs:\n%s", s.Logs.String())
		}
	})
	if opts.Logs != nil {
		logw = io.MultiWriter(s.Logs, opts.Logs)
	}
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	smtpURL := opts.SMTPURL
	if smtpURL == "" {
		s.Mailpit = mailpittest.Start(t)
		smtpURL = s.Mailpit.SMTPURL()
	}
	jc := opts.Jobs
	if jc.RetryBase == 0 {
		jc.RetryBase = 200 * time.Millisecond
	}
	if jc.RetryMax == 0 {
		jc.RetryMax = time.Second
	}
	if jc.NotifyCoalesce == 0 {
		jc.NotifyCoalesce = 500 * time.Millisecond
	}
	if jc.FetchPollInterval == 0 {
		jc.FetchPollInterval = 100 * time.Millisecond
	}
	if jc.WebhookBackoff == nil {
		jc.WebhookBackoff = []time.Duration{200 * time.Millisecond}
	}
	// The server is created first so that its URL is the public URL.
	var handler http.Handler = http.NotFoundHandler()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(s.Server.Close)
	s.Client = openapitest.Client(t, s.Server.URL)
	jc.PublicURL = s.Server.URL
	jc.MailFrom = "Autorisation provisoire de travail <ne-pas-repondre@aptflow.test>"
	jc.Logger = log
	jc.Defaults()

	policy := opts.Webhooks
	if policy == nil {
		policy = &webhook.Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	}
	svcOpts := workflow.Options{PublicURL: s.Server.URL, Now: opts.Now, WebhookTargets: policy}
	if !opts.NoWebhookSecrets {
		svcOpts.WebhookSecrets = NewKeyring(t)
	}
	var workers *river.Workers
	if !opts.NoWorkers {
		tpl, err := templates.Load()
		if err != nil {
			t.Fatalf("templates: %v", err)
		}
		var renderer jobs.AttestationRenderer
		renderer, err = attestation.NewRenderer()
		if err != nil {
			t.Fatalf("attestation renderer: %v", err)
		}
		if opts.WrapRenderer != nil {
			renderer = opts.WrapRenderer(renderer)
		}
		m, err := mailer.New(smtpURL, t.TempDir(), nil)
		if err != nil {
			t.Fatalf("mailer: %v", err)
		}
		// The workers' Service inserts jobs with the client that runs
		// them, which needs the workers first.
		sendPolicy := opts.WebhookSender
		if sendPolicy == nil {
			sendPolicy = policy
		}
		sender := webhook.NewSender(webhook.SenderOptions{Policy: sendPolicy, Timeout: opts.WebhookTimeout, TLS: opts.WebhookTLS})
		workers, err = jobs.NewWorkers(jc, jobs.Deps{Service: workflow.NewService(s.Pool, jobs.NewEnqueuer(nil, jc), svcOpts),
			Pool: s.Pool, Mailer: m, Templates: tpl, Attestations: renderer, Signer: opts.Signer, Metrics: jobs.NewMetrics(s.Registry),
			Webhooks: sender})
		if err != nil {
			t.Fatalf("workers: %v", err)
		}
	}
	client, err := jobs.NewClient(s.Pool, jc, workers)
	if err != nil {
		t.Fatalf("river client: %v", err)
	}
	s.River = client
	s.Jobs = jc
	s.Service = workflow.NewService(s.Pool, jobs.NewEnqueuer(client, jc), svcOpts)
	handler = api.NewServer(api.Deps{Service: s.Service, Pool: s.Pool, Logger: log, HTTPMetrics: api.NewHTTPMetrics(s.Registry)})
	if opts.WrapHandler != nil {
		handler = opts.WrapHandler(handler)
	}
	if !opts.NoWorkers {
		if err := client.Start(ctx); err != nil {
			t.Fatalf("start river: %v", err)
		}
		t.Cleanup(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = client.Stop(stopCtx)
		})
	}
	s.Token, err = api.CreateToken(ctx, s.Pool, fmt.Sprintf("test-%d", seq.Add(1)))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return s
}

// NewKeyring returns a keyring with one new random key, as
// WEBHOOK_SECRET_KEY would give.
func NewKeyring(t testing.TB) *webhook.Keyring {
	t.Helper()
	key := make([]byte, webhook.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := webhook.ParseKeyring(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Response is an HTTP response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

// Do sends a request with the stack's token. body is JSON-encoded unless it
// is a string or []byte. headers are pairs of name, value.
func (s *Stack) Do(method, path string, body any, headers ...string) *Response {
	s.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.T.Fatalf("encode: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.Server.URL+path, rd)
	if err != nil {
		s.T.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.T.Fatalf("read body: %v", err)
	}
	return &Response{Response: resp, Body: b}
}

// Must sends a request and fails the test unless the status is want; it
// returns the decoded JSON body (nil if empty).
func (s *Stack) Must(want int, method, path string, body any, headers ...string) map[string]any {
	s.T.Helper()
	r := s.Do(method, path, body, headers...)
	if r.StatusCode != want {
		s.T.Fatalf("%s %s = %d, want %d: %s", method, path, r.StatusCode, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(s.T)
}

// Procedure creates a procedure and returns its id.
func (s *Stack) Procedure() int64 {
	s.T.Helper()
	return s.ProcedureWith(nil)
}

// ProcedureWith creates a procedure with extra fields of the request
// (liens, reply_to, …), which replace the defaults, and returns its id.
func (s *Stack) ProcedureWith(extra map[string]any) int64 {
	s.T.Helper()
	body := map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "18 rue de Bonnel\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}
	for k, v := range extra {
		body[k] = v
	}
	p := s.Must(201, "POST", "/v1/procedures", body)
	return int64(p["id"].(float64))
}

// Instructeur puts a new instructeur on a procedure and returns its e-mail.
func (s *Stack) Instructeur(procedureID int64, nom string) string {
	s.T.Helper()
	email := fmt.Sprintf("instructeur-%d-%d@prefecture.test", procedureID, seq.Add(1))
	s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", procedureID), map[string]any{"email": email, "nom": nom})
	return email
}

// Demandeur returns a valid APT request for « Élodie Dupré ».
func Demandeur() map[string]any {
	return map[string]any{
		"nom":            "Dupré",
		"prenom":         "Élodie",
		"date_naissance": "2003-04-12",
		"lieu_naissance": "Montréal (Canada)",
		"nationalite":    "canadienne",
		"titre_sejour":   map[string]any{"numero": "6912345678", "expire_le": "2027-09-30"},
		"etablissement":  "Université Lumière Lyon 2",
		"employeur": map[string]any{
			"raison_sociale": "Boulangerie Œuvre & Fils",
			"siret":          "73282932000074",
			"adresse":        "3 place Bellecour, 69002 Lyon",
		},
		"emploi":       "vendeuse en boulangerie",
		"heures_hebdo": 17.5,
		"date_debut":   "2026-12-01",
		"date_fin":     "2027-06-30",
	}
}

// Dossier creates a dossier on a procedure and returns its id and the
// applicant's (unique) e-mail.
func (s *Stack) Dossier(procedureID int64) (id int64, usager string) {
	s.T.Helper()
	usager = fmt.Sprintf("usager-%d@etudiant.test", seq.Add(1))
	d := s.Must(201, "POST", "/v1/dossiers", map[string]any{
		"procedure_id": procedureID, "usager_email": usager, "demandeur": Demandeur(),
	})
	return int64(d["id"].(float64)), usager
}

// Event posts an event and returns the response.
func (s *Stack) Event(dossierID int64, event, instructeur, motivation string) *Response {
	s.T.Helper()
	return s.Do("POST", fmt.Sprintf("/v1/dossiers/%d/events", dossierID), map[string]any{
		"event": event, "instructeur": instructeur, "motivation": motivation,
	})
}

// WaitDelivery polls the dossier until its e-mail of kind to recipient has
// status want, and returns it.
func (s *Stack) WaitDelivery(dossierID int64, kind, want string, timeout time.Duration) map[string]any {
	s.T.Helper()
	deadline := time.Now().Add(timeout)
	var last any
	for time.Now().Before(deadline) {
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", dossierID), nil)
		emails, _ := d["emails"].([]any)
		for _, e := range emails {
			m := e.(map[string]any)
			if m["kind"] == kind {
				last = m
				if m["status"] == want {
					return m
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.T.Fatalf("dossier %d: e-mail %s never %s (last: %v)", dossierID, kind, want, last)
	return nil
}

// Accepted creates a dossier on procedure proc and has a new instructeur
// accept it (no e-mail for the instruction), and returns its id.
func (s *Stack) Accepted(proc int64, motivation string) int64 {
	s.T.Helper()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst, "disable_notification": true})
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": inst, "motivation": motivation})
	return id
}

// WaitAttestation polls the dossier until its attestation is rendered and
// returns it (url, sha256, verification_url).
func (s *Stack) WaitAttestation(dossierID int64, timeout time.Duration) map[string]any {
	s.T.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", dossierID), nil)
		if a, ok := d["attestation"].(map[string]any); ok {
			return a
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.T.Fatalf("dossier %d: no attestation after %s", dossierID, timeout)
	return nil
}

// Tool returns the path of a command a test needs, failing (never
// skipping) with how to install it (.ci/run does).
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: apt-get install %s (.ci/run installs it)", name, pkg)
	}
	return p
}

// Must200Bytes GETs path with the stack's token, fails unless 200, and
// returns the body as it is (a PDF).
func (s *Stack) Must200Bytes(path string) []byte {
	s.T.Helper()
	r := s.Do("GET", path, nil)
	if r.StatusCode != 200 {
		s.T.Fatalf("GET %s = %d: %s", path, r.StatusCode, r.Body)
	}
	return r.Body
}
