/*
 * BulletDrop: managing a user's uploads once they are in: the list, one,
 * and deleting one; an uploads row as the API shows it, and its file
 * removed (delete links use both).
 */

#ifndef _NGX_HTTP_BULLETDROP_MANAGE_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_MANAGE_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* GET /api/uploads, GET and DELETE /api/uploads/ID */
ngx_int_t ngx_http_bulletdrop_uploads_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_upload_get(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_upload_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* the file of an uploads row goes (a row of the usual columns) */
ngx_int_t ngx_http_bulletdrop_upload_remove(ngx_http_request_t *r,
    PGresult *res, int row);

/* an uploads row as the API shows it, with its delete link when given */
json_t *ngx_http_bulletdrop_upload_json(ngx_http_request_t *r,
    PGresult *res, int row, ngx_str_t *delete_token);


#endif /* _NGX_HTTP_BULLETDROP_MANAGE_H_INCLUDED_ */
