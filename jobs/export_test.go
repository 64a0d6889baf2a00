package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/workflow"
)

// ErrCrash is the error of a scan stopped by ScanStaleBatched's crashAfter.
var ErrCrash = errCrash

// ScanStaleBatched is ScanStale with batch dossiers per transaction; with
// crashAfter > 0 it stops after that many batches, before the instructeur
// e-mails, as a process killed mid-scan would.
func ScanStaleBatched(ctx context.Context, svc *workflow.Service, client *river.Client[pgx.Tx], cfg Config, now time.Time, batch, crashAfter int) (ScanResult, error) {
	return scanStale(ctx, svc, client, cfg, now, scanOptions{batch: batch, crashAfter: crashAfter})
}
