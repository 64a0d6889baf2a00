package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/internal/redact"
	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/templates/attestation"
)

// Config is aptflow's configuration, read from the environment once at
// start and validated before anything runs.
type Config struct {
	DatabaseURL      string
	DatabasePooler   string // "" (a server, or a pooler in session mode) or PoolerTransaction
	HTTPAddr         string
	MetricsAddr      string // optional second listener with the ops endpoints only
	PublicURL        string
	SMTPURL          string
	MailFrom         string
	MailDir          string
	StaleScanCron    string
	DigestCron       string
	PurgeCron        string
	RetentionNotice  time.Duration
	IdempotencyTTL   time.Duration
	NotifyCoalesce   time.Duration
	JobTimeout       time.Duration
	RescueAfter      time.Duration
	ShutdownTimeout  time.Duration
	EmailMaxAttempts int
	EmailRetryMax    time.Duration
	SMTPMaxRate      float64 // bulk e-mails a second per process; 0: no cap
	OpsBasicAuth     string
	// WebhookMaxAttempts (WEBHOOK_MAX_ATTEMPTS) bounds the tries of one
	// webhook delivery; WebhookAllowedNetworks (WEBHOOK_ALLOWED_NETWORKS)
	// may be called although not public, over http:// too; WebhookKeys
	// (WEBHOOK_SECRET_KEY) seal the webhooks' secrets, nil when unset (no
	// webhook can then be created).
	WebhookMaxAttempts     int
	WebhookAllowedNetworks []netip.Prefix
	WebhookKeys            *webhook.Keyring
	// DKIM signs every e-mail, or is nil (DKIM_DOMAIN, DKIM_SELECTOR and
	// DKIM_PRIVATE_KEY unset); DKIMKeyFile is the key's path, for the log.
	DKIM           *mailer.DKIM
	DKIMKeyFile    string
	TrustedProxies []netip.Prefix
	LogFormat      string
	LogLevel       slog.Level
	// AttestationSignCert and AttestationSignKey are the PEM files that
	// sign attestations (the certificate file may hold the chain); both or
	// neither. Signer is loaded from them at start.
	AttestationSignCert string
	AttestationSignKey  string
	Signer              *attestation.Signer
}

// PoolerTransaction is DATABASE_POOLER for a DATABASE_URL that points at a
// pooler in transaction mode (PgBouncer's pool_mode = transaction), which
// gives a client's server connection to others between its transactions:
// no LISTEN (River polls instead), no named prepared statements.
const PoolerTransaction = "transaction"

// Default cron schedules (robfig/cron syntax with a time zone).
const (
	DefaultStaleScanCron = "CRON_TZ=Europe/Paris 0 6 * * *"
	DefaultDigestCron    = "CRON_TZ=Europe/Paris 0 9 * * 1-5"
	DefaultPurgeCron     = "CRON_TZ=Europe/Paris 0 3 * * *"
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
		DatabasePooler:  get("DATABASE_POOLER", ""),
		HTTPAddr:        get("HTTP_ADDR", "127.0.0.1:8080"),
		MetricsAddr:     get("METRICS_ADDR", ""),
		SMTPURL:         get("SMTP_URL", ""),
		MailFrom:        get("MAIL_FROM", "Autorisation provisoire de travail <ne-pas-repondre@aptflow.localhost>"),
		MailDir:         get("MAIL_DIR", "var/mail"),
		StaleScanCron:   get("STALE_SCAN_CRON", DefaultStaleScanCron),
		DigestCron:      get("DIGEST_CRON", DefaultDigestCron),
		PurgeCron:       get("PURGE_CRON", DefaultPurgeCron),
		RetentionNotice: dur("RETENTION_NOTICE", 720*time.Hour),
		IdempotencyTTL:  dur("IDEMPOTENCY_TTL", 24*time.Hour),
		NotifyCoalesce:  dur("NOTIFY_COALESCE", 2*time.Minute),
		JobTimeout:      dur("JOB_TIMEOUT", time.Minute),
		RescueAfter:     dur("RESCUE_AFTER", 5*time.Minute),
		ShutdownTimeout: dur("SHUTDOWN_TIMEOUT", 25*time.Second),
		EmailRetryMax:   dur("EMAIL_RETRY_MAX", 10*time.Minute),
		OpsBasicAuth:    getenv("OPS_BASIC_AUTH"),
		LogFormat:       get("LOG_FORMAT", "json"),

		AttestationSignCert: get("ATTESTATION_SIGN_CERT", ""),
		AttestationSignKey:  get("ATTESTATION_SIGN_KEY", ""),
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
	errs = append(errs, c.loadWebhooks(getenv)...)
	if getenv("TRUST_PROXY") != "" {
		// Refused rather than ignored: behind a proxy, every client would
		// then share the proxy's address (and its rate limit).
		errs = append(errs, errors.New("TRUST_PROXY is replaced by TRUSTED_PROXIES: set it to your proxies' addresses (CIDR list, e.g. 10.0.0.0/8,192.0.2.1)"))
	}
	if s := getenv("TRUSTED_PROXIES"); strings.TrimSpace(s) != "" {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				ip, ierr := netip.ParseAddr(f)
				if ierr != nil {
					errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is neither a CIDR (10.0.0.0/8) nor an address", f))
					continue
				}
				p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: debug, info, warn or error expected"))
	}

	if c.DatabasePooler != "" && c.DatabasePooler != PoolerTransaction && c.DatabasePooler != "session" {
		errs = append(errs, fmt.Errorf("DATABASE_POOLER: %q (PgBouncer's pool_mode = transaction) or session expected, got %q", PoolerTransaction, c.DatabasePooler))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/aptflow?sslmode=disable; `make run` finds or starts a PostgreSQL for you)"))
	}
	if err := checkPublicURL(c.PublicURL); err != nil {
		if getenv("PUBLIC_URL") == "" {
			err = fmt.Errorf("%w; it defaults to http://HTTP_ADDR: set PUBLIC_URL to the URL people open (e.g. http://localhost:8080 or https://apt.example.fr)", err)
		}
		errs = append(errs, err)
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, errors.New("SMTP_URL: smtp://host:port or smtps://host:port expected"))
		}
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		errs = append(errs, fmt.Errorf("MAIL_FROM: an address such as « Service <noreply@example.fr> » is expected: %v", err))
	}
	var err error
	if c.DKIM, c.DKIMKeyFile, err = loadDKIM(getenv); err != nil {
		errs = append(errs, err)
	}
	for k, spec := range map[string]string{"STALE_SCAN_CRON": c.StaleScanCron, "DIGEST_CRON": c.DigestCron, "PURGE_CRON": c.PurgeCron} {
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
	switch {
	case (c.AttestationSignCert == "") != (c.AttestationSignKey == ""):
		errs = append(errs, errors.New("ATTESTATION_SIGN_CERT and ATTESTATION_SIGN_KEY go together: set both (PEM files) or neither"))
	case c.AttestationSignCert != "":
		// The error names the file and what is wrong with it, never the
		// key's bytes.
		s, err := attestation.LoadSigner(c.AttestationSignCert, c.AttestationSignKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("ATTESTATION_SIGN_CERT/ATTESTATION_SIGN_KEY: %w", err))
		}
		c.Signer = s
	}
	return c, errors.Join(errs...)
}

// checkPublicURL refuses a PUBLIC_URL that no one could open: it is the
// base of the links in e-mails and of the attestation's QR code, read on
// another machine. A listening address such as 0.0.0.0 or [::] means every
// interface, not a place to go; an empty host means nowhere.
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("PUBLIC_URL: an http(s) URL is expected, got %q", s)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("PUBLIC_URL: %q is an address to listen on, not one a person can open (its host is empty, 0.0.0.0 or ::)", s)
	}
	return nil
}

// LogValue logs the configuration with its secrets masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", redact.DSN(c.DatabaseURL)),
		slog.String("database_pooler", c.DatabasePooler),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("public_url", c.PublicURL),
		slog.String("smtp_url", redact.URL(c.SMTPURL)),
		slog.String("mail_dir", c.MailDir),
		slog.String("stale_scan_cron", c.StaleScanCron),
		slog.String("digest_cron", c.DigestCron),
		slog.String("purge_cron", c.PurgeCron),
		slog.String("retention_notice", c.RetentionNotice.String()),
		slog.String("idempotency_ttl", c.IdempotencyTTL.String()),
		slog.String("notify_coalesce", c.NotifyCoalesce.String()),
		slog.String("job_timeout", c.JobTimeout.String()),
		slog.String("rescue_after", c.RescueAfter.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Int("email_max_attempts", c.EmailMaxAttempts),
		slog.String("email_retry_max", c.EmailRetryMax.String()),
		slog.Float64("smtp_max_rate", c.SMTPMaxRate),
		slog.Bool("ops_basic_auth", c.OpsBasicAuth != ""),
		slog.Int("webhook_max_attempts", c.WebhookMaxAttempts),
		slog.Any("webhook_allowed_networks", c.WebhookAllowedNetworks),
		slog.Bool("webhook_secret_key", c.WebhookKeys != nil),
		slog.String("dkim", c.dkimSummary()),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.String("log_format", c.LogFormat),
		slog.String("attestation_sign_cert", c.AttestationSignCert),
		slog.Bool("attestation_sign_key", c.AttestationSignKey != ""),
	)
}

// redactor masks the configuration's secrets in every log line and error
// of the process: the passwords of DATABASE_URL (either form, or from
// PGPASSWORD), SMTP_URL and OPS_BASIC_AUTH.
func (c Config) redactor() *redact.Redactor {
	secrets := append(redact.Passwords(c.DatabaseURL), redact.Passwords(c.SMTPURL)...)
	if pc, err := pgconn.ParseConfig(c.DatabaseURL); err == nil {
		secrets = append(secrets, pc.Password)
	}
	if _, p, ok := strings.Cut(c.OpsBasicAuth, ":"); ok {
		secrets = append(secrets, p)
	}
	return redact.New(secrets...)
}

// loadDKIM reads DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY (the path
// of a PEM key): all three set give the signer of every e-mail, whose key
// is loaded and tried now, so that a bad key stops the start; none gives
// nil (unsigned e-mails); some but not all is an error.
func loadDKIM(getenv func(string) string) (d *mailer.DKIM, keyFile string, err error) {
	domain := strings.TrimSpace(getenv("DKIM_DOMAIN"))
	selector := strings.TrimSpace(getenv("DKIM_SELECTOR"))
	keyFile = strings.TrimSpace(getenv("DKIM_PRIVATE_KEY"))
	var missing []string
	for name, v := range map[string]string{"DKIM_DOMAIN": domain, "DKIM_SELECTOR": selector, "DKIM_PRIVATE_KEY": keyFile} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 3:
		return nil, "", nil
	case 0:
	default:
		slices.Sort(missing)
		return nil, "", fmt.Errorf("DKIM: DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY go together; %s unset", strings.Join(missing, " and "))
	}
	if d, err = mailer.LoadDKIM(domain, selector, keyFile); err != nil {
		return nil, "", fmt.Errorf("DKIM: %w", err)
	}
	return d, keyFile, nil
}

// dkimSummary says how e-mails are signed, for the start-up log: the
// record name, the algorithm and the key's path (never the key).
func (c Config) dkimSummary() string {
	if c.DKIM == nil {
		return "off"
	}
	return fmt.Sprintf("%s (%s, key %s)", c.DKIM.RecordName(), c.DKIM.Algorithm(), c.DKIMKeyFile)
}

// dkimAligned reports whether the DKIM domain aligns with the domain of
// MAIL_FROM the way DMARC's relaxed alignment asks: the same domain, or
// one a subdomain of the other. Without the public suffix list this is
// a warning, not an error.
func dkimAligned(dkimDomain, mailFrom string) bool {
	a, err := mail.ParseAddress(mailFrom)
	if err != nil {
		return false
	}
	_, from, _ := strings.Cut(strings.ToLower(a.Address), "@")
	return from == dkimDomain || strings.HasSuffix(from, "."+dkimDomain) || strings.HasSuffix(dkimDomain, "."+from)
}
