-- The sweep on several servers: a page is claimed, not only listed.
--
-- The first worker of each nginx sweeps (008: a page of due rows listed,
-- their files removed, then the rows with bd_upload_sweep_delete()).  Two
-- servers on one database listed the same page and removed the same
-- files, each racing the other (with a bucket: the same DELETE twice).
-- bd_upload_sweep_list() now claims the rows it lists, in the statement
-- that lists them: it locks them (FOR NO KEY UPDATE SKIP LOCKED) and sets
-- their `sweep_claimed_until`, and both kinds of its page skip the rows
-- whose claim has not run out.  So a second server gets the next rows:
--
--   - one calling at the same moment skips the rows the first has locked
--     (SKIP LOCKED: it does not wait for them) and takes the next ones of
--     each index range;
--   - one calling later skips the rows the first claimed, whose files it
--     is removing;
--   - a row locked by a statement that then found it claimed by a commit
--     meanwhile is dropped (PostgreSQL checks the locked row's newest
--     version against the conditions again).
--
-- The module sends `SELECT id, category, ext FROM bd_upload_sweep_list($1)`
-- in autocommit: the claim commits with the list, before any file goes,
-- and lasts while the files go and bd_upload_sweep_delete() removes the
-- rows (it does not look at claims).  A claim lasts five minutes (the
-- constant below): a server that dies between the list and the delete, or
-- whose files could not go, leaves rows that are listed again five
-- minutes on, where before they came back at the next round.  A page takes
-- a few milliseconds; five minutes also covers a page of deletes to a slow
-- bucket.  A clock does not matter: claims are set and read in the
-- database's time.
--
-- A row is due for the sweep as before (expired, or out of views); the
-- claim says who is sweeping it, not whether it is due: bulletdrop-backup
-- and fsck ignore it.  The column is NULL until a sweep lists the row,
-- and in no index: setting it can be a HOT update, and the sweep's index
-- ranges (uploads_limited, uploads_spent, 008) stay as they were.  Where
-- the row's page is full it is not: a new version and an entry in each of
-- the table's five indexes, about 20 buffers a row, 5 ms a page of 200
-- (t/084), next to the page's reads and locks (1 ms).  ADD
-- COLUMN without a default does not rewrite the table: it takes an access
-- exclusive lock on uploads for a moment.

ALTER TABLE uploads ADD COLUMN sweep_claimed_until timestamptz;

-- As in 008, from the rows no other sweep holds, and claimed.  A row both
-- expired and out of views is locked by both sides, once listed.  Rows a
-- side locked beyond the page are not claimed; their locks go with the
-- statement's transaction.  VOLATILE, as it writes: PostgreSQL no longer
-- inlines it, and plans its statement at each call without p_limit's
-- value (each side still stops at p_limit rows it could lock).
CREATE OR REPLACE FUNCTION bd_upload_sweep_list(p_limit integer)
    RETURNS TABLE (id text, category text, ext text)
    LANGUAGE sql VOLATILE
BEGIN ATOMIC
    WITH expired AS (
        SELECT u.id, u.expires_at
          FROM uploads u
         WHERE u.expires_at <= now()
           AND (u.sweep_claimed_until IS NULL
                OR u.sweep_claimed_until <= now())
         ORDER BY u.expires_at
         LIMIT p_limit
           FOR NO KEY UPDATE SKIP LOCKED),
    spent AS (
        SELECT u.id, u.seq
          FROM uploads u
         WHERE u.max_views IS NOT NULL AND u.views >= u.max_views
           AND (u.sweep_claimed_until IS NULL
                OR u.sweep_claimed_until <= now())
         ORDER BY u.seq
         LIMIT p_limit
           FOR NO KEY UPDATE SKIP LOCKED),
    page AS (
        SELECT d.id, min(d.turn) AS turn
          FROM ((SELECT e.id,
                        row_number() OVER (ORDER BY e.expires_at) AS turn
                   FROM expired e)
                UNION ALL
                (SELECT s.id, row_number() OVER (ORDER BY s.seq) AS turn
                   FROM spent s)) AS d
         GROUP BY d.id
         ORDER BY min(d.turn)
         LIMIT p_limit),
    claimed AS (
        UPDATE uploads u
           SET sweep_claimed_until = now() + interval '5 minutes'
         WHERE u.id = ANY (ARRAY(SELECT p.id FROM page p))
        RETURNING u.id, u.category, u.ext)
    SELECT c.id, c.category, c.ext
      FROM claimed c
      JOIN page p ON p.id = c.id
     ORDER BY p.turn, p.id;
END;
