package mailer

import (
	"bytes"
	"errors"
	netmail "net/mail"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestFileMailer(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "var", "mail") // created by NewFileMailer
		fm, err := NewFileMailer(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := testMessage("delivery-42@aptflow.example")
		if err := fm.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "delivery-42@aptflow.example.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := netmail.ReadMessage(bytes.NewReader(raw)); err != nil {
			t.Fatalf("net/mail cannot read the file: %v", err)
		}
		checkDelivered(t, raw, m)
		if info, err := os.Stat(filepath.Join(dir, "delivery-42@aptflow.example.eml")); err != nil || info.Mode().Perm()&0o077 != 0 {
			t.Errorf("file mode %v (%v): personal data must not be world-readable", info.Mode(), err)
		}
	})

	t.Run("SameMessageIDOneFile", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		fm, err := NewFileMailer(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := testMessage("delivery-43@aptflow.example")
		for range 2 {
			if err := fm.Send(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		// Concurrent retries of the same delivery still end with one file.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := fm.Send(t.Context(), m); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "delivery-43@aptflow.example.eml" {
			t.Errorf("files: %v, want one file", entries)
		}
	})

	t.Run("DirRemovedAfterStart", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "mail")
		fm, err := NewFileMailer(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := fm.Send(t.Context(), testMessage("again@aptflow.example")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("InvalidMessage", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		fm, err := NewFileMailer(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := testMessage("bad@aptflow.example")
		m.To = "elodie@example.fr\r\nBcc: " + evil
		if err := fm.Send(t.Context(), m); !IsPermanent(err) || !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("Send = %v, want permanent ErrInvalidMessage", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files left behind: %v", entries)
		}
	})

	t.Run("UnwritableDir", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "not-a-dir")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewFileMailer(filepath.Join(file, "mail"), nil); err == nil {
			t.Error("NewFileMailer under a file succeeded")
		}
		if _, err := NewFileMailer("", nil); err == nil {
			t.Error("NewFileMailer(\"\") succeeded")
		}
	})
}
