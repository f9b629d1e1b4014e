-- The sweep's page in time with the page, not with the table.
--
-- 007 listed due rows with one condition, `expired OR out of views`,
-- ordered by expiry with NULLs first: no index serves that order or that
-- OR, so with many rows due PostgreSQL read the whole table and sorted it
-- for every page (a million expired rows: 1.1 s for a page of 200).  Each
-- kind is now an index range of its own, cut at the page:
--
--   expired      uploads_limited (007), `expires_at <= now()`, oldest first
--   out of views uploads_spent (below), the rows it holds, in upload order
--
-- and a page takes turns between the two, so that neither kind starves
-- the other: half a page each while both wait, the rest from either when
-- one runs short.  A row both expired and out of views comes once.  Each
-- side reads at most p_limit rows, whatever the plan's estimate of the
-- limit (a prepared statement's generic plan does not know it).
--
-- The price: `views` is now in an index's condition, so an update of a
-- row's views is no longer a HOT update; it adds an entry to each of the
-- table's indexes.  Views are written in batches (a worker's counts once
-- a second, one row per file; leased views one update per batch), so this
-- costs per file and second, not per request; bench/README.md has the
-- figures.  No statement of this file rewrites the table: it takes a
-- share lock for as long as the index build (writes wait, reads do not).

CREATE INDEX uploads_spent ON uploads (seq)
    WHERE max_views IS NOT NULL AND views >= max_views;

-- As in 007: a page of rows past their expiry or out of views, whose files
-- nginx removes before bd_upload_sweep_delete() removes the rows.  The
-- module sends `SELECT id, category, ext FROM bd_upload_sweep_list($1)`;
-- PostgreSQL inlines this body into that statement.
CREATE OR REPLACE FUNCTION bd_upload_sweep_list(p_limit integer)
    RETURNS TABLE (id text, category text, ext text)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT d.id, d.category, d.ext
      FROM ((SELECT u.id, u.category, u.ext,
                    row_number() OVER (ORDER BY u.expires_at) AS turn
               FROM uploads u
              WHERE u.expires_at <= now()
              ORDER BY u.expires_at
              LIMIT p_limit)
            UNION ALL
            (SELECT u.id, u.category, u.ext,
                    row_number() OVER (ORDER BY u.seq) AS turn
               FROM uploads u
              WHERE u.max_views IS NOT NULL AND u.views >= u.max_views
              ORDER BY u.seq
              LIMIT p_limit)) AS d
     GROUP BY d.id, d.category, d.ext
     ORDER BY min(d.turn)
     LIMIT p_limit;
END;
