package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://aptflow:s3cr%40t@db:5432/aptflow?sslmode=disable": "postgres://aptflow:xxxxx@db:5432/aptflow?sslmode=disable",
		"postgres://db/aptflow?password=s3cret&sslmode=disable":       "postgres://db/aptflow?password=xxxxx&sslmode=disable",
		"host=db user=aptflow password=s3cret dbname=aptflow":         "host=db user=aptflow password=xxxxx dbname=aptflow",
		"host=db password = 's3 cr\\'et' dbname=aptflow":              "host=db password = xxxxx dbname=aptflow",
		"host=db PASSWORD=s3cret sslpassword=k3y":                     "host=db PASSWORD=xxxxx sslpassword=xxxxx",
		"host=db user=aptflow":                                        "host=db user=aptflow",
		"":                                                            "",
	} {
		if got := DSN(in); got != want {
			t.Errorf("DSN(%q) = %q, want %q", in, got, want)
		}
	}
	if got := URL("smtps://relay:pw@smtp.example.fr:465"); got != "smtps://relay:xxxxx@smtp.example.fr:465" {
		t.Errorf("URL = %q", got)
	}
	if got := URL("http://a b@%zz"); strings.Contains(got, "a b") {
		t.Errorf("unparsable URL printed: %q", got)
	}
}

// TestHandler: a planted secret, in any form and any place of a record,
// never reaches the output, of either slog handler.
func TestHandler(t *testing.T) {
	t.Parallel()
	const secret = "pl@nted secret/Zq9"
	// As a user may write it in a URL: only what must be escaped is.
	const written = "postgres://u:pl%40nted%20secret%2FZq9@db/aptflow"
	r := New(append(Passwords(written), secret, "")...)
	token := "aptf_" + strings.Repeat("Ab9_", 10)
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewJSONHandler(&buf, nil)
		if format == "text" {
			h = slog.NewTextHandler(&buf, nil)
		}
		log := slog.New(r.Handler(h)).With("dsn", "host=db password="+secret).WithGroup("g")
		log.Info("connect to "+written+" failed",
			"err", fmt.Errorf("dial: %w", errors.New("password "+secret+" refused")),
			"url", "postgres://u:pl%40nted%20secret%2FZq9@db",
			"list", []string{"a", secret},
			"nested", slog.GroupValue(slog.String("deep", secret), slog.Any("bytes", []byte(secret))),
			"token", "Bearer "+token, "key", pem, "webhook", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"kept", "rien de secret")
		out := buf.String()
		for _, leak := range []string{secret, "pl@nted", "pl%40nted", "Zq9", token[5:], "MIIEvQ", "MfKQ9r8G"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s: %q in\n%s", format, leak, out)
			}
		}
		if !strings.Contains(out, "rien de secret") || !strings.Contains(out, "xxxxx") {
			t.Errorf("%s: the record lost what it should keep:\n%s", format, out)
		}
	}
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"postgres://u:p%40ss@db/x?sslpassword=k": {"p%40ss", "p@ss", "k"},
		"postgres://u@db/x":                      nil,
		"host=db password='a b\\'c' user=u":      {"'a b\\'c'", "a b\\'c", "a b'c"},
		"host=db password=plain":                 {"plain"},
		"smtp://relay:pw@smtp.example.fr:25?x=1": {"pw", "pw"},
	} {
		got := Passwords(in)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Passwords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	r := New("s3cret")
	err := r.Error(fmt.Errorf("database unreachable at host=db password=s3cret: %w", fs.ErrNotExist))
	if strings.Contains(err.Error(), "s3cret") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v", err)
	}
	if r.Error(nil) != nil {
		t.Fatal("nil became an error")
	}
	plain := errors.New("rien")
	if r.Error(plain) != plain {
		t.Fatal("an error without secret was rewrapped")
	}
}
