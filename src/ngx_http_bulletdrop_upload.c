/*
 * BulletDrop: uploads.
 *
 * An upload is refused as early as its headers allow (who, how big, what
 * name), then its body streams through nginx's unbuffered reader: a
 * multipart body through bd_multipart, a raw one as it is, into a temp
 * file in <upload_dir>/.tmp, hashed (SHA-256) and checked (size, quota,
 * magic bytes) as it passes (upload_body.c).  At the end the file is
 * fsynced on the thread pool when asked, linked (or renamed) to
 * <category>/<id>.<ext> (upload_sync.c), and its row inserted with the
 * owner's usage in one statement; only then does the client hear 201
 * (upload_commit.c).  A pool cleanup removes the temp file, or the placed
 * file whose row was not written, on every other way out: a refusal, an
 * abort, a database that went away.
 *
 * The temp file has no name where the system allows (O_TMPFILE): a worker
 * that dies mid-upload leaves nothing behind, and the file appears in one
 * directory operation, linkat(), instead of a create and a rename between
 * directories.
 *
 * This file: the route, its headers and options, the refusals that need
 * no body, the temp file opened and dropped, and the configuration.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_upload_int.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_upload.h"
#include "ngx_http_bulletdrop_s3.h"
#include "bd_deliver.h"
#include "bd_text.h"

#include <sys/file.h>
#include <openssl/rand.h>


/* a C library older than the kernel (the value of x86 and arm) */
#ifndef O_TMPFILE
#define O_TMPFILE                             (020000000 | O_DIRECTORY)
#endif


/* what a worker keeps of uploads (bmcf->upload) */
struct ngx_http_bulletdrop_upload_worker_s {
    /* this worker makes unnamed temp files: asked for, and seen to work */
    ngx_uint_t                          unnamed;
};


static ngx_int_t ngx_http_bulletdrop_upload_start(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t sharex);
static ngx_int_t ngx_http_bulletdrop_upload_options(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_upload_t *up);
static ngx_uint_t ngx_http_bulletdrop_upload_form(ngx_str_t *type);
static ngx_int_t ngx_http_bulletdrop_upload_open(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up);
static void ngx_http_bulletdrop_upload_cleanup(void *data);


/* what a browser runs or renders as a page */
static const char  *ngx_http_bulletdrop_active[] = {
    "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl", "js",
    "mjs", "mht", "mhtml", NULL
};


/* POST /api/uploads, POST /api/uploads/sharex */

ngx_int_t
ngx_http_bulletdrop_upload(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_upload_start(r, ctx, 0);
}


ngx_int_t
ngx_http_bulletdrop_upload_sharex(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_upload_start(r, ctx, 1);
}


off_t
ngx_http_bulletdrop_upload_size(ngx_http_bulletdrop_ctx_t *ctx)
{
    return ctx->upload ? ctx->upload->size : 0;
}


static ngx_int_t
ngx_http_bulletdrop_upload_start(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t sharex)
{
    off_t                             cl, slack, left;
    size_t                            blen;
    u_char                           *dst, *src;
    ngx_str_t                         name, arg;
    ngx_table_elt_t                  *h;
    ngx_http_bulletdrop_upload_t     *up;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    char                              boundary[BD_MULTIPART_BOUNDARY_MAX + 1];

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: start, sharex:%ui, user #%L, "
                   "length %O", sharex, ctx->user.id,
                   r->headers_in.content_length_n);

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    up = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_upload_t));
    if (up == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the links are made of it: a Host that cannot be one is refused now */
    if (ngx_http_bulletdrop_base_url(r, &up->base) != NGX_OK) {
        return ngx_http_bulletdrop_bad_host(r, ctx);
    }

    up->request = r;
    up->fd = NGX_INVALID_FILE;
    up->sharex = sharex;
    ctx->upload = up;

    /* what the quota leaves; a quota already used up needs no body */
    up->limit = bmcf->max_file_size;

    if (ctx->user.quota_bytes >= 0) {
        left = ctx->user.quota_bytes - ctx->user.usage_bytes;

        if (left <= 0) {
            return ngx_http_bulletdrop_error_record(ctx, BD_ERR_QUOTA_EXCEEDED,
                                                    "your storage quota is "
                                                    "used up");
        }

        if (left < up->limit) {
            up->limit = left;
            up->quota_limits = 1;
        }
    }

    if (r->headers_in.content_type
        && ngx_strncasecmp(r->headers_in.content_type->value.data,
                           (u_char *) "multipart/", 10) == 0)
    {
        if (!ngx_http_bulletdrop_upload_form(
                                        &r->headers_in.content_type->value))
        {
            return ngx_http_bulletdrop_error_record(ctx,
                       BD_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "send multipart/form-data, or the file itself named "
                       "by X-Filename");
        }

        if (bd_multipart_boundary(
                (char *) r->headers_in.content_type->value.data,
                r->headers_in.content_type->value.len, boundary, &blen)
            != 0)
        {
            return
                ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_MULTIPART,
                                                 "a multipart/form-data body "
                                                 "needs a valid boundary");
        }

        up->multipart = 1;

        up->mp = ngx_palloc(r->pool, sizeof(bd_multipart_t));
        if (up->mp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bd_multipart_init(up->mp, boundary, blen,
                          &ngx_http_bulletdrop_multipart_callbacks, r);

    } else {
        /* a raw body: its name from X-Filename, or ?filename= */
        ngx_str_null(&name);

        h = ngx_http_bulletdrop_header_in(r, "X-Filename",
                                          sizeof("X-Filename") - 1);
        if (h) {
            name = h->value;
        }

        if (name.len == 0
            && ngx_http_arg(r, (u_char *) "filename", 8, &arg) == NGX_OK)
        {
            name.data = ngx_pnalloc(r->pool, arg.len);
            if (name.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            dst = name.data;
            src = arg.data;
            ngx_unescape_uri(&dst, &src, arg.len, 0);
            name.len = dst - name.data;
        }

        if (name.len == 0) {
            return
                ngx_http_bulletdrop_error_record(ctx, BD_ERR_MISSING_FILENAME,
                                                 NULL);
        }

        if (ngx_http_bulletdrop_upload_name(r, up, name.data, name.len)
            != NGX_OK)
        {
            return ngx_http_bulletdrop_error_record(ctx,
                       BD_ERR_EXTENSION_NOT_ALLOWED, NULL);
        }
    }

    if (ngx_http_bulletdrop_upload_options(r, ctx, up) != NGX_OK) {
        /* NGX_DECLINED answers the error recorded */
        return ctx->error ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the declared length says enough to refuse before reading */
    cl = r->headers_in.content_length_n;
    slack = up->multipart ? NGX_HTTP_BULLETDROP_MULTIPART_SLACK : 0;

    if (cl == 0 || (cl < 0 && !r->headers_in.chunked)) {
        return ngx_http_bulletdrop_error_record(ctx,
                   up->multipart ? BD_ERR_NO_FILE : BD_ERR_EMPTY_FILE,
                   "the request has no body");
    }

    if (cl > up->limit + slack) {
        ngx_http_bulletdrop_too_large(ctx, up);
        return NGX_DECLINED;
    }

    if (ngx_http_bulletdrop_upload_open(r, up) != NGX_OK) {
        return ngx_http_bulletdrop_answer(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: streaming, multipart:%ui, "
                   "limit %O, unnamed:%ui",
                   (ngx_uint_t) up->multipart, up->limit,
                   (ngx_uint_t) up->unnamed);

    r->connection->log->action = "streaming an upload";

    return ngx_http_bulletdrop_body_stream(r, ctx,
                                           ngx_http_bulletdrop_upload_chunk,
                                           ngx_http_bulletdrop_upload_end);
}


/*
 * X-BulletDrop-Domain, -Expires and -Max-Views, or the defaults: the
 * user's domain while it is enabled, else the first enabled one.
 * NGX_DECLINED with a refusal recorded in ctx.
 */

static ngx_int_t
ngx_http_bulletdrop_upload_options(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_upload_t *up)
{
    int                               rc;
    size_t                            len;
    int64_t                           now;
    ngx_time_t                       *tp;
    ngx_str_t                        *dflt;
    ngx_table_elt_t                  *h;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    u_char                            name[253];

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    h = ngx_http_bulletdrop_header_in(r, "X-BulletDrop-Domain",
                                      sizeof("X-BulletDrop-Domain") - 1);
    dflt = &ctx->user.default_domain;

    if (h) {
        switch (ngx_http_bulletdrop_domain_enabled(h->value.data,
                                                   h->value.len))
        {
        case NGX_OK:
            up->domain.len = h->value.len;
            up->domain.data = ngx_pnalloc(r->pool, h->value.len);
            if (up->domain.data == NULL) {
                return NGX_ERROR;
            }

            ngx_strlow(up->domain.data, h->value.data, h->value.len);
            break;

        case NGX_AGAIN:
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAVAILABLE,
                                             "the file domains are not "
                                             "loaded yet: try again");
            return NGX_DECLINED;

        default:
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_DOMAIN,
                                             "X-BulletDrop-Domain is not one "
                                             "of this server's enabled "
                                             "domains (GET /api/domains)");
            return NGX_DECLINED;
        }

    } else if (dflt->data
               && ngx_http_bulletdrop_domain_enabled(dflt->data, dflt->len)
                  == NGX_OK)
    {
        up->domain = *dflt;

    } else if (ngx_http_bulletdrop_domain_default(name, &len) == NGX_OK) {
        up->domain.data = ngx_pnalloc(r->pool, len);
        if (up->domain.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(up->domain.data, name, len);
        up->domain.len = len;
    }

    /* else none, or none loaded yet: the commit picks it in the database */

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;

    h = ngx_http_bulletdrop_header_in(r, "X-BulletDrop-Expires",
                                      sizeof("X-BulletDrop-Expires") - 1);
    if (h) {
        rc = bd_expiry_parse((char *) h->value.data, h->value.len, now,
                             &up->expires);

        if (rc < 0) {
            return ngx_http_bulletdrop_error_record(ctx,
                       BD_ERR_INVALID_EXPIRY,
                       rc == BD_EXPIRY_PAST
                       ? "X-BulletDrop-Expires is in the past"
                       : rc == BD_EXPIRY_TOO_FAR
                       ? "X-BulletDrop-Expires is more than ten years away"
                       : "X-BulletDrop-Expires takes 30s, 10m, 1h, 7d, 2w, "
                         "an RFC 3339 time or never");
        }

    } else if (bmcf->default_expiry) {
        up->expires = now + (int64_t) bmcf->default_expiry * 1000;
    }

    h = ngx_http_bulletdrop_header_in(r, "X-BulletDrop-Max-Views",
                                      sizeof("X-BulletDrop-Max-Views") - 1);
    if (h && bd_max_views_parse((char *) h->value.data, h->value.len,
                                &up->max_views)
             != 0)
    {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_MAX_VIEWS, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;
}

/* multipart/form-data, parameters aside: the only multipart taken */

static ngx_uint_t
ngx_http_bulletdrop_upload_form(ngx_str_t *type)
{
    size_t  n;

    n = sizeof("multipart/form-data") - 1;

    return type->len >= n
           && ngx_strncasecmp(type->data, (u_char *) "multipart/form-data", n)
              == 0
           && (type->len == n || type->data[n] == ';' || type->data[n] == ' '
               || type->data[n] == '\t');
}



/* NGX_DECLINED when the name's extension is not taken here */

ngx_int_t
ngx_http_bulletdrop_upload_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, u_char *name, size_t len)
{
    size_t                            elen;
    ngx_str_t                        *ext;
    ngx_uint_t                        i;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    elen = bd_file_ext((char *) name, len, up->ext);
    if (elen == 0) {
        return NGX_DECLINED;
    }

    ext = bmcf->extensions->elts;

    for (i = 0; i < bmcf->extensions->nelts; i++) {
        if (ext[i].len == elen
            && ngx_strncmp(ext[i].data, up->ext, elen) == 0)
        {
            break;
        }
    }

    if (i == bmcf->extensions->nelts) {
        return NGX_DECLINED;
    }

    up->category = bd_file_category(up->ext);
    up->name_len = bd_file_display_name((char *) name, len, up->name);

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulletdrop_upload_open(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
    u_char                            rnd[12];
    char                              hex[2 * sizeof(rnd) + 1];

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_upload_cleanup;
    cln->data = up;

    up->sha = EVP_MD_CTX_new();
    if (up->sha == NULL
        || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL) != 1
        || RAND_bytes(rnd, sizeof(rnd)) != 1)
    {
        return NGX_ERROR;
    }

    if (bmcf->upload->unnamed) {
        up->tmp.len = bmcf->upload_dir.len + sizeof("/.tmp") - 1;
        up->tmp.data = ngx_pnalloc(r->pool, up->tmp.len + 1);
        if (up->tmp.data == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_sprintf(up->tmp.data, "%V/.tmp%Z", &bmcf->upload_dir);

        /* read too: a bucket's upload is sent from it (upload_store.c) */
        up->fd = open((char *) up->tmp.data, O_TMPFILE|O_RDWR|O_CLOEXEC,
                      0644);

        if (up->fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          "bulletdrop: cannot create a file in \"%s\"",
                          up->tmp.data);
            ngx_str_null(&up->tmp);
            return NGX_ERROR;
        }

        up->unnamed = 1;

        return NGX_OK;
    }

    bd_hex_encode(rnd, sizeof(rnd), hex);

    up->tmp.len = bmcf->upload_dir.len + sizeof("/.tmp/") - 1
                  + sizeof(hex) - 1 + sizeof(".part") - 1;
    up->tmp.data = ngx_pnalloc(r->pool, up->tmp.len + 1);
    if (up->tmp.data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(up->tmp.data, "%V/.tmp/%s.part%Z",
                       &bmcf->upload_dir, hex);

    up->fd = open((char *) up->tmp.data,
                  O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0644);

    if (up->fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "bulletdrop: cannot create \"%s\"", up->tmp.data);
        ngx_str_null(&up->tmp);
        return NGX_ERROR;
    }

    /*
     * Held while the file is written: the sweep takes only temp files
     * nobody holds, and a worker that dies lets go of its own
     */
    if (flock(up->fd, LOCK_EX|LOCK_NB) == -1) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "bulletdrop: cannot lock \"%s\"", up->tmp.data);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* every way out but success: nothing half-written stays */

static void
ngx_http_bulletdrop_upload_cleanup(void *data)
{
    ngx_http_bulletdrop_upload_t  *up = data;

    ngx_http_bulletdrop_upload_drop(up);

    if (up->sha) {
        EVP_MD_CTX_free(up->sha);
        up->sha = NULL;
    }
}


/*
 * Removes what the upload wrote, at once: a refused request may linger
 * (its connection closes slowly, or stays open), and its file must not.
 */

void
ngx_http_bulletdrop_upload_drop(ngx_http_bulletdrop_upload_t *up)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    if (up->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(up->fd);
        up->fd = NGX_INVALID_FILE;
    }

    if (up->committed) {
        return;
    }

    if (up->inserting && up->commit.sent) {
        /*
         * the row may have been written: a file without a row is the
         * lesser harm, and make fsck lists it
         */
        ngx_log_error(NGX_LOG_CRIT, up->request->connection->log, 0,
                      "bulletdrop: \"%s\" kept: its row may or may not "
                      "have been written", up->path.data);
        up->committed = 1;
        return;
    }

    if (up->placed) {
        bmcf = ngx_http_get_module_main_conf(up->request,
                                             ngx_http_bulletdrop_module);

        if (bmcf->s3) {
            /* its failure is logged, and make fsck lists the object */
            (void) ngx_http_bulletdrop_s3_remove(bmcf->s3,
                                          up->request->connection->log,
                                          &up->path, NULL, NULL);
        } else {
            (void) ngx_delete_file(up->path.data);
        }

        up->placed = 0;

    } else if (up->tmp.len && !up->unnamed) {
        (void) ngx_delete_file(up->tmp.data);
    }

    ngx_str_null(&up->tmp);
}


void
ngx_http_bulletdrop_too_large(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_upload_t *up)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, up->request->connection->log, 0,
                   "bulletdrop upload: refused: too large, quota:%ui, "
                   "limit %O", (ngx_uint_t) up->quota_limits, up->limit);

    if (up->quota_limits) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_QUOTA_EXCEEDED, NULL);
    } else {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_FILE_TOO_LARGE, NULL);
    }
}


/* the file goes at once, and err is recorded */

ngx_int_t
ngx_http_bulletdrop_upload_abort(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_err_e err, const char *detail)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP,
                   ctx->upload->request->connection->log, 0,
                   "bulletdrop upload: refused at the end: %s",
                   ngx_http_bulletdrop_errors[err].code);

    ngx_http_bulletdrop_upload_drop(ctx->upload);

    return ngx_http_bulletdrop_error_record(ctx, err, detail);
}


ngx_int_t
ngx_http_bulletdrop_upload_fail(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, ngx_int_t status)
{
    ngx_http_bulletdrop_upload_drop(up);

    return ngx_http_bulletdrop_answer(r, status);
}


/* configuration */

char *
ngx_http_bulletdrop_extensions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    ngx_str_t   *value, *ext;
    ngx_uint_t   i, j;

    if (bmcf->extensions != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    bmcf->extensions = ngx_array_create(cf->pool, cf->args->nelts,
                                        sizeof(ngx_str_t));
    if (bmcf->extensions == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        ext = ngx_array_push(bmcf->extensions);
        if (ext == NULL) {
            return NGX_CONF_ERROR;
        }

        *ext = value[i];

        if (ext->len && ext->data[0] == '.') {
            ext->data++;
            ext->len--;
        }

        ngx_strlow(ext->data, ext->data, ext->len);

        for (j = 0; j < ext->len; j++) {
            if (!((ext->data[j] >= 'a' && ext->data[j] <= 'z')
                  || (ext->data[j] >= '0' && ext->data[j] <= '9')))
            {
                break;
            }
        }

        if (ext->len == 0 || ext->len > BD_FILE_EXT_MAX || j < ext->len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid extension \"%V\" in "
                               "\"bulletdrop_allowed_extensions\": 1 to 16 "
                               "of a-z and 0-9, after an optional dot",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        /*
         * Until the file domains serve them as text, nginx would serve
         * these with their own types from the API's origin: a browser
         * would run them there
         */
        for (j = 0; ngx_http_bulletdrop_active[j]; j++) {
            if (ngx_strcmp(ext->data, ngx_http_bulletdrop_active[j]) == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"bulletdrop_allowed_extensions\": "
                                   "\"%V\" is content a browser would run",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    return NGX_CONF_OK;
}


/*
 * Defaults, and the directories, which nginx creates at start and gives to
 * the worker processes' user, like its own temp paths.
 */

char *
ngx_http_bulletdrop_upload_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_str_t          *ext;
    ngx_uint_t          i;
    ngx_path_t         *path;
    static const char  *defaults[] = {
        "jpg", "jpeg", "png", "gif", "webp", "pdf", "txt", "md", "mp4",
        "webm", NULL
    };
    static const char  *subdirs[] = {
        "", "/.tmp", "/images", "/documents", "/other", NULL
    };

    if (bmcf->max_file_size == NGX_CONF_UNSET) {
        bmcf->max_file_size = 50 * 1024 * 1024;
    }

    ngx_conf_init_value(bmcf->fsync, 1);
    ngx_conf_init_value(bmcf->unnamed_temp_files, 1);

    if (bmcf->extensions == NGX_CONF_UNSET_PTR) {
        bmcf->extensions = ngx_array_create(cf->pool, 10, sizeof(ngx_str_t));
        if (bmcf->extensions == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; defaults[i]; i++) {
            ext = ngx_array_push(bmcf->extensions);
            if (ext == NULL) {
                return NGX_CONF_ERROR;
            }

            ext->data = (u_char *) defaults[i];
            ext->len = ngx_strlen(defaults[i]);
        }
    }

    if (bmcf->upload_dir.data == NULL) {
        return NGX_CONF_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &bmcf->upload_dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (bmcf->upload_dir.len > 1
           && bmcf->upload_dir.data[bmcf->upload_dir.len - 1] == '/')
    {
        bmcf->upload_dir.len--;
    }

    for (i = 0; subdirs[i]; i++) {
        path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
        if (path == NULL) {
            return NGX_CONF_ERROR;
        }

        path->name.len = bmcf->upload_dir.len + ngx_strlen(subdirs[i]);
        path->name.data = ngx_pnalloc(cf->pool, path->name.len + 1);
        if (path->name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        (void) ngx_sprintf(path->name.data, "%V%s%Z", &bmcf->upload_dir,
                           subdirs[i]);

        path->conf_file = cf->conf_file->file.name.data;
        path->line = cf->conf_file->line;

        if (ngx_add_path(cf, &path) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Unnamed temp files, when asked for, and when this system makes them
 * (Linux 3.11, and a filesystem that has O_TMPFILE) and links them from
 * /proc.  Stale named temp files (a crash, or a worker killed mid-upload)
 * are the sweep's (sweep.c).
 */

ngx_int_t
ngx_http_bulletdrop_upload_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    u_char     *probe;
    ngx_fd_t    fd;
    ngx_str_t   tmp;
    ngx_err_t   err;

    bmcf->upload = ngx_pcalloc(cycle->pool,
                               sizeof(ngx_http_bulletdrop_upload_worker_t));
    if (bmcf->upload == NULL) {
        return NGX_ERROR;
    }

    if (bmcf->upload_dir.data == NULL) {
        return NGX_OK;
    }

    tmp.len = bmcf->upload_dir.len + sizeof("/.tmp") - 1;
    tmp.data = ngx_pnalloc(cycle->pool, tmp.len + 1);
    probe = ngx_pnalloc(cycle->pool, tmp.len + sizeof("/probe--.part")
                                     + 2 * NGX_INT_T_LEN);
    if (tmp.data == NULL || probe == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(tmp.data, "%V/.tmp%Z", &bmcf->upload_dir);

    if (bmcf->unnamed_temp_files) {
        /* a name no other worker, here or on another machine, takes */
        (void) ngx_sprintf(probe, "%V/probe-%P-%ui.part%Z", &tmp, ngx_pid,
                           (ngx_uint_t) ngx_random());

        fd = open((char *) tmp.data, O_TMPFILE|O_RDWR|O_CLOEXEC, 0600);

        if (fd != -1 && ngx_http_bulletdrop_place(fd, NULL, probe) != -1) {
            bmcf->upload->unnamed = 1;

            if (ngx_delete_file(probe) == NGX_FILE_ERROR) {
                ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                              "bulletdrop: cannot remove \"%s\"", probe);
            }

        } else {
            err = ngx_errno;
            ngx_log_error(NGX_LOG_WARN, cycle->log, err,
                          "bulletdrop: %s in \"%V\" failed: uploads "
                          "under way have names there",
                          fd == -1 ? "open(O_TMPFILE)" : "linkat()",
                          &tmp);
        }

        if (fd != -1) {
            (void) close(fd);
        }
    }

    return NGX_OK;
}
