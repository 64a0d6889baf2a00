-- +goose Up
-- The cron jobs' runs (jobs/cron.go), for the metric that shows a run that
-- did not happen (aptflow_cron_overdue_seconds): River forgets a completed
-- job after a day, and a cron may run less often (the digests skip the
-- weekend). One row per cron job (its periodic job's id: scan_stale,
-- send_digests, ...), written when a process first runs with it
-- (registered_at: a run due before it is no missed run) and after each
-- successful run (last_run_at: the cron time that run stood for).
CREATE TABLE cron_runs (
    name           text PRIMARY KEY,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at    timestamptz,
    finished_at    timestamptz
);
-- A database upgraded in place knows its last runs already: the stale
-- scans it finished, and the cron jobs River still keeps as completed (a
-- day), whose args carry their run time. Reads only; both are small.
INSERT INTO cron_runs (name, registered_at, last_run_at, finished_at)
SELECT name, min(registered_at), max(last_run_at), max(finished_at)
FROM (
    SELECT 'scan_stale' AS name, started_at AS registered_at, scanned_at AS last_run_at, finished_at
    FROM stale_scans WHERE finished_at IS NOT NULL
    UNION ALL
    SELECT kind, created_at, (args->>'at')::timestamptz, finalized_at
    FROM river_job
    WHERE kind IN ('scan_stale', 'send_digests') AND state = 'completed' AND args->>'at' IS NOT NULL
) AS runs
GROUP BY name;

-- +goose Down
DROP TABLE cron_runs;
