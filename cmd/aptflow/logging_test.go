package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestLogConfigMasked: the configuration line of either LOG_FORMAT holds
// no password, of the database, the SMTP relay or the ops endpoints.
func TestLogConfigMasked(t *testing.T) {
	t.Parallel()
	const dbPass, smtpPass, opsPass = "db-pw-Zq9", "smtp-pw-Zq9", "ops-pw-Zq9"
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			cfg, err := loadConfig(procEnv{
				"DATABASE_URL":   "postgres://aptflow:" + dbPass + "@db.internal:5432/aptflow?sslmode=disable",
				"SMTP_URL":       "smtps://relay:" + smtpPass + "@smtp.example.fr:465",
				"OPS_BASIC_AUTH": "ops:" + opsPass,
				"LOG_FORMAT":     format,
			}.getenv)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			newLogger(cfg, &buf).Info("starting", "config", cfg)
			out := buf.String()
			for _, secret := range []string{dbPass, smtpPass, opsPass} {
				if strings.Contains(out, secret) {
					t.Errorf("%q logged:\n%s", secret, out)
				}
			}
			for _, want := range []string{"aptflow:xxxxx@db.internal", "relay:xxxxx@smtp.example.fr", "ops_basic_auth"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q not logged:\n%s", want, out)
				}
			}
			if isJSON := json.Valid(bytes.TrimSpace(buf.Bytes())); isJSON != (format == "json") {
				t.Errorf("LOG_FORMAT=%s gave:\n%s", format, out)
			}
			if format == "text" && !strings.HasPrefix(out, "time=") {
				t.Errorf("not slog's text format:\n%s", out)
			}
		})
	}
}

// TestSecretsNotLogged plants passwords in a key=value DATABASE_URL (the
// form the security review saw printed), in SMTP_URL and in
// OPS_BASIC_AUTH, runs `aptflow serve` with them and `aptflow migrate`
// against a database that does not answer, and scans everything written
// (logs and returned errors) for them.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	const dbPass, smtpPass, opsPass = "kv-db-pw-Zq9'x", "smtp-pw-Wk7", "ops-pw-Vj5"
	pc, err := pgconn.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	kv := func(port uint16) string {
		return fmt.Sprintf(`host=%s port=%d user=%s dbname=%s sslmode=disable pool_max_conns=%d password='%s'`,
			pc.Host, port, pc.User, pc.Database, testPoolConns, strings.ReplaceAll(dbPass, "'", `\'`))
	}
	mp := mailpittest.Start(t)
	e := baseEnv(t, "postgres://unused", "smtp://relay:"+smtpPass+"@"+mp.SMTPAddr).with(
		"DATABASE_URL", kv(pc.Port), "OPS_BASIC_AUTH", "ops:"+opsPass, "LOG_LEVEL", "debug")
	p := startRun(t, e, e["PUBLIC_URL"], "serve")
	// A wrong ops password, and a request with one in the URL.
	httpGet(t, e["PUBLIC_URL"]+"/metrics", "ops:"+opsPass+"x")
	httpGet(t, e["PUBLIC_URL"]+"/riverui/?password="+opsPass, "ops:"+opsPass)
	if _, err := p.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The database does not answer: the error names it, masked.
	var out, errOut bytes.Buffer
	port := freeAddr(t)
	_, portStr, _ := strings.Cut(port, ":")
	n, _ := strconv.Atoi(portStr)
	err = run(context.Background(), []string{"migrate"}, e.with("DATABASE_URL", kv(uint16(n))).getenv, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "password=xxxxx") {
		t.Fatalf("migrate against a closed port: %v", err)
	}

	written := p.logs.String() + out.String() + errOut.String() + err.Error()
	for _, secret := range []string{dbPass, `Zq9\'x`, "Zq9", smtpPass, opsPass} {
		if strings.Contains(written, secret) {
			t.Errorf("%q written:\n%s", secret, written)
		}
	}
	if !strings.Contains(p.logs.String(), "password=xxxxx") {
		t.Errorf("the start-up line does not show the masked DATABASE_URL:\n%.2000s", p.logs.String())
	}
}
