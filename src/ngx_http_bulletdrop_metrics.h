/*
 * BulletDrop: counters of every worker in one shared memory zone, served
 * in Prometheus' text format by "bulletdrop_metrics".
 *
 * Counting is an atomic add on a counter of the zone; a worker's gauges
 * (its database connections) are in a slot of its own.  Before the
 * zone is mapped (the master, a configuration test) counting does nothing.
 */

#ifndef _NGX_HTTP_BULLETDROP_METRICS_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_METRICS_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* what a refused credential was: bulletdrop_auth_failures_total{kind} */
typedef enum {
    BD_AUTH_FAILED_PASSWORD = 0,
    BD_AUTH_FAILED_TOKEN,
    BD_AUTH_FAILED_API_KEY,
    BD_AUTH_FAILED_SESSION,
    BD_AUTH_FAILED_EXPIRED,
    BD_AUTH_FAILED_INVITE,
    BD_AUTH_FAILED_KINDS
} ngx_http_bulletdrop_auth_failed_e;

/* the counters without labels that several files add to */
typedef enum {
    BD_METRIC_LOGIN_LIMITED = 0,
    BD_METRIC_VIEWS_EXHAUSTED,
    BD_METRIC_SWEEP_REMOVED,
    BD_METRIC_DB_RECONNECTS,
    BD_METRIC_COUNTERS
} ngx_http_bulletdrop_metric_e;

/* the jobs of the thread pool: bulletdrop_thread_jobs_total{job} */
typedef enum {
    BD_JOB_PASSWORD = 0,
    BD_JOB_FSYNC,
    BD_JOB_KINDS
} ngx_http_bulletdrop_job_kind_e;

typedef enum {
    BD_JOB_POSTED = 0,
    BD_JOB_REFUSED,
    BD_JOB_DONE
} ngx_http_bulletdrop_job_event_e;

/* a worker's database connections by state: bulletdrop_db_connections */
typedef enum {
    BD_DB_CLOSED = 0,
    BD_DB_CONNECTING,
    BD_DB_IDLE,
    BD_DB_BUSY,
    BD_DB_STATES
} ngx_http_bulletdrop_metrics_db_e;


/* configuration: the zone, the log phase, the directive */
char *ngx_http_bulletdrop_metrics_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_main_conf_t *bmcf);
ngx_int_t ngx_http_bulletdrop_metrics_postconf(ngx_conf_t *cf);
char *ngx_http_bulletdrop_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_bulletdrop_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);
void ngx_http_bulletdrop_metrics_exit_process(void);

void ngx_http_bulletdrop_metrics_auth_failed(
    ngx_http_bulletdrop_auth_failed_e kind);
void ngx_http_bulletdrop_metrics_add(ngx_http_bulletdrop_metric_e counter,
    ngx_uint_t n);
void ngx_http_bulletdrop_metrics_job(ngx_http_bulletdrop_job_kind_e kind,
    ngx_http_bulletdrop_job_event_e event);

/* the database pool of this worker (db.c) */
void ngx_http_bulletdrop_metrics_db_pool(ngx_uint_t *conns,
    ngx_uint_t waiting);
void ngx_http_bulletdrop_metrics_db_query(ngx_msec_t ms, ngx_uint_t timeout);


#endif /* _NGX_HTTP_BULLETDROP_METRICS_H_INCLUDED_ */
