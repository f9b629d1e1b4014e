-- Uploads committed in batches.
--
-- Under load, most of what PostgreSQL did per upload was the statement
-- and the transaction around one row, and a worker had several commits
-- waiting on the database at any time.  A worker now sends the uploads
-- that finished while its previous commits ran in one statement, one
-- transaction; alone, an upload goes at once, in a batch of one.
--
-- Every batch takes its locks in one order, so that two batches cannot
-- deadlock: rows by owner, then by usage shard (for an owner with a quota,
-- its users row before its shards), and the keys' last_used_at last.
-- Whether an owner's users row is locked is decided once per batch, at
-- its first row: a quota set meanwhile must not make a later row reach
-- back for a lock that comes before the shards this batch holds.
-- Each row is decided as bd_upload_commit() decided one, which goes.
--
-- A row is written only if the batch ends before that row's deadline:
-- after it, nginx may have answered 503 and removed the file.  A batch
-- that ends too late for any row it wrote raises, and writes nothing.

DROP FUNCTION bd_upload_commit(text, bigint, text, text, text, text, bigint,
                               text, text, double precision, text, bigint);

-- The arrays hold one upload each at the same index; `ord` in the answer
-- is that index.  p_keys[i]: the API key's SHA-256, or NULL for a JWT whose
-- token version is p_versions[i].  `refused`: as before, 'token',
-- 'disabled', 'quota' or 'late'.
CREATE FUNCTION bd_upload_commit_batch(p_ids text[], p_users bigint[],
                                       p_names text[], p_exts text[],
                                       p_categories text[], p_types text[],
                                       p_sizes bigint[], p_sha256s text[],
                                       p_delete_hashes text[],
                                       p_deadlines double precision[],
                                       p_keys text[], p_versions bigint[])
    RETURNS TABLE (id text, name text, ext text, category text,
                   content_type text, size bigint, sha256 text,
                   domain text, created_at text, expires_at text,
                   max_views integer, views bigint, refused text,
                   ord integer)
    LANGUAGE plpgsql
AS $$
DECLARE
    n           integer;
    i           integer;
    who         record;
    used        bigint;
    key_id      bigint;
    stale_keys  bigint[] := '{}';
    owner       bigint;
    owner_quota boolean;
    due         double precision;
BEGIN
    n := coalesce(array_length(p_ids, 1), 0);

    IF n = 0
       OR array_length(p_users, 1) IS DISTINCT FROM n
       OR array_length(p_names, 1) IS DISTINCT FROM n
       OR array_length(p_exts, 1) IS DISTINCT FROM n
       OR array_length(p_categories, 1) IS DISTINCT FROM n
       OR array_length(p_types, 1) IS DISTINCT FROM n
       OR array_length(p_sizes, 1) IS DISTINCT FROM n
       OR array_length(p_sha256s, 1) IS DISTINCT FROM n
       OR array_length(p_delete_hashes, 1) IS DISTINCT FROM n
       OR array_length(p_deadlines, 1) IS DISTINCT FROM n
       OR array_length(p_keys, 1) IS DISTINCT FROM n
       OR array_length(p_versions, 1) IS DISTINCT FROM n
    THEN
        RAISE check_violation
            USING MESSAGE = 'bd_upload_commit_batch: arrays differ';
    END IF;

    FOR i IN
        SELECT t.o
          FROM unnest(p_users, p_ids) WITH ORDINALITY AS t(u, pid, o)
         ORDER BY t.u, bd_usage_shard(t.pid), t.o
    LOOP
        id := NULL; name := NULL; ext := NULL; category := NULL;
        content_type := NULL; size := NULL; sha256 := NULL;
        domain := NULL; created_at := NULL; expires_at := NULL;
        max_views := NULL; views := NULL; refused := NULL;
        ord := i;

        IF octet_length(p_ids[i]) <> 16
           OR octet_length(p_names[i]) NOT BETWEEN 1 AND 255
           OR octet_length(p_exts[i]) NOT BETWEEN 1 AND 16
           OR p_categories[i] NOT IN ('images', 'documents', 'other')
           OR p_sizes[i] <= 0
           OR octet_length(p_sha256s[i]) <> 64
           OR octet_length(p_delete_hashes[i]) <> 64
           OR p_users[i] IS NULL
           OR p_deadlines[i] IS NULL
        THEN
            RAISE check_violation
                USING MESSAGE = 'bd_upload_commit_batch: bad upload';
        END IF;

        SELECT u.disabled, u.quota_bytes, u.token_version,
               k.id AS key_id, k.last_used_at
          INTO who
          FROM users u
          LEFT JOIN api_keys k ON k.key_hash = p_keys[i]
                              AND k.user_id = u.id
         WHERE u.id = p_users[i];

        IF NOT FOUND
           OR (p_keys[i] IS NULL
               AND who.token_version IS DISTINCT FROM p_versions[i])
           OR (p_keys[i] IS NOT NULL AND who.key_id IS NULL)
        THEN
            refused := 'token';
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF who.disabled THEN
            refused := 'disabled';
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF owner IS DISTINCT FROM p_users[i] THEN
            owner := p_users[i];
            owner_quota := who.quota_bytes IS NOT NULL;

            IF owner_quota THEN
                -- held until commit: this user's next upload sums after
                -- this one, in a statement whose snapshot is taken once
                -- the lock is held (and sees this batch's own rows)
                PERFORM 1 FROM users u WHERE u.id = owner
                    FOR NO KEY UPDATE;
            END IF;
        END IF;

        IF owner_quota THEN
            SELECT u.quota_bytes INTO who.quota_bytes
              FROM users u WHERE u.id = p_users[i];

            SELECT coalesce(sum(s.bytes), 0) INTO used
              FROM usage s WHERE s.user_id = p_users[i];

            IF who.quota_bytes IS NOT NULL
               AND used + p_sizes[i] > who.quota_bytes
            THEN
                refused := 'quota';
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;

        IF clock_timestamp() >= to_timestamp(p_deadlines[i]) THEN
            refused := 'late';
            RETURN NEXT;
            CONTINUE;
        END IF;

        INSERT INTO usage AS s (user_id, shard, bytes, files)
            VALUES (p_users[i], bd_usage_shard(p_ids[i]), p_sizes[i], 1)
            ON CONFLICT (user_id, shard)
            DO UPDATE SET bytes = s.bytes + excluded.bytes,
                          files = s.files + 1;

        -- at most once a minute per key, like the lookup's own
        IF who.key_id IS NOT NULL
           AND (who.last_used_at IS NULL
                OR who.last_used_at < now() - interval '1 minute')
           AND NOT who.key_id = ANY (stale_keys)
        THEN
            stale_keys := stale_keys || who.key_id;
        END IF;

        INSERT INTO uploads AS p (id, user_id, name, ext, category,
                                  content_type, size, sha256,
                                  delete_token_hash)
        VALUES (p_ids[i], p_users[i], p_names[i], p_exts[i],
                p_categories[i], p_types[i], p_sizes[i], p_sha256s[i],
                p_delete_hashes[i])
        RETURNING p.id, p.name, p.ext, p.category, p.content_type, p.size,
                  p.sha256, p.domain, bd_time(p.created_at),
                  bd_time(p.expires_at), p.max_views, p.views
             INTO id, name, ext, category, content_type, size, sha256,
                  domain, created_at, expires_at, max_views, views;

        due := least(due, p_deadlines[i]);
        RETURN NEXT;
    END LOOP;

    FOR key_id IN SELECT DISTINCT k FROM unnest(stale_keys) AS k ORDER BY 1
    LOOP
        UPDATE api_keys SET last_used_at = now()
         WHERE api_keys.id = key_id;
    END LOOP;

    IF clock_timestamp() >= to_timestamp(due) THEN
        RAISE query_canceled
            USING MESSAGE = 'bd_upload_commit_batch: past a deadline';
    END IF;
END
$$;
