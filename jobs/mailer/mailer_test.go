package mailer

import (
	"bytes"
	"fmt"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ml, err := New("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fm, ok := ml.(*FileMailer); !ok || fm.Dir() != dir {
		t.Errorf("New(\"\", dir) = %T, want *FileMailer", ml)
	}
	ml, err = New("smtp://127.0.0.1:1025", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ml.(*SMTPMailer); !ok {
		t.Errorf("New(smtp URL) = %T, want *SMTPMailer", ml)
	}
	if _, err := New("http://127.0.0.1", dir, nil); err == nil {
		t.Error("New accepted an http URL")
	}
}

func TestNewSMTP(t *testing.T) {
	t.Parallel()
	ok := []struct {
		url      string
		host     string
		port     int
		implicit bool
		policy   string
		user     string
		pass     string
	}{
		{"smtp://127.0.0.1:1025", "127.0.0.1", 1025, false, "TLSOpportunistic", "", ""},
		{"smtp://mail.example.fr", "mail.example.fr", 25, false, "TLSOpportunistic", "", ""},
		{"smtp://mail.example.fr:587?tls=mandatory", "mail.example.fr", 587, false, "TLSMandatory", "", ""},
		{"smtp://mail.example.fr?tls=none", "mail.example.fr", 25, false, "NoTLS", "", ""},
		{"smtp://u%40x:p%3Aw%2Fd@[::1]:2525/?tls=opportunistic", "::1", 2525, false, "TLSOpportunistic", "u@x", "p:w/d"},
		{"smtps://relay.example.fr", "relay.example.fr", 465, true, "NoTLS", "", ""},
		{"smtps://u:p@relay.example.fr:4650?tls=mandatory", "relay.example.fr", 4650, true, "NoTLS", "u", "p"},
	}
	for _, tc := range ok {
		s, err := NewSMTP(tc.url)
		if err != nil {
			t.Errorf("NewSMTP(%q): %v", tc.url, err)
			continue
		}
		got := fmt.Sprintf("%s %d %v %v %s %s", s.host, s.port, s.implicitTLS, s.policy, s.user, s.pass)
		want := fmt.Sprintf("%s %d %v %v %s %s", tc.host, tc.port, tc.implicit, tc.policy, tc.user, tc.pass)
		if got != want {
			t.Errorf("NewSMTP(%q) = %s, want %s", tc.url, got, want)
		}
		if s.tlsConfig.ServerName != tc.host {
			t.Errorf("NewSMTP(%q): TLS server name %q", tc.url, s.tlsConfig.ServerName)
		}
	}
	for _, url := range []string{
		"", "127.0.0.1:25", "http://127.0.0.1", "smtp://", "smtp://:25", "smtp://host:0", "smtp://host:99999",
		"smtp://host:port", "smtp://host/path", "smtp://host?tls=yes", "smtp://host?tsl=none",
		"smtps://host?tls=none", "smtp://:pw@host", "smtp://u:p@host:25\n",
	} {
		if _, err := NewSMTP(url); err == nil {
			t.Errorf("NewSMTP(%q) succeeded", url)
		}
	}
	s, err := NewSMTP("smtp://aptflow:s3cret@mail.example.fr:587")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "smtp://aptflow:xxxxx@mail.example.fr:587" {
		t.Errorf("String() = %q, want the password masked", got)
	}
	if _, err := NewSMTP("smtp://u:s3cret@host:bad"); err == nil || bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
		t.Errorf("error %v must not show the password", err)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Votre dossier\r\nBcc: x":  "Votre dossier Bcc: x",
		"  a \t b\u2028c\u0085d  ": "a b c d",
		"a\u2029b":                 "a b",
		"bad \xff utf-8":           "bad \uFFFD utf-8",
		"nº 42\u00a0:":             "nº 42\u00a0:",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
