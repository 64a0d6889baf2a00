package attestation

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/pkcs7"

	"github.com/aptflow/aptflow/internal/devcert"
)

func newTestSigner(t testing.TB) *Signer {
	t.Helper()
	certPEM, keyPEM, err := devcert.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSign checks a signed attestation as poppler's pdfsig sees it: the
// signature is valid, SHA-256, over the whole file, with the chain (the
// signing certificate and its authority) embedded; the unsigned document
// is the start of the signed file, unchanged.
func TestSign(t *testing.T) {
	t.Parallel()
	r, s := setup(t), newTestSigner(t)
	d := testData()
	d.Signed = true
	doc := render(t, r, d)
	signed, err := s.Sign(doc, SignInfo{Name: d.ServiceNom, Location: "Lyon", Reason: "Autorisation provisoire de travail, dossier nº 42", Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(signed, doc) {
		t.Error("the signed file does not start with the rendered document")
	}
	out, _ := run(t, signed, "poppler-utils", "pdfsig", "-nocert", "PDF")
	requireContains(t, "pdfsig", out,
		"Signature is Valid.",
		"Total document signed",
		"Signature Type: adbe.pkcs7.detached",
		"Signing Hash Algorithm: SHA-256",
		"Signer Certificate Common Name: Service instructeur (développement)",
	)
	_, dir := run(t, signed, "poppler-utils", "pdfsig", "-nocert", "-dump", "PDF")
	dump, err := os.ReadFile(filepath.Join(dir, "attestation.pdf.sig0"))
	if err != nil {
		t.Fatalf("pdfsig -dump: %v", err)
	}
	p7, err := pkcs7.Parse(dump)
	if err != nil {
		t.Fatalf("the signature is not PKCS #7: %v", err)
	}
	if len(p7.Certificates) != 2 {
		t.Errorf("the signature embeds %d certificates, want the chain of 2", len(p7.Certificates))
	}
	// A changed byte breaks it.
	tampered := bytes.Clone(signed)
	tampered[len(doc)/2] ^= 1
	if out, _ := runAllowFail(t, tampered, "pdfsig", "-nocert", "PDF"); strings.Contains(out, "Signature is Valid.") {
		t.Errorf("pdfsig accepts a tampered file:\n%s", out)
	}
}

func TestSignerErrors(t *testing.T) {
	t.Parallel()
	certA, keyA, err := devcert.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, err := devcert.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ cert, key []byte }{
		"NoCertificate": {nil, keyA},
		"NoKey":         {certA, nil},
		"OtherKey":      {certA, keyB},
		"Garbage":       {[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), keyA},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewSigner(tc.cert, tc.key); err == nil {
				t.Fatal("NewSigner accepted it")
			}
		})
	}
}

// BenchmarkRenderSign is the work of one attestation: render, then sign.
func BenchmarkRenderSign(b *testing.B) {
	r, s := setup(b), newTestSigner(b)
	d := testData()
	d.Signed = true
	info := SignInfo{Name: d.ServiceNom, Reason: "bench", Date: time.Now()}
	var pdf []byte
	b.ReportAllocs()
	for b.Loop() {
		doc, err := r.Render(d)
		if err != nil {
			b.Fatal(err)
		}
		if pdf, err = s.Sign(doc, info); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(pdf)), "bytes/pdf")
}
