// Package devcert makes the development certificate that signs attestations
// under `make run` and in tests: a self-made certificate authority and a
// signing certificate it issued, with Go's crypto/x509 alone (no openssl).
// No PDF reader trusts it: it shows that signing works, not who signed.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files are where Ensure keeps the certificate chain and the key.
type Files struct {
	Cert string // PEM: the signing certificate, then the authority's
	Key  string // PEM: the signing certificate's private key (PKCS #8)
}

// Ensure returns the development certificate in dir, making it first if
// it is missing: a certificate once made is kept, so that the attestations
// of a development database keep verifying against the same one.
func Ensure(dir string) (Files, error) {
	f := Files{Cert: filepath.Join(dir, "attestation-signing.crt"), Key: filepath.Join(dir, "attestation-signing.key")}
	_, errCert := os.Stat(f.Cert)
	_, errKey := os.Stat(f.Key)
	if errCert == nil && errKey == nil {
		return f, nil
	}
	if !errors.Is(errCert, fs.ErrNotExist) && errCert != nil {
		return f, errCert
	}
	certPEM, keyPEM, err := Generate(time.Now())
	if err != nil {
		return f, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.Key, keyPEM, 0o600); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.Cert, certPEM, 0o644)
}

// Generate returns a new chain (the signing certificate, then its
// authority), valid for five years from now, and the signing key.
func Generate(now time.Time) (certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aptflow development CA", Organization: []string{"aptflow (développement)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: authority: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, nil, err
	}
	// RSA would do as well; P-256 is much faster to make and to sign with.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "Service instructeur (développement)", Organization: []string{"aptflow (développement)"},
			Country: []string{"FR"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(5, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: signing certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}
