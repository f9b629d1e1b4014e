/*
 * BulletDrop: files served on the file domains.
 *
 * In the access phase of a "bulletdrop_files on" location: a Host that is
 * an enabled file domain gets files and nothing else ("/" goes to the main
 * site); any other Host gets no files.  The file's name (an xattr) is read
 * with one system call, which also tells a missing file.  A permanent file
 * then goes to nginx's static module at once.  A file with an expiry or a
 * view limit has its id marked (bd_deliver_id_limited()); it is checked
 * against what the workers share of it (known.c), and against the
 * database when they know nothing or when a view must be counted: a view
 * limit is kept by one atomic update per view (views.c).  A request of
 * many ranges gets the whole file.  The header filter makes every answer
 * safe to open (types, nosniff, sandbox) and sets how long it may be
 * cached (files_filter.c); the log phase counts views, sent in batches,
 * and removes a file whose last view was just served (views.c).  One
 * worker sweeps expired files away (sweep.c).
 *
 * This file: the configuration, and the access phase's decision.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_files.h"
#include "ngx_http_bulletdrop_files_filter.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_known.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_s3_serve.h"
#include "ngx_http_bulletdrop_views.h"
#include "bd_file.h"

#include <sys/xattr.h>


#define NGX_HTTP_BULLETDROP_FILES_ZONE      (1024 * 1024)

/*
 * Ranges in one request where the location sets no max_ranges: past them
 * the whole file goes, as past max_ranges.  500 one-byte ranges of a 5 KB
 * file made a 45 KB multipart answer; 16 keep the parts' heads (some 100
 * bytes each) to a small share of an answer, and players and PDF readers
 * ask for one to a few.
 */
#define NGX_HTTP_BULLETDROP_MAX_RANGES      16


static ngx_int_t ngx_http_bulletdrop_files_access(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_elsewhere(ngx_http_request_t *r);
static ngx_uint_t ngx_http_bulletdrop_files_uri(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_start(ngx_http_request_t *r,
    bd_deliver_path_t *dp);
static void ngx_http_bulletdrop_files_ranges(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, bd_deliver_path_t *dp);
static ngx_int_t ngx_http_bulletdrop_files_home(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_files_preflight(ngx_http_request_t *r);


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

    return ngx_http_bulletdrop_files_filter_init(cf);
}


ngx_int_t
ngx_http_bulletdrop_files_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    if (bmcf->files_zone == NULL) {
        return NGX_OK;
    }

    if (ngx_http_bulletdrop_known_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_views_init_process(cycle, bmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

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

    /*
     * error_page's redirect to the JSON error page (s3-files.conf) is not
     * a request for a file: the file's checks ran on the way in
     */
    if (!blcf->files || r != r->main || r->err_status) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx && ctx->file) {
        /* again, once the database has answered */
        f = ctx->file;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop files: access again, waiting:%ui "
                       "gone:%ui counted:%ui",
                       (ngx_uint_t) f->waiting, (ngx_uint_t) f->gone,
                       (ngx_uint_t) f->counted);

        if (f->waiting) {
            return NGX_AGAIN;
        }

        if (f->gone) {
            return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                    "there is no such file");
        }

        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop files: access \"%V\" on \"%V\"",
                   &r->uri, &r->headers_in.server);

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
        if (ngx_http_bulletdrop_header_out(r, "Allow", "GET, HEAD, OPTIONS",
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
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_file_t       *f;
    ngx_http_bulletdrop_known_t       known;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

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

    f->key.data = r->uri.data + sizeof("/static/") - 1;
    f->key.len = r->uri.len - (sizeof("/static/") - 1);

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    /*
     * In a bucket, whether the object is there is the store's to say,
     * and its name is in the object's Content-Disposition
     */
    switch (bmcf->s3 ? NGX_OK : ngx_http_bulletdrop_files_name(r, f, dp)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                "there is no such file");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!bd_deliver_id_limited(dp->id)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop files: no limits: to the static module");

        f->decided = 1;

        if (bmcf->s3 && bmcf->s3->serve == NGX_HTTP_BULLETDROP_S3_REDIRECT) {
            return ngx_http_bulletdrop_s3_redirect(r, f);
        }

        return NGX_DECLINED;
    }

    f->limited = 1;

    if (ngx_http_bulletdrop_known_find(f->id, &known) == NGX_OK) {
        f->expires = known.expires;
        f->max_views = known.max_views;

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop files: known: expires %L, max_views:%ui "
                       "gone:%ui lease %ui",
                       known.expires, (ngx_uint_t) known.max_views,
                       (ngx_uint_t) known.gone, known.lease);

        if (known.gone
            || (known.expires && ngx_http_bulletdrop_now() >= known.expires))
        {
            f->gone = 1;
            return ngx_http_bulletdrop_files_refuse(r, BD_ERR_NOT_FOUND,
                                                    "there is no such file");
        }

        /* an expiry alone needs no query: its time is known */
        if (!known.max_views) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "bulletdrop files: expiry known: to the static "
                           "module");

            f->decided = 1;
            return NGX_DECLINED;
        }

        /* nor a view the database gave this server ahead */
        if (r->method == NGX_HTTP_GET
            && ngx_http_bulletdrop_known_take(f->id) == NGX_OK)
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "bulletdrop files: a view leased ahead taken: "
                           "to the static module");

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
 * An answer from the access phase, in JSON: the request is finalized here
 * and the phases stop.
 */

ngx_int_t
ngx_http_bulletdrop_files_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_err_e err, const char *detail)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop files: refused: %s (%s)",
                   ngx_http_bulletdrop_errors[err].code,
                   detail ? detail : "");

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

    if (ngx_http_bulletdrop_header_out(r, "Access-Control-Allow-Origin",
                                         "*", 1) != NGX_OK
        || ngx_http_bulletdrop_header_out(r,
               "Access-Control-Allow-Methods", "GET, HEAD", 9) != NGX_OK
        || ngx_http_bulletdrop_header_out(r,
               "Access-Control-Allow-Headers", "Range", 5) != NGX_OK
        || ngx_http_bulletdrop_header_out(r, "Access-Control-Max-Age",
                                            "86400", 5) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a body that cannot be read past is answered as every route does */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        ngx_http_clean_header(r);
        r->keepalive = 0;
        return ngx_http_bulletdrop_files_refuse(r,
                   rc == NGX_HTTP_BAD_REQUEST ? BD_ERR_BAD_REQUEST
                                              : BD_ERR_INTERNAL, NULL);
    }

    ngx_http_finalize_request(r, ngx_http_bulletdrop_no_content(r));

    return NGX_DONE;
}
