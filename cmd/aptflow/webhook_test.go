package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestWebhookConfig: WEBHOOK_MAX_ATTEMPTS, WEBHOOK_ALLOWED_NETWORKS and
// WEBHOOK_SECRET_KEY are checked at start, every problem at once, without
// quoting the key; the configuration line says whether a key is set,
// never the key.
func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	const badKey = "Zq9-pas-une-cle"
	_, err := loadConfig(procEnv{
		"DATABASE_URL":             "postgres://db/aptflow",
		"WEBHOOK_MAX_ATTEMPTS":     "0",
		"WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8, intranet",
		"WEBHOOK_SECRET_KEY":       badKey,
		"JOB_TIMEOUT":              "5s",
		"RESCUE_AFTER":             "10s",
	}.getenv)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_ALLOWED_NETWORKS", "WEBHOOK_SECRET_KEY", "RESCUE_AFTER (10s) must be longer than 15s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), badKey) {
		t.Errorf("the error quotes the key: %v", err)
	}

	c, err := loadConfig(procEnv{"DATABASE_URL": "postgres://db/aptflow"}.getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookMaxAttempts != 15 || len(c.WebhookAllowedNetworks) != 0 || c.WebhookKeys != nil {
		t.Errorf("defaults: %d attempts, networks %v, keys %v", c.WebhookMaxAttempts, c.WebhookAllowedNetworks, c.WebhookKeys)
	}

	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	c, err = loadConfig(procEnv{
		"DATABASE_URL":             "postgres://db/aptflow",
		"WEBHOOK_MAX_ATTEMPTS":     "3",
		"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8 fd00::/8",
		"WEBHOOK_SECRET_KEY":       key,
	}.getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookMaxAttempts != 3 || len(c.WebhookAllowedNetworks) != 2 || c.WebhookKeys == nil {
		t.Errorf("parsed: %d attempts, networks %v, keys %v", c.WebhookMaxAttempts, c.WebhookAllowedNetworks, c.WebhookKeys)
	}
	var buf bytes.Buffer
	newLogger(c, &buf).Info("starting", "config", c)
	if out := buf.String(); strings.Contains(out, key) || !strings.Contains(out, `"webhook_secret_key":true`) ||
		!strings.Contains(out, "127.0.0.0/8") {
		t.Errorf("configuration line:\n%s", out)
	}
}
