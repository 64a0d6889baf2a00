package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/webhook"
)

// loadWebhooks reads WEBHOOK_MAX_ATTEMPTS, WEBHOOK_ALLOWED_NETWORKS and
// WEBHOOK_SECRET_KEY into c, and returns what is wrong with them.
func (c *Config) loadWebhooks(getenv func(string) string) []error {
	var errs []error
	c.WebhookMaxAttempts = jobs.DefaultWebhookMaxAttempts
	if s := getenv("WEBHOOK_MAX_ATTEMPTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("WEBHOOK_MAX_ATTEMPTS: 1 to 100 expected, got %q", s))
		} else {
			c.WebhookMaxAttempts = n
		}
	}
	var err error
	if c.WebhookAllowedNetworks, err = webhook.ParseNetworks(getenv("WEBHOOK_ALLOWED_NETWORKS")); err != nil {
		errs = append(errs, fmt.Errorf("WEBHOOK_ALLOWED_NETWORKS: %w", err))
	}
	if s := strings.TrimSpace(getenv("WEBHOOK_SECRET_KEY")); s != "" {
		// The error never quotes the value: it is a secret.
		if c.WebhookKeys, err = webhook.ParseKeyring(s); err != nil {
			errs = append(errs, fmt.Errorf("WEBHOOK_SECRET_KEY: %w", err))
		}
	}
	// A delivery waits up to 10 s for its receiver, then records the
	// answer: River must not take it for a dead process's job and run it
	// a second time meanwhile.
	if longest := webhook.DefaultTimeout + 5*time.Second; c.RescueAfter <= longest {
		errs = append(errs, fmt.Errorf("RESCUE_AFTER (%s) must be longer than %s, a webhook delivery's longest run", c.RescueAfter, longest))
	}
	return errs
}
