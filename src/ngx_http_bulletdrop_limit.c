/*
 * BulletDrop: failed logins counted per user name and per client address.
 *
 * The table (src/bd_limit.c) lives in a shared memory zone under the
 * zone's slab mutex.  Unknown user names are counted like real ones, so
 * the limit says nothing about which names exist.  Registrations are
 * counted per address too, each of them: each costs a password hash.  An
 * IPv6 client is counted by its /64, the block one subscriber usually
 * holds.
 */

#include <openssl/rand.h>

#include "ngx_http_bulletdrop_limit.h"
#include "bd_limit.h"


#define NGX_HTTP_BULLETDROP_LIMIT_ZONE_SIZE  (1024 * 1024)

/*
 * 'u' and the name (lower case), or 'a' (logins) or 'r' (registrations)
 * and the address bytes
 */
#define NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN    (1 + 32)


static ngx_int_t ngx_http_bulletdrop_limit_init_zone(ngx_shm_zone_t *zone,
    void *data);
static size_t ngx_http_bulletdrop_limit_user_key(ngx_str_t *username,
    u_char *key);
static size_t ngx_http_bulletdrop_limit_addr_key(ngx_http_request_t *r,
    u_char kind, u_char *key);
static ngx_http_bulletdrop_limit_conf_t *ngx_http_bulletdrop_limit_conf(
    ngx_http_request_t *r);


char *
ngx_http_bulletdrop_limit_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulletdrop_limit_conf_t *lcf = (void *) ((char *) conf
                                                       + cmd->offset);

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lcf->period != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "user=", 5) == 0
            || ngx_strncmp(value[i].data, "addr=", 5) == 0)
        {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n <= 0) {
                goto invalid;
            }

            if (value[i].data[0] == 'u') {
                lcf->user = n;

            } else {
                lcf->addr = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "period=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            lcf->period = ngx_parse_time(&s, 1);
            if (lcf->period == (time_t) NGX_ERROR || lcf->period == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (lcf->period == NGX_CONF_UNSET) {
        lcf->period = 0;    /* the default, but the directive was seen */
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"bulletdrop_login_limit\" parameter \"%V\": "
                       "expected user=N, addr=N or period=TIME, "
                       "N above 0", &value[i]);
    return NGX_CONF_ERROR;
}


char *
ngx_http_bulletdrop_limit_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_limit_conf_t *lcf, ngx_uint_t api)
{
    ngx_str_t  name;

    ngx_conf_init_uint_value(lcf->user, 10);
    ngx_conf_init_uint_value(lcf->addr, 50);

    if (lcf->period == NGX_CONF_UNSET || lcf->period == 0) {
        lcf->period = 15 * 60;
    }

    if (!api) {
        return NGX_CONF_OK;
    }

    ngx_str_set(&name, "bulletdrop_login_limit");

    lcf->zone = ngx_shared_memory_add(cf, &name,
                                      NGX_HTTP_BULLETDROP_LIMIT_ZONE_SIZE,
                                      &ngx_http_bulletdrop_module);
    if (lcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lcf->zone->init = ngx_http_bulletdrop_limit_init_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_bulletdrop_limit_init_zone(ngx_shm_zone_t *zone, void *data)
{
    size_t            size, len;
    uint32_t          n;
    uint64_t          seed;
    bd_limit_t       *table;
    ngx_slab_pool_t  *shpool;

    /* a reload keeps the counts */
    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    /* one allocation of whole pages: as many as the slab pool has */
    n = bd_limit_slots_for((shpool->end - shpool->start) - ngx_pagesize);
    size = bd_limit_size(n);

    table = ngx_slab_alloc(shpool, size);
    if (table == NULL) {
        return NGX_ERROR;
    }

    if (RAND_bytes((u_char *) &seed, sizeof(seed)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                      "bulletdrop_login_limit: RAND_bytes() failed");
        return NGX_ERROR;
    }

    bd_limit_init(table, n, seed);

    len = sizeof(" in bulletdrop_login_limit zone") - 1;

    shpool->log_ctx = ngx_slab_alloc(shpool, len + 1);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(shpool->log_ctx, " in bulletdrop_login_limit zone", len + 1);

    shpool->data = table;
    zone->data = table;

    return NGX_OK;
}


/*
 * Checks and counts under one lock: an attempt counts as a failure from
 * the start, so that many sent at once are limited like many in a row;
 * a login that succeeds gives its count back (ngx_http_bulletdrop_limit_
 * passed()).  username NULL: a registration, counted per address alone.
 */

ngx_int_t
ngx_http_bulletdrop_limit_take(ngx_http_request_t *r, ngx_str_t *username,
    time_t *retry)
{
    size_t                             ulen, alen;
    int64_t                            now, wait;
    bd_limit_t                        *table;
    ngx_slab_pool_t                   *shpool;
    ngx_http_bulletdrop_limit_conf_t  *lcf;
    u_char                             ukey[NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN];
    u_char                             akey[NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN];

    lcf = ngx_http_bulletdrop_limit_conf(r);
    shpool = (ngx_slab_pool_t *) lcf->zone->shm.addr;
    table = lcf->zone->data;

    ulen = username ? ngx_http_bulletdrop_limit_user_key(username, ukey) : 0;
    alen = ngx_http_bulletdrop_limit_addr_key(r, username ? 'a' : 'r', akey);
    now = ngx_time();

    ngx_shmtx_lock(&shpool->mutex);

    wait = 0;

    if (ulen) {
        wait = bd_limit_check(table, ukey, ulen, now, lcf->user,
                              lcf->period);
    }

    if (alen) {
        wait = ngx_max(wait, bd_limit_check(table, akey, alen, now,
                                            lcf->addr, lcf->period));
    }

    if (wait == 0) {
        if (ulen) {
            bd_limit_fail(table, ukey, ulen, now, lcf->period);
        }

        if (alen) {
            bd_limit_fail(table, akey, alen, now, lcf->period);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    *retry = (time_t) wait;

    return wait > 0 ? NGX_DECLINED : NGX_OK;
}


void
ngx_http_bulletdrop_limit_passed(ngx_http_request_t *r, ngx_str_t *username)
{
    size_t                             ulen, alen;
    bd_limit_t                        *table;
    ngx_slab_pool_t                   *shpool;
    ngx_http_bulletdrop_limit_conf_t  *lcf;
    u_char                             ukey[NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN];
    u_char                             akey[NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN];

    lcf = ngx_http_bulletdrop_limit_conf(r);
    shpool = (ngx_slab_pool_t *) lcf->zone->shm.addr;
    table = lcf->zone->data;

    ulen = ngx_http_bulletdrop_limit_user_key(username, ukey);
    alen = ngx_http_bulletdrop_limit_addr_key(r, 'a', akey);

    ngx_shmtx_lock(&shpool->mutex);

    bd_limit_reset(table, ukey, ulen);

    if (alen) {
        bd_limit_refund(table, akey, alen);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


static ngx_http_bulletdrop_limit_conf_t *
ngx_http_bulletdrop_limit_conf(ngx_http_request_t *r)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    return &bmcf->login_limit;
}


/* names longer than a valid one are cut: they fail validation anyway */

static size_t
ngx_http_bulletdrop_limit_user_key(ngx_str_t *username, u_char *key)
{
    size_t  len;

    len = ngx_min(username->len, NGX_HTTP_BULLETDROP_LIMIT_KEY_LEN - 1);

    key[0] = 'u';
    ngx_strlow(key + 1, username->data, len);

    return 1 + len;
}


/* 0 when the client is not on IP (a Unix socket): no address limit */

static size_t
ngx_http_bulletdrop_limit_addr_key(ngx_http_request_t *r, u_char kind,
    u_char *key)
{
    u_char               *addr;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    key[0] = kind;

    switch (r->connection->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;
        addr = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ngx_memcpy(key + 1, addr + 12, 4);
            return 1 + 4;
        }

        ngx_memcpy(key + 1, addr, 8);
        return 1 + 8;
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        ngx_memcpy(key + 1, &sin->sin_addr, 4);
        return 1 + 4;

    default:
        return 0;
    }
}
