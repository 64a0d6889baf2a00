package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// MinRSABits is the smallest RSA key a [DKIM] accepts: receivers treat
// shorter keys as no signature (RFC 8301 § 3.2 requires 1024 to verify and
// recommends 2048 to sign).
const MinRSABits = 2048

// DKIM signs messages for a domain (RFC 6376): the receiver fetches the
// public key from the DNS at Selector._domainkey.Domain and checks that
// the headers and body it received are those the key signed. A préfecture
// whose domain publishes a DMARC policy has unsigned mail rejected or
// junked.
//
// The signature covers the bytes that go on the wire, so the mailers sign
// a message once it is rendered, just before sending or writing it: any
// later change (a new MIME boundary, a header folded again) breaks it.
type DKIM struct {
	domain, selector string
	key              crypto.Signer
	opts             dkim.SignOptions
}

// signedHeaders are the header fields the signature covers: the ones a
// reader trusts (From, To, Subject, Date), the ones that identify the
// message, and the MIME structure. A field listed but absent is signed as
// absent, so that a relay adding one (a Reply-To) breaks the signature.
var signedHeaders = []string{
	"From", "Reply-To", "To", "Subject", "Date", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted",
}

// NewDKIM returns a signer for domain and selector with key, an RSA key of
// at least MinRSABits or an Ed25519 key. It signs and verifies a sample
// message with the record [DKIM.TXT] gives, so that a key that cannot sign
// fails here, at start, not at the first e-mail.
func NewDKIM(domain, selector string, key crypto.Signer) (*DKIM, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	var errs []error
	if !dnsName(domain) {
		errs = append(errs, fmt.Errorf("DKIM domain %q is not a domain name", domain))
	}
	if !dnsName(selector) {
		errs = append(errs, fmt.Errorf("DKIM selector %q is not made of DNS labels", selector))
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			errs = append(errs, fmt.Errorf("DKIM key: RSA of %d bits, at least %d expected", bits, MinRSABits))
		}
	case ed25519.PrivateKey:
	case nil:
		errs = append(errs, errors.New("DKIM key: none"))
	default:
		errs = append(errs, fmt.Errorf("DKIM key: RSA or Ed25519 expected, got %T", key))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d := &DKIM{domain: domain, selector: selector, key: key, opts: dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	}}
	if err := d.selfTest(); err != nil {
		return nil, err
	}
	return d, nil
}

// LoadDKIM is NewDKIM with the private key read from a PEM file (PKCS #8,
// or PKCS #1 for RSA).
func LoadDKIM(domain, selector, keyFile string) (*DKIM, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("DKIM key: %w", err)
	}
	key, err := ParseDKIMKey(b)
	if err != nil {
		return nil, fmt.Errorf("DKIM key %s: %w", keyFile, err)
	}
	return NewDKIM(domain, selector, key)
}

// ParseDKIMKey reads a private key from PEM: PKCS #8 (« PRIVATE KEY »,
// RSA or Ed25519, what `openssl genpkey` writes) or PKCS #1 (« RSA PRIVATE
// KEY »). Its errors never quote the key.
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("RSA PRIVATE KEY block: not a PKCS #1 key")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PRIVATE KEY block: not a PKCS #8 key")
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PRIVATE KEY block: %T cannot sign", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("PEM block %q: a PRIVATE KEY or RSA PRIVATE KEY is expected", block.Type)
}

// Domain is the signing domain (the d= tag).
func (d *DKIM) Domain() string { return d.domain }

// Selector is the selector (the s= tag).
func (d *DKIM) Selector() string { return d.selector }

// Algorithm is the key's algorithm as the record names it: rsa or ed25519.
func (d *DKIM) Algorithm() string {
	if _, ok := d.key.(ed25519.PrivateKey); ok {
		return "ed25519"
	}
	return "rsa"
}

// RecordName is the DNS name of the TXT record that publishes the public
// key: Selector._domainkey.Domain.
func (d *DKIM) RecordName() string { return d.selector + "._domainkey." + d.domain }

// TXT is the text of the DNS record to publish (RFC 6376 § 3.6.1):
// « v=DKIM1; k=rsa; p=<the public key in base64> ».
func (d *DKIM) TXT() string {
	var p []byte
	switch k := d.key.Public().(type) {
	case ed25519.PublicKey:
		p = k // RFC 8463 § 4.2: the raw 32 bytes
	default:
		// NewDKIM accepts RSA keys only besides Ed25519, whose public key
		// always marshals.
		p, _ = x509.MarshalPKIXPublicKey(k)
	}
	return "v=DKIM1; k=" + d.Algorithm() + "; p=" + base64.StdEncoding.EncodeToString(p)
}

// ZoneRecord is the record as a line of a DNS zone file, its text cut into
// strings of at most 255 characters, the longest one TXT string may hold
// (RFC 1035 § 3.3.14; a 2048-bit RSA key does not fit in one).
func (d *DKIM) ZoneRecord() string {
	txt := d.TXT()
	var parts []string
	for len(txt) > 255 {
		parts = append(parts, `"`+txt[:255]+`"`)
		txt = txt[255:]
	}
	parts = append(parts, `"`+txt+`"`)
	return d.RecordName() + ". IN TXT " + strings.Join(parts, " ")
}

// Sign returns msg, a whole message with CRLF line ends, with a
// DKIM-Signature field before its header.
func (d *DKIM) Sign(msg []byte) ([]byte, error) {
	s, err := dkim.NewSigner(&d.opts)
	if err != nil {
		return nil, fmt.Errorf("DKIM: %w", err)
	}
	if _, err := s.Write(msg); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("DKIM: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("DKIM: %w", err)
	}
	sig := s.Signature()
	out := make([]byte, 0, len(sig)+len(msg))
	return append(append(out, sig...), msg...), nil
}

// selfTest signs a sample message and verifies it as a receiver would,
// with the public key of TXT.
func (d *DKIM) selfTest() error {
	msg := "From: <test@" + d.domain + ">\r\nTo: <test@" + d.domain + ">\r\nSubject: test\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n\r\nDKIM self-test.\r\n"
	signed, err := d.Sign([]byte(msg))
	if err != nil {
		return err
	}
	record := d.TXT()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{record}, nil },
	})
	if err != nil {
		return fmt.Errorf("DKIM self-test: %w", err)
	}
	if len(verifs) != 1 {
		return fmt.Errorf("DKIM self-test: %d signatures found, 1 expected", len(verifs))
	}
	if verifs[0].Err != nil {
		return fmt.Errorf("DKIM self-test: the signature does not verify with the key's own record: %w", verifs[0].Err)
	}
	return nil
}

// dnsName reports whether s is a host name: dot-separated labels of
// letters, digits and inner hyphens (underscores allowed, as in selectors
// and service names), each 1 to 63 characters, 253 at most in all.
func dnsName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
