/*
 * BulletDrop: managing a user's uploads once they are in: the list, one,
 * and deleting one.  The owner sees and deletes their own, an
 * administrator anyone's; someone else's upload is as absent as one that
 * never was.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_manage.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_file.h"


/* a column of the uploads' rows, by its name in sql.h */
#define bd_col(name)  NGX_HTTP_BULLETDROP_UPLOAD_##name


#define NGX_HTTP_BULLETDROP_PAGE_DEFAULT      50
#define NGX_HTTP_BULLETDROP_PAGE_MAX          200


static json_t *ngx_http_bulletdrop_manage_text(PGresult *res, int row,
    int col);
static json_t *ngx_http_bulletdrop_manage_int(PGresult *res, int row,
    int col);
static json_t *ngx_http_bulletdrop_upload_listed(ngx_http_request_t *r,
    PGresult *res, int row);
static void ngx_http_bulletdrop_uploads_listed(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_int_t ngx_http_bulletdrop_upload_lookup(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler);
static ngx_http_bulletdrop_db_query_t *ngx_http_bulletdrop_upload_query(
    ngx_http_request_t *r, ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler);
static void ngx_http_bulletdrop_upload_found(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_upload_unlink(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_upload_unlinked(ngx_http_request_t *r,
    ngx_int_t rc);
static void ngx_http_bulletdrop_upload_removed(
    ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_removal_cleanup(void *data);
static void ngx_http_bulletdrop_upload_deleted(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_int_t ngx_http_bulletdrop_upload_id(bd_slice_t *param);


/* an uploads row as the API shows it; the delete link only when made */

json_t *
ngx_http_bulletdrop_upload_json(ngx_http_request_t *r, PGresult *res,
    int row, ngx_str_t *delete_token)
{
    json_t      *json, *v;
    ngx_str_t    base, origin, domain;
    u_char      *url;
    const char  *id, *ext, *category;
    size_t       len;

    if (ngx_http_bulletdrop_base_url(r, &base) != NGX_OK) {
        return NULL;
    }

    id = ngx_http_bulletdrop_db_text(res, row, bd_col(ID));
    ext = ngx_http_bulletdrop_db_text(res, row, bd_col(EXT));
    category = ngx_http_bulletdrop_db_text(res, row, bd_col(CATEGORY));

    /* on its file domain; with none, on the host the API answers on */
    origin = base;

    ngx_http_bulletdrop_db_ref(res, row, bd_col(DOMAIN), &domain);

    if (domain.data) {
        if (ngx_http_bulletdrop_origin(r, &domain, &origin) != NGX_OK) {
            return NULL;
        }
    }

    len = origin.len + sizeof("/static///.") + ngx_strlen(category)
          + ngx_strlen(id) + ngx_strlen(ext);

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        return NULL;
    }

    (void) ngx_sprintf(url, "%V/static/%s/%s.%s%Z", &origin, category, id,
                       ext);

    json = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o,"
                     " s:o, s:I}",
        "id", id,
        "url", (char *) url,
        "name", ngx_http_bulletdrop_db_text(res, row, bd_col(NAME)),
        "category", category,
        "content_type",
            ngx_http_bulletdrop_db_text(res, row, bd_col(CONTENT_TYPE)),
        "size", (json_int_t) ngx_http_bulletdrop_db_int(res, row,
                                                         bd_col(SIZE)),
        "sha256", ngx_http_bulletdrop_db_text(res, row, bd_col(SHA256)),
        "created_at",
            ngx_http_bulletdrop_db_text(res, row, bd_col(CREATED_AT)),
        "expires_at",
            ngx_http_bulletdrop_manage_text(res, row, bd_col(EXPIRES_AT)),
        "max_views",
            ngx_http_bulletdrop_manage_int(res, row, bd_col(MAX_VIEWS)),
        "domain", ngx_http_bulletdrop_manage_text(res, row, bd_col(DOMAIN)),
        "views", (json_int_t) ngx_http_bulletdrop_db_int(res, row,
                                                          bd_col(VIEWS)));

    if (json == NULL || delete_token == NULL) {
        return json;
    }

    len = base.len + sizeof("/d/") + delete_token->len;

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        json_decref(json);
        return NULL;
    }

    (void) ngx_sprintf(url, "%V/d/%V%Z", &base, delete_token);

    v = json_string((char *) url);

    if (v == NULL || json_object_set_new(json, "delete_url", v) != 0) {
        json_decref(json);
        return NULL;
    }

    return json;
}


/*
 * A row of bd_upload_list or bd_upload_get, with its delete link when the
 * token derived from its id is the one stored: not for uploads from
 * before tokens were derived, nor after the JWT secret changed.
 */

static json_t *
ngx_http_bulletdrop_upload_listed(ngx_http_request_t *r, PGresult *res,
    int row)
{
    char         hash[NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    ngx_str_t    id, token;
    const char  *stored;

    id.data = (u_char *) ngx_http_bulletdrop_db_text(res, row, bd_col(ID));
    id.len = ngx_strlen(id.data);
    stored = ngx_http_bulletdrop_db_text(res, row,
                             NGX_HTTP_BULLETDROP_UPLOAD_LISTED_DELETE_HASH);

    if (ngx_http_bulletdrop_delete_token(r, &id, &token, hash) != NGX_OK) {
        return NULL;
    }

    return ngx_http_bulletdrop_upload_json(r, res, row,
                                           ngx_strcmp(hash, stored) == 0
                                           ? &token : NULL);
}


/* GET /api/uploads?limit=N&before=ID */

ngx_int_t
ngx_http_bulletdrop_uploads_list(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_int_t                        limit;
    ngx_str_t                        value;
    bd_slice_t                       before;
    ngx_http_bulletdrop_db_query_t  *q;

    if (ngx_http_bulletdrop_base_url(r, &value) != NGX_OK) {
        return ngx_http_bulletdrop_bad_host(r, ctx);
    }

    limit = NGX_HTTP_BULLETDROP_PAGE_DEFAULT;
    before.data = NULL;
    before.len = 0;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);
    }

    if (ngx_http_arg(r, (u_char *) "before", 6, &value) == NGX_OK) {
        before.data = (char *) value.data;
        before.len = value.len;
    }

    if (limit < 1 || limit > NGX_HTTP_BULLETDROP_PAGE_MAX
        || (before.data && ngx_http_bulletdrop_upload_id(&before) != NGX_OK))
    {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_QUERY,
                                                "limit is from 1 to 200, "
                                                "before an upload id");
    }

    ctx->page_limit = limit;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_UPLOAD_LIST,
                                  ngx_http_bulletdrop_uploads_listed);

    if (q == NULL
        || ngx_http_bulletdrop_query_int(q, 0, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 2, limit) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = (u_char *) before.data;
    value.len = before.len;

    if (ngx_http_bulletdrop_db_param(q, 1, before.data ? &value : NULL)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_uploads_listed(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    int                         i, n;
    json_t                     *list, *item;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    n = PQntuples(res);

    if (n == 1 && ngx_http_bulletdrop_db_null(res, 0, bd_col(ID))) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_QUERY,
                                             "before is not one of your "
                                             "uploads"));
        return;
    }

    list = json_array();

    for (i = 0; list && i < n; i++) {
        item = ngx_http_bulletdrop_upload_listed(r, res, i);

        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            list = NULL;
        }
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            list == NULL ? NULL
            : json_pack("{s:o, s:o}", "uploads", list, "next_before",
                        (ngx_uint_t) n == ctx->page_limit
                        ? ngx_http_bulletdrop_manage_text(res, n - 1,
                                                          bd_col(ID))
                        : json_null())));
}


/* GET /api/uploads/ID: the owner's, or anyone's for an admin */

ngx_int_t
ngx_http_bulletdrop_upload_get(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_upload_lookup(r, ctx,
               NGX_HTTP_BULLETDROP_SQL_UPLOAD_GET,
               ngx_http_bulletdrop_upload_found);
}


/*
 * DELETE /api/uploads/ID: the file, then the row.  A delete whose answer
 * is lost may or may not have removed the row; the file is gone either
 * way, and a second delete finishes the job.
 */

ngx_int_t
ngx_http_bulletdrop_upload_delete(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_upload_lookup(r, ctx,
               NGX_HTTP_BULLETDROP_SQL_UPLOAD_GET,
               ngx_http_bulletdrop_upload_unlink);
}


/* GET or DELETE of one upload, once its id looks like one */

static ngx_int_t
ngx_http_bulletdrop_upload_lookup(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler)
{
    ngx_str_t                        base;
    ngx_http_bulletdrop_db_query_t  *q;

    /* the answer's links are made of the Host: checked before asking */
    if (stmt == NGX_HTTP_BULLETDROP_SQL_UPLOAD_GET
        && ngx_http_bulletdrop_base_url(r, &base) != NGX_OK)
    {
        return ngx_http_bulletdrop_bad_host(r, ctx);
    }

    if (ngx_http_bulletdrop_upload_id(&ctx->match.params[0]) != NGX_OK) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                                "there is no such upload");
    }

    q = ngx_http_bulletdrop_upload_query(r, ctx, stmt, handler);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


/* a statement on one upload: $1 its id, $2 the asker, $3 an admin asks */

static ngx_http_bulletdrop_db_query_t *
ngx_http_bulletdrop_upload_query(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler)
{
    ngx_str_t                        id;
    ngx_http_bulletdrop_db_query_t  *q;

    id.data = (u_char *) ctx->match.params[0].data;
    id.len = ctx->match.params[0].len;

    q = ngx_http_bulletdrop_query(r, stmt, handler);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &id) != NGX_OK
        || ngx_http_bulletdrop_query_int(q, 1, ctx->user.id) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 2,
                                 ctx->user.admin ? "true" : "false") != NGX_OK)
    {
        return NULL;
    }

    return q;
}


static void
ngx_http_bulletdrop_upload_found(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    /* someone else's upload is as absent as one that never was */
    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             "there is no such upload"));
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
            ngx_http_bulletdrop_upload_listed(r, res, 0)));
}


static void
ngx_http_bulletdrop_upload_unlink(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                             "there is no such upload"));
        return;
    }

    /* deleted means no longer served: the file goes first */
    switch (ngx_http_bulletdrop_upload_remove(r, res, 0,
                                          ngx_http_bulletdrop_upload_unlinked))
    {
    case NGX_OK:
        ngx_http_bulletdrop_upload_unlinked(r, NGX_OK);
        return;

    case NGX_DONE:
        ngx_http_bulletdrop_finish(r, NGX_DONE);
        return;

    default:
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* the file went: then its row */

static void
ngx_http_bulletdrop_upload_unlinked(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_bulletdrop_ctx_t       *ctx;
    ngx_http_bulletdrop_db_query_t  *q;

    if (rc != NGX_OK) {
        ngx_http_bulletdrop_finish(r, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    q = ngx_http_bulletdrop_upload_query(r, ctx,
                                         NGX_HTTP_BULLETDROP_SQL_UPLOAD_DELETE,
                                         ngx_http_bulletdrop_upload_deleted);
    if (q == NULL) {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_query_run(r, q));
}


/* the file of an uploads row goes; one already gone is no error */

typedef struct {
    ngx_http_request_t               *request;
    ngx_http_bulletdrop_removed_pt    next;
    ngx_http_bulletdrop_s3_op_t      *op;
} ngx_http_bulletdrop_removal_t;


ngx_int_t
ngx_http_bulletdrop_upload_remove(ngx_http_request_t *r, PGresult *res,
    int row, ngx_http_bulletdrop_removed_pt next)
{
    u_char                           *path;
    ngx_str_t                         key;
    ngx_pool_cleanup_t               *cln;
    ngx_http_bulletdrop_removal_t    *rm;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    /* category, id, ext: all checked when the row was written */
    path = ngx_pnalloc(r->pool, bmcf->upload_dir.len + sizeof("/documents/")
                                + BD_FILE_ID_LEN + 1 + BD_FILE_EXT_MAX + 1);
    if (path == NULL) {
        return NGX_ERROR;
    }

    key.data = ngx_sprintf(path, "%V/", &bmcf->upload_dir);
    key.len = ngx_sprintf(key.data, "%s/%s.%s%Z",
                   ngx_http_bulletdrop_db_text(res, row, bd_col(CATEGORY)),
                   ngx_http_bulletdrop_db_text(res, row, bd_col(ID)),
                   ngx_http_bulletdrop_db_text(res, row, bd_col(EXT)))
              - key.data - 1;

    if (bmcf->s3 == NULL) {
        if (ngx_delete_file(path) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                          "bulletdrop: cannot delete \"%s\"", path);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    rm = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_removal_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (rm == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    rm->request = r;
    rm->next = next;

    rm->op = ngx_http_bulletdrop_s3_op(bmcf->s3, r->connection->log,
                                       "DELETE", &key, "");
    if (rm->op == NULL) {
        return NGX_ERROR;
    }

    rm->op->handler = ngx_http_bulletdrop_upload_removed;
    rm->op->data = rm;

    if (ngx_http_bulletdrop_s3_start(rm->op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(rm->op);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulletdrop_removal_cleanup;
    cln->data = rm;

    /* asked for: it is done whether the client stays or not */
    r->read_event_handler = ngx_http_block_reading;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_bulletdrop_upload_removed(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char                          said[160], *p;
    ngx_int_t                       rc;
    ngx_http_request_t             *r;
    ngx_http_bulletdrop_ctx_t      *ctx;
    ngx_http_bulletdrop_removal_t  *rm;

    rm = op->data;
    r = rm->request;
    rm->op = NULL;

    rc = NGX_OK;

    if (!ngx_http_bulletdrop_s3_gone(op)) {
        p = ngx_http_bulletdrop_s3_said(op, said, sizeof(said));
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: the store did not delete \"%V\": %*s",
                      &op->key, p - said, said);

        /* the row stays with its object: nothing is half deleted */
        ctx = ngx_http_bulletdrop_ctx(r);
        rc = ctx ? ngx_http_bulletdrop_error_record(ctx,
                                                BD_ERR_STORAGE_UNAVAILABLE,
                                                "the file store did not "
                                                "delete the file: try again")
                 : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_bulletdrop_s3_free(op);

    rm->next(r, rc);
}


/* the request went first: the delete goes on, nobody waits for it */

static void
ngx_http_bulletdrop_removal_cleanup(void *data)
{
    ngx_http_bulletdrop_removal_t  *rm = data;

    if (rm->op) {
        rm->op->handler = NULL;
        rm->op->data = NULL;
        rm->op = NULL;
    }
}


static void
ngx_http_bulletdrop_upload_deleted(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    /* no row: another delete won the race, and it is gone all the same */

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_no_content(r));
}


/* an upload id as this server makes them: 16 of base64url */

static ngx_int_t
ngx_http_bulletdrop_upload_id(bd_slice_t *param)
{
    size_t  i;
    u_char  c;

    if (param->len != BD_FILE_ID_LEN) {
        return NGX_DECLINED;
    }

    for (i = 0; i < param->len; i++) {
        c = param->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a column that may be SQL NULL, as JSON */

static json_t *
ngx_http_bulletdrop_manage_text(PGresult *res, int row, int col)
{
    const char  *text;

    text = ngx_http_bulletdrop_db_text(res, row, col);

    return text ? json_string(text) : json_null();
}


static json_t *
ngx_http_bulletdrop_manage_int(PGresult *res, int row, int col)
{
    return ngx_http_bulletdrop_db_null(res, row, col)
           ? json_null()
           : json_integer(ngx_http_bulletdrop_db_int(res, row, col));
}
