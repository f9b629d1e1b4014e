/*
 * BulletDrop: what every handler of a request calls: the database query
 * helpers, the links of this server, and how a step's result becomes the
 * answer.  It calls no handler: the route table and the handlers call it.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_error.h"
#include "ngx_http_bulletdrop_sql.h"


static ngx_int_t ngx_http_bulletdrop_host_port(ngx_str_t *host,
    ngx_str_t *port);
static ngx_int_t ngx_http_bulletdrop_host_name(ngx_str_t *name);


/*
 * A step that gives up returns a status, which nginx would answer with an
 * HTML page, or NGX_DECLINED with an error recorded: the API answers in
 * JSON.  Statuses that mean the connection is gone or broken are left to
 * nginx.
 */

ngx_int_t
ngx_http_bulletdrop_answer(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    if ((rc < NGX_HTTP_SPECIAL_RESPONSE && rc != NGX_DECLINED)
        || r->header_sent
        || r->connection->error
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || rc == NGX_HTTP_CLOSE)
    {
        return rc;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulletdrop: a step gave %i: answered in JSON", rc);

    ctx = ngx_http_bulletdrop_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (rc) {

    case NGX_DECLINED:
        /* the step recorded why */
        break;

    case NGX_HTTP_BAD_REQUEST:
        /*
         * nginx's own reader refused a malformed chunked body: where it
         * ends is unknown, so the connection ends too, as nginx's own 400
         * does
         */
        r->keepalive = 0;
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_BAD_REQUEST, NULL);
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        /* a chunked body past client_max_body_size */
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_BODY_TOO_LARGE, NULL);
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_UNAVAILABLE, NULL);
        break;

    default:
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_INTERNAL, NULL);
        break;
    }

    return ngx_http_bulletdrop_error_send(r, ctx);
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
    ngx_str_t                   line;
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (q->status != NGX_HTTP_BULLETDROP_DB_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: \"%s\": %s",
                      ngx_http_bulletdrop_sql[q->stmt].name,
                      ngx_http_bulletdrop_db_status_text(q->status));

        return ngx_http_bulletdrop_error_record(ctx,
                   BD_ERR_DATABASE_UNAVAILABLE,
                   ngx_http_bulletdrop_db_status_text(q->status));
    }

    if (PQresultStatus(res) != want) {
        line = ngx_http_bulletdrop_db_line(PQresultErrorMessage(res));
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulletdrop: \"%s\" failed: %V",
                      ngx_http_bulletdrop_sql[q->stmt].name, &line);

        return ngx_http_bulletdrop_error_record(ctx, BD_ERR_DATABASE_ERROR,
                                                NULL);
    }

    return NGX_OK;
}


/*
 * Did the client use https: TLS on this connection, or, with
 * bulletdrop_forwarded_proto on, X-Forwarded-Proto from a proxy that the
 * realip module believed (it replaced the connection's address, so the
 * proxy is in set_real_ip_from); never anyone else.  A proxy's "http"
 * does not undo TLS that reached us: the cookie stays Secure.
 */

ngx_uint_t
ngx_http_bulletdrop_https(ngx_http_request_t *r)
{
    ngx_table_elt_t                  *h;
    ngx_connection_t                 *c;
    ngx_http_variable_value_t        *peer;
    ngx_http_bulletdrop_loc_conf_t   *blcf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    c = r->connection;

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        return 1;
    }
#endif

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulletdrop_module);

    if (blcf->forwarded_proto) {
        bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);
        peer = ngx_http_get_indexed_variable(r, bmcf->realip_index);

        if (peer && !peer->not_found
            && (peer->len != c->addr_text.len
                || ngx_strncmp(peer->data, c->addr_text.data, peer->len)
                   != 0))
        {
            h = ngx_http_bulletdrop_header_in(r, "X-Forwarded-Proto",
                                              sizeof("X-Forwarded-Proto")
                                              - 1);
            if (h && h->value.len == 5
                && ngx_strncasecmp(h->value.data, (u_char *) "https", 5)
                   == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/* bulletdrop_forwarded_proto on | off */

char *
ngx_http_bulletdrop_forwarded_proto_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                             *rv;
    ngx_int_t                         index;
    ngx_str_t                         name = ngx_string("realip_remote_addr");
    ngx_http_bulletdrop_loc_conf_t   *blcf = conf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK || !blcf->forwarded_proto) {
        return rv;
    }

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulletdrop_module);

    if (bmcf->realip_index == NGX_CONF_UNSET) {
        /* nginx refuses the configuration if realip is not built in */
        index = ngx_http_get_variable_index(cf, &name);
        if (index == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        bmcf->realip_index = index;
    }

    return NGX_CONF_OK;
}


/*
 * "https://host[:port]" as the client named this server.  The name is the
 * one nginx served (r->headers_in.server: the request line's in an
 * absolute-form request, lower case, without a trailing dot), and the Host
 * header must name the same; the port is the Host header's.
 */

ngx_int_t
ngx_http_bulletdrop_base_url(ngx_http_request_t *r, ngx_str_t *url)
{
    u_char      *p;
    ngx_str_t    host, port, name;

    if (r->headers_in.host == NULL || r->headers_in.host->value.len == 0) {
        return NGX_DECLINED;
    }

    host = r->headers_in.host->value;

    if (ngx_http_bulletdrop_host_port(&host, &port) != NGX_OK) {
        return NGX_DECLINED;
    }

    name = r->headers_in.server;
    host.len -= port.len;

    if (host.len && host.data[host.len - 1] == '.') {
        host.len--;
    }

    if (host.len != name.len
        || ngx_strncasecmp(host.data, name.data, name.len) != 0
        || ngx_http_bulletdrop_host_name(&name) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    url->data = ngx_pnalloc(r->pool, sizeof("https://") + name.len
                                     + port.len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(url->data, "%s://%V",
                    ngx_http_bulletdrop_https(r) ? "https" : "http", &name);

    if (port.len) {
        p = ngx_cpymem(p, port.data, port.len);
    }

    url->len = p - url->data;

    return NGX_OK;
}


/*
 * A name for a link: DNS labels of [a-z0-9-], not starting or ending with
 * '-' (1 to 63 bytes, 253 in all), or an IPv6 address in brackets.  nginx
 * lets far more through (quotes, '@', any byte over 0x7f).
 */

static ngx_int_t
ngx_http_bulletdrop_host_name(ngx_str_t *name)
{
    u_char  c;
    size_t  i, label;
#if (NGX_HAVE_INET6)
    u_char  addr[16];
#endif

    if (name->len == 0 || name->len > 253) {
        return NGX_DECLINED;
    }

    if (name->data[0] == '[') {
#if (NGX_HAVE_INET6)
        if (name->len > 2 && name->data[name->len - 1] == ']'
            && ngx_inet6_addr(name->data + 1, name->len - 2, addr) == NGX_OK)
        {
            return NGX_OK;
        }
#endif
        return NGX_DECLINED;
    }

    label = 0;

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (c == '.') {
            if (label == 0 || name->data[i - 1] == '-') {
                return NGX_DECLINED;
            }

            label = 0;
            continue;
        }

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || (c == '-' && label > 0))
            || ++label > 63)
        {
            return NGX_DECLINED;
        }
    }

    return (label && name->data[name->len - 1] != '-') ? NGX_OK
                                                       : NGX_DECLINED;
}


/*
 * "http://<host>:<port>": another host of this server, on the scheme and
 * the port the client used (a development stack's links carry its port)
 */

ngx_int_t
ngx_http_bulletdrop_origin(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *url)
{
    ngx_str_t  port;

    ngx_str_null(&port);

    /* a port that is not 1 to 65535 stays out of links and headers */
    if (r->headers_in.host
        && ngx_http_bulletdrop_host_port(&r->headers_in.host->value, &port)
           != NGX_OK)
    {
        ngx_str_null(&port);
    }

    url->data = ngx_pnalloc(r->pool, sizeof("https://") + host->len
                                     + port.len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    url->len = ngx_sprintf(url->data, "%s://%V%V",
                           ngx_http_bulletdrop_https(r) ? "https" : "http",
                           host, &port)
               - url->data;

    return NGX_OK;
}


/*
 * The port of a Host header's value, ":<port>", or empty without one;
 * NGX_DECLINED when what follows the last colon is not a port, 1 to 65535
 * without leading zeros (ngx_atoi() takes any number of them)
 */

static ngx_int_t
ngx_http_bulletdrop_host_port(ngx_str_t *host, ngx_str_t *port)
{
    u_char     *p, *colon;
    ngx_int_t   n;

    ngx_str_null(port);

    p = host->data;
    colon = p + host->len;

    /* the last colon, after an IPv6 address's bracket if any */
    while (colon > p && colon[-1] != ':' && colon[-1] != ']') {
        colon--;
    }

    if (colon == p || colon[-1] != ':') {
        return NGX_OK;
    }

    n = ngx_atoi(colon, p + host->len - colon);

    if (p + host->len - colon > NGX_HTTP_BULLETDROP_PORT_LEN
        || n == NGX_ERROR || n < 1 || n > 65535 || colon[0] == '0')
    {
        return NGX_DECLINED;
    }

    port->data = colon - 1;
    port->len = p + host->len - port->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_bad_host(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_error_record(ctx, BD_ERR_INVALID_HOST, NULL);
}


ngx_http_bulletdrop_ctx_t *
ngx_http_bulletdrop_query_done(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    return ngx_http_bulletdrop_query_done_for(q->data, q, res);
}


ngx_http_bulletdrop_ctx_t *
ngx_http_bulletdrop_query_done_for(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ngx_http_bulletdrop_query_ok_for(r, q, res, PGRES_TUPLES_OK)
        != NGX_OK)
    {
        ngx_http_bulletdrop_finish(r, NGX_DECLINED);
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

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "bulletdrop: finish with %i", rc);

    ngx_http_finalize_request(r, ngx_http_bulletdrop_answer(r, rc));
    ngx_http_run_posted_requests(c);
}


ngx_table_elt_t *
ngx_http_bulletdrop_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_uint_t
ngx_http_bulletdrop_query_refused(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, const char *sqlstate)
{
    char  *state;

    if (q->status != NGX_HTTP_BULLETDROP_DB_OK
        || PQresultStatus(res) != PGRES_FATAL_ERROR)
    {
        return 0;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return state != NULL && ngx_strcmp(state, sqlstate) == 0;
}


char *
ngx_http_bulletdrop_conf_read_secret(ngx_conf_t *cf, const char *directive,
    ngx_str_t *name, ngx_str_t *text)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%s\": cannot open \"%V\"", directive, name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || !ngx_is_file(&fi)
        || ngx_file_size(&fi) > 4096)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": \"%V\" is not a small regular file",
                           directive, name);
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    /* one more byte, for a NUL the caller may put after what it takes */
    text->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (text->data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, text->data, ngx_file_size(&fi), 0);
    (void) ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    text->len = n;
    text->data[n] = '\0';

    return NGX_CONF_OK;
}
