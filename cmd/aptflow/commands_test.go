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
		"NOTIFY_COALESCE":  "soon",
		"STALE_SCAN_CRON":  "every day",
		"JOB_TIMEOUT":      "10m",
		"RESCUE_AFTER":     "5m",
		"LOG_FORMAT":       "xml",
		"SMTP_URL":         "http://mail",
		"OPS_BASIC_AUTH":   "admin",
		"TRUST_PROXY":      "true",
		"TRUSTED_PROXIES":  "10.0.0.0/8, proxy.internal",
		"PURGE_CRON":       "la nuit",
		"RETENTION_NOTICE": "un mois",
		"IDEMPOTENCY_TTL":  "-1h",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"DATABASE_URL", "NOTIFY_COALESCE", "STALE_SCAN_CRON", "RESCUE_AFTER", "LOG_FORMAT", "SMTP_URL", "OPS_BASIC_AUTH",
		"TRUST_PROXY is replaced by TRUSTED_PROXIES", `TRUSTED_PROXIES: "proxy.internal"`, "PURGE_CRON", "RETENTION_NOTICE", "IDEMPOTENCY_TTL"} {
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
		c.RescueAfter.String() != "5m0s" || c.MailDir != "var/mail" || c.LogFormat != "json" ||
		c.PurgeCron != "CRON_TZ=Europe/Paris 0 3 * * *" || c.RetentionNotice.String() != "720h0m0s" || c.IdempotencyTTL.String() != "24h0m0s" {
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

// TestPublicURL: the links in e-mails and the QR code must open somewhere,
// so a PUBLIC_URL that names no host, or every interface, is refused at
// start, whether set or derived from HTTP_ADDR.
func TestPublicURL(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string // in the error; "" for accepted
	}{
		"Default":           {nil, ""},
		"Set":               {map[string]string{"PUBLIC_URL": "https://apt.rhone.gouv.fr/"}, ""},
		"Loopback":          {map[string]string{"PUBLIC_URL": "http://127.0.0.1:9000"}, ""},
		"IPv6":              {map[string]string{"PUBLIC_URL": "http://[2001:db8::1]:8080"}, ""},
		"AllInterfaces":     {map[string]string{"PUBLIC_URL": "http://0.0.0.0:8080"}, "not one a person can open"},
		"AllInterfacesIPv6": {map[string]string{"PUBLIC_URL": "http://[::]:8080"}, "not one a person can open"},
		"EmptyHost":         {map[string]string{"PUBLIC_URL": "http://:8080"}, "PUBLIC_URL"},
		"NoScheme":          {map[string]string{"PUBLIC_URL": "apt.example.fr"}, "an http(s) URL is expected"},
		"DerivedFromHTTPAddr": {map[string]string{"HTTP_ADDR": "0.0.0.0:8080"},
			"it defaults to http://HTTP_ADDR: set PUBLIC_URL"},
		"DerivedNoHost":        {map[string]string{"HTTP_ADDR": ":8080"}, "set PUBLIC_URL"},
		"AllInterfacesWithURL": {map[string]string{"HTTP_ADDR": "0.0.0.0:8080", "PUBLIC_URL": "http://localhost:8080"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/aptflow"}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadConfig(getenvOf(env))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	t.Run("ServeRefuses", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"serve"}, getenvOf(map[string]string{
			"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "PUBLIC_URL": "http://0.0.0.0:8080",
		}), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") {
			t.Fatalf("serve with PUBLIC_URL=http://0.0.0.0:8080: %v", err)
		}
	})
}

// TestHelp: every command that `aptflow help` lists answers --help (and
// `aptflow help COMMAND`) with its own usage, without a configuration:
// help must not read as a missing DATABASE_URL.
func TestHelp(t *testing.T) {
	t.Parallel()
	var cmds []string
	for _, line := range strings.Split(usage, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "  aptflow ") && len(f) >= 2 {
			cmds = append(cmds, f[1])
		}
	}
	if len(cmds) < 7 {
		t.Fatalf("commands listed by the usage: %q", cmds)
	}
	for _, cmd := range cmds {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			var out, errb bytes.Buffer
			err := run(context.Background(), args, getenvOf(nil), &out, &errb)
			if err != nil || errb.Len() > 0 || !strings.HasPrefix(out.String(), "usage: aptflow "+cmd) {
				t.Errorf("aptflow %s: %v\nstdout %q\nstderr %q", strings.Join(args, " "), err, out.String(), errb.String())
			}
		}
	}
}

// TestDatabasePooler: DATABASE_POOLER=transaction makes River poll and pgx
// keep no named prepared statements (a mode in DATABASE_URL wins); any
// other value than transaction or session is refused.
func TestDatabasePooler(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	for name, tc := range map[string]struct {
		pooler, url string
		mode        pgx.QueryExecMode
		pollOnly    bool
	}{
		"Direct":            {"", url, pgx.QueryExecModeCacheStatement, false},
		"Session":           {"session", url, pgx.QueryExecModeCacheStatement, false},
		"Transaction":       {"transaction", url, pgx.QueryExecModeCacheDescribe, true},
		"TransactionURLSet": {"transaction", url + "&default_query_exec_mode=exec", pgx.QueryExecModeExec, true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(getenvOf(map[string]string{"DATABASE_URL": tc.url, "DATABASE_POOLER": tc.pooler}))
			if err != nil {
				t.Fatal(err)
			}
			if jc := jobsConfig(cfg, nil); jc.PollOnly != tc.pollOnly {
				t.Errorf("River PollOnly %v, want %v", jc.PollOnly, tc.pollOnly)
			}
			pool, err := openPool(context.Background(), cfg, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			if got := pool.Config().ConnConfig.DefaultQueryExecMode; got != tc.mode {
				t.Errorf("query exec mode %v, want %v", got, tc.mode)
			}
		})
	}
	if _, err := loadConfig(getenvOf(map[string]string{"DATABASE_URL": url, "DATABASE_POOLER": "statement"})); err == nil || !strings.Contains(err.Error(), "DATABASE_POOLER") {
		t.Errorf("DATABASE_POOLER=statement: %v", err)
	}
}
