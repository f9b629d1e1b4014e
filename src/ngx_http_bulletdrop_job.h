/*
 * BulletDrop: a request's work on nginx's thread pool.
 *
 * A job may come back after its request is gone (the client left): the
 * job then owns whatever it holds, and its events log to the cycle's log,
 * since the request's log lived in the connection's pool.
 */

#ifndef _NGX_HTTP_BULLETDROP_JOB_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_JOB_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "ngx_http_bulletdrop_metrics.h"


#if (NGX_THREADS)

/* the first member of each kind of job */
typedef struct {
    ngx_thread_task_t               task;
    /* keeps a worker that shuts down gracefully until the job is back */
    ngx_event_t                     hold;
    /* what the job does, for the log: "a password check" */
    const char                     *what;
    /* and for the metrics */
    ngx_http_bulletdrop_job_kind_e  kind;

    /* NULL once the request has gone */
    ngx_http_request_t             *request;
    ngx_pool_cleanup_t             *cleanup;
    /* set by the event loop when the request goes; read by the thread */
    ngx_atomic_t                    orphaned;
} ngx_http_bulletdrop_job_t;


/*
 * Posts the job of r (task.handler and task.event.handler set); the
 * request waits for it (r->main->count).  NGX_OK; NGX_DECLINED when the
 * pool's queue is full; NGX_ERROR.  Until NGX_OK the caller owns the job.
 */
ngx_int_t ngx_http_bulletdrop_job_post(ngx_http_request_t *r,
    ngx_http_bulletdrop_job_t *job, ngx_thread_pool_t *tp,
    ngx_msec_t hold);

/*
 * In the job's completion event: the request, or NULL when it has gone
 * (the job is the caller's to free either way)
 */
ngx_http_request_t *ngx_http_bulletdrop_job_back(
    ngx_http_bulletdrop_job_t *job);

#endif


#endif /* _NGX_HTTP_BULLETDROP_JOB_H_INCLUDED_ */
