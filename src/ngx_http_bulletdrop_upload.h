/*
 * BulletDrop: uploads: a body streamed to a file in the upload directory,
 * checked as it arrives, and committed with its row.
 */

#ifndef _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* POST /api/uploads and POST /api/uploads/sharex */
ngx_int_t ngx_http_bulletdrop_upload(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_upload_sharex(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

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

/* bulletdrop_upload_dir and its subdirectories, created by nginx */
char *ngx_http_bulletdrop_upload_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);

/* bulletdrop_allowed_extensions .ext ... */
char *ngx_http_bulletdrop_extensions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the first worker removes stale temp files, at start and then and again */
ngx_int_t ngx_http_bulletdrop_upload_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);

/* an uploads row as the API shows it, with its delete link when given */
json_t *ngx_http_bulletdrop_upload_json(ngx_http_request_t *r,
    PGresult *res, int row, ngx_str_t *delete_token);


#endif /* _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_ */
