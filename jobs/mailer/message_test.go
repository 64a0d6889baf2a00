package mailer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const evil = "evil@example.com"

func TestHeaderInjectionRejected(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil, serverOptions{})
	ml := newSMTP(t, ts.URL(""))
	cases := map[string]func(*Message){
		"ToCRLF":            func(m *Message) { m.To = "elodie@example.fr\r\nBcc: " + evil },
		"ToLF":              func(m *Message) { m.To = "Élodie <elodie@example.fr>\nBcc: " + evil },
		"ToQuotedCRLF":      func(m *Message) { m.To = "\"Evil\r\nBcc: " + evil + "\" <elodie@example.fr>" },
		"ToTwoAddresses":    func(m *Message) { m.To = "elodie@example.fr, " + evil },
		"ToEmpty":           func(m *Message) { m.To = "" },
		"FromCRLF":          func(m *Message) { m.From = "noreply@aptflow.example\r\nBcc: " + evil },
		"MessageIDCRLF":     func(m *Message) { m.MessageID = "x@aptflow.example>\r\nBcc: " + evil },
		"MessageIDBrackets": func(m *Message) { m.MessageID = "<x@aptflow.example>" },
		"MessageIDNoAt":     func(m *Message) { m.MessageID = "delivery-42" },
		"MessageIDTwoAts":   func(m *Message) { m.MessageID = "a@b@aptflow.example" },
		"MessageIDEmpty":    func(m *Message) { m.MessageID = "" },
		"HeaderNameCRLF":    func(m *Message) { m.Headers = map[string]string{"X-A\r\nBcc": evil} },
		"HeaderNameColon":   func(m *Message) { m.Headers = map[string]string{"Bcc: " + evil + "\r\nX-A": "1"} },
		"HeaderNameBcc":     func(m *Message) { m.Headers = map[string]string{"Bcc": evil} },
		"HeaderNameSubject": func(m *Message) { m.Headers = map[string]string{"subject": "second subject"} },
		"HeaderNameCType":   func(m *Message) { m.Headers = map[string]string{"Content-Type": "text/plain"} },
		"HeaderNameEmpty":   func(m *Message) { m.Headers = map[string]string{"": "x"} },
		"AttachmentCTypeLF": func(m *Message) { m.Attachments[0].ContentType = "application/pdf\r\nBcc: " + evil },
		"AttachmentCTypeParam": func(m *Message) {
			m.Attachments[0].ContentType = "application/pdf; name=\"x\r\nBcc: " + evil + "\""
		},
		"AttachmentNoName":   func(m *Message) { m.Attachments[0].Filename = " \r\n" },
		"AttachmentBadCType": func(m *Message) { m.Attachments[0].ContentType = "pdf" },
		"NoBody":             func(m *Message) { m.Text, m.HTML = "", "" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := testMessage("inject@aptflow.example")
			edit(&m)
			se := sendErr(t, ml, t.Context(), m)
			if se.Temporary || !errors.Is(se, ErrInvalidMessage) {
				t.Errorf("got %v, want a permanent ErrInvalidMessage", se)
			}
		})
	}
	if n := len(ts.Received()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestHeaderInjectionNeutralised(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil, serverOptions{})
	m := testMessage("neutral@aptflow.example")
	m.Subject = "Votre dossier nº 42\r\nBcc: " + evil + "\n\u2028X-Injected: 1"
	m.Headers = map[string]string{"X-Aptflow-Kind": "accepte\r\nBcc: " + evil}
	m.Attachments[0].Filename = "attestation\r\nBcc: " + evil + ".pdf"
	if err := newSMTP(t, ts.URL("")).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	r := ts.Received()
	if len(r) != 1 || len(r[0].To) != 1 || r[0].To[0] != "elodie@example.fr" {
		t.Fatalf("envelope recipients: %+v", r)
	}
	raw := r[0].Data
	for _, line := range bytes.Split(raw, []byte("\r\n")) {
		l := strings.ToLower(string(line))
		if strings.HasPrefix(l, "bcc:") || strings.HasPrefix(l, "x-injected:") {
			t.Errorf("injected header line %q", line)
		}
	}
	p := parseMessage(t, raw)
	if p.Subject != "Votre dossier nº 42 Bcc: "+evil+" X-Injected: 1" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if got := p.Header.Get("X-Aptflow-Kind"); got != "accepte Bcc: "+evil {
		t.Errorf("X-Aptflow-Kind = %q", got)
	}
	if len(p.Attachments) != 1 || !bytes.Equal(p.Attachments[0].Data, pdfBytes()) {
		t.Errorf("attachment lost")
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"delivery-42@aptflow.example":  "delivery-42@aptflow.example.eml",
		"aptflow.delivery.7@gouv.fr":   "aptflow.delivery.7@gouv.fr.eml",
		"a/b@x":                        "a_b@x-",
		"a_b@x":                        "a_b@x.eml",
		"../../etc/passwd@x":           "_.._etc_passwd@x-",
		strings.Repeat("a", 300) + "@": strings.Repeat("a", 180) + "-",
	} {
		got := FileName(id)
		if got != want && !(strings.HasSuffix(want, "-") && strings.HasPrefix(got, want) && strings.HasSuffix(got, ".eml")) {
			t.Errorf("FileName(%q) = %q, want %q…", id, got, want)
		}
		if strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, ".") {
			t.Errorf("FileName(%q) = %q is not a plain file name", id, got)
		}
	}
	if FileName("a/b@x") == FileName("a?b@x") {
		t.Error("two Message-IDs share a file")
	}
}

func TestHeaderReplacesDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fm, err := NewFileMailer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage("headers@aptflow.example")
	m.Headers = map[string]string{"auto-submitted": "auto-replied", "x-aptflow-kind": "digest"}
	if err := fm.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FileName(m.MessageID)))
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, raw)
	if got := p.Header["Auto-Submitted"]; len(got) != 1 || got[0] != "auto-replied" { // one header, the caller's
		t.Errorf("Auto-Submitted = %q", got)
	}
	if got := p.Header.Get("X-Aptflow-Kind"); got != "digest" {
		t.Errorf("X-Aptflow-Kind = %q", got)
	}
}
