/*
 * BulletDrop: request bodies, read as they stream: small ones (JSON
 * objects and forms) kept whole up to a limit and parsed, uploads handed
 * to a chunk handler as they arrive.
 */

#ifndef _NGX_HTTP_BULLETDROP_BODY_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_BODY_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


#define NGX_HTTP_BULLETDROP_BODY_NONE      0
/* a JSON object */
#define NGX_HTTP_BULLETDROP_BODY_JSON      1
/* a JSON object or an application/x-www-form-urlencoded form */
#define NGX_HTTP_BULLETDROP_BODY_FORM      2
/* a JSON object, or no body at all */
#define NGX_HTTP_BULLETDROP_BODY_OPTIONAL  3
/* the route reads the body itself (ngx_http_bulletdrop_body_stream()) */
#define NGX_HTTP_BULLETDROP_BODY_STREAM    4

/* no account route needs more; a password escaped as \uXXXX fits */
#define NGX_HTTP_BULLETDROP_BODY_MAX       16384
#define NGX_HTTP_BULLETDROP_BODY_MAX_TEXT  "16384"


/*
 * Reads the body as ctx->body_kind says into ctx->body (a form becomes an
 * object of strings), then runs next.  Returns what a content handler
 * returns.
 */
ngx_int_t ngx_http_bulletdrop_body_read(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_step_pt next);


/*
 * Takes a part of the body: NGX_OK, or NGX_DECLINED with a refusal
 * recorded in ctx (it is sent at once and the rest of the body is not
 * read), or NGX_ERROR.
 */
typedef ngx_int_t (*ngx_http_bulletdrop_chunk_pt)(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);

/*
 * Reads the body as it arrives, whatever its size, giving each part of it
 * to chunk, then runs done.  Returns what a content handler returns.
 */
ngx_int_t ngx_http_bulletdrop_body_stream(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_chunk_pt chunk,
    ngx_http_bulletdrop_step_pt done);


#define NGX_HTTP_BULLETDROP_FIELD_STRING   0
#define NGX_HTTP_BULLETDROP_FIELD_INTEGER  1
#define NGX_HTTP_BULLETDROP_FIELD_BOOLEAN  2

typedef struct {
    const char                     *name;
    ngx_uint_t                      type;
    unsigned                        required:1;
    /* JSON null is taken (and gives a NULL value) */
    unsigned                        nullable:1;
} ngx_http_bulletdrop_field_t;


/*
 * Checks ctx->body against the fields (a NULL name ends the list): every
 * required one present, each of its type, no other.  values[i] receives
 * the i-th field's value or NULL; present[i] (when not NULL) whether the
 * field was given at all.  Returns NGX_OK, or NGX_DECLINED with a 422
 * refusal recorded in ctx.
 */
ngx_int_t ngx_http_bulletdrop_body_fields(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_field_t *fields,
    json_t **values, ngx_uint_t *present);


#endif /* _NGX_HTTP_BULLETDROP_BODY_H_INCLUDED_ */
