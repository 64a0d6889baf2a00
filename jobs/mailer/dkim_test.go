package mailer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

// testRSAKey is one 2048-bit key for the package's tests: generating one
// takes a while under -race.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func testEd25519Key() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// testDKIMs are a signer of each algorithm for domain aptflow.example.
func testDKIMs(t *testing.T) map[string]*DKIM {
	t.Helper()
	out := map[string]*DKIM{}
	for alg, key := range map[string]crypto.Signer{"rsa": testRSAKey(), "ed25519": testEd25519Key()} {
		d, err := NewDKIM("aptflow.example", "apt2026", key)
		if err != nil {
			t.Fatalf("NewDKIM(%s): %v", alg, err)
		}
		out[alg] = d
	}
	return out
}

// verifyDKIM checks raw's signatures as a receiving server would, with an
// independent verifier (go-msgauth's Verify) that looks the public key up
// in a DNS holding d's record only. It returns the one verification.
func verifyDKIM(t *testing.T, raw []byte, d *DKIM) *dkim.Verification {
	t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != d.RecordName() {
				return nil, errors.New("no such record: " + name)
			}
			return []string{d.TXT()}, nil
		},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(verifs) != 1 {
		t.Fatalf("%d signatures, want 1", len(verifs))
	}
	return verifs[0]
}

// nonASCIIMessage has non-ASCII text in every header that may hold it: a
// long subject, the display names of From, To and Reply-To.
func nonASCIIMessage(id string) Message {
	m := testMessage(id)
	m.Attachments = nil
	m.From = "Préfecture du Rhône — Bureau des étrangers <ne-pas-repondre@aptflow.example>"
	m.ReplyTo = `"Bureau des étrangers, main-d'œuvre étrangère" <etrangers@aptflow.example>`
	m.Subject = "Votre dossier nº 42 (démarche « Autorisation provisoire de travail (APT) pour les étudiants ») est de nouveau modifiable"
	return m
}

// TestDKIMMailpit sends signed messages through a real SMTP server and
// verifies the signature of the raw messages it received: one with a PDF
// attached (multipart/mixed in multipart/alternative, base64) and one with
// non-ASCII headers, for an RSA and an Ed25519 key.
func TestDKIMMailpit(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	for alg, d := range testDKIMs(t) {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			ml, err := New(mp.SMTPURL()+"?tls=none", "", d)
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range map[string]Message{
				"Attachment": testMessage("dkim-attachment-" + alg + "@aptflow.example"),
				"NonASCII":   nonASCIIMessage("dkim-non-ascii-" + alg + "@aptflow.example"),
			} {
				t.Run(name, func(t *testing.T) {
					if err := ml.Send(t.Context(), m); err != nil {
						t.Fatal(err)
					}
					got := mp.WaitFor(t, "message-id:"+m.MessageID, 1, 10*time.Second)
					raw, err := mp.Raw(t.Context(), got[0].ID)
					if err != nil {
						t.Fatal(err)
					}
					v := verifyDKIM(t, raw, d)
					if v.Err != nil {
						t.Fatalf("signature does not verify: %v\n%s", v.Err, raw)
					}
					if v.Domain != "aptflow.example" {
						t.Errorf("d= %q", v.Domain)
					}
					for _, h := range []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type"} {
						if !slices.ContainsFunc(v.HeaderKeys, func(k string) bool { return strings.EqualFold(k, h) }) {
							t.Errorf("%s is not signed (h=%v)", h, v.HeaderKeys)
						}
					}
					if head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n")); !bytes.Contains(head, []byte(" c=relaxed/relaxed;")) {
						t.Errorf("not relaxed/relaxed:\n%s", head)
					}
					checkDelivered(t, raw, m)
				})
			}
		})
	}
}

// TestDKIMSignsWireBytes shows why the mailers sign the rendered bytes and
// send those: the same message rendered again (new MIME boundaries) does
// not verify under the first rendering's signature, nor does one whose
// subject a relay rewrote. The file mailer's output verifies.
func TestDKIMSignsWireBytes(t *testing.T) {
	t.Parallel()
	d := testDKIMs(t)["ed25519"]
	m := testMessage("wire@aptflow.example")
	first, err := prepare(t.Context(), m, d)
	if err != nil {
		t.Fatal(err)
	}
	if v := verifyDKIM(t, first.data, d); v.Err != nil {
		t.Fatalf("the signed bytes do not verify: %v", v.Err)
	}
	sig, _, _ := bytes.Cut(first.data, []byte("\r\nFrom: "))
	second, err := prepare(t.Context(), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(second.data, first.data[len(sig)+2:]) {
		t.Fatal("two renderings are the same bytes: the test shows nothing")
	}
	transplanted := slices.Concat(sig, []byte("\r\n"), second.data)
	if v := verifyDKIM(t, transplanted, d); v.Err == nil {
		t.Error("a signature made before a re-rendering verifies")
	}
	rewritten := bytes.Replace(first.data, []byte("Subject: =?UTF-8?q?Votre"), []byte("Subject: =?UTF-8?q?VOTRE"), 1)
	if v := verifyDKIM(t, rewritten, d); v.Err == nil {
		t.Error("a message whose subject changed verifies")
	}

	dir := t.TempDir()
	fm, err := NewFileMailer(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := fm.Send(t.Context(), nonASCIIMessage("file@aptflow.example")); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FileName("file@aptflow.example")))
	if err != nil {
		t.Fatal(err)
	}
	if v := verifyDKIM(t, raw, d); v.Err != nil {
		t.Errorf("the .eml file does not verify: %v", v.Err)
	}
}

func pemOf(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func TestLoadDKIM(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		pem        []byte
		domain     string
		selector   string
		wantAlg    string
		wantErrHas string
	}{
		{name: "RSAPKCS1", pem: pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey())), wantAlg: "rsa"},
		{name: "RSAPKCS8", pem: pkcs8(t, testRSAKey()), wantAlg: "rsa"},
		{name: "Ed25519", pem: pkcs8(t, testEd25519Key()), wantAlg: "ed25519"},
		{name: "TrailingDotAndCase", pem: pkcs8(t, testEd25519Key()), domain: "Rhone.Gouv.FR.", wantAlg: "ed25519"},
		{name: "RSA1024", pem: pkcs8(t, small), wantErrHas: "RSA of 1024 bits, at least 2048"},
		{name: "ECDSA", pem: pkcs8(t, ec), wantErrHas: "RSA or Ed25519 expected"},
		{name: "NotPEM", pem: []byte("not a key"), wantErrHas: "no PEM block"},
		{name: "Certificate", pem: pemOf(t, "CERTIFICATE", []byte{1, 2, 3}), wantErrHas: `PEM block "CERTIFICATE"`},
		{name: "BrokenPKCS8", pem: pemOf(t, "PRIVATE KEY", []byte{1, 2, 3}), wantErrHas: "not a PKCS #8 key"},
		{name: "BadDomain", pem: pkcs8(t, testEd25519Key()), domain: "rhone gouv.fr", wantErrHas: "not a domain name"},
		{name: "BadSelector", pem: pkcs8(t, testEd25519Key()), selector: "apt 2026", wantErrHas: "selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "dkim.pem")
			if err := os.WriteFile(file, tc.pem, 0o600); err != nil {
				t.Fatal(err)
			}
			domain, selector := "rhone.gouv.fr", "apt2026"
			if tc.domain != "" {
				domain = tc.domain
			}
			if tc.selector != "" {
				selector = tc.selector
			}
			d, err := LoadDKIM(domain, selector, file)
			if tc.wantErrHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrHas) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErrHas)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY-----") || len(tc.pem) > 80 && strings.Contains(err.Error(), string(tc.pem[40:80])) {
					t.Errorf("the error quotes the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Algorithm() != tc.wantAlg || d.Domain() != "rhone.gouv.fr" || d.RecordName() != "apt2026._domainkey.rhone.gouv.fr" {
				t.Errorf("alg %s, record name %s", d.Algorithm(), d.RecordName())
			}
		})
	}
	if _, err := LoadDKIM("rhone.gouv.fr", "apt2026", filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("a missing key file loads")
	}
}

// TestDKIMRecord checks the record to publish: its text is the public key
// of the signing key, and its zone-file form cuts it into strings a DNS
// server accepts, which put back together give the text.
func TestDKIMRecord(t *testing.T) {
	t.Parallel()
	for alg, d := range testDKIMs(t) {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			txt := d.TXT()
			p, ok := strings.CutPrefix(txt, "v=DKIM1; k="+alg+"; p=")
			if !ok {
				t.Fatalf("TXT = %q", txt)
			}
			der, err := base64.StdEncoding.DecodeString(p)
			if err != nil {
				t.Fatal(err)
			}
			var pub crypto.PublicKey = ed25519.PublicKey(der)
			if alg == "rsa" {
				if pub, err = x509.ParsePKIXPublicKey(der); err != nil {
					t.Fatal(err)
				}
			}
			if !d.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Error("the record's key is not the signing key's")
			}
			zone := d.ZoneRecord()
			prefix := "apt2026._domainkey.aptflow.example. IN TXT "
			if !strings.HasPrefix(zone, prefix) || strings.Contains(zone, "\n") {
				t.Fatalf("zone record %q", zone)
			}
			parts := regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(zone[len(prefix):], -1)
			var joined strings.Builder
			for _, part := range parts {
				if len(part[1]) > 255 {
					t.Errorf("a string of %d characters", len(part[1]))
				}
				joined.WriteString(part[1])
			}
			if joined.String() != txt {
				t.Errorf("zone strings give %q, want %q", joined.String(), txt)
			}
			if alg == "rsa" && len(parts) < 2 {
				t.Errorf("a 2048-bit key in %d string", len(parts))
			}
		})
	}
}
