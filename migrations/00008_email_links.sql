-- +goose Up
-- E-mails (issue 17): a procedure's links to a dossier in the applicant's
-- and the instructeurs' applications (URL templates with {id}), and the
-- address replies to the applicant's e-mails go to. All optional: the
-- procedures of earlier releases have none, and their e-mails keep saying
-- to use the dossier's messaging. Nullable columns without a default: no
-- row is rewritten, the table is locked only for the catalogue change, and
-- the processes of the earlier release, which name their columns, go on.
ALTER TABLE procedures
    ADD COLUMN lien_usager      text,
    ADD COLUMN lien_instructeur text,
    ADD COLUMN reply_to         text;

-- +goose Down
ALTER TABLE procedures
    DROP COLUMN reply_to,
    DROP COLUMN lien_instructeur,
    DROP COLUMN lien_usager;
