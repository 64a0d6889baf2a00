package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Config is aptflow's configuration, read from the environment once at
// start and validated before anything runs.
type Config struct {
	DatabaseURL      string
	HTTPAddr         string
	MetricsAddr      string // optional second listener with the ops endpoints only
	PublicURL        string
	SMTPURL          string
	MailFrom         string
	MailDir          string
	StaleScanCron    string
	DigestCron       string
	NotifyCoalesce   time.Duration
	JobTimeout       time.Duration
	RescueAfter      time.Duration
	ShutdownTimeout  time.Duration
	EmailMaxAttempts int
	EmailRetryMax    time.Duration
	SMTPMaxRate      float64 // bulk e-mails a second per process; 0: no cap
	OpsBasicAuth     string
	TrustProxy       bool
	LogFormat        string
	LogLevel         slog.Level
}

// Default cron schedules (robfig/cron syntax with a time zone).
const (
	DefaultStaleScanCron = "CRON_TZ=Europe/Paris 0 6 * * *"
	DefaultDigestCron    = "CRON_TZ=Europe/Paris 0 9 * * 1-5"
)

// cronParser accepts the five standard fields and an optional CRON_TZ= or
// TZ= prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// loadConfig reads the configuration from getenv, with defaults, and
// returns every problem at once.
func loadConfig(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	dur := func(k string, def time.Duration) time.Duration {
		s := getenv(k)
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: a positive duration such as 2m or 30s is expected, got %q", k, s))
			return def
		}
		return d
	}
	c := Config{
		DatabaseURL:     get("DATABASE_URL", ""),
		HTTPAddr:        get("HTTP_ADDR", "127.0.0.1:8080"),
		MetricsAddr:     get("METRICS_ADDR", ""),
		SMTPURL:         get("SMTP_URL", ""),
		MailFrom:        get("MAIL_FROM", "Autorisation provisoire de travail <ne-pas-repondre@aptflow.localhost>"),
		MailDir:         get("MAIL_DIR", "var/mail"),
		StaleScanCron:   get("STALE_SCAN_CRON", DefaultStaleScanCron),
		DigestCron:      get("DIGEST_CRON", DefaultDigestCron),
		NotifyCoalesce:  dur("NOTIFY_COALESCE", 2*time.Minute),
		JobTimeout:      dur("JOB_TIMEOUT", time.Minute),
		RescueAfter:     dur("RESCUE_AFTER", 5*time.Minute),
		ShutdownTimeout: dur("SHUTDOWN_TIMEOUT", 25*time.Second),
		EmailRetryMax:   dur("EMAIL_RETRY_MAX", 10*time.Minute),
		OpsBasicAuth:    getenv("OPS_BASIC_AUTH"),
		LogFormat:       get("LOG_FORMAT", "json"),
	}
	c.PublicURL = strings.TrimRight(get("PUBLIC_URL", "http://"+c.HTTPAddr), "/")
	c.EmailMaxAttempts = 20
	if s := getenv("EMAIL_MAX_ATTEMPTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("EMAIL_MAX_ATTEMPTS: 1 to 100 expected, got %q", s))
		} else {
			c.EmailMaxAttempts = n
		}
	}
	if s := getenv("SMTP_MAX_RATE"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			errs = append(errs, fmt.Errorf("SMTP_MAX_RATE: bulk e-mails a second, a positive number such as 10 or 0.5, expected, got %q", s))
		} else {
			c.SMTPMaxRate = r
		}
	}
	c.TrustProxy = getenv("TRUST_PROXY") == "true" || getenv("TRUST_PROXY") == "1"
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: debug, info, warn or error expected"))
	}

	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/aptflow?sslmode=disable; `make run` finds or starts a PostgreSQL for you)"))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("PUBLIC_URL: an http(s) URL is expected, got %q", c.PublicURL))
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, errors.New("SMTP_URL: smtp://host:port or smtps://host:port expected"))
		}
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		errs = append(errs, fmt.Errorf("MAIL_FROM: an address such as « Service <noreply@example.fr> » is expected: %v", err))
	}
	for k, spec := range map[string]string{"STALE_SCAN_CRON": c.StaleScanCron, "DIGEST_CRON": c.DigestCron} {
		if _, err := cronParser.Parse(spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", k, err))
		}
	}
	if c.RescueAfter <= c.JobTimeout {
		errs = append(errs, fmt.Errorf("RESCUE_AFTER (%s) must be longer than JOB_TIMEOUT (%s), or running jobs would be rescued", c.RescueAfter, c.JobTimeout))
	}
	if c.OpsBasicAuth != "" {
		if u, p, ok := strings.Cut(c.OpsBasicAuth, ":"); !ok || u == "" || p == "" {
			errs = append(errs, errors.New("OPS_BASIC_AUTH: user:password expected"))
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: json or text expected, got %q", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

// LogValue logs the configuration with its secrets masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("public_url", c.PublicURL),
		slog.String("smtp_url", maskURL(c.SMTPURL)),
		slog.String("mail_dir", c.MailDir),
		slog.String("stale_scan_cron", c.StaleScanCron),
		slog.String("digest_cron", c.DigestCron),
		slog.String("notify_coalesce", c.NotifyCoalesce.String()),
		slog.String("job_timeout", c.JobTimeout.String()),
		slog.String("rescue_after", c.RescueAfter.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Int("email_max_attempts", c.EmailMaxAttempts),
		slog.String("email_retry_max", c.EmailRetryMax.String()),
		slog.Float64("smtp_max_rate", c.SMTPMaxRate),
		slog.Bool("ops_basic_auth", c.OpsBasicAuth != ""),
		slog.String("log_format", c.LogFormat),
	)
}

// maskURL hides the password of a URL.
func maskURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
