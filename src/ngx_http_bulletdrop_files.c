/*
 * BulletDrop: files served on the file domains.
 *
 * In the access phase of a "bulletdrop_files on" location: a Host that is
 * an enabled file domain gets files and nothing else ("/" goes to the main
 * site); any other Host gets no files.  The file's name (an xattr) is read
 * with one system call, which also tells a missing file.  A permanent file
 * then goes to nginx's static module at once.  A file with an expiry or a
 * view limit has its id marked (bd_deliver_id_limited()); it is checked
 * against what the workers share of it, and against the database when
 * they know nothing or when a view must be counted: a view limit is kept
 * by one atomic update per view.  A request of many ranges gets the whole
 * file.  The header filter makes every answer safe to open (types,
 * nosniff, sandbox) and sets how long it may be cached; the log
 * phase counts views, sent in batches, and removes a file whose last view
 * was just served.  One worker sweeps expired files away.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_files.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_deliver.h"
#include "bd_file.h"

#include <sys/xattr.h>


#define NGX_HTTP_BULLETDROP_FILES_ZONE      (1024 * 1024)

/* views are sent at most this long after they were served */
#define NGX_HTTP_BULLETDROP_VIEWS_EVERY     1000
#define NGX_HTTP_BULLETDROP_VIEWS_SLOTS     1024

/* requests in one statement of views */
#define NGX_HTTP_BULLETDROP_ASKS_MAX        64

/* views taken ahead of a file with many left (bd_upload_view_batch()) */
#define NGX_HTTP_BULLETDROP_LEASE           "64"

/* rows a sweep takes at a time */
#define NGX_HTTP_BULLETDROP_SWEEP_PAGE      200

/*
 * Ranges in one request where the location sets no max_ranges: past them
 * the whole file goes, as past max_ranges.  500 one-byte ranges of a 5 KB
 * file made a 45 KB multipart answer; 16 keep the parts' heads (some 100
 * bytes each) to a small share of an answer, and players and PDF readers
 * ask for one to a few.
 */
#define NGX_HTTP_BULLETDROP_MAX_RANGES      16


typedef struct ngx_http_bulletdrop_asks_s  ngx_http_bulletdrop_asks_t;

struct ngx_http_bulletdrop_file_s {
    u_char                              id[BD_DELIVER_ID_LEN];
    ngx_http_request_t                 *request;
    /* waiting to be sent, then in a batch at slot */
    ngx_queue_t                         queue;
    ngx_http_bulletdrop_asks_t         *asks;
    ngx_uint_t                          slot;
    ngx_str_t                           path;
    ngx_str_t                           disposition;
    bd_deliver_type_t                   type;
    /* milliseconds since the epoch; 0: none (or not known) */
    int64_t                             expires;

    unsigned                            limited:1;
    /* a view limit: every view is counted, so none is cached */
    unsigned                            max_views:1;
    /* the access phase waits for the database */
    unsigned                            waiting:1;
    unsigned                            decided:1;
    unsigned                            gone:1;
    /* the view was counted by the database already */
    unsigned                            counted:1;
    /* the one view a file had (burn after reading): it goes once served */
    unsigned                            last:1;
    /* an error page (a 416) goes through the filters again */
    unsigned                            headers:1;
    unsigned                            queued:1;
};


/* the views a worker asks the database for in one statement */
struct ngx_http_bulletdrop_asks_s {
    ngx_pool_t                         *pool;
    ngx_uint_t                          n;
    /* NULL: its request was freed meanwhile */
    ngx_http_bulletdrop_file_t         *files[NGX_HTTP_BULLETDROP_ASKS_MAX];
    u_char                              ids[NGX_HTTP_BULLETDROP_ASKS_MAX]
                                           [BD_DELIVER_ID_LEN];
};


/* what the workers know of a file with limits */
typedef struct {
    ngx_rbtree_node_t                   node;
    ngx_queue_t                         queue;
    /* milliseconds since the epoch; 0: never */
    int64_t                             expires;
    /* views the database gave this server ahead, for any worker */
    ngx_uint_t                          lease;
    u_char                              id[BD_DELIVER_ID_LEN];
    unsigned                            max_views:1;
    unsigned                            gone:1;
} ngx_http_bulletdrop_known_t;


typedef struct {
    ngx_rbtree_t                        rbtree;
    ngx_rbtree_node_t                   sentinel;
    /* the most recently used first */
    ngx_queue_t                         lru;
} ngx_http_bulletdrop_files_sh_t;


typedef struct {
    u_char                              id[BD_DELIVER_ID_LEN];
    uint32_t                            n;
} ngx_http_bulletdrop_views_slot_t;


static ngx_int_t ngx_http_bulletdrop_files_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_bulletdrop_files_access(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_elsewhere(ngx_http_request_t *r);
static ngx_uint_t ngx_http_bulletdrop_files_uri(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_start(ngx_http_request_t *r,
    bd_deliver_path_t *dp);
static void ngx_http_bulletdrop_files_ranges(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, bd_deliver_path_t *dp);
static ngx_int_t ngx_http_bulletdrop_files_ask(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f);
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
static ngx_int_t ngx_http_bulletdrop_files_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_err_e err, const char *detail);
static ngx_int_t ngx_http_bulletdrop_files_home(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_preflight(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_header(ngx_http_request_t *r,
    const char *key, const char *value, size_t len);
static ngx_int_t ngx_http_bulletdrop_files_cache(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, ngx_str_t *value);
static ngx_int_t ngx_http_bulletdrop_files_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_log(ngx_http_request_t *r);

static ngx_int_t ngx_http_bulletdrop_known_find(u_char *id,
    ngx_http_bulletdrop_known_t *out);
static void ngx_http_bulletdrop_known_store(u_char *id, int64_t expires,
    ngx_uint_t max_views, ngx_uint_t gone, ngx_uint_t lease);
static ngx_int_t ngx_http_bulletdrop_known_take(u_char *id);
static ngx_http_bulletdrop_known_t *ngx_http_bulletdrop_known_lookup(
    u_char *id, uint32_t hash);
static void ngx_http_bulletdrop_known_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static int64_t ngx_http_bulletdrop_now(void);

static void ngx_http_bulletdrop_views_add(u_char *id);
static void ngx_http_bulletdrop_views_flush(ngx_event_t *ev);
static void ngx_http_bulletdrop_views_sent(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);

static void ngx_http_bulletdrop_sweep(ngx_event_t *ev);
static void ngx_http_bulletdrop_sweep_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_sweep_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);
static void ngx_http_bulletdrop_sweep_later(ngx_msec_t delay);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

static ngx_slab_pool_t                  *ngx_http_bulletdrop_files_shpool;
static ngx_http_bulletdrop_files_sh_t   *ngx_http_bulletdrop_files_sh;
static ngx_http_bulletdrop_main_conf_t  *ngx_http_bulletdrop_files_conf;

static ngx_http_bulletdrop_views_slot_t
    ngx_http_bulletdrop_views[NGX_HTTP_BULLETDROP_VIEWS_SLOTS];
static ngx_uint_t                        ngx_http_bulletdrop_views_n;
static ngx_event_t                       ngx_http_bulletdrop_views_event;
static ngx_event_t                       ngx_http_bulletdrop_sweep_event;

/* requests waiting for the database, and the batches out */
static ngx_queue_t                       ngx_http_bulletdrop_asking;
static ngx_event_t                       ngx_http_bulletdrop_ask_event;
static ngx_uint_t                        ngx_http_bulletdrop_asks_out;
static ngx_uint_t                        ngx_http_bulletdrop_sweep_more;


/* configuration */

char *
ngx_http_bulletdrop_files_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                             *rv;
    ngx_http_bulletdrop_loc_conf_t   *blcf = conf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (blcf->files) {
        bmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_bulletdrop_module);
        bmcf->files = 1;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_bulletdrop_expiry_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    ngx_str_t  *value;

    if (bmcf->default_expiry != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        bmcf->default_expiry = 0;
        return NGX_CONF_OK;
    }

    bmcf->default_expiry = ngx_parse_time(&value[1], 1);

    if (bmcf->default_expiry == (time_t) NGX_ERROR
        || bmcf->default_expiry <= 0
        || (int64_t) bmcf->default_expiry * 1000 > BD_EXPIRY_MAX_MS)
    {
        return "invalid value: a time from 1s to ten years, or off";
    }

    return NGX_CONF_OK;
}


char *
ngx_http_bulletdrop_files_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_str_t  name;

    if (bmcf->default_expiry == NGX_CONF_UNSET) {
        bmcf->default_expiry = 0;
    }

    ngx_conf_init_msec_value(bmcf->sweep_interval, 60 * 1000);

    if (!bmcf->files) {
        return NGX_CONF_OK;
    }

    if (bmcf->db.options == NULL || bmcf->upload_dir.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_files\" needs \"bulletdrop_db\" and "
                           "\"bulletdrop_upload_dir\" in the http block");
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "bulletdrop_files");

    bmcf->files_zone = ngx_shared_memory_add(cf, &name,
                                             NGX_HTTP_BULLETDROP_FILES_ZONE,
                                             &ngx_http_bulletdrop_module);
    if (bmcf->files_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    bmcf->files_zone->init = ngx_http_bulletdrop_files_init_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_bulletdrop_files_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_bulletdrop_files_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (data || zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    /* a full zone evicts: not worth a line in the log each time */
    shpool->log_nomem = 0;

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_bulletdrop_files_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_bulletdrop_known_insert);
    ngx_queue_init(&sh->lru);

    shpool->data = sh;
    zone->data = sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_files_postconf(ngx_conf_t *cf)
{
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulletdrop_module);

    if (!bmcf->files) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_bulletdrop_files_access;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_bulletdrop_files_log;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_bulletdrop_files_header_filter;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_files_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_event_t  *ev;

    if (bmcf->files_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_bulletdrop_files_conf = bmcf;
    ngx_http_bulletdrop_files_shpool =
                             (ngx_slab_pool_t *) bmcf->files_zone->shm.addr;
    ngx_http_bulletdrop_files_sh = bmcf->files_zone->data;

    ngx_queue_init(&ngx_http_bulletdrop_asking);

    ev = &ngx_http_bulletdrop_ask_event;
    ev->handler = ngx_http_bulletdrop_files_send;
    ev->log = cycle->log;

    ev = &ngx_http_bulletdrop_views_event;
    ev->handler = ngx_http_bulletdrop_views_flush;
    ev->log = cycle->log;
    /* a worker that exits loses at most a second of views */
    ev->cancelable = 1;

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    ev = &ngx_http_bulletdrop_sweep_event;
    ev->handler = ngx_http_bulletdrop_sweep;
    ev->log = cycle->log;
    ev->cancelable = 1;

    /* soon after a start: files may have expired while nginx was down */
    ngx_http_bulletdrop_sweep_later(ngx_min(bmcf->sweep_interval, 1000));

    return NGX_OK;
}


/* the access phase */

static ngx_int_t
ngx_http_bulletdrop_files_access(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    bd_deliver_path_t                dp;
    ngx_http_bulletdrop_ctx_t       *ctx;
    ngx_http_bulletdrop_file_t      *f;
    ngx_http_bulletdrop_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulletdrop_module);

    if (!blcf->files || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx && ctx->file) {
        /* again, once the database has answered */
        f = ctx->file;

        if (f->waiting) {
            return NGX_AGAIN;
        }

        if (f->gone) {
            return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                    "there is no such file");
        }

        return NGX_DECLINED;
    }

    rc = ngx_http_bulletdrop_domain_enabled(r->headers_in.server.data,
                                            r->headers_in.server.len);

    if (rc == NGX_DECLINED || r->headers_in.server.len == 0) {
        return ngx_http_bulletdrop_files_elsewhere(r);
    }

    /* the first moments of a fresh start: files wait, the rest goes on */
    if (rc == NGX_AGAIN) {
        if (!ngx_http_bulletdrop_files_uri(r)) {
            return NGX_DECLINED;
        }

        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_UNAVAILABLE,
                                                "the file domains are not "
                                                "loaded yet: try again");
    }

    if (r->uri.len == 1 && r->uri.data[0] == '/') {
        return ngx_http_bulletdrop_files_home(r);
    }

    if (bd_deliver_path((char *) r->uri.data, r->uri.len, &dp) != 0) {
        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                "a file domain serves "
                                                "/static/<category>/<id>.<ext> "
                                                "and nothing else");
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_bulletdrop_files_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_bulletdrop_files_header(r, "Allow", "GET, HEAD, OPTIONS",
                                             18)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_METHOD_NOT_ALLOWED,
                                                "files are read with GET");
    }

    return ngx_http_bulletdrop_files_start(r, &dp);
}


/* not a file domain: everything but files goes on */

static ngx_int_t
ngx_http_bulletdrop_files_elsewhere(ngx_http_request_t *r)
{
    if (ngx_http_bulletdrop_files_uri(r)) {
        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                "files are served on the "
                                                "file domains only");
    }

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_bulletdrop_files_uri(ngx_http_request_t *r)
{
    return r->uri.len >= sizeof("/static/") - 1
           && ngx_strncmp(r->uri.data, "/static/", sizeof("/static/") - 1)
              == 0;
}


static ngx_int_t
ngx_http_bulletdrop_files_start(ngx_http_request_t *r, bd_deliver_path_t *dp)
{
    ngx_http_bulletdrop_ctx_t    *ctx;
    ngx_http_bulletdrop_file_t   *f;
    ngx_http_bulletdrop_known_t   known;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_ctx_t));
    f = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_file_t));

    if (ctx == NULL || f == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->file = f;
    ngx_http_set_ctx(r, ctx, ngx_http_bulletdrop_module);

    ngx_http_bulletdrop_files_ranges(r);

    ngx_memcpy(f->id, dp->id, BD_DELIVER_ID_LEN);
    bd_deliver_type(dp->ext, dp->ext_len, &f->type);

    switch (ngx_http_bulletdrop_files_name(r, f, dp)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                "there is no such file");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!bd_deliver_id_limited(dp->id)) {
        f->decided = 1;
        return NGX_DECLINED;
    }

    f->limited = 1;

    if (ngx_http_bulletdrop_known_find(f->id, &known) == NGX_OK) {
        f->expires = known.expires;
        f->max_views = known.max_views;

        if (known.gone
            || (known.expires && ngx_http_bulletdrop_now() >= known.expires))
        {
            f->gone = 1;
            return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                    "there is no such file");
        }

        /* an expiry alone needs no query: its time is known */
        if (!known.max_views) {
            f->decided = 1;
            return NGX_DECLINED;
        }

        /* nor a view the database gave this server ahead */
        if (r->method == NGX_HTTP_GET
            && ngx_http_bulletdrop_known_take(f->id) == NGX_OK)
        {
            f->decided = 1;
            f->counted = 1;
            return NGX_DECLINED;
        }
    }

    return ngx_http_bulletdrop_files_ask(r, f);
}


/*
 * Where the location sets no max_ranges (nginx's default is no limit), a
 * request of more than NGX_HTTP_BULLETDROP_MAX_RANGES ranges gets the
 * whole file: its Range is not seen by the range filter, which would do
 * the same past max_ranges.  An operator's max_ranges is left to nginx.
 */

static void
ngx_http_bulletdrop_files_ranges(ngx_http_request_t *r)
{
    u_char                    *p, *last;
    ngx_uint_t                 n;
    ngx_http_core_loc_conf_t  *clcf;

    if (r->headers_in.range == NULL) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->max_ranges != NGX_MAX_INT32_VALUE) {
        return;
    }

    p = r->headers_in.range->value.data;
    last = p + r->headers_in.range->value.len;

    for (n = 1; p < last; p++) {
        if (*p == ',' && ++n > NGX_HTTP_BULLETDROP_MAX_RANGES) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "bulletdrop: more than %ui ranges: the whole file",
                           (ngx_uint_t) NGX_HTTP_BULLETDROP_MAX_RANGES);

            r->headers_in.range = NULL;
            return;
        }
    }
}


/*
 * The file's path, and its name from its xattr: one system call, which
 * also says that it is not there.  NGX_DECLINED: no such file.
 */

static ngx_int_t
ngx_http_bulletdrop_files_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, bd_deliver_path_t *dp)
{
    u_char     *last;
    size_t      root, len;
    ssize_t     n;
    ngx_err_t   err;
    u_char      name[BD_FILE_NAME_MAX];

    last = ngx_http_map_uri_to_path(r, &f->path, &root, 0);
    if (last == NULL) {
        return NGX_ERROR;
    }

    f->path.len = last - f->path.data;

    n = getxattr((char *) f->path.data, NGX_HTTP_BULLETDROP_NAME_XATTR, name,
                 sizeof(name));

    if (n == -1) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR
            || err == NGX_ENAMETOOLONG)
        {
            return NGX_DECLINED;
        }

        /* no name kept (an older upload, a file system without xattrs) */
        n = dp->ext - dp->id + dp->ext_len;
        ngx_memcpy(name, dp->id, n);
    }

    len = bd_deliver_disposition(f->type.inline_ok, (char *) name, n, NULL,
                                 0);

    f->disposition.data = ngx_pnalloc(r->pool, len + 1);
    if (f->disposition.data == NULL) {
        return NGX_ERROR;
    }

    f->disposition.len = bd_deliver_disposition(f->type.inline_ok,
                                                (char *) name, n,
                                                (char *) f->disposition.data,
                                                len + 1);

    return NGX_OK;
}


/*
 * The database decides: the access phase waits for it.  Like uploads'
 * rows, the requests that wait in a worker go as one statement, sent by a
 * posted event on at most half of the worker's connections: a file that
 * many ask for at once costs one update per batch, not one per view.
 */

static ngx_int_t
ngx_http_bulletdrop_files_ask(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_bulletdrop_watch_client(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_files_forget;
    cln->data = f;

    f->request = r;
    f->queued = 1;
    ngx_queue_insert_tail(&ngx_http_bulletdrop_asking, &f->queue);

    if (!ngx_http_bulletdrop_ask_event.posted) {
        ngx_post_event(&ngx_http_bulletdrop_ask_event, &ngx_posted_events);
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
    u_char                          *pi, *pc, *ids, *gets;
    ngx_str_t                        a;
    ngx_uint_t                       most;
    ngx_queue_t                     *qu;
    ngx_pool_t                      *pool;
    ngx_http_bulletdrop_asks_t      *b;
    ngx_http_bulletdrop_file_t      *f;
    ngx_http_bulletdrop_db_query_t  *q;

    most = ngx_max(ngx_http_bulletdrop_files_conf->db.pool_size / 2, 1);

    while (!ngx_queue_empty(&ngx_http_bulletdrop_asking)
           && ngx_http_bulletdrop_asks_out < most)
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
                ngx_http_bulletdrop_files_conf->db.pool, pool, ev->log,
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
        while (!ngx_queue_empty(&ngx_http_bulletdrop_asking)
               && b->n < NGX_HTTP_BULLETDROP_ASKS_MAX)
        {
            qu = ngx_queue_head(&ngx_http_bulletdrop_asking);
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
                                   ngx_http_bulletdrop_asks_out
                                   ? "0" : NGX_HTTP_BULLETDROP_LEASE)
               != NGX_OK)
        {
            goto failed;
        }

        q->handler = ngx_http_bulletdrop_files_viewed;
        q->data = b;

        ngx_http_bulletdrop_asks_out++;
        ngx_http_bulletdrop_db_run(q);
    }

    return;

failed:

    ngx_http_bulletdrop_files_answer(b, NULL, NULL);
    return;

nomem:

    /* nobody would send the waiting ones: they hear now */
    while (!ngx_queue_empty(&ngx_http_bulletdrop_asking)) {
        qu = ngx_queue_head(&ngx_http_bulletdrop_asking);
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
    ngx_http_bulletdrop_asks_out--;
    ngx_http_bulletdrop_files_answer(q->data, q, res);
}


/* each request hears of its row; q NULL: the batch was never sent */

static void
ngx_http_bulletdrop_files_answer(ngx_http_bulletdrop_asks_t *b,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res)
{
    int                          row, nrows, ord;
    ngx_uint_t                   i;
    ngx_http_bulletdrop_file_t  *f;
    int                          rows[NGX_HTTP_BULLETDROP_ASKS_MAX];

    for (i = 0; i < b->n; i++) {
        rows[i] = -1;
    }

    if (q
        && ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                        ngx_cycle->log,
                                        "cannot check files' limits")
           == NGX_OK
        && PQnfields(res) == 6)
    {
        nrows = PQntuples(res);

        for (row = 0; row < nrows; row++) {
            ord = atoi(PQgetvalue(res, row, 0));

            if (ord >= 1 && (ngx_uint_t) ord <= b->n) {
                rows[ord - 1] = row;
            }
        }
    }

    /* the next batch goes first: the answers below may take a while */
    if (!ngx_queue_empty(&ngx_http_bulletdrop_asking)
        && !ngx_http_bulletdrop_ask_event.posted)
    {
        ngx_post_event(&ngx_http_bulletdrop_ask_event, &ngx_posted_events);
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

    max_views = PQgetisnull(res, row, 3)
                ? 0 : ngx_atoof((u_char *) PQgetvalue(res, row, 3),
                                PQgetlength(res, row, 3));
    views = PQgetisnull(res, row, 4)
            ? 0 : ngx_atoof((u_char *) PQgetvalue(res, row, 4),
                            PQgetlength(res, row, 4));

    f->decided = 1;
    f->gone = (ngx_strcmp(PQgetvalue(res, row, 1), "ok") != 0);
    f->counted = (max_views > 0 && r->method == NGX_HTTP_GET && !f->gone);
    spent = (f->counted && views >= max_views);

    /*
     * Burn after reading: the one view there was goes, and the file with
     * it once served.  A file with more views waits for the sweep: other
     * views granted just before this one may not have opened it yet.
     */
    f->last = (spent && max_views == 1);

    f->max_views = (max_views > 0);

    /* a row that is gone is remembered as gone: no query the next time */
    f->expires = ngx_http_bulletdrop_files_know(f->id, res, row,
                                                f->gone || spent);

    /* the database's views may be spent on this server's lease */
    if (f->gone && max_views > 0 && r->method == NGX_HTTP_GET
        && ngx_http_bulletdrop_known_take(f->id) == NGX_OK)
    {
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
    int64_t    expires;
    ngx_int_t  lease;

    expires = PQgetisnull(res, row, 2)
              ? 0 : (int64_t) (strtod(PQgetvalue(res, row, 2), NULL) * 1000);

    lease = ngx_atoi((u_char *) PQgetvalue(res, row, 5),
                     PQgetlength(res, row, 5));

    ngx_http_bulletdrop_known_store(id, expires, !PQgetisnull(res, row, 3),
                                    gone, lease == NGX_ERROR ? 0 : lease);

    return expires;
}


/*
 * An answer from the access phase, in JSON: the request is finalized here
 * and the phases stop.
 */

static ngx_int_t
ngx_http_bulletdrop_files_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_err_e err, const char *detail)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_bulletdrop_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    ngx_http_bulletdrop_error_record(ctx, err, detail);
    ngx_http_finalize_request(r, ngx_http_bulletdrop_error_send(r, ctx));

    return NGX_DONE;
}


/* "/" of a file domain: the main site, on the port the client used */

static ngx_int_t
ngx_http_bulletdrop_files_home(ngx_http_request_t *r)
{
    ngx_str_t                         url;
    ngx_table_elt_t                  *h;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    if (bmcf->base_domain.len == 0) {
        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                "a file domain serves files "
                                                "only");
    }

    if (ngx_http_bulletdrop_origin(r, &bmcf->base_domain, &url) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = ngx_pnalloc(r->pool, url.len + 1);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "%V/", &url) - h->value.data;

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* CORS: a page elsewhere may read files, with ranges */

static ngx_int_t
ngx_http_bulletdrop_files_preflight(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_bulletdrop_files_header(r, "Access-Control-Allow-Origin",
                                         "*", 1) != NGX_OK
        || ngx_http_bulletdrop_files_header(r,
               "Access-Control-Allow-Methods", "GET, HEAD", 9) != NGX_OK
        || ngx_http_bulletdrop_files_header(r,
               "Access-Control-Allow-Headers", "Range", 5) != NGX_OK
        || ngx_http_bulletdrop_files_header(r, "Access-Control-Max-Age",
                                            "86400", 5) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    ngx_http_finalize_request(r, ngx_http_send_header(r));

    return NGX_DONE;
}


static ngx_int_t
ngx_http_bulletdrop_files_header(ngx_http_request_t *r, const char *key,
    const char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = len;

    return NGX_OK;
}


/*
 * The headers of every file answer, kept short: on this kernel an answer's
 * head past 512 bytes costs a sixth of a 300 KB file's requests/s
 * (bench/serve.sh)
 */

static ngx_int_t
ngx_http_bulletdrop_files_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                    cache;
    ngx_uint_t                   status;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_file_t  *f;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx == NULL || ctx->file == NULL || r != r->main
        || !ctx->file->decided || ctx->file->gone || ctx->file->headers)
    {
        return ngx_http_next_header_filter(r);
    }

    f = ctx->file;
    status = r->headers_out.status;

    /* the static module's 200 or 304; the range filter comes after this */
    if (status != NGX_HTTP_OK && status != NGX_HTTP_NOT_MODIFIED) {
        return ngx_http_next_header_filter(r);
    }

    f->headers = 1;

    /* the table's type, never what the static module guessed */
    r->headers_out.content_type.data = (u_char *) f->type.content_type;
    r->headers_out.content_type.len = ngx_strlen(f->type.content_type);
    r->headers_out.content_type_len = f->type.text
                                      ? sizeof("text/plain") - 1
                                      : r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    if (ngx_http_bulletdrop_files_cache(r, f, &cache) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_bulletdrop_files_header(r, "X-Content-Type-Options",
                                         "nosniff", 7) != NGX_OK
        || ngx_http_bulletdrop_files_header(r, "Content-Security-Policy",
                                            "sandbox", 7) != NGX_OK
        || ngx_http_bulletdrop_files_header(r, "Access-Control-Allow-Origin",
                                            "*", 1) != NGX_OK
        || ngx_http_bulletdrop_files_header(r, "Content-Disposition",
                                            (char *) f->disposition.data,
                                            f->disposition.len) != NGX_OK
        || ngx_http_bulletdrop_files_header(r, "Cache-Control",
                                            (char *) cache.data, cache.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/*
 * How long a file may be kept by browsers and caches.  A deleted file
 * must stop showing soon: not a year, as "immutable" had it, but
 * bulletdrop_file_cache_ttl (5m), after which a cache asks again with the
 * ETag or Last-Modified the static module sent, and hears 304 or, once the
 * file is gone, 404.  Shared caches (a CDN, which can be purged) may get
 * longer, as s-maxage, where bulletdrop_file_cache_shared_ttl says so.  An
 * expiring file is never kept past its expiry; a file with a view limit
 * never at all, each view being counted.  No "public" (nothing here needs
 * it, and the head must stay small), nor "must-revalidate" or "stale-*":
 * caches serve nothing stale unless cut off from us.
 */

static ngx_int_t
ngx_http_bulletdrop_files_cache(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, ngx_str_t *value)
{
    u_char                          *p;
    time_t                           ttl, shared;
    int64_t                          left;
    ngx_http_bulletdrop_loc_conf_t  *blcf;

    if (f->max_views || (f->limited && f->expires == 0)) {
        ngx_str_set(value, "no-store");
        return NGX_OK;
    }

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulletdrop_module);
    ttl = blcf->file_cache_ttl;
    shared = blcf->file_cache_shared_ttl;

    if (f->expires) {
        left = (f->expires - ngx_http_bulletdrop_now()) / 1000;
        left = ngx_max(left, 0);

        ttl = (time_t) ngx_min((int64_t) ttl, left);

        if (shared != NGX_CONF_UNSET) {
            shared = (time_t) ngx_min((int64_t) shared, left);
        }
    }

    if (ttl == 0 && (shared == NGX_CONF_UNSET || shared == 0)) {
        ngx_str_set(value, "no-cache");
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("max-age=, s-maxage=") - 1
                             + 2 * NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value->data = p;
    p = ngx_sprintf(p, "max-age=%T", ttl);

    if (shared != NGX_CONF_UNSET) {
        p = ngx_sprintf(p, ", s-maxage=%T", shared);
    }

    value->len = p - value->data;

    return NGX_OK;
}


/* the log phase: a view is counted, and a file out of views goes */

static ngx_int_t
ngx_http_bulletdrop_files_log(ngx_http_request_t *r)
{
    ngx_uint_t                   status;
    ngx_table_elt_t             *range;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_file_t  *f;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx == NULL || ctx->file == NULL || r != r->main
        || !ctx->file->decided || ctx->file->gone)
    {
        return NGX_OK;
    }

    f = ctx->file;

    if (f->last) {
        /* served: the file goes now, its row with the next sweep */
        if (ngx_delete_file(f->path.data) == NGX_FILE_ERROR
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


/* what the workers know of files with limits */

void
ngx_http_bulletdrop_files_learn(u_char *id, int64_t expires,
    ngx_uint_t max_views)
{
    if (ngx_http_bulletdrop_files_sh) {
        ngx_http_bulletdrop_known_store(id, expires, max_views, 0, 0);
    }
}


static ngx_int_t
ngx_http_bulletdrop_known_find(u_char *id, ngx_http_bulletdrop_known_t *out)
{
    ngx_int_t                     rc;
    ngx_http_bulletdrop_known_t  *k;

    ngx_shmtx_lock(&ngx_http_bulletdrop_files_shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id,
                                   ngx_crc32_short(id, BD_DELIVER_ID_LEN));
    rc = NGX_DECLINED;

    if (k) {
        ngx_queue_remove(&k->queue);
        ngx_queue_insert_head(&ngx_http_bulletdrop_files_sh->lru, &k->queue);

        *out = *k;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ngx_http_bulletdrop_files_shpool->mutex);

    return rc;
}


/* one of the views leased ahead, if there is one left */

static ngx_int_t
ngx_http_bulletdrop_known_take(u_char *id)
{
    ngx_int_t                     rc;
    ngx_http_bulletdrop_known_t  *k;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ngx_http_bulletdrop_files_shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id,
                                   ngx_crc32_short(id, BD_DELIVER_ID_LEN));

    if (k && k->lease && !k->gone
        && (k->expires == 0 || ngx_http_bulletdrop_now() < k->expires))
    {
        k->lease--;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ngx_http_bulletdrop_files_shpool->mutex);

    return rc;
}


static void
ngx_http_bulletdrop_known_store(u_char *id, int64_t expires,
    ngx_uint_t max_views, ngx_uint_t gone, ngx_uint_t lease)
{
    uint32_t                         hash;
    ngx_uint_t                       i;
    ngx_queue_t                     *qu;
    ngx_http_bulletdrop_known_t     *k, *old;
    ngx_http_bulletdrop_files_sh_t  *sh;

    sh = ngx_http_bulletdrop_files_sh;
    hash = ngx_crc32_short(id, BD_DELIVER_ID_LEN);

    ngx_shmtx_lock(&ngx_http_bulletdrop_files_shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id, hash);

    if (k == NULL) {
        /* the least recently used make room; they are asked for again */
        for (i = 0; i < 3; i++) {
            k = ngx_slab_alloc_locked(ngx_http_bulletdrop_files_shpool,
                                      sizeof(ngx_http_bulletdrop_known_t));
            if (k || ngx_queue_empty(&sh->lru)) {
                break;
            }

            qu = ngx_queue_last(&sh->lru);
            old = ngx_queue_data(qu, ngx_http_bulletdrop_known_t, queue);

            ngx_queue_remove(qu);
            ngx_rbtree_delete(&sh->rbtree, &old->node);
            ngx_slab_free_locked(ngx_http_bulletdrop_files_shpool, old);
        }

        if (k == NULL) {
            ngx_shmtx_unlock(&ngx_http_bulletdrop_files_shpool->mutex);
            return;
        }

        k->node.key = hash;
        k->lease = 0;
        ngx_memcpy(k->id, id, BD_DELIVER_ID_LEN);
        ngx_rbtree_insert(&sh->rbtree, &k->node);

    } else {
        ngx_queue_remove(&k->queue);
    }

    ngx_queue_insert_head(&sh->lru, &k->queue);

    /* views the database has spent may be this server's, leased */
    k->expires = expires;
    k->max_views = max_views ? 1 : 0;
    k->lease += lease;
    k->gone = (gone && k->lease == 0);

    ngx_shmtx_unlock(&ngx_http_bulletdrop_files_shpool->mutex);
}


static ngx_http_bulletdrop_known_t *
ngx_http_bulletdrop_known_lookup(u_char *id, uint32_t hash)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_bulletdrop_known_t  *k;

    node = ngx_http_bulletdrop_files_sh->rbtree.root;
    sentinel = ngx_http_bulletdrop_files_sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        k = (ngx_http_bulletdrop_known_t *) node;

        rc = ngx_memcmp(id, k->id, BD_DELIVER_ID_LEN);

        if (rc == 0) {
            return k;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_bulletdrop_known_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_bulletdrop_known_t   *k, *kt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            k = (ngx_http_bulletdrop_known_t *) node;
            kt = (ngx_http_bulletdrop_known_t *) temp;

            p = (ngx_memcmp(k->id, kt->id, BD_DELIVER_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static int64_t
ngx_http_bulletdrop_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


/*
 * Views of files without a view limit: counted in this worker, sent as
 * one statement a second at most.  The table empties into the statement's
 * parameters, which keep their own copy.
 */

static void
ngx_http_bulletdrop_views_add(u_char *id)
{
    ngx_uint_t                         i, n;
    ngx_http_bulletdrop_views_slot_t  *s;

    i = ngx_crc32_short(id, BD_DELIVER_ID_LEN)
        & (NGX_HTTP_BULLETDROP_VIEWS_SLOTS - 1);

    for (n = 0; n < NGX_HTTP_BULLETDROP_VIEWS_SLOTS; n++) {
        s = &ngx_http_bulletdrop_views[i];

        if (s->n == 0) {
            ngx_memcpy(s->id, id, BD_DELIVER_ID_LEN);
            s->n = 1;
            ngx_http_bulletdrop_views_n++;
            break;
        }

        if (ngx_memcmp(s->id, id, BD_DELIVER_ID_LEN) == 0) {
            s->n++;
            break;
        }

        i = (i + 1) & (NGX_HTTP_BULLETDROP_VIEWS_SLOTS - 1);
    }

    if (ngx_http_bulletdrop_views_n >= NGX_HTTP_BULLETDROP_VIEWS_SLOTS / 2) {
        ngx_http_bulletdrop_views_flush(&ngx_http_bulletdrop_views_event);
        return;
    }

    if (!ngx_http_bulletdrop_views_event.timer_set) {
        ngx_add_timer(&ngx_http_bulletdrop_views_event,
                      NGX_HTTP_BULLETDROP_VIEWS_EVERY);
    }
}


static void
ngx_http_bulletdrop_views_flush(ngx_event_t *ev)
{
    u_char                            *ids, *counts, *pi, *pc;
    ngx_str_t                          a;
    ngx_uint_t                         i;
    ngx_pool_t                        *pool;
    ngx_http_bulletdrop_db_query_t    *q;
    ngx_http_bulletdrop_views_slot_t  *s;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ngx_http_bulletdrop_views_n == 0) {
        return;
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    ids = ngx_pnalloc(pool, ngx_http_bulletdrop_views_n
                            * (BD_DELIVER_ID_LEN + 1) + 2);
    counts = ngx_pnalloc(pool, ngx_http_bulletdrop_views_n
                               * (NGX_INT32_LEN + 1) + 2);

    q = ngx_http_bulletdrop_db_query_create(
            ngx_http_bulletdrop_files_conf->db.pool, pool, ngx_cycle->log,
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
        s = &ngx_http_bulletdrop_views[i];

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

    ngx_http_bulletdrop_views_n = 0;

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


/*
 * The sweep, in the first worker: a page of expired rows, their files
 * removed, then the rows; again at once while pages come full.
 */

static void
ngx_http_bulletdrop_sweep(ngx_event_t *ev)
{
    ngx_pool_t                      *pool;
    ngx_http_bulletdrop_db_query_t  *q;

    pool = ngx_create_pool(4096, ev->log);
    if (pool == NULL) {
        ngx_http_bulletdrop_sweep_later(
                               ngx_http_bulletdrop_files_conf->sweep_interval);
        return;
    }

    q = ngx_http_bulletdrop_db_query_create(
            ngx_http_bulletdrop_files_conf->db.pool, pool, ev->log,
            NGX_HTTP_BULLETDROP_SQL_SWEEP_LIST);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, NGX_HTTP_BULLETDROP_SWEEP_PAGE)
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        ngx_http_bulletdrop_sweep_later(
                               ngx_http_bulletdrop_files_conf->sweep_interval);
        return;
    }

    q->handler = ngx_http_bulletdrop_sweep_listed;
    q->data = pool;

    ngx_http_bulletdrop_db_run(q);
}


static void
ngx_http_bulletdrop_sweep_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                               i, n;
    u_char                           *ids, *p, *path;
    ngx_str_t                         a, *dir;
    ngx_pool_t                       *pool, *listed;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    listed = q->data;
    bmcf = ngx_http_bulletdrop_files_conf;
    dir = &bmcf->upload_dir;

    if (ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                     ngx_cycle->log,
                                     "the sweep cannot list expired files")
        != NGX_OK
        || PQnfields(res) != 3)
    {
        goto later;
    }

    n = PQntuples(res);

    if (n == 0) {
        goto later;
    }

    ids = ngx_pnalloc(listed, n * (BD_DELIVER_ID_LEN + 1) + 2);
    path = ngx_pnalloc(listed, dir->len + sizeof("/documents/")
                             + BD_FILE_ID_LEN + 1 + BD_FILE_EXT_MAX + 1);
    if (ids == NULL || path == NULL) {
        goto later;
    }

    p = ids;
    *p++ = '{';

    for (i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) != BD_DELIVER_ID_LEN
            || PQgetlength(res, i, 2) > BD_FILE_EXT_MAX
            || !(ngx_strcmp(PQgetvalue(res, i, 1), "images") == 0
                 || ngx_strcmp(PQgetvalue(res, i, 1), "documents") == 0
                 || ngx_strcmp(PQgetvalue(res, i, 1), "other") == 0))
        {
            continue;
        }

        (void) ngx_sprintf(path, "%V/%s/%s.%s%Z", dir, PQgetvalue(res, i, 1),
                           PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));

        if (ngx_delete_file(path) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            /* its row stays for the next sweep */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                          "bulletdrop: cannot delete \"%s\"", path);
            continue;
        }

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, PQgetvalue(res, i, 0), BD_DELIVER_ID_LEN);
    }

    *p++ = '}';

    a.data = ids;
    a.len = p - ids;

    /* the statement keeps a copy; the pool goes with this query */
    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        goto later;
    }

    q = ngx_http_bulletdrop_db_query_create(
            bmcf->db.pool, pool, ngx_cycle->log,
            NGX_HTTP_BULLETDROP_SQL_SWEEP_DELETE);

    if (q == NULL || ngx_http_bulletdrop_db_param(q, 0, &a) != NGX_OK) {
        ngx_destroy_pool(pool);
        goto later;
    }

    q->handler = ngx_http_bulletdrop_sweep_done;
    q->data = pool;

    /*
     * A full page: there may be more.  A page whose files could not go
     * waits for the next round (it would come back the same)
     */
    ngx_http_bulletdrop_sweep_more = (n == NGX_HTTP_BULLETDROP_SWEEP_PAGE
                                      && a.len > sizeof("{}") - 1);

    ngx_destroy_pool(listed);

    ngx_http_bulletdrop_db_run(q);
    return;

later:

    ngx_destroy_pool(listed);
    ngx_http_bulletdrop_sweep_later(bmcf->sweep_interval);
}


static void
ngx_http_bulletdrop_sweep_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    if (ngx_http_bulletdrop_db_check(q, res, PGRES_TUPLES_OK,
                                     ngx_cycle->log,
                                     "the sweep cannot delete rows")
        == NGX_OK
        && PQntuples(res) == 1)
    {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "bulletdrop: the sweep removed %s expired uploads",
                      PQgetvalue(res, 0, 0));
    }

    ngx_destroy_pool(q->data);

    ngx_http_bulletdrop_sweep_later(
        ngx_http_bulletdrop_sweep_more
        ? 0 : ngx_http_bulletdrop_files_conf->sweep_interval);
}


static void
ngx_http_bulletdrop_sweep_later(ngx_msec_t delay)
{
    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&ngx_http_bulletdrop_sweep_event, delay ? delay : 1);
    }
}
