/*
 * BulletDrop: an upload's file put in place.  With bulletdrop_fsync on,
 * on the thread pool: the file is fsynced, put in place and its directory
 * fsynced, so that a row never outlives its file in a crash.  Then its row
 * is written (upload_commit.c).
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_upload_int.h"
#include "ngx_http_bulletdrop_job.h"


/* how long a thread job may keep a worker that is shutting down */
#define NGX_HTTP_BULLETDROP_JOB_HOLD          (3600 * 1000)


/*
 * The job owns a descriptor and the paths (tmp is NULL for an unnamed
 * file): the request may go first.
 */
#if (NGX_THREADS)
typedef struct {
    ngx_http_bulletdrop_job_t           job;
    ngx_fd_t                            fd;
    ngx_err_t                           err;
    const char                         *failed;
    u_char                             *tmp;
    u_char                             *path;
    u_char                             *dir;
    unsigned                            placed:1;
} ngx_http_bulletdrop_sync_t;


static void ngx_http_bulletdrop_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_bulletdrop_sync_event(ngx_event_t *ev);
#endif


/*
 * Gives the temp file its name: a named one is renamed, an unnamed one
 * linked through /proc (linkat() with AT_EMPTY_PATH would need a
 * capability that workers lack).  On the event loop or a thread; -1 and
 * errno on failure.
 */

int
ngx_http_bulletdrop_place(ngx_fd_t fd, u_char *tmp, u_char *path)
{
    char  proc[sizeof("/proc/self/fd/") + NGX_INT_T_LEN];

    if (tmp) {
        return rename((char *) tmp, (char *) path);
    }

    (void) ngx_sprintf((u_char *) proc, "/proc/self/fd/%d%Z", fd);

    return linkat(AT_FDCWD, proc, AT_FDCWD, (char *) path,
                  AT_SYMLINK_FOLLOW);
}


ngx_int_t
ngx_http_bulletdrop_upload_sync(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up)
{
    size_t                            dir;
    ngx_http_bulletdrop_main_conf_t  *bmcf;
#if (NGX_THREADS)
    u_char                           *p;
    ngx_int_t                         rc;
    ngx_http_bulletdrop_sync_t       *job;
#endif

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    if (bmcf->s3) {
        return ngx_http_bulletdrop_upload_store(r, up);
    }

    dir = bmcf->upload_dir.len + 1 + ngx_strlen(up->category);

    up->path.len = dir + 1 + BD_FILE_ID_LEN + 1 + ngx_strlen(up->ext);
    up->path.data = ngx_pnalloc(r->pool, up->path.len + 1);
    if (up->path.data == NULL) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    (void) ngx_sprintf(up->path.data, "%V/%s/%s.%s%Z", &bmcf->upload_dir,
                       up->category, up->id, up->ext);

    r->connection->log->action = "placing an upload";

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: placing \"%s\", fsync:%i",
                   up->path.data, bmcf->fsync);

#if (NGX_THREADS)

    if (!bmcf->fsync) {
        return ngx_http_bulletdrop_upload_commit(r,
                   ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));
    }

    /* fsync may take long: the thread pool waits for the disk, not us */
    job = ngx_calloc(sizeof(ngx_http_bulletdrop_sync_t)
                     + (up->unnamed ? 0 : up->tmp.len + 1)
                     + 2 * (up->path.len + 1), r->connection->log);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = (u_char *) &job[1];

    if (!up->unnamed) {
        job->tmp = p;
        p = ngx_cpymem(p, up->tmp.data, up->tmp.len + 1);
    }

    job->path = p;
    p = ngx_cpymem(p, up->path.data, up->path.len + 1);
    job->dir = p;
    *ngx_cpymem(p, up->path.data, dir) = '\0';

    job->fd = dup(up->fd);

    if (job->fd == -1) {
        ngx_free(job);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    job->job.what = "an upload's fsync()";
    job->job.kind = BD_JOB_FSYNC;
    job->job.task.handler = ngx_http_bulletdrop_sync_thread;
    job->job.task.event.handler = ngx_http_bulletdrop_sync_event;

    rc = ngx_http_bulletdrop_job_post(r, &job->job, bmcf->thread_pool,
                                      NGX_HTTP_BULLETDROP_JOB_HOLD);

    if (rc != NGX_OK) {
        (void) close(job->fd);
        ngx_free(job);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           rc == NGX_DECLINED
                                           ? NGX_HTTP_SERVICE_UNAVAILABLE
                                           : NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    /*
     * The body is in: a client leaving now saves nothing, and abandoning
     * would be one more way out to get right
     */
    r->read_event_handler = ngx_http_block_reading;

    return NGX_DONE;

#else

    return ngx_http_bulletdrop_upload_commit(r,
               ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));

#endif
}


#if (NGX_THREADS)


static void
ngx_http_bulletdrop_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_bulletdrop_sync_t  *job = data;

    int  dfd;

    if (fsync(job->fd) == -1) {
        job->err = ngx_errno;
        job->failed = "fsync()";
        return;
    }

    if (ngx_http_bulletdrop_place(job->fd, job->tmp, job->path) == -1) {
        job->err = ngx_errno;
        job->failed = job->tmp ? "rename()" : "linkat()";
        return;
    }

    job->placed = 1;

    /* the new name is durable once its directory is */
    dfd = open((char *) job->dir, O_RDONLY|O_DIRECTORY);

    if (dfd == -1 || fsync(dfd) == -1) {
        job->err = ngx_errno;
        job->failed = "fsync() of the directory";
    }

    if (dfd != -1) {
        (void) close(dfd);
    }
}


static void
ngx_http_bulletdrop_sync_event(ngx_event_t *ev)
{
    ngx_err_t                    err;
    ngx_http_request_t          *r;
    ngx_http_bulletdrop_ctx_t   *ctx;
    ngx_http_bulletdrop_sync_t  *job;

    job = ev->data;
    r = ngx_http_bulletdrop_job_back(&job->job);
    err = job->err;

    (void) close(job->fd);

    if (r == NULL) {
        /* its request is gone, and took the temp file: this is the rest */
        if (job->placed) {
            (void) ngx_delete_file(job->path);
        }

        ngx_free(job);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    ctx->upload->placed = job->placed;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, err,
                   "bulletdrop upload: the thread pool is back, placed:%ui, "
                   "%s failed", (ngx_uint_t) job->placed,
                   job->failed ? job->failed : "nothing");

    if (err) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, err,
                      "bulletdrop: %s failed for \"%s\"", job->failed,
                      job->path);
        ngx_free(job);
        ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_upload_fail(r,
                                          ctx->upload,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR));
        return;
    }

    ngx_free(job);

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_upload_commit(r, ctx));
}


#endif
