/*
 * BulletDrop: delete links.  An upload's answer carries /d/TOKEN, which
 * ShareX opens in a browser: GET shows what would go and a button, POST
 * deletes it.  The token is the only credential, and only its SHA-256 is
 * stored: a wrong token and a used one look the same.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_deletelink.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_upload.h"
#include "bd_deliver.h"


/* the links carry 32; room for longer ones to come */
#define NGX_HTTP_BULLETDROP_TOKEN_MIN  32
#define NGX_HTTP_BULLETDROP_TOKEN_MAX  64


/* what a POST deleted, for its answer once the row is gone */
typedef struct {
    ngx_http_request_t  *r;
    ngx_str_t            id;
    ngx_str_t            owner;
    ngx_str_t            name;       /* HTML-escaped */
} ngx_http_bulletdrop_delete_link_t;


static ngx_int_t ngx_http_bulletdrop_delete_link_lookup(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_db_handler_pt handler);
static void ngx_http_bulletdrop_delete_link_found(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_delete_link_unlink(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static void ngx_http_bulletdrop_delete_link_removed(ngx_http_request_t *r,
    ngx_int_t rc);
static void ngx_http_bulletdrop_delete_link_deleted(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_int_t ngx_http_bulletdrop_delete_link_gone(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static ngx_int_t ngx_http_bulletdrop_delete_link_page(ngx_http_request_t *r,
    ngx_uint_t status, const char *title, size_t len, const char *fmt, ...);
static ngx_int_t ngx_http_bulletdrop_delete_link_escape(ngx_pool_t *pool,
    const char *s, ngx_str_t *out);
static u_char *ngx_http_bulletdrop_delete_link_size(u_char *p, off_t size);
static ngx_uint_t ngx_http_bulletdrop_delete_link_html(ngx_http_request_t *r);


/*
 * Every answer at /d/ has them: the token is in the URL, so no Referer
 * may carry it away, and the page that deletes is never framed
 */
static ngx_keyval_t  ngx_http_bulletdrop_delete_link_headers[] = {
    { ngx_string("Referrer-Policy"), ngx_string("no-referrer") },
    { ngx_string("X-Frame-Options"), ngx_string("DENY") },
    { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
    { ngx_string("Content-Security-Policy"),
      ngx_string("default-src 'none'; style-src 'unsafe-inline'; "
                 "form-action 'self'; frame-ancestors 'none'") }
};

/* the page around every body; %s is the title, twice */
static const char  ngx_http_bulletdrop_delete_link_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n"
    "<title>%s - BulletDrop</title>\n<style>body { font: 16px/1.5 sans-serif;"
    " max-width: 36em; margin: 3em auto; padding: 0 1em } dt { font-weight:"
    " bold } dd { margin: 0 0 .5em; word-break: break-all }</style>\n"
    "</head>\n<body>\n<h1>%s</h1>\n";

static const char  ngx_http_bulletdrop_delete_link_tail[] =
    "</body>\n</html>\n";

/* name, size, upload time, link twice; no action: it posts to this URL */
static const char  ngx_http_bulletdrop_delete_link_confirm_body[] =
    "<p>This link deletes the file below for good.</p>\n<dl>\n"
    "<dt>Name</dt><dd>%V</dd>\n<dt>Size</dt><dd>%*s</dd>\n"
    "<dt>Uploaded</dt><dd>%V</dd>\n"
    "<dt>Link</dt><dd><a href=\"%V\">%V</a></dd>\n</dl>\n"
    "<form method=\"post\"><button type=\"submit\">Delete</button></form>\n";


/* GET /d/TOKEN (and HEAD): a confirm page; never deletes */

ngx_int_t
ngx_http_bulletdrop_delete_link_show(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_delete_link_lookup(r, ctx,
                                       ngx_http_bulletdrop_delete_link_found);
}


/* POST /d/TOKEN: the file, then its row, as DELETE /api/uploads/ID */

ngx_int_t
ngx_http_bulletdrop_delete_link_confirm(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_delete_link_lookup(r, ctx,
                                      ngx_http_bulletdrop_delete_link_unlink);
}


static ngx_int_t
ngx_http_bulletdrop_delete_link_lookup(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_http_bulletdrop_db_handler_pt handler)
{
    u_char                           c;
    char                             hash[NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    size_t                           i;
    ngx_str_t                        value;
    bd_slice_t                      *token;
    ngx_table_elt_t                 *h;
    ngx_http_bulletdrop_db_query_t  *q;

    for (i = 0; i < sizeof(ngx_http_bulletdrop_delete_link_headers)
                    / sizeof(ngx_keyval_t); i++)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = ngx_http_bulletdrop_delete_link_headers[i].key;
        h->value = ngx_http_bulletdrop_delete_link_headers[i].value;
    }

    /* the page's link is made of the Host: checked before asking */
    if (handler == ngx_http_bulletdrop_delete_link_found
        && ngx_http_bulletdrop_base_url(r, &value) != NGX_OK)
    {
        return ngx_http_bulletdrop_bad_host(r, ctx);
    }

    /* a token that cannot be one of ours costs no query */
    token = &ctx->match.params[0];

    if (token->len < NGX_HTTP_BULLETDROP_TOKEN_MIN
        || token->len > NGX_HTTP_BULLETDROP_TOKEN_MAX)
    {
        return ngx_http_bulletdrop_delete_link_gone(r, ctx);
    }

    for (i = 0; i < token->len; i++) {
        c = token->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return ngx_http_bulletdrop_delete_link_gone(r, ctx);
        }
    }

    ngx_http_bulletdrop_sha256_hex((u_char *) token->data, token->len, hash);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop delete link: looking up the token to %s",
                   handler == ngx_http_bulletdrop_delete_link_found
                   ? "confirm" : "delete");

    value.data = (u_char *) hash;
    value.len = ngx_strlen(hash);

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_UPLOAD_BY_TOKEN,
                                  handler);

    if (q == NULL || ngx_http_bulletdrop_db_param(q, 0, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_delete_link_found(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    u_char                     *p;
    json_t                     *json;
    ngx_int_t                   rc;
    ngx_str_t                   name, when, url;
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;
    u_char                      size[NGX_OFF_T_LEN + sizeof(".0 bytes")];

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop delete link: no upload has the token");

        ngx_http_bulletdrop_finish(r,
                                 ngx_http_bulletdrop_delete_link_gone(r, ctx));
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop delete link: confirming upload \"%s\"",
                   ngx_http_bulletdrop_db_text(res, 0,
                                               NGX_HTTP_BULLETDROP_UPLOAD_ID));

    /* the link as the API gives it, whichever domain it is on */
    json = ngx_http_bulletdrop_upload_json(r, res, 0, NULL);
    rc = ngx_http_bulletdrop_delete_link_escape(r->pool,
             json_string_value(json_object_get(json, "url")), &url);
    json_decref(json);

    if (rc != NGX_OK
        || ngx_http_bulletdrop_delete_link_escape(r->pool,
               ngx_http_bulletdrop_db_text(res, 0,
                                           NGX_HTTP_BULLETDROP_UPLOAD_NAME),
               &name)
           != NGX_OK
        || ngx_http_bulletdrop_delete_link_escape(r->pool,
               ngx_http_bulletdrop_db_text(res, 0,
                                         NGX_HTTP_BULLETDROP_UPLOAD_CREATED_AT),
               &when)
           != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_http_bulletdrop_delete_link_size(size,
            ngx_http_bulletdrop_db_int(res, 0,
                                       NGX_HTTP_BULLETDROP_UPLOAD_SIZE));

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_delete_link_page(r, NGX_HTTP_OK,
            "Delete this file?",
            name.len + (p - size) + when.len + 2 * url.len,
            ngx_http_bulletdrop_delete_link_confirm_body,
            &name, (size_t) (p - size), size, &when, &url, &url));
}


static void
ngx_http_bulletdrop_delete_link_unlink(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_str_t                           id, owner;
    ngx_http_request_t                 *r;
    ngx_http_bulletdrop_ctx_t          *ctx;
    ngx_http_bulletdrop_delete_link_t  *dl;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "bulletdrop delete link: no upload has the token");

        ngx_http_bulletdrop_finish(r,
                                 ngx_http_bulletdrop_delete_link_gone(r, ctx));
        return;
    }

    /* both point into res: copied before the next query, or sent with it */
    ngx_http_bulletdrop_db_ref(res, 0, NGX_HTTP_BULLETDROP_UPLOAD_ID, &id);
    ngx_http_bulletdrop_db_ref(res, 0,
                               NGX_HTTP_BULLETDROP_UPLOAD_BY_TOKEN_USER_ID,
                               &owner);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop delete link: deleting upload \"%V\" of user "
                   "#%V", &id, &owner);

    /* the result is cleared before the row's delete answers */
    dl = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_delete_link_t));
    if (dl == NULL) {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    dl->r = r;
    dl->id.len = id.len;
    dl->id.data = ngx_pstrdup(r->pool, &id);
    dl->owner.len = owner.len;
    dl->owner.data = ngx_pstrdup(r->pool, &owner);
    ctx->delete_link = dl;

    if (dl->id.data == NULL || dl->owner.data == NULL
        || ngx_http_bulletdrop_delete_link_escape(r->pool,
               ngx_http_bulletdrop_db_text(res, 0,
                                           NGX_HTTP_BULLETDROP_UPLOAD_NAME),
               &dl->name) != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* deleted means no longer served: the file goes first */
    switch (ngx_http_bulletdrop_upload_remove(r, res, 0,
                                     ngx_http_bulletdrop_delete_link_removed))
    {
    case NGX_OK:
        ngx_http_bulletdrop_delete_link_removed(r, NGX_OK);
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
ngx_http_bulletdrop_delete_link_removed(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_bulletdrop_ctx_t          *ctx;
    ngx_http_bulletdrop_db_query_t     *q;
    ngx_http_bulletdrop_delete_link_t  *dl;

    if (rc != NGX_OK) {
        ngx_http_bulletdrop_finish(r, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);
    dl = ctx->delete_link;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_UPLOAD_DELETE,
                                  ngx_http_bulletdrop_delete_link_deleted);

    if (q == NULL
        || ngx_http_bulletdrop_db_param(q, 0, &dl->id) != NGX_OK
        || ngx_http_bulletdrop_db_param(q, 1, &dl->owner) != NGX_OK
        || ngx_http_bulletdrop_query_param(q, 2, "false") != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the handler gets dl, and names the request to query_done_for() */
    q->data = dl;

    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_query_run(r, q));
}


static void
ngx_http_bulletdrop_delete_link_deleted(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t                 *r;
    ngx_http_bulletdrop_delete_link_t  *dl;

    dl = q->data;
    r = dl->r;

    if (ngx_http_bulletdrop_query_done_for(r, q, res) == NULL) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop delete link: %s",
                   PQntuples(res) ? "row deleted" : "row gone already");

    /* no row: another use of the link won the race, and said so */
    if (PQntuples(res) == 0) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_delete_link_gone(r,
                ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module)));
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulletdrop: upload \"%V\" deleted by its delete link",
                  &dl->id);

    if (!ngx_http_bulletdrop_delete_link_html(r)) {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
                json_pack("{s:b, s:s%}", "deleted", 1,
                          "id", (char *) dl->id.data, dl->id.len)));
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_delete_link_page(r, NGX_HTTP_OK, "Deleted",
            dl->name.len,
            "<p>The file %V was deleted: its link no longer works.</p>\n",
            &dl->name));
}


/* a wrong or used token: 404, as a page for a browser */

static ngx_int_t
ngx_http_bulletdrop_delete_link_gone(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    if (!ngx_http_bulletdrop_delete_link_html(r)) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                                "this delete link is wrong "
                                                "or was already used");
    }

    return ngx_http_bulletdrop_delete_link_page(r, NGX_HTTP_NOT_FOUND,
               "Nothing to delete", 0,
               "<p>This delete link is wrong, or it was already used: "
               "there is nothing to delete.</p>\n");
}


/* a page whose body is fmt (escaped values only), len bytes of them */

static ngx_int_t
ngx_http_bulletdrop_delete_link_page(ngx_http_request_t *r,
    ngx_uint_t status, const char *title, size_t len, const char *fmt, ...)
{
    va_list      args;
    ngx_buf_t   *b;

    b = ngx_create_temp_buf(r->pool,
                            sizeof(ngx_http_bulletdrop_delete_link_head)
                            + 2 * ngx_strlen(title) + ngx_strlen(fmt) + len
                            + sizeof(ngx_http_bulletdrop_delete_link_tail));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_slprintf(b->last, b->end,
                           ngx_http_bulletdrop_delete_link_head, title, title);

    va_start(args, fmt);
    b->last = ngx_vslprintf(b->last, b->end, fmt, args);
    va_end(args);

    b->last = ngx_cpymem(b->last, ngx_http_bulletdrop_delete_link_tail,
                         sizeof(ngx_http_bulletdrop_delete_link_tail) - 1);

    return ngx_http_bulletdrop_send_buf(r, status, "text/html; charset=utf-8",
                                        sizeof("text/html") - 1, b);
}


/* s (NUL-terminated; NULL is a failure) as HTML text or attribute */

static ngx_int_t
ngx_http_bulletdrop_delete_link_escape(ngx_pool_t *pool, const char *s,
    ngx_str_t *out)
{
    size_t  len;

    if (s == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(s);

    out->data = ngx_pnalloc(pool, bd_html_escape_len(len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = bd_html_escape(s, len, (char *) out->data);

    return NGX_OK;
}


/* 1536 bytes are "1.5 KiB": one decimal, rounded */

static u_char *
ngx_http_bulletdrop_delete_link_size(u_char *p, off_t size)
{
    off_t       unit, tenths;
    ngx_uint_t  i;

    if (size < 1024) {
        return ngx_sprintf(p, "%O byte%s", size, size == 1 ? "" : "s");
    }

    for (i = 0, unit = 1024; i < 3 && size >= unit * 1024; i++) {
        unit *= 1024;
    }

    tenths = (size * 10 + unit / 2) / unit;

    return ngx_sprintf(p, "%O.%O %ciB", tenths / 10, tenths % 10, "KMGT"[i]);
}


/* whether the client reads HTML: a browser, not ShareX or curl */

static ngx_uint_t
ngx_http_bulletdrop_delete_link_html(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* every Accept header, however many the client sent */
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == sizeof("Accept") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                                   sizeof("Accept") - 1) == 0
                && ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) "text/html",
                                    sizeof("text/html") - 2) != NULL)
            {
                return 1;
            }
        }
    }

    return 0;
}
