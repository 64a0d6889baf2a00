package main

import (
	"strings"
	"testing"
)

// TestSMTPMaxRate: SMTP_MAX_RATE is bulk e-mails a second, unset by
// default (no cap), a positive number otherwise; it reaches the workers.
func TestSMTPMaxRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        float64
	}{
		{"Unset", "", 0},
		{"Integer", "10", 10},
		{"Fraction", "0.5", 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(getenvOf(map[string]string{"DATABASE_URL": "postgres://db/aptflow", "SMTP_MAX_RATE": tc.value}))
			if err != nil {
				t.Fatal(err)
			}
			if c.SMTPMaxRate != tc.want || jobsConfig(c, nil).BulkRate != tc.want {
				t.Fatalf("SMTP_MAX_RATE=%q: %v, workers' %v; want %v", tc.value, c.SMTPMaxRate, jobsConfig(c, nil).BulkRate, tc.want)
			}
		})
	}
	for _, bad := range []string{"0", "-3", "fast", "NaN", "+Inf", "10/s"} {
		t.Run("Refused"+bad, func(t *testing.T) {
			_, err := loadConfig(getenvOf(map[string]string{"DATABASE_URL": "postgres://db/aptflow", "SMTP_MAX_RATE": bad}))
			if err == nil || !strings.Contains(err.Error(), "SMTP_MAX_RATE") {
				t.Fatalf("SMTP_MAX_RATE=%q: %v", bad, err)
			}
		})
	}
}
