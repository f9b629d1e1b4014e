/*
 * BulletDrop: accounts: registration, login, the user's own profile and
 * API keys, and what administrators do to users and invites.
 */

#ifndef _NGX_HTTP_BULLETDROP_ACCOUNTS_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_ACCOUNTS_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


ngx_int_t ngx_http_bulletdrop_register(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_login(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_me(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_me_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_keys_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_key_create(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_key_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_invites_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_invite_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_invite_create(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_admin_users(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_admin_user_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


/* mints an API key named name into ctx->api_key, its row with handler */
ngx_int_t ngx_http_bulletdrop_key_mint(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *name,
    ngx_http_bulletdrop_db_handler_pt handler);

/* the answer of a mint that found the user holding 100 keys */
void ngx_http_bulletdrop_too_many_keys(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_ACCOUNTS_H_INCLUDED_ */
