package mailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileMailer writes each message as an RFC 5322 .eml file in a directory,
// for development and demos without an SMTP server. The file is named after
// the Message-ID, so a retry replaces the file instead of adding one.
type FileMailer struct {
	dir  string
	dkim *DKIM // nil: unsigned
}

// NewFileMailer returns a FileMailer writing under dir, which it creates if
// needed, signing each message with signer if it is not nil.
func NewFileMailer(dir string, signer *DKIM) (*FileMailer, error) {
	if dir == "" {
		return nil, errors.New("mail directory: empty path")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mail directory: %w", err)
	}
	return &FileMailer{dir: dir, dkim: signer}, nil
}

// Dir is the directory the files are written to.
func (f *FileMailer) Dir() string { return f.dir }

// Send writes m to Dir()/<Message-ID>.eml, atomically: a reader sees the old
// file or the new one, never half of it. Files are readable by the owner
// only: they hold personal data.
func (f *FileMailer) Send(ctx context.Context, m Message) error {
	msg, err := prepare(ctx, m, f.dkim)
	if err != nil {
		return err
	}
	// Recreated in case it was removed after start, e.g. to clear old mail.
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	tmp, err := os.CreateTemp(f.dir, ".tmp-*.eml")
	if err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	_, err = tmp.Write(msg.data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(f.dir, FileName(m.MessageID)))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return &SendError{Temporary: true, Err: fmt.Errorf("write %s: %w", FileName(m.MessageID), err)}
	}
	return nil
}

// FileName is the name of the file a [FileMailer] writes for a Message-ID:
// the ID with any character that is awkward in a file name replaced, plus a
// hash of the ID when it was changed or shortened, so that two IDs never
// share a file.
func FileName(messageID string) string {
	const maxLen = 180 // well under the usual 255-byte limit, with room for the suffix
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@.-_+", r) {
			return r
		}
		return '_'
	}, messageID)
	clean = strings.TrimLeft(clean, ".") // no hidden files
	if clean != messageID || len(clean) > maxLen || clean == "" {
		sum := sha256.Sum256([]byte(messageID))
		clean = clean[:min(len(clean), maxLen)] + "-" + hex.EncodeToString(sum[:6])
	}
	return clean + ".eml"
}
