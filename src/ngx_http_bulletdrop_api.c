/*
 * BulletDrop: the JSON API under /api/.
 *
 * The route table maps method and path to a handler.  A handler that needs
 * the database creates a query, runs it and returns NGX_DONE; the query's
 * handler answers and finalizes the request.
 */

#include "ngx_http_bulletdrop_api.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_sql.h"
#include "bd_route.h"


typedef ngx_int_t (*ngx_http_bulletdrop_route_pt)(ngx_http_request_t *r,
    bd_route_match_t *m);


typedef struct {
    /* first, so that bd_route_match() can walk the table */
    bd_route_t                     route;
    ngx_http_bulletdrop_route_pt   handler;
} ngx_http_bulletdrop_api_route_t;


static ngx_int_t ngx_http_bulletdrop_api_refuse(ngx_http_request_t *r,
    bd_route_result_e result, unsigned allowed);
static ngx_http_bulletdrop_db_query_t *ngx_http_bulletdrop_api_query(
    ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_http_bulletdrop_db_handler_pt handler);
static ngx_int_t ngx_http_bulletdrop_api_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q);
static void ngx_http_bulletdrop_api_finish(ngx_http_request_t *r,
    ngx_int_t rc);

static ngx_int_t ngx_http_bulletdrop_health(ngx_http_request_t *r,
    bd_route_match_t *m);
static void ngx_http_bulletdrop_health_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res);


static ngx_http_bulletdrop_api_route_t  ngx_http_bulletdrop_api_routes[] = {

    { { BD_METHOD_GET, "/api/health" }, ngx_http_bulletdrop_health },

};


ngx_int_t
ngx_http_bulletdrop_api_handler(ngx_http_request_t *r)
{
    unsigned           method;
    bd_route_match_t   m;
    bd_route_result_e  result;

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

    return ngx_http_bulletdrop_api_routes[m.index].handler(r, &m);
}


static ngx_int_t
ngx_http_bulletdrop_api_refuse(ngx_http_request_t *r,
    bd_route_result_e result, unsigned allowed)
{
    size_t            len;
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

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


/* database-backed routes */

static ngx_http_bulletdrop_db_query_t *
ngx_http_bulletdrop_api_query(ngx_http_request_t *r, ngx_uint_t stmt,
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


static ngx_int_t
ngx_http_bulletdrop_api_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q)
{
    ngx_event_t  *rev;

    /*
     * Watch for the client leaving while the query runs: the request is
     * then finalized, and its pool's cleanup abandons the query.  A close
     * that arrived with the request was reported with it and will not be
     * reported again by an edge-triggered event method: look now.
     */
    if (!r->discard_body) {
        rev = r->connection->read;

        if (rev->ready) {
            ngx_post_event(rev, &ngx_posted_events);

        } else if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->read_event_handler = ngx_http_test_reading;
    }

    ngx_http_bulletdrop_db_run(q);

    r->main->count++;

    return NGX_DONE;
}


/* called from a query handler, outside nginx's own request processing */

static void
ngx_http_bulletdrop_api_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* GET /api/health */

static ngx_int_t
ngx_http_bulletdrop_health(ngx_http_request_t *r, bd_route_match_t *m)
{
    ngx_int_t                        rc;
    ngx_http_bulletdrop_db_query_t  *q;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    q = ngx_http_bulletdrop_api_query(r, NGX_HTTP_BULLETDROP_SQL_HEALTH,
                                      ngx_http_bulletdrop_health_done);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_api_run(r, q);
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
        ngx_http_bulletdrop_api_finish(r,
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

    ngx_http_bulletdrop_api_finish(r,
        ngx_http_bulletdrop_json_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      json_pack("{s:s, s:s, s:s}",
                                                "status", "degraded",
                                                "db", "down",
                                                "detail", detail)));
}
