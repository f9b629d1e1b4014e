/*
 * BulletDrop: browser sessions.
 */

#ifndef _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/*
 * The session's token from the request's cookie: NGX_OK, NGX_DECLINED
 * when there is none, NGX_ERROR when there are several
 */
ngx_int_t ngx_http_bulletdrop_session_token(ngx_http_request_t *r,
    ngx_str_t *token);

/*
 * NGX_OK when the request was made by this site's own pages: its Origin
 * is the site's, or with no Origin, Sec-Fetch-Site says same-origin.
 * NGX_DECLINED with a 403 csrf recorded in ctx otherwise.
 */
ngx_int_t ngx_http_bulletdrop_session_same_origin(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* a session is renewed while it is used, up to this long after sign-in */
#define NGX_HTTP_BULLETDROP_SESSION_MAX  (30 * 24 * 60 * 60)

/*
 * A new token for user, in the cookie of the answer; since: when the
 * session began (0: now)
 */
ngx_int_t ngx_http_bulletdrop_session_set(ngx_http_request_t *r,
    ngx_http_bulletdrop_user_t *user, time_t since);

/* the cookie gone from the browser, with the answer */
ngx_int_t ngx_http_bulletdrop_session_clear(ngx_http_request_t *r);

/* POST /api/auth/logout */
ngx_int_t ngx_http_bulletdrop_logout(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_ */
