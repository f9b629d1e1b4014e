/*
 * BulletDrop: who asked lately, remembered by each worker.
 *
 * Uploads are let in on what was remembered of their credential, for a
 * few seconds, instead of a database round trip each: their commit checks
 * the credential again in the same statement that writes the row
 * (bd_upload_commit_batch() in sql/006), so a remembered credential
 * decides only how early an upload is refused, never whether it is kept.
 * Only users without a quota are remembered, so that a quota is always
 * judged on the database's figures.  Any change to a user or key forgets
 * everything in every worker (a generation counter in shared memory): at
 * once for the module's own changes, and within milliseconds for any
 * other, which triggers announce on the "bulletdrop" channel
 * (sql/005_notify.sql).  The few seconds bound what a lost notification
 * could leave.
 */

#ifndef _NGX_HTTP_BULLETDROP_AUTHCACHE_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_AUTHCACHE_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* what names a credential in the cache: a key's hex SHA-256, "j<id>.<ver>" */
#define NGX_HTTP_BULLETDROP_CRED_MAX  64


char *ngx_http_bulletdrop_authcache_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);
ngx_int_t ngx_http_bulletdrop_authcache_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);
void ngx_http_bulletdrop_authcache_exit_process(void);

/* NGX_OK with *user filled in (without usage), or NGX_DECLINED */
ngx_int_t ngx_http_bulletdrop_authcache_get(ngx_pool_t *pool,
    ngx_str_t *cred, ngx_http_bulletdrop_user_t *user);

/* remembers the user behind cred, if it is one that may be remembered */
void ngx_http_bulletdrop_authcache_put(ngx_str_t *cred,
    ngx_http_bulletdrop_user_t *user);

/* the database refused what this worker remembered */
void ngx_http_bulletdrop_authcache_forget(ngx_str_t *cred);

/* a user or key changed: every worker forgets everything */
void ngx_http_bulletdrop_authcache_changed(ngx_log_t *log);

/* the "bulletdrop" channel said something: 'auth', or NULL for anything */
void ngx_http_bulletdrop_authcache_notified(ngx_log_t *log,
    const char *payload);


#endif /* _NGX_HTTP_BULLETDROP_AUTHCACHE_H_INCLUDED_ */
