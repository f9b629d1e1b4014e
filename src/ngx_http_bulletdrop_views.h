/*
 * BulletDrop: views of files on the file domains: checked and counted by
 * the database in batches, or counted in the log phase.
 */

#ifndef _NGX_HTTP_BULLETDROP_VIEWS_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_VIEWS_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* each worker's batches (bmcf->views) */
ngx_int_t ngx_http_bulletdrop_views_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);

/*
 * The access phase waits for the database to decide on f: returns
 * NGX_AGAIN, and runs the phases again once it has
 */
ngx_int_t ngx_http_bulletdrop_files_ask(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f);

/* the log phase: a view is counted, and a file out of views goes */
ngx_int_t ngx_http_bulletdrop_files_log(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULLETDROP_VIEWS_H_INCLUDED_ */
