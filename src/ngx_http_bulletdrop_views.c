/*
 * BulletDrop: views of files on the file domains.
 *
 * A file with a view limit, or one the workers know nothing of, waits in
 * the access phase for the database; the requests that wait in a worker
 * go as one statement (bd_upload_view_batch()), which counts the views,
 * says what each file's limits are, and leases views ahead to this server
 * (known.c).  The log phase counts the views of the others, sent as one
 * statement a second at most, and removes a file whose last view was just
 * served.
 */

#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_known.h"
#include "ngx_http_bulletdrop_metrics.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_views.h"


/* views are sent at most this long after they were served */
#define NGX_HTTP_BULLETDROP_VIEWS_EVERY     1000
#define NGX_HTTP_BULLETDROP_VIEWS_SLOTS     1024

/* requests in one statement of views */
#define NGX_HTTP_BULLETDROP_ASKS_MAX        64

/* views taken ahead of a file with many left (bd_upload_view_batch()) */
#define NGX_HTTP_BULLETDROP_LEASE           "64"


/* the views a worker asks the database for in one statement */
struct ngx_http_bulletdrop_asks_s {
    ngx_pool_t                         *pool;
    ngx_uint_t                          n;
    /* NULL: its request was freed meanwhile */
    ngx_http_bulletdrop_file_t         *files[NGX_HTTP_BULLETDROP_ASKS_MAX];
    u_char                              ids[NGX_HTTP_BULLETDROP_ASKS_MAX]
                                           [BD_DELIVER_ID_LEN];
};


typedef struct {
    u_char                              id[BD_DELIVER_ID_LEN];
    uint32_t                            n;
} ngx_http_bulletdrop_views_slot_t;


/* what a worker keeps of views (bmcf->views) */
struct ngx_http_bulletdrop_views_worker_s {
    /* requests waiting for the database, and the batches out */
    ngx_queue_t                         asking;
    ngx_event_t                         ask_event;
    ngx_uint_t                          asks_out;

    /* views of files without a limit, until they are sent */
    ngx_http_bulletdrop_views_slot_t    slots[NGX_HTTP_BULLETDROP_VIEWS_SLOTS];
    ngx_uint_t                          n;
    ngx_event_t                         flush_event;
};


static ngx_http_bulletdrop_views_worker_t *ngx_http_bulletdrop_views_worker(
    void);
static void ngx_http_bulletdrop_files_forget(void *data);
static void ngx_http_bulletdrop_files_send(ngx_event_t *ev);
static void ngx_http_bulletdrop_files_viewed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_files_answer(ngx_http_bulletdrop_asks_t *b,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_files_decide(ngx_http_bulletdrop_file_t *f,
    PGresult *res, int row);
static int64_t ngx_http_bulletdrop_files_know(u_char *id, PGresult *res,
    int row, ngx_uint_t gone);
static void ngx_http_bulletdrop_views_add(u_char *id);
static void ngx_http_bulletdrop_views_flush(ngx_event_t *ev);
static void ngx_http_bulletdrop_views_sent(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);


ngx_int_t
ngx_http_bulletdrop_views_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_event_t                         *ev;
    ngx_http_bulletdrop_views_worker_t  *vw;

    vw = ngx_pcalloc(cycle->pool, sizeof(ngx_http_bulletdrop_views_worker_t));
    if (vw == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&vw->asking);

    /* data: nginx's debug lines read an event's data as a connection */
    ev = &vw->ask_event;
    ev->handler = ngx_http_bulletdrop_files_send;
    ev->data = vw;
    ev->log = cycle->log;

    ev = &vw->flush_event;
    ev->handler = ngx_http_bulletdrop_views_flush;
    ev->data = vw;
    ev->log = cycle->log;
    /* a worker that exits loses at most a second of views */
    ev->cancelable = 1;

    bmcf->views = vw;

    return NGX_OK;
}


/* NULL in a worker that serves no files */

static ngx_http_bulletdrop_views_worker_t *
ngx_http_bulletdrop_views_worker(void)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    return bmcf->views;
}


/*
 * The database decides: the access phase waits for it.  Like uploads'
 * rows, the requests that wait in a worker go as one statement, sent by a
 * posted event on at most half of the worker's connections: a file that
 * many ask for at once costs one update per batch, not one per view.
 */

ngx_int_t
ngx_http_bulletdrop_files_ask(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f)
{
    ngx_pool_cleanup_t                  *cln;
    ngx_http_bulletdrop_views_worker_t  *vw;

    vw = ngx_http_bulletdrop_views_worker();
    if (ngx_http_bulletdrop_watch_client(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_files_forget;
    cln->data = f;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop views: the access phase waits for the "
                   "database");

    f->request = r;
    f->queued = 1;
    ngx_queue_insert_tail(&vw->asking, &f->queue);

    if (!vw->ask_event.posted) {
        ngx_post_event(&vw->ask_event, &ngx_posted_events);
    }

    /* like limit_req's delay: the phases go on when the answer comes */
    f->waiting = 1;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


/* a request that nginx frees goes from the queue, or from its batch */

static void
ngx_http_bulletdrop_files_forget(void *data)
{
    ngx_http_bulletdrop_file_t *f = data;

    if (f->queued) {
        ngx_queue_remove(&f->queue);
        f->queued = 0;
    }

    if (f->asks) {
        f->asks->files[f->slot] = NULL;
        f->asks = NULL;
    }
}


static void
ngx_http_bulletdrop_files_send(ngx_event_t *ev)
{
    u_char                              *pi, *pc, *ids, *gets;
    ngx_str_t                            a;
    ngx_uint_t                           most;
    ngx_queue_t                         *qu;
    ngx_pool_t                          *pool;
    ngx_http_bulletdrop_asks_t          *b;
    ngx_http_bulletdrop_file_t          *f;
    ngx_http_bulletdrop_db_query_t      *q;
    ngx_http_bulletdrop_main_conf_t     *bmcf;
    ngx_http_bulletdrop_views_worker_t  *vw;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    vw = bmcf->views;

    most = ngx_max(bmcf->db.pool_size / 2, 1);

    while (!ngx_queue_empty(&vw->asking)
           && vw->asks_out < most)
    {
        pool = ngx_create_pool(sizeof(ngx_http_bulletdrop_asks_t) + 4096,
                               ev->log);
        if (pool == NULL) {
            goto nomem;
        }

        b = ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_asks_t));
        ids = ngx_pnalloc(pool, NGX_HTTP_BULLETDROP_ASKS_MAX
                                * (BD_DELIVER_ID_LEN + 1) + 2);
        gets = ngx_pnalloc(pool, NGX_HTTP_BULLETDROP_ASKS_MAX * 2 + 2);

        q = ngx_http_bulletdrop_db_query_create(
                bmcf->db.pool, pool, ev->log,
                NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEW);

        if (b == NULL || ids == NULL || gets == NULL || q == NULL) {
            ngx_destroy_pool(pool);
            goto nomem;
        }

        b->pool = pool;
        pi = ids;
        pc = gets;
        *pi++ = '{';
        *pc++ = '{';

        /* base64url ids need no quotes in an array literal */
        while (!ngx_queue_empty(&vw->asking)
               && b->n < NGX_HTTP_BULLETDROP_ASKS_MAX)
        {
            qu = ngx_queue_head(&vw->asking);
            ngx_queue_remove(qu);

            f = ngx_queue_data(qu, ngx_http_bulletdrop_file_t, queue);
            f->queued = 0;
            f->asks = b;
            f->slot = b->n;
            ngx_memcpy(b->ids[b->n], f->id, BD_DELIVER_ID_LEN);
            b->files[b->n++] = f;

            if (pi[-1] != '{') {
                *pi++ = ',';
                *pc++ = ',';
            }

            pi = ngx_cpymem(pi, f->id, BD_DELIVER_ID_LEN);
            *pc++ = (f->request->method == NGX_HTTP_GET) ? 't' : 'f';
        }

        *pi++ = '}';
        *pc++ = '}';

        a.data = ids;
        a.len = pi - ids;

        if (ngx_http_bulletdrop_db_param(q, 0, &a) != NGX_OK) {
            goto failed;
        }

        a.data = gets;
        a.len = pc - gets;

        /* one batch at a time leases ahead: views ahead stay few */
        if (ngx_http_bulletdrop_db_param(q, 1, &a) != NGX_OK
            || ngx_http_bulletdrop_query_param(q, 2,
                                   vw->asks_out
                                   ? "0" : NGX_HTTP_BULLETDROP_LEASE)
               != NGX_OK)
        {
            goto failed;
        }

        q->handler = ngx_http_bulletdrop_files_viewed;
        q->data = b;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "bulletdrop views: batch of %ui sent, lease %s, "
                       "%ui out before it",
                       b->n, vw->asks_out ? "0" : NGX_HTTP_BULLETDROP_LEASE,
                       vw->asks_out);

        vw->asks_out++;
        ngx_http_bulletdrop_db_run(q);
    }

    return;

failed:

    ngx_http_bulletdrop_files_answer(b, NULL, NULL);
    return;

nomem:

    /* nobody would send the waiting ones: they hear now */
    while (!ngx_queue_empty(&vw->asking)) {
        qu = ngx_queue_head(&vw->asking);
        ngx_queue_remove(qu);

        f = ngx_queue_data(qu, ngx_http_bulletdrop_file_t, queue);
        f->queued = 0;
        ngx_http_bulletdrop_files_decide(f, NULL, -1);
    }
}


static void
ngx_http_bulletdrop_files_viewed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_bulletdrop_views_worker_t  *vw;

    vw = ngx_http_bulletdrop_views_worker();

    vw->asks_out--;
    ngx_http_bulletdrop_files_answer(q->data, q, res);
}


/* each request hears of its row; q NULL: the batch was never sent */

static void
ngx_http_bulletdrop_files_answer(ngx_http_bulletdrop_asks_t *b,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res)
{
    int                                  row, nrows;
    int64_t                              ord;
    ngx_uint_t                           i;
    ngx_http_bulletdrop_file_t          *f;
    ngx_http_bulletdrop_views_worker_t  *vw;
    int                                  rows[NGX_HTTP_BULLETDROP_ASKS_MAX];

    vw = ngx_http_bulletdrop_views_worker();

    for (i = 0; i < b->n; i++) {
        rows[i] = -1;
    }

    if (q
        && ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                        ngx_cycle->log,
                                        "cannot check files' limits")
           == NGX_OK
        && PQnfields(res) == NGX_HTTP_BULLETDROP_UPLOAD_VIEW_NCOLUMNS)
    {
        nrows = PQntuples(res);

        for (row = 0; row < nrows; row++) {
            ord = ngx_http_bulletdrop_db_int(res, row,
                                         NGX_HTTP_BULLETDROP_UPLOAD_VIEW_ORD);

            if (ord >= 1 && (ngx_uint_t) ord <= b->n) {
                rows[ord - 1] = row;
            }
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop views: batch of %ui answered%s",
                   b->n, q ? "" : " (never sent)");

    /* the next batch goes first: the answers below may take a while */
    if (!ngx_queue_empty(&vw->asking)
        && !vw->ask_event.posted)
    {
        ngx_post_event(&vw->ask_event, &ngx_posted_events);
    }

    for (i = 0; i < b->n; i++) {
        f = b->files[i];

        if (f) {
            f->asks = NULL;
            ngx_http_bulletdrop_files_decide(f, res, rows[i]);

        } else if (rows[i] >= 0) {
            /* its client left: views leased with its row are kept */
            (void) ngx_http_bulletdrop_files_know(b->ids[i], res, rows[i],
                                                  0);
        }
    }

    /* q goes with the pool; res is the database layer's to clear */
    ngx_destroy_pool(b->pool);
}


/* row -1: no answer for this request (503) */

static void
ngx_http_bulletdrop_files_decide(ngx_http_bulletdrop_file_t *f,
    PGresult *res, int row)
{
    int64_t              views, max_views;
    ngx_uint_t           spent;
    const char          *state;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = f->request;
    c = r->connection;

    f->waiting = 0;
    r->read_event_handler = ngx_http_block_reading;

    if (row < 0) {
        (void) ngx_http_bulletdrop_files_refuse(r, BD_ERR_DATABASE_UNAVAILABLE,
                                                "this file's limits cannot "
                                                "be checked now: try again");
        ngx_http_run_posted_requests(c);
        return;
    }

    /* NULL: no limit, none counted */
    max_views = ngx_http_bulletdrop_db_null(res, row,
                                    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_MAX_VIEWS)
                ? 0 : ngx_http_bulletdrop_db_int(res, row,
                                    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_MAX_VIEWS);
    views = ngx_http_bulletdrop_db_null(res, row,
                                        NGX_HTTP_BULLETDROP_UPLOAD_VIEW_VIEWS)
            ? 0 : ngx_http_bulletdrop_db_int(res, row,
                                        NGX_HTTP_BULLETDROP_UPLOAD_VIEW_VIEWS);
    state = ngx_http_bulletdrop_db_text(res, row,
                                        NGX_HTTP_BULLETDROP_UPLOAD_VIEW_STATE);

    f->decided = 1;
    f->gone = (state == NULL || ngx_strcmp(state, "ok") != 0);
    f->counted = (max_views > 0 && r->method == NGX_HTTP_GET && !f->gone);
    spent = (f->counted && views >= max_views);

    /*
     * Burn after reading: the one view there was goes, and the file with
     * it once served.  A file with more views waits for the sweep: other
     * views granted just before this one may not have opened it yet.
     */
    f->last = (spent && max_views == 1);

    if (spent) {
        ngx_http_bulletdrop_metrics_add(BD_METRIC_VIEWS_EXHAUSTED, 1);
    }

    f->max_views = (max_views > 0);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "bulletdrop views: decided: views %L of %L, gone:%ui "
                   "counted:%ui last:%ui",
                   views, max_views, (ngx_uint_t) f->gone,
                   (ngx_uint_t) f->counted, (ngx_uint_t) f->last);

    /* a row that is gone is remembered as gone: no query the next time */
    f->expires = ngx_http_bulletdrop_files_know(f->id, res, row,
                                                f->gone || spent);

    /* the database's views may be spent on this server's lease */
    if (f->gone && max_views > 0 && r->method == NGX_HTTP_GET
        && ngx_http_bulletdrop_known_take(f->id) == NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "bulletdrop views: a view leased ahead taken");

        f->gone = 0;
        f->counted = 1;
    }

    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * What a row of bd_upload_view_batch() says of a file, into shared memory;
 * its expiry is returned
 */

static int64_t
ngx_http_bulletdrop_files_know(u_char *id, PGresult *res, int row,
    ngx_uint_t gone)
{
    int64_t  expires, lease;

    /* NULL: never */
    expires = ngx_http_bulletdrop_db_msec(res, row,
                                   NGX_HTTP_BULLETDROP_UPLOAD_VIEW_EXPIRES_AT);
    expires = ngx_max(expires, 0);

    lease = ngx_http_bulletdrop_db_int(res, row,
                                       NGX_HTTP_BULLETDROP_UPLOAD_VIEW_LEASED);

    ngx_http_bulletdrop_known_store(id, expires,
               !ngx_http_bulletdrop_db_null(res, row,
                                    NGX_HTTP_BULLETDROP_UPLOAD_VIEW_MAX_VIEWS),
               gone, lease < 0 ? 0 : (ngx_uint_t) lease);

    return expires;
}


/* the log phase: a view is counted, and a file out of views goes */

ngx_int_t
ngx_http_bulletdrop_files_log(ngx_http_request_t *r)
{
    ngx_uint_t                        status;
    ngx_table_elt_t                  *range;
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_file_t       *f;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx == NULL || ctx->file == NULL || r != r->main
        || !ctx->file->decided || ctx->file->gone)
    {
        return NGX_OK;
    }

    f = ctx->file;

    if (f->last) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop views: last view served: \"%V\" goes",
                       &f->key);

        bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

        /* served: the file goes now, its row with the next sweep */
        if (bmcf->s3) {
            /* nobody waits; a failure is logged, and the sweep tries again */
            (void) ngx_http_bulletdrop_s3_remove(bmcf->s3,
                                                 r->connection->log,
                                                 &f->key, NULL, NULL);

        } else if (ngx_delete_file(f->path.data) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                          "bulletdrop: cannot delete \"%s\"", f->path.data);
        }

        return NGX_OK;
    }

    if (f->counted || r->method != NGX_HTTP_GET) {
        return NGX_OK;
    }

    /* a view is a whole answer, or the part of one that starts it */
    status = r->headers_out.status;
    range = r->headers_in.range;

    if (status == NGX_HTTP_OK || status == NGX_HTTP_NOT_MODIFIED
        || (status == NGX_HTTP_PARTIAL_CONTENT && range
            && range->value.len >= sizeof("bytes=0-") - 1
            && ngx_strncasecmp(range->value.data, (u_char *) "bytes=0-",
                               sizeof("bytes=0-") - 1) == 0))
    {
        ngx_http_bulletdrop_views_add(f->id);
    }

    return NGX_OK;
}


/*
 * Views of files without a view limit: counted in this worker, sent as
 * one statement a second at most.  The table empties into the statement's
 * parameters, which keep their own copy.
 */

static void
ngx_http_bulletdrop_views_add(u_char *id)
{
    ngx_uint_t                           i, n;
    ngx_http_bulletdrop_views_slot_t    *s;
    ngx_http_bulletdrop_views_worker_t  *vw;

    vw = ngx_http_bulletdrop_views_worker();
    i = ngx_crc32_short(id, BD_DELIVER_ID_LEN)
        & (NGX_HTTP_BULLETDROP_VIEWS_SLOTS - 1);

    for (n = 0; n < NGX_HTTP_BULLETDROP_VIEWS_SLOTS; n++) {
        s = &vw->slots[i];

        if (s->n == 0) {
            ngx_memcpy(s->id, id, BD_DELIVER_ID_LEN);
            s->n = 1;
            vw->n++;
            break;
        }

        if (ngx_memcmp(s->id, id, BD_DELIVER_ID_LEN) == 0) {
            s->n++;
            break;
        }

        i = (i + 1) & (NGX_HTTP_BULLETDROP_VIEWS_SLOTS - 1);
    }

    if (vw->n >= NGX_HTTP_BULLETDROP_VIEWS_SLOTS / 2) {
        ngx_http_bulletdrop_views_flush(&vw->flush_event);
        return;
    }

    if (!vw->flush_event.timer_set) {
        ngx_add_timer(&vw->flush_event,
                      NGX_HTTP_BULLETDROP_VIEWS_EVERY);
    }
}


static void
ngx_http_bulletdrop_views_flush(ngx_event_t *ev)
{
    u_char                              *ids, *counts, *pi, *pc;
    ngx_str_t                            a;
    ngx_uint_t                           i;
    ngx_pool_t                          *pool;
    ngx_http_bulletdrop_db_query_t      *q;
    ngx_http_bulletdrop_views_slot_t    *s;
    ngx_http_bulletdrop_main_conf_t     *bmcf;
    ngx_http_bulletdrop_views_worker_t  *vw;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    vw = bmcf->views;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (vw->n == 0) {
        return;
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    ids = ngx_pnalloc(pool, vw->n
                            * (BD_DELIVER_ID_LEN + 1) + 2);
    counts = ngx_pnalloc(pool, vw->n
                               * (NGX_INT32_LEN + 1) + 2);

    q = ngx_http_bulletdrop_db_query_create(
            bmcf->db.pool, pool, ngx_cycle->log,
            NGX_HTTP_BULLETDROP_SQL_UPLOAD_VIEWS);

    if (ids == NULL || counts == NULL || q == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    /* base64url ids need no quotes in an array literal */
    pi = ids;
    pc = counts;
    *pi++ = '{';
    *pc++ = '{';

    for (i = 0; i < NGX_HTTP_BULLETDROP_VIEWS_SLOTS; i++) {
        s = &vw->slots[i];

        if (s->n == 0) {
            continue;
        }

        if (pi[-1] != '{') {
            *pi++ = ',';
            *pc++ = ',';
        }

        pi = ngx_cpymem(pi, s->id, BD_DELIVER_ID_LEN);
        pc = ngx_sprintf(pc, "%uD", s->n);

        s->n = 0;
    }

    *pi++ = '}';
    *pc++ = '}';

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop views: views of %ui files sent", vw->n);

    vw->n = 0;

    a.data = ids;
    a.len = pi - ids;

    if (ngx_http_bulletdrop_db_param(q, 0, &a) != NGX_OK) {
        ngx_destroy_pool(pool);
        return;
    }

    a.data = counts;
    a.len = pc - counts;

    if (ngx_http_bulletdrop_db_param(q, 1, &a) != NGX_OK) {
        ngx_destroy_pool(pool);
        return;
    }

    q->handler = ngx_http_bulletdrop_views_sent;
    q->data = pool;

    ngx_http_bulletdrop_db_run(q);
}


static void
ngx_http_bulletdrop_views_sent(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    /* a count, not a file: it is not worth a retry */
    (void) ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                        ngx_cycle->log,
                                        "views not recorded");

    ngx_destroy_pool(q->data);
}
