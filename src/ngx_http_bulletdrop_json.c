/*
 * BulletDrop: JSON answers.
 */

#include "ngx_http_bulletdrop_json.h"


ngx_int_t
ngx_http_bulletdrop_json_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    ngx_buf_t  *b;

    b = ngx_http_bulletdrop_json_buf(r, json);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_send_buf(r, status, "application/json",
                                        sizeof("application/json") - 1, b);
}


ngx_buf_t *
ngx_http_bulletdrop_json_buf(ngx_http_request_t *r, json_t *json)
{
    size_t      len;
    ngx_buf_t  *b;

    if (json == NULL) {
        return NULL;
    }

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);

    /* one more byte: a trailing newline keeps terminals tidy */
    b = len ? ngx_create_temp_buf(r->pool, len + 1) : NULL;

    if (b == NULL || json_dumpb(json, (char *) b->last, len, JSON_COMPACT)
                     != len)
    {
        json_decref(json);
        return NULL;
    }

    json_decref(json);

    b->last += len;
    *b->last++ = '\n';

    return b;
}


/*
 * b, the whole answer, of type (type_len: the part before its
 * parameters, for nginx's charset); answers here are about this moment,
 * or hold a secret: nobody should cache them
 */

ngx_int_t
ngx_http_bulletdrop_send_buf(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, size_t type_len, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    /*
     * An answer while the body is still coming (a refusal mid-body): what
     * follows on the connection cannot be told from a next request.  It
     * closes, says so, and lingers so that the client reads the answer.
     */
    if (r->reading_body) {
        r->keepalive = 0;
        r->lingering_close = 1;
    }

    if (ngx_http_bulletdrop_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = type_len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_bulletdrop_json_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *detail)
{
    json_t  *json;

    json = json_pack("{s:s, s:s}", "error", error, "detail", detail);

    /* a detail quoting the client's bytes may not be UTF-8: drop it */
    if (json == NULL) {
        json = json_pack("{s:s, s:s}", "error", error,
                         "detail", "(the detail is not printable)");
    }

    return ngx_http_bulletdrop_json_send(r, status, json);
}


/* one more header of the answer; key and value must outlive it */

ngx_int_t
ngx_http_bulletdrop_header_out(ngx_http_request_t *r, const char *key,
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


ngx_int_t
ngx_http_bulletdrop_no_content(ngx_http_request_t *r)
{
    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_bulletdrop_no_store(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return NGX_OK;
}
