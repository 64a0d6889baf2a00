-- +goose NO TRANSACTION
-- +goose Up
-- A national instance (issue 19): the instructeurs' tabs read the rows they
-- return, whatever the size of the other procedures, and bulk e-mail waits
-- behind the e-mail people wait for.
--
-- The old processes may still be running while this runs: it runs outside a
-- transaction, one statement at a time, and never holds a long lock on a big
-- table. The new columns have constant defaults (a change of the catalog,
-- not of the rows); the triggers that keep them right are created before
-- the backfills, so that what the old processes write meanwhile is counted;
-- the backfills commit in batches; the indexes are built CONCURRENTLY. After
-- a failure half-way, goose runs the file again from the top, and every
-- statement may run twice.

-- followers: how many instructeurs follow the dossier. a_suivre (open,
-- followed by nobody) becomes a range of the partial index
-- dossiers_a_suivre_idx, where it was an anti-join that walked the followed
-- dossiers of the procedure to find the others: in a big procedure the
-- oldest open dossiers are en instruction, hence followed, and the first
-- page walked all of them.
ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS followers integer NOT NULL DEFAULT 0;

-- dossier_ouvert: the followed dossier is not decided; procedure_id: its
-- procedure (which never changes). suivis (open, followed by me) becomes,
-- like the other tabs, one range per procedure of the partial index
-- follows_suivis_idx, where it walked every follow of the instructeur, most
-- of them of decided dossiers, ordered before the open ones. Filtering
-- those by the dossier's procedure after the fact misled the planner into
-- reading all of them (23,000 buffers for a page of 100 with 5,600 open
-- follows, at 2,000,000 dossiers).
ALTER TABLE follows ADD COLUMN IF NOT EXISTS dossier_ouvert boolean NOT NULL DEFAULT true;
ALTER TABLE follows ADD COLUMN IF NOT EXISTS procedure_id bigint;

-- A follow written or deleted moves its dossier's count. The UPDATE locks
-- the dossier's row: two instructeurs following or leaving the same dossier
-- at once count one after the other.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION follows_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE dossiers SET followers = followers + 1 WHERE id = NEW.dossier_id;
    ELSE
        UPDATE dossiers SET followers = followers - 1 WHERE id = OLD.dossier_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE OR REPLACE TRIGGER follows_count
    AFTER INSERT OR DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION follows_count();

-- A new follow is open if its dossier is, and of its procedure. The
-- dossier's row is locked with the lock follows_count's UPDATE takes next:
-- a decision committing meanwhile is seen, and two follows of one dossier at
-- once wait for each other instead of deadlocking on a lock each would have
-- to strengthen.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION follows_dossier_ouvert() RETURNS trigger AS $$
DECLARE
    ouvert boolean;
    proc bigint;
BEGIN
    SELECT state IN ('en_construction', 'en_instruction'), procedure_id INTO ouvert, proc
    FROM dossiers WHERE id = NEW.dossier_id FOR NO KEY UPDATE;
    -- No dossier: the foreign key refuses the row, with its own error.
    NEW.dossier_ouvert := coalesce(ouvert, true);
    NEW.procedure_id := proc;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE OR REPLACE TRIGGER follows_dossier_ouvert
    BEFORE INSERT ON follows
    FOR EACH ROW EXECUTE FUNCTION follows_dossier_ouvert();

-- A decision closes the dossier's follows (decisions are final; the
-- function would reopen them all the same).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossiers_follows_ouverts() RETURNS trigger AS $$
BEGIN
    UPDATE follows SET dossier_ouvert = NEW.state IN ('en_construction', 'en_instruction')
    WHERE dossier_id = NEW.id
        AND dossier_ouvert IS DISTINCT FROM (NEW.state IN ('en_construction', 'en_instruction'));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE OR REPLACE TRIGGER dossiers_follows_ouverts
    AFTER UPDATE OF state ON dossiers
    FOR EACH ROW
    WHEN ((OLD.state IN ('en_construction', 'en_instruction')) IS DISTINCT FROM (NEW.state IN ('en_construction', 'en_instruction')))
    EXECUTE FUNCTION dossiers_follows_ouverts();

-- The counts of the dossiers followed before follows_count existed, and
-- the procedure and the state of the follows written before
-- follows_dossier_ouvert existed, 5,000 dossier ids at a time, each batch
-- its own transaction. A batch first locks its followed dossiers, as
-- follows_count does: a follow committed before the lock is in the count;
-- one waiting on it adds itself after. A follow is only ever closed (a
-- decision is final): « dossier_ouvert AND … » keeps a close that a
-- decision's trigger committed meanwhile. Only followed dossiers, and
-- follows without their procedure, are written.
-- +goose StatementBegin
DO $$
DECLARE
    lo bigint;
    top bigint;
BEGIN
    SELECT coalesce(min(dossier_id), 1) - 1, coalesce(max(dossier_id), 0) INTO lo, top FROM follows;
    WHILE lo < top LOOP
        PERFORM 1 FROM dossiers
        WHERE id > lo AND id <= lo + 5000
            AND id IN (SELECT dossier_id FROM follows WHERE dossier_id > lo AND dossier_id <= lo + 5000)
        ORDER BY id FOR NO KEY UPDATE;
        UPDATE dossiers d SET followers = c.n
        FROM (SELECT dossier_id, count(*)::integer AS n FROM follows
              WHERE dossier_id > lo AND dossier_id <= lo + 5000 GROUP BY dossier_id) c
        WHERE d.id = c.dossier_id AND d.followers <> c.n;
        UPDATE follows f SET procedure_id = d.procedure_id,
            dossier_ouvert = f.dossier_ouvert AND d.state IN ('en_construction', 'en_instruction')
        FROM dossiers d
        WHERE f.dossier_id > lo AND f.dossier_id <= lo + 5000 AND f.procedure_id IS NULL
            AND d.id = f.dossier_id;
        COMMIT;
        lo := lo + 5000;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- The indexes of the tabs. Each list walks, for each procedure of the
-- instructeur, a range of one of them in id order, from the index alone,
-- and stops at the page's end; it then reads the page's rows
-- (workflow/tabs.go). A purged dossier (migration 00006's tombstone) is in
-- no tab, hence in none of these indexes. EXPLAIN (ANALYZE, BUFFERS) of a
-- first page of 100 at
-- 2,000,000 dossiers, a procedure holding half of them (make bench-scale,
-- docs/PERFORMANCE.md « A national instance »): a full page reads 400 to
-- 660 buffers, 4 to 7 a row, for the small procedure as for the big one, of
-- which the range is 6 to 55; the rest is the rows. Before, a_suivre of a
-- procedure of 20 read 91,000 buffers with a million dossiers elsewhere.
--   dossiers_a_suivre_idx: a_suivre (open, followed by nobody); partial,
--     it holds the 12 % of dossiers en construction, nobody following,
--     where the anti-join walked the followed ones (all those en instruction).
--   dossiers_traites_idx: traites (decided); partial, the 80 % decided:
--     a range of dossiers_procedure_idx would skip the open ones.
--   dossiers_live_idx: tous; dossiers_procedure_idx would walk the
--     tombstones, which outnumber the live dossiers of an old procedure.
--   dossiers_expirant_idx: expirant (expiring within RETENTION_NOTICE),
--     per procedure in the order of expiry, where it stops at the first
--     expiry past the notice: in id order, a young procedure's tab walked
--     all its live dossiers to find none.
--   follows_suivis_idx: suivis (open, followed by me), per procedure;
--     partial, the follows of open dossiers, a tenth of them: 409 buffers
--     for a page of 100 of 5,600, where filtering the instructeur's follows
--     by state and procedure read all of them (22,847).
-- A rebuild starts with a DROP: CREATE INDEX CONCURRENTLY that failed
-- half-way leaves an invalid index, which IF NOT EXISTS would keep.
DROP INDEX CONCURRENTLY IF EXISTS dossiers_a_suivre_idx;
CREATE INDEX CONCURRENTLY dossiers_a_suivre_idx ON dossiers (procedure_id, id)
    WHERE state IN ('en_construction', 'en_instruction') AND followers = 0 AND deleted_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_traites_idx;
CREATE INDEX CONCURRENTLY dossiers_traites_idx ON dossiers (procedure_id, id)
    WHERE state IN ('accepte', 'refuse', 'sans_suite') AND deleted_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_live_idx;
CREATE INDEX CONCURRENTLY dossiers_live_idx ON dossiers (procedure_id, id)
    WHERE deleted_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_expirant_idx;
CREATE INDEX CONCURRENTLY dossiers_expirant_idx ON dossiers (procedure_id, expires_at, id)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS follows_suivis_idx;
CREATE INDEX CONCURRENTLY follows_suivis_idx ON follows (instructeur_id, procedure_id, dossier_id)
    WHERE dossier_ouvert;

-- Bulk e-mail has its own queue (jobs.QueueEmailBulk), paced by
-- SMTP_MAX_RATE, beside the transactional one. The bulk e-mails the old
-- release queued move to it: left where they are, a stale scan's reminders
-- queued before the upgrade would still hold back every decision after
-- it. The kinds are those that were bulk when this was written
-- (workflow.IsBulkMail). Running jobs are left alone; a job an old process
-- fetches meanwhile is locked and no longer waiting, hence skipped.
-- +goose StatementBegin
DO $$
DECLARE
    lo bigint;
    top bigint;
BEGIN
    SELECT coalesce(min(id), 1) - 1, coalesce(max(id), 0) INTO lo, top FROM river_job
    WHERE state IN ('available', 'pending', 'retryable', 'scheduled') AND queue = 'email';
    WHILE lo < top LOOP
        UPDATE river_job j SET queue = 'email_bulk'
        FROM email_deliveries e
        WHERE j.id > lo AND j.id <= lo + 5000
            AND j.kind = 'send_email' AND j.queue = 'email'
            AND j.state IN ('available', 'pending', 'retryable', 'scheduled')
            AND e.id = (j.args->>'delivery_id')::bigint
            AND e.kind IN ('digest', 'stale_instructeur', 'stale_usager', 'expiration_usager');
        COMMIT;
        lo := lo + 5000;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- The old release works the queue email only.
UPDATE river_job SET queue = 'email'
WHERE queue = 'email_bulk' AND state IN ('available', 'pending', 'retryable', 'scheduled');
DROP INDEX CONCURRENTLY IF EXISTS follows_suivis_idx;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_expirant_idx;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_live_idx;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_traites_idx;
DROP INDEX CONCURRENTLY IF EXISTS dossiers_a_suivre_idx;
DROP TRIGGER IF EXISTS dossiers_follows_ouverts ON dossiers;
DROP TRIGGER IF EXISTS follows_dossier_ouvert ON follows;
DROP TRIGGER IF EXISTS follows_count ON follows;
DROP FUNCTION IF EXISTS dossiers_follows_ouverts();
DROP FUNCTION IF EXISTS follows_dossier_ouvert();
DROP FUNCTION IF EXISTS follows_count();
ALTER TABLE follows DROP COLUMN IF EXISTS dossier_ouvert, DROP COLUMN IF EXISTS procedure_id;
ALTER TABLE dossiers DROP COLUMN IF EXISTS followers;
