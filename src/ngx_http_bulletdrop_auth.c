/*
 * BulletDrop: who is asking.
 *
 * A JWT is checked here (signature, algorithm, expiry) before the
 * database is asked anything; its "ver" must still match the user's
 * token_version, which a password change bumps.  An API key is looked up
 * by its SHA-256: it carries 256 random bits, so a fast hash is enough.
 */

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_authcache.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_session.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_text.h"


/* an upload id, longer than ours will ever be */
#define NGX_HTTP_BULLETDROP_ID_MAX  64

/* no token of ours comes near it; longer ones are not even parsed */
#define NGX_HTTP_BULLETDROP_TOKEN_MAX  2048


struct ngx_http_bulletdrop_auth_s {
    ngx_http_bulletdrop_step_pt     next;
    /* the JWT's "ver", or -1 for an API key */
    int64_t                         version;
};


static void ngx_http_bulletdrop_auth_log(ngx_http_request_t *r,
    ngx_uint_t level, const char *kind, ngx_str_t *user);
static u_char *ngx_http_bulletdrop_auth_log_tail(ngx_log_t *log, u_char *buf,
    size_t len);
static ngx_int_t ngx_http_bulletdrop_auth_token(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *token);
static ngx_int_t ngx_http_bulletdrop_auth_passed(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next);
static ngx_int_t ngx_http_bulletdrop_auth_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t err, const char *detail);
static ngx_int_t ngx_http_bulletdrop_jwt_verify(ngx_http_request_t *r,
    ngx_str_t *token, int64_t *id, int64_t *version, time_t *exp,
    time_t *since, const char **err);
static ngx_int_t ngx_http_bulletdrop_auth_cred(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *hash, int64_t id,
    int64_t version);
static void ngx_http_bulletdrop_auth_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);


ngx_int_t
ngx_http_bulletdrop_auth_request(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next)
{
    char                              hash[NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    int64_t                           id, version;
    time_t                            exp;
    ngx_int_t                         rc;
    ngx_str_t                         token;
    const char                       *err;
    ngx_http_bulletdrop_auth_t       *auth;
    ngx_http_bulletdrop_db_query_t   *q;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    rc = ngx_http_bulletdrop_auth_token(r, ctx, &token);
    if (rc != NGX_OK) {
        return rc;
    }

    auth = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_auth_t));
    if (auth == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    auth->next = next;

    /* a session is a JWT; an API key never goes in a cookie */
    if (!ctx->session
        && token.len > sizeof(NGX_HTTP_BULLETDROP_KEY_PREFIX) - 1
        && ngx_strncmp(token.data, NGX_HTTP_BULLETDROP_KEY_PREFIX,
                       sizeof(NGX_HTTP_BULLETDROP_KEY_PREFIX) - 1) == 0)
    {
        auth->version = -1;
        ctx->api_key = token;
        ngx_http_bulletdrop_sha256_hex(token.data, token.len, hash);

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop auth: an API key");

        if (ngx_http_bulletdrop_auth_cred(r, ctx, hash, 0, 0) == NGX_OK) {
            return ngx_http_bulletdrop_auth_passed(r, ctx, next);
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop auth: looking up the key");

        q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_USER_BY_KEY,
                                      ngx_http_bulletdrop_auth_done);
        if (q == NULL
            || ngx_http_bulletdrop_query_param(q, 0, hash) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        if (ngx_http_bulletdrop_jwt_verify(r, &token, &id, &version, &exp,
                                           &ctx->session_since, &err)
            != NGX_OK)
        {
            return ngx_http_bulletdrop_auth_refuse(r, ctx,
                       err ? BD_ERR_TOKEN_EXPIRED : BD_ERR_INVALID_TOKEN,
                       err);
        }

        auth->version = version;

        /*
         * a session lasts while it is used, renewed past half its life,
         * up to a limit from its sign-in: a stolen cookie does not live
         * for ever by being used
         */
        ctx->session_renew = ctx->session
                             && exp - ngx_time() < bmcf->jwt_ttl / 2
                             && ctx->session_since > 0
                             && ngx_time() - ctx->session_since
                                < NGX_HTTP_BULLETDROP_SESSION_MAX;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop auth: a valid JWT of user #%L, "
                       "version %L", id, version);

        if (ngx_http_bulletdrop_auth_cred(r, ctx, NULL, id, version)
            == NGX_OK)
        {
            return ngx_http_bulletdrop_auth_passed(r, ctx, next);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop auth: looking up user #%L", id);

        q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_USER_BY_ID,
                                      ngx_http_bulletdrop_auth_done);
        if (q == NULL || ngx_http_bulletdrop_query_int(q, 0, id) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->auth = auth;

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_auth_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t          *r;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_auth_t  *auth;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    auth = ctx->auth;
    ctx->auth = NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop auth: %d users found", PQntuples(res));

    if (PQntuples(res) != 1
        || ngx_http_bulletdrop_user_read(r->pool, res, 0, &ctx->user)
           != NGX_OK)
    {
        /* a revoked key, or a token of a user that is gone */
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_auth_refuse(r, ctx, BD_ERR_INVALID_TOKEN,
                                            NULL));
        return;
    }

    if (auth->version != -1 && auth->version != ctx->user.token_version) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_auth_refuse(r, ctx, BD_ERR_INVALID_TOKEN,
                                            "the token was issued before "
                                            "the password changed"));
        return;
    }

    if (ctx->user.disabled) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_auth_refuse(r, ctx, BD_ERR_ACCOUNT_DISABLED,
                                            NULL));
        return;
    }

    if (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_STREAM) {
        ngx_http_bulletdrop_authcache_put(&ctx->cred, &ctx->user);
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_auth_passed(r, ctx, auth->next));
}


/*
 * The credential of the request: "Authorization: Bearer", else the
 * session cookie, whose request must come from this site if it changes
 * anything.  NGX_OK, or NGX_DECLINED with the refusal recorded.
 */

static ngx_int_t
ngx_http_bulletdrop_auth_token(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *token)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        rc = ngx_http_bulletdrop_session_token(r, token);

        if (rc == NGX_ERROR) {
            /* not cleared: the browser's own may be among them */
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_TOKEN,
                                                    "more than one session "
                                                    "cookie");
        }

        if (rc != NGX_OK) {
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAUTHORIZED,
                                                    NULL);
        }

        ctx->session = 1;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop auth: the session cookie");

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
            && ngx_http_bulletdrop_session_same_origin(r, ctx) != NGX_OK)
        {
            return NGX_DECLINED;
        }

    } else {
        if (h->value.len < sizeof("Bearer ") - 1
            || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                               sizeof("Bearer ") - 1) != 0)
        {
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAUTHORIZED,
                                                    NULL);
        }

        token->data = h->value.data + sizeof("Bearer ") - 1;
        token->len = h->value.len - (sizeof("Bearer ") - 1);

        while (token->len && token->data[0] == ' ') {
            token->data++;
            token->len--;
        }
    }

    if (token->len == 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAUTHORIZED,
                                                "the bearer token is empty");
    }

    if (token->len > NGX_HTTP_BULLETDROP_TOKEN_MAX) {
        return ngx_http_bulletdrop_auth_refuse(r, ctx, BD_ERR_INVALID_TOKEN,
                                               NULL);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulletdrop_auth_passed(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next)
{
    if (ctx->session_renew
        && ngx_http_bulletdrop_session_set(r, &ctx->user, ctx->session_since)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return next(r, ctx);
}


/* a session that cannot go on is ended in the browser too */

static ngx_int_t
ngx_http_bulletdrop_auth_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t err, const char *detail)
{
    ngx_http_bulletdrop_auth_failed_e  kind;

    /* a disabled user's credential is valid: nothing was guessed */
    if (err != BD_ERR_ACCOUNT_DISABLED) {
        kind = (err == BD_ERR_TOKEN_EXPIRED) ? BD_AUTH_FAILED_EXPIRED
               : ctx->api_key.len ? BD_AUTH_FAILED_API_KEY
               : ctx->session ? BD_AUTH_FAILED_SESSION
               : BD_AUTH_FAILED_TOKEN;

        ngx_http_bulletdrop_auth_failed(r, kind, NULL);
    }

    if (ctx->session) {
        (void) ngx_http_bulletdrop_session_clear(r);
    }

    return ngx_http_bulletdrop_error_record(ctx, err, detail);
}


/*
 * Names the credential for the cache (an API key's hash, or a JWT's user
 * and token version), and answers NGX_OK when the request may go on with
 * what was remembered of it: only a streamed upload may, whose commit
 * checks the credential again.  NGX_DECLINED: ask the database.
 */

static ngx_int_t
ngx_http_bulletdrop_auth_cred(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *hash, int64_t id,
    int64_t version)
{
    u_char  *p;

    /* only a streamed upload's commit checks the credential again */
    if (ctx->body_kind != NGX_HTTP_BULLETDROP_BODY_STREAM) {
        return NGX_DECLINED;
    }

    ctx->cred.data = ngx_pnalloc(r->pool, NGX_HTTP_BULLETDROP_CRED_MAX);
    if (ctx->cred.data == NULL) {
        return NGX_DECLINED;
    }

    if (hash) {
        p = ngx_cpymem(ctx->cred.data, hash,
                       NGX_HTTP_BULLETDROP_HASH_HEX_LEN - 1);

    } else {
        p = ngx_snprintf(ctx->cred.data, NGX_HTTP_BULLETDROP_CRED_MAX,
                         "j%L.%L", id, version);
    }

    ctx->cred.len = p - ctx->cred.data;

    return ngx_http_bulletdrop_authcache_get(r->pool, &ctx->cred, &ctx->user);
}


/*
 * NGX_OK with the user id and token version of a valid token.  Otherwise
 * NGX_DECLINED, with *err set only when the token is valid but expired.
 */

static ngx_int_t
ngx_http_bulletdrop_jwt_verify(ngx_http_request_t *r, ngx_str_t *token,
    int64_t *id, int64_t *version, time_t *expires, time_t *since,
    const char **err)
{
    long                              exp;
    u_char                           *text;
    jwt_t                            *jwt;
    ngx_int_t                         rc;
    const char                       *sub;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    *err = NULL;

    text = ngx_pnalloc(r->pool, token->len + 1);
    if (text == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(text, token->data, token->len);
    text[token->len] = '\0';

    jwt = NULL;

    if (jwt_decode(&jwt, (char *) text, bmcf->jwt_secret.data,
                   (int) bmcf->jwt_secret.len)
        != 0)
    {
        if (jwt) {
            jwt_free(jwt);
        }

        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    /* only what we mint: "none" and every other algorithm are refused */
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        goto done;
    }

    /*
     * libjwt sets errno only for a missing claim and gives 0 for one of
     * another type: 0 is no time and no version, so both are refused
     */
    errno = 0;
    exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= 0) {
        goto done;
    }

    errno = 0;
    *version = jwt_get_grant_int(jwt, "ver");
    if (errno != 0 || *version <= 0) {
        goto done;
    }

    sub = jwt_get_grant(jwt, "sub");
    if (sub == NULL || ngx_strlen(sub) == 0 || ngx_strlen(sub) > 18) {
        goto done;
    }

    *id = ngx_atoof((u_char *) sub, ngx_strlen(sub));
    if (*id <= 0) {
        goto done;
    }

    if (exp <= ngx_time()) {
        *err = "the token has expired: log in again";
        goto done;
    }

    *expires = exp;

    /*
     * a browser session's sign-in time; 0: not a session's token, or one
     * that says it began in the future, which no renewal may extend
     */
    errno = 0;
    *since = jwt_get_grant_int(jwt, "sat");
    if (errno != 0 || *since < 0 || *since > ngx_time()) {
        *since = 0;
    }

    rc = NGX_OK;

done:

    jwt_free(jwt);

    return rc;
}


ngx_int_t
ngx_http_bulletdrop_jwt_issue(ngx_http_request_t *r,
    ngx_http_bulletdrop_user_t *user, time_t since, time_t expires,
    ngx_str_t *token)
{
    char                             *text;
    u_char                            sub[NGX_INT64_LEN + 1];
    jwt_t                            *jwt;
    time_t                            now;
    ngx_int_t                         rc;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    if (jwt_new(&jwt) != 0) {
        return NGX_ERROR;
    }

    now = ngx_time();
    (void) ngx_sprintf(sub, "%L%Z", user->id);

    rc = NGX_ERROR;
    text = NULL;

    if (jwt_add_grant(jwt, "sub", (char *) sub) != 0
        || jwt_add_grant_int(jwt, "iat", now) != 0
        || jwt_add_grant_int(jwt, "exp", expires) != 0
        || jwt_add_grant_int(jwt, "ver", user->token_version) != 0
        || (since && jwt_add_grant_int(jwt, "sat", since) != 0)
        || jwt_set_alg(jwt, JWT_ALG_HS256, bmcf->jwt_secret.data,
                       (int) bmcf->jwt_secret.len)
           != 0)
    {
        goto done;
    }

    text = jwt_encode_str(jwt);
    if (text == NULL) {
        goto done;
    }

    token->len = ngx_strlen(text);
    token->data = ngx_pnalloc(r->pool, token->len);
    if (token->data == NULL) {
        goto done;
    }

    ngx_memcpy(token->data, text, token->len);
    rc = NGX_OK;

done:

    free(text);
    jwt_free(jwt);

    return rc;
}


ngx_int_t
ngx_http_bulletdrop_secret_new(ngx_pool_t *pool, const char *prefix,
    size_t n, ngx_str_t *secret, char *hash)
{
    u_char  *p;
    size_t   plen;
    u_char   raw[64];

    plen = ngx_strlen(prefix);

    if (n > sizeof(raw) || RAND_bytes(raw, (int) n) != 1) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, plen + bd_base64url_len(n) + 1);
    if (p == NULL) {
        OPENSSL_cleanse(raw, n);
        return NGX_ERROR;
    }

    ngx_memcpy(p, prefix, plen);
    secret->len = plen + bd_base64url_encode(raw, n, (char *) p + plen);
    secret->data = p;

    OPENSSL_cleanse(raw, n);

    ngx_http_bulletdrop_sha256_hex(secret->data, secret->len, hash);

    return NGX_OK;
}


/*
 * An upload's delete token is derived from its id with the server's
 * secret, not drawn at random and forgotten: its owner can be shown it
 * again (the list of uploads), while only its SHA-256 is stored, as
 * before.  Whoever holds the secret can mint tokens for any user already.
 */

ngx_int_t
ngx_http_bulletdrop_delete_token(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *token, char *hash)
{
    u_char                           *p;
    unsigned int                      n;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    u_char                            md[EVP_MAX_MD_SIZE];
    u_char                            msg[sizeof("bulletdrop delete link ")
                                          + NGX_HTTP_BULLETDROP_ID_MAX];

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    if (id->len > NGX_HTTP_BULLETDROP_ID_MAX) {
        return NGX_ERROR;
    }

    /* its own message: no other use of the secret signs the same bytes */
    p = ngx_cpymem(msg, "bulletdrop delete link ",
                   sizeof("bulletdrop delete link ") - 1);
    p = ngx_cpymem(p, id->data, id->len);

    if (HMAC(EVP_sha256(), bmcf->jwt_secret.data, (int) bmcf->jwt_secret.len,
             msg, p - msg, md, &n)
        == NULL
        || n < NGX_HTTP_BULLETDROP_DELETE_BYTES)
    {
        return NGX_ERROR;
    }

    token->data = ngx_pnalloc(r->pool,
                        bd_base64url_len(NGX_HTTP_BULLETDROP_DELETE_BYTES) + 1);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    token->len = bd_base64url_encode(md, NGX_HTTP_BULLETDROP_DELETE_BYTES,
                                     (char *) token->data);

    OPENSSL_cleanse(md, sizeof(md));

    ngx_http_bulletdrop_sha256_hex(token->data, token->len, hash);

    return NGX_OK;
}


void
ngx_http_bulletdrop_sha256_hex(const u_char *data, size_t len, char *hex)
{
    unsigned int  n;
    u_char        md[EVP_MAX_MD_SIZE];

    n = 0;

    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1) {
        /* matches no stored hash */
        n = 0;
    }

    bd_hex_encode(md, n, hex);
}


/* users rows */

ngx_int_t
ngx_http_bulletdrop_user_read(ngx_pool_t *pool, PGresult *res, int row,
    ngx_http_bulletdrop_user_t *user)
{
    ngx_uint_t  with_hash;

    /* the password hash is only selected where a password is checked */
    with_hash = (PQnfields(res) == NGX_HTTP_BULLETDROP_USER_NCOLUMNS);

    if (!with_hash
        && PQnfields(res) != NGX_HTTP_BULLETDROP_USER_PASSWORD_HASH)
    {
        return NGX_ERROR;
    }

    ngx_str_null(&user->password_hash);

    user->id = ngx_http_bulletdrop_db_int(res, row,
                   NGX_HTTP_BULLETDROP_USER_ID);
    user->quota_bytes = ngx_http_bulletdrop_db_int(res, row,
                   NGX_HTTP_BULLETDROP_USER_QUOTA);
    user->usage_bytes = ngx_http_bulletdrop_db_int(res, row,
                   NGX_HTTP_BULLETDROP_USER_USAGE_BYTES);
    user->usage_files = ngx_http_bulletdrop_db_int(res, row,
                   NGX_HTTP_BULLETDROP_USER_USAGE_FILES);
    user->token_version = ngx_http_bulletdrop_db_int(res, row,
                   NGX_HTTP_BULLETDROP_USER_TOKEN_VERSION);

    user->disabled = ngx_http_bulletdrop_db_bool(res, row,
                         NGX_HTTP_BULLETDROP_USER_DISABLED);

    if (ngx_http_bulletdrop_db_str(pool, res, row,
                                   NGX_HTTP_BULLETDROP_USER_USERNAME,
                                   &user->username) != NGX_OK
        || ngx_http_bulletdrop_db_str(pool, res, row,
                                      NGX_HTTP_BULLETDROP_USER_ROLE,
                                      &user->role) != NGX_OK
        || ngx_http_bulletdrop_db_str(pool, res, row,
                                      NGX_HTTP_BULLETDROP_USER_CREATED_AT,
                                      &user->created_at) != NGX_OK
        || ngx_http_bulletdrop_db_str(pool, res, row,
                                      NGX_HTTP_BULLETDROP_USER_DEFAULT_DOMAIN,
                                      &user->default_domain) != NGX_OK
        || (with_hash
            && ngx_http_bulletdrop_db_str(pool, res, row,
                                       NGX_HTTP_BULLETDROP_USER_PASSWORD_HASH,
                                       &user->password_hash) != NGX_OK))
    {
        return NGX_ERROR;
    }

    user->admin = (user->role.len == 5
                   && ngx_strncmp(user->role.data, "admin", 5) == 0);

    return NGX_OK;
}


json_t *
ngx_http_bulletdrop_user_json(ngx_http_bulletdrop_user_t *user)
{
    return json_pack("{s:I, s:s%, s:s%, s:b, s:{s:I, s:I}, s:o, s:o, s:s%}",
                     "id", (json_int_t) user->id,
                     "username", user->username.data, user->username.len,
                     "role", user->role.data, user->role.len,
                     "disabled", (int) user->disabled,
                     "usage",
                         "bytes", (json_int_t) user->usage_bytes,
                         "files", (json_int_t) user->usage_files,
                     "quota_bytes",
                         user->quota_bytes < 0
                         ? json_null()
                         : json_integer(user->quota_bytes),
                     "default_domain",
                         user->default_domain.data == NULL
                         ? json_null()
                         : json_stringn((char *) user->default_domain.data,
                                        user->default_domain.len),
                     "created_at",
                         user->created_at.data, user->created_at.len);
}


/* configuration */

char *
ngx_http_bulletdrop_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    char       *rv;
    size_t      n;
    ngx_str_t  *value, name;

    if (bmcf->jwt_secret.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    rv = ngx_http_bulletdrop_conf_read_secret(cf,
                                              "bulletdrop_jwt_secret_file",
                                              &name, &bmcf->jwt_secret);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    n = bmcf->jwt_secret.len;

    /* a secret written with echo ends in a newline that is not secret */
    while (n > 0 && (bmcf->jwt_secret.data[n - 1] == '\n'
                     || bmcf->jwt_secret.data[n - 1] == '\r'
                     || bmcf->jwt_secret.data[n - 1] == ' '
                     || bmcf->jwt_secret.data[n - 1] == '\t'))
    {
        n--;
    }

    bmcf->jwt_secret.len = n;

    if (n < 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_jwt_secret_file\": \"%V\" must hold "
                           "at least 32 bytes, it holds %z", &name, n);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_http_bulletdrop_auth_failed(ngx_http_request_t *r,
    ngx_http_bulletdrop_auth_failed_e kind, ngx_str_t *user)
{
    static const char  *kinds[] = {
        "password", "token", "api_key", "session", "expired", "invite"
    };

    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    ngx_http_bulletdrop_metrics_auth_failed(kind);

    /* an expired credential is a client that came back late, not a guess */
    ngx_http_bulletdrop_auth_log(r, kind == BD_AUTH_FAILED_EXPIRED
                                    ? NGX_LOG_INFO : bmcf->auth_log_level,
                                 kinds[kind], user);
}


void
ngx_http_bulletdrop_auth_limited(ngx_http_request_t *r, ngx_str_t *user)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    ngx_http_bulletdrop_metrics_add(BD_METRIC_LOGIN_LIMITED, 1);
    ngx_http_bulletdrop_auth_log(r, bmcf->auth_log_level, "login_limited",
                                 user);
}


/*
 * One short line of a fixed shape: nginx's own tail (request line, host,
 * referrer: the client's bytes) would make it as long as a client likes,
 * cut at 2048 bytes, and a cut line is one fail2ban cannot read.  The
 * address is the connection's, the real one behind realip.
 */

static void
ngx_http_bulletdrop_auth_log(ngx_http_request_t *r, ngx_uint_t level,
    const char *kind, ngx_str_t *user)
{
    char                *action;
    ngx_log_t           *log;
    ngx_log_handler_pt   handler;

    log = r->connection->log;
    action = log->action;
    handler = log->handler;

    log->action = NULL;
    log->handler = ngx_http_bulletdrop_auth_log_tail;

    if (user == NULL) {
        ngx_log_error(level, log, 0, "bulletdrop: auth failed: %s", kind);

    /* only a name that could be one: the log is not the client's to write */
    } else if (bd_username_valid((char *) user->data, user->len)) {
        ngx_log_error(level, log, 0, "bulletdrop: auth failed: %s for \"%V\"",
                      kind, user);

    } else {
        ngx_log_error(level, log, 0,
                      "bulletdrop: auth failed: %s for an invalid name", kind);
    }

    log->action = action;
    log->handler = handler;
}


/* ", client: <address>, server: <server_name>", and nothing else */

static u_char *
ngx_http_bulletdrop_auth_log_tail(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_http_log_ctx_t        *lctx;
    ngx_http_core_srv_conf_t  *cscf;

    lctx = log->data;

    if (lctx->request == NULL) {
        return ngx_snprintf(buf, len, ", client: %V, server: ",
                            &lctx->connection->addr_text);
    }

    cscf = ngx_http_get_module_srv_conf(lctx->request, ngx_http_core_module);

    return ngx_snprintf(buf, len, ", client: %V, server: %V",
                        &lctx->connection->addr_text, &cscf->server_name);
}
