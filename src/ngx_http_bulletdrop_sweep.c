/*
 * BulletDrop: the sweeps, in the first worker, each on its own timer.
 *
 * Expired and used-up uploads: a page of their rows listed, their files
 * removed, then the rows; again at once while pages come full, else every
 * bulletdrop_sweep_interval.  Temp files that no upload holds (a worker
 * that died mid-upload left them): at start, then every ten minutes.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_metrics.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_sweep.h"
#include "bd_deliver.h"
#include "bd_file.h"

#include <sys/file.h>


/* rows a sweep takes at a time */
#define NGX_HTTP_BULLETDROP_SWEEP_PAGE      200

/*
 * Temp files that no upload holds (a lock) and older than this go; the
 * age spares a file between its creation and its lock
 */
#define NGX_HTTP_BULLETDROP_STALE_AFTER     60
#define NGX_HTTP_BULLETDROP_SWEEP_EVERY     (600 * 1000)


/* deletes in the store a sweep has out at once */
#define NGX_HTTP_BULLETDROP_SWEEP_DELETES   8


/* a page of objects to delete, then their rows (bulletdrop_storage s3) */
typedef struct {
    ngx_pool_t                         *pool;
    /* of ngx_str_t: "<category>/<id>.<ext>" */
    ngx_array_t                         keys;
    ngx_uint_t                          next;
    ngx_uint_t                          out;
    /* "{id,...}" of the objects gone */
    u_char                             *ids;
    u_char                             *last;
    ngx_str_t                           done;
    unsigned                            full:1;
} ngx_http_bulletdrop_sweep_page_t;


/* what the first worker keeps of its sweeps (bmcf->sweep) */
struct ngx_http_bulletdrop_sweep_worker_s {
    /* expired and used-up uploads */
    ngx_event_t                         rows_event;
    /* the last page was full: another comes at once */
    ngx_uint_t                          more;

    /* temp files, in <upload_dir>/.tmp */
    ngx_event_t                         temp_event;
    ngx_str_t                           temp_dir;
};


static void ngx_http_bulletdrop_sweep(ngx_event_t *ev);
static void ngx_http_bulletdrop_sweep_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_sweep_rows(ngx_str_t *a, ngx_uint_t full,
    ngx_pool_t *listed);
static void ngx_http_bulletdrop_sweep_objects(
    ngx_http_bulletdrop_sweep_page_t *page);
static void ngx_http_bulletdrop_sweep_object(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_sweep_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_sweep_later(ngx_msec_t delay);
static void ngx_http_bulletdrop_upload_sweep(ngx_event_t *ev);


/* only the first worker sweeps */

ngx_int_t
ngx_http_bulletdrop_sweep_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_event_t                         *ev;
    ngx_http_bulletdrop_sweep_worker_t  *sw;

    if (ngx_worker != 0
        || (bmcf->upload_dir.data == NULL && bmcf->files_zone == NULL))
    {
        return NGX_OK;
    }

    sw = ngx_pcalloc(cycle->pool, sizeof(ngx_http_bulletdrop_sweep_worker_t));
    if (sw == NULL) {
        return NGX_ERROR;
    }

    bmcf->sweep = sw;

    if (bmcf->upload_dir.data) {
        sw->temp_dir.len = bmcf->upload_dir.len + sizeof("/.tmp") - 1;
        sw->temp_dir.data = ngx_pnalloc(cycle->pool, sw->temp_dir.len + 1);
        if (sw->temp_dir.data == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_sprintf(sw->temp_dir.data, "%V/.tmp%Z",
                           &bmcf->upload_dir);

        ev = &sw->temp_event;
        ev->handler = ngx_http_bulletdrop_upload_sweep;
        ev->log = cycle->log;
        ev->data = &sw->temp_dir;
        ev->cancelable = 1;

        ngx_http_bulletdrop_upload_sweep(ev);
    }

    if (bmcf->files_zone) {
        /* data: nginx's debug lines read an event's data as a connection */
        ev = &sw->rows_event;
        ev->handler = ngx_http_bulletdrop_sweep;
        ev->data = sw;
        ev->log = cycle->log;
        ev->cancelable = 1;

        /* soon after a start: files may have expired while nginx was down */
        ngx_http_bulletdrop_sweep_later(ngx_min(bmcf->sweep_interval, 1000));
    }

    return NGX_OK;
}


/*
 * The sweep, in the first worker: a page of expired rows, their files
 * removed, then the rows; again at once while pages come full.
 */

static void
ngx_http_bulletdrop_sweep(ngx_event_t *ev)
{
    ngx_pool_t                       *pool;
    ngx_http_bulletdrop_db_query_t   *q;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    pool = ngx_create_pool(4096, ev->log);
    if (pool == NULL) {
        ngx_http_bulletdrop_sweep_later(bmcf->sweep_interval);
        return;
    }

    q = ngx_http_bulletdrop_db_query_create(bmcf->db.pool, pool, ev->log,
                                       NGX_HTTP_BULLETDROP_SQL_SWEEP_LIST);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, NGX_HTTP_BULLETDROP_SWEEP_PAGE)
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        ngx_http_bulletdrop_sweep_later(bmcf->sweep_interval);
        return;
    }

    q->handler = ngx_http_bulletdrop_sweep_listed;
    q->data = pool;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bulletdrop sweep: listing a page of %d uploads",
                   NGX_HTTP_BULLETDROP_SWEEP_PAGE);

    ngx_http_bulletdrop_db_run(q);
}


static void
ngx_http_bulletdrop_sweep_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                                i, n;
    u_char                            *ids, *p, *path;
    ngx_str_t                          a, *dir, id, category, ext, *key;
    ngx_pool_t                        *pool, *listed;
    ngx_http_bulletdrop_sweep_page_t  *page;
    ngx_http_bulletdrop_main_conf_t   *bmcf;

    listed = q->data;
    page = NULL;
    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    dir = &bmcf->upload_dir;

    if (ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                     ngx_cycle->log,
                                     "the sweep cannot list expired files")
        != NGX_OK
        || PQnfields(res) != NGX_HTTP_BULLETDROP_SWEEP_LIST_NCOLUMNS)
    {
        goto later;
    }

    n = PQntuples(res);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop sweep: page of %d listed", n);

    if (n == 0) {
        goto later;
    }

    ids = ngx_pnalloc(listed, n * (BD_DELIVER_ID_LEN + 1) + 2);
    path = ngx_pnalloc(listed, dir->len + sizeof("/documents/")
                             + BD_FILE_ID_LEN + 1 + BD_FILE_EXT_MAX + 1);
    if (ids == NULL || path == NULL) {
        goto later;
    }

    if (bmcf->s3) {
        /* the objects go first, each deleted in the store; the page waits */
        pool = ngx_create_pool(4096, ngx_cycle->log);
        if (pool == NULL) {
            goto later;
        }

        page = ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_sweep_page_t));
        if (page == NULL
            || ngx_array_init(&page->keys, pool, n, sizeof(ngx_str_t))
               != NGX_OK)
        {
            ngx_destroy_pool(pool);
            goto later;
        }

        page->pool = pool;
        page->full = (n == NGX_HTTP_BULLETDROP_SWEEP_PAGE);
        page->ids = ngx_pnalloc(pool, n * (BD_DELIVER_ID_LEN + 1) + 2);
        if (page->ids == NULL) {
            ngx_destroy_pool(pool);
            goto later;
        }

        page->last = page->ids;
        *page->last++ = '{';
    }

    p = ids;
    *p++ = '{';

    for (i = 0; i < n; i++) {
        ngx_http_bulletdrop_db_ref(res, i, NGX_HTTP_BULLETDROP_SWEEP_LIST_ID,
                                   &id);
        ngx_http_bulletdrop_db_ref(res, i,
                                   NGX_HTTP_BULLETDROP_SWEEP_LIST_CATEGORY,
                                   &category);
        ngx_http_bulletdrop_db_ref(res, i, NGX_HTTP_BULLETDROP_SWEEP_LIST_EXT,
                                   &ext);

        /* the columns are NOT NULL: a NULL here is as bad as a wrong one */
        if (id.len != BD_DELIVER_ID_LEN
            || ext.data == NULL || ext.len > BD_FILE_EXT_MAX
            || category.data == NULL
            || !(ngx_strcmp(category.data, "images") == 0
                 || ngx_strcmp(category.data, "documents") == 0
                 || ngx_strcmp(category.data, "other") == 0))
        {
            continue;
        }

        if (page) {
            key = ngx_array_push(&page->keys);
            if (key == NULL) {
                goto later;
            }

            key->data = ngx_pnalloc(page->pool, category.len + 1 + id.len
                                                + 1 + ext.len);
            if (key->data == NULL) {
                goto later;
            }

            key->len = ngx_sprintf(key->data, "%V/%V.%V", &category, &id,
                                   &ext)
                       - key->data;
            continue;
        }

        (void) ngx_sprintf(path, "%V/%V/%V.%V%Z", dir, &category, &id, &ext);

        if (ngx_delete_file(path) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            /* its row stays for the next sweep */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                          "bulletdrop: cannot delete \"%s\"", path);
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "bulletdrop sweep: removed \"%s\"", path);

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, id.data, BD_DELIVER_ID_LEN);
    }

    if (page) {
        ngx_destroy_pool(listed);
        ngx_http_bulletdrop_sweep_objects(page);
        return;
    }

    *p++ = '}';

    a.data = ids;
    a.len = p - ids;

    ngx_http_bulletdrop_sweep_rows(&a, n == NGX_HTTP_BULLETDROP_SWEEP_PAGE,
                                   listed);
    return;

later:

    if (page) {
        ngx_destroy_pool(page->pool);
    }

    ngx_destroy_pool(listed);
    ngx_http_bulletdrop_sweep_later(bmcf->sweep_interval);
}


/*
 * The rows of the files gone ("{id,...}"): deleted with their usage; the
 * listed page's pool goes once the statement took its copy
 */

static void
ngx_http_bulletdrop_sweep_rows(ngx_str_t *a, ngx_uint_t full,
    ngx_pool_t *listed)
{
    ngx_pool_t                       *pool;
    ngx_http_bulletdrop_db_query_t   *q;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    /* the statement keeps a copy; the pool goes with this query */
    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        goto later;
    }

    q = ngx_http_bulletdrop_db_query_create(
            bmcf->db.pool, pool, ngx_cycle->log,
            NGX_HTTP_BULLETDROP_SQL_SWEEP_DELETE);

    if (q == NULL || ngx_http_bulletdrop_db_param(q, 0, a) != NGX_OK) {
        ngx_destroy_pool(pool);
        goto later;
    }

    q->handler = ngx_http_bulletdrop_sweep_done;
    q->data = pool;

    /*
     * A full page: there may be more.  A page whose files could not go
     * waits for the next round (it would come back the same)
     */
    bmcf->sweep->more = (full && a->len > sizeof("{}") - 1);

    /* the ids live in the listed page's pool: traced before it goes */
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop sweep: deleting the rows %V, more:%ui",
                   a, bmcf->sweep->more);

    ngx_destroy_pool(listed);

    ngx_http_bulletdrop_db_run(q);
    return;

later:

    ngx_destroy_pool(listed);
    ngx_http_bulletdrop_sweep_later(bmcf->sweep_interval);
}


/*
 * bulletdrop_storage s3: the page's objects are deleted in the store, a
 * few at a time; the rows of those gone (or never there) go after
 */

static void
ngx_http_bulletdrop_sweep_objects(ngx_http_bulletdrop_sweep_page_t *page)
{
    ngx_str_t                        *keys;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    keys = page->keys.elts;

    while (page->out < NGX_HTTP_BULLETDROP_SWEEP_DELETES
           && page->next < page->keys.nelts)
    {
        if (ngx_http_bulletdrop_s3_remove(bmcf->s3, ngx_cycle->log,
                                          &keys[page->next],
                                          ngx_http_bulletdrop_sweep_object,
                                          page)
            == NGX_OK)
        {
            page->out++;
        }

        page->next++;
    }

    if (page->out) {
        return;
    }

    /* every delete answered */
    *page->last++ = '}';
    page->done.data = page->ids;
    page->done.len = page->last - page->ids;

    ngx_http_bulletdrop_sweep_rows(&page->done, page->full, page->pool);
}


static void
ngx_http_bulletdrop_sweep_object(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char                            *id, said[160], *p;
    ngx_http_bulletdrop_sweep_page_t  *page;

    page = op->data;
    page->out--;

    if (ngx_http_bulletdrop_s3_gone(op)) {
        /* "<category>/<id>.<ext>" */
        id = ngx_strlchr(op->key.data, op->key.data + op->key.len, '/') + 1;

        if (page->last[-1] != '{') {
            *page->last++ = ',';
        }

        page->last = ngx_cpymem(page->last, id, BD_DELIVER_ID_LEN);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "bulletdrop sweep: removed \"%V\"", &op->key);

    } else {
        /* its row stays for the next sweep */
        p = ngx_http_bulletdrop_s3_said(op, said, sizeof(said));
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "bulletdrop: the store did not delete \"%V\": %*s",
                      &op->key, p - said, said);
    }

    ngx_http_bulletdrop_s3_free(op);

    ngx_http_bulletdrop_sweep_objects(page);
}


static void
ngx_http_bulletdrop_sweep_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    if (ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                     ngx_cycle->log,
                                     "the sweep cannot delete rows")
        == NGX_OK
        && PQntuples(res) == 1)
    {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "bulletdrop: the sweep removed %s expired or spent "
                      "uploads",
                      PQgetvalue(res, 0,
                                 NGX_HTTP_BULLETDROP_SWEEP_DELETE_COUNT));

        ngx_http_bulletdrop_metrics_add(BD_METRIC_SWEEP_REMOVED,
            (ngx_uint_t) ngx_max(ngx_http_bulletdrop_db_int(res, 0,
                                    NGX_HTTP_BULLETDROP_SWEEP_DELETE_COUNT),
                                 0));

    } else {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "bulletdrop sweep: no rows deleted");
    }

    ngx_destroy_pool(q->data);

    ngx_http_bulletdrop_sweep_later(bmcf->sweep->more
                                    ? 0 : bmcf->sweep_interval);
}


static void
ngx_http_bulletdrop_sweep_later(ngx_msec_t delay)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop sweep: the next page in %M ms", delay);

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&bmcf->sweep->rows_event, delay ? delay : 1);
    }
}


/*
 * A live upload holds a lock on its temp file (the lock goes with the
 * process that holds it), so what no one holds was left by a worker that
 * died, and goes.
 */

static void
ngx_http_bulletdrop_upload_sweep(ngx_event_t *ev)
{
    int         fd;
    u_char     *path;
    size_t      len;
    ngx_dir_t   dir;
    ngx_str_t  *tmp;
    ngx_uint_t  removed, held;

    tmp = ev->data;
    removed = 0;

    if (ngx_open_dir(tmp, &dir) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ev->log, ngx_errno,
                      "bulletdrop: cannot open \"%V\"", tmp);
        goto next;
    }

    path = ngx_alloc(tmp->len + 1 + NGX_MAX_PATH, ev->log);
    if (path == NULL) {
        (void) ngx_close_dir(&dir);
        goto next;
    }

    while (ngx_read_dir(&dir) == NGX_OK) {
        len = ngx_de_namelen(&dir);

        if (len < sizeof(".part") - 1 || len > NGX_MAX_PATH - 1
            || ngx_strncmp(ngx_de_name(&dir) + len - (sizeof(".part") - 1),
                           ".part", sizeof(".part") - 1) != 0)
        {
            continue;
        }

        (void) ngx_sprintf(path, "%V/%*s%Z", tmp, len, ngx_de_name(&dir));

        dir.valid_info = 0;

        if (ngx_de_info(path, &dir) == NGX_FILE_ERROR
            || !ngx_de_is_file(&dir)
            || ngx_time() - ngx_de_mtime(&dir)
               < NGX_HTTP_BULLETDROP_STALE_AFTER)
        {
            continue;
        }

        /* an upload in progress, in any worker, old or new, holds it */
        fd = open((char *) path, O_RDONLY|O_CLOEXEC);
        if (fd == -1) {
            continue;
        }

        held = (flock(fd, LOCK_EX|LOCK_NB) == -1);
        (void) close(fd);

        if (held) {
            continue;
        }

        if (ngx_delete_file(path) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ev->log, ngx_errno,
                          "bulletdrop: cannot remove \"%s\"", path);
            continue;
        }

        removed++;
    }

    ngx_free(path);
    (void) ngx_close_dir(&dir);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bulletdrop sweep: temp files in \"%V\": %ui removed",
                   tmp, removed);

    if (removed) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "bulletdrop: removed %ui stale temp files from \"%V\"",
                      removed, tmp);
    }

next:

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_BULLETDROP_SWEEP_EVERY);
    }
}
