/*
 * BulletDrop: the JSON API under /api/.
 *
 * The route table maps method and path to a handler.  A handler that needs
 * the database creates a query, runs it and returns NGX_DONE; the query's
 * handler answers and finalizes the request.
 */

#include "ngx_http_bulletdrop_api.h"
#include "ngx_http_bulletdrop_accounts.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_clients.h"
#include "ngx_http_bulletdrop_deletelink.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "ngx_http_bulletdrop_upload.h"


/* a refused body up to this size is drained to keep the connection */
#define NGX_HTTP_BULLETDROP_DRAIN_MAX  65536


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

static const char *ngx_http_bulletdrop_scheme(ngx_http_request_t *r);

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

    { { BD_POST, "/api/auth/register" }, ngx_http_bulletdrop_register,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_FORM },

    { { BD_POST, "/api/auth/login" }, ngx_http_bulletdrop_login,
      NGX_HTTP_BULLETDROP_ANYONE, NGX_HTTP_BULLETDROP_BODY_FORM },

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

    if (result != BD_ROUTE_FOUND) {
        return ngx_http_bulletdrop_api_refuse(r, result, m.allowed);
    }

    route = &ngx_http_bulletdrop_api_routes[m.index];

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->match = m;
    ctx->handler = route->handler;
    ctx->body_kind = route->body;
    ctx->admin_only = (route->access == NGX_HTTP_BULLETDROP_ADMIN);

    ngx_http_set_ctx(r, ctx, ngx_http_bulletdrop_module);

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
        return ngx_http_bulletdrop_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                          "forbidden",
                                          "this route is for administrators");
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
    size_t            len;
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    /* no "100 Continue" for a body nobody will read */
    r->expect_tested = 1;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (result == BD_ROUTE_NOT_FOUND) {
        return ngx_http_bulletdrop_json_error(r, NGX_HTTP_NOT_FOUND,
                                              "not_found",
                                              "there is no API route at "
                                              "this path");
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

    return ngx_http_bulletdrop_json_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "method_not_allowed",
                                          "this route does not take "
                                          "that method");
}


void
ngx_http_bulletdrop_refuse(ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *detail)
{
    ctx->err_status = status;
    ctx->err_code = code;
    ctx->err_detail = detail;
}


ngx_int_t
ngx_http_bulletdrop_send_refusal(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_int_t  rc;

    /*
     * An answer before the body was read: a client waiting for "100
     * Continue" is not invited to send it.  A small body is read and
     * dropped, so that the connection can serve the next request; a large
     * one (an upload) is not read at all: the connection is closed.
     */
    r->expect_tested = 1;

    if (r->request_body == NULL
        && (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_STREAM
            || r->headers_in.chunked
            || r->headers_in.content_length_n > NGX_HTTP_BULLETDROP_DRAIN_MAX)
        && (r->headers_in.chunked || r->headers_in.content_length_n > 0))
    {
        r->keepalive = 0;
        r->lingering_close = 1;

    } else {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_bulletdrop_json_error(r, ctx->err_status, ctx->err_code,
                                          ctx->err_detail);
}


ngx_int_t
ngx_http_bulletdrop_reject(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *detail)
{
    ngx_http_bulletdrop_refuse(ctx, status, code, detail);

    return ngx_http_bulletdrop_send_refusal(r, ctx);
}


void
ngx_http_bulletdrop_finish_refusal(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_send_refusal(r, ctx));
}


void
ngx_http_bulletdrop_finish_reject(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *detail)
{
    ngx_http_bulletdrop_finish(r, ngx_http_bulletdrop_reject(r, ctx, status,
                                                            code, detail));
}


/*
 * A step that gives up returns a status, which nginx would answer with an
 * HTML page: the API answers in JSON.  Statuses that mean the connection
 * is gone or broken are left to nginx.
 */

ngx_int_t
ngx_http_bulletdrop_answer(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_table_elt_t  *h;

    if (rc < NGX_HTTP_SPECIAL_RESPONSE
        || r->header_sent
        || r->connection->error
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || rc == NGX_HTTP_CLOSE)
    {
        return rc;
    }

    /*
     * nginx's own reader refused a malformed chunked body: where it ends
     * is unknown, so the connection ends too, as nginx's own 400 does
     */
    if (rc == NGX_HTTP_BAD_REQUEST) {
        r->keepalive = 0;
        return ngx_http_bulletdrop_json_error(r, rc, "bad_request",
                                              "the request is malformed");
    }

    /* a chunked body past client_max_body_size */
    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return ngx_http_bulletdrop_json_error(r, rc, "body_too_large",
                                              "the body is larger than "
                                              "this server takes");
    }

    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");

        return ngx_http_bulletdrop_json_error(r, rc, "unavailable",
                                              "the server is busy: try "
                                              "again");
    }

    return ngx_http_bulletdrop_json_error(r, rc, "internal_error",
                                          "the server failed to answer: "
                                          "see its error log");
}


/* database-backed steps */

ngx_http_bulletdrop_db_query_t *
ngx_http_bulletdrop_query(ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler)
{
    ngx_http_bulletdrop_db_query_t   *q;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    q = ngx_http_bulletdrop_db_query_create(bmcf->db.pool, r->pool,
                                            r->connection->log, stmt);
    if (q == NULL) {
        return NULL;
    }

    q->handler = handler;
    q->data = r;

    return q;
}


ngx_int_t
ngx_http_bulletdrop_query_param(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t n, const char *value)
{
    ngx_str_t  s;

    if (value == NULL) {
        return ngx_http_bulletdrop_db_param(q, n, NULL);
    }

    s.data = (u_char *) value;
    s.len = ngx_strlen(value);

    return ngx_http_bulletdrop_db_param(q, n, &s);
}


ngx_int_t
ngx_http_bulletdrop_query_int(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t n, int64_t value)
{
    ngx_str_t  s;
    u_char     text[NGX_INT64_LEN];

    s.data = text;
    s.len = ngx_sprintf(text, "%L", value) - text;

    /* the pool keeps its own copy */
    return ngx_http_bulletdrop_db_param(q, n, &s);
}


ngx_int_t
ngx_http_bulletdrop_query_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q)
{
    if (ngx_http_bulletdrop_watch_client(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_bulletdrop_db_run(q);

    r->main->count++;

    return NGX_DONE;
}


/*
 * Watches for the client leaving while the request waits for the
 * database or the thread pool: the request is then finalized, and its
 * pool's cleanups abandon the work.  A close that arrived with the request
 * was reported with it and will not be reported again by an
 * edge-triggered event method: look now.  While a body is being read,
 * nginx's own reader watches the connection.
 */

ngx_int_t
ngx_http_bulletdrop_watch_client(ngx_http_request_t *r)
{
    ngx_event_t  *rev;

    if (r->discard_body || r->reading_body) {
        return NGX_OK;
    }

    rev = r->connection->read;

    if (rev->ready) {
        ngx_post_event(rev, &ngx_posted_events);

    } else if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    r->read_event_handler = ngx_http_test_reading;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_query_ok(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, ExecStatusType want)
{
    return ngx_http_bulletdrop_query_ok_for(q->data, q, res, want);
}


ngx_int_t
ngx_http_bulletdrop_query_ok_for(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, ExecStatusType want)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (q->status != NGX_HTTP_BULLETDROP_DB_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: \"%s\": %s",
                      ngx_http_bulletdrop_sql[q->stmt].name,
                      ngx_http_bulletdrop_db_status_text(q->status));

        ngx_http_bulletdrop_refuse(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "database_unavailable",
                                   ngx_http_bulletdrop_db_status_text(
                                                                q->status));
        return NGX_DECLINED;
    }

    if (PQresultStatus(res) != want) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: \"%s\" failed: %s",
                      ngx_http_bulletdrop_sql[q->stmt].name,
                      PQresultErrorMessage(res));

        ngx_http_bulletdrop_refuse(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "database_error",
                                   "the database refused the request");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static const char *
ngx_http_bulletdrop_scheme(ngx_http_request_t *r)
{
#if (NGX_HTTP_SSL)
    return r->connection->ssl ? "https" : "http";
#else
    return "http";
#endif
}


ngx_int_t
ngx_http_bulletdrop_base_url(ngx_http_request_t *r, ngx_str_t *url)
{
    u_char      c, *p;
    size_t      i;
    ngx_str_t   host;

    if (r->headers_in.host == NULL || r->headers_in.host->value.len == 0) {
        return NGX_DECLINED;
    }

    host = r->headers_in.host->value;

    url->data = ngx_pnalloc(r->pool, sizeof("https://") + host.len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(url->data, "%s://", ngx_http_bulletdrop_scheme(r));

    /* nginx lets far more through (quotes, '@', any byte over 0x7f) */
    for (i = 0; i < host.len; i++) {
        c = ngx_tolower(host.data[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
              || c == '-' || c == ':' || c == '[' || c == ']'))
        {
            return NGX_DECLINED;
        }

        *p++ = c;
    }

    url->len = p - url->data;

    return NGX_OK;
}


/*
 * "http://<host>:<port>": another host of this server, on the scheme and
 * the port the client used (a development stack's links carry its port)
 */

ngx_int_t
ngx_http_bulletdrop_origin(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *url)
{
    u_char     *p, *colon;
    ngx_str_t   port;

    ngx_str_null(&port);

    if (r->headers_in.host) {
        p = r->headers_in.host->value.data;
        colon = p + r->headers_in.host->value.len;

        /* the last colon, after an IPv6 address's bracket if any */
        while (colon > p && colon[-1] != ':' && colon[-1] != ']') {
            colon--;
        }

        if (colon > p && colon[-1] == ':') {
            port.data = colon - 1;
            port.len = p + r->headers_in.host->value.len - port.data;

            /* digits only: anything else stays out of links and headers */
            if (ngx_atoi(colon, port.len - 1) == NGX_ERROR) {
                ngx_str_null(&port);
            }
        }
    }

    url->data = ngx_pnalloc(r->pool, sizeof("https://") + host->len
                                     + port.len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    url->len = ngx_sprintf(url->data, "%s://%V%V",
                           ngx_http_bulletdrop_scheme(r), host, &port)
               - url->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_bad_host(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_host",
                                      "the Host header must be a plain host "
                                      "name, with a port if need be");
}


ngx_http_bulletdrop_ctx_t *
ngx_http_bulletdrop_query_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ngx_http_bulletdrop_query_ok(q, res, PGRES_TUPLES_OK) != NGX_OK) {
        ngx_http_bulletdrop_finish_refusal(r, ctx);
        return NULL;
    }

    return ctx;
}


/* called from an event handler, outside nginx's own request processing */

void
ngx_http_bulletdrop_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, ngx_http_bulletdrop_answer(r, rc));
    ngx_http_run_posted_requests(c);
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
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop health: %s", PQresultErrorMessage(res));
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
