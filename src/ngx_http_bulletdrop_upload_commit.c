/*
 * BulletDrop: an upload's row, and the answer.  The placed file's row
 * goes to commit.c, which writes the rows of the uploads that are ready
 * in one statement; its answer makes the 201 (or, for ShareX, what ShareX
 * reads), or says why no row was written, and the file goes with it.
 */

/* nginx's headers first: they ask the system's for _GNU_SOURCE */
#include "ngx_http_bulletdrop_upload_int.h"
#include "ngx_http_bulletdrop_authcache.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_known.h"
#include "ngx_http_bulletdrop_manage.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_deliver.h"


/* a parameter of bd_upload_insert, by its name in sql.h */
#define bd_arg(name)  f[NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_##name]


static void ngx_http_bulletdrop_upload_text(ngx_str_t *field,
    const char *text);
static ngx_int_t ngx_http_bulletdrop_upload_number(ngx_http_request_t *r,
    ngx_str_t *field, int64_t number);
static ngx_int_t ngx_http_bulletdrop_upload_msec(ngx_http_request_t *r,
    ngx_str_t *field, int64_t ms);
static void ngx_http_bulletdrop_upload_recorded(
    ngx_http_bulletdrop_commit_t *c, ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, int row);
static void ngx_http_bulletdrop_upload_refused(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *why);


/* the file takes its place, then its row is written */

ngx_int_t
ngx_http_bulletdrop_upload_commit(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    int64_t                           ms;
    ngx_str_t                        *f;
    ngx_time_t                       *tp;
    bd_deliver_type_t                 type;
    ngx_http_bulletdrop_upload_t     *up;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
    up = ctx->upload;

    /* placed already when the thread pool fsynced it (bulletdrop_fsync) */
    if (!up->placed) {
        /* 96 random bits: a name that is taken is not worth a check */
        if (ngx_http_bulletdrop_place(up->fd,
                                      up->unnamed ? NULL : up->tmp.data,
                                      up->path.data)
            == -1)
        {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          up->unnamed ? "bulletdrop: cannot link \"%s\" "
                                        "to a file in \"%s\""
                                      : "bulletdrop: cannot rename \"%s\" "
                                        "from \"%s\"",
                          up->path.data, up->tmp.data);
            return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        up->placed = 1;
    }

    if (ngx_close_file(up->fd) == NGX_FILE_ERROR) {
        up->fd = NGX_INVALID_FILE;
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "bulletdrop: cannot close \"%s\"", up->path.data);
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->fd = NGX_INVALID_FILE;

    r->connection->log->action = "recording an upload";

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: \"%s\" placed: its row goes",
                   up->path.data);

    /* a fifth of the timeout early, for the reply's way back */
    tp = ngx_timeofday();
    ms = (int64_t) tp->sec * 1000 + tp->msec
         + bmcf->db.timeout - bmcf->db.timeout / 5;

    up->commit.deadline = ngx_current_msec + bmcf->db.timeout
                          - bmcf->db.timeout / 5;

    f = up->commit.fields;

    ngx_http_bulletdrop_upload_text(&bd_arg(ID), up->id);
    ngx_http_bulletdrop_upload_text(&bd_arg(NAME), up->name);
    ngx_http_bulletdrop_upload_text(&bd_arg(EXT), up->ext);
    ngx_http_bulletdrop_upload_text(&bd_arg(CATEGORY), up->category);
    /* the type the file domains serve it with */
    bd_deliver_type(up->ext, ngx_strlen(up->ext), &type);
    ngx_http_bulletdrop_upload_text(&bd_arg(CONTENT_TYPE),
                                    type.content_type);
    ngx_http_bulletdrop_upload_text(&bd_arg(SHA256), up->sha256);
    ngx_http_bulletdrop_upload_text(&bd_arg(DELETE_HASH), up->delete_hash);

    if (ngx_http_bulletdrop_upload_number(r, &bd_arg(USER), ctx->user.id)
        != NGX_OK
        || ngx_http_bulletdrop_upload_number(r, &bd_arg(SIZE), up->size)
           != NGX_OK
        || ngx_http_bulletdrop_upload_msec(r, &bd_arg(DEADLINE), ms)
           != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    /* the API key's hash, or the token version; the other one NULL */
    if (ctx->api_key.len) {
        bd_arg(KEY) = ctx->cred;

    } else if (ngx_http_bulletdrop_upload_number(r, &bd_arg(VERSION),
                                                 ctx->user.token_version)
               != NGX_OK)
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (up->domain.data) {
        bd_arg(DOMAIN) = up->domain;
    }

    if ((up->expires
         && ngx_http_bulletdrop_upload_msec(r, &bd_arg(EXPIRES), up->expires)
            != NGX_OK)
        || (up->max_views
            && ngx_http_bulletdrop_upload_number(r, &bd_arg(MAX_VIEWS),
                                                 up->max_views)
               != NGX_OK))
    {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->commit.request = r;
    up->commit.done = ngx_http_bulletdrop_upload_recorded;

    /*
     * Not abandoned if the client leaves now: the row may be written
     * whatever happens here, and the file must stay with it
     */
    r->read_event_handler = ngx_http_block_reading;

    if (ngx_http_bulletdrop_commit(&up->commit) != NGX_OK) {
        return ngx_http_bulletdrop_upload_fail(r, up,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    up->inserting = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_bulletdrop_upload_text(ngx_str_t *field, const char *text)
{
    field->data = (u_char *) text;
    field->len = ngx_strlen(text);
}


static ngx_int_t
ngx_http_bulletdrop_upload_number(ngx_http_request_t *r, ngx_str_t *field,
    int64_t number)
{
    field->data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (field->data == NULL) {
        return NGX_ERROR;
    }

    field->len = ngx_sprintf(field->data, "%L", number) - field->data;

    return NGX_OK;
}


/* milliseconds since the epoch, as seconds with a fraction */

static ngx_int_t
ngx_http_bulletdrop_upload_msec(ngx_http_request_t *r, ngx_str_t *field,
    int64_t ms)
{
    field->data = ngx_pnalloc(r->pool, NGX_INT64_LEN + 5);
    if (field->data == NULL) {
        return NGX_ERROR;
    }

    field->len = ngx_sprintf(field->data, "%L.%03L", ms / 1000, ms % 1000)
                 - field->data;

    return NGX_OK;
}


static void
ngx_http_bulletdrop_upload_recorded(ngx_http_bulletdrop_commit_t *c,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, int row)
{
    json_t                        *json;
    const char                    *why;
    ngx_http_request_t            *r;
    ngx_http_bulletdrop_ctx_t     *ctx;
    ngx_http_bulletdrop_upload_t  *up;

    r = c->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    up = ctx->upload;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: row answered, status %i, row %d%s",
                   q ? q->status : -1, row, c->late ? ", late" : "");

    if (q == NULL) {
        /* never sent: nothing was written */
        up->inserting = 0;
        ngx_http_bulletdrop_upload_drop(up);

        if (c->late) {
            ngx_http_bulletdrop_upload_refused(r, ctx, "late");
            return;
        }

        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL,
                                             "the upload could not be "
                                             "recorded"));
        return;
    }

    /*
     * A statement whose connection broke once it was sent may have
     * committed: its file stays (a file without a row is the lesser harm,
     * and make fsck lists it).  One that timed out cannot commit later:
     * it carries its own deadline.
     */
    if (q->status != NGX_HTTP_BULLETDROP_DB_LOST) {
        up->inserting = 0;
    }

    if (ngx_http_bulletdrop_query_ok_for(r, q, res, PGRES_TUPLES_OK)
        != NGX_OK)
    {
        /* no row, no file */
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_finish(r, NGX_DECLINED);
        return;
    }

    if (row < 0) {
        /* the batch was written, but not as expected: the file stays */
        up->inserting = 1;
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL,
                                             "the database answered "
                                             "unexpectedly"));
        return;
    }

    /* says why no row was written */
    why = ngx_http_bulletdrop_db_text(res, row,
                                  NGX_HTTP_BULLETDROP_UPLOAD_INSERT_REFUSED);
    if (why) {
        ngx_http_bulletdrop_upload_drop(up);
        ngx_http_bulletdrop_upload_refused(r, ctx, why);
        return;
    }

    up->committed = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop upload: %s committed", up->id);

    if (up->expires || up->max_views) {
        ngx_http_bulletdrop_files_learn((u_char *) up->id, up->expires,
                                        up->max_views);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulletdrop: user #%L uploaded %s/%s.%s, %O bytes",
                  ctx->user.id, up->category, up->id, up->ext, up->size);

    json = ngx_http_bulletdrop_upload_json(r, res, row, &up->delete_token);

    if (json && up->sharex) {
        /* what ShareX reads, and no more */
        json_object_del(json, "name");
        json_object_del(json, "category");
        json_object_del(json, "content_type");
        json_object_del(json, "created_at");
        json_object_del(json, "expires_at");
        json_object_del(json, "max_views");
        json_object_del(json, "views");
        json_object_del(json, "domain");
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_CREATED, json));
}


/* what bd_upload_commit_batch() says when it writes no row */

static void
ngx_http_bulletdrop_upload_refused(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *why)
{
    if (ngx_strcmp(why, "quota") == 0) {
        /* uploads that finished meanwhile took what the quota left */
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_QUOTA_EXCEEDED, NULL));
        return;
    }

    if (ngx_strcmp(why, "late") == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_DATABASE_UNAVAILABLE,
                                             "the upload could not be "
                                             "recorded in time"));
        return;
    }

    /* changed while the body came: what this worker remembers is stale */
    ngx_http_bulletdrop_authcache_forget(&ctx->cred);

    if (ngx_strcmp(why, "disabled") == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_ACCOUNT_DISABLED,
                                             NULL));
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_TOKEN,
                                         "the token is not valid any more"));
}
