-- +goose NO TRANSACTION
-- +goose Up
-- The data lifecycle (RGPD, DESIGN.md « Data lifecycle »; docs/DATA.md):
-- conservation per procedure, the expiry of each dossier, the notice before
-- it, the purge and its tombstones, and the idempotency keys' lifetime.
--
-- No transaction around the whole file: the backfill of dossiers.expires_at
-- commits batch by batch and the indexes are built CONCURRENTLY, so that
-- the old processes, which may still be running, never wait on a long lock.
-- Each statement is its own transaction and is written to be run again:
-- a migration killed half-way is not recorded, and its rerun finishes it.

-- How long a procedure keeps a dossier after its decision, or after its
-- applicant's last activity while en construction. A constant default
-- rewrites no row; the CHECK scans procedures, a small table.
ALTER TABLE procedures
    ADD COLUMN IF NOT EXISTS conservation_mois integer NOT NULL DEFAULT 12
        CONSTRAINT procedures_conservation_mois_check CHECK (conservation_mois BETWEEN 1 AND 120);

-- No default to evaluate and no CHECK to validate: adding these columns
-- takes dossiers' lock for an instant and rewrites nothing.
ALTER TABLE dossiers
    -- The months instructeurs added (POST /v1/dossiers/{id}/conservation).
    ADD COLUMN IF NOT EXISTS conservation_extension_mois integer NOT NULL DEFAULT 0,
    -- When the dossier expires: set by dossiers_set_expires_at, NULL while
    -- en instruction (never purged then).
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    -- When the applicant was told of the expiry; back to NULL whenever
    -- expires_at moves, so that each expiry is announced once.
    ADD COLUMN IF NOT EXISTS expiry_notice_at timestamptz,
    -- The tombstone: set by the purge, which erased the personal data.
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
    ADD COLUMN IF NOT EXISTS deletion_reason text;

-- Checked from now on for new and changed rows; validated below, without
-- blocking writes (VALIDATE takes a lock that lets them through).
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'dossiers_lifecycle_check') THEN
        ALTER TABLE dossiers ADD CONSTRAINT dossiers_lifecycle_check CHECK (
            conservation_extension_mois >= 0
            AND (deleted_at IS NULL) = (deletion_reason IS NULL)
            AND deletion_reason IN ('expire')
        ) NOT VALID;
    END IF;
END $$;
-- +goose StatementEnd
ALTER TABLE dossiers VALIDATE CONSTRAINT dossiers_lifecycle_check;

-- The one statement of the expiry rule: conservation_mois months (the
-- procedure's, plus the extensions) after the decision, or after the
-- applicant's last activity while en construction; never while en
-- instruction. Months are counted on the Paris calendar (31 January + 1
-- month = 28 or 29 February, at the same hour).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossier_expires_at(state text, decided_at timestamptz, last_activity_at timestamptz, months integer)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN state = 'en_instruction' THEN NULL
        ELSE ((CASE WHEN state = 'en_construction' THEN last_activity_at ELSE coalesce(decided_at, last_activity_at) END
               AT TIME ZONE 'Europe/Paris') + make_interval(months => months)) AT TIME ZONE 'Europe/Paris'
    END
$$;
-- +goose StatementEnd

-- Every write that moves what the expiry depends on goes through this
-- trigger, old processes' included: no code path can forget it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossiers_set_expires_at() RETURNS trigger AS $$
BEGIN
    NEW.expires_at := dossier_expires_at(NEW.state, NEW.decided_at, NEW.last_activity_at,
        (SELECT conservation_mois FROM procedures WHERE id = NEW.procedure_id) + NEW.conservation_extension_mois);
    IF TG_OP = 'UPDATE' AND NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        NEW.expiry_notice_at := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS dossiers_set_expires_at ON dossiers;
CREATE TRIGGER dossiers_set_expires_at
    BEFORE INSERT OR UPDATE OF state, decided_at, last_activity_at, conservation_extension_mois ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_set_expires_at();

-- The dossiers written before this migration, in batches of 5000 rows by
-- id, each committed: rows locked for a moment, never the table. Rows
-- written meanwhile get theirs from the trigger.
-- +goose StatementBegin
DO $$
DECLARE
    last_id bigint := 0;
BEGIN
    LOOP
        WITH batch AS (
            SELECT id FROM dossiers WHERE id > last_id ORDER BY id LIMIT 5000
        ), filled AS (
            UPDATE dossiers d
            SET expires_at = dossier_expires_at(d.state, d.decided_at, d.last_activity_at, p.conservation_mois + d.conservation_extension_mois)
            FROM batch b, procedures p
            WHERE d.id = b.id AND p.id = d.procedure_id AND d.expires_at IS NULL AND d.state <> 'en_instruction'
        )
        SELECT max(id) INTO last_id FROM batch;
        EXIT WHEN last_id IS NULL;
        COMMIT;
    END LOOP;
END $$;
-- +goose StatementEnd

-- The purge walks the live dossiers by expiry; the notice, those not told
-- yet. Purged dossiers leave both.
CREATE INDEX CONCURRENTLY IF NOT EXISTS dossiers_expiry_idx ON dossiers (expires_at, id)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS dossiers_expiry_notice_idx ON dossiers (expires_at, id)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expiry_notice_at IS NULL;
-- GET /v1/procedures/{id}/dossiers_supprimes?since=: a procedure's
-- tombstones in the order of their deletion.
CREATE INDEX CONCURRENTLY IF NOT EXISTS dossiers_deleted_idx ON dossiers (procedure_id, deleted_at, id)
    WHERE deleted_at IS NOT NULL;
-- The stale scan's index without the purged dossiers, which stay en
-- construction and unflagged for ever: the scan would walk them every day.
CREATE INDEX CONCURRENTLY IF NOT EXISTS dossiers_stale_scan_live_idx ON dossiers (last_activity_at, id)
    WHERE state = 'en_construction' AND stale_since IS NULL AND deleted_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_stale_scan_idx;

-- A stored response is about the dossier of its route (or the one it
-- created): the purge erases it with the dossier. Keys stored before this
-- migration have none; IDEMPOTENCY_TTL forgets them.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS dossier_id bigint;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idempotency_keys_dossier_idx ON idempotency_keys (dossier_id)
    WHERE dossier_id IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP INDEX IF EXISTS idempotency_keys_created_idx;
DROP INDEX IF EXISTS idempotency_keys_dossier_idx;
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS dossier_id;
CREATE INDEX IF NOT EXISTS dossiers_stale_scan_idx ON dossiers (last_activity_at, id)
    WHERE state = 'en_construction' AND stale_since IS NULL;
DROP INDEX IF EXISTS dossiers_stale_scan_live_idx;
DROP INDEX IF EXISTS dossiers_deleted_idx;
DROP INDEX IF EXISTS dossiers_expiry_notice_idx;
DROP INDEX IF EXISTS dossiers_expiry_idx;
DROP TRIGGER IF EXISTS dossiers_set_expires_at ON dossiers;
DROP FUNCTION IF EXISTS dossiers_set_expires_at();
DROP FUNCTION IF EXISTS dossier_expires_at(text, timestamptz, timestamptz, integer);
ALTER TABLE dossiers DROP CONSTRAINT IF EXISTS dossiers_lifecycle_check;
ALTER TABLE dossiers
    DROP COLUMN IF EXISTS deletion_reason,
    DROP COLUMN IF EXISTS deleted_at,
    DROP COLUMN IF EXISTS expiry_notice_at,
    DROP COLUMN IF EXISTS expires_at,
    DROP COLUMN IF EXISTS conservation_extension_mois;
ALTER TABLE procedures DROP COLUMN IF EXISTS conservation_mois;
