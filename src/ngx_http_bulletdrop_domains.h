/*
 * BulletDrop: file domains.  The enabled ones live in shared memory, so
 * that a request learns whether its Host is one without asking the
 * database; every change is heard on the "bulletdrop" channel.
 */

#ifndef _NGX_HTTP_BULLETDROP_DOMAINS_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_DOMAINS_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* the shared zone; the module's notify hook reloads on 'domains' */
char *ngx_http_bulletdrop_domains_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);
ngx_int_t ngx_http_bulletdrop_domains_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);
void ngx_http_bulletdrop_domains_notified(ngx_log_t *log,
    const char *payload);

/*
 * NGX_OK: name is an enabled domain; NGX_DECLINED: it is not;
 * NGX_AGAIN: this server has not loaded its domains yet
 */
ngx_int_t ngx_http_bulletdrop_domain_enabled(u_char *name, size_t len);

/*
 * The first enabled domain into buf (253 bytes); NGX_DECLINED: there is
 * none; NGX_AGAIN: not loaded yet
 */
ngx_int_t ngx_http_bulletdrop_domain_default(u_char *buf, size_t *len);

/* the enabled domains as origins of this request's scheme and port */
ngx_int_t ngx_http_bulletdrop_domains_origins(ngx_http_request_t *r,
    ngx_str_t *out);

/* the API: GET, POST /api/domains, POST seed, PATCH and DELETE one */
ngx_int_t ngx_http_bulletdrop_domains_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_domain_add(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_domains_seed(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_domain_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
ngx_int_t ngx_http_bulletdrop_domain_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_DOMAINS_H_INCLUDED_ */
