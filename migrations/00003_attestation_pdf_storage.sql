-- +goose Up
-- An attestation PDF is already compressed (its page and font streams are
-- deflated): PostgreSQL's default storage tried to compress each one with
-- pglz before storing it as it was, which made an INSERT of a 22 kB PDF
-- five times as slow and saved nothing. EXTERNAL stores it out of line,
-- uncompressed, from the first try. Rows already stored are unchanged.
ALTER TABLE attestations ALTER COLUMN pdf SET STORAGE EXTERNAL;

-- +goose Down
ALTER TABLE attestations ALTER COLUMN pdf SET STORAGE EXTENDED;
