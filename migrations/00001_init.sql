-- +goose Up
-- The schema of aptflow's domain. River's own tables are migrated separately
-- by rivermigrate (see migrations.go).

CREATE TABLE procedures (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    libelle          text NOT NULL,
    service_nom      text NOT NULL,
    service_adresse  text NOT NULL,
    stale_after_days integer NOT NULL CHECK (stale_after_days > 0),
    heures_hebdo_max numeric(5,2) NOT NULL CHECK (heures_hebdo_max > 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- An instructeur is a person, known by e-mail, who may belong to several
-- procedures. E-mails are stored lower-cased.
CREATE TABLE instructeurs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (email = lower(email)),
    nom            text NOT NULL,
    notifications  text NOT NULL DEFAULT 'instant'
                   CHECK (notifications IN ('instant', 'daily', 'none')),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE procedure_instructeurs (
    procedure_id   bigint NOT NULL REFERENCES procedures (id),
    instructeur_id bigint NOT NULL REFERENCES instructeurs (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (procedure_id, instructeur_id)
);
CREATE INDEX procedure_instructeurs_instructeur_idx ON procedure_instructeurs (instructeur_id);

CREATE TABLE dossiers (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    procedure_id       bigint NOT NULL REFERENCES procedures (id),
    state              text NOT NULL DEFAULT 'en_construction'
                       CHECK (state IN ('en_construction', 'en_instruction', 'accepte', 'refuse', 'sans_suite')),
    usager_email       text NOT NULL,
    demandeur          jsonb NOT NULL,
    motivation         text,
    decided_at         timestamptz,
    -- Last activity of the applicant (creation, modification, message):
    -- what the stale scan measures.
    last_activity_at   timestamptz NOT NULL DEFAULT now(),
    stale_since        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dossiers_procedure_idx ON dossiers (procedure_id, id);
-- The stale scan reads only dossiers en construction that are not flagged yet.
CREATE INDEX dossiers_stale_scan_idx ON dossiers (last_activity_at, id)
    WHERE state = 'en_construction' AND stale_since IS NULL;

-- Decisions are final: no code path, not even a hand-written UPDATE, may move a
-- dossier out of accepte, refuse or sans_suite.
-- +goose StatementBegin
CREATE FUNCTION dossiers_decision_is_final() RETURNS trigger AS $$
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

CREATE TABLE dossier_history (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier_id        bigint NOT NULL REFERENCES dossiers (id),
    event             text NOT NULL,
    from_state        text NOT NULL,
    to_state          text NOT NULL,
    instructeur_email text,
    motivation        text,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dossier_history_dossier_idx ON dossier_history (dossier_id, id);

CREATE TABLE follows (
    dossier_id     bigint NOT NULL REFERENCES dossiers (id),
    instructeur_id bigint NOT NULL REFERENCES instructeurs (id),
    -- The last activity id of this dossier that this follower was told of,
    -- by an instant notification or a daily digest: the next one lists the
    -- activities after it, so none is told twice. Activities of one dossier
    -- are written under its row lock, so their ids commit in order.
    notified_through bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dossier_id, instructeur_id)
);
CREATE INDEX follows_instructeur_idx ON follows (instructeur_id, dossier_id);

-- What happened on a dossier that its followers hear about: messages, avis,
-- modifications by the applicant.
CREATE TABLE activities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier_id  bigint NOT NULL REFERENCES dossiers (id),
    kind        text NOT NULL CHECK (kind IN ('message_usager', 'message_instructeur', 'avis', 'modification')),
    -- The instructeur who did it (NULL for the applicant or an expert).
    author_instructeur_id bigint REFERENCES instructeurs (id),
    author      text NOT NULL,
    body        text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_dossier_idx ON activities (dossier_id, id);

-- The delivery log: one row per e-mail aptflow means to send. The row is
-- written in the transaction that causes the e-mail; the job that sends it
-- carries only its id.
CREATE TABLE email_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier_id   bigint REFERENCES dossiers (id),
    kind         text NOT NULL,
    recipient    text NOT NULL,
    -- What the template needs beyond the dossier (history row, activity ids...).
    params       jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    -- Set on the first attempt: <aptflow.delivery.ID@host>, the same on every retry.
    message_id   text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX email_deliveries_dossier_idx ON email_deliveries (dossier_id, id);

CREATE TABLE attestations (
    dossier_id   bigint PRIMARY KEY REFERENCES dossiers (id),
    code         text NOT NULL UNIQUE,
    pdf          bytea,
    sha256       text,
    rendered_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    -- sha256 of the token: the token itself is never stored.
    hash        bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE idempotency_keys (
    token_id     bigint NOT NULL REFERENCES api_tokens (id),
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

-- +goose Down
DROP TABLE idempotency_keys, api_tokens, attestations, email_deliveries, activities,
    follows, dossier_history, dossiers, procedure_instructeurs, instructeurs, procedures;
DROP FUNCTION dossiers_decision_is_final();
