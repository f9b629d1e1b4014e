/*
 * BulletDrop: a per-worker pool of non-blocking PostgreSQL connections
 * driven by nginx's event loop.
 *
 * A caller creates a query on a pool (usually the request's), sets its
 * text parameters and runs it.  The handler is then called exactly once,
 * from nginx's posted events and never from inside the caller, with the
 * result or with the reason there is none; the result is cleared after the
 * handler returns.  If the pool that holds the query is destroyed first
 * (the client went away), the query is abandoned: taken off the wait queue,
 * or left to drain on its connection, and the handler is never called.
 */

#ifndef _NGX_HTTP_BULLETDROP_DB_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_DB_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <libpq-fe.h>


/* q->status when the handler is called */
#define NGX_HTTP_BULLETDROP_DB_OK           0  /* res is the result */
#define NGX_HTTP_BULLETDROP_DB_TIMEOUT      1  /* deadline passed */
#define NGX_HTTP_BULLETDROP_DB_UNAVAILABLE  2  /* no connection is up */
#define NGX_HTTP_BULLETDROP_DB_BUSY         3  /* the wait queue is full */
#define NGX_HTTP_BULLETDROP_DB_LOST         4  /* connection broke mid-query */


typedef struct ngx_http_bulletdrop_db_pool_s   ngx_http_bulletdrop_db_pool_t;
typedef struct ngx_http_bulletdrop_db_conn_s   ngx_http_bulletdrop_db_conn_t;
typedef struct ngx_http_bulletdrop_db_query_s  ngx_http_bulletdrop_db_query_t;

typedef void (*ngx_http_bulletdrop_db_handler_pt)(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);

/*
 * What the module hears on the "bulletdrop" channel: the payload names
 * what changed; NULL when anything may have (the listening connection was
 * down for a while).
 */
typedef void (*ngx_http_bulletdrop_db_notify_pt)(ngx_log_t *log,
    const char *payload);


typedef struct {
    /* keyword/value pairs from bulletdrop_db, host names resolved */
    ngx_array_t                        *options;

    /* what PQconnectStartParams() gets, NULL-terminated */
    const char                        **keywords;
    const char                        **values;

    ngx_int_t                           pool_size;
    ngx_msec_t                          timeout;
    ngx_int_t                           queue_size;

    /* set: the first connection of each worker listens for changes */
    ngx_http_bulletdrop_db_notify_pt    notify;

    /* this worker's pool, created in init_process */
    ngx_http_bulletdrop_db_pool_t      *pool;
} ngx_http_bulletdrop_db_conf_t;


struct ngx_http_bulletdrop_db_query_s {
    /* set by the caller */
    ngx_uint_t                          stmt;
    const char                        **params;
    ngx_http_bulletdrop_db_handler_pt   handler;
    void                               *data;

    /* set before the handler is called */
    ngx_int_t                           status;

    /* private to the pool */
    ngx_http_bulletdrop_db_pool_t      *db;
    ngx_pool_t                         *pool;
    ngx_http_bulletdrop_db_conn_t      *conn;
    PGresult                           *result;
    ngx_event_t                         event;
    ngx_queue_t                         queue;
    ngx_msec_t                          deadline;
    ngx_uint_t                          retries;
    unsigned                            waiting:1;
    unsigned                            finished:1;
};


char *ngx_http_bulletdrop_db_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_bulletdrop_db_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_db_conf_t *dbcf);
ngx_int_t ngx_http_bulletdrop_db_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_db_conf_t *dbcf);
void ngx_http_bulletdrop_db_exit_process(ngx_http_bulletdrop_db_conf_t *dbcf);

ngx_http_bulletdrop_db_query_t *ngx_http_bulletdrop_db_query_create(
    ngx_http_bulletdrop_db_pool_t *dbp, ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t stmt);
ngx_int_t ngx_http_bulletdrop_db_param(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t n, ngx_str_t *value);
void ngx_http_bulletdrop_db_run(ngx_http_bulletdrop_db_query_t *q);

const char *ngx_http_bulletdrop_db_status_text(ngx_int_t status);

/* the first line of a libpq message, for a log line: it points into it */
ngx_str_t ngx_http_bulletdrop_db_line(const char *message);

/*
 * NGX_OK when the query ran and its result is of the status wanted; else
 * NGX_ERROR, logged as "bulletdrop: <what>: <why>"
 */
ngx_int_t ngx_http_bulletdrop_db_check(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, ExecStatusType want, ngx_log_t *log, const char *what);


/*
 * Reading a result, row by row and by the column enums of sql.h: the
 * only place that parses what PostgreSQL sends as text.  The result is
 * cleared once its handler returns, so what must outlive the handler is
 * copied (db_str); what is used within it may point into the result
 * (db_ref, db_text).  None of them checks row or col: the caller checked
 * PQntuples() and PQnfields().
 */

/* 1 when the value is SQL NULL */
ngx_uint_t ngx_http_bulletdrop_db_null(PGresult *res, int row, int col);

/*
 * An integer column (smallint, integer, bigint): its value, which is
 * >= 0 in every column we read; -1 for SQL NULL and for anything but
 * decimal digits that fit in an int64_t (a sign, a fraction, an empty
 * value).  A column where NULL means something (no quota, no limit) is
 * told from a broken one with db_null().
 */
int64_t ngx_http_bulletdrop_db_int(PGresult *res, int row, int col);

/*
 * A double precision column of epoch seconds, as milliseconds (rounded
 * down); -1 for SQL NULL and for anything that is not a number >= 0.
 */
int64_t ngx_http_bulletdrop_db_msec(PGresult *res, int row, int col);

/* a boolean column: 1 for true; 0 for false and for SQL NULL */
ngx_uint_t ngx_http_bulletdrop_db_bool(PGresult *res, int row, int col);

/*
 * A text column copied into pool, followed by a '\0' that len does not
 * count: it outlives the result.  data is NULL for SQL NULL.  NGX_ERROR:
 * out of memory.
 */
ngx_int_t ngx_http_bulletdrop_db_str(ngx_pool_t *pool, PGresult *res,
    int row, int col, ngx_str_t *s);

/*
 * The same, pointing into the result: valid until the handler returns,
 * and '\0'-terminated.  data is NULL for SQL NULL.
 */
void ngx_http_bulletdrop_db_ref(PGresult *res, int row, int col,
    ngx_str_t *s);

/*
 * A text column as a C string in the result, valid until the handler
 * returns; NULL for SQL NULL (where libpq itself gives "").
 */
const char *ngx_http_bulletdrop_db_text(PGresult *res, int row, int col);


#endif /* _NGX_HTTP_BULLETDROP_DB_H_INCLUDED_ */
