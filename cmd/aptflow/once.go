package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/jobs"
)

// crons are aptflow's cron jobs: River's periodic jobs, registered
// identically on every process, which River's leader enqueues once per
// cluster, and what the metrics watch of them (their names and schedules:
// aptflow_cron_overdue_seconds shows a run that did not happen).
func crons(cfg Config) ([]*river.PeriodicJob, []jobs.Cron, error) {
	digest, err := cronParser.Parse(cfg.DigestCron)
	if err != nil {
		return nil, nil, fmt.Errorf("DIGEST_CRON: %w", err)
	}
	stale, err := cronParser.Parse(cfg.StaleScanCron)
	if err != nil {
		return nil, nil, fmt.Errorf("STALE_SCAN_CRON: %w", err)
	}
	purge, err := cronParser.Parse(cfg.PurgeCron)
	if err != nil {
		return nil, nil, fmt.Errorf("PURGE_CRON: %w", err)
	}
	return []*river.PeriodicJob{jobs.NewSendDigestsPeriodicJob(digest), jobs.NewScanStalePeriodicJob(stale), jobs.NewPurgePeriodicJob(purge)},
		[]jobs.Cron{{Name: jobs.SendDigestsArgs{}.Kind(), Schedule: digest}, {Name: jobs.ScanStaleArgs{}.Kind(), Schedule: stale},
			{Name: jobs.PurgeArgs{}.Kind(), Schedule: purge}},
		nil
}

// runOnce runs a scan, the digests or the purge now, as the cron would.
//
// The e-mails are enqueued, not sent here: the workers of `aptflow serve`
// or `aptflow work` send them, with their retries.
func runOnce(ctx context.Context, cfg Config, log *slog.Logger, cmd string, now time.Time, stdout io.Writer) error {
	a, err := newApp(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer a.pool.Close()
	jc := jobsConfig(cfg, log)
	switch cmd {
	case "send-digests":
		res, err := jobs.SendDigests(ctx, a.service, a.river, jc, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enqueued %s listing %s (sent by the workers of serve/work)\n",
			plural(res.Digests, "digest"), pluralIrregular(res.Activities, "activity", "activities"))
		return nil
	case "scan-stale":
		return scanStaleOnce(ctx, a, jc, now, stdout)
	case "purge":
		return purgeOnce(ctx, a, jc, now, stdout)
	}
	return fmt.Errorf("%s: unknown command", cmd)
}
