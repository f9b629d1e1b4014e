-- Uploads: one row per file in <upload_dir>/<category>/<id>.<ext>.
--
-- The row is written after the file is in place and before the client
-- hears of it, in the same statement that charges the owner's usage, so
-- usage stays exact and a quota holds under concurrent uploads.
--
-- One row is written per upload, on the hot path: the values the module
-- makes itself (ids, hashes) are checked for their length, not with
-- regular expressions, and there are no indexes but those queries use.

CREATE TABLE uploads (
    -- 96 random bits, base64url: the file's name and the public handle
    id                 text        PRIMARY KEY
                                   CHECK (octet_length(id) = 16),
    -- the order of arrival, for keyset pages
    seq                bigint      GENERATED ALWAYS AS IDENTITY,
    user_id            bigint      NOT NULL REFERENCES users (id)
                                   ON DELETE CASCADE,
    -- the client's file name, made safe for display; never a path
    name               text        NOT NULL
                                   CHECK (octet_length(name) BETWEEN 1 AND 255),
    ext                text        NOT NULL
                                   CHECK (octet_length(ext) BETWEEN 1 AND 16),
    category           text        NOT NULL
                                   CHECK (category IN ('images', 'documents',
                                                       'other')),
    content_type       text        NOT NULL,
    size               bigint      NOT NULL CHECK (size > 0),
    sha256             text        NOT NULL
                                   CHECK (octet_length(sha256) = 64),
    -- where its links live (the domains issue); NULL: the default
    domain             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    max_views          integer     CHECK (max_views > 0),
    views              bigint      NOT NULL DEFAULT 0,
    -- the delete link's token, hashed like API keys
    delete_token_hash  text        NOT NULL UNIQUE
                                   CHECK (octet_length(delete_token_hash)
                                          = 64)
);

CREATE INDEX uploads_user_seq ON uploads (user_id, seq DESC);
