/*
 * BulletDrop: ready-made configurations for ShareX and Flameshot.
 */

#ifndef _NGX_HTTP_BULLETDROP_CLIENTS_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_CLIENTS_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* GET /api/users/me/sharex[?new_key=1]: a .sxcu file */
ngx_int_t ngx_http_bulletdrop_sharex_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* GET /api/users/me/flameshot[?new_key=1]: a bash script */
ngx_int_t ngx_http_bulletdrop_flameshot_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_CLIENTS_H_INCLUDED_ */
