/*
 * BulletDrop: the JSON API under /api/ and the delete links under /d/:
 * the route table, and who may call each route.
 */

#ifndef _NGX_HTTP_BULLETDROP_API_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_API_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* the content handler of a location with "bulletdrop_api" */
ngx_int_t ngx_http_bulletdrop_api_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULLETDROP_API_H_INCLUDED_ */
