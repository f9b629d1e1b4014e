/*
 * BulletDrop: the JSON API under /api/ and the delete links under /d/.
 *
 * The route table maps method and path to a handler, and says who may
 * call it and what body it reads.  A handler that needs the database
 * creates a query, runs it and returns NGX_DONE; the query's handler
 * answers and finalizes the request (request.c).
 */

#include "ngx_http_bulletdrop_api.h"
#include "ngx_http_bulletdrop_accounts.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_clients.h"
#include "ngx_http_bulletdrop_deletelink.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_session.h"
#include "ngx_http_bulletdrop_site.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_upload.h"


/* who may call a route */
#define NGX_HTTP_BULLETDROP_ANYONE  0
#define NGX_HTTP_BULLETDROP_USER    1
#define NGX_HTTP_BULLETDROP_ADMIN   2


typedef struct {
    /* first, so that bd_route_match() can walk the table */
    bd_route_t                     route;
    ngx_http_bulletdrop_step_pt    handler;
    ngx_uint_t                     access;
    ngx_uint_t                     body;
} ngx_http_bulletdrop_api_route_t;


static ngx_int_t ngx_http_bulletdrop_api_refuse(ngx_http_request_t *r,
    bd_route_result_e result, unsigned allowed);
static ngx_int_t ngx_http_bulletdrop_api_authorized(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static ngx_int_t ngx_http_bulletdrop_api_body(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

static ngx_int_t ngx_http_bulletdrop_health(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);
static void ngx_http_bulletdrop_health_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);


#define BD_GET     BD_METHOD_GET
#define BD_POST    BD_METHOD_POST
#define BD_PATCH   BD_METHOD_PATCH
#define BD_DELETE  BD_METHOD_DELETE

static ngx_http_bulletdrop_api_route_t  ngx_http_bulletdrop_api_routes[] = {

    { { BD_GET, "/api/health" }, ngx_http_bulletdrop_health,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/config" }, ngx_http_bulletdrop_site_config,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/auth/register" }, ngx_http_bulletdrop_register,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_FORM },

    { { BD_POST, "/api/auth/login" }, ngx_http_bulletdrop_login,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_FORM },

    /* the cookie goes, whoever asks: it may be all that is left */
    { { BD_POST, "/api/auth/logout" }, ngx_http_bulletdrop_logout,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/users/me" }, ngx_http_bulletdrop_me,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_PATCH, "/api/users/me" }, ngx_http_bulletdrop_me_update,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_JSON },

    { { BD_GET, "/api/users/me/api-keys" }, ngx_http_bulletdrop_keys_list,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/users/me/api-keys" }, ngx_http_bulletdrop_key_create,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_JSON },

    { { BD_DELETE, "/api/users/me/api-keys/:id" },
      ngx_http_bulletdrop_key_delete,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/uploads" }, ngx_http_bulletdrop_upload,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_STREAM },

    { { BD_GET, "/api/uploads" }, ngx_http_bulletdrop_uploads_list,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/uploads/sharex" }, ngx_http_bulletdrop_upload_sharex,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_STREAM },

    { { BD_GET, "/api/uploads/:id" }, ngx_http_bulletdrop_upload_get,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_DELETE, "/api/uploads/:id" }, ngx_http_bulletdrop_upload_delete,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/users/me/sharex" }, ngx_http_bulletdrop_sharex_config,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/users/me/flameshot" },
      ngx_http_bulletdrop_flameshot_config,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/domains" }, ngx_http_bulletdrop_domains_list,
      NGX_HTTP_BULLETDROP_USER, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/domains" }, ngx_http_bulletdrop_domain_add,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_JSON },

    { { BD_POST, "/api/domains/seed" }, ngx_http_bulletdrop_domains_seed,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_PATCH, "/api/domains/:name" }, ngx_http_bulletdrop_domain_update,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_JSON },

    { { BD_DELETE, "/api/domains/:name" }, ngx_http_bulletdrop_domain_delete,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_NONE },

    /* delete links, opened in a browser: no credential but the token */
    { { BD_GET, "/d/:token" }, ngx_http_bulletdrop_delete_link_show,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/d/:token" }, ngx_http_bulletdrop_delete_link_confirm,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_POST, "/api/admin/invites" }, ngx_http_bulletdrop_invite_create,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_OPTIONAL },

    { { BD_GET, "/api/admin/invites" }, ngx_http_bulletdrop_invites_list,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_DELETE, "/api/admin/invites/:id" },
      ngx_http_bulletdrop_invite_delete,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_GET, "/api/admin/users" }, ngx_http_bulletdrop_admin_users,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_NONE },

    { { BD_PATCH, "/api/admin/users/:id" },
      ngx_http_bulletdrop_admin_user_update,
      NGX_HTTP_BULLETDROP_ADMIN, NGX_HTTP_BULLETDROP_BODY_JSON },
};


ngx_int_t
ngx_http_bulletdrop_api_handler(ngx_http_request_t *r)
{
    unsigned                          method;
    bd_route_match_t                  m;
    bd_route_result_e                 result;
    ngx_http_bulletdrop_ctx_t        *ctx;
    ngx_http_bulletdrop_api_route_t  *route;

    switch (r->method) {
    case NGX_HTTP_GET:     method = BD_METHOD_GET; break;
    case NGX_HTTP_HEAD:    method = BD_METHOD_HEAD; break;
    case NGX_HTTP_POST:    method = BD_METHOD_POST; break;
    case NGX_HTTP_PUT:     method = BD_METHOD_PUT; break;
    case NGX_HTTP_PATCH:   method = BD_METHOD_PATCH; break;
    case NGX_HTTP_DELETE:  method = BD_METHOD_DELETE; break;
    case NGX_HTTP_OPTIONS: method = BD_METHOD_OPTIONS; break;
    default:               method = 0; break;
    }

    result = bd_route_match(ngx_http_bulletdrop_api_routes,
                            sizeof(ngx_http_bulletdrop_api_routes)
                            / sizeof(ngx_http_bulletdrop_api_routes[0]),
                            sizeof(ngx_http_bulletdrop_api_route_t),
                            method, (const char *) r->uri.data, r->uri.len,
                            &m);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop api: \"%V\" %s, route %ui",
                   &r->uri, result == BD_ROUTE_FOUND ? "found"
                            : result == BD_ROUTE_NOT_FOUND ? "not found"
                            : "method not allowed", m.index);

    if (result != BD_ROUTE_FOUND) {
        return ngx_http_bulletdrop_api_refuse(r, result, m.allowed);
    }

    route = &ngx_http_bulletdrop_api_routes[m.index];

    ctx = ngx_http_bulletdrop_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->match = m;
    ctx->handler = route->handler;
    ctx->body_kind = route->body;
    ctx->admin_only = (route->access == NGX_HTTP_BULLETDROP_ADMIN);

    /* who asks is known before a byte of the body is read */
    if (route->access != NGX_HTTP_BULLETDROP_ANYONE) {
        return ngx_http_bulletdrop_answer(r,
                   ngx_http_bulletdrop_auth_request(r, ctx,
                                          ngx_http_bulletdrop_api_authorized));
    }

    return ngx_http_bulletdrop_answer(r, ngx_http_bulletdrop_api_body(r, ctx));
}


static ngx_int_t
ngx_http_bulletdrop_api_authorized(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    if (ctx->admin_only && !ctx->user.admin) {
        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_FORBIDDEN, NULL);
    }

    return ngx_http_bulletdrop_api_body(r, ctx);
}


static ngx_int_t
ngx_http_bulletdrop_api_body(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_STREAM) {
        return ctx->handler(r, ctx);
    }

    if (ctx->body_kind != NGX_HTTP_BULLETDROP_BODY_NONE) {
        return ngx_http_bulletdrop_body_read(r, ctx, ctx->handler);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ctx->handler(r, ctx);
}


static ngx_int_t
ngx_http_bulletdrop_api_refuse(ngx_http_request_t *r,
    bd_route_result_e result, unsigned allowed)
{
    size_t                      len;
    ngx_table_elt_t            *h;
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_bulletdrop_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (result == BD_ROUTE_NOT_FOUND) {
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_NOT_FOUND,
                                         "there is no API route at this "
                                         "path");
        return ngx_http_bulletdrop_error_send(r, ctx);
    }

    /* RFC 9110: a 405 lists the methods the resource takes */
    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = bd_route_allow(allowed, NULL, 0);

    h->value.data = ngx_pnalloc(r->pool, len + 1);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = bd_route_allow(allowed, (char *) h->value.data, len + 1);
    h->hash = 1;
    ngx_str_set(&h->key, "Allow");

    ngx_http_bulletdrop_error_record(ctx, BD_ERR_METHOD_NOT_ALLOWED, NULL);
    return ngx_http_bulletdrop_error_send(r, ctx);
}


/* GET /api/health */

static ngx_int_t
ngx_http_bulletdrop_health(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_db_query_t  *q;

    q = ngx_http_bulletdrop_query(r, NGX_HTTP_BULLETDROP_SQL_HEALTH,
                                  ngx_http_bulletdrop_health_done);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_query_run(r, q);
}


static void
ngx_http_bulletdrop_health_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_str_t            line;
    const char          *detail;
    ngx_http_request_t  *r;

    r = q->data;

    if (q->status == NGX_HTTP_BULLETDROP_DB_OK
        && PQresultStatus(res) == PGRES_TUPLES_OK)
    {
        ngx_http_bulletdrop_finish(r,
            ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
                                          json_pack("{s:s, s:s}",
                                                    "status", "ok",
                                                    "db", "ok")));
        return;
    }

    if (q->status == NGX_HTTP_BULLETDROP_DB_OK) {
        line = ngx_http_bulletdrop_db_line(PQresultErrorMessage(res));
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop health: %V", &line);
        detail = "the database answered with an error";

    } else {
        detail = ngx_http_bulletdrop_db_status_text(q->status);
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      json_pack("{s:s, s:s, s:s}",
                                                "status", "degraded",
                                                "db", "down",
                                                "detail", detail)));
}
