/*
 * BulletDrop: files served on the file domains by nginx's static module,
 * with the module deciding only what must be decided: the domain, the
 * path, a file's limits, and the headers that make any file safe to show.
 */

#ifndef _NGX_HTTP_BULLETDROP_FILES_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_FILES_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* the xattr that keeps a file's display name, set before it is placed */
#define NGX_HTTP_BULLETDROP_NAME_XATTR  "user.bulletdrop.name"


/* bulletdrop_files on | off */
char *ngx_http_bulletdrop_files_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* bulletdrop_default_expiry time | off */
char *ngx_http_bulletdrop_expiry_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_http_bulletdrop_files_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);
ngx_int_t ngx_http_bulletdrop_files_postconf(ngx_conf_t *cf);
/* what each worker keeps of files (bmcf->known, bmcf->views) */
ngx_int_t ngx_http_bulletdrop_files_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);


#endif /* _NGX_HTTP_BULLETDROP_FILES_H_INCLUDED_ */
