/*
 * BulletDrop: every SQL statement the module sends, in one place.
 */

#include "ngx_http_bulletdrop_sql.h"


/* a profile, in ngx_http_bulletdrop_user_read()'s order */
#define BD_USER_COLUMNS                                                       \
    " u.id, u.username, u.role, u.disabled, u.quota_bytes,"                   \
    " (SELECT coalesce(sum(s.bytes), 0)::bigint FROM usage s"                 \
    "   WHERE s.user_id = u.id),"                                             \
    " (SELECT coalesce(sum(s.files), 0)::bigint FROM usage s"                 \
    "   WHERE s.user_id = u.id),"                                             \
    " u.default_domain, bd_time(u.created_at), u.token_version "

/* and the password hash, for the statements that check a password */
#define BD_USER_COLUMNS_HASH  BD_USER_COLUMNS ", u.password_hash "

/* an upload, in NGX_HTTP_BULLETDROP_UPLOAD_*'s order */
#define BD_UPLOAD_COLUMNS                                                     \
    " p.id, p.name, p.ext, p.category, p.content_type, p.size, p.sha256,"     \
    " p.domain, bd_time(p.created_at), bd_time(p.expires_at), p.max_views,"   \
    " p.views "

#define BD_DOMAIN_COLUMNS  " name, enabled, bd_time(created_at) "

#define BD_KEY_COLUMNS                                                        \
    " id, name, prefix, bd_time(created_at), bd_time(last_used_at) "


const ngx_http_bulletdrop_sql_t
    ngx_http_bulletdrop_sql[NGX_HTTP_BULLETDROP_SQL_N] =
{
    /*
     * The last field says whether a statement may be sent again after a
     * broken connection: it reads, or writes what a second run leaves
     * the same (bd_user_by_key's last_used_at).
     */

    /* a real round trip through the pool, touching no table */
    [NGX_HTTP_BULLETDROP_SQL_HEALTH] = {
        "bd_health",
        "SELECT 1",
        0, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_USER_BY_NAME] = {
        "bd_user_by_name",
        "SELECT" BD_USER_COLUMNS_HASH "FROM users u"
        " WHERE lower(u.username) = lower($1::text)",
        1, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_USER_BY_ID] = {
        "bd_user_by_id",
        "SELECT" BD_USER_COLUMNS_HASH "FROM users u"
        " WHERE u.id = $1::bigint",
        1, 1
    },

    /*
     * last_used_at is written at most once a minute per key: a busy
     * uploader should not turn every request into a row update
     */
    [NGX_HTTP_BULLETDROP_SQL_USER_BY_KEY] = {
        "bd_user_by_key",
        "WITH k AS (SELECT id, user_id, last_used_at FROM api_keys"
        "           WHERE key_hash = $1::text),"
        " touched AS (UPDATE api_keys SET last_used_at = now() FROM k"
        "           WHERE api_keys.id = k.id"
        "             AND (k.last_used_at IS NULL"
        "                  OR k.last_used_at < now() - interval '1 minute'))"
        " SELECT" BD_USER_COLUMNS_HASH
        "  FROM users u JOIN k ON u.id = k.user_id",
        1, 1
    },

    /*
     * Before a registration's password is hashed: is the name taken, and
     * is the invite ($2, or NULL for none) one that can still be used?
     * The constraints settle races; this spares the hash.
     */
    [NGX_HTTP_BULLETDROP_SQL_REGISTER_CHECK] = {
        "bd_register_check",
        "SELECT EXISTS (SELECT 1 FROM users"
        "               WHERE lower(username) = lower($1::text)),"
        "       $2::text IS NULL"
        "       OR EXISTS (SELECT 1 FROM invites i"
        "                  WHERE i.code_hash = $2::text"
        "                    AND i.expires_at > now()"
        "                    AND NOT EXISTS (SELECT 1 FROM users u"
        "                                    WHERE u.invite_id = i.id))",
        2, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_REGISTER] = {
        "bd_register",
        "INSERT INTO users AS u (username, password_hash, quota_bytes)"
        " VALUES ($1::text, $2::text, $3::bigint)"
        " RETURNING" BD_USER_COLUMNS,
        3, 0
    },

    /* an invite names one user at most: users_invite_once */
    [NGX_HTTP_BULLETDROP_SQL_REGISTER_INVITED] = {
        "bd_register_invited",
        "INSERT INTO users AS u (username, password_hash, quota_bytes,"
        "                        invite_id)"
        " SELECT $1::text, $2::text, $3::bigint, i.id FROM invites i"
        "  WHERE i.code_hash = $4::text AND i.expires_at > now()"
        " RETURNING" BD_USER_COLUMNS,
        4, 0
    },

    /*
     * $2: a new password hash or NULL, $3: the hash it replaces (a
     * concurrent change wins, this one updates nothing); $4: whether to
     * set the default domain to $5
     */
    [NGX_HTTP_BULLETDROP_SQL_USER_UPDATE] = {
        "bd_user_update",
        "UPDATE users AS u SET"
        " password_hash = coalesce($2::text, u.password_hash),"
        " token_version = u.token_version"
        "                 + CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END,"
        " default_domain = CASE WHEN $4::boolean THEN $5::text"
        "                  ELSE u.default_domain END"
        " WHERE u.id = $1::bigint"
        "   AND ($2::text IS NULL OR u.password_hash = $3::text)"
        " RETURNING" BD_USER_COLUMNS,
        5, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_KEY_CREATE] = {
        "bd_key_create",
        "INSERT INTO api_keys (user_id, name, key_hash, prefix)"
        " SELECT $1::bigint, $2::text, $3::text, $4::text"
        "  WHERE (SELECT count(*) FROM api_keys WHERE user_id = $1::bigint)"
        "        < 100"
        " RETURNING" BD_KEY_COLUMNS,
        4, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_KEY_LIST] = {
        "bd_key_list",
        "SELECT" BD_KEY_COLUMNS "FROM api_keys WHERE user_id = $1::bigint"
        " ORDER BY id",
        1, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_KEY_DELETE] = {
        "bd_key_delete",
        "DELETE FROM api_keys WHERE user_id = $1::bigint AND id = $2::bigint"
        " RETURNING id",
        2, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_INVITE_CREATE] = {
        "bd_invite_create",
        "INSERT INTO invites (code_hash, created_by, expires_at)"
        " VALUES ($1::text, $2::bigint,"
        "         now() + make_interval(secs => $3::bigint))"
        " RETURNING id, bd_time(expires_at)",
        3, 0
    },

    /* the codes are not kept: only when and by whom */
    [NGX_HTTP_BULLETDROP_SQL_INVITE_LIST] = {
        "bd_invite_list",
        "SELECT i.id, bd_time(i.created_at), bd_time(i.expires_at),"
        "       c.username, u.username"
        "  FROM invites i"
        "  LEFT JOIN users c ON c.id = i.created_by"
        "  LEFT JOIN users u ON u.invite_id = i.id"
        " ORDER BY i.id DESC LIMIT $1::bigint",
        1, 1
    },

    /* a used invite stays, to say who came in by it */
    [NGX_HTTP_BULLETDROP_SQL_INVITE_DELETE] = {
        "bd_invite_delete",
        "DELETE FROM invites i WHERE i.id = $1::bigint"
        "   AND NOT EXISTS (SELECT 1 FROM users WHERE invite_id = i.id)"
        " RETURNING i.id",
        1, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_ADMIN_USERS] = {
        "bd_admin_users",
        "SELECT" BD_USER_COLUMNS "FROM users u WHERE u.id > $1::bigint"
        " ORDER BY u.id LIMIT $2::bigint",
        2, 1
    },

    /* NULLs leave role and disabled alone; $4: whether to set the quota */
    [NGX_HTTP_BULLETDROP_SQL_ADMIN_USER_UPDATE] = {
        "bd_admin_user_update",
        "UPDATE users AS u SET"
        " role = coalesce($2::text, u.role),"
        " disabled = coalesce($3::boolean, u.disabled),"
        " quota_bytes = CASE WHEN $4::boolean THEN $5::bigint"
        "               ELSE u.quota_bytes END"
        " WHERE u.id = $1::bigint"
        " RETURNING" BD_USER_COLUMNS,
        5, 0
    },

    /*
     * Rows and their owners' usage, a batch of uploads in one statement
     * (src/ngx_http_bulletdrop_commit.c, sql/006_commit_batch.sql), each
     * credential checked again.  Arrays, an upload at each index: $1 ids,
     * $2 users, $3 names, $4 exts, $5 categories, $6 content types, $7
     * sizes, $8 sha256, $9 delete token hashes, $10 the times (epoch
     * seconds) after which nginx may have given up on each: a statement
     * that a frozen or swamped server runs later inserts nothing, so that
     * a 503 never leaves a row behind; $11 API key hashes or NULL, $12
     * JWT token versions or NULL; $13 the links' domains, $14 expiry
     * times (epoch seconds) and $15 view limits, each NULL for none
     * (sql/007_domains.sql).
     */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_INSERT] = {
        "bd_upload_insert",
        "SELECT * FROM bd_upload_commit_batch($1::text[], $2::bigint[],"
        "    $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],"
        "    $8::text[], $9::text[], $10::double precision[], $11::text[],"
        "    $12::bigint[], $13::text[], $14::double precision[],"
        "    $15::integer[])",
        NGX_HTTP_BULLETDROP_UPLOAD_INSERT_NARGS, 0
    },

    /*
     * Newest first, before the upload $2 (NULL: from the newest).  A $2
     * that is not the user's gives one row of NULLs instead, so that one
     * round trip tells a bad cursor from an empty page.
     */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_LIST] = {
        "bd_upload_list",
        "WITH b AS (SELECT seq FROM uploads"
        "           WHERE id = $2::text AND user_id = $1::bigint)"
        " (SELECT" BD_UPLOAD_COLUMNS ", p.delete_token_hash FROM uploads p"
        "   WHERE p.user_id = $1::bigint"
        "     AND ($2::text IS NULL OR p.seq < (SELECT seq FROM b))"
        "   ORDER BY p.seq DESC LIMIT $3::bigint)"
        " UNION ALL"
        " SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        "        NULL, NULL, NULL"
        "  WHERE $2::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM b)",
        3, 1
    },

    /* $3: the asker is an admin and may see anyone's */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_GET] = {
        "bd_upload_get",
        "SELECT" BD_UPLOAD_COLUMNS ", p.delete_token_hash FROM uploads p"
        " WHERE p.id = $1::text AND (p.user_id = $2::bigint OR $3::boolean)",
        3, 1
    },

    /* the row goes and its owner's usage with it (its file went first) */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_DELETE] = {
        "bd_upload_delete",
        "WITH gone AS ("
        "  DELETE FROM uploads"
        "   WHERE id = $1::text AND (user_id = $2::bigint OR $3::boolean)"
        "  RETURNING user_id, size, category, id, ext),"
        " refunded AS ("
        "  INSERT INTO usage AS s (user_id, shard, bytes, files)"
        "  SELECT user_id, bd_usage_shard(id), -size, -1 FROM gone"
        "  ON CONFLICT (user_id, shard)"
        "  DO UPDATE SET bytes = s.bytes + excluded.bytes,"
        "                files = s.files + excluded.files)"
        " SELECT category, id, ext FROM gone",
        3, 0
    },

    /*
     * Sent as a plain query, once per connect, by the pool itself; the
     * triggers of sql/005_notify.sql say on this channel what changed
     */
    [NGX_HTTP_BULLETDROP_SQL_LISTEN] = {
        "bd_listen",
        "LISTEN bulletdrop",
        0, 1
    },

    /* a delete link's upload, and its owner after the usual columns */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_BY_TOKEN] = {
        "bd_upload_by_token",
        "SELECT" BD_UPLOAD_COLUMNS ", p.user_id FROM uploads p"
        " WHERE p.delete_token_hash = $1::text",
        1, 1
    },

    /*
     * Views of files with an expiry or a view limit, a worker's waiting
     * requests at once: $1 ids, $2 whether each uses a view (a GET), $3
     * how many views to take ahead where many are left
     */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEW] = {
        "bd_upload_view",
        "SELECT ord, state, expires_at, max_views, views, leased"
        " FROM bd_upload_view_batch($1::text[], $2::boolean[],"
        "                           $3::integer)",
        3, 0
    },

    /* views counted by a worker: ids and counts */
    [NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEWS] = {
        "bd_upload_views",
        "SELECT bd_upload_views($1::text[], $2::bigint[])",
        2, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_SWEEP_LIST] = {
        "bd_sweep_list",
        "SELECT id, category, ext FROM bd_upload_sweep_list($1::integer)",
        1, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_SWEEP_DELETE] = {
        "bd_sweep_delete",
        "SELECT bd_upload_sweep_delete($1::text[])",
        1, 1
    },

    /* $1: the disabled ones too */
    [NGX_HTTP_BULLETDROP_SQL_DOMAIN_LIST] = {
        "bd_domain_list",
        "SELECT" BD_DOMAIN_COLUMNS "FROM domains"
        " WHERE enabled OR $1::boolean ORDER BY created_at, name",
        1, 1
    },

    [NGX_HTTP_BULLETDROP_SQL_DOMAIN_ADD] = {
        "bd_domain_add",
        "INSERT INTO domains (name, enabled)"
        " VALUES ($1::text, coalesce($2::boolean, true))"
        " RETURNING" BD_DOMAIN_COLUMNS,
        2, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_DOMAIN_UPDATE] = {
        "bd_domain_update",
        "UPDATE domains SET enabled = $2::boolean WHERE name = $1::text"
        " RETURNING" BD_DOMAIN_COLUMNS,
        2, 0
    },

    [NGX_HTTP_BULLETDROP_SQL_DOMAIN_DELETE] = {
        "bd_domain_delete",
        "DELETE FROM domains WHERE name = $1::text RETURNING name",
        1, 0
    },

    /*
     * The names $1 that are not there yet, in their order; then every
     * domain (the new rows are not in the statement's snapshot)
     */
    [NGX_HTTP_BULLETDROP_SQL_DOMAIN_SEED] = {
        "bd_domain_seed",
        "WITH added AS ("
        "  INSERT INTO domains (name)"
        "  SELECT t.name FROM unnest($1::text[]) WITH ORDINALITY"
        "                     AS t(name, o) ORDER BY t.o"
        "  ON CONFLICT (name) DO NOTHING"
        "  RETURNING" BD_DOMAIN_COLUMNS ", created_at AS t)"
        " SELECT name, enabled, bd_time, t FROM ("
        "  SELECT name, enabled, bd_time, t FROM added"
        "  UNION ALL"
        "  SELECT" BD_DOMAIN_COLUMNS ", created_at FROM domains) d"
        " ORDER BY t, name",
        1, 0
    },
};
