-- +goose Up
-- The stale scan (jobs/stale.go). A scan runs "as of" a time, its key: every
-- dossier it flags gets stale_since = scanned_at. It flags in short batches
-- (each with its applicant reminders), then, in one last transaction, writes
-- one e-mail per instructeur listing the dossiers flagged as of scanned_at and
-- sets finished_at. A scan killed half-way is finished by its retry or by the
-- next scan; a finished one is never run again, so no e-mail goes twice.
CREATE TABLE stale_scans (
    scanned_at          timestamptz PRIMARY KEY,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    -- Set when finished: the dossiers listed to the instructeurs (those
    -- flagged as of scanned_at and still flagged) and the e-mails written.
    dossiers            integer,
    instructeur_emails  integer
);
-- Unfinished scans are few (usually none): found without reading the rest.
CREATE INDEX stale_scans_unfinished_idx ON stale_scans (scanned_at) WHERE finished_at IS NULL;

-- The last step of a scan reads the dossiers it flagged (stale_since equal to
-- its time); flagged dossiers are a small part of the table.
CREATE INDEX dossiers_stale_since_idx ON dossiers (stale_since) WHERE stale_since IS NOT NULL;

-- +goose Down
DROP INDEX dossiers_stale_since_idx;
DROP TABLE stale_scans;
