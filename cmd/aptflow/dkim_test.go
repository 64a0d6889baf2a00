package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

// testDKIMKey is the PEM of one 2048-bit RSA key for the package's tests.
var testDKIMKey = sync.OnceValue(func() []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
})

// dkimEnv is the DKIM configuration of domain aptflow.example with the
// test key, written to a file of the test's.
func dkimEnv(t *testing.T) procEnv {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, testDKIMKey(), 0o600); err != nil {
		t.Fatal(err)
	}
	return procEnv{"DKIM_DOMAIN": "aptflow.example", "DKIM_SELECTOR": "apt2026", "DKIM_PRIVATE_KEY": file}
}

// dkimRecord runs `aptflow dkim-record` with e and returns what it prints.
func dkimRecord(t *testing.T, e procEnv) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"dkim-record"}, e.getenv, &out, &errb); err != nil {
		t.Fatalf("dkim-record: %v\n%s", err, errb.String())
	}
	return out.String()
}

// verifyWithRecord verifies raw's DKIM signature with a DNS that holds
// only the record `aptflow dkim-record` printed (a zone-file line).
func verifyWithRecord(t *testing.T, raw []byte, zoneLine string) {
	t.Helper()
	name, rest, ok := strings.Cut(strings.TrimSpace(zoneLine), ". IN TXT ")
	if !ok {
		t.Fatalf("record %q", zoneLine)
	}
	var txt strings.Builder
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(rest, -1) {
		txt.WriteString(m[1])
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != name {
				return nil, errors.New("no record " + domain)
			}
			return []string{txt.String()}, nil
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Errorf("DKIM does not verify (%v, %d signatures): %v", err, len(verifs), verifs)
	}
}

func TestDKIMRecordCommand(t *testing.T) {
	t.Parallel()
	// No DATABASE_URL: the record is printed before anything else is needed.
	out := dkimRecord(t, dkimEnv(t))
	if !regexp.MustCompile(`^apt2026\._domainkey\.aptflow\.example\. IN TXT "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+" "[A-Za-z0-9+/=]+"\n$`).MatchString(out) {
		t.Errorf("dkim-record printed %q", out)
	}
	var out2, errb bytes.Buffer
	err := run(context.Background(), []string{"dkim-record"}, procEnv{}.getenv, &out2, &errb)
	if err == nil || !strings.Contains(err.Error(), "DKIM_PRIVATE_KEY") || out2.Len() != 0 {
		t.Errorf("without configuration: %v, printed %q", err, out2.String())
	}
}

func TestDKIMConfig(t *testing.T) {
	t.Parallel()
	db := "postgres://u@db/aptflow"
	good := dkimEnv(t).with("DATABASE_URL", db)
	for name, tc := range map[string]struct {
		env     procEnv
		wantErr []string
	}{
		"Off":           {env: procEnv{"DATABASE_URL": db}},
		"On":            {env: good},
		"NoSelector":    {env: good.with("DKIM_SELECTOR", ""), wantErr: []string{"DKIM_SELECTOR unset"}},
		"KeyOnly":       {env: procEnv{"DATABASE_URL": db, "DKIM_PRIVATE_KEY": good["DKIM_PRIVATE_KEY"]}, wantErr: []string{"DKIM_DOMAIN and DKIM_SELECTOR unset"}},
		"MissingKey":    {env: good.with("DKIM_PRIVATE_KEY", filepath.Join(t.TempDir(), "none.pem")), wantErr: []string{"DKIM key", "none.pem"}},
		"NotAKey":       {env: good.with("DKIM_PRIVATE_KEY", "/etc/hostname"), wantErr: []string{"no PEM block"}},
		"BadDomain":     {env: good.with("DKIM_DOMAIN", "aptflow example"), wantErr: []string{"not a domain name"}},
		"WithOtherErrs": {env: good.with("DKIM_SELECTOR", "", "LOG_FORMAT", "xml"), wantErr: []string{"DKIM_SELECTOR", "LOG_FORMAT"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(tc.env.getenv)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if (c.DKIM != nil) != (name == "On") {
					t.Errorf("DKIM = %v", c.DKIM)
				}
				var buf bytes.Buffer
				newLogger(c, &buf).Info("starting", "config", c)
				want := `"dkim":"off"`
				if name == "On" {
					want = `"dkim":"apt2026._domainkey.aptflow.example (rsa, key ` + tc.env["DKIM_PRIVATE_KEY"] + `)"`
				}
				if !strings.Contains(buf.String(), want) || strings.Contains(buf.String(), "PRIVATE KEY") {
					t.Errorf("log %s, want %s", buf.String(), want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDKIMAligned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		domain, from string
		want         bool
	}{
		{"rhone.gouv.fr", "Préfecture du Rhône <ne-pas-repondre@rhone.gouv.fr>", true},
		{"rhone.gouv.fr", "ne-pas-repondre@apt.rhone.gouv.fr", true},
		{"apt.rhone.gouv.fr", "ne-pas-repondre@rhone.gouv.fr", true},
		{"rhone.gouv.fr", "ne-pas-repondre@Rhone.Gouv.FR", true},
		{"aptflow.example", "ne-pas-repondre@rhone.gouv.fr", false},
		{"ne.gouv.fr", "ne-pas-repondre@rhone.gouv.fr", false},
	} {
		if got := dkimAligned(tc.domain, tc.from); got != tc.want {
			t.Errorf("dkimAligned(%q, %q) = %v", tc.domain, tc.from, got)
		}
	}
}

// checkMailpitSigned verifies the DKIM signature of every message mailpit
// holds with the record dkim-record prints for e.
func checkMailpitSigned(t *testing.T, mp *mailpittest.Server, e procEnv) {
	t.Helper()
	record := dkimRecord(t, e)
	msgs, err := mp.Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 {
		t.Fatal("no message to check")
	}
	for _, m := range msgs {
		raw, err := mp.Raw(t.Context(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		verifyWithRecord(t, raw, record)
	}
}
