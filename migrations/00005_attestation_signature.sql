-- +goose Up
-- The signatory printed on a procedure's attestations (« Pour le préfet et
-- par délégation, la cheffe du bureau des étrangers »): both or neither.
-- Procedures created before have none; their attestations print the
-- service alone, as they always did.
ALTER TABLE procedures
    ADD COLUMN signataire_nom     text,
    ADD COLUMN signataire_qualite text,
    ADD CONSTRAINT procedures_signataire_check
        CHECK ((signataire_nom IS NULL) = (signataire_qualite IS NULL));

-- Whether the stored PDF carries an electronic signature. Attestations
-- rendered before were not signed: false is true of them, and a column
-- added with a constant default rewrites no row (no long lock on a big
-- table), so no batch is needed.
ALTER TABLE attestations ADD COLUMN signed boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE attestations DROP COLUMN signed;
ALTER TABLE procedures
    DROP CONSTRAINT procedures_signataire_check,
    DROP COLUMN signataire_qualite,
    DROP COLUMN signataire_nom;
