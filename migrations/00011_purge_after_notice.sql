-- +goose NO TRANSACTION
-- +goose Up
-- Never purge a dossier before its applicant was told (docs/DATA.md « The
-- rule »). Until this migration, a dossier already past its expiry when
-- the purge first saw it (every old decided dossier of a database upgraded
-- from the release before 00006, or one whose conservation was shortened)
-- was purged by the next run without the notice e-mail. From now on the
-- notice step sets purge_not_before to the notice's time plus
-- RETENTION_NOTICE, and the expiry is the later of the rule's date and that
-- column: one expires_at, which the API, the tab expirant, the notice
-- e-mail and the purge all read.
--
-- No transaction around the whole file, as in 00006: the backfill commits
-- batch by batch. Each statement can be run again.

-- No default: adding it takes dossiers' lock for an instant and rewrites
-- nothing.
ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS purge_not_before timestamptz;

-- The expiry rule of 00006 (dossier_expires_at, unchanged), no earlier
-- than purge_not_before. The notice is announced once per expiry: a write
-- that moves the expiry clears expiry_notice_at (the new date will be
-- announced in turn), except the notice's own write, which moves it by
-- setting purge_not_before: the e-mail it queues gives the new date.
-- greatest() ignores NULLs, hence the CASE: a dossier en instruction has
-- no expiry, whatever its purge_not_before.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossiers_set_expires_at() RETURNS trigger AS $$
DECLARE
    rule timestamptz;
BEGIN
    rule := dossier_expires_at(NEW.state, NEW.decided_at, NEW.last_activity_at,
        (SELECT conservation_mois FROM procedures WHERE id = NEW.procedure_id) + NEW.conservation_extension_mois);
    NEW.expires_at := CASE WHEN rule IS NOT NULL THEN greatest(rule, NEW.purge_not_before) END;
    IF TG_OP = 'UPDATE' AND NEW.expires_at IS DISTINCT FROM OLD.expires_at
        AND NEW.purge_not_before IS NOT DISTINCT FROM OLD.purge_not_before THEN
        NEW.expiry_notice_at := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
-- Replaced in one statement: no write passes between a drop and a create.
CREATE OR REPLACE TRIGGER dossiers_set_expires_at
    BEFORE INSERT OR UPDATE OF state, decided_at, last_activity_at, conservation_extension_mois, purge_not_before ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_set_expires_at();

-- The dossiers already told by the release before (expiry_notice_at set,
-- not purged yet) keep their notice: RETENTION_NOTICE after it, at the
-- default 720h (SQL cannot read the setting; the old notice step told them
-- at most a run's interval less ahead than that), which moves their expiry
-- by a night at most. In batches of 5000 by id, each committed; the
-- trigger recomputes expires_at and keeps the notice.
-- +goose StatementBegin
DO $$
DECLARE
    last_id bigint := 0;
BEGIN
    LOOP
        WITH batch AS (
            SELECT id FROM dossiers WHERE id > last_id ORDER BY id LIMIT 5000
        ), filled AS (
            UPDATE dossiers d SET purge_not_before = d.expiry_notice_at + interval '720 hours'
            FROM batch b
            WHERE d.id = b.id AND d.expiry_notice_at IS NOT NULL AND d.deleted_at IS NULL AND d.purge_not_before IS NULL
        )
        SELECT max(id) INTO last_id FROM batch;
        EXIT WHEN last_id IS NULL;
        COMMIT;
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- The trigger of 00006, then the column (the expiries it moved stay until
-- their rows are written again).
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
CREATE OR REPLACE TRIGGER dossiers_set_expires_at
    BEFORE INSERT OR UPDATE OF state, decided_at, last_activity_at, conservation_extension_mois ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_set_expires_at();
ALTER TABLE dossiers DROP COLUMN IF EXISTS purge_not_before;
