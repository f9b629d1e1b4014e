/*
 * BulletDrop: a request's work on nginx's thread pool.
 */

#include "ngx_http_bulletdrop_job.h"


#if (NGX_THREADS)

static void ngx_http_bulletdrop_job_hold(ngx_event_t *ev);
static void ngx_http_bulletdrop_job_orphan(void *data);


ngx_int_t
ngx_http_bulletdrop_job_post(ngx_http_request_t *r,
    ngx_http_bulletdrop_job_t *job, ngx_thread_pool_t *tp, ngx_msec_t hold)
{
    job->cleanup = ngx_pool_cleanup_add(r->pool, 0);
    if (job->cleanup == NULL) {
        return NGX_ERROR;
    }

    job->request = r;
    job->task.ctx = job;
    job->task.event.data = job;
    job->task.event.log = r->connection->log;

    if (ngx_thread_task_post(tp, &job->task) != NGX_OK) {
        ngx_http_bulletdrop_metrics_job(job->kind, BD_JOB_REFUSED);
        return NGX_DECLINED;
    }

    ngx_http_bulletdrop_metrics_job(job->kind, BD_JOB_POSTED);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop: %s posted as task #%ui",
                   job->what, job->task.id);

    job->cleanup->handler = ngx_http_bulletdrop_job_orphan;
    job->cleanup->data = job;

    job->hold.handler = ngx_http_bulletdrop_job_hold;
    job->hold.data = job;
    job->hold.log = r->connection->log;
    ngx_add_timer(&job->hold, hold);

    r->main->count++;

    return NGX_OK;
}


ngx_http_request_t *
ngx_http_bulletdrop_job_back(ngx_http_bulletdrop_job_t *job)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, job->task.event.log, 0,
                   "bulletdrop: %s, task #%ui, is back%s",
                   job->what, job->task.id,
                   job->request ? "" : " to no request");

    ngx_http_bulletdrop_metrics_job(job->kind, BD_JOB_DONE);

    if (job->hold.timer_set) {
        ngx_del_timer(&job->hold);
    }

    if (job->request) {
        job->cleanup->handler = NULL;
    }

    return job->request;
}


static void
ngx_http_bulletdrop_job_hold(ngx_event_t *ev)
{
    ngx_http_bulletdrop_job_t *job = ev->data;

    ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                  "bulletdrop: %s, task #%ui, has not returned in time",
                  job->what, job->task.id);
}


/* the request is being freed, and its connection's log with it */

static void
ngx_http_bulletdrop_job_orphan(void *data)
{
    ngx_http_bulletdrop_job_t *job = data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, job->task.event.log, 0,
                   "bulletdrop: %s, task #%ui, outlives its request",
                   job->what, job->task.id);

    job->request = NULL;
    job->task.event.log = ngx_cycle->log;
    job->hold.log = ngx_cycle->log;

    (void) ngx_atomic_cmp_set(&job->orphaned, 0, 1);
}

#endif
