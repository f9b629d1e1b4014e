/*
 * BulletDrop: uploads committed in batches.
 *
 * Under load a worker had several uploads waiting on PostgreSQL at any
 * time, each paying for a statement and a transaction of its own.  Here
 * uploads ready to be recorded queue; a posted event sends what has
 * queued as one statement, as long as fewer than half the worker's
 * connections carry batches, so the queries of other requests still find
 * a connection.  What queues while batches run goes in the next one.  An
 * upload alone waits for nothing but the posted event; one whose deadline
 * passes in the queue is answered without being sent.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_commit.h"
#include "ngx_http_bulletdrop_sql.h"


/* rows in one statement: more would hold the first ones back for long */
#define NGX_HTTP_BULLETDROP_COMMIT_MAX   32


/* what a worker keeps (bmcf->commit): its queue and the batches it has out */
struct ngx_http_bulletdrop_commit_worker_s {
    ngx_queue_t                     queue;
    ngx_uint_t                      out;
    /* posted to send what has queued */
    ngx_event_t                     event;
    ngx_http_bulletdrop_db_conf_t  *db;
};


typedef struct {
    ngx_pool_t                     *pool;
    ngx_uint_t                      n;
    ngx_http_bulletdrop_commit_t   *rows[NGX_HTTP_BULLETDROP_COMMIT_MAX];
} ngx_http_bulletdrop_batch_t;


static void ngx_http_bulletdrop_commit_forget(void *data);
static void ngx_http_bulletdrop_commit_flush(ngx_event_t *ev);
static ngx_http_bulletdrop_commit_t *ngx_http_bulletdrop_commit_next(
    ngx_http_bulletdrop_commit_worker_t *cw);
static ngx_int_t ngx_http_bulletdrop_commit_send(
    ngx_http_bulletdrop_batch_t *b);
static ngx_int_t ngx_http_bulletdrop_commit_array(
    ngx_http_bulletdrop_batch_t *b, ngx_uint_t field, ngx_str_t *out);
static void ngx_http_bulletdrop_commit_answered(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);


ngx_int_t
ngx_http_bulletdrop_commit_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_db_conf_t *dbcf)
{
    ngx_http_bulletdrop_main_conf_t      *bmcf;
    ngx_http_bulletdrop_commit_worker_t  *cw;

    bmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_bulletdrop_module);

    cw = ngx_pcalloc(cycle->pool, sizeof(ngx_http_bulletdrop_commit_worker_t));
    if (cw == NULL) {
        return NGX_ERROR;
    }

    cw->db = dbcf;
    ngx_queue_init(&cw->queue);

    cw->event.handler = ngx_http_bulletdrop_commit_flush;
    cw->event.data = cw;
    cw->event.log = cycle->log;

    bmcf->commit = cw;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_commit(ngx_http_bulletdrop_commit_t *c)
{
    ngx_event_t                          *ev;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_bulletdrop_main_conf_t      *bmcf;
    ngx_http_bulletdrop_commit_worker_t  *cw;

    bmcf = ngx_http_get_module_main_conf(c->request,
                                         ngx_http_bulletdrop_module);
    cw = bmcf->commit;

    if (cw == NULL) {
        return NGX_ERROR;
    }

    ev = &cw->event;

    cln = ngx_pool_cleanup_add(c->request->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_commit_forget;
    cln->data = c;

    ngx_queue_insert_tail(&cw->queue, &c->queue);
    c->queued = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->request->connection->log, 0,
                   "bulletdrop commit: row queued, %ui batches out", cw->out);

    if (!ev->posted) {
        ngx_post_event(ev, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * The request is freed while its row waits (nginx terminated it): the
 * queue or the batch lets go of it, and nobody is answered
 */

static void
ngx_http_bulletdrop_commit_forget(void *data)
{
    ngx_http_bulletdrop_commit_t  *c = data;

    ngx_http_bulletdrop_batch_t  *b;

    if (c->queued) {
        ngx_queue_remove(&c->queue);
        c->queued = 0;
    }

    if (c->batch) {
        b = c->batch;
        b->rows[c->slot] = NULL;
        c->batch = NULL;
    }
}


/* sends what has queued, as far as the connections it may use allow */

static void
ngx_http_bulletdrop_commit_flush(ngx_event_t *ev)
{
    ngx_uint_t                            i, most;
    ngx_pool_t                           *pool;
    ngx_http_bulletdrop_batch_t          *b;
    ngx_http_bulletdrop_commit_t         *c;
    ngx_http_bulletdrop_commit_worker_t  *cw;

    cw = ev->data;

    most = (ngx_uint_t) ngx_max(cw->db->pool_size / 2, 1);

    for ( ;; ) {

        if (cw->out >= most) {
            /*
             * No room: rows whose deadline passed are answered meanwhile.
             * Deadlines grow along the queue, so the first live row goes
             * back to its head and those behind it are live too.
             */
            c = ngx_http_bulletdrop_commit_next(cw);

            if (c) {
                ngx_queue_insert_head(&cw->queue, &c->queue);
                c->queued = 1;
            }

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                           "bulletdrop commit: %ui batches out, rows wait",
                           cw->out);
            return;
        }

        c = ngx_http_bulletdrop_commit_next(cw);
        if (c == NULL) {
            return;
        }

        pool = ngx_create_pool(4096, ev->log);
        b = pool ? ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_batch_t))
                 : NULL;

        if (b == NULL) {
            if (pool) {
                ngx_destroy_pool(pool);
            }

            /* out of memory: this one is answered, not kept */
            c->done(c, NULL, NULL, -1);
            continue;
        }

        b->pool = pool;

        do {
            c->batch = b;
            c->slot = b->n;
            b->rows[b->n++] = c;

        } while (b->n < NGX_HTTP_BULLETDROP_COMMIT_MAX
                 && (c = ngx_http_bulletdrop_commit_next(cw)) != NULL);

        if (ngx_http_bulletdrop_commit_send(b) != NGX_OK) {
            for (i = 0; i < b->n; i++) {
                c = b->rows[i];
                c->batch = NULL;
                c->done(c, NULL, NULL, -1);
            }

            ngx_destroy_pool(pool);
            continue;
        }

        for (i = 0; i < b->n; i++) {
            b->rows[i]->sent = 1;
        }

        cw->out++;
    }
}


/*
 * The first row in the queue whose deadline has not passed, taken off it;
 * those before it are answered as late
 */

static ngx_http_bulletdrop_commit_t *
ngx_http_bulletdrop_commit_next(ngx_http_bulletdrop_commit_worker_t *cw)
{
    ngx_queue_t                   *qu;
    ngx_http_bulletdrop_commit_t  *c;

    while (!ngx_queue_empty(&cw->queue)) {
        qu = ngx_queue_head(&cw->queue);
        ngx_queue_remove(qu);

        c = ngx_queue_data(qu, ngx_http_bulletdrop_commit_t, queue);
        c->queued = 0;

        if ((ngx_msec_int_t) (c->deadline - ngx_current_msec) > 0) {
            return c;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->request->connection->log, 0,
                       "bulletdrop commit: row late in the queue, not sent");

        c->late = 1;
        c->done(c, NULL, NULL, -1);
    }

    return NULL;
}


static ngx_int_t
ngx_http_bulletdrop_commit_send(ngx_http_bulletdrop_batch_t *b)
{
    ngx_str_t                             array;
    ngx_uint_t                            field;
    ngx_http_bulletdrop_db_query_t       *q;
    ngx_http_bulletdrop_main_conf_t      *bmcf;
    ngx_http_bulletdrop_commit_worker_t  *cw;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    cw = bmcf->commit;

    q = ngx_http_bulletdrop_db_query_create(cw->db->pool, b->pool,
            ngx_cycle->log, NGX_HTTP_BULLETDROP_SQL_UPLOAD_INSERT);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->handler = ngx_http_bulletdrop_commit_answered;
    q->data = b;

    for (field = 0; field < NGX_HTTP_BULLETDROP_COMMIT_FIELDS; field++) {
        if (ngx_http_bulletdrop_commit_array(b, field, &array) != NGX_OK
            || ngx_http_bulletdrop_db_param(q, field, &array) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_http_bulletdrop_db_run(q);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop commit: batch of %ui rows sent", b->n);

    if (b->n > 1) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "bulletdrop: %ui uploads sent in one statement", b->n);
    }

    return NGX_OK;
}


/* one field of every row as an array literal: {"a","b\"c",NULL} */

static ngx_int_t
ngx_http_bulletdrop_commit_array(ngx_http_bulletdrop_batch_t *b,
    ngx_uint_t field, ngx_str_t *out)
{
    u_char      *p, *s, *end;
    size_t       len;
    ngx_uint_t   i;
    ngx_str_t   *v;

    len = sizeof("{}") - 1;

    for (i = 0; i < b->n; i++) {
        v = &b->rows[i]->fields[field];

        /* every byte may need its backslash; quotes and a comma around */
        len += v->data ? 2 * v->len + 3 : sizeof("NULL,") - 1;
    }

    out->data = ngx_pnalloc(b->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    *p++ = '{';

    for (i = 0; i < b->n; i++) {
        v = &b->rows[i]->fields[field];

        if (i) {
            *p++ = ',';
        }

        if (v->data == NULL) {
            p = ngx_cpymem(p, "NULL", sizeof("NULL") - 1);
            continue;
        }

        *p++ = '"';

        for (s = v->data, end = s + v->len; s < end; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }

            *p++ = *s;
        }

        *p++ = '"';
    }

    *p++ = '}';
    out->len = p - out->data;

    return NGX_OK;
}


/*
 * Each upload hears of its own row.  The next batch goes first: the
 * answers below may take a while to write.
 */

static void
ngx_http_bulletdrop_commit_answered(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                                   row, nrows;
    int64_t                               ord;
    ngx_uint_t                            i;
    ngx_http_bulletdrop_batch_t          *b;
    ngx_http_bulletdrop_commit_t         *c;
    ngx_http_bulletdrop_main_conf_t      *bmcf;
    ngx_http_bulletdrop_commit_worker_t  *cw;
    int                                   rows[NGX_HTTP_BULLETDROP_COMMIT_MAX];

    b = q->data;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);
    cw = bmcf->commit;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulletdrop commit: batch of %ui rows answered: %s, %d "
                   "rows", b->n, ngx_http_bulletdrop_db_status_text(q->status),
                   res ? PQntuples(res) : 0);

    cw->out--;

    if (!ngx_queue_empty(&cw->queue)) {
        ngx_http_bulletdrop_commit_flush(&cw->event);
    }

    for (i = 0; i < b->n; i++) {
        rows[i] = -1;
    }

    if (q->status == NGX_HTTP_BULLETDROP_DB_OK
        && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQnfields(res) == NGX_HTTP_BULLETDROP_UPLOAD_INSERT_NCOLUMNS)
    {
        nrows = PQntuples(res);

        for (row = 0; row < nrows; row++) {
            /* the row's place in the batch, from 1 */
            ord = ngx_http_bulletdrop_db_int(res, row,
                                        NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ORD);

            if (ord >= 1 && (ngx_uint_t) ord <= b->n) {
                rows[ord - 1] = row;
            }
        }
    }

    for (i = 0; i < b->n; i++) {
        c = b->rows[i];

        /* NULL: its request was freed meanwhile */
        if (c) {
            c->batch = NULL;
            c->done(c, q, res, rows[i]);
        }
    }

    /* q goes with the pool; res is the pool's caller's to clear */
    ngx_destroy_pool(b->pool);
}
