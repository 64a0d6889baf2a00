package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aptflow/aptflow/jobs"
)

// scanStaleOnce is `aptflow scan-stale`: one stale scan as of now, as the
// cron would run it. Its e-mails are queued with the app's insert-only River
// client; the workers of `aptflow serve` or `aptflow work` send them.
func scanStaleOnce(ctx context.Context, a *app, jc jobs.Config, now time.Time, stdout io.Writer) error {
	res, err := jobs.ScanStale(ctx, a.service, a.river, jc, now)
	if errors.Is(err, jobs.ErrScanRunning) {
		return fmt.Errorf("scan-stale: %w (the cron's, or another scan-stale): try again when it is done", err)
	} else if err != nil {
		return fmt.Errorf("scan-stale: %w", err)
	}
	at := res.At.Format(time.RFC3339)
	if res.AlreadyDone {
		fmt.Fprintf(stdout, "scan as of %s already done (it listed %s in %s): nothing flagged, nothing queued\n",
			at, plural(res.Listed, "dossier"), plural(res.InstructeurEmails, "instructeur e-mail"))
		return nil
	}
	fmt.Fprintf(stdout, "flagged %s; %s, %s (as of %s; queued: the workers of `aptflow serve` or `aptflow work` send them)\n",
		plural(res.Flagged, "dossier"), plural(res.InstructeurEmails, "instructeur e-mail"), plural(res.Reminders, "reminder"), at)
	if res.Recovered > 0 {
		fmt.Fprintf(stdout, "also finished %s interrupted before its instructeur e-mails\n", plural(res.Recovered, "earlier scan"))
	}
	return nil
}

// plural is n and noun, with an s unless n is 1 (English, as the CLI
// speaks); pluralIrregular names the plural of a noun that does not just
// take an s.
func plural(n int, noun string) string {
	return pluralIrregular(n, noun, noun+"s")
}

// pluralIrregular is n and one if n is 1, else n and many: « 1 activity »,
// « 2 activities ».
func pluralIrregular(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// purgeOnce is `aptflow purge`: one purge as of now, as the cron would run
// it. Its notices are queued with the app's insert-only River client; the
// workers of `aptflow serve` or `aptflow work` send them.
func purgeOnce(ctx context.Context, a *app, jc jobs.Config, now time.Time, stdout io.Writer) error {
	res, err := jobs.Purge(ctx, a.service, a.river, jc, now)
	if errors.Is(err, jobs.ErrPurgeRunning) {
		return fmt.Errorf("purge: %w (the cron's, or another purge): try again when it is done", err)
	} else if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	fmt.Fprintf(stdout, "purged %s (tombstones kept); %s queued (expiring by %s); %s forgotten (as of %s)\n",
		plural(res.Purged, "dossier"), plural(res.Notices, "expiry notice"),
		res.At.Add(a.service.RetentionNotice()).Format(time.RFC3339), plural(res.IdempotencyKeys, "idempotency key"),
		res.At.Format(time.RFC3339))
	return nil
}
