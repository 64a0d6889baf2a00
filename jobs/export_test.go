package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// ErrCrash is the error of a scan or a purge stopped by the crashAfter of
// ScanStaleBatched or PurgeBatched.
var ErrCrash = errCrash

// ScanStaleBatched is ScanStale with batch dossiers per transaction; with
// crashAfter > 0 it stops after that many batches, before the instructeur
// e-mails, as a process killed mid-scan would.
func ScanStaleBatched(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time, batch, crashAfter int) (ScanResult, error) {
	return scanStale(ctx, svc, client, cfg, now, scanOptions{batch: batch, crashAfter: crashAfter})
}

// PurgeBatched is Purge with batch rows per transaction; with crashAfter > 0
// it stops after that many batches, as a process killed mid-purge would.
func PurgeBatched(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time, batch, crashAfter int) (PurgeResult, error) {
	return purge(ctx, svc, client, cfg, now, purgeOptions{batch: batch, crashAfter: crashAfter})
}

// ErrPurgePaused is the error of a purge stopped by its stopBy.
var ErrPurgePaused = errPurgePaused

// PurgeStoppingBy is Purge that stops, its batches before committed, once
// a batch would start after stopBy, as the worker's does before its job's
// timeout.
func PurgeStoppingBy(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now, stopBy time.Time) (PurgeResult, error) {
	return purge(ctx, svc, client, cfg, now, purgeOptions{stopBy: stopBy})
}

// NewPurgeWorker returns the purge's worker, for rivertest.
func NewPurgeWorker(cfg Config, deps Deps) *PurgeWorker {
	cfg.Defaults()
	return &PurgeWorker{cfg: cfg, deps: deps}
}
