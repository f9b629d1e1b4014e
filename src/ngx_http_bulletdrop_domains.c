/*
 * BulletDrop: file domains.
 *
 * The enabled names live in a shared zone, in the database's order (the
 * first is the default one).  Every worker reloads them when the
 * "bulletdrop" channel says 'domains' or when its listening connection
 * (re)connects; a worker that changes them through the API reloads them
 * before it answers, so the change is served by every worker once the
 * client hears of it.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_text.h"


#define NGX_HTTP_BULLETDROP_DOMAINS_MAX     256
#define NGX_HTTP_BULLETDROP_DOMAIN_LEN      253


typedef struct {
    size_t                          len;
    u_char                          name[NGX_HTTP_BULLETDROP_DOMAIN_LEN];
} ngx_http_bulletdrop_domain_t;


typedef struct {
    /* 0 until a worker has read the table once */
    ngx_uint_t                      loaded;
    /*
     * Every read of the table takes a ticket when it is sent; a read
     * answered late, after a later one was stored, is older: dropped
     */
    ngx_atomic_t                    tickets;
    ngx_atomic_uint_t               stored;
    ngx_uint_t                      n;
    ngx_http_bulletdrop_domain_t    names[NGX_HTTP_BULLETDROP_DOMAINS_MAX];
} ngx_http_bulletdrop_domains_sh_t;


/*
 * What a worker keeps (bmcf->domains).  It is made at configuration, with
 * the file's name, which the master reads when it makes the zone.
 */
struct ngx_http_bulletdrop_domains_worker_s {
    ngx_slab_pool_t                   *shpool;
    ngx_http_bulletdrop_domains_sh_t  *sh;
    ngx_http_bulletdrop_db_conf_t     *db;

    /* <upload_dir>/.domains, NUL-terminated */
    ngx_str_t                          file;

    /* this worker's reload: its ticket; out; another asked for meanwhile */
    ngx_atomic_uint_t                  reading;
    ngx_uint_t                         loading;
    ngx_uint_t                         again;
};


static ngx_int_t ngx_http_bulletdrop_domains_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_bulletdrop_domains_worker_t *
    ngx_http_bulletdrop_domains_worker(void);
static void ngx_http_bulletdrop_domains_read(
    ngx_http_bulletdrop_domains_worker_t *dw,
    ngx_http_bulletdrop_domains_sh_t *sh, ngx_log_t *log);
static void ngx_http_bulletdrop_domains_write(ngx_str_t *file, u_char *buf,
    size_t len);
static void ngx_http_bulletdrop_domains_reload(
    ngx_http_bulletdrop_domains_worker_t *dw);
static void ngx_http_bulletdrop_domains_reloaded(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_atomic_uint_t ngx_http_bulletdrop_domains_ticket(
    ngx_http_bulletdrop_domains_worker_t *dw);
static ngx_int_t ngx_http_bulletdrop_domains_store(PGresult *res,
    ngx_uint_t all, ngx_atomic_uint_t ticket);
static json_t *ngx_http_bulletdrop_domains_json(PGresult *res);
static json_t *ngx_http_bulletdrop_domain_json(PGresult *res, int row);
static ngx_int_t ngx_http_bulletdrop_domain_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *name);
static void ngx_http_bulletdrop_domains_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_domain_changed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_domain_answer(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);


char *
ngx_http_bulletdrop_domains_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    u_char                                *p;
    ngx_str_t                              name;
    ngx_http_bulletdrop_domains_worker_t  *dw;

    if (!bmcf->api && !bmcf->files) {
        return NGX_CONF_OK;
    }

    /* one label will do ("localhost"): what counts is the seed's names */
    p = ngx_pnalloc(cf->pool, sizeof("media.") - 1 + bmcf->base_domain.len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    if (bmcf->base_domain.len
        && !bd_hostname_valid((char *) p,
                              ngx_sprintf(p, "media.%V", &bmcf->base_domain)
                              - p))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_base_domain\" must be a lower-case "
                           "host name, not \"%V\"", &bmcf->base_domain);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "bulletdrop_domains");

    bmcf->domains_zone = ngx_shared_memory_add(cf, &name,
                             sizeof(ngx_http_bulletdrop_domains_sh_t)
                             + 8 * ngx_pagesize,
                             &ngx_http_bulletdrop_module);
    if (bmcf->domains_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    dw = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulletdrop_domains_worker_t));
    if (dw == NULL) {
        return NGX_CONF_ERROR;
    }

    bmcf->domains = dw;

    /* the zone's init is called before this cycle is ngx_cycle */
    bmcf->domains_zone->init = ngx_http_bulletdrop_domains_init_zone;
    bmcf->domains_zone->data = dw;

    if (bmcf->upload_dir.data) {
        name.len = bmcf->upload_dir.len + sizeof("/.domains") - 1;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        (void) ngx_sprintf(name.data, "%V/.domains%Z", &bmcf->upload_dir);
        dw->file = name;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_bulletdrop_domains_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                       *shpool;
    ngx_http_bulletdrop_domains_sh_t      *sh;
    ngx_http_bulletdrop_domains_worker_t  *dw;

    dw = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    /* a reload keeps what the old workers loaded */
    if (data || zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_bulletdrop_domains_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    zone->data = sh;

    /* what the last run knew: files are served before the database is */
    if (dw->file.len) {
        ngx_http_bulletdrop_domains_read(dw, sh, ngx_cycle->log);
    }

    return NGX_OK;
}


/*
 * The enabled names are also kept in <upload_dir>/.domains, one a line, so
 * that a cold start serves files while PostgreSQL is still away; the
 * database's list replaces them as soon as a worker reads it.
 */

static void
ngx_http_bulletdrop_domains_read(ngx_http_bulletdrop_domains_worker_t *dw,
    ngx_http_bulletdrop_domains_sh_t *sh, ngx_log_t *log)
{
    u_char                        *p, *last, *eol;
    ssize_t                        n;
    ngx_fd_t                       fd;
    ngx_file_info_t                fi;
    ngx_http_bulletdrop_domain_t  *d;
    u_char                         buf[NGX_HTTP_BULLETDROP_DOMAINS_MAX
                                       * (NGX_HTTP_BULLETDROP_DOMAIN_LEN
                                          + 1)];

    /*
     * The master reads it, in a directory the workers write: a regular
     * file only, never a link or a FIFO that would hold the start
     */
    fd = ngx_open_file(dw->file.data,
                       NGX_FILE_RDONLY|NGX_FILE_NONBLOCK|O_NOFOLLOW,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return;
    }

    n = -1;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
        n = read(fd, buf, sizeof(buf));
    }

    (void) ngx_close_file(fd);

    if (n <= 0) {
        return;
    }

    p = buf;
    last = buf + n;

    while (p < last && sh->n < NGX_HTTP_BULLETDROP_DOMAINS_MAX) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            break;
        }

        if (bd_hostname_valid((char *) p, eol - p)) {
            d = &sh->names[sh->n++];
            d->len = eol - p;
            ngx_memcpy(d->name, p, d->len);
        }

        p = eol + 1;
    }

    sh->loaded = 1;

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "bulletdrop: %ui file domains from \"%V\" until the "
                  "database answers", sh->n, &dw->file);
}


/* a worker's copy for the next cold start; written whole, then renamed */

static void
ngx_http_bulletdrop_domains_write(ngx_str_t *file, u_char *buf, size_t len)
{
    u_char      *tmp;
    ngx_fd_t     fd;
    ngx_uint_t   ok;

    tmp = ngx_alloc(file->len + sizeof(".") + NGX_INT_T_LEN, ngx_cycle->log);
    if (tmp == NULL) {
        return;
    }

    (void) ngx_sprintf(tmp, "%V.%P%Z", file, ngx_pid);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    ok = 0;

    if (fd != NGX_INVALID_FILE) {
        ok = (write(fd, buf, len) == (ssize_t) len);

        if (ngx_close_file(fd) == NGX_FILE_ERROR) {
            ok = 0;
        }

        ok = ok && ngx_rename_file(tmp, file->data) != NGX_FILE_ERROR;
    }

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, ngx_errno,
                      "bulletdrop: cannot keep the file domains in \"%V\"",
                      file);

        if (fd != NGX_INVALID_FILE) {
            (void) ngx_delete_file(tmp);
        }
    }

    ngx_free(tmp);
}


ngx_int_t
ngx_http_bulletdrop_domains_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_http_bulletdrop_domains_worker_t  *dw;

    if (bmcf->domains_zone == NULL) {
        return NGX_OK;
    }

    dw = bmcf->domains;

    dw->shpool = (ngx_slab_pool_t *) bmcf->domains_zone->shm.addr;
    dw->sh = bmcf->domains_zone->data;
    dw->db = &bmcf->db;

    return NGX_OK;
}


/* NULL, or sh NULL, in the master and where no location needs domains */

static ngx_http_bulletdrop_domains_worker_t *
ngx_http_bulletdrop_domains_worker(void)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    return bmcf ? bmcf->domains : NULL;
}


/* NULL: the listening connection (re)connected; anything may have changed */

void
ngx_http_bulletdrop_domains_notified(ngx_log_t *log, const char *payload)
{
    ngx_http_bulletdrop_domains_worker_t  *dw;

    dw = ngx_http_bulletdrop_domains_worker();

    if (dw == NULL || dw->sh == NULL
        || (payload && ngx_strcmp(payload, "domains") != 0))
    {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "bulletdrop domains: %s, reading them again",
                   payload ? "changed" : "listening again");

    ngx_http_bulletdrop_domains_reload(dw);
}


static void
ngx_http_bulletdrop_domains_reload(ngx_http_bulletdrop_domains_worker_t *dw)
{
    ngx_pool_t                      *pool;
    ngx_http_bulletdrop_db_query_t  *q;

    if (dw->loading) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "bulletdrop domains: a read is out, another follows");

        dw->again = 1;
        return;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    q = ngx_http_bulletdrop_db_query_create(dw->db->pool, pool,
            ngx_cycle->log, NGX_HTTP_BULLETDROP_SQL_DOMAIN_LIST);

    if (q == NULL || ngx_http_bulletdrop_query_param(q, 0, "false")
                     != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    q->handler = ngx_http_bulletdrop_domains_reloaded;
    q->data = pool;

    dw->reading = ngx_http_bulletdrop_domains_ticket(dw);

    dw->loading = 1;
    dw->again = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop domains: reading them, ticket %uA",
                   dw->reading);

    ngx_http_bulletdrop_db_run(q);
}


static void
ngx_http_bulletdrop_domains_reloaded(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_bulletdrop_domains_worker_t  *dw;

    dw = ngx_http_bulletdrop_domains_worker();

    dw->loading = 0;

    /* if not, the next connect or the next change tries again */
    if (ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK, ngx_cycle->log,
                                     "cannot load the file domains")
        == NGX_OK)
    {
        (void) ngx_http_bulletdrop_domains_store(res, 0, dw->reading);
    }

    ngx_destroy_pool(q->data);

    if (dw->again) {
        ngx_http_bulletdrop_domains_reload(dw);
    }
}


/* the enabled rows of res (all: rows of both kinds) become the table */

static ngx_atomic_uint_t
ngx_http_bulletdrop_domains_ticket(ngx_http_bulletdrop_domains_worker_t *dw)
{
    return ngx_atomic_fetch_add(&dw->sh->tickets, 1) + 1;
}


static ngx_int_t
ngx_http_bulletdrop_domains_store(PGresult *res, ngx_uint_t all,
    ngx_atomic_uint_t ticket)
{
    int                                    i, nrows;
    u_char                                *p;
    ngx_str_t                              name;
    ngx_uint_t                             n;
    ngx_http_bulletdrop_domain_t          *d;
    ngx_http_bulletdrop_domains_sh_t      *sh;
    ngx_http_bulletdrop_domains_worker_t  *dw;
    u_char                                 buf[NGX_HTTP_BULLETDROP_DOMAINS_MAX
                                              * (NGX_HTTP_BULLETDROP_DOMAIN_LEN
                                                 + 1)];

    dw = ngx_http_bulletdrop_domains_worker();
    sh = dw->sh;
    nrows = PQntuples(res);

    if (PQnfields(res) < NGX_HTTP_BULLETDROP_DOMAIN_NCOLUMNS) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&dw->shpool->mutex);

    if (ticket < sh->stored) {
        ngx_shmtx_unlock(&dw->shpool->mutex);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "bulletdrop domains: read %uA dropped, %uA is newer",
                       ticket, sh->stored);
        return NGX_DECLINED;
    }

    sh->stored = ticket;
    n = 0;

    for (i = 0; i < nrows && n < NGX_HTTP_BULLETDROP_DOMAINS_MAX; i++) {
        if (all
            && !ngx_http_bulletdrop_db_bool(res, i,
                                            NGX_HTTP_BULLETDROP_DOMAIN_ENABLED))
        {
            continue;
        }

        ngx_http_bulletdrop_db_ref(res, i, NGX_HTTP_BULLETDROP_DOMAIN_NAME,
                                   &name);
        if (name.len > NGX_HTTP_BULLETDROP_DOMAIN_LEN) {
            continue;
        }

        d = &sh->names[n++];
        d->len = name.len;
        ngx_memcpy(d->name, name.data, name.len);
    }

    sh->n = n;
    sh->loaded = 1;

    /* the copy for the file is made under the lock, written after it */
    p = buf;

    for (i = 0; i < (int) n; i++) {
        p = ngx_cpymem(p, sh->names[i].name, sh->names[i].len);
        *p++ = '\n';
    }

    ngx_shmtx_unlock(&dw->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop domains: read %uA stored, %ui enabled",
                   ticket, n);

    if (dw->file.len) {
        ngx_http_bulletdrop_domains_write(&dw->file, buf, p - buf);
    }

    if (n < (ngx_uint_t) nrows && !all) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "bulletdrop: only the first %d file domains are "
                      "served", NGX_HTTP_BULLETDROP_DOMAINS_MAX);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_domain_enabled(u_char *name, size_t len)
{
    ngx_int_t                              rc;
    ngx_uint_t                             i;
    ngx_http_bulletdrop_domains_sh_t      *sh;
    ngx_http_bulletdrop_domains_worker_t  *dw;

    dw = ngx_http_bulletdrop_domains_worker();

    if (dw == NULL || dw->sh == NULL) {
        return NGX_DECLINED;
    }

    sh = dw->sh;

    ngx_shmtx_lock(&dw->shpool->mutex);

    rc = sh->loaded ? NGX_DECLINED : NGX_AGAIN;

    for (i = 0; i < sh->n; i++) {
        if (sh->names[i].len == len
            && ngx_strncasecmp(sh->names[i].name, name, len) == 0)
        {
            rc = NGX_OK;
            break;
        }
    }

    ngx_shmtx_unlock(&dw->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_bulletdrop_domain_default(u_char *buf, size_t *len)
{
    ngx_int_t                              rc;
    ngx_http_bulletdrop_domains_sh_t      *sh;
    ngx_http_bulletdrop_domains_worker_t  *dw;

    dw = ngx_http_bulletdrop_domains_worker();

    if (dw == NULL || dw->sh == NULL) {
        return NGX_DECLINED;
    }

    sh = dw->sh;

    ngx_shmtx_lock(&dw->shpool->mutex);

    rc = sh->loaded ? NGX_DECLINED : NGX_AGAIN;

    if (sh->n) {
        *len = sh->names[0].len;
        ngx_memcpy(buf, sh->names[0].name, *len);
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&dw->shpool->mutex);

    return rc;
}


/*
 * "http://img.example.com:8080 http://cdn.example.com:8080": the enabled
 * domains as origins, on the request's scheme and port, for the web app's
 * Content-Security-Policy.  Empty when there are none (or not yet).
 */

ngx_int_t
ngx_http_bulletdrop_domains_origins(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char                                *p;
    size_t                                 len;
    ngx_str_t                              name, *origins;
    ngx_uint_t                             i, n;
    ngx_http_bulletdrop_domain_t          *names;
    ngx_http_bulletdrop_domains_worker_t  *dw;

    ngx_str_null(out);

    dw = ngx_http_bulletdrop_domains_worker();

    if (dw == NULL || dw->sh == NULL) {
        return NGX_OK;
    }

    /*
     * a copy of the names there are, made under the lock and formatted
     * without it; room for them is made first, without it too
     */
    ngx_shmtx_lock(&dw->shpool->mutex);
    n = dw->sh->n;
    ngx_shmtx_unlock(&dw->shpool->mutex);

    if (n == 0) {
        return NGX_OK;
    }

    names = ngx_palloc(r->pool, n * sizeof(ngx_http_bulletdrop_domain_t));
    if (names == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&dw->shpool->mutex);

    n = ngx_min(n, dw->sh->n);
    ngx_memcpy(names, dw->sh->names, n * sizeof(ngx_http_bulletdrop_domain_t));

    ngx_shmtx_unlock(&dw->shpool->mutex);

    if (n == 0) {
        return NGX_OK;
    }

    origins = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
    if (origins == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < n; i++) {
        name.data = names[i].name;
        name.len = names[i].len;

        if (ngx_http_bulletdrop_origin(r, &name, &origins[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        len += origins[i].len + 1;
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, origins[i].data, origins[i].len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* GET /api/domains[?all=true]: the enabled ones; all of them for an admin */

ngx_int_t
ngx_http_bulletdrop_domains_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_str_t                        arg;
    ngx_uint_t                       all;
    ngx_http_bulletdrop_db_query_t  *q;

    all = ctx->user.admin
          && ngx_http_arg(r, (u_char *) "all", 3, &arg) == NGX_OK
          && arg.len == 4 && ngx_strncmp(arg.data, "true", 4) == 0;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_LIST,
                                  ngx_http_bulletdrop_domains_listed);

    if (q == NULL
        || ngx_http_bulletdrop_query_param(q, 0, all ? "true" : "false")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_domains_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop domains: \"%s\" gave %d",
                   ngx_http_bulletdrop_sql[q->stmt].name, PQntuples(res));

    /* the seed's answer has every domain: it is the table, as of now */
    if (q->stmt == NGX_HTTP_BULLETDROP_SQL_DOMAIN_SEED) {
        (void) ngx_http_bulletdrop_domains_store(res, 1,
                                                 ctx->domains_ticket);
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
                                      ngx_http_bulletdrop_domains_json(res)));
}


/* POST /api/domains {name, enabled} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_domain_fields[] = {
    { "name", NGX_HTTP_BULLETDROP_FIELD_STRING, 1, 0 },
    { "enabled", NGX_HTTP_BULLETDROP_FIELD_BOOLEAN, 0, 0 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_domain_add(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                          *v[2];
    ngx_str_t                        name;
    ngx_http_bulletdrop_db_query_t  *q;

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_domain_fields, v,
                                        NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    name.data = (u_char *) json_string_value(v[0]);
    name.len = json_string_length(v[0]);

    if (ngx_http_bulletdrop_domain_name(r, ctx, &name) != NGX_OK) {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_ADD,
                                  ngx_http_bulletdrop_domain_changed);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &name) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1,
               v[1] == NULL ? NULL : json_is_true(v[1]) ? "true" : "false")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/* POST /api/domains/seed: img., shots., cdn. and media. of the base */

ngx_int_t
ngx_http_bulletdrop_domains_seed(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    u_char                           *p;
    ngx_str_t                         names, *base;
    ngx_http_bulletdrop_db_query_t   *q;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    base = &bmcf->base_domain;

    if (base->len == 0) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NO_BASE_DOMAIN,
                                                NULL);
    }

    /* the longest names a valid base can make are refused by the table */
    names.data = ngx_pnalloc(r->pool, 4 * base->len + sizeof("{img.,shots.,"
                                                        "cdn.,media.}"));
    if (names.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(names.data, "{img.%V,shots.%V,cdn.%V,media.%V}", base,
                    base, base, base);
    names.len = p - names.data;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_SEED,
                                  ngx_http_bulletdrop_domains_listed);

    if (q == NULL || ngx_http_bulletdrop_db_param(q, 0, &names) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->domains_ticket = ngx_http_bulletdrop_domains_ticket(
                              ngx_http_bulletdrop_domains_worker());

    return ngx_http_bulletdrop_query_run(r, q);
}


/* PATCH /api/domains/NAME {enabled} */

static ngx_http_bulletdrop_field_t  ngx_http_bulletdrop_domain_switch[] = {
    { "enabled", NGX_HTTP_BULLETDROP_FIELD_BOOLEAN, 1, 0 },
    { NULL, 0, 0, 0 }
};


ngx_int_t
ngx_http_bulletdrop_domain_update(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    json_t                          *v[1];
    ngx_str_t                        name;
    ngx_http_bulletdrop_db_query_t  *q;

    if (ngx_http_bulletdrop_body_fields(r, ctx,
                                        ngx_http_bulletdrop_domain_switch, v,
                                        NULL)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    name.data = (u_char *) ctx->match.params[0].data;
    name.len = ctx->match.params[0].len;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_UPDATE,
                                  ngx_http_bulletdrop_domain_changed);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &name) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 1,
                             json_is_true(v[0]) ? "true" : "false") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/* DELETE /api/domains/NAME: links on it stop working; users' defaults go */

ngx_int_t
ngx_http_bulletdrop_domain_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_str_t                        name;
    ngx_http_bulletdrop_db_query_t  *q;

    name.data = (u_char *) ctx->match.params[0].data;
    name.len = ctx->match.params[0].len;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_DELETE,
                                  ngx_http_bulletdrop_domain_changed);

    if (q == NULL || ngx_http_bulletdrop_db_param(q, 0, &name) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/*
 * A domain was added, changed or removed: the table is read again before
 * the client hears of it.  The answer waits, serialized, in the request's
 * pool (ctx->body is the request's own body, freed with it).
 */

static void
ngx_http_bulletdrop_domain_changed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    char                       *constraint;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ngx_http_bulletdrop_query_ok(q, res, PGRES_TUPLES_OK) != NGX_OK) {
        constraint = (q->status == NGX_HTTP_BULLETDROP_DB_OK)
                     ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                     : NULL;

        if (constraint
            && ngx_strcmp(constraint, NGX_HTTP_BULLETDROP_SQL_DOMAIN_TAKEN)
               == 0)
        {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_DOMAIN_EXISTS, NULL);
        }

        ngx_http_bulletdrop_finish(r, NGX_DECLINED);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop domains: \"%s\" changed %d",
                   ngx_http_bulletdrop_sql[q->stmt].name, PQntuples(res));

    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             "there is no such domain"));
        return;
    }

    if (q->stmt != NGX_HTTP_BULLETDROP_SQL_DOMAIN_DELETE) {
        ctx->domains_answer = ngx_http_bulletdrop_json_buf(r,
                                  ngx_http_bulletdrop_domain_json(res, 0));
        if (ctx->domains_answer == NULL) {
            ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ctx->match.nparams = (q->stmt == NGX_HTTP_BULLETDROP_SQL_DOMAIN_ADD);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_DOMAIN_LIST,
                                  ngx_http_bulletdrop_domain_answer);

    if (q == NULL || ngx_http_bulletdrop_query_param(q, 0, "false")
                     != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->domains_ticket = ngx_http_bulletdrop_domains_ticket(
                              ngx_http_bulletdrop_domains_worker());

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop domains: reading them before answering, "
                   "ticket %uA", ctx->domains_ticket);

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_query_run(r, q));
}


static void
ngx_http_bulletdrop_domain_answer(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    (void) ngx_http_bulletdrop_domains_store(res, 0, ctx->domains_ticket);

    if (ctx->domains_answer == NULL) {
        ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_no_content(r));
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_send_buf(r, ctx->match.nparams
                                        ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                                     "application/json",
                                     sizeof("application/json") - 1,
                                     ctx->domains_answer));
}


/* a domain name as the table takes it, lower-cased in place */

static ngx_int_t
ngx_http_bulletdrop_domain_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_str_t *name)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, name->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(p, name->data, name->len);
    name->data = p;

    if (!bd_hostname_valid((char *) name->data, name->len)) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_DOMAIN, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static json_t *
ngx_http_bulletdrop_domains_json(PGresult *res)
{
    int      i, n;
    json_t  *list, *item;

    list = json_array();
    n = PQntuples(res);

    for (i = 0; list && i < n; i++) {
        item = ngx_http_bulletdrop_domain_json(res, i);

        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }

    return list ? json_pack("{s:o}", "domains", list) : NULL;
}


static json_t *
ngx_http_bulletdrop_domain_json(PGresult *res, int row)
{
    return json_pack("{s:s, s:b, s:s}",
        "name",
            ngx_http_bulletdrop_db_text(res, row,
                                        NGX_HTTP_BULLETDROP_DOMAIN_NAME),
        "enabled",
            (int) ngx_http_bulletdrop_db_bool(res, row,
                                        NGX_HTTP_BULLETDROP_DOMAIN_ENABLED),
        "created_at",
            ngx_http_bulletdrop_db_text(res, row,
                                        NGX_HTTP_BULLETDROP_DOMAIN_CREATED_AT));
}
