/*
 * BulletDrop: password hashing and checking on nginx's thread pool.
 *
 * scrypt takes tens of milliseconds and 32 MiB by design; on the event
 * loop it would stall every connection of the worker.  The job's inputs
 * are copied into memory of its own, since the request (and its pool)
 * may be gone before the thread is done: the job is freed when its
 * completion event runs.
 */

#include <openssl/crypto.h>

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_job.h"
#include "ngx_http_bulletdrop_password.h"


/* how long a job may keep a worker that is shutting down */
#define NGX_HTTP_BULLETDROP_PASSWORD_HOLD  60000


#if (NGX_THREADS)

typedef struct {
    ngx_http_bulletdrop_job_t              job;

    ngx_http_bulletdrop_password_t        *pw;
    ngx_http_bulletdrop_password_done_pt   done;

    /* the thread's own copies: check, stored and plain, one after another */
    u_char                                *check;
    size_t                                 check_len;
    char                                  *stored;
    u_char                                *plain;
    size_t                                 plain_len;
    unsigned                               do_check:1;
    unsigned                               do_hash:1;

    int                                    matched;
    int                                    hashed;
    char                                   hash[BD_PASSWORD_HASH_MAX];
    size_t                                 size;
} ngx_http_bulletdrop_password_job_t;


static void ngx_http_bulletdrop_password_thread(void *data, ngx_log_t *log);
static void ngx_http_bulletdrop_password_event(ngx_event_t *ev);

#endif


ngx_int_t
ngx_http_bulletdrop_password_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw,
    ngx_http_bulletdrop_password_done_pt done)
{
#if (NGX_THREADS)
    u_char                              *p;
    size_t                               size, stored_len;
    ngx_int_t                            rc;
    ngx_http_bulletdrop_main_conf_t     *bmcf;
    ngx_http_bulletdrop_password_job_t  *job;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    stored_len = pw->stored ? ngx_strlen(pw->stored) : 0;
    size = sizeof(ngx_http_bulletdrop_password_job_t)
           + pw->check.len + stored_len + 1 + pw->plain.len;

    job = ngx_calloc(size, r->connection->log);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    job->size = size;
    p = (u_char *) (job + 1);

    /* copies of what is there: a job may have no check or no plain */
    job->check = p;
    job->check_len = pw->check.len;
    if (pw->check.len) {
        p = ngx_cpymem(p, pw->check.data, pw->check.len);
    }

    job->stored = pw->stored ? (char *) p : NULL;
    if (stored_len) {
        p = ngx_cpymem(p, pw->stored, stored_len);
    }
    *p++ = '\0';

    job->plain = p;
    job->plain_len = pw->plain.len;
    if (pw->plain.len) {
        ngx_memcpy(p, pw->plain.data, pw->plain.len);
    }

    job->do_check = pw->do_check;
    job->do_hash = pw->do_hash;
    job->pw = pw;
    job->done = done;

    job->job.what = pw->do_check ? "a password check" : "a password hash";
    job->job.kind = BD_JOB_PASSWORD;
    job->job.task.handler = ngx_http_bulletdrop_password_thread;
    job->job.task.event.handler = ngx_http_bulletdrop_password_event;

    rc = ngx_http_bulletdrop_watch_client(r);

    if (rc == NGX_OK) {
        rc = ngx_http_bulletdrop_job_post(r, &job->job, bmcf->thread_pool,
                                          NGX_HTTP_BULLETDROP_PASSWORD_HOLD);
    }

    if (rc != NGX_OK) {
        OPENSSL_cleanse(job, size);
        ngx_free(job);

        /* a full queue: tell the client to come back, not to give up */
        return rc == NGX_DECLINED ? NGX_HTTP_SERVICE_UNAVAILABLE
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;

#else

    return NGX_HTTP_INTERNAL_SERVER_ERROR;

#endif
}


#if (NGX_THREADS)

static void
ngx_http_bulletdrop_password_thread(void *data, ngx_log_t *log)
{
    ngx_http_bulletdrop_password_job_t  *job = data;

    /* nobody waits for a job whose request has gone: skip the work */
    if (job->job.orphaned) {
        return;
    }

    if (job->do_check) {
        if (job->stored) {
            job->matched = (bd_password_verify((char *) job->check,
                                               job->check_len, job->stored)
                            == 1);

        } else {
            /* a user that does not exist costs what a wrong password does */
            bd_password_dummy((char *) job->check, job->check_len);
            job->matched = 0;
        }
    }

    if (job->do_hash && !job->job.orphaned) {
        job->hashed = (bd_password_hash((char *) job->plain, job->plain_len,
                                        NULL, job->hash)
                       == 0);
    }
}


static void
ngx_http_bulletdrop_password_event(ngx_event_t *ev)
{
    ngx_http_request_t                    *r;
    ngx_http_bulletdrop_password_t        *pw;
    ngx_http_bulletdrop_password_job_t    *job;
    ngx_http_bulletdrop_password_done_pt   done;

    job = ev->data;
    r = ngx_http_bulletdrop_job_back(&job->job);
    pw = job->pw;
    done = job->done;

    if (r) {
        pw->matched = job->matched ? 1 : 0;

        if (job->do_hash && job->hashed) {
            ngx_memcpy(pw->hash, job->hash, BD_PASSWORD_HASH_MAX);

        } else {
            pw->hash[0] = '\0';
        }
    }

    OPENSSL_cleanse(job, job->size);
    ngx_free(job);

    if (r) {
        done(r, pw);
    }
}

#endif
