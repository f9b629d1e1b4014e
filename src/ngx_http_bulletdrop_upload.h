/*
 * BulletDrop: uploads: a body streamed to a file in the upload directory,
 * checked as it arrives, and committed with its row.
 */

#ifndef _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_


#include "ngx_http_bulletdrop.h"

/*
 * What is done with uploads once in (list, show, delete) has its own
 * header; included here until the files that still look for it here
 * (api.c, deletelink.c) include it themselves
 */
#include "ngx_http_bulletdrop_manage.h"


/* POST /api/uploads and POST /api/uploads/sharex */
ngx_int_t ngx_http_bulletdrop_upload(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_upload_sharex(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* the bytes of the upload's file, once stored; 0 before */
off_t ngx_http_bulletdrop_upload_size(ngx_http_bulletdrop_ctx_t *ctx);

/* bulletdrop_upload_dir and its subdirectories, created by nginx */
char *ngx_http_bulletdrop_upload_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);

/* bulletdrop_allowed_extensions .ext ... */
char *ngx_http_bulletdrop_extensions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the first worker removes stale temp files, at start and then and again */
ngx_int_t ngx_http_bulletdrop_upload_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);


#endif /* _NGX_HTTP_BULLETDROP_UPLOAD_H_INCLUDED_ */
