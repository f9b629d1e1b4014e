/*
 * BulletDrop: files read from the bucket: the $bulletdrop_s3_* variables
 * of a signed GET, and the redirect of serve=redirect.
 */

#ifndef _NGX_HTTP_BULLETDROP_S3_SERVE_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_S3_SERVE_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


ngx_int_t ngx_http_bulletdrop_s3_add_variables(ngx_conf_t *cf);
/* the 302 to <public_url>/<key> of a file without limits */
ngx_int_t ngx_http_bulletdrop_s3_redirect(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f);


#endif /* _NGX_HTTP_BULLETDROP_S3_SERVE_H_INCLUDED_ */
