/*
 * BulletDrop: Prometheus metrics.
 *
 * Every worker adds to the counters of one shared zone with atomic adds:
 * no lock, and nothing a request waits for.  "bulletdrop_metrics" copies
 * the zone and formats the copy.  The zone outlives a reload (same name,
 * size and module), so counters run on across reloads; a restart of
 * nginx starts them from zero, as Prometheus' rate() expects of a reset.
 */

#include <signal.h>

#include "ngx_http_bulletdrop_metrics.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_error.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_upload.h"
#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_known.h"


/* a layout of the zone's counters; another one is not reused */
#define NGX_HTTP_BULLETDROP_METRICS_MAGIC    0x62646d3100000000ULL

/* worker slots: more than any worker_processes of a reload's overlap */
#define NGX_HTTP_BULLETDROP_METRICS_WORKERS  256

#define NGX_HTTP_BULLETDROP_METRICS_BUF      8192


/* an upload's result, and its reasons beyond the error table's codes */
enum {
    BD_UPLOAD_OK = 0,
    BD_UPLOAD_REFUSED,
    BD_UPLOAD_FAILED,
    BD_UPLOAD_RESULTS
};

enum {
    BD_REASON_ABORTED = BD_ERR_COUNT,
    BD_REASON_TIMEOUT,
    BD_REASON_OTHER,
    BD_REASONS
};

/* a file's kind: bulletdrop_files_served_total{kind} */
enum {
    BD_FILE_PERMANENT = 0,
    BD_FILE_EXPIRING,
    BD_FILE_LIMITED,
    BD_FILE_KINDS
};


/* a histogram's upper bounds, in its unit, and as Prometheus says them */
typedef struct {
    uint64_t                        le;
    const char                     *label;
} ngx_http_bulletdrop_bound_t;

#define bd_bound(le, label)  { le, label }

/* microseconds */
static const ngx_http_bulletdrop_bound_t  ngx_http_bulletdrop_upload_secs[] = {
    bd_bound(5000, "0.005"), bd_bound(10000, "0.01"),
    bd_bound(25000, "0.025"), bd_bound(50000, "0.05"),
    bd_bound(100000, "0.1"), bd_bound(250000, "0.25"),
    bd_bound(500000, "0.5"), bd_bound(1000000, "1"),
    bd_bound(2500000, "2.5"), bd_bound(5000000, "5"),
    bd_bound(10000000, "10"), bd_bound(30000000, "30"),
    bd_bound(60000000, "60"), bd_bound(120000000, "120")
};

/* bytes, by fours from 1 KiB */
static const ngx_http_bulletdrop_bound_t  ngx_http_bulletdrop_upload_sizes[] = {
    bd_bound(1024, "1024"), bd_bound(4096, "4096"),
    bd_bound(16384, "16384"), bd_bound(65536, "65536"),
    bd_bound(262144, "262144"), bd_bound(1048576, "1048576"),
    bd_bound(4194304, "4194304"), bd_bound(16777216, "16777216"),
    bd_bound(67108864, "67108864"), bd_bound(268435456, "268435456"),
    bd_bound(1073741824, "1073741824")
};

/* microseconds, of nginx's millisecond clock */
static const ngx_http_bulletdrop_bound_t  ngx_http_bulletdrop_query_secs[] = {
    bd_bound(1000, "0.001"), bd_bound(2500, "0.0025"),
    bd_bound(5000, "0.005"), bd_bound(10000, "0.01"),
    bd_bound(25000, "0.025"), bd_bound(50000, "0.05"),
    bd_bound(100000, "0.1"), bd_bound(250000, "0.25"),
    bd_bound(500000, "0.5"), bd_bound(1000000, "1"),
    bd_bound(2500000, "2.5"), bd_bound(5000000, "5"),
    bd_bound(10000000, "10")
};

#define bd_nbounds(b)  (sizeof(b) / sizeof(b[0]))

#define BD_HISTOGRAM_MAX  16

typedef struct {
    /* per bucket, not cumulative; the last one is +Inf */
    ngx_atomic_t                    bucket[BD_HISTOGRAM_MAX + 1];
    ngx_atomic_t                    count;
    /* in the unit of the bounds */
    ngx_atomic_t                    sum;
} ngx_http_bulletdrop_histogram_t;


/* the statuses of files told apart; others by class: "4xx" */
static const ngx_uint_t  ngx_http_bulletdrop_file_statuses[] = {
    200, 206, 304, 400, 403, 404, 405, 410, 412, 416, 500, 503
};

#define BD_FILE_STATUSES                                                      \
    (sizeof(ngx_http_bulletdrop_file_statuses) / sizeof(ngx_uint_t))
#define BD_FILE_SLOTS  (BD_FILE_STATUSES + 5)


typedef struct {
    /* 0: free; a slot of a process that died is free too */
    ngx_atomic_t                    pid;
    ngx_atomic_t                    conns[BD_DB_STATES];
    ngx_atomic_t                    waiting;
} ngx_http_bulletdrop_metrics_worker_t;


typedef struct {
    uint64_t                        magic;

    ngx_atomic_t                    uploads[BD_UPLOAD_RESULTS][BD_REASONS];
    ngx_atomic_t                    upload_bytes;
    ngx_http_bulletdrop_histogram_t upload_seconds;
    ngx_http_bulletdrop_histogram_t upload_size;

    ngx_atomic_t                    files[BD_FILE_KINDS][BD_FILE_SLOTS];

    ngx_atomic_t                    auth_failures[BD_AUTH_FAILED_KINDS];

    ngx_http_bulletdrop_histogram_t query_seconds;
    ngx_atomic_t                    query_timeouts;

    ngx_atomic_t                    counters[BD_METRIC_COUNTERS];
    ngx_atomic_t                    jobs[BD_JOB_KINDS][BD_JOB_DONE + 1];

    ngx_http_bulletdrop_metrics_worker_t
                               workers[NGX_HTTP_BULLETDROP_METRICS_WORKERS];
} ngx_http_bulletdrop_metrics_shm_t;


/* the answer, written a line at a time into buffers of the request */
typedef struct {
    ngx_pool_t                     *pool;
    ngx_chain_t                    *out;
    ngx_chain_t                   **last;
    ngx_buf_t                      *b;
    off_t                           len;
    unsigned                        failed:1;
} ngx_http_bulletdrop_metrics_text_t;


static ngx_int_t ngx_http_bulletdrop_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_bulletdrop_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_metrics_log(ngx_http_request_t *r);
static void ngx_http_bulletdrop_metrics_upload(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_metrics_file(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f);
static void ngx_http_bulletdrop_observe(ngx_http_bulletdrop_histogram_t *h,
    const ngx_http_bulletdrop_bound_t *bounds, ngx_uint_t n, uint64_t v);
static ngx_uint_t ngx_http_bulletdrop_metrics_reason(ngx_uint_t result,
    ngx_uint_t reason);
static void ngx_http_bulletdrop_metrics_format(
    ngx_http_bulletdrop_metrics_text_t *t,
    ngx_http_bulletdrop_metrics_shm_t *m);
static void ngx_http_bulletdrop_metrics_histogram(
    ngx_http_bulletdrop_metrics_text_t *t, const char *name, const char *help,
    ngx_http_bulletdrop_histogram_t *h,
    const ngx_http_bulletdrop_bound_t *bounds, ngx_uint_t n,
    ngx_uint_t seconds);
static void ngx_http_bulletdrop_metrics_line(
    ngx_http_bulletdrop_metrics_text_t *t, const char *fmt, ...);


static const char  *ngx_http_bulletdrop_upload_results[] = {
    "ok", "refused", "failed"
};

static const char  *ngx_http_bulletdrop_file_kinds[] = {
    "permanent", "expiring", "limited"
};

static const char  *ngx_http_bulletdrop_auth_kinds[] = {
    "password", "token", "api_key", "session", "expired", "invite"
};

static const char  *ngx_http_bulletdrop_job_kinds[] = {
    "password_hash", "fsync"
};

static const char  *ngx_http_bulletdrop_job_events[] = {
    "posted", "refused", "done"
};

static const char  *ngx_http_bulletdrop_db_states[] = {
    "closed", "connecting", "idle", "busy"
};


/* this worker's view of the zone, and its slot; NULL until mapped */
static ngx_http_bulletdrop_metrics_shm_t     *bd_metrics;
static ngx_http_bulletdrop_metrics_worker_t  *bd_metrics_worker;


char *
ngx_http_bulletdrop_metrics_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    size_t     size;
    ngx_str_t  name;

    ngx_str_set(&name, "bulletdrop_metrics");

    /* the slab pool's own pages, then the counters */
    size = ngx_align(sizeof(ngx_http_bulletdrop_metrics_shm_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    bmcf->metrics_zone = ngx_shared_memory_add(cf, &name, size,
                                               &ngx_http_bulletdrop_module);
    if (bmcf->metrics_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    bmcf->metrics_zone->init = ngx_http_bulletdrop_metrics_init_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_bulletdrop_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                    *shpool;
    ngx_http_bulletdrop_metrics_shm_t  *m;

    m = data;

    /* a reload: the counters run on, unless their layout changed */
    if (m != NULL && m->magic == (NGX_HTTP_BULLETDROP_METRICS_MAGIC
                                  | sizeof(ngx_http_bulletdrop_metrics_shm_t)))
    {
        zone->data = m;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    m = ngx_slab_calloc(shpool, sizeof(ngx_http_bulletdrop_metrics_shm_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->magic = NGX_HTTP_BULLETDROP_METRICS_MAGIC
               | sizeof(ngx_http_bulletdrop_metrics_shm_t);

    shpool->data = m;
    zone->data = m;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_metrics_postconf(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_bulletdrop_metrics_log;

    return NGX_OK;
}


/* bulletdrop_metrics: this location answers with the metrics */

char *
ngx_http_bulletdrop_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_bulletdrop_metrics_handler;

    return NGX_CONF_OK;
}


/*
 * A worker takes a free slot for its gauges: one never taken, one given
 * back, or one of a worker that died without giving it back
 */

ngx_int_t
ngx_http_bulletdrop_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_uint_t                             i;
    ngx_atomic_uint_t                      pid;
    ngx_http_bulletdrop_metrics_worker_t  *w;

    if (bmcf->metrics_zone == NULL || bmcf->metrics_zone->data == NULL) {
        return NGX_OK;
    }

    bd_metrics = bmcf->metrics_zone->data;

    for (i = 0; i < NGX_HTTP_BULLETDROP_METRICS_WORKERS; i++) {
        w = &bd_metrics->workers[i];
        pid = w->pid;

        if (pid != 0 && (kill((pid_t) pid, 0) == 0 || ngx_errno != NGX_ESRCH))
        {
            continue;
        }

        if (ngx_atomic_cmp_set(&w->pid, pid, (ngx_atomic_uint_t) ngx_pid)) {
            ngx_memzero((void *) w->conns, sizeof(w->conns));
            w->waiting = 0;
            bd_metrics_worker = w;
            break;
        }
    }

    if (bd_metrics_worker == NULL) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "bulletdrop: no metrics slot is free: this worker's "
                      "database connections are not in the metrics");
    }

    return NGX_OK;
}


void
ngx_http_bulletdrop_metrics_exit_process(void)
{
    if (bd_metrics_worker) {
        ngx_memzero((void *) bd_metrics_worker->conns,
                    sizeof(bd_metrics_worker->conns));
        bd_metrics_worker->waiting = 0;
        bd_metrics_worker->pid = 0;
        bd_metrics_worker = NULL;
    }
}


/* counting */

void
ngx_http_bulletdrop_metrics_auth_failed(ngx_http_bulletdrop_auth_failed_e kind)
{
    if (bd_metrics) {
        (void) ngx_atomic_fetch_add(&bd_metrics->auth_failures[kind], 1);
    }
}


void
ngx_http_bulletdrop_metrics_add(ngx_http_bulletdrop_metric_e counter,
    ngx_uint_t n)
{
    if (bd_metrics) {
        (void) ngx_atomic_fetch_add(&bd_metrics->counters[counter],
                                    (ngx_atomic_int_t) n);
    }
}


void
ngx_http_bulletdrop_metrics_job(ngx_http_bulletdrop_job_kind_e kind,
    ngx_http_bulletdrop_job_event_e event)
{
    if (bd_metrics) {
        (void) ngx_atomic_fetch_add(&bd_metrics->jobs[kind][event], 1);
    }
}


void
ngx_http_bulletdrop_metrics_db_pool(ngx_uint_t *conns, ngx_uint_t waiting)
{
    ngx_uint_t  i;

    if (bd_metrics_worker == NULL) {
        return;
    }

    for (i = 0; i < BD_DB_STATES; i++) {
        bd_metrics_worker->conns[i] = conns[i];
    }

    bd_metrics_worker->waiting = waiting;
}


void
ngx_http_bulletdrop_metrics_db_query(ngx_msec_t ms, ngx_uint_t timeout)
{
    if (bd_metrics == NULL) {
        return;
    }

    ngx_http_bulletdrop_observe(&bd_metrics->query_seconds,
                                ngx_http_bulletdrop_query_secs,
                                bd_nbounds(ngx_http_bulletdrop_query_secs),
                                (uint64_t) ms * 1000);

    if (timeout) {
        (void) ngx_atomic_fetch_add(&bd_metrics->query_timeouts, 1);
    }
}


static void
ngx_http_bulletdrop_observe(ngx_http_bulletdrop_histogram_t *h,
    const ngx_http_bulletdrop_bound_t *bounds, ngx_uint_t n, uint64_t v)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (v <= bounds[i].le) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&h->count, 1);
    (void) ngx_atomic_fetch_add(&h->sum, (ngx_atomic_int_t) v);
}


/*
 * The log phase: what an upload or a file request came to, once it is
 * answered (or its client gone)
 */

static ngx_int_t
ngx_http_bulletdrop_metrics_log(ngx_http_request_t *r)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    if (bd_metrics == NULL || r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    if (ctx == NULL) {
        return NGX_OK;
    }

    if (ctx->file) {
        ngx_http_bulletdrop_metrics_file(r, ctx->file);

    } else if (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_STREAM) {
        ngx_http_bulletdrop_metrics_upload(r, ctx);
    }

    return NGX_OK;
}


static void
ngx_http_bulletdrop_metrics_upload(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    off_t        size;
    ngx_uint_t   status, result, reason;
    ngx_msec_t   ms;
    ngx_time_t  *tp;

    status = r->headers_out.status;

    if (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE) {
        tp = ngx_timeofday();
        ms = (ngx_msec_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
        ms = ngx_max((ngx_msec_int_t) ms, 0);

        size = ngx_http_bulletdrop_upload_size(ctx);

        ngx_http_bulletdrop_observe(&bd_metrics->upload_seconds,
                                ngx_http_bulletdrop_upload_secs,
                                bd_nbounds(ngx_http_bulletdrop_upload_secs),
                                (uint64_t) ms * 1000);
        ngx_http_bulletdrop_observe(&bd_metrics->upload_size,
                                ngx_http_bulletdrop_upload_sizes,
                                bd_nbounds(ngx_http_bulletdrop_upload_sizes),
                                (uint64_t) size);
        (void) ngx_atomic_fetch_add(&bd_metrics->upload_bytes,
                                    (ngx_atomic_int_t) size);
        (void) ngx_atomic_fetch_add(&bd_metrics->uploads[BD_UPLOAD_OK][0], 1);
        return;
    }

    /*
     * The client left, or was too slow: the upload failed, not refused.
     * nginx answers 400 to a body cut short ("client prematurely closed
     * connection") and marks the connection: that is a client gone too.
     */
    if (status == NGX_HTTP_CLIENT_CLOSED_REQUEST || status == 0
        || (r->connection->error && ctx->error == BD_ERR_NONE))
    {
        result = BD_UPLOAD_FAILED;
        reason = BD_REASON_ABORTED;

    } else if (status == NGX_HTTP_REQUEST_TIME_OUT) {
        result = BD_UPLOAD_FAILED;
        reason = BD_REASON_TIMEOUT;

    } else {
        result = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                 ? BD_UPLOAD_FAILED : BD_UPLOAD_REFUSED;

        /* BD_ERR_NONE is the table's "internal_error" */
        reason = (ctx->error != BD_ERR_NONE || result == BD_UPLOAD_FAILED)
                 ? ctx->error : BD_REASON_OTHER;
    }

    (void) ngx_atomic_fetch_add(&bd_metrics->uploads[result][reason], 1);
}


static void
ngx_http_bulletdrop_metrics_file(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f)
{
    ngx_uint_t                    kind, status, slot, max_views;
    ngx_http_bulletdrop_known_t   known;

    max_views = f->max_views;

    /* refused before its limits were read (its file is gone): as known */
    if (!f->limited && bd_deliver_id_limited((char *) f->id)
        && ngx_http_bulletdrop_known_find(f->id, &known) == NGX_OK)
    {
        max_views = known.max_views;
    }

    kind = !bd_deliver_id_limited((char *) f->id) ? BD_FILE_PERMANENT
           : max_views ? BD_FILE_LIMITED : BD_FILE_EXPIRING;

    status = r->headers_out.status;

    for (slot = 0; slot < BD_FILE_STATUSES; slot++) {
        if (ngx_http_bulletdrop_file_statuses[slot] == status) {
            break;
        }
    }

    if (slot == BD_FILE_STATUSES) {
        /* by class: 1xx to 5xx, and a client gone (499) is a 4xx */
        slot += (status >= 100 && status < 600) ? status / 100 - 1 : 3;
    }

    (void) ngx_atomic_fetch_add(&bd_metrics->files[kind][slot], 1);
}


/* GET /metrics */

static ngx_int_t
ngx_http_bulletdrop_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_table_elt_t                     *h;
    ngx_http_bulletdrop_ctx_t           *ctx;
    ngx_http_bulletdrop_metrics_shm_t   *copy;
    ngx_http_bulletdrop_metrics_text_t   t;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        ctx = ngx_http_bulletdrop_ctx(r);
        h = ngx_list_push(&r->headers_out.headers);

        if (ctx == NULL || h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, HEAD");

        ngx_http_bulletdrop_error_record(ctx, BD_ERR_METHOD_NOT_ALLOWED, NULL);
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (bd_metrics == NULL) {
        ctx = ngx_http_bulletdrop_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAVAILABLE,
                                         "there are no metrics in this "
                                         "process");
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    /* the copy is all that is read of the zone */
    copy = ngx_palloc(r->pool, sizeof(ngx_http_bulletdrop_metrics_shm_t));
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(copy, (void *) bd_metrics,
               sizeof(ngx_http_bulletdrop_metrics_shm_t));

    ngx_memzero(&t, sizeof(ngx_http_bulletdrop_metrics_text_t));
    t.pool = r->pool;
    t.last = &t.out;

    ngx_http_bulletdrop_metrics_format(&t, copy);

    if (t.failed || ngx_http_bulletdrop_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = t.len;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    t.b->last_buf = (r == r->main) ? 1 : 0;
    t.b->last_in_chain = 1;

    return ngx_http_output_filter(r, t.out);
}


/*
 * Whether an upload may come to this result for this reason: the codes
 * of the error table by their status (4xx refused, 5xx failed), the
 * module's own reasons, and internal_error
 */

static ngx_uint_t
ngx_http_bulletdrop_metrics_reason(ngx_uint_t result, ngx_uint_t reason)
{
    ngx_uint_t  status;

    switch (reason) {
    case BD_REASON_ABORTED:
    case BD_REASON_TIMEOUT:
        return result == BD_UPLOAD_FAILED;
    case BD_REASON_OTHER:
        return result == BD_UPLOAD_REFUSED;
    }

    status = ngx_http_bulletdrop_errors[reason].status;

    return (result == BD_UPLOAD_FAILED)
           == (status >= NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* a family's head, and a family of one sample without labels */
#define bd_family(t, name, type, help)                                        \
    ngx_http_bulletdrop_metrics_line(t, "# HELP " name " " help "\n"          \
                                        "# TYPE " name " " type "\n")
#define bd_single(t, name, type, help, v)                                     \
    ngx_http_bulletdrop_metrics_line(t, "# HELP " name " " help "\n"          \
                                        "# TYPE " name " " type "\n"          \
                                        name " %uA\n", (ngx_atomic_uint_t) v)

static void
ngx_http_bulletdrop_metrics_format(ngx_http_bulletdrop_metrics_text_t *t,
    ngx_http_bulletdrop_metrics_shm_t *m)
{
    ngx_uint_t                             i, j, live, reason;
    ngx_atomic_uint_t                      v;
    ngx_atomic_uint_t                      conns[BD_DB_STATES], waiting;
    ngx_http_bulletdrop_metrics_worker_t  *w;

    bd_family(t, "bulletdrop_build_info", "gauge",
              "The module's version and the nginx it was built for.");
    ngx_http_bulletdrop_metrics_line(t,
        "bulletdrop_build_info{version=\"%s\",nginx=\"%s\"} 1\n",
        NGX_HTTP_BULLETDROP_VERSION, NGINX_VERSION);

    /* uploads: ok, then by reason */
    bd_family(t, "bulletdrop_uploads_total", "counter",
              "Uploads by result (ok, refused, failed) and reason (the "
              "error code of the answer).");
    ngx_http_bulletdrop_metrics_line(t,
        "bulletdrop_uploads_total{result=\"ok\",reason=\"none\"} %uA\n",
        m->uploads[BD_UPLOAD_OK][0]);

    /*
     * every reason an upload can come to, 0 or not: a series that appears
     * with its first count loses that count to rate() and increase()
     */
    for (i = BD_UPLOAD_REFUSED; i < BD_UPLOAD_RESULTS; i++) {
        for (reason = 0; reason < BD_REASONS; reason++) {
            v = m->uploads[i][reason];

            if (v != 0
                || ngx_http_bulletdrop_metrics_reason(i, reason))
            {
                ngx_http_bulletdrop_metrics_line(t,
                    "bulletdrop_uploads_total{result=\"%s\",reason=\"%s\"} "
                    "%uA\n", ngx_http_bulletdrop_upload_results[i],
                    reason == BD_REASON_ABORTED ? "aborted"
                    : reason == BD_REASON_TIMEOUT ? "timeout"
                    : reason == BD_REASON_OTHER ? "other"
                    : ngx_http_bulletdrop_errors[reason].code, v);
            }
        }
    }

    bd_single(t, "bulletdrop_upload_bytes_total", "counter",
              "Bytes of the files of successful uploads.", m->upload_bytes);

    ngx_http_bulletdrop_metrics_histogram(t,
        "bulletdrop_upload_duration_seconds",
        "Time of successful uploads, from the request's first byte to the "
        "answer.", &m->upload_seconds, ngx_http_bulletdrop_upload_secs,
        bd_nbounds(ngx_http_bulletdrop_upload_secs), 1);

    ngx_http_bulletdrop_metrics_histogram(t, "bulletdrop_upload_size_bytes",
        "Sizes of the files of successful uploads.", &m->upload_size,
        ngx_http_bulletdrop_upload_sizes,
        bd_nbounds(ngx_http_bulletdrop_upload_sizes), 0);

    /* files: every kind and status, 0 or not */
    bd_family(t, "bulletdrop_files_served_total", "counter",
              "Requests for files on the file domains, by the file's kind "
              "and the status of the answer.");

    for (i = 0; i < BD_FILE_KINDS; i++) {
        for (j = 0; j < BD_FILE_SLOTS; j++) {
            v = m->files[i][j];

            if (j < BD_FILE_STATUSES) {
                ngx_http_bulletdrop_metrics_line(t,
                    "bulletdrop_files_served_total{kind=\"%s\","
                    "status=\"%ui\"} %uA\n",
                    ngx_http_bulletdrop_file_kinds[i],
                    ngx_http_bulletdrop_file_statuses[j], v);

            } else {
                ngx_http_bulletdrop_metrics_line(t,
                    "bulletdrop_files_served_total{kind=\"%s\","
                    "status=\"%uixx\"} %uA\n",
                    ngx_http_bulletdrop_file_kinds[i],
                    j - BD_FILE_STATUSES + 1, v);
            }
        }
    }

    bd_single(t, "bulletdrop_views_exhausted_total", "counter",
              "Files with a view limit that gave their last view.",
              m->counters[BD_METRIC_VIEWS_EXHAUSTED]);

    bd_family(t, "bulletdrop_auth_failures_total", "counter",
              "Refused credentials: wrong passwords, and tokens, API keys "
              "and session cookies that are not valid or expired.");

    for (i = 0; i < BD_AUTH_FAILED_KINDS; i++) {
        ngx_http_bulletdrop_metrics_line(t,
            "bulletdrop_auth_failures_total{kind=\"%s\"} %uA\n",
            ngx_http_bulletdrop_auth_kinds[i], m->auth_failures[i]);
    }

    bd_single(t, "bulletdrop_login_limited_total", "counter",
              "Password attempts refused by the login limiter (429).",
              m->counters[BD_METRIC_LOGIN_LIMITED]);

    /* the workers' pools, summed over the workers that are alive */
    live = 0;
    waiting = 0;
    ngx_memzero(conns, sizeof(conns));

    for (i = 0; i < NGX_HTTP_BULLETDROP_METRICS_WORKERS; i++) {
        w = &m->workers[i];

        if (w->pid == 0
            || (kill((pid_t) w->pid, 0) == -1 && ngx_errno == NGX_ESRCH))
        {
            continue;
        }

        live++;
        waiting += w->waiting;

        for (j = 0; j < BD_DB_STATES; j++) {
            conns[j] += w->conns[j];
        }
    }

    bd_single(t, "bulletdrop_worker_processes", "gauge",
              "nginx worker processes counting into these metrics.", live);

    bd_family(t, "bulletdrop_db_connections", "gauge",
              "Database connections of all workers, by state.");

    for (j = 0; j < BD_DB_STATES; j++) {
        ngx_http_bulletdrop_metrics_line(t,
            "bulletdrop_db_connections{state=\"%s\"} %uA\n",
            ngx_http_bulletdrop_db_states[j], conns[j]);
    }

    bd_single(t, "bulletdrop_db_queue_length", "gauge",
              "Queries waiting for a free connection, all workers.",
              waiting);

    ngx_http_bulletdrop_metrics_histogram(t,
        "bulletdrop_db_query_duration_seconds",
        "Time of database queries, from being asked (queue included) to "
        "the answer or the failure.", &m->query_seconds,
        ngx_http_bulletdrop_query_secs,
        bd_nbounds(ngx_http_bulletdrop_query_secs), 1);

    bd_single(t, "bulletdrop_db_query_timeouts_total", "counter",
              "Queries that got no answer within bulletdrop_db_timeout.",
              m->query_timeouts);
    bd_single(t, "bulletdrop_db_reconnects_total", "counter",
              "Connection attempts after a connection was lost or an "
              "attempt failed.", m->counters[BD_METRIC_DB_RECONNECTS]);
    bd_single(t, "bulletdrop_sweep_removed_total", "counter",
              "Expired and spent uploads the sweep removed.",
              m->counters[BD_METRIC_SWEEP_REMOVED]);

    bd_family(t, "bulletdrop_thread_jobs_total", "counter",
              "Jobs for nginx's thread pool, by job and what came of them "
              "(posted, refused: the queue was full, done).");

    for (i = 0; i < BD_JOB_KINDS; i++) {
        for (j = BD_JOB_POSTED; j <= BD_JOB_DONE; j++) {
            ngx_http_bulletdrop_metrics_line(t,
                "bulletdrop_thread_jobs_total{job=\"%s\",event=\"%s\"} "
                "%uA\n", ngx_http_bulletdrop_job_kinds[i],
                ngx_http_bulletdrop_job_events[j], m->jobs[i][j]);
        }
    }
}


/* cumulative buckets; seconds: microseconds shown as seconds */

static void
ngx_http_bulletdrop_metrics_histogram(ngx_http_bulletdrop_metrics_text_t *t,
    const char *name, const char *help, ngx_http_bulletdrop_histogram_t *h,
    const ngx_http_bulletdrop_bound_t *bounds, ngx_uint_t n,
    ngx_uint_t seconds)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  total;

    ngx_http_bulletdrop_metrics_line(t, "# HELP %s %s\n# TYPE %s histogram\n",
                                     name, help, name);

    total = 0;

    for (i = 0; i < n; i++) {
        total += h->bucket[i];
        ngx_http_bulletdrop_metrics_line(t, "%s_bucket{le=\"%s\"} %uA\n",
                                         name, bounds[i].label, total);
    }

    /*
     * +Inf is the count: the copy was taken while others counted, so the
     * buckets, count and sum of a copy may be an observation apart
     */
    total += h->bucket[n];
    ngx_http_bulletdrop_metrics_line(t, "%s_bucket{le=\"+Inf\"} %uA\n",
                                     name, total);

    if (seconds) {
        ngx_http_bulletdrop_metrics_line(t, "%s_sum %uA.%06uA\n", name,
                                         h->sum / 1000000, h->sum % 1000000);

    } else {
        ngx_http_bulletdrop_metrics_line(t, "%s_sum %uA\n", name, h->sum);
    }

    ngx_http_bulletdrop_metrics_line(t, "%s_count %uA\n", name, total);
}


/*
 * A line (or a few) of the answer; none is near the buffer's size.  An
 * allocation that fails is remembered, and the answer is then a 500.
 */

static void
ngx_http_bulletdrop_metrics_line(ngx_http_bulletdrop_metrics_text_t *t,
    const char *fmt, ...)
{
    u_char       *p;
    va_list       args;
    ngx_chain_t  *cl;

    if (t->failed) {
        return;
    }

    if (t->b == NULL || t->b->end - t->b->last < 1024) {
        t->b = ngx_create_temp_buf(t->pool, NGX_HTTP_BULLETDROP_METRICS_BUF);
        cl = ngx_alloc_chain_link(t->pool);

        if (t->b == NULL || cl == NULL) {
            t->failed = 1;
            return;
        }

        cl->buf = t->b;
        cl->next = NULL;
        *t->last = cl;
        t->last = &cl->next;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(t->b->last, t->b->end, fmt, args);
    va_end(args);

    t->len += p - t->b->last;
    t->b->last = p;
}
