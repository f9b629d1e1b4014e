/*
 * BulletDrop: files read from the bucket (bulletdrop_storage s3).  The
 * file domains' checks run in the access phase as for files on disk;
 * then nginx's proxy module reads the object, with a GET this module
 * signs through variables:
 *
 *     proxy_pass http://<upstream>$bulletdrop_s3_uri;
 *     proxy_set_header Host $bulletdrop_s3_host;
 *     proxy_set_header X-Amz-Date $bulletdrop_s3_date;
 *     proxy_set_header X-Amz-Content-SHA256 $bulletdrop_s3_content_sha256;
 *     proxy_set_header Authorization $bulletdrop_s3_authorization;
 *
 * (nginx-conf/s3-files.conf).  Range and the validators are not signed,
 * so they pass as they came.  The signature is for GET whatever the
 * client's method: proxy_cache turns a HEAD into a GET, and a HEAD's
 * answer has no body for the client either way.
 */

#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_s3_serve.h"
#include "bd_sigv4.h"


typedef enum {
    bd_s3_var_uri = 0,
    bd_s3_var_host,
    bd_s3_var_date,
    bd_s3_var_sha,
    bd_s3_var_authorization
} ngx_http_bulletdrop_s3_var_e;


/* the client's headers the store answers itself, or the cache's */
typedef enum {
    bd_s3_pass_range = 0,
    bd_s3_pass_if_none_match,
    bd_s3_pass_if_modified_since
} ngx_http_bulletdrop_s3_pass_e;


/* a file's signed GET, made once for its variables */
struct ngx_http_bulletdrop_s3_get_s {
    ngx_str_t                           uri;
    u_char                              date[BD_SIGV4_DATE_LEN + 1];
    ngx_str_t                           authorization;
};


static ngx_int_t ngx_http_bulletdrop_s3_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_bulletdrop_s3_pass_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_uint_t ngx_http_bulletdrop_s3_one_range(ngx_str_t *value);
static ngx_http_bulletdrop_s3_get_t *ngx_http_bulletdrop_s3_sign(
    ngx_http_request_t *r, ngx_http_bulletdrop_file_t *f);


static ngx_http_variable_t  ngx_http_bulletdrop_s3_vars[] = {

    { ngx_string("bulletdrop_s3_uri"), NULL,
      ngx_http_bulletdrop_s3_variable, bd_s3_var_uri, 0, 0 },

    { ngx_string("bulletdrop_s3_host"), NULL,
      ngx_http_bulletdrop_s3_variable, bd_s3_var_host, 0, 0 },

    { ngx_string("bulletdrop_s3_date"), NULL,
      ngx_http_bulletdrop_s3_variable, bd_s3_var_date, 0, 0 },

    { ngx_string("bulletdrop_s3_content_sha256"), NULL,
      ngx_http_bulletdrop_s3_variable, bd_s3_var_sha, 0, 0 },

    { ngx_string("bulletdrop_s3_authorization"), NULL,
      ngx_http_bulletdrop_s3_variable, bd_s3_var_authorization, 0, 0 },

    { ngx_string("bulletdrop_s3_range"), NULL,
      ngx_http_bulletdrop_s3_pass_variable, bd_s3_pass_range,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulletdrop_s3_if_none_match"), NULL,
      ngx_http_bulletdrop_s3_pass_variable, bd_s3_pass_if_none_match,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulletdrop_s3_if_modified_since"), NULL,
      ngx_http_bulletdrop_s3_pass_variable, bd_s3_pass_if_modified_since,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


#if (NGX_HTTP_CACHE)
/* $upstream_cache_etag and $upstream_cache_last_modified */
static ngx_int_t  ngx_http_bulletdrop_s3_cache_etag = NGX_ERROR;
static ngx_int_t  ngx_http_bulletdrop_s3_cache_modified = NGX_ERROR;
#endif


ngx_int_t
ngx_http_bulletdrop_s3_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;
#if (NGX_HTTP_CACHE)
    ngx_str_t             etag = ngx_string("upstream_cache_etag");
    ngx_str_t             modified = ngx_string("upstream_cache_last_modified");

    ngx_http_bulletdrop_s3_cache_etag = ngx_http_get_variable_index(cf,
                                                                    &etag);
    ngx_http_bulletdrop_s3_cache_modified = ngx_http_get_variable_index(cf,
                                                                  &modified);

    if (ngx_http_bulletdrop_s3_cache_etag == NGX_ERROR
        || ngx_http_bulletdrop_s3_cache_modified == NGX_ERROR)
    {
        return NGX_ERROR;
    }
#endif

    for (v = ngx_http_bulletdrop_s3_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * Not found where there is nothing to sign: not a file of a file domain
 * that passed its checks, or no bucket
 */

static ngx_int_t
ngx_http_bulletdrop_s3_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_file_t       *f;
    ngx_http_bulletdrop_s3_get_t     *get;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    ctx = ngx_http_get_module_ctx(r->main, ngx_http_bulletdrop_module);

    if (bmcf->s3 == NULL || ctx == NULL || ctx->file == NULL
        || !ctx->file->decided || ctx->file->gone)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    f = ctx->file;

    if (data == bd_s3_var_host) {
        v->data = bmcf->s3->host.data;
        v->len = bmcf->s3->host.len;

    } else if (data == bd_s3_var_sha) {
        v->data = (u_char *) NGX_HTTP_BULLETDROP_S3_EMPTY_SHA;
        v->len = sizeof(NGX_HTTP_BULLETDROP_S3_EMPTY_SHA) - 1;

    } else {
        get = f->s3 ? f->s3 : ngx_http_bulletdrop_s3_sign(r, f);
        if (get == NULL) {
            return NGX_ERROR;
        }

        switch (data) {

        case bd_s3_var_uri:
            v->data = get->uri.data;
            v->len = get->uri.len;
            break;

        case bd_s3_var_date:
            v->data = get->date;
            v->len = BD_SIGV4_DATE_LEN;
            break;

        default: /* bd_s3_var_authorization */
            v->data = get->authorization.data;
            v->len = get->authorization.len;
        }
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Range, If-None-Match and If-Modified-Since for the store: the client's,
 * which the store answers itself (206, 304); but a Range of several
 * ranges, or with an If-Range, is nginx's to cut from the whole file
 * (proxy_force_ranges), as it does from a file on disk.  With the node's
 * proxy_cache: whole answers for the cache, and its own revalidation
 * ($upstream_cache_etag and _last_modified).
 */

static ngx_int_t
ngx_http_bulletdrop_s3_pass_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *cached;

#if (NGX_HTTP_CACHE)

    if (r->cache) {
        switch (data) {

        case bd_s3_pass_if_none_match:
            cached = ngx_http_get_indexed_variable(r,
                                           ngx_http_bulletdrop_s3_cache_etag);
            break;

        case bd_s3_pass_if_modified_since:
            cached = ngx_http_get_indexed_variable(r,
                                       ngx_http_bulletdrop_s3_cache_modified);
            break;

        default:
            cached = NULL;
        }

        if (cached == NULL || cached->not_found || !cached->valid) {
            v->not_found = 1;
            return NGX_OK;
        }

        *v = *cached;
        return NGX_OK;
    }

#endif

    switch (data) {

    case bd_s3_pass_range:
        h = r->headers_in.range;

        if (h && (r->headers_in.if_range
                  || !ngx_http_bulletdrop_s3_one_range(&h->value)))
        {
            h = NULL;
        }

        break;

    case bd_s3_pass_if_none_match:
        h = r->headers_in.if_none_match;
        break;

    default: /* bd_s3_pass_if_modified_since */
        h = r->headers_in.if_modified_since;
    }

    (void) cached;

    if (h == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = h->value.data;
    v->len = h->value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * "bytes=FIRST-[LAST]" with FIRST <= LAST, or "bytes=-SUFFIX": what S3
 * answers as nginx would; anything else is nginx's to judge
 */

static ngx_uint_t
ngx_http_bulletdrop_s3_one_range(ngx_str_t *value)
{
    u_char  *p, *last;
    off_t    first, end;

    p = value->data;
    last = p + value->len;

    if (value->len < sizeof("bytes=0-") - 1
        || ngx_strncasecmp(p, (u_char *) "bytes=", 6) != 0)
    {
        return 0;
    }

    p += 6;
    first = -1;

    if (*p != '-') {
        for (first = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (first >= NGX_MAX_OFF_T_VALUE / 10) {
                return 0;
            }

            first = first * 10 + (*p - '0');
        }
    }

    if (p == last || *p++ != '-') {
        return 0;
    }

    if (p == last) {
        return first >= 0;
    }

    for (end = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        if (end >= NGX_MAX_OFF_T_VALUE / 10) {
            return 0;
        }

        end = end * 10 + (*p - '0');
    }

    return p == last && (first < 0 ? end > 0 : first <= end);
}


static ngx_http_bulletdrop_s3_get_t *
ngx_http_bulletdrop_s3_sign(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f)
{
    u_char                           *p;
    ssize_t                           n;
    bd_sigv4_request_t                sr;
    ngx_http_bulletdrop_s3_conf_t    *s3;
    ngx_http_bulletdrop_s3_get_t     *get;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    char                              auth[512];

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    s3 = bmcf->s3;

    get = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_s3_get_t));
    if (get == NULL) {
        return NULL;
    }

    /*
     * "/static/<category>/<id>.<ext>", checked by bd_deliver_path(): the
     * key is what follows "/static/", and needs no encoding
     */
    get->uri.data = ngx_pnalloc(r->pool, s3->root.len + f->key.len + 2);
    if (get->uri.data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(get->uri.data, s3->root.data, s3->root.len);
    *p++ = '/';
    p = ngx_cpymem(p, f->key.data, f->key.len);
    get->uri.len = p - get->uri.data;
    *p = '\0';

    ngx_memzero(&sr, sizeof(bd_sigv4_request_t));
    sr.method = "GET";
    sr.host = (char *) s3->host.data;
    sr.path = (char *) get->uri.data;
    sr.query = "";
    sr.payload_hash = NGX_HTTP_BULLETDROP_S3_EMPTY_SHA;
    sr.region = (char *) s3->region.data;
    sr.service = "s3";
    sr.access_key = (char *) s3->access_key.data;
    sr.secret = (char *) s3->secret.data;
    sr.now = ngx_time();

    n = bd_sigv4_sign(&sr, (char *) get->date, auth, sizeof(auth));
    if (n < 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: cannot sign a request to the file store");
        return NULL;
    }

    get->authorization.data = ngx_pnalloc(r->pool, n);
    if (get->authorization.data == NULL) {
        return NULL;
    }

    ngx_memcpy(get->authorization.data, auth, n);
    get->authorization.len = n;

    ngx_explicit_memzero(auth, sizeof(auth));

    f->s3 = get;

    return get;
}


/*
 * serve=redirect: a permanent file is at <public_url>/<key>, a CDN in
 * front of the bucket; the redirect is cached as long as the file
 */

ngx_int_t
ngx_http_bulletdrop_s3_redirect(ngx_http_request_t *r,
    ngx_http_bulletdrop_file_t *f)
{
    u_char                           *p;
    size_t                            len;
    time_t                            ttl;
    ngx_table_elt_t                  *h;
    ngx_http_bulletdrop_loc_conf_t   *blcf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulletdrop_module);

    len = bmcf->s3->public_url.len + 1 + f->key.len;

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, len);

    if (h == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;
    p = ngx_cpymem(p, bmcf->s3->public_url.data, bmcf->s3->public_url.len);
    *p++ = '/';
    p = ngx_cpymem(p, f->key.data, f->key.len);
    h->value.len = p - h->value.data;

    r->headers_out.location = h;

    ttl = blcf->file_cache_ttl;

    p = ngx_pnalloc(r->pool, sizeof("max-age=") + NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_sprintf(p, "max-age=%T", ttl) - p;

    if (ngx_http_bulletdrop_header_out(r, "Cache-Control", (char *) p, len)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* ours, not the store's: s3-files.conf's error_page of 3xx is not */
    r->error_page = 1;

    return NGX_HTTP_MOVED_TEMPORARILY;
}
