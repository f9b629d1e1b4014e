/*
 * BulletDrop: delete links, /d/TOKEN, which ShareX opens in a browser:
 * GET shows what would go and a button, POST deletes it.
 */

#ifndef _NGX_HTTP_BULLETDROP_DELETELINK_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_DELETELINK_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* GET /d/TOKEN: a confirm page; never deletes */
ngx_int_t ngx_http_bulletdrop_delete_link_show(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* POST /d/TOKEN: the file, then its row */
ngx_int_t ngx_http_bulletdrop_delete_link_confirm(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_DELETELINK_H_INCLUDED_ */
