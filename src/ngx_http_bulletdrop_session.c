/*
 * BulletDrop: browser sessions.
 *
 * The web app never holds a token: a login that asks for a session gets
 * its JWT in an HttpOnly cookie, limited to /api and to this site
 * (SameSite=Strict), which the module takes where it takes a bearer
 * token.  A browser sends a cookie on its own, so whatever a request made
 * with it changes must come from this site's pages: its Origin is
 * checked.  Bearer tokens (ShareX, curl) are not sent by a browser on its
 * own, and are not checked.
 */

#include "ngx_http_bulletdrop_session.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_request.h"
#include "bd_text.h"


/*
 * Over TLS the cookie has the "__Host-" prefix: a browser takes it only
 * Secure, for "/" and from this very host, so a sibling host of the same
 * site cannot plant one of its own (a session of another account).
 * Over plain HTTP (a dev stack) there is no such thing.
 */
#define NGX_HTTP_BULLETDROP_SESSION_COOKIE      "bd_session"
#define NGX_HTTP_BULLETDROP_SESSION_ATTRS                                     \
    "; Path=/api; HttpOnly; SameSite=Strict"
#define NGX_HTTP_BULLETDROP_SESSION_TLS_COOKIE  "__Host-bd_session"
#define NGX_HTTP_BULLETDROP_SESSION_TLS_ATTRS                                 \
    "; Path=/; HttpOnly; SameSite=Strict; Secure"


static ngx_int_t ngx_http_bulletdrop_session_cookie(ngx_http_request_t *r,
    ngx_str_t *token, time_t max_age);


ngx_int_t
ngx_http_bulletdrop_session_token(ngx_http_request_t *r, ngx_str_t *token)
{
    int                n, found;
    size_t             len;
    ngx_str_t          name;
    ngx_uint_t         i;
    const char        *value;
    ngx_table_elt_t  **h;

    if (ngx_http_bulletdrop_https(r)) {
        ngx_str_set(&name, NGX_HTTP_BULLETDROP_SESSION_TLS_COOKIE);
    } else {
        ngx_str_set(&name, NGX_HTTP_BULLETDROP_SESSION_COOKIE);
    }

    found = 0;
    h = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        n = bd_cookie_find((char *) h[i]->value.data, h[i]->value.len,
                           (char *) name.data, name.len, &value, &len);

        if (n && found == 0) {
            token->data = (u_char *) value;
            token->len = len;
        }

        found += n;
    }

    if (found > 1) {
        /* one of them was planted: which is unknown */
        return NGX_ERROR;
    }

    return (found == 1 && token->len) ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_bulletdrop_session_same_origin(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_str_t         site;
    ngx_table_elt_t  *origin, *fetch_site;

    origin = ngx_http_bulletdrop_header_in(r, "Origin", sizeof("Origin") - 1);

    if (origin) {
        /* "null" (a sandboxed or file page) is no site, and never equal */
        if (ngx_http_bulletdrop_base_url(r, &site) == NGX_OK
            && origin->value.len == site.len
            && ngx_strncasecmp(origin->value.data, site.data, site.len) == 0)
        {
            return NGX_OK;
        }

        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_CSRF, NULL);
    }

    fetch_site = ngx_http_bulletdrop_header_in(r, "Sec-Fetch-Site",
                                               sizeof("Sec-Fetch-Site") - 1);

    if (fetch_site
        && fetch_site->value.len == sizeof("same-origin") - 1
        && ngx_strncasecmp(fetch_site->value.data, (u_char *) "same-origin",
                           sizeof("same-origin") - 1) == 0)
    {
        return NGX_OK;
    }

    return ngx_http_bulletdrop_error_record(ctx, BD_ERR_CSRF, NULL);
}


ngx_int_t
ngx_http_bulletdrop_session_set(ngx_http_request_t *r,
    ngx_http_bulletdrop_user_t *user, time_t since)
{
    time_t                            now, expires;
    ngx_str_t                         token;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    now = ngx_time();

    if (since == 0) {
        since = now;
    }

    /* never past the limit from sign-in, whatever bulletdrop_jwt_ttl says */
    expires = ngx_min(now + bmcf->jwt_ttl,
                      since + NGX_HTTP_BULLETDROP_SESSION_MAX);

    if (expires <= now) {
        return NGX_OK;
    }

    if (ngx_http_bulletdrop_jwt_issue(r, user, since, expires, &token)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: cannot make a JWT");
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop session: a new cookie for user #%L", user->id);

    return ngx_http_bulletdrop_session_cookie(r, &token, expires - now);
}


/*
 * Only the browser's copy goes: the token stays valid until it expires,
 * as a bearer token does (a password change retires them all).
 */

ngx_int_t
ngx_http_bulletdrop_logout(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_str_t  token;

    /*
     * Another site must not end the session either, even when its request
     * carries no cookie (SameSite): a browser says where a request comes
     * from, and curl, which says nothing, may clear a cookie of its own
     */
    if ((ngx_http_bulletdrop_session_token(r, &token) == NGX_OK
         || ngx_http_bulletdrop_header_in(r, "Origin", sizeof("Origin") - 1)
         || ngx_http_bulletdrop_header_in(r, "Sec-Fetch-Site",
                                          sizeof("Sec-Fetch-Site") - 1))
        && ngx_http_bulletdrop_session_same_origin(r, ctx) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_bulletdrop_session_clear(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_no_content(r);
}


ngx_int_t
ngx_http_bulletdrop_session_clear(ngx_http_request_t *r)
{
    ngx_str_t  none;

    ngx_str_null(&none);

    return ngx_http_bulletdrop_session_cookie(r, &none, 0);
}


static ngx_int_t
ngx_http_bulletdrop_session_cookie(ngx_http_request_t *r, ngx_str_t *token,
    time_t max_age)
{
    u_char                     *p;
    size_t                      len;
    ngx_table_elt_t            *h;
    ngx_http_bulletdrop_ctx_t  *ctx;

    len = sizeof(NGX_HTTP_BULLETDROP_SESSION_TLS_COOKIE "=") - 1 + token->len
          + sizeof(NGX_HTTP_BULLETDROP_SESSION_TLS_ATTRS) - 1
          + sizeof("; Max-Age=") - 1 + NGX_TIME_T_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_bulletdrop_https(r)) {
        len = ngx_snprintf(p, len,
                           NGX_HTTP_BULLETDROP_SESSION_TLS_COOKIE "=%V"
                           NGX_HTTP_BULLETDROP_SESSION_TLS_ATTRS
                           "; Max-Age=%T", token, max_age)
              - p;

    } else {
        len = ngx_snprintf(p, len,
                           NGX_HTTP_BULLETDROP_SESSION_COOKIE "=%V"
                           NGX_HTTP_BULLETDROP_SESSION_ATTRS
                           "; Max-Age=%T", token, max_age)
              - p;
    }

    /* a renewal then a password change: the last cookie set is the one */
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    h = ctx ? ctx->session_cookie : NULL;

    if (h == NULL) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Set-Cookie");

        if (ctx) {
            ctx->session_cookie = h;
        }
    }

    h->value.data = p;
    h->value.len = len;

    return NGX_OK;
}

