-- The migration ledger: one row per sql/NNN_name.sql applied.
--
-- Each migration runs in one transaction with its row here, so a failed
-- migration leaves neither its changes nor its row.  The checksum is the
-- SHA-256 of the file as applied: an applied migration is never edited.

CREATE TABLE schema_migrations (
    version     integer     PRIMARY KEY CHECK (version > 0),
    name        text        NOT NULL,
    checksum    text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at  timestamptz NOT NULL DEFAULT now()
);
