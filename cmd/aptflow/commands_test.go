package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/dbtest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t) // already migrated: a second run applies nothing
	var out bytes.Buffer
	for i := 0; i < 2; i++ {
		out.Reset()
		if err := run(context.Background(), []string{"migrate"}, getenvOf(map[string]string{"DATABASE_URL": url}), &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if !strings.Contains(out.String(), "0 aptflow and 0 River migrations applied") {
			t.Fatalf("run %d printed %q", i, out.String())
		}
	}
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "back-office"}, getenvOf(map[string]string{"DATABASE_URL": url}), &out, &errOut); err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSuffix(out.String(), "\n")
	if !regexp.MustCompile(`^aptf_[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Fatalf("stdout is not the token alone: %q", out.String())
	}
	if strings.Contains(errOut.String(), token) {
		t.Fatal("the token was logged")
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM api_tokens WHERE name = 'back-office' AND length(hash) = 32 AND position(convert_to($1, 'UTF8') in hash) = 0`, token).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored tokens: %d, %v", n, err)
	}
	if err := run(context.Background(), []string{"token", "create"}, getenvOf(map[string]string{"DATABASE_URL": url}), &out, &errOut); err == nil {
		t.Fatal("token create without a name succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(getenvOf(map[string]string{
		"NOTIFY_COALESCE": "soon",
		"STALE_SCAN_CRON": "every day",
		"JOB_TIMEOUT":     "10m",
		"RESCUE_AFTER":    "5m",
		"LOG_FORMAT":      "xml",
		"SMTP_URL":        "http://mail",
		"OPS_BASIC_AUTH":  "admin",
		"TRUST_PROXY":     "true",
		"TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"DATABASE_URL", "NOTIFY_COALESCE", "STALE_SCAN_CRON", "RESCUE_AFTER", "LOG_FORMAT", "SMTP_URL", "OPS_BASIC_AUTH",
		"TRUST_PROXY is replaced by TRUSTED_PROXIES", `TRUSTED_PROXIES: "proxy.internal"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	c, err := loadConfig(getenvOf(map[string]string{"DATABASE_URL": "postgres://u:secret@db/aptflow"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.StaleScanCron != DefaultStaleScanCron ||
		c.DigestCron != DefaultDigestCron || c.NotifyCoalesce.String() != "2m0s" || c.JobTimeout.String() != "1m0s" ||
		c.RescueAfter.String() != "5m0s" || c.MailDir != "var/mail" || c.LogFormat != "json" {
		t.Fatalf("defaults %+v", c)
	}
	if c.TrustedProxies != nil {
		t.Errorf("TRUSTED_PROXIES unset: %v, want none", c.TrustedProxies)
	}
	c, err = loadConfig(getenvOf(map[string]string{"DATABASE_URL": "postgres://db/aptflow", "TRUSTED_PROXIES": "10.1.2.3/8,192.0.2.7 2001:db8::/32"}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.TrustedProxies) != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Errorf("TRUSTED_PROXIES: %v", c.TrustedProxies)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, getenvOf(nil), &out, &errOut); err == nil || !strings.Contains(errOut.String(), "Usage") {
		t.Fatalf("err %v, stderr %q", err, errOut.String())
	}
}
