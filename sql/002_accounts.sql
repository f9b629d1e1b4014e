-- Accounts: users, their API keys, and the invites that let people register.
--
-- Secrets are never stored: passwords as scrypt strings, API keys and invite
-- codes as the hex SHA-256 of the random value (they carry 128+ bits, so a
-- fast hash is enough and lookups stay indexed).

-- API times, as clients read them: UTC, to the second, RFC 3339
CREATE FUNCTION bd_time(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

CREATE TABLE invites (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash   text        NOT NULL UNIQUE
                            CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    created_by  bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- of [A-Za-z0-9_.-], as the module checks; a regular expression here
    -- would run again on every upload, which updates the usage columns
    username        text        NOT NULL
                                CHECK (octet_length(username)
                                       BETWEEN 3 AND 32),
    password_hash   text        NOT NULL,
    role            text        NOT NULL DEFAULT 'user'
                                CHECK (role IN ('user', 'admin')),
    disabled        boolean     NOT NULL DEFAULT false,
    -- NULL: no limit
    quota_bytes     bigint      CHECK (quota_bytes >= 0),
    -- kept by the uploads, in the same transaction as the upload's row
    usage_bytes     bigint      NOT NULL DEFAULT 0 CHECK (usage_bytes >= 0),
    usage_files     bigint      NOT NULL DEFAULT 0 CHECK (usage_files >= 0),
    default_domain  text,
    -- in every JWT; a password change bumps it, retiring older tokens
    token_version   integer     NOT NULL DEFAULT 1,
    -- an invite is used once: by the one user that names it
    invite_id       bigint      CONSTRAINT users_invite_once UNIQUE
                                REFERENCES invites (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- "Alice" and "alice" are one name; the stored case is for display
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

ALTER TABLE invites ADD CONSTRAINT invites_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE api_keys (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id)
                              ON DELETE CASCADE,
    name          text        NOT NULL
                              CHECK (octet_length(name) BETWEEN 1 AND 64),
    key_hash      text        NOT NULL UNIQUE
                              CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    -- the key's first characters, to tell keys apart in a list
    prefix        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);

CREATE INDEX api_keys_user_id ON api_keys (user_id, id);
