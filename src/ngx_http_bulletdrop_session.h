/*
 * BulletDrop: browser sessions.
 */

#ifndef _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/*
 * The session's token from the request's cookie: NGX_OK, or NGX_DECLINED
 * when there is none
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

/* a new token for user, in the cookie of the answer */
ngx_int_t ngx_http_bulletdrop_session_set(ngx_http_request_t *r,
    ngx_http_bulletdrop_user_t *user);

/* the cookie gone from the browser, with the answer */
ngx_int_t ngx_http_bulletdrop_session_clear(ngx_http_request_t *r);

/* POST /api/auth/logout */
ngx_int_t ngx_http_bulletdrop_logout(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_SESSION_H_INCLUDED_ */
