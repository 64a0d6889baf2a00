package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a WEBHOOK_SECRET_KEY key: AES-256.
const KeySize = 32

// Keyring seals webhook secrets at rest (AES-256-GCM). Its first key seals;
// every key opens what it sealed, so that WEBHOOK_SECRET_KEY can be rotated
// by putting the new key first and keeping the old one after it until
// every secret has been rotated (or the subscriptions recreated).
//
// A sealed secret is stored with the id of its key (the first 8 bytes, in
// hex, of the key's SHA-256 under a label) and bound to its row by the
// additional data the caller gives: a sealed secret copied to another row
// does not open.
type Keyring struct {
	keys []ringKey
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// ParseKeyring reads WEBHOOK_SECRET_KEY: one or more keys separated by
// commas, each the base64 of 32 random bytes (`openssl rand -base64 32`).
// It never quotes the value in its errors.
func ParseKeyring(s string) (*Keyring, error) {
	var k Keyring
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		raw, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(append([]byte("aptflow webhook secret key\x00"), raw...))
		k.keys = append(k.keys, ringKey{id: hex.EncodeToString(sum[:8]), aead: aead})
	}
	return &k, nil
}

// decodeKey accepts standard or URL base64, padded or not.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("%d bytes once decoded, %d expected (openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (openssl rand -base64 32)")
}

// Seal encrypts plaintext under the first key, bound to aad, and returns
// that key's id and nonce‖ciphertext.
func (k *Keyring) Seal(aad, plaintext []byte) (keyID string, sealed []byte, err error) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(plaintext)+key.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return key.id, key.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// ErrUnknownKey says that a secret was sealed by a key the keyring does
// not hold: WEBHOOK_SECRET_KEY lost the key it was sealed with.
var ErrUnknownKey = errors.New("webhook secret sealed with a key that WEBHOOK_SECRET_KEY no longer holds")

// Open decrypts what Seal returned for the same aad.
func (k *Keyring) Open(keyID string, aad, sealed []byte) ([]byte, error) {
	for _, key := range k.keys {
		if key.id != keyID {
			continue
		}
		n := key.aead.NonceSize()
		if len(sealed) < n {
			return nil, errors.New("open webhook secret: truncated")
		}
		plain, err := key.aead.Open(nil, sealed[:n], sealed[n:], aad)
		if err != nil {
			return nil, fmt.Errorf("open webhook secret: %w", err)
		}
		return plain, nil
	}
	return nil, ErrUnknownKey
}
