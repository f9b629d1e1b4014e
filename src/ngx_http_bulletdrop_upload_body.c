/*
 * BulletDrop: an upload's body, as it streams in (body.c hands on each
 * chunk as it arrives).  A multipart body goes through bd_multipart, whose
 * part named "file" is the upload; a raw body is the file.  Its bytes are
 * counted against the limit, their first ones sniffed (magic bytes),
 * hashed (SHA-256) and written to the temp file.  At the end, the last
 * checks, the file's id and delete token, and its name in an xattr; then
 * it is put in place (upload_sync.c).
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_upload_int.h"
#include "ngx_http_bulletdrop_files.h"
#include "bd_deliver.h"
#include "bd_text.h"

#include <sys/xattr.h>
#include <openssl/rand.h>


static ngx_int_t ngx_http_bulletdrop_upload_write(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);
static int ngx_http_bulletdrop_part_begin(void *data,
    const bd_multipart_part_t *part);
static int ngx_http_bulletdrop_part_data(void *data, const char *p,
    size_t n);
static int ngx_http_bulletdrop_part_end(void *data);


bd_multipart_callbacks_t  ngx_http_bulletdrop_multipart_callbacks = {
    ngx_http_bulletdrop_part_begin,
    ngx_http_bulletdrop_part_data,
    ngx_http_bulletdrop_part_end
};


ngx_int_t
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
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop upload: stopped mid-body: %i, %s", rc,
                       ngx_http_bulletdrop_errors[ctx->error].code);

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

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: part \"%*s\" begins, at %O",
                   part->name_len, part->name, up->received);

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

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: part ends, file:%ui, %O bytes",
                   (ngx_uint_t) ctx->upload->in_file, ctx->upload->size);

    ctx->upload->in_file = 0;

    return 0;
}


/* the whole body is in: the last checks, then the file takes its place */

ngx_int_t
ngx_http_bulletdrop_upload_end(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_str_t                      id;
    unsigned int                   n;
    ngx_http_bulletdrop_upload_t  *up;
    u_char                         md[EVP_MAX_MD_SIZE];
    u_char                         rnd[BD_FILE_ID_BYTES];

    up = ctx->upload;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: body in, %O bytes of file, %O "
                   "received", up->size, up->received);

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
        || RAND_bytes(rnd, sizeof(rnd)) != 1)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    bd_hex_encode(md, n, up->sha256);
    id.len = bd_base64url_encode(rnd, sizeof(rnd), up->id);
    id.data = (u_char *) up->id;

    /* the file domains check a file with limits; the others go straight */
    bd_deliver_id_mark(up->id, up->expires || up->max_views);

    /* of the id as it is stored, mark included */
    if (ngx_http_bulletdrop_delete_token(r, &id, &up->delete_token,
                                         up->delete_hash)
        != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

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
