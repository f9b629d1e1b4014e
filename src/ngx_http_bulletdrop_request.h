/*
 * BulletDrop: what every handler of a request calls.
 *
 * A request flows one way: route -> authenticate -> read the body -> the
 * route's handler -> database and thread pool steps -> the answer.  Each
 * asynchronous step returns NGX_DONE and, when its work is done, runs the
 * next step and finishes the request with what that step returned.  A
 * step that refuses records an error (error.h) and returns NGX_DECLINED.
 */

#ifndef _NGX_HTTP_BULLETDROP_REQUEST_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_REQUEST_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "ngx_http_bulletdrop_error.h"


/*
 * bulletdrop_forwarded_proto: links say the scheme of X-Forwarded-Proto
 * when a proxy that realip believed sent it
 */
char *ngx_http_bulletdrop_forwarded_proto_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/*
 * A small regular file's text (at most 4096 bytes), read at configuration
 * by the master, for a secret: what the directive names, on failure
 */
char *ngx_http_bulletdrop_conf_read_secret(ngx_conf_t *cf,
    const char *directive, ngx_str_t *name, ngx_str_t *text);

/* 1: the client used https, by the connection or a believed proxy */
ngx_uint_t ngx_http_bulletdrop_https(ngx_http_request_t *r);

/* a query on the worker's pool whose handler gets q->data == r */
ngx_http_bulletdrop_db_query_t *ngx_http_bulletdrop_query(
    ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler);

/* sets the n-th parameter from a C string, or SQL NULL for NULL */
ngx_int_t ngx_http_bulletdrop_query_param(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t n, const char *value);

ngx_int_t ngx_http_bulletdrop_query_int(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t n, int64_t value);

/* runs the query; returns NGX_DONE (or an error status) */
ngx_int_t ngx_http_bulletdrop_query_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q);

/*
 * "http://host[:port]" as the client named this server, for links that
 * work as printed; NGX_DECLINED when the Host header is not a plain host
 * name or address (it would be reflected into links and scripts).
 */
ngx_int_t ngx_http_bulletdrop_base_url(ngx_http_request_t *r,
    ngx_str_t *url);

/* the digits of a port, at most */
#define NGX_HTTP_BULLETDROP_PORT_LEN  5

/*
 * "http://host:port" for another host of this server: the scheme and the
 * port of the request's (a checked base URL's Host), or none when the
 * Host's is not a port
 */
ngx_int_t ngx_http_bulletdrop_origin(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *url);

/*
 * In a query handler: whether the statement ran and PostgreSQL refused it
 * with that SQLSTATE ("23503": a foreign key), which the handler answers
 * itself before ngx_http_bulletdrop_query_done() makes it a 500
 */
ngx_uint_t ngx_http_bulletdrop_query_refused(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, const char *sqlstate);

/* the first request header of that name (case-insensitive); NULL: none */
ngx_table_elt_t *ngx_http_bulletdrop_header_in(ngx_http_request_t *r,
    const char *name, size_t len);

/* records the error of a request whose Host cannot make links */
ngx_int_t ngx_http_bulletdrop_bad_host(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/*
 * In a query handler: the request's ctx when the query ran and returned
 * rows; otherwise the failure is answered, the request finished, and NULL
 * returned.
 */
ngx_http_bulletdrop_ctx_t *ngx_http_bulletdrop_query_done(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
/* the same for r, when q->data is not r but the handler's own state */
ngx_http_bulletdrop_ctx_t *ngx_http_bulletdrop_query_done_for(
    ngx_http_request_t *r, ngx_http_bulletdrop_db_query_t *q, PGresult *res);

/* notices a client that leaves while the request waits (NGX_ERROR: failed) */
ngx_int_t ngx_http_bulletdrop_watch_client(ngx_http_request_t *r);

/*
 * NGX_OK when the query ran and its result has the status wanted;
 * otherwise logs why, records a 503 error in the request's ctx and
 * returns NGX_DECLINED.
 */
ngx_int_t ngx_http_bulletdrop_query_ok(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, ExecStatusType want);
/* the same for r, when the query is not r's alone (a batch) */
ngx_int_t ngx_http_bulletdrop_query_ok_for(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, ExecStatusType want);

/*
 * Finishes a request from an event handler with what a step returned
 * (through ngx_http_bulletdrop_answer()).
 */
void ngx_http_bulletdrop_finish(ngx_http_request_t *r, ngx_int_t rc);

/*
 * What a step returned, as the answer: a status nginx would answer in
 * HTML, or NGX_DECLINED with an error recorded, is answered in JSON
 */
ngx_int_t ngx_http_bulletdrop_answer(ngx_http_request_t *r, ngx_int_t rc);


#endif /* _NGX_HTTP_BULLETDROP_REQUEST_H_INCLUDED_ */
