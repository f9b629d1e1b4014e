/*
 * BulletDrop: the header filter of file answers: the table's type, never
 * the static module's guess; nosniff, a sandbox, CORS, the disposition
 * that keeps the file's name; and how long it may be cached.
 */

#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_files_filter.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_known.h"


static ngx_int_t ngx_http_bulletdrop_files_cache(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f, ngx_str_t *value);
static ngx_int_t ngx_http_bulletdrop_files_header_filter(
    ngx_http_request_t *r);
static void ngx_http_bulletdrop_files_scrub(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


ngx_int_t
ngx_http_bulletdrop_files_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_bulletdrop_files_header_filter;

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

    /* a store that answered without a status line: nothing of it goes */
    if (r->upstream && r->http_version == NGX_HTTP_VERSION_9) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: the file store answered without a "
                      "status line");
        return NGX_ERROR;
    }

    /*
     * The static module's 200 or 304, the range filter coming after this;
     * or the bucket's, which answers a Range itself
     */
    if (status != NGX_HTTP_OK && status != NGX_HTTP_NOT_MODIFIED
        && !(status == NGX_HTTP_PARTIAL_CONTENT && r->upstream))
    {
        return ngx_http_next_header_filter(r);
    }

    f->headers = 1;

    if (r->upstream) {
        ngx_http_bulletdrop_files_scrub(r);
    }

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

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop files header filter: %ui, \"%s\", "
                   "Cache-Control: %V",
                   status, f->type.content_type, &cache);

    if (ngx_http_bulletdrop_header_out(r, "X-Content-Type-Options",
                                         "nosniff", 7) != NGX_OK
        || ngx_http_bulletdrop_header_out(r, "Content-Security-Policy",
                                            "sandbox", 7) != NGX_OK
        || ngx_http_bulletdrop_header_out(r, "Access-Control-Allow-Origin",
                                            "*", 1) != NGX_OK
        || (f->disposition.len
            && ngx_http_bulletdrop_header_out(r, "Content-Disposition",
                                              (char *) f->disposition.data,
                                              f->disposition.len) != NGX_OK)
        || ngx_http_bulletdrop_header_out(r, "Cache-Control",
                                            (char *) cache.data, cache.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/*
 * A file from the bucket: of the store's headers, the client gets those
 * a file on disk has (validators, ranges) and the object's name, and
 * nothing else: no metadata, lifecycle or CORS of the bucket's
 */

static void
ngx_http_bulletdrop_files_scrub(ngx_http_request_t *r)
{
    ngx_uint_t        i, named;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    named = 0;
    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0) {
            continue;
        }

#define bd_is(name)                                                          \
        (h[i].key.len == sizeof(name) - 1                                    \
         && ngx_strncasecmp(h[i].key.data, (u_char *) name,                  \
                            sizeof(name) - 1) == 0)

        if (bd_is("ETag") || bd_is("Last-Modified") || bd_is("Accept-Ranges")
            || (bd_is("Content-Range")
                && r->headers_out.status == NGX_HTTP_PARTIAL_CONTENT))
        {
            continue;
        }

        if (bd_is("Content-Disposition") && !named) {
            named = 1;
            continue;
        }

#undef bd_is

        h[i].hash = 0;
    }
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


