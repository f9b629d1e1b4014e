/*
 * BulletDrop: what the web app needs of the module.
 */

#ifndef _NGX_HTTP_BULLETDROP_SITE_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SITE_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* $bulletdrop_file_origins, for the module's preconfiguration */
ngx_int_t ngx_http_bulletdrop_site_variables(ngx_conf_t *cf);

/* GET /api/config */
ngx_int_t ngx_http_bulletdrop_site_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_SITE_H_INCLUDED_ */
