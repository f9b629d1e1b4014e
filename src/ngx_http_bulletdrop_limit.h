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

/*
 * NGX_OK: may try, and the attempt is counted as a failure until it passes;
 * NGX_DECLINED: blocked for *retry more seconds.  username NULL: a
 * registration, counted per client address.
 */
ngx_int_t ngx_http_bulletdrop_limit_take(ngx_http_request_t *r,
    ngx_str_t *username, time_t *retry);

/* a login passed: its name is cleared, its address's count given back */
void ngx_http_bulletdrop_limit_passed(ngx_http_request_t *r,
    ngx_str_t *username);


#endif /* _NGX_HTTP_BULLETDROP_LIMIT_H_INCLUDED_ */
