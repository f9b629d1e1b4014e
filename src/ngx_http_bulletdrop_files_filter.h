/*
 * BulletDrop: the headers of file answers on the file domains.
 */

#ifndef _NGX_HTTP_BULLETDROP_FILES_FILTER_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_FILES_FILTER_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* puts the header filter in nginx's chain (postconfiguration) */
ngx_int_t ngx_http_bulletdrop_files_filter_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_BULLETDROP_FILES_FILTER_H_INCLUDED_ */
