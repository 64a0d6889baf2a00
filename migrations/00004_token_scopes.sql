-- +goose Up
-- Scoped tokens (DESIGN.md « Access: scoped tokens »). Tokens created before
-- this version become admin on every procedure: the column default fills
-- them, and adding a column with a constant default rewrites no row.
ALTER TABLE api_tokens
    ADD COLUMN scope        text NOT NULL DEFAULT 'admin'
                            CHECK (scope IN ('admin', 'instruction', 'depot', 'lecture')),
    -- NULL: every procedure; otherwise the only procedures the token sees.
    ADD COLUMN procedures   bigint[] CHECK (procedures IS NULL OR cardinality(procedures) > 0),
    ADD COLUMN expires_at   timestamptz,
    -- Kept to the minute: a process writes it on a token's first use and
    -- then at most once a minute, never once per request.
    ADD COLUMN last_used_at timestamptz;

-- Every process keeps the tokens it has seen in memory and trusts them only
-- while the generation it read less than a second ago is unchanged. Any
-- change that can take a right away (revocation, expiry, scope, procedures,
-- a deleted row) bumps the generation in the same transaction, so the
-- processes see it when, and only when, it commits. A plain row, not a
-- sequence: nextval is not transactional and would be seen before the
-- revocation commits. Polling it needs no LISTEN, so it works behind
-- PgBouncer in transaction mode too.
CREATE TABLE api_token_generation (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    generation bigint NOT NULL
);
INSERT INTO api_token_generation (generation) VALUES (1);

-- +goose StatementBegin
CREATE FUNCTION api_tokens_bump_generation() RETURNS trigger AS $$
BEGIN
    UPDATE api_token_generation SET generation = generation + 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER api_tokens_bump_generation
    AFTER UPDATE OF revoked_at, expires_at, scope, procedures, hash OR DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_bump_generation();
CREATE TRIGGER api_tokens_bump_generation_truncate
    AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_bump_generation();

-- A decided dossier is final in every field the attestation and its
-- verification page show: not only its state, but its decision's date and
-- motivation and the demandeur (name, dates, employer). Only the RGPD purge
-- may erase its personal data: it says so with SET LOCAL aptflow.purge = 'on'
-- in its own transaction.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossiers_decision_is_final() RETURNS trigger AS $$
BEGIN
    IF OLD.state IN ('accepte', 'refuse', 'sans_suite') THEN
        IF NEW.state IS DISTINCT FROM OLD.state THEN
            RAISE EXCEPTION 'dossier % is decided (%): its state cannot change', OLD.id, OLD.state
                USING ERRCODE = 'check_violation';
        END IF;
        IF (NEW.decided_at IS DISTINCT FROM OLD.decided_at
            OR NEW.motivation IS DISTINCT FROM OLD.motivation
            OR NEW.demandeur IS DISTINCT FROM OLD.demandeur)
           AND current_setting('aptflow.purge', true) IS DISTINCT FROM 'on' THEN
            RAISE EXCEPTION 'dossier % is decided (%): its decision and demandeur cannot change', OLD.id, OLD.state
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
DROP TRIGGER dossiers_decision_is_final ON dossiers;
CREATE TRIGGER dossiers_decision_is_final
    BEFORE UPDATE OF state, decided_at, motivation, demandeur ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_decision_is_final();

-- +goose Down
DROP TRIGGER dossiers_decision_is_final ON dossiers;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dossiers_decision_is_final() RETURNS trigger AS $$
BEGIN
    IF OLD.state IN ('accepte', 'refuse', 'sans_suite') AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'dossier % is decided (%): its state cannot change', OLD.id, OLD.state
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER dossiers_decision_is_final
    BEFORE UPDATE OF state ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_decision_is_final();
DROP TRIGGER api_tokens_bump_generation_truncate ON api_tokens;
DROP TRIGGER api_tokens_bump_generation ON api_tokens;
DROP FUNCTION api_tokens_bump_generation();
DROP TABLE api_token_generation;
ALTER TABLE api_tokens DROP COLUMN scope, DROP COLUMN procedures, DROP COLUMN expires_at, DROP COLUMN last_used_at;
