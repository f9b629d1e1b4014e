/*
 * BulletDrop: nginx's own error answers in the API's JSON.
 *
 * "error_page 413 414 429 /_bulletdrop/error;" sends the requests that
 * nginx refused itself (limit_req, a line too long, a body over
 * client_max_body_size) to a location with "bulletdrop_error_page;",
 * which answers {"error": ..., "detail": ...} with the same status.
 */

#ifndef _NGX_HTTP_BULLETDROP_ERRPAGE_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_ERRPAGE_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* bulletdrop_error_page [retry_after=time] */
char *ngx_http_bulletdrop_error_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_BULLETDROP_ERRPAGE_H_INCLUDED_ */
