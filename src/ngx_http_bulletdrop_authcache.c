/*
 * BulletDrop: who asked lately, remembered by each worker (see the header
 * for what may be remembered and why that is safe).
 *
 * A small direct-mapped table per worker: a credential has one slot, and
 * a newcomer takes it over.  Entries carry the shared generation they were
 * made in; bumping it forgets them all without touching any.
 */

#include "ngx_http_bulletdrop_authcache.h"


#define NGX_HTTP_BULLETDROP_AUTHCACHE_SLOTS  512
#define NGX_HTTP_BULLETDROP_AUTHCACHE_TTL    10000

/* the longest user name and domain name the database takes */
#define NGX_HTTP_BULLETDROP_USERNAME_MAX     32
#define NGX_HTTP_BULLETDROP_DOMAIN_MAX       253


typedef struct {
    ngx_atomic_uint_t   generation;
    ngx_msec_t          expires;
    size_t              cred_len;                /* 0: an empty slot */
    int64_t             id;
    int64_t             token_version;
    size_t              username_len;
    ssize_t             domain_len;              /* -1: none */
    unsigned            admin:1;
    u_char              cred[NGX_HTTP_BULLETDROP_CRED_MAX];
    u_char              username[NGX_HTTP_BULLETDROP_USERNAME_MAX];
    u_char              domain[NGX_HTTP_BULLETDROP_DOMAIN_MAX];
} ngx_http_bulletdrop_authcache_entry_t;


/* what a worker keeps (bmcf->authcache) */
struct ngx_http_bulletdrop_authcache_worker_s {
    /* this worker's table */
    ngx_http_bulletdrop_authcache_entry_t  *table;
    /* the generation every worker shares, in the zone */
    ngx_atomic_t                           *generation;
};


static ngx_int_t ngx_http_bulletdrop_authcache_init_zone(
    ngx_shm_zone_t *zone, void *data);
static ngx_http_bulletdrop_authcache_worker_t *
    ngx_http_bulletdrop_authcache_worker(void);
static ngx_http_bulletdrop_authcache_entry_t *
    ngx_http_bulletdrop_authcache_slot(
    ngx_http_bulletdrop_authcache_worker_t *aw, ngx_str_t *cred);
static ngx_int_t ngx_http_bulletdrop_authcache_copy(ngx_pool_t *pool,
    ngx_str_t *dst, u_char *src, size_t len);


char *
ngx_http_bulletdrop_authcache_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_str_t  name;

    if (!bmcf->api) {
        return NGX_CONF_OK;
    }

    ngx_str_set(&name, "bulletdrop_auth");

    bmcf->authcache_zone = ngx_shared_memory_add(cf, &name,
                                                 8 * ngx_pagesize,
                                                 &ngx_http_bulletdrop_module);
    if (bmcf->authcache_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    bmcf->authcache_zone->init = ngx_http_bulletdrop_authcache_init_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_bulletdrop_authcache_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_atomic_t     *generation;
    ngx_slab_pool_t  *shpool;

    /* a reload keeps the counter: old workers still read it */
    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    generation = ngx_slab_alloc(shpool, sizeof(ngx_atomic_t));
    if (generation == NULL) {
        return NGX_ERROR;
    }

    *generation = 1;

    shpool->data = (void *) generation;
    zone->data = (void *) generation;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_authcache_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_http_bulletdrop_authcache_worker_t  *aw;

    if (bmcf->authcache_zone == NULL) {
        return NGX_OK;
    }

    aw = ngx_pcalloc(cycle->pool,
                     sizeof(ngx_http_bulletdrop_authcache_worker_t));
    if (aw == NULL) {
        return NGX_ERROR;
    }

    aw->generation = bmcf->authcache_zone->data;

    aw->table = ngx_calloc(NGX_HTTP_BULLETDROP_AUTHCACHE_SLOTS
                           * sizeof(ngx_http_bulletdrop_authcache_entry_t),
                           cycle->log);
    if (aw->table == NULL) {
        return NGX_ERROR;
    }

    bmcf->authcache = aw;

    return NGX_OK;
}


void
ngx_http_bulletdrop_authcache_exit_process(void)
{
    ngx_http_bulletdrop_authcache_worker_t  *aw;

    aw = ngx_http_bulletdrop_authcache_worker();

    if (aw && aw->table) {
        ngx_free(aw->table);
        aw->table = NULL;
    }
}


/* NULL in the master, and where no location has bulletdrop_api */

static ngx_http_bulletdrop_authcache_worker_t *
ngx_http_bulletdrop_authcache_worker(void)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    return bmcf ? bmcf->authcache : NULL;
}


ngx_int_t
ngx_http_bulletdrop_authcache_get(ngx_pool_t *pool, ngx_str_t *cred,
    ngx_http_bulletdrop_user_t *user)
{
    ngx_http_bulletdrop_authcache_entry_t   *e;
    ngx_http_bulletdrop_authcache_worker_t  *aw;

    aw = ngx_http_bulletdrop_authcache_worker();
    e = ngx_http_bulletdrop_authcache_slot(aw, cred);

    if (e == NULL
        || e->cred_len != cred->len
        || ngx_memcmp(e->cred, cred->data, cred->len) != 0
        || e->generation != *aw->generation
        || (ngx_msec_int_t) (e->expires - ngx_current_msec) <= 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                       "bulletdrop auth cache: miss for \"%V\"", cred);
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "bulletdrop auth cache: hit for \"%V\": user #%L",
                   cred, e->id);

    ngx_memzero(user, sizeof(ngx_http_bulletdrop_user_t));

    user->id = e->id;
    user->token_version = e->token_version;
    user->quota_bytes = -1;
    user->admin = e->admin;

    if (e->admin) {
        ngx_str_set(&user->role, "admin");

    } else {
        ngx_str_set(&user->role, "user");
    }

    if (ngx_http_bulletdrop_authcache_copy(pool, &user->username,
                                           e->username, e->username_len)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (e->domain_len >= 0
        && ngx_http_bulletdrop_authcache_copy(pool, &user->default_domain,
                                              e->domain, e->domain_len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


void
ngx_http_bulletdrop_authcache_put(ngx_str_t *cred,
    ngx_http_bulletdrop_user_t *user)
{
    ngx_http_bulletdrop_authcache_entry_t   *e;
    ngx_http_bulletdrop_authcache_worker_t  *aw;

    /* refusals and quotas are the database's to judge, every time */
    if (user->disabled || user->quota_bytes >= 0
        || user->username.len > NGX_HTTP_BULLETDROP_USERNAME_MAX
        || user->default_domain.len > NGX_HTTP_BULLETDROP_DOMAIN_MAX)
    {
        return;
    }

    aw = ngx_http_bulletdrop_authcache_worker();

    e = ngx_http_bulletdrop_authcache_slot(aw, cred);
    if (e == NULL) {
        return;
    }

    e->generation = *aw->generation;
    e->expires = ngx_current_msec + NGX_HTTP_BULLETDROP_AUTHCACHE_TTL;
    e->id = user->id;
    e->token_version = user->token_version;
    e->admin = user->admin;

    e->username_len = user->username.len;
    ngx_memcpy(e->username, user->username.data, user->username.len);

    if (user->default_domain.data == NULL) {
        e->domain_len = -1;

    } else {
        e->domain_len = user->default_domain.len;
        ngx_memcpy(e->domain, user->default_domain.data,
                   user->default_domain.len);
    }

    e->cred_len = cred->len;
    ngx_memcpy(e->cred, cred->data, cred->len);
}


void
ngx_http_bulletdrop_authcache_forget(ngx_str_t *cred)
{
    ngx_http_bulletdrop_authcache_entry_t  *e;

    e = ngx_http_bulletdrop_authcache_slot(
            ngx_http_bulletdrop_authcache_worker(), cred);

    if (e && e->cred_len == cred->len
        && ngx_memcmp(e->cred, cred->data, cred->len) == 0)
    {
        e->cred_len = 0;
    }
}


void
ngx_http_bulletdrop_authcache_changed(ngx_log_t *log)
{
    ngx_http_bulletdrop_authcache_worker_t  *aw;

    aw = ngx_http_bulletdrop_authcache_worker();

    if (aw == NULL || aw->generation == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(aw->generation, 1);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, log, 0,
                   "bulletdrop: remembered credentials forgotten");
}


void
ngx_http_bulletdrop_authcache_notified(ngx_log_t *log, const char *payload)
{
    /* changed() does nothing where there is no cache */
    if (payload == NULL || ngx_strcmp(payload, "auth") == 0) {
        ngx_http_bulletdrop_authcache_changed(log);
    }
}


static ngx_http_bulletdrop_authcache_entry_t *
ngx_http_bulletdrop_authcache_slot(ngx_http_bulletdrop_authcache_worker_t *aw,
    ngx_str_t *cred)
{
    if (aw == NULL || aw->table == NULL
        || cred->len == 0 || cred->len > NGX_HTTP_BULLETDROP_CRED_MAX)
    {
        return NULL;
    }

    return &aw->table[
               ngx_crc32_short(cred->data, cred->len)
               % NGX_HTTP_BULLETDROP_AUTHCACHE_SLOTS];
}


static ngx_int_t
ngx_http_bulletdrop_authcache_copy(ngx_pool_t *pool, ngx_str_t *dst,
    u_char *src, size_t len)
{
    dst->len = len;
    dst->data = ngx_pnalloc(pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->data[len] = '\0';

    return NGX_OK;
}
