-- Uploads: one row per file in <upload_dir>/<category>/<id>.<ext>.
--
-- The row is written after the file is in place and before the client
-- hears of it, in the same statement that charges the owner's usage, so
-- usage stays exact and a quota holds under concurrent uploads.

CREATE TABLE uploads (
    -- 96 random bits, base64url: the file's name and the public handle
    id                 text        PRIMARY KEY
                                   CHECK (id ~ '^[A-Za-z0-9_-]{16}$'),
    -- the order of arrival, for keyset pages
    seq                bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    user_id            bigint      NOT NULL REFERENCES users (id)
                                   ON DELETE CASCADE,
    -- the client's file name, made safe for display; never a path
    name               text        NOT NULL
                                   CHECK (octet_length(name) BETWEEN 1 AND 255),
    ext                text        NOT NULL CHECK (ext ~ '^[a-z0-9]{1,16}$'),
    category           text        NOT NULL
                                   CHECK (category IN ('images', 'documents',
                                                       'other')),
    content_type       text        NOT NULL,
    size               bigint      NOT NULL CHECK (size > 0),
    sha256             text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- where its links live (the domains issue); NULL: the default
    domain             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    max_views          integer     CHECK (max_views > 0),
    views              bigint      NOT NULL DEFAULT 0,
    -- the delete link's token, hashed like API keys
    delete_token_hash  text        NOT NULL UNIQUE
                                   CHECK (delete_token_hash ~ '^[0-9a-f]{64}$')
);

CREATE INDEX uploads_user_seq ON uploads (user_id, seq DESC);
