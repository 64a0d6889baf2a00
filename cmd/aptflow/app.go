package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/migrations"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/templates/attestation"
	"github.com/aptflow/aptflow/workflow"
)

// newLogger returns the process's logger, shared with River. Nothing logs
// personal data: handlers and workers log ids only.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openPool connects to the database with a pool of size conns.
func openPool(ctx context.Context, cfg Config, conns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.MaxConns = conns
	pc.ConnConfig.ConnectTimeout = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable at %s: %w", maskURL(cfg.DatabaseURL), err)
	}
	return pool, nil
}

// jobsConfig derives the workers' configuration.
func jobsConfig(cfg Config, log *slog.Logger) jobs.Config {
	jc := jobs.Config{
		JobTimeout:       cfg.JobTimeout,
		RescueAfter:      cfg.RescueAfter,
		NotifyCoalesce:   cfg.NotifyCoalesce,
		EmailMaxAttempts: cfg.EmailMaxAttempts,
		RetryMax:         cfg.EmailRetryMax,
		MailFrom:         cfg.MailFrom,
		PublicURL:        cfg.PublicURL,
		Logger:           log,
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
		m, err := mailer.New(cfg.SMTPURL, cfg.MailDir)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("mailer: %w", err)
		}
		jc.PeriodicJobs, err = periodicJobs(cfg)
		if err != nil {
			pool.Close()
			return nil, err
		}
		rw, err = jobs.NewWorkers(jc, jobs.Deps{
			Pool: pool, Mailer: m, Templates: tpl, Attestations: renderer, Metrics: jobs.NewMetrics(a.reg),
		})
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
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aptflow_transitions_total", Help: "Committed dossier transitions, by event.",
	}, []string{"event"})
	for _, e := range workflow.Events {
		transitions.WithLabelValues(string(e))
	}
	a.reg.MustRegister(transitions)
	a.service = workflow.NewService(pool, jobs.NewEnqueuer(a.river, jc), workflow.Options{
		PublicURL:    cfg.PublicURL,
		OnTransition: func(e workflow.Event) { transitions.WithLabelValues(string(e)).Inc() },
	})
	return a, nil
}

// serve runs the workers and, with withAPI, the HTTP server, until ctx is
// cancelled; then it stops accepting requests, lets running jobs finish up
// to ShutdownTimeout, and cancels the rest back to the queue.
func serve(ctx context.Context, cfg Config, log *slog.Logger, withAPI bool) error {
	log.Info("starting", "command", map[bool]string{true: "serve", false: "work"}[withAPI], "config", cfg)
	a, err := newApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.pool.Close()

	// River runs on its own context: SIGTERM must not cancel running jobs
	// at once, only after the soft-stop deadline below.
	if err := a.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	var started atomic.Bool
	started.Store(true)

	var srv *http.Server
	srvErr := make(chan error, 1)
	if withAPI {
		ui, err := riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints:                riverui.NewEndpoints(a.river, nil),
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
		handler := api.NewServer(api.Deps{
			Service: a.service, Pool: a.pool, Logger: log,
			Ready: func(r *http.Request) error {
				if !started.Load() {
					return errors.New("workers not started")
				}
				pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
				defer cancel()
				if err := a.pool.Ping(pctx); err != nil {
					return errors.New("database unreachable")
				}
				return nil
			},
			Metrics:      promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}),
			RiverUI:      ui,
			OpsBasicAuth: cfg.OpsBasicAuth,
			TrustProxy:   cfg.TrustProxy,
		})
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
		}
		srv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() { srvErr <- srv.Serve(ln) }()
		log.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL)
	}

	select {
	case <-ctx.Done():
	case err := <-srvErr:
		log.Error("http server stopped", "err", err)
	}
	log.Info("shutting down", "deadline", cfg.ShutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	if srv != nil {
		if err := srv.Shutdown(stopCtx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	}
	// Stop waits for running jobs; past the deadline it cancels them, and
	// River puts them back in the queue for another process.
	softCtx, softCancel := context.WithTimeout(stopCtx, cfg.ShutdownTimeout)
	defer softCancel()
	if err := a.river.Stop(softCtx); err != nil {
		log.Warn("soft stop deadline reached: cancelling running jobs", "err", err)
		if err := a.river.StopAndCancel(stopCtx); err != nil {
			return fmt.Errorf("stop workers: %w", err)
		}
	}
	log.Info("stopped")
	return nil
}
