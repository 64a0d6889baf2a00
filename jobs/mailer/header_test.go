package mailer

import (
	"bytes"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
)

// checkField asserts what every field the mailer writes must be: its value
// starts on the field's own line (a parser that keeps the folding space
// would otherwise read « Subject:  Votre… » with a leading space), no line
// is longer than RFC 2047 allows, continuation lines start with a space,
// and the field decodes back to want.
func checkField(t *testing.T, field, name, want string) {
	t.Helper()
	lines := strings.Split(field, "\r\n")
	if !strings.HasPrefix(lines[0], name+": ") || len(lines[0]) <= len(name+": ") || lines[0][len(name)+2] == ' ' {
		t.Errorf("first line %q does not start the value", lines[0])
	}
	for i, l := range lines {
		if len(l) > maxLine {
			t.Errorf("line %d is %d characters long: %q", i, len(l), l)
		}
		if i > 0 && (!strings.HasPrefix(l, " ") || strings.TrimSpace(l) == "") {
			t.Errorf("continuation line %d %q", i, l)
		}
	}
	msg, err := netmail.ReadMessage(strings.NewReader(field + "\r\n\r\n"))
	if err != nil {
		t.Fatalf("net/mail cannot read %q: %v", field, err)
	}
	var dec mime.WordDecoder
	got, err := dec.DecodeHeader(msg.Header.Get(name))
	if err != nil {
		t.Fatalf("decode %q: %v", msg.Header.Get(name), err)
	}
	if got != want {
		t.Errorf("decoded %q, want %q", got, want)
	}
}

func TestFoldField(t *testing.T) {
	t.Parallel()
	long := "Votre dossier nº 42 (démarche « Autorisation provisoire de travail (APT) pour les étudiants ») a été accepté"
	for name, subject := range map[string]string{
		"ShortASCII":    "Dossier 42",
		"LongASCII":     strings.Repeat("Autorisation provisoire de travail ", 6),
		"Accents":       "Votre dossier nº 42 a été accepté",
		"LongAccents":   long,
		"VeryLong":      strings.Repeat(long+" ", 4),
		"OnlyNonASCII":  strings.Repeat("é", 60),
		"NoBreakSpace":  "Dossier nº 42\u00a0: nouvelle activité",
		"LooksEncoded":  "=?UTF-8?q?not_a_word?=",
		"Specials":      `Dossier "42" (a,b) <c>; d: e=f_g?h`,
		"FourByteRunes": strings.Repeat("𝒜", 30),
		"LongFirstWord": strings.Repeat("a", 90) + " b",
		"OneCharacter":  "x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The mailer folds subjects made one line by OneLine, which
			// keeps no-break spaces.
			want := OneLine(subject)
			field := foldField("Subject", want)
			if name == "LongFirstWord" {
				// A word of plain ASCII longer than a line cannot be folded:
				// it stays whole on the first line (RFC 5322 allows 998).
				if !strings.HasPrefix(field, "Subject: aaaa") {
					t.Errorf("field %q", field)
				}
				return
			}
			checkField(t, field, "Subject", want)
		})
	}
	if f := foldField("Subject", ""); f != "Subject:" {
		t.Errorf("empty subject: %q", f)
	}
}

func TestAddressField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, address string }{
		{"", "elodie@example.fr"},
		{"Elodie Dupre", "elodie@example.fr"},
		{"Élodie Dupré", "elodie@example.fr"},
		{"Dupré, Élodie", "elodie@example.fr"},
		{`Jean "JJ" O'Neil`, "jj@example.fr"},
		{"Préfecture du Rhône — Bureau des étrangers, section de la main-d'œuvre étrangère", "ne-pas-repondre@rhone.gouv.fr"},
		{strings.Repeat("Autorisation provisoire ", 5), "noreply@example.gouv.fr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			field := addressField("Reply-To", &netmail.Address{Name: tc.name, Address: tc.address})
			want := strings.TrimSpace(strings.Join(strings.Fields(tc.name), " ") + " <" + tc.address + ">")
			checkField(t, field, "Reply-To", want)
			msg, err := netmail.ReadMessage(strings.NewReader(field + "\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			addrs, err := msg.Header.AddressList("Reply-To")
			if err != nil || len(addrs) != 1 {
				t.Fatalf("%q: %v %v", field, addrs, err)
			}
			if addrs[0].Name != strings.Join(strings.Fields(tc.name), " ") || addrs[0].Address != tc.address {
				t.Errorf("read back %q <%s>", addrs[0].Name, addrs[0].Address)
			}
		})
	}
}

// TestSubjectOnItsLine sends a long French subject through the mailer and
// reads the raw message: the value starts on the Subject line.
func TestSubjectOnItsLine(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil, serverOptions{})
	m := testMessage("subject@aptflow.example")
	m.Subject = "Votre dossier nº 42 (démarche « Autorisation provisoire de travail (APT) pour les étudiants ») est de nouveau modifiable"
	if err := newSMTP(t, ts.URL("")).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	raw := ts.Received()[0].Data
	i := bytes.Index(raw, []byte("\r\nSubject:"))
	if i < 0 {
		t.Fatalf("no Subject field in\n%s", raw)
	}
	end := i + 2
	for {
		next := bytes.Index(raw[end:], []byte("\r\n"))
		end += next + 2
		if raw[end] != ' ' {
			break
		}
	}
	checkField(t, string(raw[i+2:end-2]), "Subject", m.Subject)
	if p := parseMessage(t, raw); p.Subject != m.Subject {
		t.Errorf("Subject = %q", p.Subject)
	}
}
