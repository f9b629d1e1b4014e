/*
 * BulletDrop: failed logins counted per user name and per client address
 * in shared memory, so that every worker sees the same counts.
 */

#ifndef _NGX_HTTP_BULLETDROP_LIMIT_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_LIMIT_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* bulletdrop_login_limit user=N addr=M period=TIME */
char *ngx_http_bulletdrop_limit_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* defaults, and the shared zone when some location serves the API */
char *ngx_http_bulletdrop_limit_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_limit_conf_t *lcf, ngx_uint_t api);

/* NGX_OK: may try; NGX_DECLINED: blocked for *retry more seconds */
ngx_int_t ngx_http_bulletdrop_limit_check(ngx_http_request_t *r,
    ngx_str_t *username, time_t *retry);

void ngx_http_bulletdrop_limit_failed(ngx_http_request_t *r,
    ngx_str_t *username);

/* a successful login clears its user name, not its address */
void ngx_http_bulletdrop_limit_passed(ngx_http_request_t *r,
    ngx_str_t *username);


#endif /* _NGX_HTTP_BULLETDROP_LIMIT_H_INCLUDED_ */
