package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
