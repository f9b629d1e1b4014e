/*
 * BulletDrop: who is asking.  Bearer tokens are JWTs (HS256, minted at
 * login) or API keys ("bd_..."); either way the user's row is read on
 * every request, so a disabled user or a revoked key stops at once.
 */

#ifndef _NGX_HTTP_BULLETDROP_AUTH_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_AUTH_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "ngx_http_bulletdrop_metrics.h"


/* "bd_" and 32 random bytes in base64url */
#define NGX_HTTP_BULLETDROP_KEY_PREFIX      "bd_"
#define NGX_HTTP_BULLETDROP_KEY_BYTES       32
/* what a list shows of a key: the prefix and 8 characters */
#define NGX_HTTP_BULLETDROP_KEY_SHOWN       11
#define NGX_HTTP_BULLETDROP_INVITE_BYTES    16

/* hex SHA-256 and its NUL */
#define NGX_HTTP_BULLETDROP_HASH_HEX_LEN    65


/*
 * Authenticates the request from its Authorization header into ctx->user
 * and runs next; refuses with 401/403 JSON otherwise.  Returns what a
 * content handler returns.
 */
ngx_int_t ngx_http_bulletdrop_auth_request(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next);

/*
 * An access token for the user, valid until expires; NGX_ERROR when libjwt
 * fails.  since: for a browser session, when its user signed in (the "sat"
 * claim, which its renewals keep); 0 for none.
 */
ngx_int_t ngx_http_bulletdrop_jwt_issue(ngx_http_request_t *r,
    ngx_http_bulletdrop_user_t *user, time_t since, time_t expires,
    ngx_str_t *token);

/*
 * A random secret: prefix + base64url of n bytes from OpenSSL, and the hex
 * SHA-256 under which it is stored (NGX_HTTP_BULLETDROP_HASH_HEX_LEN).
 */
ngx_int_t ngx_http_bulletdrop_secret_new(ngx_pool_t *pool,
    const char *prefix, size_t n, ngx_str_t *secret, char *hash);

/* bytes of an upload's delete token (32 characters of base64url) */
#define NGX_HTTP_BULLETDROP_DELETE_BYTES  24

/*
 * The delete token of the upload id (derived from it with the JWT
 * secret), and the hex SHA-256 under which it is stored
 */
ngx_int_t ngx_http_bulletdrop_delete_token(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *token, char *hash);

void ngx_http_bulletdrop_sha256_hex(const u_char *data, size_t len,
    char *hex);

/*
 * A refused credential, counted and logged in one line that fail2ban
 * reads (nginx-conf/fail2ban/):
 *
 *     bulletdrop: auth failed: <kind>[ for "<user>"], client: <address>,
 *     server: <server_name>
 *
 * kind: password, token, api_key, session, expired, invite,
 * login_limited.  user: NULL for none; a name no user can have is logged
 * as "an invalid name".
 */
void ngx_http_bulletdrop_auth_failed(ngx_http_request_t *r,
    ngx_http_bulletdrop_auth_failed_e kind, ngx_str_t *user);
void ngx_http_bulletdrop_auth_limited(ngx_http_request_t *r, ngx_str_t *user);

/* reads one row of a statement that selects the user columns */
ngx_int_t ngx_http_bulletdrop_user_read(ngx_pool_t *pool, PGresult *res,
    int row, ngx_http_bulletdrop_user_t *user);

/* the profile a client sees: no password hash, no token version */
json_t *ngx_http_bulletdrop_user_json(ngx_http_bulletdrop_user_t *user);

/* bulletdrop_jwt_secret_file: the key is read now, at configuration time */
char *ngx_http_bulletdrop_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_BULLETDROP_AUTH_H_INCLUDED_ */
