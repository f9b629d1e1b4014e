/*
 * BulletDrop: JSON answers.
 */

#ifndef _NGX_HTTP_BULLETDROP_JSON_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>


/* sends json (and drops the reference); returns what a handler returns */
ngx_int_t ngx_http_bulletdrop_json_send(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);

/*
 * json as a buffer of the request's pool, ready for send_buf() (and the
 * reference dropped); NULL on failure
 */
ngx_buf_t *ngx_http_bulletdrop_json_buf(ngx_http_request_t *r,
    json_t *json);

/*
 * b as the whole answer, of type (type_len: its part before parameters),
 * with "Cache-Control: no-store"
 */
ngx_int_t ngx_http_bulletdrop_send_buf(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, size_t type_len, ngx_buf_t *b);

/* one more header of the answer, of len bytes; key and value outlive it */
ngx_int_t ngx_http_bulletdrop_header_out(ngx_http_request_t *r,
    const char *key, const char *value, size_t len);

/* an answer of 204 No Content, with the headers set so far */
ngx_int_t ngx_http_bulletdrop_no_content(ngx_http_request_t *r);

/* {"error": error, "detail": detail} */
ngx_int_t ngx_http_bulletdrop_json_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *detail);


/* "Cache-Control: no-store": an answer for this request only */
ngx_int_t ngx_http_bulletdrop_no_store(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULLETDROP_JSON_H_INCLUDED_ */
