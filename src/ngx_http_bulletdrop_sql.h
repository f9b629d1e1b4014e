/*
 * BulletDrop: every SQL statement the module sends, in one place.
 *
 * Each is prepared once per connection, on first use, and only ever
 * executed with parameters: no SQL is built from input.
 */

#ifndef _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_HTTP_BULLETDROP_SQL_HEALTH = 0,
    NGX_HTTP_BULLETDROP_SQL_USER_BY_NAME,
    NGX_HTTP_BULLETDROP_SQL_USER_BY_ID,
    NGX_HTTP_BULLETDROP_SQL_USER_BY_KEY,
    NGX_HTTP_BULLETDROP_SQL_REGISTER_CHECK,
    NGX_HTTP_BULLETDROP_SQL_REGISTER,
    NGX_HTTP_BULLETDROP_SQL_REGISTER_INVITED,
    NGX_HTTP_BULLETDROP_SQL_USER_UPDATE,
    NGX_HTTP_BULLETDROP_SQL_KEY_CREATE,
    NGX_HTTP_BULLETDROP_SQL_KEY_LIST,
    NGX_HTTP_BULLETDROP_SQL_KEY_DELETE,
    NGX_HTTP_BULLETDROP_SQL_INVITE_CREATE,
    NGX_HTTP_BULLETDROP_SQL_INVITE_LIST,
    NGX_HTTP_BULLETDROP_SQL_INVITE_DELETE,
    NGX_HTTP_BULLETDROP_SQL_ADMIN_USERS,
    NGX_HTTP_BULLETDROP_SQL_ADMIN_USER_UPDATE,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_INSERT,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_LIST,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_GET,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_DELETE,
    NGX_HTTP_BULLETDROP_SQL_LISTEN,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_BY_TOKEN,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEW,
    NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEWS,
    NGX_HTTP_BULLETDROP_SQL_SWEEP_LIST,
    NGX_HTTP_BULLETDROP_SQL_SWEEP_DELETE,
    NGX_HTTP_BULLETDROP_SQL_DOMAIN_LIST,
    NGX_HTTP_BULLETDROP_SQL_DOMAIN_ADD,
    NGX_HTTP_BULLETDROP_SQL_DOMAIN_UPDATE,
    NGX_HTTP_BULLETDROP_SQL_DOMAIN_DELETE,
    NGX_HTTP_BULLETDROP_SQL_DOMAIN_SEED,
    NGX_HTTP_BULLETDROP_SQL_N
} ngx_http_bulletdrop_sql_e;


/*
 * The columns of the rows each statement returns, read with the db_*
 * readers of db.h, and the parameters of those filled by index.  A set
 * shared by several statements is named for what it holds (USER, UPLOAD,
 * DOMAIN); any other for its statement, NGX_HTTP_BULLETDROP_
 * <STATEMENT>_<COLUMN>.  Each follows the statement's order in sql.c.
 */

/* bd_health: one column, the 1 it selects */
enum {
    NGX_HTTP_BULLETDROP_HEALTH_ONE = 0,
    NGX_HTTP_BULLETDROP_HEALTH_NCOLUMNS
};

/*
 * A user, as bd_user_by_name, bd_user_by_id, bd_user_by_key,
 * bd_register, bd_register_invited, bd_user_update, bd_admin_users and
 * bd_admin_user_update return them (see ngx_http_bulletdrop_user_read()).
 * Only the first three select the password hash: the others end before
 * it, with PASSWORD_HASH columns.
 */
enum {
    NGX_HTTP_BULLETDROP_USER_ID = 0,
    NGX_HTTP_BULLETDROP_USER_USERNAME,
    NGX_HTTP_BULLETDROP_USER_ROLE,
    NGX_HTTP_BULLETDROP_USER_DISABLED,
    NGX_HTTP_BULLETDROP_USER_QUOTA,
    NGX_HTTP_BULLETDROP_USER_USAGE_BYTES,
    NGX_HTTP_BULLETDROP_USER_USAGE_FILES,
    NGX_HTTP_BULLETDROP_USER_DEFAULT_DOMAIN,
    NGX_HTTP_BULLETDROP_USER_CREATED_AT,
    NGX_HTTP_BULLETDROP_USER_TOKEN_VERSION,
    NGX_HTTP_BULLETDROP_USER_PASSWORD_HASH,
    NGX_HTTP_BULLETDROP_USER_NCOLUMNS
};

/* bd_register_check: is the name taken; is the invite (if any) usable */
enum {
    NGX_HTTP_BULLETDROP_REGISTER_CHECK_TAKEN = 0,
    NGX_HTTP_BULLETDROP_REGISTER_CHECK_INVITE_OK,
    NGX_HTTP_BULLETDROP_REGISTER_CHECK_NCOLUMNS
};

/* bd_key_list's API keys, and the one bd_key_create returns */
enum {
    NGX_HTTP_BULLETDROP_KEY_LIST_ID = 0,
    NGX_HTTP_BULLETDROP_KEY_LIST_NAME,
    NGX_HTTP_BULLETDROP_KEY_LIST_PREFIX,
    NGX_HTTP_BULLETDROP_KEY_LIST_CREATED_AT,
    /* NULL: never used */
    NGX_HTTP_BULLETDROP_KEY_LIST_LAST_USED_AT,
    NGX_HTTP_BULLETDROP_KEY_LIST_NCOLUMNS
};

/* bd_key_delete: the key deleted, no row when there was none */
enum {
    NGX_HTTP_BULLETDROP_KEY_DELETE_ID = 0,
    NGX_HTTP_BULLETDROP_KEY_DELETE_NCOLUMNS
};

/* bd_invite_create */
enum {
    NGX_HTTP_BULLETDROP_INVITE_CREATE_ID = 0,
    NGX_HTTP_BULLETDROP_INVITE_CREATE_EXPIRES_AT,
    NGX_HTTP_BULLETDROP_INVITE_CREATE_NCOLUMNS
};

/* bd_invite_list: the newest invites, who made them, who used them */
enum {
    NGX_HTTP_BULLETDROP_INVITE_LIST_ID = 0,
    NGX_HTTP_BULLETDROP_INVITE_LIST_CREATED_AT,
    NGX_HTTP_BULLETDROP_INVITE_LIST_EXPIRES_AT,
    /* NULL: the user is gone */
    NGX_HTTP_BULLETDROP_INVITE_LIST_CREATED_BY,
    /* NULL: not used yet */
    NGX_HTTP_BULLETDROP_INVITE_LIST_USED_BY,
    NGX_HTTP_BULLETDROP_INVITE_LIST_NCOLUMNS
};

/* bd_invite_delete: the invite, when it was there and unused */
enum {
    NGX_HTTP_BULLETDROP_INVITE_DELETE_ID = 0,
    NGX_HTTP_BULLETDROP_INVITE_DELETE_NCOLUMNS
};

/*
 * An upload, as bd_upload_list, bd_upload_get, bd_upload_by_token and
 * bd_upload_insert return them, each maybe with columns of its own after
 * these
 */
enum {
    NGX_HTTP_BULLETDROP_UPLOAD_ID = 0,
    NGX_HTTP_BULLETDROP_UPLOAD_NAME,
    NGX_HTTP_BULLETDROP_UPLOAD_EXT,
    NGX_HTTP_BULLETDROP_UPLOAD_CATEGORY,
    NGX_HTTP_BULLETDROP_UPLOAD_CONTENT_TYPE,
    NGX_HTTP_BULLETDROP_UPLOAD_SIZE,
    NGX_HTTP_BULLETDROP_UPLOAD_SHA256,
    NGX_HTTP_BULLETDROP_UPLOAD_DOMAIN,
    NGX_HTTP_BULLETDROP_UPLOAD_CREATED_AT,
    NGX_HTTP_BULLETDROP_UPLOAD_EXPIRES_AT,
    NGX_HTTP_BULLETDROP_UPLOAD_MAX_VIEWS,
    NGX_HTTP_BULLETDROP_UPLOAD_VIEWS,
    NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS
};

/*
 * bd_upload_insert's parameters, an array each with an upload at each
 * index (ngx_http_bulletdrop_commit_t's fields); see sql.c
 */
enum {
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_ID = 0,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_USER,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_NAME,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_EXT,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_CATEGORY,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_CONTENT_TYPE,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_SIZE,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_SHA256,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_DELETE_HASH,
    /* epoch seconds after which the row must not be written */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_DEADLINE,
    /* the API key's hash, or NULL */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_KEY,
    /* the JWT's token version, or NULL */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_VERSION,
    /* the link's domain, epoch seconds of expiry, view limit: NULL, none */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_DOMAIN,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_EXPIRES,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_MAX_VIEWS,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_NARGS
};

/* bd_upload_insert's rows: an upload's columns, then these */
enum {
    /* why no row was written (quota, credential...), NULL: it was */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_REFUSED =
                                          NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS,
    /* the upload's index in the arrays, from 1 */
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ORD,
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_NCOLUMNS
};

/* bd_upload_delete: where the file of the row deleted was */
enum {
    NGX_HTTP_BULLETDROP_UPLOAD_DELETE_CATEGORY = 0,
    NGX_HTTP_BULLETDROP_UPLOAD_DELETE_ID,
    NGX_HTTP_BULLETDROP_UPLOAD_DELETE_EXT,
    NGX_HTTP_BULLETDROP_UPLOAD_DELETE_NCOLUMNS
};

/* bd_upload_list and bd_upload_get: an upload's columns, then these */
enum {
    /* to tell whether the token derived from its id is its own */
    NGX_HTTP_BULLETDROP_UPLOAD_LISTED_DELETE_HASH =
                                          NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS,
    NGX_HTTP_BULLETDROP_UPLOAD_LISTED_NCOLUMNS
};

/* bd_upload_by_token: an upload's columns, then its owner */
enum {
    NGX_HTTP_BULLETDROP_UPLOAD_BY_TOKEN_USER_ID =
                                          NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS,
    NGX_HTTP_BULLETDROP_UPLOAD_BY_TOKEN_NCOLUMNS
};

/* bd_upload_view: a row per file asked about (sql/007_domains.sql) */
enum {
    /* the file's index in the arrays, from 1 */
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_ORD = 0,
    /* "ok", or why the file cannot be served */
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_STATE,
    /* epoch seconds (double precision: db_msec()), NULL: never */
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_EXPIRES_AT,
    /* NULL: no limit */
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_MAX_VIEWS,
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_VIEWS,
    /* views taken ahead for the worker's later requests */
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_LEASED,
    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_NCOLUMNS
};

/* bd_upload_views returns one row of void: nothing to read */

/* bd_sweep_list: where each file to sweep is */
enum {
    NGX_HTTP_BULLETDROP_SWEEP_LIST_ID = 0,
    NGX_HTTP_BULLETDROP_SWEEP_LIST_CATEGORY,
    NGX_HTTP_BULLETDROP_SWEEP_LIST_EXT,
    NGX_HTTP_BULLETDROP_SWEEP_LIST_NCOLUMNS
};

/* bd_sweep_delete: one row, the rows deleted */
enum {
    NGX_HTTP_BULLETDROP_SWEEP_DELETE_COUNT = 0,
    NGX_HTTP_BULLETDROP_SWEEP_DELETE_NCOLUMNS
};

/*
 * A domain, as bd_domain_list, bd_domain_add, bd_domain_update and
 * bd_domain_seed return them (the seed's with its sort key after)
 */
enum {
    NGX_HTTP_BULLETDROP_DOMAIN_NAME = 0,
    NGX_HTTP_BULLETDROP_DOMAIN_ENABLED,
    NGX_HTTP_BULLETDROP_DOMAIN_CREATED_AT,
    NGX_HTTP_BULLETDROP_DOMAIN_NCOLUMNS
};

/* bd_domain_delete: the domain deleted, no row when there was none */
enum {
    NGX_HTTP_BULLETDROP_DOMAIN_DELETE_NAME = 0,
    NGX_HTTP_BULLETDROP_DOMAIN_DELETE_NCOLUMNS
};

/* the unique constraints whose violations are answered, not logged */
#define NGX_HTTP_BULLETDROP_SQL_USERNAME_TAKEN  "users_username_key"
#define NGX_HTTP_BULLETDROP_SQL_INVITE_USED     "users_invite_once"
#define NGX_HTTP_BULLETDROP_SQL_DOMAIN_TAKEN    "domains_pkey"


typedef struct {
    const char  *name;
    const char  *sql;
    int          nparams;
    /* has no effect when run twice: may be resent after a broken connection */
    unsigned     read_only:1;
} ngx_http_bulletdrop_sql_t;


extern const ngx_http_bulletdrop_sql_t
    ngx_http_bulletdrop_sql[NGX_HTTP_BULLETDROP_SQL_N];


#endif /* _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_ */
