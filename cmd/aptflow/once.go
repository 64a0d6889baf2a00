package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// periodicJobs are the cron jobs, registered identically on every process;
// River's leader enqueues them once per cluster.
func periodicJobs(cfg Config) ([]*river.PeriodicJob, error) {
	return nil, nil
}

// runOnce runs a scan or the digests now, as the cron would.
func runOnce(ctx context.Context, cfg Config, log *slog.Logger, cmd string, now time.Time, stdout io.Writer) error {
	return fmt.Errorf("%s: not yet available", cmd)
}

// runDemo creates demo data through the API.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return fmt.Errorf("demo: not yet available")
}
