/*
 * BulletDrop: accounts.
 *
 * Each handler checks its input, then goes through at most one password
 * job (the thread pool) and one statement (the pool of connections), and
 * answers.  The state a handler keeps between its steps is one
 * ngx_http_bulletdrop_account_t in ctx->account.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_accounts.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_authcache.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_session.h"
#include "ngx_http_bulletdrop_limit.h"
#include "ngx_http_bulletdrop_password.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_text.h"


#define NGX_HTTP_BULLETDROP_NOT_A_DOMAIN                                      \
    "default_domain is not one of this server's enabled domains (GET "       \
    "/api/domains)"


#define NGX_HTTP_BULLETDROP_KEY_NAME_MAX      64
#define NGX_HTTP_BULLETDROP_INVITE_TTL        (7 * 24 * 60 * 60)
#define NGX_HTTP_BULLETDROP_INVITE_TTL_MIN    60
#define NGX_HTTP_BULLETDROP_INVITE_TTL_MAX    (365 * 24 * 60 * 60)
#define NGX_HTTP_BULLETDROP_PAGE_DEFAULT      50
#define NGX_HTTP_BULLETDROP_PAGE_MAX          200

#define NGX_HTTP_BULLETDROP_NO_INVITE                                         \
    "there is no such invite, or it was used"


struct ngx_http_bulletdrop_account_s {
    ngx_http_bulletdrop_password_t  pw;
    ngx_str_t                       username;
    ngx_str_t                       secret;
    char                            secret_hash[
                                        NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    /* PATCH /api/users/me: the default domain to set, NULL to clear */
    const char                     *domain;
    unsigned                        set_domain:1;
    unsigned                        invited:1;
    /* a login that asks for the session cookie */
    unsigned                        session:1;
};


static ngx_http_bulletdrop_account_t *ngx_http_bulletdrop_account(
    ngx_http_request_t *r, ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_register_checked(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_register_hashed(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw);
static void ngx_http_bulletdrop_register_done(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_login_found(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_login_checked(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw);
static ngx_int_t ngx_http_bulletdrop_too_many(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *user, time_t retry);
static void ngx_http_bulletdrop_me_checked(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw);
static ngx_int_t ngx_http_bulletdrop_me_save(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_user_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_keys_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_key_created(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_key_deleted(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static json_t *ngx_http_bulletdrop_key_json(PGresult *res, int row);
static void ngx_http_bulletdrop_invite_created(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_invites_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_invite_deleted(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_users_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_int_t ngx_http_bulletdrop_profile(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static int64_t ngx_http_bulletdrop_parse_id(u_char *p, size_t len);
static ngx_int_t ngx_http_bulletdrop_password_fits(ngx_str_t *password);
static ngx_int_t ngx_http_bulletdrop_bad_password(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_json_str(json_t *v, ngx_str_t *s);


/* POST /api/auth/register {username, password[, invite]} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_register_fields[] = {
    { "username", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { "password", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { "invite", NGX_HTTP_BULLETDROP_FIELD_STRING, 0, 1 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_register(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                           *v[3];
    time_t                            retry;
    ngx_str_t                         invite;
    ngx_http_bulletdrop_account_t    *acct;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    ngx_http_bulletdrop_db_query_t   *q;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    if (bmcf->registration == NGX_HTTP_BULLETDROP_REGISTRATION_CLOSED) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_REGISTRATION_CLOSED,
                                                NULL);
    }

    acct = ngx_http_bulletdrop_account(r, ctx);
    if (acct == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_register_fields,
                                        v, NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    ngx_http_bulletdrop_json_str(v[0], &acct->username);
    ngx_http_bulletdrop_json_str(v[1], &acct->pw.plain);

    if (!bd_username_valid((char *) acct->username.data,
                           acct->username.len))
    {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_USERNAME,
                                                NULL);
    }

    if (!ngx_http_bulletdrop_password_fits(&acct->pw.plain)) {
        return ngx_http_bulletdrop_bad_password(r, ctx);
    }

    if (bmcf->registration == NGX_HTTP_BULLETDROP_REGISTRATION_INVITE) {
        if (v[2] == NULL) {
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVITE_REQUIRED,
                                                    NULL);
        }

        ngx_http_bulletdrop_json_str(v[2], &invite);
        ngx_http_bulletdrop_sha256_hex(invite.data, invite.len,
                                       acct->secret_hash);
        acct->invited = 1;
    }

    /* every attempt costs a password hash: they are counted per address */
    if (ngx_http_bulletdrop_limit_take(r, NULL, &retry) != NGX_OK) {
        return ngx_http_bulletdrop_too_many(r, ctx, NULL, retry);
    }

    r->connection->log->action = "registering a user";

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop register: \"%V\"%s, checking the name",
                   &acct->username, acct->invited ? " with an invite" : "");

    /* the cheap refusals first: a hash is only made for a likely user */
    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_REGISTER_CHECK,
                                  ngx_http_bulletdrop_register_checked);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &acct->username) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1, acct->invited
                                                 ? acct->secret_hash : NULL)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_register_checked(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t             *r;
    ngx_http_bulletdrop_ctx_t      *ctx;
    ngx_http_bulletdrop_account_t  *acct;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    acct = ctx->account;

    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_bulletdrop_db_bool(res, 0,
                                    NGX_HTTP_BULLETDROP_REGISTER_CHECK_TAKEN))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop register: \"%V\" is taken",
                       &acct->username);

        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_USERNAME_TAKEN, NULL));
        return;
    }

    if (!ngx_http_bulletdrop_db_bool(res, 0,
                                 NGX_HTTP_BULLETDROP_REGISTER_CHECK_INVITE_OK))
    {
        /* an invite code is a credential: a wrong one may be a guess */
        ngx_http_bulletdrop_auth_failed(r, BD_AUTH_FAILED_INVITE,
                                        &acct->username);

        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_INVITE, NULL));
        return;
    }

    acct->pw.do_hash = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop register: \"%V\" is free, hashing its "
                   "password", &acct->username);

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_password_run(r, &acct->pw,
                                         ngx_http_bulletdrop_register_hashed));
}


static void
ngx_http_bulletdrop_register_hashed(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw)
{
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_account_t    *acct;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    ngx_http_bulletdrop_db_query_t   *q;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    acct = ctx->account;

    if (pw->hash[0] == '\0') {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: hashing a password failed");
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop register: password hashed, inserting \"%V\"",
                   &acct->username);

    q = ngx_http_bulletdrop_query(r, acct->invited
                                     ? NGX_HTTP_BULLETDROP_SQL_REGISTER_INVITED
                                     : NGX_HTTP_BULLETDROP_SQL_REGISTER,
                                  ngx_http_bulletdrop_register_done);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &acct->username) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1, pw->hash) != NGX_OK
        || (bmcf->default_quota < 0
            ? ngx_http_bulletdrop_query_param(q, 2, NULL)
            : ngx_http_bulletdrop_query_int(q, 2, bmcf->default_quota))
           != NGX_OK
        || (acct->invited
            && ngx_http_bulletdrop_query_param(q, 3, acct->secret_hash)
               != NGX_OK))
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_query_run(r, q));
}


static void
ngx_http_bulletdrop_register_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    char                       *state, *constraint;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    /* a race lost to another registration is the client's to hear */
    if (q->status == NGX_HTTP_BULLETDROP_DB_OK
        && PQresultStatus(res) == PGRES_FATAL_ERROR)
    {
        ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        /* unique_violation: the constraint says which */
        if (state && constraint && ngx_strcmp(state, "23505") == 0) {

            if (ngx_strcmp(constraint,
                           NGX_HTTP_BULLETDROP_SQL_USERNAME_TAKEN) == 0)
            {
                ngx_http_bulletdrop_finish(r,
                    ngx_http_bulletdrop_error_record(ctx, BD_ERR_USERNAME_TAKEN,
                                                     NULL));
                return;
            }

            if (ngx_strcmp(constraint,
                           NGX_HTTP_BULLETDROP_SQL_INVITE_USED) == 0)
            {
                ngx_http_bulletdrop_finish(r,
                    ngx_http_bulletdrop_error_record(ctx,
                        BD_ERR_INVALID_INVITE, "that invite was used"));
                return;
            }
        }

        /* foreign_key_violation: the invite was revoked meanwhile */
        if (state && ngx_strcmp(state, "23503") == 0) {
            ngx_http_bulletdrop_finish(r,
                ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_INVITE,
                                                 "that invite does not exist "
                                                 "or has expired"));
            return;
        }
    }

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        /* only an invited registration inserts nothing */
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_INVITE,
                                             "that invite does not exist or "
                                             "has expired"));
        return;
    }

    if (ngx_http_bulletdrop_user_read(r->pool, res, 0, &ctx->user)
        != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulletdrop: user \"%V\" registered", &ctx->user.username);

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_CREATED,
                            ngx_http_bulletdrop_user_json(&ctx->user)));
}


/*
 * POST /api/auth/login {username, password[, session]}: the token in the
 * answer, or with "session": true in the cookie of a browser session
 */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_login_fields[] = {
    { "username", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { "password", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { "session", NGX_HTTP_BULLETDROP_FIELD_BOOLEAN, 0, 0 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_login(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                          *v[3];
    time_t                           retry;
    ngx_http_bulletdrop_account_t   *acct;
    ngx_http_bulletdrop_db_query_t  *q;

    acct = ngx_http_bulletdrop_account(r, ctx);
    if (acct == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_login_fields,
                                        v, NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    ngx_http_bulletdrop_json_str(v[0], &acct->username);
    ngx_http_bulletdrop_json_str(v[1], &acct->pw.check);

    /* another site must not sign a browser in, to an account of its own */
    if (v[2] && json_is_true(v[2])) {
        if (ngx_http_bulletdrop_session_same_origin(r, ctx) != NGX_OK) {
            return ngx_http_bulletdrop_error_send(r, ctx);
        }

        acct->session = 1;
    }

    /* counted as a failure from now on, until the password matches */
    if (ngx_http_bulletdrop_limit_take(r, &acct->username, &retry)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_too_many(r, ctx, &acct->username, retry);
    }

    acct->pw.do_check = 1;

    r->connection->log->action = "logging in";

    /*
     * A name no user can have, or a password no user can have, is not
     * looked up; it is still checked against nothing, at the same cost.
     */
    if (!bd_username_valid((char *) acct->username.data, acct->username.len)
        || acct->pw.check.len > BD_PASSWORD_MAX)
    {
        acct->pw.check.len = ngx_min(acct->pw.check.len, BD_PASSWORD_MAX);
        acct->pw.stored = NULL;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop login: no user can have that name or "
                       "password, checking against nothing");

        return ngx_http_bulletdrop_password_run(r, &acct->pw,
                                         ngx_http_bulletdrop_login_checked);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop login: looking up \"%V\"", &acct->username);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_USER_BY_NAME,
                                  ngx_http_bulletdrop_login_found);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &acct->username) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_login_found(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t             *r;
    ngx_http_bulletdrop_ctx_t      *ctx;
    ngx_http_bulletdrop_account_t  *acct;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    acct = ctx->account;

    acct->pw.stored = NULL;

    if (PQntuples(res) == 1) {
        if (ngx_http_bulletdrop_user_read(r->pool, res, 0, &ctx->user)
            != NGX_OK)
        {
            ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        acct->pw.stored = (char *) ctx->user.password_hash.data;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop login: user #%L %s, checking the password",
                   acct->pw.stored ? ctx->user.id : -1,
                   acct->pw.stored ? "found" : "not found");

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_password_run(r, &acct->pw,
                                         ngx_http_bulletdrop_login_checked));
}


static void
ngx_http_bulletdrop_login_checked(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw)
{
    ngx_str_t                         token;
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_account_t    *acct;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    acct = ctx->account;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop login: password checked: %s",
                   pw->matched ? "matched" : "no match");

    if (!pw->matched) {
        ngx_http_bulletdrop_auth_failed(r, BD_AUTH_FAILED_PASSWORD,
                                        &acct->username);

        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_CREDENTIALS,
                                             NULL));
        return;
    }

    ngx_http_bulletdrop_limit_passed(r, &acct->username);

    if (ctx->user.disabled) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_ACCOUNT_DISABLED,
                                             NULL));
        return;
    }

    if (acct->session) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_session_set(r, &ctx->user, 0) != NGX_OK
            ? NGX_HTTP_INTERNAL_SERVER_ERROR
            : ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
                  json_pack("{s:s, s:I}",
                            "token_type", "cookie",
                            "expires_in", (json_int_t) bmcf->jwt_ttl)));
        return;
    }

    if (ngx_http_bulletdrop_jwt_issue(r, &ctx->user, 0,
                                      ngx_time() + bmcf->jwt_ttl, &token)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: cannot make a JWT");
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            json_pack("{s:s%, s:s, s:I}",
                      "access_token", token.data, token.len,
                      "token_type", "bearer",
                      "expires_in", (json_int_t) bmcf->jwt_ttl)));
}


static ngx_int_t
ngx_http_bulletdrop_too_many(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *user, time_t retry)
{
    ngx_table_elt_t  *h;

    ngx_http_bulletdrop_auth_limited(r, user);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.len = ngx_sprintf(h->value.data, "%T", retry) - h->value.data;

    ngx_http_bulletdrop_error_record(ctx, BD_ERR_TOO_MANY_ATTEMPTS, NULL);

    return ngx_http_bulletdrop_error_send(r, ctx);
}


/* GET /api/users/me */

ngx_int_t
ngx_http_bulletdrop_me(ngx_http_request_t *r, ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_profile(r, ctx);
}


/* PATCH /api/users/me {current_password, new_password, default_domain} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_me_fields[] = {
    { "current_password", NGX_HTTP_BULLETDROP_FIELD_STRING, 0, 0 },
    { "new_password", NGX_HTTP_BULLETDROP_FIELD_STRING, 0, 0 },
    { "default_domain", NGX_HTTP_BULLETDROP_FIELD_STRING, 0, 1 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_me_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                         *v[3];
    time_t                          retry;
    ngx_str_t                       domain;
    ngx_uint_t                      given[3];
    ngx_http_bulletdrop_account_t  *acct;

    acct = ngx_http_bulletdrop_account(r, ctx);
    if (acct == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulletdrop_body_fields(r, ctx, ngx_http_bulletdrop_me_fields,
                                        v, given)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    if (!given[0] && !given[1] && !given[2]) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOTHING_TO_CHANGE,
                                                "give new_password and "
                                                "current_password, or "
                                                "default_domain");
    }

    if (given[0] != given[1]) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_MISSING_FIELD,
                   given[0] ? "the field \"new_password\" is required "
                              "with \"current_password\""
                            : "the field \"current_password\" is required "
                              "to set a new password");
    }

    if (given[2]) {
        acct->set_domain = 1;

        if (v[2]) {
            ngx_http_bulletdrop_json_str(v[2], &domain);

            /* the table's names are lower case; its key checks again */
            ngx_strlow(domain.data, domain.data, domain.len);

            if (ngx_http_bulletdrop_domain_enabled(domain.data, domain.len)
                != NGX_OK)
            {
                return ngx_http_bulletdrop_error_record(ctx,
                           BD_ERR_INVALID_DOMAIN,
                           NGX_HTTP_BULLETDROP_NOT_A_DOMAIN);
            }

            acct->domain = (const char *) domain.data;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop me: user #%L changes%s%s", ctx->user.id,
                   given[1] ? " the password" : "",
                   given[2] ? " the default domain" : "");

    if (!given[1]) {
        return ngx_http_bulletdrop_me_save(r, ctx);
    }

    ngx_http_bulletdrop_json_str(v[0], &acct->pw.check);
    ngx_http_bulletdrop_json_str(v[1], &acct->pw.plain);

    if (!ngx_http_bulletdrop_password_fits(&acct->pw.plain)) {
        return ngx_http_bulletdrop_bad_password(r, ctx);
    }

    /* guesses here are limited like logins: an API key must not be a way */
    if (ngx_http_bulletdrop_limit_take(r, &ctx->user.username, &retry)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_too_many(r, ctx, &ctx->user.username,
                                            retry);
    }

    /* no password is that long: no need to hash to know it is wrong */
    if (acct->pw.check.len > BD_PASSWORD_MAX) {
        ngx_http_bulletdrop_auth_failed(r, BD_AUTH_FAILED_PASSWORD,
                                        &ctx->user.username);
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_WRONG_PASSWORD,
                                                NULL);
    }

    acct->pw.stored = (char *) ctx->user.password_hash.data;
    acct->pw.do_check = 1;
    acct->pw.do_hash = 1;

    return ngx_http_bulletdrop_password_run(r, &acct->pw,
                                            ngx_http_bulletdrop_me_checked);
}


static void
ngx_http_bulletdrop_me_checked(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop me: current password checked: %s",
                   pw->matched ? "matched" : "no match");

    if (pw->matched) {
        ngx_http_bulletdrop_limit_passed(r, &ctx->user.username);
    }

    if (!pw->matched) {
        ngx_http_bulletdrop_auth_failed(r, BD_AUTH_FAILED_PASSWORD,
                                        &ctx->user.username);
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_WRONG_PASSWORD, NULL));
        return;
    }

    if (pw->hash[0] == '\0') {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: hashing a password failed");
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_me_save(r, ctx));
}


static ngx_int_t
ngx_http_bulletdrop_me_save(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_account_t   *acct;
    ngx_http_bulletdrop_db_query_t  *q;

    acct = ctx->account;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_USER_UPDATE,
                                  ngx_http_bulletdrop_user_done);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1,
               acct->pw.do_hash ? acct->pw.hash : NULL) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 2,
               (char *) ctx->user.password_hash.data) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 3,
               acct->set_domain ? "true" : "false") != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 4, acct->domain) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/*
 * A statement that updates one user and returns it: no row means the user
 * is gone, or (a password change) changed meanwhile.
 */

static void
ngx_http_bulletdrop_user_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    /* the default domain was deleted since it was checked */
    if (ngx_http_bulletdrop_query_refused(q, res, "23503")) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(
                ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module),
                BD_ERR_INVALID_DOMAIN, NGX_HTTP_BULLETDROP_NOT_A_DOMAIN));
        return;
    }

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop: \"%s\" updated %d user",
                   ngx_http_bulletdrop_sql[q->stmt].name, PQntuples(res));

    if (PQntuples(res) == 0) {
        if (q->stmt == NGX_HTTP_BULLETDROP_SQL_USER_UPDATE) {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_CONFLICT,
                                             "the password was changed "
                                             "meanwhile: try again");
        } else {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             "there is no such user");
        }

        ngx_http_bulletdrop_finish(r, NGX_DECLINED);
        return;
    }

    if (q->stmt == NGX_HTTP_BULLETDROP_SQL_USER_UPDATE
        || q->stmt == NGX_HTTP_BULLETDROP_SQL_ADMIN_USER_UPDATE)
    {
        ngx_http_bulletdrop_authcache_changed(r->connection->log);
    }

    if (ngx_http_bulletdrop_user_read(r->pool, res, 0, &ctx->user)
        != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the change retired the session's token: the browser gets a new one */
    if (q->stmt == NGX_HTTP_BULLETDROP_SQL_USER_UPDATE && ctx->session
        && ctx->account->pw.do_hash
        && ngx_http_bulletdrop_session_set(r, &ctx->user, 0) != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_profile(r, ctx));
}


/* GET /api/users/me/api-keys */

ngx_int_t
ngx_http_bulletdrop_keys_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_db_query_t  *q;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_KEY_LIST,
                                  ngx_http_bulletdrop_keys_listed);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, ctx->user.id) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_keys_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                         i;
    json_t                     *keys;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop keys: user #%L has %d", ctx->user.id,
                   PQntuples(res));

    keys = json_array();

    for (i = 0; keys && i < PQntuples(res); i++) {
        if (json_array_append_new(keys, ngx_http_bulletdrop_key_json(res, i))
            != 0)
        {
            json_decref(keys);
            keys = NULL;
        }
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            keys ? json_pack("{s:o}", "api_keys", keys) : NULL));
}


/* POST /api/users/me/api-keys {name} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_key_fields[] = {
    { "name", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_key_create(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t     *v[1];
    ngx_str_t   name;

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_key_fields,
                                        v, NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    ngx_http_bulletdrop_json_str(v[0], &name);

    if (name.len == 0 || name.len > NGX_HTTP_BULLETDROP_KEY_NAME_MAX
        || bd_has_control((char *) name.data, name.len))
    {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_NAME, NULL);
    }

    return ngx_http_bulletdrop_key_mint(r, ctx, &name,
                                        ngx_http_bulletdrop_key_created);
}


/*
 * A new API key for the user, into ctx->api_key; its row is inserted
 * with the handler, which finds no row when the user holds 100 already
 * (ngx_http_bulletdrop_too_many_keys()).
 */

ngx_int_t
ngx_http_bulletdrop_key_mint(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *name,
    ngx_http_bulletdrop_db_handler_pt handler)
{
    ngx_http_bulletdrop_db_query_t  *q;
    char                             hash[NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    u_char                           prefix[NGX_HTTP_BULLETDROP_KEY_SHOWN
                                            + 1];

    if (ngx_http_bulletdrop_secret_new(r->pool, NGX_HTTP_BULLETDROP_KEY_PREFIX,
                                       NGX_HTTP_BULLETDROP_KEY_BYTES,
                                       &ctx->api_key, hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_cpystrn(prefix, ctx->api_key.data, sizeof(prefix));

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop keys: user #%L creates %s...", ctx->user.id,
                   prefix);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_KEY_CREATE,
                                  handler);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_db_param(q, 1, name) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 2, hash) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 3, (char *) prefix) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


void
ngx_http_bulletdrop_too_many_keys(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_TOO_MANY_KEYS, NULL));
}


static void
ngx_http_bulletdrop_key_created(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    json_t                     *key;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop keys: user #%L holds too many",
                       ctx->user.id);

        ngx_http_bulletdrop_too_many_keys(r, ctx);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop keys: key #%L created",
                   ngx_http_bulletdrop_db_int(res, 0,
                                              NGX_HTTP_BULLETDROP_KEY_LIST_ID));

    /* the only time the key is shown */
    key = ngx_http_bulletdrop_key_json(res, 0);

    if (key == NULL
        || json_object_set_new(key, "key",
                               json_stringn((char *) ctx->api_key.data,
                                            ctx->api_key.len))
           != 0)
    {
        json_decref(key);
        key = NULL;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_CREATED, key));
}


/* DELETE /api/users/me/api-keys/ID */

ngx_int_t
ngx_http_bulletdrop_key_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    int64_t                          id;
    ngx_http_bulletdrop_db_query_t  *q;

    id = ngx_http_bulletdrop_parse_id((u_char *) ctx->match.params[0].data,
                                      ctx->match.params[0].len);
    if (id < 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                                "there is no such API key");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop keys: user #%L deletes key #%L",
                   ctx->user.id, id);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_KEY_DELETE,
                                  ngx_http_bulletdrop_key_deleted);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 1, id) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_key_deleted(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop keys: %s", PQntuples(res) ? "key deleted"
                                                         : "no such key");

    /* someone else's key is as absent as one that never was */
    if (PQntuples(res) == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             "there is no such API key"));
        return;
    }

    ngx_http_bulletdrop_authcache_changed(r->connection->log);

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_no_content(r));
}


/* a row of bd_key_list or bd_key_create */

static json_t *
ngx_http_bulletdrop_key_json(PGresult *res, int row)
{
    const char  *used;

    used = ngx_http_bulletdrop_db_text(res, row,
                                    NGX_HTTP_BULLETDROP_KEY_LIST_LAST_USED_AT);

    return json_pack("{s:I, s:s, s:s, s:s, s:o}",
                     "id", (json_int_t) ngx_http_bulletdrop_db_int(res, row,
                               NGX_HTTP_BULLETDROP_KEY_LIST_ID),
                     "name", ngx_http_bulletdrop_db_text(res, row,
                                 NGX_HTTP_BULLETDROP_KEY_LIST_NAME),
                     "prefix", ngx_http_bulletdrop_db_text(res, row,
                                   NGX_HTTP_BULLETDROP_KEY_LIST_PREFIX),
                     "created_at", ngx_http_bulletdrop_db_text(res, row,
                                       NGX_HTTP_BULLETDROP_KEY_LIST_CREATED_AT),
                     "last_used_at",
                         used ? json_string(used) : json_null());
}


/* POST /api/admin/invites [{expires_in}] */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_invite_fields[] = {
    { "expires_in", NGX_HTTP_BULLETDROP_FIELD_INTEGER, 0, 0 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_invite_create(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                          *v[1];
    json_int_t                       ttl;
    ngx_http_bulletdrop_account_t   *acct;
    ngx_http_bulletdrop_db_query_t  *q;

    acct = ngx_http_bulletdrop_account(r, ctx);
    if (acct == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_invite_fields,
                                        v, NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    ttl = v[0] ? json_integer_value(v[0]) : NGX_HTTP_BULLETDROP_INVITE_TTL;

    if (ttl < NGX_HTTP_BULLETDROP_INVITE_TTL_MIN
        || ttl > NGX_HTTP_BULLETDROP_INVITE_TTL_MAX)
    {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_EXPIRY,
                                                "expires_in is in seconds, "
                                                "from 60 to 31536000");
    }

    if (ngx_http_bulletdrop_secret_new(r->pool, "",
                                       NGX_HTTP_BULLETDROP_INVITE_BYTES,
                                       &acct->secret, acct->secret_hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop admin: user #%L creates an invite for %Ls",
                   ctx->user.id, (int64_t) ttl);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_INVITE_CREATE,
                                  ngx_http_bulletdrop_invite_created);

    if (q == NULL
        || ngx_http_bulletdrop_query_param(q, 0, acct->secret_hash) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 1, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 2, ttl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_invite_created(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t             *r;
    ngx_http_bulletdrop_ctx_t      *ctx;
    ngx_http_bulletdrop_account_t  *acct;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    acct = ctx->account;

    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_CREATED,
            json_pack("{s:I, s:s%, s:s}",
                      "id", (json_int_t) ngx_http_bulletdrop_db_int(res, 0,
                                NGX_HTTP_BULLETDROP_INVITE_CREATE_ID),
                      "code", acct->secret.data, acct->secret.len,
                      "expires_at",
                          ngx_http_bulletdrop_db_text(res, 0,
                              NGX_HTTP_BULLETDROP_INVITE_CREATE_EXPIRES_AT))));
}


/* GET /api/admin/invites: the 200 newest */

ngx_int_t
ngx_http_bulletdrop_invites_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_db_query_t  *q;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_INVITE_LIST,
                                  ngx_http_bulletdrop_invites_listed);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, NGX_HTTP_BULLETDROP_PAGE_MAX)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_invites_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                         i, n;
    json_t                     *invites, *invite;
    const char                 *by, *used;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    invites = json_array();
    n = PQntuples(res);

    for (i = 0; invites && i < n; i++) {
        by = ngx_http_bulletdrop_db_text(res, i,
                                   NGX_HTTP_BULLETDROP_INVITE_LIST_CREATED_BY);
        used = ngx_http_bulletdrop_db_text(res, i,
                                      NGX_HTTP_BULLETDROP_INVITE_LIST_USED_BY);

        invite = json_pack("{s:I, s:s, s:s, s:o, s:o}",
                     "id", (json_int_t) ngx_http_bulletdrop_db_int(res, i,
                               NGX_HTTP_BULLETDROP_INVITE_LIST_ID),
                     "created_at", ngx_http_bulletdrop_db_text(res, i,
                                   NGX_HTTP_BULLETDROP_INVITE_LIST_CREATED_AT),
                     "expires_at", ngx_http_bulletdrop_db_text(res, i,
                                   NGX_HTTP_BULLETDROP_INVITE_LIST_EXPIRES_AT),
                     "created_by", by ? json_string(by) : json_null(),
                     "used_by", used ? json_string(used) : json_null());

        if (invite == NULL || json_array_append_new(invites, invite) != 0) {
            json_decref(invites);
            invites = NULL;
        }
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            invites ? json_pack("{s:o}", "invites", invites) : NULL));
}


/* DELETE /api/admin/invites/ID: an unused one */

ngx_int_t
ngx_http_bulletdrop_invite_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    int64_t                          id;
    ngx_http_bulletdrop_db_query_t  *q;

    id = ngx_http_bulletdrop_parse_id((u_char *) ctx->match.params[0].data,
                                      ctx->match.params[0].len);
    if (id < 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                                NGX_HTTP_BULLETDROP_NO_INVITE);
    }

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_INVITE_DELETE,
                                  ngx_http_bulletdrop_invite_deleted);

    if (q == NULL || ngx_http_bulletdrop_query_int(q, 0, id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_invite_deleted(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    /* used by a registration that committed while this one waited */
    if (ngx_http_bulletdrop_query_refused(q, res, "23503")) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(
                ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module),
                BD_ERR_NOT_FOUND, NGX_HTTP_BULLETDROP_NO_INVITE));
        return;
    }

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             NGX_HTTP_BULLETDROP_NO_INVITE));
        return;
    }

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_no_content(r));
}


/* GET /api/admin/users?limit=N&after=ID */

ngx_int_t
ngx_http_bulletdrop_admin_users(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    int64_t                          limit, after;
    ngx_str_t                        value;
    ngx_http_bulletdrop_db_query_t  *q;

    limit = NGX_HTTP_BULLETDROP_PAGE_DEFAULT;
    after = 0;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_http_bulletdrop_parse_id(value.data, value.len);
    }

    if (ngx_http_arg(r, (u_char *) "after", 5, &value) == NGX_OK) {
        after = ngx_http_bulletdrop_parse_id(value.data, value.len);
    }

    if (limit < 1 || limit > NGX_HTTP_BULLETDROP_PAGE_MAX || after < 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_QUERY,
                                                "limit is from 1 to 200, "
                                                "after a user id");
    }

    /* the page size decides next_after */
    ctx->page_limit = limit;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop admin: users after #%L, %L at most",
                   after, limit);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_ADMIN_USERS,
                                  ngx_http_bulletdrop_users_listed);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, after) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 1, limit) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_users_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                          i, n;
    json_t                      *users, *user;
    ngx_http_request_t          *r;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_user_t   u;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    n = PQntuples(res);
    users = json_array();

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop admin: %d users listed", n);

    for (i = 0; users && i < n; i++) {
        user = NULL;

        if (ngx_http_bulletdrop_user_read(r->pool, res, i, &u) == NGX_OK) {
            user = ngx_http_bulletdrop_user_json(&u);
        }

        if (user == NULL || json_array_append_new(users, user) != 0) {
            json_decref(users);
            users = NULL;
        }
    }

    /* a full page may have a next one; the client asks with after= */
    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            users == NULL ? NULL
            : json_pack("{s:o, s:o}", "users", users, "next_after",
                        (ngx_uint_t) n == ctx->page_limit
                        ? json_integer(u.id) : json_null())));
}


/* PATCH /api/admin/users/ID {role, disabled, quota_bytes} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_admin_fields[] = {
    { "role", NGX_HTTP_BULLETDROP_FIELD_STRING, 0, 0 },
    { "disabled", NGX_HTTP_BULLETDROP_FIELD_BOOLEAN, 0, 0 },
    { "quota_bytes", NGX_HTTP_BULLETDROP_FIELD_INTEGER, 0, 1 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_admin_user_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                          *v[3];
    int64_t                          id;
    ngx_str_t                        role;
    ngx_uint_t                       given[3];
    const char                      *role_text;
    ngx_http_bulletdrop_db_query_t  *q;

    id = ngx_http_bulletdrop_parse_id((u_char *) ctx->match.params[0].data,
                                      ctx->match.params[0].len);
    if (id < 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                                "there is no such user");
    }

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_admin_fields,
                                        v, given)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    if (!given[0] && !given[1] && !given[2]) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOTHING_TO_CHANGE,
                                                "give role, disabled or "
                                                "quota_bytes");
    }

    role_text = NULL;

    if (v[0]) {
        ngx_http_bulletdrop_json_str(v[0], &role);
        role_text = (const char *) role.data;

        if (role.len != ngx_strlen(role_text)
            || (ngx_strcmp(role_text, "user") != 0
                && ngx_strcmp(role_text, "admin") != 0))
        {
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_ROLE,
                                                    NULL);
        }
    }

    if (v[2] && json_integer_value(v[2]) < 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_QUOTA,
                                                NULL);
    }

    /* the last word on an admin's own access is another admin's */
    if (id == ctx->user.id
        && ((role_text && ngx_strcmp(role_text, "admin") != 0)
            || (v[1] && json_is_true(v[1]))))
    {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_CANNOT_CHANGE_SELF,
                                                NULL);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop admin: user #%L changes user #%L: role %s, "
                   "disabled %s, quota %s", ctx->user.id, id,
                   role_text ? role_text : "kept",
                   v[1] ? (json_is_true(v[1]) ? "yes" : "no") : "kept",
                   given[2] ? (v[2] ? "set" : "none") : "kept");

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_ADMIN_USER_UPDATE,
                                  ngx_http_bulletdrop_user_done);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, id) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1, role_text) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 2,
               v[1] ? (json_is_true(v[1]) ? "true" : "false") : NULL)
           != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 3,
               given[2] ? "true" : "false") != NGX_OK
        || (v[2] ? ngx_http_bulletdrop_query_int(q, 4,
                                                 json_integer_value(v[2]))
                 : ngx_http_bulletdrop_query_param(q, 4, NULL))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (given[1]) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "bulletdrop: admin \"%V\" %s user #%L",
                      &ctx->user.username,
                      json_is_true(v[1]) ? "disabled" : "enabled", id);
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/* helpers */

static ngx_http_bulletdrop_account_t *
ngx_http_bulletdrop_account(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ctx->account = ngx_pcalloc(r->pool,
                               sizeof(ngx_http_bulletdrop_account_t));

    return ctx->account;
}


static ngx_int_t
ngx_http_bulletdrop_profile(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
                                   ngx_http_bulletdrop_user_json(&ctx->user));
}


/* a positive decimal id of at most 18 digits; -1 otherwise */

static int64_t
ngx_http_bulletdrop_parse_id(u_char *p, size_t len)
{
    size_t   i;
    int64_t  n;

    if (len == 0 || len > 18) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (p[i] - '0');
    }

    return n;
}


static ngx_int_t
ngx_http_bulletdrop_password_fits(ngx_str_t *password)
{
    return password->len >= BD_PASSWORD_MIN
           && password->len <= BD_PASSWORD_MAX;
}


static ngx_int_t
ngx_http_bulletdrop_bad_password(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_PASSWORD, NULL);

    return ngx_http_bulletdrop_error_send(r, ctx);
}


/* a JSON string's bytes, which may hold NULs; jansson keeps a NUL after */

static void
ngx_http_bulletdrop_json_str(json_t *v, ngx_str_t *s)
{
    s->data = (u_char *) json_string_value(v);
    s->len = json_string_length(v);
}
