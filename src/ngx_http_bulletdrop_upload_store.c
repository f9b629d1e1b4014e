/*
 * BulletDrop: an upload's file put in the bucket (bulletdrop_storage s3).
 * The body is whole in the temp file and its SHA-256 known: a file up to
 * part_size goes as one PUT signed with that hash, so the store itself
 * checks that it got the bytes that were hashed; a larger one as a
 * multipart upload, part after part, then completed.  Only once the store
 * said 200 does the row go (upload_commit.c).  When the store fails or is
 * slow, the client gets 503 storage_unavailable, and a multipart upload
 * begun is aborted: nothing is left.
 */

#include "ngx_http_bulletdrop_upload_int.h"
#include "ngx_http_bulletdrop_s3.h"
#include "bd_deliver.h"
#include "bd_sigv4.h"


typedef struct {
    ngx_http_request_t                 *request;
    ngx_http_bulletdrop_upload_t       *upload;
    ngx_http_bulletdrop_s3_conf_t      *conf;
    ngx_http_bulletdrop_s3_op_t        *op;
    /* a multipart upload's id, encoded for a query; its parts' ETags */
    ngx_str_t                           upload_id;
    ngx_uint_t                          part;
    ngx_uint_t                          parts;
    ngx_str_t                          *etags;
    unsigned                            completed:1;
} ngx_http_bulletdrop_store_t;


static ngx_int_t ngx_http_bulletdrop_store_op(ngx_http_bulletdrop_store_t *st,
    const char *method, const char *query, ngx_http_bulletdrop_s3_done_pt done);
static void ngx_http_bulletdrop_store_put(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_store_begun(ngx_http_bulletdrop_s3_op_t *op);
static ngx_int_t ngx_http_bulletdrop_store_part(
    ngx_http_bulletdrop_store_t *st);
static void ngx_http_bulletdrop_store_parted(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_store_completed(
    ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_store_stored(ngx_http_bulletdrop_store_t *st);
static void ngx_http_bulletdrop_store_failed(ngx_http_bulletdrop_store_t *st,
    ngx_http_bulletdrop_s3_op_t *op, const char *what);
static void ngx_http_bulletdrop_store_abort(ngx_http_bulletdrop_store_t *st,
    ngx_uint_t unanswered);
static void ngx_http_bulletdrop_store_cleanup(void *data);


ngx_int_t
ngx_http_bulletdrop_upload_store(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up)
{
    ngx_int_t                         rc;
    ngx_pool_cleanup_t               *cln;
    ngx_http_bulletdrop_store_t      *st;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    /* the object's key, as the file's path under upload_dir */
    up->path.data = ngx_pnalloc(r->pool, NGX_HTTP_BULLETDROP_S3_KEY_MAX);
    if (up->path.data == NULL) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->path.len = ngx_snprintf(up->path.data,
                                NGX_HTTP_BULLETDROP_S3_KEY_MAX - 1,
                                "%s/%s.%s", up->category, up->id, up->ext)
                   - up->path.data;
    up->path.data[up->path.len] = '\0';

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_store_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (st == NULL || cln == NULL) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    st->request = r;
    st->upload = up;
    st->conf = bmcf->s3;

    cln->handler = ngx_http_bulletdrop_store_cleanup;
    cln->data = st;

    r->connection->log->action = "storing an upload";

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: storing \"%V\", %O bytes, part %O",
                   &up->path, up->size, st->conf->part_size);

    if (up->size <= st->conf->part_size) {
        rc = ngx_http_bulletdrop_store_op(st, "PUT", "",
                                          ngx_http_bulletdrop_store_put);
        if (rc == NGX_OK) {
            /* the store checks the bytes against the hash of them */
            ngx_memcpy(st->op->payload_hash, up->sha256, 64);
            st->op->payload_hash[64] = '\0';
            st->op->length = up->size;
        }

    } else {
        st->parts = (ngx_uint_t) ((up->size + st->conf->part_size - 1)
                                  / st->conf->part_size);

        if (st->parts > 10000) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "bulletdrop: %O bytes are more than 10000 parts "
                          "of part_size", up->size);
            return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        st->etags = ngx_pcalloc(r->pool, st->parts * sizeof(ngx_str_t));
        if (st->etags == NULL) {
            return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        rc = ngx_http_bulletdrop_store_op(st, "POST", "uploads=",
                                          ngx_http_bulletdrop_store_begun);
    }

    if (rc != NGX_OK) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (ngx_http_bulletdrop_s3_start(st->op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(st->op);
        st->op = NULL;
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    /*
     * The body is in: a client leaving now saves nothing, and abandoning
     * would be one more way out to get right
     */
    r->read_event_handler = ngx_http_block_reading;
    r->main->count++;

    return NGX_DONE;
}


/* a request about this upload's object; st->op, not started */

static ngx_int_t
ngx_http_bulletdrop_store_op(ngx_http_bulletdrop_store_t *st,
    const char *method, const char *query, ngx_http_bulletdrop_s3_done_pt done)
{
    size_t                         len;
    bd_deliver_type_t              type;
    ngx_http_bulletdrop_upload_t  *up;
    ngx_http_bulletdrop_s3_op_t   *op;

    up = st->upload;

    op = ngx_http_bulletdrop_s3_op(st->conf, st->request->connection->log,
                                   method, &up->path, query);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = done;
    op->data = st;
    st->op = op;

    if (ngx_strcmp(method, "PUT") == 0) {
        op->file.fd = dup(up->fd);
        if (op->file.fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_CRIT, st->request->connection->log,
                          ngx_errno, "bulletdrop: dup() failed");
            ngx_http_bulletdrop_s3_free(op);
            st->op = NULL;
            return NGX_ERROR;
        }
    }

    /* an object's headers: what a CDN in front of the bucket sends */
    if (st->upload_id.len == 0) {
        bd_deliver_type(up->ext, ngx_strlen(up->ext), &type);

        op->content_type.data = (u_char *) type.content_type;
        op->content_type.len = ngx_strlen(type.content_type);

        len = bd_deliver_disposition(type.inline_ok, up->name, up->name_len,
                                     NULL, 0);

        op->disposition.data = ngx_pnalloc(op->pool, len + 1);
        if (op->disposition.data == NULL) {
            ngx_http_bulletdrop_s3_free(op);
            st->op = NULL;
            return NGX_ERROR;
        }

        op->disposition.len = bd_deliver_disposition(type.inline_ok,
                                  up->name, up->name_len,
                                  (char *) op->disposition.data, len + 1);
    }

    return NGX_OK;
}


static void
ngx_http_bulletdrop_store_put(ngx_http_bulletdrop_s3_op_t *op)
{
    ngx_http_bulletdrop_store_t  *st;

    st = op->data;

    /* S3 answers a stored object with its ETag: a bare 200 is not one */
    if (op->status != NGX_HTTP_OK || op->etag.len == 0) {
        ngx_http_bulletdrop_store_failed(st, op, "a PUT");
        return;
    }

    ngx_http_bulletdrop_s3_free(op);
    st->op = NULL;

    ngx_http_bulletdrop_store_stored(st);
}


/* the multipart upload begun: its id, then the first part */

static void
ngx_http_bulletdrop_store_begun(ngx_http_bulletdrop_s3_op_t *op)
{
    ssize_t                       n;
    size_t                        len;
    ngx_http_bulletdrop_store_t  *st;
    char                          id[512];

    st = op->data;

    n = -1;

    if (op->status == NGX_HTTP_OK) {
        n = bd_s3_xml_text((char *) op->answer.data, op->answer.len,
                           "UploadId", id, sizeof(id));
    }

    if (n <= 0) {
        ngx_http_bulletdrop_store_failed(st, op, "a multipart upload's "
                                                 "start");
        return;
    }

    ngx_http_bulletdrop_s3_free(op);
    st->op = NULL;

    len = bd_sigv4_uri_encode(id, n, NULL, 0);

    st->upload_id.data = ngx_pnalloc(st->request->pool, len + 1);
    if (st->upload_id.data == NULL) {
        ngx_http_bulletdrop_store_failed(st, NULL, "out of memory");
        return;
    }

    st->upload_id.len = bd_sigv4_uri_encode(id, n,
                                            (char *) st->upload_id.data, 0);
    st->upload_id.data[st->upload_id.len] = '\0';

    if (ngx_http_bulletdrop_store_part(st) != NGX_OK) {
        ngx_http_bulletdrop_store_failed(st, NULL, "a part");
    }
}


static ngx_int_t
ngx_http_bulletdrop_store_part(ngx_http_bulletdrop_store_t *st)
{
    off_t  offset;
    char   query[64 + 3 * 512];

    (void) ngx_snprintf((u_char *) query, sizeof(query),
                        "partNumber=%ui&uploadId=%V%Z", st->part + 1,
                        &st->upload_id);

    if (ngx_http_bulletdrop_store_op(st, "PUT", query,
                                     ngx_http_bulletdrop_store_parted)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    offset = (off_t) st->part * st->conf->part_size;

    st->op->offset = offset;
    st->op->length = ngx_min(st->conf->part_size,
                             st->upload->size - offset);

    if (ngx_http_bulletdrop_s3_start(st->op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(st->op);
        st->op = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_bulletdrop_store_parted(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char                       *p;
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_bulletdrop_store_t  *st;

    st = op->data;

    if (op->status != NGX_HTTP_OK || op->etag.len == 0
        || op->etag.len > 128)
    {
        ngx_http_bulletdrop_store_failed(st, op, "a part");
        return;
    }

    st->etags[st->part].data = ngx_pstrdup(st->request->pool, &op->etag);
    st->etags[st->part].len = op->etag.len;

    ngx_http_bulletdrop_s3_free(op);
    st->op = NULL;

    if (st->etags[st->part].data == NULL) {
        ngx_http_bulletdrop_store_failed(st, NULL, "out of memory");
        return;
    }

    if (++st->part < st->parts) {
        if (ngx_http_bulletdrop_store_part(st) != NGX_OK) {
            ngx_http_bulletdrop_store_failed(st, NULL, "a part");
        }

        return;
    }

    /* every part is there: they become the object */
    len = sizeof("<CompleteMultipartUpload></CompleteMultipartUpload>");

    for (i = 0; i < st->parts; i++) {
        len += sizeof("<Part><PartNumber></PartNumber><ETag></ETag></Part>")
               + NGX_INT_T_LEN + st->etags[i].len;
    }

    p = ngx_pnalloc(st->request->pool, len);
    if (p == NULL) {
        ngx_http_bulletdrop_store_failed(st, NULL, "out of memory");
        return;
    }

    {
        u_char  *q;
        char     query[64 + 3 * 512];

        q = ngx_cpymem(p, "<CompleteMultipartUpload>",
                       sizeof("<CompleteMultipartUpload>") - 1);

        for (i = 0; i < st->parts; i++) {
            q = ngx_sprintf(q, "<Part><PartNumber>%ui</PartNumber>"
                               "<ETag>%V</ETag></Part>",
                            i + 1, &st->etags[i]);
        }

        q = ngx_cpymem(q, "</CompleteMultipartUpload>",
                       sizeof("</CompleteMultipartUpload>") - 1);

        (void) ngx_snprintf((u_char *) query, sizeof(query),
                            "uploadId=%V%Z", &st->upload_id);

        if (ngx_http_bulletdrop_store_op(st, "POST", query,
                                         ngx_http_bulletdrop_store_completed)
            != NGX_OK)
        {
            ngx_http_bulletdrop_store_failed(st, NULL, "out of memory");
            return;
        }

        st->op->body.data = p;
        st->op->body.len = q - p;
    }

    if (ngx_http_bulletdrop_s3_start(st->op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(st->op);
        st->op = NULL;
        ngx_http_bulletdrop_store_failed(st, NULL, "a multipart upload's "
                                                   "completion");
    }
}


static void
ngx_http_bulletdrop_store_completed(ngx_http_bulletdrop_s3_op_t *op)
{
    ngx_http_bulletdrop_store_t  *st;

    st = op->data;

    /* a 200 may still say <Error> (S3 answers before it is done) */
    if (op->status != NGX_HTTP_OK
        || ngx_strlcasestrn(op->answer.data,
                            op->answer.data + op->answer.len,
                            (u_char *) "<Error>", 7 - 1)
           != NULL)
    {
        ngx_http_bulletdrop_store_failed(st, op, "a multipart upload's "
                                                 "completion");
        return;
    }

    st->completed = 1;

    ngx_http_bulletdrop_s3_free(op);
    st->op = NULL;

    ngx_http_bulletdrop_store_stored(st);
}


/* in the bucket: the temp file is not needed, and the row goes */

static void
ngx_http_bulletdrop_store_stored(ngx_http_bulletdrop_store_t *st)
{
    ngx_http_request_t            *r;
    ngx_http_bulletdrop_upload_t  *up;

    r = st->request;
    up = st->upload;

    up->placed = 1;

    if (up->tmp.len && !up->unnamed) {
        (void) ngx_delete_file(up->tmp.data);
        ngx_str_null(&up->tmp);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: \"%V\" stored", &up->path);

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_upload_commit(r,
                  ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module)));
}


static void
ngx_http_bulletdrop_store_failed(ngx_http_bulletdrop_store_t *st,
    ngx_http_bulletdrop_s3_op_t *op, const char *what)
{
    u_char                      said[160], *p;
    ngx_uint_t                  unanswered;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = st->request;
    /*
     * A request that went and got no answer may yet be carried out; a
     * multipart upload begun with an id that could not be read is there
     * all the same: both are for the store to forget
     */
    unanswered = (op && op->status == 0 && ngx_http_bulletdrop_s3_sent(op))
                 || (op && op->status == NGX_HTTP_OK && st->parts
                     && st->upload_id.len == 0);

    if (op) {
        p = ngx_http_bulletdrop_s3_said(op, said, sizeof(said));

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: the store refused %s of \"%V\": %*s",
                      what, &st->upload->path, p - said, said);

        ngx_http_bulletdrop_s3_free(op);
        st->op = NULL;

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: %s of \"%V\" failed", what,
                      &st->upload->path);
    }

    ngx_http_bulletdrop_store_abort(st, unanswered);

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_upload_abort(ctx, BD_ERR_STORAGE_UNAVAILABLE,
                                         NULL));
}


/*
 * What the store may have of this upload goes: a multipart upload begun
 * (aborted), and, when a request got no answer (unanswered), whatever the
 * store does with it once it comes back
 */

static void
ngx_http_bulletdrop_store_abort(ngx_http_bulletdrop_store_t *st,
    ngx_uint_t unanswered)
{
    if (st->completed || (st->upload_id.len == 0 && !unanswered)) {
        return;
    }

    (void) ngx_http_bulletdrop_s3_forget(st->conf,
                                         st->request->connection->log,
                                         &st->upload->path, &st->upload_id,
                                         unanswered && st->parts);

    st->upload_id.len = 0;
}


/* the request goes first (a worker that stops): what is out goes too */

static void
ngx_http_bulletdrop_store_cleanup(void *data)
{
    ngx_http_bulletdrop_store_t  *st = data;

    if (st->op) {
        ngx_http_bulletdrop_s3_free(st->op);
        st->op = NULL;
        ngx_http_bulletdrop_store_abort(st, 1);
        return;
    }

    ngx_http_bulletdrop_store_abort(st, 0);
}
