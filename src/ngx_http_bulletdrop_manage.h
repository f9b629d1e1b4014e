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

/* what comes once a file went: rc NGX_OK, or why it did not */
typedef void (*ngx_http_bulletdrop_removed_pt)(ngx_http_request_t *r,
    ngx_int_t rc);

/*
 * The file of an uploads row goes (a row of the usual columns).  NGX_OK:
 * gone already; NGX_DONE: going (a bucket's object), and next is called
 * when it went or did not; else an error to answer.
 */
ngx_int_t ngx_http_bulletdrop_upload_remove(ngx_http_request_t *r,
    PGresult *res, int row, ngx_http_bulletdrop_removed_pt next);

/* an uploads row as the API shows it, with its delete link when given */
json_t *ngx_http_bulletdrop_upload_json(ngx_http_request_t *r,
    PGresult *res, int row, ngx_str_t *delete_token);


#endif /* _NGX_HTTP_BULLETDROP_MANAGE_H_INCLUDED_ */
