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
    NGX_HTTP_BULLETDROP_SQL_ADMIN_USERS,
    NGX_HTTP_BULLETDROP_SQL_ADMIN_USER_UPDATE,
    NGX_HTTP_BULLETDROP_SQL_N
} ngx_http_bulletdrop_sql_e;


/*
 * The columns of every statement that returns users, in this order (see
 * ngx_http_bulletdrop_user_read()).
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

/* the unique constraints whose violations are answered, not logged */
#define NGX_HTTP_BULLETDROP_SQL_USERNAME_TAKEN  "users_username_key"
#define NGX_HTTP_BULLETDROP_SQL_INVITE_USED     "users_invite_once"


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
