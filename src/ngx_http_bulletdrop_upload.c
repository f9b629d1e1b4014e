/*
 * BulletDrop: uploads.
 *
 * An upload is refused as early as its headers allow (who, how big, what
 * name), then its body streams through nginx's unbuffered reader: a
 * multipart body through bd_multipart, a raw one as it is, into a temp
 * file in <upload_dir>/.tmp, hashed (SHA-256) and checked (size, quota,
 * magic bytes) as it passes.  At the end the file is fsynced on the thread
 * pool when asked, linked (or renamed) to <category>/<id>.<ext>, and its
 * row inserted with the owner's usage in one statement; only then does the
 * client hear 201.  A pool cleanup removes the temp file, or the placed
 * file whose row was not written, on every other way out: a refusal, an
 * abort, a database that went away.
 *
 * The temp file has no name where the system allows (O_TMPFILE): a worker
 * that dies mid-upload leaves nothing behind, and the file appears in one
 * directory operation, linkat(), instead of a create and a rename between
 * directories.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_authcache.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_commit.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_files.h"
#include "ngx_http_bulletdrop_job.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_upload.h"
#include "bd_deliver.h"
#include "bd_file.h"
#include "bd_multipart.h"
#include "bd_text.h"

#include <sys/file.h>
#include <sys/xattr.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


/* room for a multipart body's boundaries and part headers */
#define NGX_HTTP_BULLETDROP_MULTIPART_SLACK   16384

/*
 * Temp files that no upload holds (a lock) and older than this go; the
 * age spares a file between its creation and its lock
 */
#define NGX_HTTP_BULLETDROP_STALE_AFTER       60
#define NGX_HTTP_BULLETDROP_SWEEP_EVERY       (600 * 1000)

#define NGX_HTTP_BULLETDROP_DELETE_BYTES      24

/* how long a thread job may keep a worker that is shutting down */
#define NGX_HTTP_BULLETDROP_JOB_HOLD          (3600 * 1000)

/* a C library older than the kernel (the value of x86 and arm) */
#ifndef O_TMPFILE
#define O_TMPFILE                             (020000000 | O_DIRECTORY)
#endif


struct ngx_http_bulletdrop_upload_s {
    ngx_http_request_t                 *request;
    /* "http://host", checked before the body is read */
    ngx_str_t                           base;

    ngx_fd_t                            fd;
    /* NUL-terminated paths; tmp is the directory of an unnamed file */
    ngx_str_t                           tmp;
    ngx_str_t                           path;

    EVP_MD_CTX                         *sha;
    /* the file's bytes, and the body's (a multipart body has more) */
    off_t                               size;
    off_t                               received;
    /* the smaller of the file size limit and what the quota leaves */
    off_t                               limit;

    bd_multipart_t                     *mp;

    u_char                              head[BD_FILE_MAGIC_LEN];
    size_t                              head_len;

    char                                ext[BD_FILE_EXT_MAX + 1];
    const char                         *category;
    char                                name[BD_FILE_NAME_MAX + 1];
    size_t                              name_len;
    char                                id[BD_FILE_ID_LEN + 1];
    char                                sha256[
                                            NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    ngx_str_t                           delete_token;
    char                                delete_hash[
                                            NGX_HTTP_BULLETDROP_HASH_HEX_LEN];

    /* where its link lives (data NULL: the host it came to), its limits */
    ngx_str_t                           domain;
    /* milliseconds since the epoch; 0: never */
    int64_t                             expires;
    int32_t                             max_views;

    unsigned                            sharex:1;
    unsigned                            multipart:1;
    unsigned                            quota_limits:1;
    unsigned                            in_file:1;
    unsigned                            file_seen:1;
    unsigned                            magic_checked:1;
    unsigned                            unnamed:1;
    /* the file is at path; the row makes it kept */
    unsigned                            placed:1;
    unsigned                            committed:1;
    /* the row's INSERT is out: until it answers, the file stays */
    unsigned                            inserting:1;

    ngx_http_bulletdrop_commit_t        commit;
};


/*
 * On the thread pool: the file is fsynced, put in place and its directory
 * fsynced, so that a row never outlives its file in a crash.  The job owns
 * a descriptor and the paths (tmp is NULL for an unnamed file): the request
 * may go first.
 */
#if (NGX_THREADS)
typedef struct {
    ngx_http_bulletdrop_job_t           job;
    ngx_fd_t                            fd;
    ngx_err_t                           err;
    const char                         *failed;
    u_char                             *tmp;
    u_char                             *path;
    u_char                             *dir;
    unsigned                            placed:1;
} ngx_http_bulletdrop_sync_t;
#endif


static ngx_int_t ngx_http_bulletdrop_upload_start(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t sharex);
static ngx_int_t ngx_http_bulletdrop_upload_options(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_upload_t *up);
static ngx_table_elt_t *ngx_http_bulletdrop_header_in(ngx_http_request_t *r,
    const char *name, size_t len);
static ngx_int_t ngx_http_bulletdrop_upload_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, u_char *name, size_t len);
static ngx_int_t ngx_http_bulletdrop_upload_open(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up);
static int ngx_http_bulletdrop_place(ngx_fd_t fd, u_char *tmp, u_char *path);
static void ngx_http_bulletdrop_upload_cleanup(void *data);
static void ngx_http_bulletdrop_upload_drop(ngx_http_bulletdrop_upload_t *up);
static void ngx_http_bulletdrop_too_large(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_upload_t *up);
static ngx_int_t ngx_http_bulletdrop_upload_abort(
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_err_e err,
    const char *detail);
static ngx_int_t ngx_http_bulletdrop_upload_fail(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, ngx_int_t status);
static ngx_int_t ngx_http_bulletdrop_upload_chunk(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);
static ngx_int_t ngx_http_bulletdrop_upload_write(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);
static int ngx_http_bulletdrop_part_begin(void *data,
    const bd_multipart_part_t *part);
static int ngx_http_bulletdrop_part_data(void *data, const char *p,
    size_t n);
static int ngx_http_bulletdrop_part_end(void *data);
static ngx_int_t ngx_http_bulletdrop_upload_end(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static ngx_int_t ngx_http_bulletdrop_upload_sync(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up);
#if (NGX_THREADS)
static void ngx_http_bulletdrop_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_bulletdrop_sync_event(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_bulletdrop_upload_commit(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_upload_text(ngx_str_t *field,
    const char *text);
static ngx_int_t ngx_http_bulletdrop_upload_number(ngx_http_request_t *r,
    ngx_str_t *field, int64_t number);
static void ngx_http_bulletdrop_upload_recorded(
    ngx_http_bulletdrop_commit_t *c, ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, int row);
static void ngx_http_bulletdrop_upload_refused(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *why);
static void ngx_http_bulletdrop_upload_sweep(ngx_event_t *ev);


static bd_multipart_callbacks_t  ngx_http_bulletdrop_multipart_callbacks = {
    ngx_http_bulletdrop_part_begin,
    ngx_http_bulletdrop_part_data,
    ngx_http_bulletdrop_part_end
};

/* what a browser runs or renders as a page */
static const char  *ngx_http_bulletdrop_active[] = {
    "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl", "js",
    "mjs", "mht", "mhtml", NULL
};

static ngx_event_t  ngx_http_bulletdrop_sweep_event;
static ngx_str_t    ngx_http_bulletdrop_sweep_dir;

/* this worker makes unnamed temp files: asked for, and seen to work */
static ngx_uint_t   ngx_http_bulletdrop_unnamed;


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


static ngx_table_elt_t *
ngx_http_bulletdrop_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* NGX_DECLINED when the name's extension is not taken here */

static ngx_int_t
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

    if (ngx_http_bulletdrop_unnamed) {
        up->tmp.len = bmcf->upload_dir.len + sizeof("/.tmp") - 1;
        up->tmp.data = ngx_pnalloc(r->pool, up->tmp.len + 1);
        if (up->tmp.data == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_sprintf(up->tmp.data, "%V/.tmp%Z", &bmcf->upload_dir);

        up->fd = open((char *) up->tmp.data, O_TMPFILE|O_WRONLY|O_CLOEXEC,
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
                  O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0644);

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


/*
 * Gives the temp file its name: a named one is renamed, an unnamed one
 * linked through /proc (linkat() with AT_EMPTY_PATH would need a
 * capability that workers lack).  On the event loop or a thread; -1 and
 * errno on failure.
 */

static int
ngx_http_bulletdrop_place(ngx_fd_t fd, u_char *tmp, u_char *path)
{
    char  proc[sizeof("/proc/self/fd/") + NGX_INT_T_LEN];

    if (tmp) {
        return rename((char *) tmp, (char *) path);
    }

    (void) ngx_sprintf((u_char *) proc, "/proc/self/fd/%d%Z", fd);

    return linkat(AT_FDCWD, proc, AT_FDCWD, (char *) path,
                  AT_SYMLINK_FOLLOW);
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

static void
ngx_http_bulletdrop_upload_drop(ngx_http_bulletdrop_upload_t *up)
{
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
        (void) ngx_delete_file(up->path.data);
        up->placed = 0;

    } else if (up->tmp.len && !up->unnamed) {
        (void) ngx_delete_file(up->tmp.data);
    }

    ngx_str_null(&up->tmp);
}


static void
ngx_http_bulletdrop_too_large(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_upload_t *up)
{
    if (up->quota_limits) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_QUOTA_EXCEEDED, NULL);
    } else {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_FILE_TOO_LARGE, NULL);
    }
}


/* the file goes at once, and err is recorded */

static ngx_int_t
ngx_http_bulletdrop_upload_abort(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_err_e err, const char *detail)
{
    ngx_http_bulletdrop_upload_drop(ctx->upload);

    return ngx_http_bulletdrop_error_record(ctx, err, detail);
}


static ngx_int_t
ngx_http_bulletdrop_upload_fail(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, ngx_int_t status)
{
    ngx_http_bulletdrop_upload_drop(up);

    return ngx_http_bulletdrop_answer(r, status);
}


static ngx_int_t
ngx_http_bulletdrop_upload_chunk(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n)
{
    int                            mrc;
    ngx_int_t                      rc;
    ngx_http_bulletdrop_upload_t  *up;

    up = ctx->upload;

    if (!up->multipart) {
        rc = ngx_http_bulletdrop_upload_write(r, ctx, p, n);

    } else if ((off_t) n > up->limit + NGX_HTTP_BULLETDROP_MULTIPART_SLACK
                           - up->received)
    {
        /* other parts and the epilogue count too, with the same slack */
        ngx_http_bulletdrop_too_large(ctx, up);
        rc = NGX_DECLINED;

    } else {
        up->received += n;

        mrc = bd_multipart_feed(up->mp, (char *) p, n);

        if (mrc == BD_MULTIPART_STOPPED) {
            /* a callback recorded why */
            rc = NGX_DECLINED;

        } else if (mrc == BD_MULTIPART_ERROR) {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_MULTIPART,
                                             up->mp->error);
            rc = NGX_DECLINED;

        } else {
            rc = NGX_OK;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_bulletdrop_upload_drop(up);
    }

    return rc;
}


/* the file's bytes: counted, checked, hashed and written */

static ngx_int_t
ngx_http_bulletdrop_upload_write(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n)
{
    size_t                         take;
    ssize_t                        written;
    ngx_err_t                      err;
    ngx_http_bulletdrop_upload_t  *up;

    up = ctx->upload;

    if ((off_t) n > up->limit - up->size) {
        ngx_http_bulletdrop_too_large(ctx, up);
        return NGX_DECLINED;
    }

    /* the first bytes tell what the file is, whatever its name says */
    if (!up->magic_checked) {
        take = ngx_min(n, BD_FILE_MAGIC_LEN - up->head_len);
        ngx_memcpy(up->head + up->head_len, p, take);
        up->head_len += take;

        if (up->head_len == BD_FILE_MAGIC_LEN) {
            up->magic_checked = 1;

            if (bd_file_magic(up->ext, up->head, up->head_len, 0) != 1) {
                ngx_http_bulletdrop_error_record(ctx, BD_ERR_TYPE_MISMATCH,
                                                 NULL);
                return NGX_DECLINED;
            }
        }
    }

    if (EVP_DigestUpdate(up->sha, p, n) != 1) {
        return NGX_ERROR;
    }

    up->size += n;

    while (n) {
        written = write(up->fd, p, n);

        if (written == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            ngx_log_error(NGX_LOG_CRIT, r->connection->log, err,
                          up->unnamed ? "bulletdrop: cannot write a file in "
                                        "\"%s\""
                                      : "bulletdrop: cannot write \"%s\"",
                          up->tmp.data);

            if (err == NGX_ENOSPC) {
                return ngx_http_bulletdrop_error_record(ctx,
                           BD_ERR_INSUFFICIENT_STORAGE, NULL);
            }

            return NGX_ERROR;
        }

        p += written;
        n -= written;
    }

    return NGX_OK;
}


/* multipart: the part named "file" is the upload; the rest is ignored */

static int
ngx_http_bulletdrop_part_begin(void *data, const bd_multipart_part_t *part)
{
    ngx_http_request_t            *r = data;

    ngx_http_bulletdrop_ctx_t     *ctx;
    ngx_http_bulletdrop_upload_t  *up;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    up = ctx->upload;

    if (part->name_len != 4 || ngx_strncmp(part->name, "file", 4) != 0) {
        return 0;
    }

    if (up->file_seen) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_TOO_MANY_FILES, NULL);
        return 1;
    }

    up->file_seen = 1;

    if (!part->has_filename || part->filename_len == 0) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_MISSING_FILENAME,
                                         "the \"file\" part needs a filename");
        return 1;
    }

    if (ngx_http_bulletdrop_upload_name(r, up, (u_char *) part->filename,
                                        part->filename_len)
        != NGX_OK)
    {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_EXTENSION_NOT_ALLOWED,
                                         NULL);
        return 1;
    }

    up->in_file = 1;

    return 0;
}


static int
ngx_http_bulletdrop_part_data(void *data, const char *p, size_t n)
{
    ngx_http_request_t            *r = data;

    ngx_http_bulletdrop_ctx_t     *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (!ctx->upload->in_file) {
        return 0;
    }

    return ngx_http_bulletdrop_upload_write(r, ctx, (u_char *) p, n)
           != NGX_OK;
}


static int
ngx_http_bulletdrop_part_end(void *data)
{
    ngx_http_request_t            *r = data;

    ngx_http_bulletdrop_ctx_t     *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    ctx->upload->in_file = 0;

    return 0;
}


/* the whole body is in: the last checks, then the file takes its place */

static ngx_int_t
ngx_http_bulletdrop_upload_end(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    unsigned int                   n;
    ngx_http_bulletdrop_upload_t  *up;
    u_char                         md[EVP_MAX_MD_SIZE];
    u_char                         rnd[BD_FILE_ID_BYTES];

    up = ctx->upload;

    if (up->multipart) {
        if (bd_multipart_finish(up->mp) != BD_MULTIPART_DONE) {
            return ngx_http_bulletdrop_upload_abort(ctx,
                       BD_ERR_INVALID_MULTIPART,
                       up->mp->error ? up->mp->error
                                     : "the body ended too soon");
        }

        if (!up->file_seen) {
            return ngx_http_bulletdrop_upload_abort(ctx, BD_ERR_NO_FILE,
                                                    NULL);
        }
    }

    if (up->size == 0) {
        return ngx_http_bulletdrop_upload_abort(ctx, BD_ERR_EMPTY_FILE, NULL);
    }

    if (!up->magic_checked
        && bd_file_magic(up->ext, up->head, up->head_len, 1) != 1)
    {
        return ngx_http_bulletdrop_upload_abort(ctx, BD_ERR_TYPE_MISMATCH,
                                                NULL);
    }

    if (EVP_DigestFinal_ex(up->sha, md, &n) != 1
        || RAND_bytes(rnd, sizeof(rnd)) != 1
        || ngx_http_bulletdrop_secret_new(r->pool, "",
                                          NGX_HTTP_BULLETDROP_DELETE_BYTES,
                                          &up->delete_token, up->delete_hash)
           != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    bd_hex_encode(md, n, up->sha256);
    (void) bd_base64url_encode(rnd, sizeof(rnd), up->id);

    /* the file domains check a file with limits; the others go straight */
    bd_deliver_id_mark(up->id, up->expires || up->max_views);

    /* its name goes with it: serving it needs no query */
    if (fsetxattr(up->fd, NGX_HTTP_BULLETDROP_NAME_XATTR, up->name,
                  up->name_len, 0)
        == -1
        && ngx_errno != ENOTSUP)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, ngx_errno,
                      "bulletdrop: cannot keep the name of upload %s", up->id);
    }

    return ngx_http_bulletdrop_upload_sync(r, up);
}


static ngx_int_t
ngx_http_bulletdrop_upload_sync(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up)
{
    size_t                            dir;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
#if (NGX_THREADS)
    u_char                           *p;
    ngx_int_t                         rc;
    ngx_http_bulletdrop_sync_t       *job;
#endif

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    dir = bmcf->upload_dir.len + 1 + ngx_strlen(up->category);

    up->path.len = dir + 1 + BD_FILE_ID_LEN + 1 + ngx_strlen(up->ext);
    up->path.data = ngx_pnalloc(r->pool, up->path.len + 1);
    if (up->path.data == NULL) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    (void) ngx_sprintf(up->path.data, "%V/%s/%s.%s%Z", &bmcf->upload_dir,
                       up->category, up->id, up->ext);

#if (NGX_THREADS)

    if (!bmcf->fsync) {
        return ngx_http_bulletdrop_upload_commit(r,
                   ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));
    }

    /* fsync may take long: the thread pool waits for the disk, not us */
    job = ngx_calloc(sizeof(ngx_http_bulletdrop_sync_t)
                     + (up->unnamed ? 0 : up->tmp.len + 1)
                     + 2 * (up->path.len + 1), r->connection->log);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = (u_char *) &job[1];

    if (!up->unnamed) {
        job->tmp = p;
        p = ngx_cpymem(p, up->tmp.data, up->tmp.len + 1);
    }

    job->path = p;
    p = ngx_cpymem(p, up->path.data, up->path.len + 1);
    job->dir = p;
    *ngx_cpymem(p, up->path.data, dir) = '\0';

    job->fd = dup(up->fd);

    if (job->fd == -1) {
        ngx_free(job);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    job->job.what = "an upload's fsync()";
    job->job.task.handler = ngx_http_bulletdrop_sync_thread;
    job->job.task.event.handler = ngx_http_bulletdrop_sync_event;

    rc = ngx_http_bulletdrop_job_post(r, &job->job, bmcf->thread_pool,
                                      NGX_HTTP_BULLETDROP_JOB_HOLD);

    if (rc != NGX_OK) {
        (void) close(job->fd);
        ngx_free(job);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           rc == NGX_DECLINED
                                           ? NGX_HTTP_SERVICE_UNAVAILABLE
                                           : NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    /*
     * The body is in: a client leaving now saves nothing, and abandoning
     * would be one more way out to get right
     */
    r->read_event_handler = ngx_http_block_reading;

    return NGX_DONE;

#else

    return ngx_http_bulletdrop_upload_commit(r,
               ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));

#endif
}


#if (NGX_THREADS)

static void
ngx_http_bulletdrop_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_bulletdrop_sync_t  *job = data;

    int  dfd;

    if (fsync(job->fd) == -1) {
        job->err = ngx_errno;
        job->failed = "fsync()";
        return;
    }

    if (ngx_http_bulletdrop_place(job->fd, job->tmp, job->path) == -1) {
        job->err = ngx_errno;
        job->failed = job->tmp ? "rename()" : "linkat()";
        return;
    }

    job->placed = 1;

    /* the new name is durable once its directory is */
    dfd = open((char *) job->dir, O_RDONLY|O_DIRECTORY);

    if (dfd == -1 || fsync(dfd) == -1) {
        job->err = ngx_errno;
        job->failed = "fsync() of the directory";
    }

    if (dfd != -1) {
        (void) close(dfd);
    }
}


static void
ngx_http_bulletdrop_sync_event(ngx_event_t *ev)
{
    ngx_err_t                    err;
    ngx_http_request_t          *r;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_sync_t  *job;

    job = ev->data;
    r = ngx_http_bulletdrop_job_back(&job->job);
    err = job->err;

    (void) close(job->fd);

    if (r == NULL) {
        /* its request is gone, and took the temp file: this is the rest */
        if (job->placed) {
            (void) ngx_delete_file(job->path);
        }

        ngx_free(job);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    ctx->upload->placed = job->placed;

    if (err) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, err,
                      "bulletdrop: %s failed for \"%s\"", job->failed,
                      job->path);
        ngx_free(job);
        ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_upload_fail(r,
                                          ctx->upload,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR));
        return;
    }

    ngx_free(job);

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_upload_commit(r, ctx));
}


#endif


/* the file takes its place, then its row is written */

static ngx_int_t
ngx_http_bulletdrop_upload_commit(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    int64_t                           ms;
    ngx_str_t                        *f;
    ngx_time_t                       *tp;
    bd_deliver_type_t                 type;
    ngx_http_bulletdrop_upload_t     *up;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    up = ctx->upload;

    /* placed already when the thread pool fsynced it (bulletdrop_fsync) */
    if (!up->placed) {
        /* 96 random bits: a name that is taken is not worth a check */
        if (ngx_http_bulletdrop_place(up->fd,
                                      up->unnamed ? NULL : up->tmp.data,
                                      up->path.data)
            == -1)
        {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          up->unnamed ? "bulletdrop: cannot link \"%s\" "
                                        "to a file in \"%s\""
                                      : "bulletdrop: cannot rename \"%s\" "
                                        "from \"%s\"",
                          up->path.data, up->tmp.data);
            return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        up->placed = 1;
    }

    if (ngx_close_file(up->fd) == NGX_FILE_ERROR) {
        up->fd = NGX_INVALID_FILE;
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "bulletdrop: cannot close \"%s\"", up->path.data);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->fd = NGX_INVALID_FILE;

    /* a fifth of the timeout early, for the reply's way back */
    tp = ngx_timeofday();
    ms = (int64_t) tp->sec * 1000 + tp->msec
         + bmcf->db.timeout - bmcf->db.timeout / 5;

    up->commit.deadline = ngx_current_msec + bmcf->db.timeout
                          - bmcf->db.timeout / 5;

    f = up->commit.fields;

    ngx_http_bulletdrop_upload_text(&f[0], up->id);
    ngx_http_bulletdrop_upload_text(&f[2], up->name);
    ngx_http_bulletdrop_upload_text(&f[3], up->ext);
    ngx_http_bulletdrop_upload_text(&f[4], up->category);
    /* the type the file domains serve it with */
    bd_deliver_type(up->ext, ngx_strlen(up->ext), &type);
    ngx_http_bulletdrop_upload_text(&f[5], type.content_type);
    ngx_http_bulletdrop_upload_text(&f[7], up->sha256);
    ngx_http_bulletdrop_upload_text(&f[8], up->delete_hash);

    if (ngx_http_bulletdrop_upload_number(r, &f[1], ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_upload_number(r, &f[6], up->size) != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    f[9].data = ngx_pnalloc(r->pool, NGX_INT64_LEN + 5);
    if (f[9].data == NULL) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    f[9].len = ngx_sprintf(f[9].data, "%L.%03L", ms / 1000, ms % 1000)
               - f[9].data;

    /* the API key's hash, or the token version; the other one NULL */
    if (ctx->api_key.len) {
        f[10] = ctx->cred;

    } else if (ngx_http_bulletdrop_upload_number(r, &f[11],
                                                 ctx->user.token_version)
               != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (up->domain.data) {
        f[12] = up->domain;
    }

    if (up->expires) {
        f[13].data = ngx_pnalloc(r->pool, NGX_INT64_LEN + 5);
        if (f[13].data == NULL) {
            return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        f[13].len = ngx_sprintf(f[13].data, "%L.%03L", up->expires / 1000,
                                up->expires % 1000)
                    - f[13].data;
    }

    if (up->max_views
        && ngx_http_bulletdrop_upload_number(r, &f[14], up->max_views)
           != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->commit.request = r;
    up->commit.done = ngx_http_bulletdrop_upload_recorded;

    /*
     * Not abandoned if the client leaves now: the row may be written
     * whatever happens here, and the file must stay with it
     */
    r->read_event_handler = ngx_http_block_reading;

    if (ngx_http_bulletdrop_commit(&up->commit) != NGX_OK) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->inserting = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_bulletdrop_upload_text(ngx_str_t *field, const char *text)
{
    field->data = (u_char *) text;
    field->len = ngx_strlen(text);
}


static ngx_int_t
ngx_http_bulletdrop_upload_number(ngx_http_request_t *r, ngx_str_t *field,
    int64_t number)
{
    field->data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (field->data == NULL) {
        return NGX_ERROR;
    }

    field->len = ngx_sprintf(field->data, "%L", number) - field->data;

    return NGX_OK;
}


static void
ngx_http_bulletdrop_upload_recorded(ngx_http_bulletdrop_commit_t *c,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, int row)
{
    json_t                        *json;
    ngx_http_request_t            *r;
    ngx_http_bulletdrop_ctx_t     *ctx;
    ngx_http_bulletdrop_upload_t  *up;

    r = c->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    up = ctx->upload;

    if (q == NULL) {
        /* never sent: nothing was written */
        up->inserting = 0;
        ngx_http_bulletdrop_upload_drop(up);

        if (c->late) {
            ngx_http_bulletdrop_upload_refused(r, ctx, "late");
            return;
        }

        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL,
                                             "the upload could not be "
                                             "recorded"));
        return;
    }

    /*
     * A statement whose connection broke once it was sent may have
     * committed: its file stays (a file without a row is the lesser harm,
     * and make fsck lists it).  One that timed out cannot commit later:
     * it carries its own deadline.
     */
    if (q->status != NGX_HTTP_BULLETDROP_DB_LOST) {
        up->inserting = 0;
    }

    if (ngx_http_bulletdrop_query_ok_for(r, q, res, PGRES_TUPLES_OK)
        != NGX_OK)
    {
        /* no row, no file */
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_finish(r, NGX_DECLINED);
        return;
    }

    if (row < 0) {
        /* the batch was written, but not as expected: the file stays */
        up->inserting = 1;
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL,
                                             "the database answered "
                                             "unexpectedly"));
        return;
    }

    /* the last column but one says why no row was written */
    if (!PQgetisnull(res, row, NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS)) {
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_upload_refused(r, ctx,
                  PQgetvalue(res, row, NGX_HTTP_BULLETDROP_UPLOAD_NCOLUMNS));
        return;
    }

    up->committed = 1;

    if (up->expires || up->max_views) {
        ngx_http_bulletdrop_files_learn((u_char *) up->id, up->expires,
                                        up->max_views);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulletdrop: user #%L uploaded %s/%s.%s, %O bytes",
                  ctx->user.id, up->category, up->id, up->ext, up->size);

    json = ngx_http_bulletdrop_upload_json(r, res, row, &up->delete_token);

    if (json && up->sharex) {
        /* what ShareX reads, and no more */
        json_object_del(json, "name");
        json_object_del(json, "category");
        json_object_del(json, "content_type");
        json_object_del(json, "created_at");
        json_object_del(json, "expires_at");
        json_object_del(json, "max_views");
        json_object_del(json, "views");
        json_object_del(json, "domain");
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_CREATED, json));
}


/* what bd_upload_commit_batch() says when it writes no row */

static void
ngx_http_bulletdrop_upload_refused(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *why)
{
    if (ngx_strcmp(why, "quota") == 0) {
        /* uploads that finished meanwhile took what the quota left */
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_QUOTA_EXCEEDED, NULL));
        return;
    }

    if (ngx_strcmp(why, "late") == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_DATABASE_UNAVAILABLE,
                                             "the upload could not be "
                                             "recorded in time"));
        return;
    }

    /* changed while the body came: what this worker remembers is stale */
    ngx_http_bulletdrop_authcache_forget(&ctx->cred);

    if (ngx_strcmp(why, "disabled") == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_ACCOUNT_DISABLED,
                                             NULL));
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_TOKEN,
                                         "the token is not valid any more"));
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
 * /proc; stale named temp files: a crash, or a worker killed mid-upload.
 */

ngx_int_t
ngx_http_bulletdrop_upload_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    u_char       *probe;
    ngx_fd_t      fd;
    ngx_err_t     err;
    ngx_event_t  *ev;

    if (bmcf->upload_dir.data == NULL) {
        return NGX_OK;
    }

    ngx_http_bulletdrop_sweep_dir.len = bmcf->upload_dir.len
                                        + sizeof("/.tmp") - 1;
    ngx_http_bulletdrop_sweep_dir.data = ngx_pnalloc(cycle->pool,
                                     ngx_http_bulletdrop_sweep_dir.len + 1);
    probe = ngx_pnalloc(cycle->pool, ngx_http_bulletdrop_sweep_dir.len
                                     + sizeof("/probe--.part")
                                     + 2 * NGX_INT_T_LEN);
    if (ngx_http_bulletdrop_sweep_dir.data == NULL || probe == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(ngx_http_bulletdrop_sweep_dir.data, "%V/.tmp%Z",
                       &bmcf->upload_dir);

    if (bmcf->unnamed_temp_files) {
        /* a name no other worker, here or on another machine, takes */
        (void) ngx_sprintf(probe, "%V/probe-%P-%ui.part%Z",
                           &ngx_http_bulletdrop_sweep_dir, ngx_pid,
                           (ngx_uint_t) ngx_random());

        fd = open((char *) ngx_http_bulletdrop_sweep_dir.data,
                  O_TMPFILE|O_WRONLY|O_CLOEXEC, 0600);

        if (fd != -1 && ngx_http_bulletdrop_place(fd, NULL, probe) != -1) {
            ngx_http_bulletdrop_unnamed = 1;

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
                          &ngx_http_bulletdrop_sweep_dir);
        }

        if (fd != -1) {
            (void) close(fd);
        }
    }

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    ev = &ngx_http_bulletdrop_sweep_event;
    ev->handler = ngx_http_bulletdrop_upload_sweep;
    ev->log = cycle->log;
    ev->data = &ngx_http_bulletdrop_sweep_dir;
    ev->cancelable = 1;

    ngx_http_bulletdrop_upload_sweep(ev);

    return NGX_OK;
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
