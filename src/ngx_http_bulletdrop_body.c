/*
 * BulletDrop: request bodies, read as they stream: JSON objects and forms
 * kept whole for the API's routes, uploads handed on chunk by chunk.
 *
 * Bodies are read with nginx's unbuffered reader and handed, as they
 * arrive, to a chunk handler: an upload streams to its file, a small body
 * is copied into one buffer of at most NGX_HTTP_BULLETDROP_BODY_MAX, and
 * one byte more is a 413 in JSON, not nginx's HTML page, chunked bodies
 * included.  Nothing reaches nginx's own temp files.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_json.h"
#include "bd_text.h"


#define NGX_HTTP_BULLETDROP_BODY_TOO_LARGE                                    \
    "the body of this route may have at most "                                \
    NGX_HTTP_BULLETDROP_BODY_MAX_TEXT " bytes"


struct ngx_http_bulletdrop_reader_s {
    /* the stream */
    ngx_http_bulletdrop_chunk_pt    chunk;
    ngx_http_bulletdrop_step_pt     done;

    /* a small body kept whole, and what to do with it */
    u_char                         *start;
    u_char                         *last;
    u_char                         *end;
    ngx_http_bulletdrop_step_pt     next;
    unsigned                        form:1;
};


static void ngx_http_bulletdrop_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulletdrop_body_take(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b);
static ngx_int_t ngx_http_bulletdrop_body_keep(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);
static ngx_int_t ngx_http_bulletdrop_body_kept(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static ngx_int_t ngx_http_bulletdrop_body_parse(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b);
static ngx_int_t ngx_http_bulletdrop_body_form(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b);
static ngx_int_t ngx_http_bulletdrop_body_type(ngx_http_request_t *r,
    const char *type);
static ngx_int_t ngx_http_bulletdrop_body_start(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b);
static ngx_int_t ngx_http_bulletdrop_body_oom(ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_body_cleanup(void *data);


ngx_int_t
ngx_http_bulletdrop_body_read(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next)
{
    size_t                         size;
    ngx_http_bulletdrop_reader_t  *b;

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        if (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_OPTIONAL) {
            return next(r, ctx);
        }

        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_JSON,
                                                "this route needs a JSON body");
    }

    b = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_reader_t));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->next = next;

    /* no Content-Type is taken as JSON: a hand-written curl -d '{...}' */
    if (r->headers_in.content_type == NULL
        || ngx_http_bulletdrop_body_type(r, "application/json"))
    {
        b->form = 0;

    } else if (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_FORM
               && ngx_http_bulletdrop_body_type(r,
                                   "application/x-www-form-urlencoded"))
    {
        b->form = 1;

    } else {
        return ngx_http_bulletdrop_error_record(ctx,
                   BD_ERR_UNSUPPORTED_MEDIA_TYPE,
                   ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_FORM
                   ? "send application/json or "
                     "application/x-www-form-urlencoded"
                   : NULL);
    }

    if (r->headers_in.content_length_n > NGX_HTTP_BULLETDROP_BODY_MAX) {
        /* answered without reading it: the connection is not reused */
        r->keepalive = 0;
        r->lingering_close = 1;

        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_BODY_TOO_LARGE,
                                         NGX_HTTP_BULLETDROP_BODY_TOO_LARGE);
    }

    size = r->headers_in.chunked ? NGX_HTTP_BULLETDROP_BODY_MAX
                                 : (size_t) r->headers_in.content_length_n;

    b->start = ngx_pnalloc(r->pool, size);
    if (b->start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = b->start;
    b->end = b->start + size;
    b->chunk = ngx_http_bulletdrop_body_keep;
    b->done = ngx_http_bulletdrop_body_kept;

    return ngx_http_bulletdrop_body_start(r, ctx, b);
}


ngx_int_t
ngx_http_bulletdrop_body_stream(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_chunk_pt chunk,
    ngx_http_bulletdrop_step_pt done)
{
    ngx_http_bulletdrop_reader_t  *b;

    b = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_reader_t));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->chunk = chunk;
    b->done = done;

    return ngx_http_bulletdrop_body_start(r, ctx, b);
}


static ngx_int_t
ngx_http_bulletdrop_body_start(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b)
{
    ngx_int_t  rc;

    ctx->reader = b;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop body: reading, length %O%s",
                   r->headers_in.content_length_n,
                   r->headers_in.chunked ? ", chunked" : "");

    /* the body is handed over as it arrives, never buffered to a file */
    r->request_body_no_buffering = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_bulletdrop_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* nginx's post handler, and the read handler while more is to come */

static void
ngx_http_bulletdrop_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_bulletdrop_ctx_t     *ctx;
    ngx_http_bulletdrop_reader_t  *b;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    b = ctx->reader;

    /* a body read before (a subrequest's, a mirror's) is not ours to take */
    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r,
            ngx_http_bulletdrop_answer(r, NGX_HTTP_INTERNAL_SERVER_ERROR));
        return;
    }

    for ( ;; ) {
        rc = ngx_http_bulletdrop_body_take(r, ctx, b);

        if (rc != NGX_OK) {
            /* refused mid-body: the rest is not read, the connection ends */
            ngx_http_finalize_request(r, rc == NGX_DECLINED
                                   ? ngx_http_bulletdrop_error_send(r, ctx)
                                   : ngx_http_bulletdrop_answer(r,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR));
            return;
        }

        if (!r->reading_body) {
            break;
        }

        rc = ngx_http_read_unbuffered_request_body(r);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_http_finalize_request(r, ngx_http_bulletdrop_answer(r, rc));
            return;
        }

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, ngx_http_bulletdrop_answer(r,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR));
            return;
        }

        if (rc == NGX_AGAIN && r->request_body->bufs == NULL) {
            r->read_event_handler = ngx_http_bulletdrop_body_handler;
            return;
        }
    }

    r->read_event_handler = ngx_http_block_reading;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop body: all read");

    ngx_http_finalize_request(r, ngx_http_bulletdrop_answer(r,
                                                       b->done(r, ctx)));
}


/* hands what nginx has read to the chunk handler, and frees its buffers */

static ngx_int_t
ngx_http_bulletdrop_body_take(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b)
{
    size_t        size;
    ngx_int_t     rc;
    ngx_buf_t    *buf;
    ngx_chain_t  *cl, *next;

    /*
     * nginx's save filter allocates a link per read from the request's
     * pool: they go back to its free list, or an upload would grow by one
     * for every read of its body
     */
    for (cl = r->request_body->bufs; cl; cl = next) {
        next = cl->next;
        buf = cl->buf;
        size = buf->last - buf->pos;

        if (size) {
            rc = b->chunk(r, ctx, buf->pos, size);
            if (rc != NGX_OK) {
                r->request_body->bufs = cl;
                return rc;
            }
        }

        buf->pos = buf->last;
        r->request_body->bufs = next;
        ngx_free_chain(r->pool, cl);
    }

    return NGX_OK;
}


/* a small body: kept whole, up to its limit */

static ngx_int_t
ngx_http_bulletdrop_body_keep(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n)
{
    ngx_http_bulletdrop_reader_t  *b;

    b = ctx->reader;

    if (n > (size_t) (b->end - b->last)) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_BODY_TOO_LARGE,
                                         NGX_HTTP_BULLETDROP_BODY_TOO_LARGE);
    }

    b->last = ngx_cpymem(b->last, p, n);

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulletdrop_body_kept(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_reader_t  *b;

    b = ctx->reader;
    ctx->reader = NULL;

    if (ngx_http_bulletdrop_body_parse(r, ctx, b) != NGX_OK) {
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    return b->next(r, ctx);
}


/* NGX_OK, or NGX_ERROR with the refusal recorded in ctx */

static ngx_int_t
ngx_http_bulletdrop_body_parse(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b)
{
    u_char              *detail;
    json_t              *json;
    json_error_t         err;
    ngx_pool_cleanup_t  *cln;

    if (b->last == b->start
        && ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_OPTIONAL)
    {
        return NGX_OK;
    }

    if (b->form) {
        ctx->body_form = 1;
        return ngx_http_bulletdrop_body_form(r, ctx, b);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return ngx_http_bulletdrop_body_oom(ctx);
    }

    /*
     * jansson refuses invalid UTF-8 and, asked, duplicate keys.  A NUL in
     * a string is let through, for each field's own rule to refuse with a
     * clearer word (names) or to take as a byte (passwords): strings are
     * used with their lengths, never as C strings.
     */
    json = json_loadb((const char *) b->start, b->last - b->start,
                      JSON_REJECT_DUPLICATES|JSON_ALLOW_NUL, &err);

    if (json == NULL) {
        /* where, not what: jansson's text quotes the body, passwords too */
        detail = ngx_pnalloc(r->pool, 64 + 3 * NGX_INT_T_LEN);
        if (detail != NULL) {
            (void) ngx_sprintf(detail, "malformed JSON at line %d, column %d "
                               "(byte %d)%Z",
                               err.line, err.column, err.position);
        }

        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_JSON,
                                         (char *) detail);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_body_cleanup;
    cln->data = json;

    if (!json_is_object(json)) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_JSON,
                                         "the body must be a JSON object");
        return NGX_ERROR;
    }

    ctx->body = json;

    return NGX_OK;
}


/* a form becomes an object of strings, so routes see one shape */

static ngx_int_t
ngx_http_bulletdrop_body_form(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_reader_t *b)
{
    int                  rc;
    char                *name, *value;
    size_t               nlen, vlen, len;
    json_t              *obj, *str;
    const char          *p, *end;
    ngx_pool_cleanup_t  *cln;

    len = b->last - b->start;

    name = ngx_pnalloc(r->pool, len + 1);
    value = ngx_pnalloc(r->pool, len + 1);
    cln = ngx_pool_cleanup_add(r->pool, 0);
    obj = json_object();

    if (name == NULL || value == NULL || cln == NULL || obj == NULL) {
        json_decref(obj);
        return ngx_http_bulletdrop_body_oom(ctx);
    }

    cln->handler = ngx_http_bulletdrop_body_cleanup;
    cln->data = obj;

    p = (const char *) b->start;
    end = (const char *) b->last;

    while ((rc = bd_form_next(&p, end, name, &nlen, value, &vlen)) == 1) {

        if (!bd_utf8_valid(name, nlen) || !bd_utf8_valid(value, vlen)
            || ngx_strlchr((u_char *) name, (u_char *) name + nlen, '\0'))
        {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_FORM,
                                             "the form is not UTF-8 text");
            return NGX_ERROR;
        }

        name[nlen] = '\0';

        if (json_object_get(obj, name) != NULL) {
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_FORM,
                                             "a field is given twice");
            return NGX_ERROR;
        }

        str = json_stringn(value, vlen);

        if (str == NULL || json_object_set_new(obj, name, str) != 0) {
            return ngx_http_bulletdrop_body_oom(ctx);
        }
    }

    if (rc < 0) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_FORM,
                                         "a malformed %-escape in the form");
        return NGX_ERROR;
    }

    ctx->body = obj;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulletdrop_body_oom(ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL, "out of memory");
    return NGX_ERROR;
}


/* the media type, parameters such as "; charset=utf-8" aside */

static ngx_int_t
ngx_http_bulletdrop_body_type(ngx_http_request_t *r, const char *type)
{
    size_t      len;
    ngx_str_t  *value;

    value = &r->headers_in.content_type->value;
    len = ngx_strlen(type);

    if (value->len < len
        || ngx_strncasecmp(value->data, (u_char *) type, len) != 0)
    {
        return 0;
    }

    return value->len == len || value->data[len] == ';'
           || value->data[len] == ' ' || value->data[len] == '\t';
}


static void
ngx_http_bulletdrop_body_cleanup(void *data)
{
    json_decref(data);
}


ngx_int_t
ngx_http_bulletdrop_body_fields(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_field_t *fields,
    json_t **values, ngx_uint_t *present)
{
    size_t                      len;
    u_char                     *detail;
    json_t                     *v;
    ngx_int_t                   ok;
    ngx_uint_t                  i, n, known;
    const char                 *key;
    ngx_http_bulletdrop_err_e   err;

    err = BD_ERR_NONE;
    detail = ngx_pnalloc(r->pool, 256);
    if (detail == NULL) {
        return ngx_http_bulletdrop_body_oom(ctx);
    }

    for (i = 0; fields[i].name; i++) {
        v = ctx->body ? json_object_get(ctx->body, fields[i].name) : NULL;

        values[i] = NULL;
        if (present) {
            present[i] = (v != NULL);
        }

        if (v == NULL) {
            if (fields[i].required) {
                err = BD_ERR_MISSING_FIELD;
                (void) ngx_snprintf(detail, 255, "the field \"%s\" is "
                                    "required%Z", fields[i].name);
                break;
            }

            continue;
        }

        if (json_is_null(v) && fields[i].nullable) {
            continue;
        }

        switch (fields[i].type) {
        case NGX_HTTP_BULLETDROP_FIELD_INTEGER:
            ok = json_is_integer(v);
            break;
        case NGX_HTTP_BULLETDROP_FIELD_BOOLEAN:
            ok = json_is_boolean(v);

            /* a form has only strings: "true" and "false" */
            if (!ok && ctx->body_form && json_is_string(v)) {
                if (ngx_strcmp(json_string_value(v), "true") == 0) {
                    v = json_true();
                    ok = 1;

                } else if (ngx_strcmp(json_string_value(v), "false") == 0) {
                    v = json_false();
                    ok = 1;
                }
            }

            break;
        default:
            ok = json_is_string(v);
            break;
        }

        if (!ok) {
            err = BD_ERR_WRONG_TYPE;
            (void) ngx_snprintf(detail, 255, "the field \"%s\" must be %s%Z",
                                fields[i].name,
                                fields[i].type
                                    == NGX_HTTP_BULLETDROP_FIELD_INTEGER
                                ? "an integer"
                                : fields[i].type
                                    == NGX_HTTP_BULLETDROP_FIELD_BOOLEAN
                                ? "true or false" : "a string");
            break;
        }

        values[i] = v;
    }

    n = i;

    if (err == BD_ERR_NONE && ctx->body) {
        json_object_foreach(ctx->body, key, v) {
            known = 0;

            for (i = 0; i < n; i++) {
                if (ngx_strcmp(key, fields[i].name) == 0) {
                    known = 1;
                    break;
                }
            }

            if (!known) {
                err = BD_ERR_UNKNOWN_FIELD;

                /* the client's name, cut to 64 bytes on a UTF-8 boundary */
                len = ngx_strlen(key);
                if (len > 64) {
                    len = 64;
                    while (len && (key[len] & 0xc0) == 0x80) {
                        len--;
                    }
                }

                (void) ngx_snprintf(detail, 255, "unknown field \"%*s\"%Z",
                                    len, key);
                break;
            }
        }
    }

    if (err == BD_ERR_NONE) {
        return NGX_OK;
    }

    return ngx_http_bulletdrop_error_record(ctx, err, (char *) detail);
}
