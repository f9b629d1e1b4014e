-- File domains, and uploads with an expiry or a view limit.
--
-- A link lives on one of the file domains (img., shots., ... of the base
-- domain); nginx serves files only on the enabled ones.  Workers keep the
-- enabled names in shared memory, reloaded when the "bulletdrop" channel
-- says 'domains'.

CREATE TABLE domains (
    name        text        PRIMARY KEY
                            CHECK (octet_length(name) <= 253
                                   AND name ~ ('^([a-z0-9]([a-z0-9-]*'
                                               '[a-z0-9])?\.)*[a-z0-9]'
                                               '([a-z0-9-]*[a-z0-9])?$')),
    enabled     boolean     NOT NULL DEFAULT true,
    -- the first enabled domain is the default one: the time of each row,
    -- not of its transaction, keeps the seed's order (img. first)
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Defaults chosen before domains were registered are kept, disabled, for
-- an administrator to enable (or not): a user's choice is not dropped.
INSERT INTO domains (name, enabled)
    SELECT DISTINCT default_domain, false FROM users
     WHERE default_domain IS NOT NULL;

ALTER TABLE users
    ADD FOREIGN KEY (default_domain) REFERENCES domains (name)
        ON UPDATE CASCADE ON DELETE SET NULL;

CREATE TRIGGER domains_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION bd_notify('domains');

-- The sweep's rows: few, next to the permanent ones.
CREATE INDEX uploads_limited ON uploads (expires_at)
    WHERE expires_at IS NOT NULL OR max_views IS NOT NULL;

DROP FUNCTION bd_upload_commit_batch(text[], bigint[], text[], text[],
                                     text[], text[], bigint[], text[],
                                     text[], double precision[], text[],
                                     bigint[]);

-- As in 006, with three more arrays: p_domains[i] the domain of the
-- upload's link (NULL: nginx does not know the domains yet; the user's
-- default while enabled, else the first enabled one, else none: the link
-- is on the host the upload came to), p_expires[i] when it expires (epoch
-- seconds, NULL: never) and p_max_views[i] (NULL: no limit).
CREATE FUNCTION bd_upload_commit_batch(p_ids text[], p_users bigint[],
                                       p_names text[], p_exts text[],
                                       p_categories text[], p_types text[],
                                       p_sizes bigint[], p_sha256s text[],
                                       p_delete_hashes text[],
                                       p_deadlines double precision[],
                                       p_keys text[], p_versions bigint[],
                                       p_domains text[],
                                       p_expires double precision[],
                                       p_max_views integer[])
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
    dom         text;
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
       OR array_length(p_domains, 1) IS DISTINCT FROM n
       OR array_length(p_expires, 1) IS DISTINCT FROM n
       OR array_length(p_max_views, 1) IS DISTINCT FROM n
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
           OR p_max_views[i] <= 0
           OR octet_length(p_domains[i]) NOT BETWEEN 1 AND 253
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

        IF who.key_id IS NOT NULL
           AND (who.last_used_at IS NULL
                OR who.last_used_at < now() - interval '1 minute')
           AND NOT who.key_id = ANY (stale_keys)
        THEN
            stale_keys := stale_keys || who.key_id;
        END IF;

        -- nginx had not loaded the domains yet: the default, from here
        dom := p_domains[i];

        IF dom IS NULL THEN
            SELECT d.name INTO dom
              FROM domains d
              LEFT JOIN users u ON u.id = p_users[i]
                               AND u.default_domain = d.name
             WHERE d.enabled
             ORDER BY u.id IS NULL, d.created_at, d.name
             LIMIT 1;
        END IF;

        INSERT INTO uploads AS p (id, user_id, name, ext, category,
                                  content_type, size, sha256,
                                  delete_token_hash, domain, expires_at,
                                  max_views)
        VALUES (p_ids[i], p_users[i], p_names[i], p_exts[i],
                p_categories[i], p_types[i], p_sizes[i], p_sha256s[i],
                p_delete_hashes[i], dom,
                to_timestamp(p_expires[i]), p_max_views[i])
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

-- Views of files with an expiry or a view limit, asked by nginx when a
-- worker does not know the file yet, and for every GET of a file with a
-- view limit.  A worker sends the views it has waiting in one call; p_ids
-- and p_counts hold one request each at the same index (p_counts: a GET,
-- which uses a view; a HEAD only looks), and `ord` in the answer is that
-- index.  A file's views are taken in one update for all its requests, in
-- their order, so that of concurrent viewers of the last view exactly one
-- gets it; rows are locked in id order, so that batches cannot deadlock.
-- `state`: 'ok' (serve it) or 'gone'; `views`: the count with this view.
--
-- Where many views are left, up to p_lease more are taken at once for the
-- worker's later requests (`leased`, on a file's first row): a popular
-- file then costs a query per p_lease views.  Views leased by a server
-- that stops are lost: never more views than the limit, a few less.
CREATE FUNCTION bd_upload_view_batch(p_ids text[], p_counts boolean[],
                                     p_lease integer)
    RETURNS TABLE (ord integer, state text, expires_at double precision,
                   max_views integer, views bigint, leased integer)
    LANGUAGE plpgsql
AS $$
DECLARE
    pid      text;
    gets     integer;
    cur      record;
    known    boolean;
    live     boolean;
    granted  integer;
    ahead    integer;
    taken    integer;
    o        integer;
    counts   boolean;
BEGIN
    IF array_length(p_counts, 1) IS DISTINCT FROM array_length(p_ids, 1)
       OR p_lease < 0
    THEN
        RAISE check_violation
            USING MESSAGE = 'bd_upload_view_batch: arrays differ';
    END IF;

    FOR pid, gets IN
        SELECT t.id, count(*) FILTER (WHERE t.c)
          FROM unnest(p_ids, p_counts) AS t(id, c)
         GROUP BY t.id ORDER BY t.id
    LOOP
        SELECT u.expires_at, u.max_views, u.views INTO cur
          FROM uploads u WHERE u.id = pid;

        known := FOUND;

        -- locked, and read again, only where views are taken
        IF known AND gets > 0 AND cur.max_views IS NOT NULL THEN
            SELECT u.expires_at, u.max_views, u.views INTO cur
              FROM uploads u WHERE u.id = pid FOR NO KEY UPDATE;

            known := FOUND;
        END IF;

        live := known
                AND (cur.expires_at IS NULL OR cur.expires_at > now());
        granted := 0;
        ahead := 0;

        IF live AND cur.max_views IS NOT NULL AND gets > 0 THEN
            granted := least(gets, greatest(cur.max_views - cur.views, 0));
            ahead := least(p_lease,
                           (cur.max_views - cur.views - granted) / 16);

            IF granted + ahead > 0 THEN
                UPDATE uploads AS u SET views = u.views + granted + ahead
                 WHERE u.id = pid;
            END IF;
        END IF;

        taken := 0;

        FOR o, counts IN
            SELECT t.o, t.c
              FROM unnest(p_ids, p_counts) WITH ORDINALITY AS t(id, c, o)
             WHERE t.id = pid ORDER BY t.o
        LOOP
            ord := o;
            state := 'gone';
            expires_at := NULL;
            max_views := NULL;
            views := NULL;
            leased := ahead;
            ahead := 0;

            IF known THEN
                expires_at := extract(epoch FROM cur.expires_at);
                max_views := cur.max_views;
                views := cur.views;
            END IF;

            IF NOT live THEN
                NULL;

            ELSIF cur.max_views IS NULL THEN
                state := 'ok';

            ELSIF counts THEN
                IF taken < granted THEN
                    taken := taken + 1;
                    views := cur.views + taken;
                    state := 'ok';
                END IF;

            ELSIF cur.views < cur.max_views THEN
                state := 'ok';
            END IF;

            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;

-- Views of files without a view limit, counted by each worker and sent
-- now and then.  Rows are locked in id order, so that two workers' batches
-- cannot deadlock.
CREATE FUNCTION bd_upload_views(p_ids text[], p_counts bigint[])
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM uploads u WHERE u.id = ANY (p_ids)
      ORDER BY u.id FOR NO KEY UPDATE;

    UPDATE uploads AS u SET views = u.views + t.n
      FROM unnest(p_ids, p_counts) AS t(id, n)
     WHERE u.id = t.id;
END
$$;

-- The sweep: a page of rows past their expiry or out of views, whose
-- files nginx removes before bd_upload_sweep_delete() removes the rows.
-- A crash between leaves rows that are refused anyway, and swept again.
CREATE FUNCTION bd_upload_sweep_list(p_limit integer)
    RETURNS TABLE (id text, category text, ext text)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT u.id, u.category, u.ext FROM uploads u
     WHERE (u.expires_at IS NOT NULL OR u.max_views IS NOT NULL)
       AND (u.expires_at <= now() OR u.views >= u.max_views)
     ORDER BY u.expires_at NULLS FIRST
     LIMIT p_limit;
END;

CREATE FUNCTION bd_upload_sweep_delete(p_ids text[])
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    n  bigint;
BEGIN
    -- in id order, as the views' functions lock them: no deadlock
    PERFORM 1 FROM uploads u WHERE u.id = ANY (p_ids)
      ORDER BY u.id FOR UPDATE;

    WITH gone AS (
        DELETE FROM uploads u
         WHERE u.id = ANY (p_ids)
           AND (u.expires_at <= now() OR u.views >= u.max_views)
        RETURNING u.user_id, u.size, u.id),
    refunded AS (
        -- in (user, shard) order, as the commit batch locks usage rows
        INSERT INTO usage AS s (user_id, shard, bytes, files)
        SELECT g.user_id, bd_usage_shard(g.id), sum(-g.size), -count(*)
          FROM gone g GROUP BY g.user_id, bd_usage_shard(g.id)
         ORDER BY 1, 2
        ON CONFLICT (user_id, shard)
        DO UPDATE SET bytes = s.bytes + excluded.bytes,
                      files = s.files + excluded.files)
    SELECT count(*) INTO n FROM gone;

    RETURN n;
END
$$;
