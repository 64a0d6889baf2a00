package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/aptflow/aptflow/jobs/webhook"
)

func newSecret(t *testing.T) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

// TestSign: the reference library verifies our signature, with either
// secret of a rotation, and refuses it once the body, the id or the
// timestamp changed.
func TestSign(t *testing.T) {
	t.Parallel()
	oldSecret, oldKey := newSecret(t)
	newSecretS, newKey := newSecret(t)
	body := []byte(`{"type":"dossier.created","timestamp":"2026-11-30T09:00:00Z","data":{"dossier_id":1,"procedure_id":2}}`)
	now := time.Now()
	header := func(id string, ts time.Time, body []byte, keys ...[]byte) http.Header {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(webhook.HeaderSignature, webhook.Sign("msg_1", ts, body, keys...))
		return h
	}
	verify := func(secret string, body []byte, h http.Header) error {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(body, h)
	}
	rotating := header("msg_1", now, body, newKey, oldKey)
	if sig := rotating.Get(webhook.HeaderSignature); len(strings.Split(sig, " ")) != 2 || !strings.HasPrefix(sig, "v1,") {
		t.Errorf("signature header %q, want two v1 signatures", sig)
	}
	for name, secret := range map[string]string{"New": newSecretS, "Old": oldSecret} {
		if err := verify(secret, body, rotating); err != nil {
			t.Errorf("%s secret during a rotation: %v", name, err)
		}
	}
	if err := verify(oldSecret, body, header("msg_1", now, body, newKey)); err == nil {
		t.Error("the old secret verifies a signature made with the new one alone")
	}
	if err := verify(newSecretS, append(bytes.Clone(body), ' '), header("msg_1", now, body, newKey)); err == nil {
		t.Error("a changed body verifies")
	}
	h := header("msg_1", now, body, newKey)
	h.Set(webhook.HeaderID, "msg_2")
	if err := verify(newSecretS, body, h); err == nil {
		t.Error("a changed webhook-id verifies")
	}
	if err := verify(newSecretS, body, header("msg_1", now.Add(-10*time.Minute), body, newKey)); err == nil {
		t.Error("a ten-minute-old timestamp passes the receiver's tolerance")
	}
}

// TestKeyring: a sealed secret opens with its key and its row's binding
// only; after a rotation of WEBHOOK_SECRET_KEY the old key still opens
// what it sealed, and new secrets are sealed with the new key.
func TestKeyring(t *testing.T) {
	t.Parallel()
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	old, err := webhook.ParseKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("32 bytes of a webhook's secret..")
	id1, sealed, err := old.Seal([]byte("row 1"), secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed secret contains the secret")
	}
	if got, err := old.Open(id1, []byte("row 1"), sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := old.Open(id1, []byte("row 2"), sealed); err == nil {
		t.Error("a secret moved to another row opens")
	}
	rotated, err := webhook.ParseKeyring(k2 + ", " + k1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(id1, []byte("row 1"), sealed); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("the old key after a rotation: %q, %v", got, err)
	}
	id2, _, err := rotated.Seal([]byte("row 1"), secret)
	if err != nil || id2 == id1 {
		t.Errorf("sealed after the rotation with key %q (%v), want the new key", id2, err)
	}
	newOnly, _ := webhook.ParseKeyring(k2)
	if _, err := newOnly.Open(id1, []byte("row 1"), sealed); !errors.Is(err, webhook.ErrUnknownKey) {
		t.Errorf("without the old key: %v, want ErrUnknownKey", err)
	}
	for _, bad := range []string{"", "pas du base64 !", base64.StdEncoding.EncodeToString(make([]byte, 16)), k1 + ",,"} {
		if _, err := webhook.ParseKeyring(bad); err == nil {
			t.Errorf("ParseKeyring(%q) accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

// TestPublic: the special-purpose blocks are not public, ordinary
// addresses are.
func TestPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true, "8.8.8.8": true,
		"127.0.0.1": false, "10.0.0.1": false, "172.16.5.4": false, "192.168.0.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "0.1.2.3": false,
		"192.0.2.1": false, "198.18.0.1": false, "198.51.100.2": false, "203.0.113.9": false,
		"224.0.0.1": false, "240.0.0.1": false, "255.255.255.255": false,
		"::1": false, "::": false, "fe80::1": false, "fc00::1": false, "fd12::1": false, "ff02::1": false,
		"::ffff:127.0.0.1": false, "::ffff:93.184.216.34": true, "::7f00:1": false,
		"64:ff9b::7f00:1": false, "2002:7f00:1::": false, "2001:0:4136:e378::": false, "2001:db8::1": false,
		"fec0::1": false, "100::1": false,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	got, err := webhook.ParseNetworks(" 127.0.0.0/8, 10.1.2.3 fd00::/8,::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "10.1.2.3/32", "fd00::/8", "::1/128"}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%v, want %v", got, want)
		}
	}
	if _, err := webhook.ParseNetworks("10.0.0.0/33"); err == nil {
		t.Error("a bad prefix is accepted")
	}
	if n, err := webhook.ParseNetworks(""); err != nil || len(n) != 0 {
		t.Errorf("empty: %v, %v", n, err)
	}
}

// loopback allows the test servers.
var loopback = &webhook.Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// TestSenderNoRedirect: a redirect is an answer, not followed: its target
// was never checked.
func TestSenderNoRedirect(t *testing.T) {
	t.Parallel()
	var followed bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed = true }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	res, err := webhook.NewSender(webhook.SenderOptions{Policy: loopback}).Send(t.Context(), webhook.Message{
		URL: redirect.URL, ID: "msg_1", Timestamp: time.Now(), Body: []byte(`{}`), Secrets: [][]byte{[]byte("k")},
	})
	if err != nil || res.StatusCode != http.StatusTemporaryRedirect || res.OK() {
		t.Errorf("%+v, %v: want the 307 itself", res, err)
	}
	if followed {
		t.Error("the redirect was followed")
	}
}

// TestSenderIgnoresProxy: a proxy in the environment is not used: it would
// be the address dialled, and checked, instead of the receiver.
func TestSenderIgnoresProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := webhook.NewSender(webhook.SenderOptions{Policy: loopback, UserAgent: "aptflow-test"}).Send(t.Context(), webhook.Message{
		URL: srv.URL, ID: "msg_1", Timestamp: time.Unix(1_700_000_000, 0), Body: []byte(`{}`), Secrets: [][]byte{[]byte("k")},
	})
	if err != nil || !res.OK() {
		t.Fatalf("%+v, %v", res, err)
	}
	if got.Get("webhook-id") != "msg_1" || got.Get("webhook-timestamp") != "1700000000" ||
		!strings.HasPrefix(got.Get("webhook-signature"), "v1,") || got.Get("Content-Type") != "application/json" ||
		got.Get("User-Agent") != "aptflow-test" {
		t.Errorf("headers %v", got)
	}
}

// TestSenderAnswers: the start of an error's body is kept, printable and
// bounded; a receiver that does not answer in time is a timeout; an
// address the policy refuses is never connected to.
func TestSenderAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/error":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("signature\ninvalide\x00" + strings.Repeat("x", 5000)))
		case "/slow":
			// The body read, the server sees the client hang up.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	msg := webhook.Message{ID: "msg_1", Timestamp: time.Now(), Body: []byte(`{}`), Secrets: [][]byte{[]byte("k")}}
	s := webhook.NewSender(webhook.SenderOptions{Policy: loopback, Timeout: 300 * time.Millisecond})

	msg.URL = srv.URL + "/error"
	res, err := s.Send(t.Context(), msg)
	if err != nil || res.StatusCode != 400 || !strings.HasPrefix(res.Snippet, "signature invalide") || len(res.Snippet) > 256 {
		t.Errorf("error answer: %+v, %v", res, err)
	}
	msg.URL = srv.URL + "/slow"
	if _, err := s.Send(t.Context(), msg); !errors.Is(err, webhook.ErrTimeout) {
		t.Errorf("slow receiver: %v, want a timeout", err)
	}
	strict := webhook.NewSender(webhook.SenderOptions{Policy: &webhook.Policy{}})
	msg.URL = srv.URL + "/error"
	if _, err := strict.Send(t.Context(), msg); !errors.Is(err, webhook.ErrNotPermitted) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("loopback without WEBHOOK_ALLOWED_NETWORKS: %v", err)
	}
	msg.URL = strings.Replace(srv.URL, "http://127.0.0.1", "https://localhost", 1)
	if _, err := strict.Send(t.Context(), msg); !errors.Is(err, webhook.ErrNotPermitted) {
		t.Errorf("https://localhost without WEBHOOK_ALLOWED_NETWORKS: %v", err)
	}
}

// TestCheckURL: the policy's verdict on subscriptions, with
// WEBHOOK_ALLOWED_NETWORKS.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	p := &webhook.Policy{
		Allowed: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")},
		Resolver: resolver{
			"hooks.example.fr":  {netip.MustParseAddr("93.184.216.34")},
			"interne.example":   {netip.MustParseAddr("10.20.1.1")},
			"moitie.example":    {netip.MustParseAddr("10.20.1.1"), netip.MustParseAddr("93.184.216.34")},
			"ailleurs.example":  {netip.MustParseAddr("10.30.1.1")},
			"metadonnees.local": {netip.MustParseAddr("169.254.169.254")},
		},
	}
	for u, want := range map[string]string{
		"https://hooks.example.fr/x":           "",
		"https://interne.example/x":            "",
		"http://interne.example:8080/x":        "",
		"http://10.20.3.4/x":                   "",
		"http://moitie.example/x":              "scheme_not_allowed", // one address is not in the networks
		"https://moitie.example/x":             "",
		"https://ailleurs.example/x":           "address_not_allowed",
		"https://metadonnees.local/x":          "address_not_allowed",
		"http://hooks.example.fr/x":            "scheme_not_allowed",
		"https://inconnu.example/":             "unresolvable_host",
		"https://" + strings.Repeat("a", 2001): "invalid_url",
	} {
		err := p.CheckURL(context.Background(), u)
		var te *webhook.TargetError
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", u, err)
		case want != "" && (!errors.As(err, &te) || te.Code() != want):
			t.Errorf("%s: %v, want %s", u, err, want)
		}
	}
}

type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}
