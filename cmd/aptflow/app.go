package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/aptflow/aptflow/api"
	"github.com/aptflow/aptflow/internal/redact"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/migrations"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/templates/attestation"
	"github.com/aptflow/aptflow/workflow"
)

// newLogger returns the process's logger, shared with River. Nothing logs
// personal data: handlers and workers log ids only.
// Every record goes through the configuration's redactor: no secret of
// the configuration is written, whatever logs it.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(cfg.redactor().Handler(h))
}

// openPool connects to the database with a pool of size conns, unless
// DATABASE_URL sets pool_max_conns: several processes on one server may
// need a smaller pool each than their workers would take, to stay within
// its max_connections (workers then wait for a connection).
func openPool(ctx context.Context, cfg Config, conns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
		pc.MaxConns = conns
	}
	// Behind a pooler in transaction mode, a statement prepared on one
	// server connection is unknown to the next: pgx's default caches named
	// prepared statements. Caching only their descriptions keeps the
	// parameter types of that mode (River's JSON arguments rely on them)
	// and prepares on the unnamed statement, which each execution re-parses
	// in the same round trip. A mode set in DATABASE_URL wins.
	if cfg.DatabasePooler == PoolerTransaction && !strings.Contains(cfg.DatabaseURL, "default_query_exec_mode") {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	pc.ConnConfig.ConnectTimeout = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable at %s: %w", redact.DSN(cfg.DatabaseURL), err)
	}
	return pool, nil
}

// jobsConfig derives the workers' configuration.
func jobsConfig(cfg Config, log *slog.Logger) jobs.Config {
	jc := jobs.Config{
		JobTimeout:         cfg.JobTimeout,
		RescueAfter:        cfg.RescueAfter,
		NotifyCoalesce:     cfg.NotifyCoalesce,
		EmailMaxAttempts:   cfg.EmailMaxAttempts,
		RetryMax:           cfg.EmailRetryMax,
		BulkRate:           cfg.SMTPMaxRate,
		WebhookMaxAttempts: cfg.WebhookMaxAttempts,
		IdempotencyTTL:     cfg.IdempotencyTTL,
		MailFrom:           cfg.MailFrom,
		PublicURL:          cfg.PublicURL,
		PollOnly:           cfg.DatabasePooler == PoolerTransaction,
		Logger:             log,
	}
	jc.Defaults()
	return jc
}

// app is a process's wiring.
type app struct {
	cfg     Config
	log     *slog.Logger
	pool    *pgxpool.Pool
	river   *river.Client[pgx.Tx]
	service *workflow.Service
	reg     *prometheus.Registry
	crons   []jobs.Cron // the cron jobs this process's River runs, if any
}

// newApp connects and builds everything; with workers false, the River
// client only inserts.
func newApp(ctx context.Context, cfg Config, log *slog.Logger, workers bool) (*app, error) {
	jc := jobsConfig(cfg, log)
	pool, err := openPool(ctx, cfg, jc.PoolSize())
	if err != nil {
		return nil, err
	}
	pending, err := migrations.Pending(ctx, pool)
	if err != nil || pending {
		pool.Close()
		if err == nil {
			err = errors.New("run `aptflow migrate` first")
		}
		return nil, fmt.Errorf("database schema is not up to date: %w", err)
	}
	a := &app{cfg: cfg, log: log, pool: pool, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aptflow_transitions_total", Help: "Committed dossier transitions, by event.",
	}, []string{"event"})
	for _, e := range workflow.Events {
		transitions.WithLabelValues(string(e))
	}
	a.reg.MustRegister(transitions)
	targets := &webhook.Policy{Allowed: cfg.WebhookAllowedNetworks}
	opts := workflow.Options{
		PublicURL:       cfg.PublicURL,
		OnTransition:    func(e workflow.Event) { transitions.WithLabelValues(string(e)).Inc() },
		RetentionNotice: cfg.RetentionNotice,
		WebhookTargets:  targets,
	}
	if cfg.WebhookKeys != nil {
		opts.WebhookSecrets = cfg.WebhookKeys
	}
	var rw *river.Workers
	if workers {
		tpl, err := templates.Load()
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("e-mail templates: %w", err)
		}
		renderer, err := attestation.NewRenderer()
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("attestation layout: %w", err)
		}
		m, err := mailer.New(cfg.SMTPURL, cfg.MailDir, cfg.DKIM)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("mailer: %w", err)
		}
		jc.PeriodicJobs, a.crons, err = crons(cfg)
		if err != nil {
			pool.Close()
			return nil, err
		}
		// The workers' Service inserts jobs with the client that runs
		// them, which needs the workers first.
		deps := jobs.Deps{
			Service:      workflow.NewService(pool, jobs.NewEnqueuer(nil, jc), opts),
			Pool:         pool,
			Mailer:       m,
			Templates:    tpl,
			Attestations: renderer,
			Metrics:      jobs.NewMetrics(a.reg),
			Webhooks:     webhook.NewSender(webhook.SenderOptions{Policy: targets, UserAgent: "aptflow-webhooks/1"}),
		}
		// A nil *Signer in the interface would not be a nil Signer.
		if cfg.Signer != nil {
			deps.Signer = cfg.Signer
		} else {
			log.Warn("attestations are not signed: set ATTESTATION_SIGN_CERT and ATTESTATION_SIGN_KEY (PEM files) to sign them")
		}
		rw, err = jobs.NewWorkers(jc, deps)
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	a.river, err = jobs.NewClient(pool, jc, rw)
	if err != nil {
		pool.Close()
		return nil, err
	}
	a.service = workflow.NewService(pool, jobs.NewEnqueuer(a.river, jc), opts)
	return a, nil
}

// serve runs the workers and, with withAPI, the API and the dashboard,
// until ctx is cancelled or a listener fails. Then it stops accepting
// requests, lets running jobs finish for up to ShutdownTimeout, and cancels
// the others, which River makes available again at once, without spending
// an attempt, for another process or the next start. A stop asked by ctx
// returns nil.
func serve(ctx context.Context, cfg Config, log *slog.Logger, withAPI bool) error {
	command := "work"
	if withAPI {
		command = "serve"
	}
	log.Info("starting", "command", command, "config", cfg)
	if cfg.WebhookKeys == nil {
		log.Warn("webhooks disabled: WEBHOOK_SECRET_KEY is not set (openssl rand -base64 32); creating one answers 503 webhooks_not_configured")
	}
	warnDKIM(cfg, log)
	a, err := newApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.pool.Close()
	if err := jobs.RegisterCrons(ctx, a.pool, a.crons); err != nil {
		return err
	}
	a.reg.MustRegister(jobs.NewQueueCollector(a.pool, jobs.DefaultStatsTTL, log).WithCrons(a.crons))
	jobs.NewJobMetrics(a.reg).Observe(a.river) // before Start: no event missed

	// River runs on its own context: a signal must not cancel running jobs
	// at once, only after the soft-stop deadline (see stop).
	if err := a.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	var ready atomic.Bool
	ready.Store(true)
	readiness := func(ctx context.Context) error {
		if !ready.Load() {
			return errors.New("workers not running")
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := a.pool.Ping(pctx); err != nil {
			return errors.New("database unreachable")
		}
		return nil
	}
	// What /readyz answers, for Prometheus, which scrapes /metrics only.
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "aptflow_ready",
		Help: "1 when this process is ready (/readyz answers 200: database reachable, workers running), else 0.",
	}, func() float64 {
		if readiness(context.Background()) != nil {
			return 0
		}
		return 1
	}))
	deps := api.Deps{
		Service: a.service, Pool: a.pool, Logger: log,
		Ready:          func(r *http.Request) error { return readiness(r.Context()) },
		Metrics:        promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}),
		Profiler:       api.Profiler(),
		OpsBasicAuth:   cfg.OpsBasicAuth,
		TrustedProxies: cfg.TrustedProxies,
		OpsHosts:       []string{cfg.PublicURL, cfg.HTTPAddr, cfg.MetricsAddr},
		HTTPMetrics:    api.NewHTTPMetrics(a.reg),
	}

	var servers []*http.Server
	srvErr := make(chan error, 2)
	listen := func(addr, what string, handler http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				srvErr <- fmt.Errorf("%s server: %w", what, err)
			}
		}()
		log.Info("listening", "what", what, "addr", ln.Addr().String())
		return nil
	}
	err = func() error {
		if withAPI {
			ui, err := riverui.NewHandler(&riverui.HandlerOpts{
				Endpoints: riverui.NewEndpoints(a.river, nil),
				// Args hold ids only, but a screen shared in a meeting
				// need not show even those.
				JobListHideArgsByDefault: true,
				Logger:                   log,
				Prefix:                   "/riverui",
			})
			if err != nil {
				return fmt.Errorf("river ui: %w", err)
			}
			if err := ui.Start(ctx); err != nil {
				return fmt.Errorf("river ui: %w", err)
			}
			deps.RiverUI = ui
			if err := listen(cfg.HTTPAddr, "api", api.NewServer(deps)); err != nil {
				return err
			}
			log.Info("serving", "public_url", cfg.PublicURL, "river_ui", cfg.PublicURL+"/riverui/")
		}
		if cfg.MetricsAddr != "" {
			return listen(cfg.MetricsAddr, "ops", api.NewOpsServer(deps))
		}
		return nil
	}()
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-srvErr:
			log.Error("http server failed", "err", err)
		}
	}
	ready.Store(false)
	return errors.Join(err, a.stop(servers))
}

// warnDKIM says at start what would make receivers junk the e-mails:
// sent unsigned, or signed for a domain that DMARC does not align with the
// sender's.
func warnDKIM(cfg Config, log *slog.Logger) {
	switch {
	case cfg.DKIM == nil && cfg.SMTPURL != "":
		log.Warn("e-mails are not DKIM-signed: a sender domain with a DMARC policy will have them rejected or junked; set DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY (aptflow dkim-record prints the DNS record)")
	case cfg.DKIM != nil && !dkimAligned(cfg.DKIM.Domain(), cfg.MailFrom):
		log.Warn("DKIM_DOMAIN does not align with the domain of MAIL_FROM: DMARC ignores a signature of another domain",
			"dkim_domain", cfg.DKIM.Domain())
	}
}

// stop shuts the HTTP servers down and stops the workers, both at once:
// the servers stop accepting at once and finish the requests in flight; the
// workers stop fetching and finish their jobs for up to ShutdownTimeout,
// then cancel them. Jobs that ignore their cancellation for 5 more seconds
// are abandoned: River rescues them after RESCUE_AFTER.
func (a *app) stop(servers []*http.Server) error {
	a.log.Info("shutting down", "shutdown_timeout", a.cfg.ShutdownTimeout.String())
	hardCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(hardCtx); err != nil {
				a.log.Warn("http shutdown: requests still running are cut", "err", err)
				_ = srv.Close()
			}
		})
	}
	defer wg.Wait()

	softCtx, softCancel := context.WithTimeout(hardCtx, a.cfg.ShutdownTimeout)
	defer softCancel()
	if err := a.river.Stop(softCtx); err == nil {
		a.log.Info("stopped")
		return nil
	}
	a.log.Warn("jobs still running at the shutdown deadline: cancelling them back to the queue")
	if err := a.river.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("stop workers: jobs still running are left to be rescued after RESCUE_AFTER (%s): %w", a.cfg.RescueAfter, err)
	}
	a.log.Info("stopped")
	return nil
}
