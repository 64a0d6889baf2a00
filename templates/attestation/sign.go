package attestation

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pdfsign/sign"
)

// Signer signs attestations: a PDF signature (adbe.pkcs7.detached,
// SHA-256) over the whole file, with the certificate chain embedded, as
// poppler's pdfsig and PDF readers check it. A Signer is safe for
// concurrent use.
type Signer struct {
	key   crypto.Signer
	cert  *x509.Certificate
	chain []*x509.Certificate // cert first, then its issuers as the file gave them
}

// LoadSigner reads a PEM certificate file (the signing certificate first,
// then any intermediate certificates of its chain) and a PEM private key
// file (PKCS #8, PKCS #1 or SEC 1), and checks that they go together.
func LoadSigner(certFile, keyFile string) (*Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("attestation signing certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("attestation signing key: %w", err)
	}
	return NewSigner(certPEM, keyPEM)
}

// NewSigner is LoadSigner from the files' contents.
func NewSigner(certPEM, keyPEM []byte) (*Signer, error) {
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("attestation signing certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("attestation signing certificate: no PEM CERTIFICATE block")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("attestation signing key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, errors.New("attestation signing key: it is not the key of the certificate (the first of the file)")
	}
	if chain[0].KeyUsage != 0 && chain[0].KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, errors.New("attestation signing certificate: its key usage allows no digital signature")
	}
	return &Signer{key: key, cert: chain[0], chain: chain}, nil
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue // EC PARAMETERS and the like
		}
		if err != nil {
			return nil, err
		}
		switch k := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return k.(crypto.Signer), nil
		case ed25519.PrivateKey:
			return nil, errors.New("Ed25519 keys are not supported by PDF signature validators; use RSA or ECDSA")
		default:
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
	}
}

// Certificate returns the signing certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// SignInfo is what the signature itself says, beside the certificate.
type SignInfo struct {
	Name     string    // who signs: the service
	Location string    // where: the service's town or address
	Reason   string    // why: the attestation and its dossier
	Date     time.Time // when
}

// Sign returns doc (a PDF) with a signature over all of it appended as an
// incremental update: the original bytes are the start of the result. The
// signature certifies the document and allows no change after it.
func (s *Signer) Sign(doc []byte, info SignInfo) ([]byte, error) {
	rdr, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, fmt.Errorf("sign attestation: read PDF: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(doc) + 16<<10)
	err = sign.Sign(bytes.NewReader(doc), &out, rdr, int64(len(doc)), sign.SignData{
		Signature: sign.SignDataSignature{
			Info: sign.SignDataSignatureInfo{
				Name:     info.Name,
				Location: info.Location,
				Reason:   info.Reason,
				Date:     info.Date,
			},
			CertType:   sign.CertificationSignature,
			DocMDPPerm: sign.DoNotAllowAnyChangesPerms,
		},
		Signer:            s.key,
		DigestAlgorithm:   crypto.SHA256,
		Certificate:       s.cert,
		CertificateChains: [][]*x509.Certificate{s.chain},
	})
	if err != nil {
		return nil, fmt.Errorf("sign attestation: %w", err)
	}
	return out.Bytes(), nil
}
