/*
 * BulletDrop: a per-worker pool of non-blocking PostgreSQL connections
 * driven by nginx's event loop.
 *
 * Each connection is a libpq PGconn in non-blocking mode whose socket is
 * wrapped in an ngx_connection_t.  It is registered level-triggered:
 * PQconsumeInput() does not promise to drain the socket, and an
 * edge-triggered registration could then miss the rest of a reply.
 *
 * A connection is in one state at a time (the enum below); every change
 * goes through set_state(), and advance() decides, from the state alone,
 * what follows a reply.  The one deadline of whatever it is doing
 * (connecting, or the query it runs) is the timer of its read event.
 * Queries that find no idle connection wait in a bounded FIFO queue, each
 * with a timer at its own deadline.  Handlers are always called from a
 * posted event, so none runs while the pool is halfway through a change.
 *
 * The first connection of each worker also LISTENs on the "bulletdrop"
 * channel, once after each connect, before it takes queries.  Its
 * notifications are read with whatever else it reads, in any state, and
 * go to the conf's notify handler.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_bulletdrop_db.h"
#include "ngx_http_bulletdrop_metrics.h"
#include "ngx_http_bulletdrop_sql.h"


/* reconnect after the n-th failed attempt in MIN * 2^(n-1) ms, up to MAX */
#define NGX_HTTP_BULLETDROP_DB_BACKOFF_MIN   250
#define NGX_HTTP_BULLETDROP_DB_BACKOFF_MAX   5000


/*
 * A connection's states.  A working one goes
 *
 *     closed -> connecting [-> listening] -> idle
 *     idle [-> preparing] -> querying -> idle
 *
 * and, when the requester of its query leaves, from preparing or querying
 * to draining, then idle once the reply is read.  It goes back to closed
 * from any state when it breaks, times out or the worker exits.  The
 * states from listening on are "busy": a reply is due.
 */

typedef enum {
    bd_conn_closed = 0,     /* its reconnect timer may be set */
    bd_conn_connecting,     /* PQconnectPoll() until it is up */
    bd_conn_idle,           /* in pool->idle, waiting for a query */
    bd_conn_listening,      /* LISTEN sent (the first connection only) */
    bd_conn_preparing,      /* the query's statement sent to be prepared */
    bd_conn_querying,       /* the query sent */
    bd_conn_draining,       /* a reply its requester no longer waits for */
    bd_conn_nstates
} ngx_http_bulletdrop_db_state_e;

#define ngx_http_bulletdrop_db_busy(state)  ((state) >= bd_conn_listening)


static const char  *ngx_http_bulletdrop_db_states[] = {
    "closed",
    "connecting",
    "idle",
    "listening",
    "preparing",
    "querying",
    "draining"
};


/*
 * What an error line on a connection's log says was under way, followed
 * by the statement: ' while running "bd_user_by_key"'.  Lines about
 * connecting say so themselves.
 */

static char  *ngx_http_bulletdrop_db_actions[] = {
    NULL,
    NULL,
    NULL,
    "running",
    "preparing",
    "running",
    "draining"
};


#if (NGX_DEBUG)

/* what PQconnectPoll() returns (PostgresPollingStatusType) */
static const char  *ngx_http_bulletdrop_db_polls[] = {
    "failed",
    "reading",
    "writing",
    "ok",
    "active"
};

/* q->status */
static const char  *ngx_http_bulletdrop_db_statuses[] = {
    "ok",
    "timed out",
    "unavailable",
    "busy",
    "lost"
};

#endif


struct ngx_http_bulletdrop_db_conn_s {
    ngx_http_bulletdrop_db_pool_t   *pool;
    ngx_uint_t                       id;
    /* the pool's log, with what this connection does as its action */
    ngx_log_t                        log;
    PGconn                          *pg;
    ngx_connection_t                *c;
    ngx_event_t                      reconnect;
    ngx_queue_t                      idle;

    /* set while preparing and querying, and only then */
    ngx_http_bulletdrop_db_query_t  *query;
    PGresult                        *result;
    /* what a busy connection runs */
    ngx_uint_t                       stmt;

    ngx_uint_t                       failures;
    ngx_uint_t                       state;

    /* one flag per statement of ngx_http_bulletdrop_sql[] */
    u_char                          *prepared;
};


struct ngx_http_bulletdrop_db_pool_s {
    ngx_http_bulletdrop_db_conf_t   *conf;
    ngx_log_t                        log;
    ngx_http_bulletdrop_db_conn_t   *conns;
    ngx_uint_t                       nconns;
    /* connections per state */
    ngx_uint_t                       count[bd_conn_nstates];
    ngx_queue_t                      idle;
    ngx_queue_t                      waiting;
    ngx_uint_t                       nwaiting;
};


static char *ngx_http_bulletdrop_db_resolve(ngx_conf_t *cf,
    ngx_http_bulletdrop_db_conf_t *dbcf);
static ngx_int_t ngx_http_bulletdrop_db_add_host(ngx_pool_t *pool,
    ngx_str_t *lists, ngx_str_t *host, ngx_str_t *addr, ngx_str_t *port,
    ngx_uint_t n);
static ngx_keyval_t *ngx_http_bulletdrop_db_option(ngx_array_t *options,
    const char *key);
static ngx_int_t ngx_http_bulletdrop_db_add_option(ngx_conf_t *cf,
    ngx_array_t *options, const char *key, ngx_str_t *value);

static void ngx_http_bulletdrop_db_connect(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_connect_poll(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_listen(ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_notified(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_connect_failed(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_event_handler(ngx_event_t *ev);
static void ngx_http_bulletdrop_db_reconnect_handler(ngx_event_t *ev);
static void ngx_http_bulletdrop_db_timed_out(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_receive(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_advance(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_listened(
    ngx_http_bulletdrop_db_conn_t *conn);
static ngx_int_t ngx_http_bulletdrop_db_prepared(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_release(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_start(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_http_bulletdrop_db_query_t *q);
static ngx_int_t ngx_http_bulletdrop_db_send(
    ngx_http_bulletdrop_db_conn_t *conn);
static ngx_int_t ngx_http_bulletdrop_db_flush(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_lost(ngx_http_bulletdrop_db_conn_t *conn,
    const char *what);
static void ngx_http_bulletdrop_db_drop(ngx_http_bulletdrop_db_conn_t *conn,
    const char *what);
static void ngx_http_bulletdrop_db_close(ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_schedule(
    ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_set_state(
    ngx_http_bulletdrop_db_conn_t *conn, ngx_uint_t state);
static void ngx_http_bulletdrop_db_set_fd(ngx_http_bulletdrop_db_conn_t *conn);
static void ngx_http_bulletdrop_db_gauges(ngx_http_bulletdrop_db_pool_t *pool);
static ngx_int_t ngx_http_bulletdrop_db_watch(
    ngx_http_bulletdrop_db_conn_t *conn, ngx_int_t event);
static ngx_int_t ngx_http_bulletdrop_db_unwatch(
    ngx_http_bulletdrop_db_conn_t *conn, ngx_int_t event);
static ngx_uint_t ngx_http_bulletdrop_db_alive(
    ngx_http_bulletdrop_db_pool_t *pool);
static void ngx_http_bulletdrop_db_pump(ngx_http_bulletdrop_db_pool_t *pool);
static ngx_http_bulletdrop_db_conn_t *ngx_http_bulletdrop_db_idle(
    ngx_http_bulletdrop_db_pool_t *pool);
static void ngx_http_bulletdrop_db_enqueue(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t at_head);
static void ngx_http_bulletdrop_db_dequeue(ngx_http_bulletdrop_db_query_t *q);
static void ngx_http_bulletdrop_db_wait_expired(ngx_event_t *ev);
static void ngx_http_bulletdrop_db_complete(ngx_http_bulletdrop_db_query_t *q,
    ngx_int_t status, PGresult *res);
static void ngx_http_bulletdrop_db_completed(ngx_event_t *ev);
static void ngx_http_bulletdrop_db_abandon(void *data);
static void ngx_http_bulletdrop_db_notice(void *arg, const char *message);
static u_char *ngx_http_bulletdrop_db_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_http_bulletdrop_db_log(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_uint_t level, const char *what, const char *detail);


/* configuration */

char *
ngx_http_bulletdrop_db_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulletdrop_db_conf_t *dbcf = (void *) ((char *) conf
                                                     + cmd->offset);

    char               *err;
    size_t              len;
    ngx_str_t          *value, val;
    PQconninfoOption   *opts, *o;

    if (dbcf->options != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* directive arguments are NUL-terminated by the config parser */
    err = NULL;
    opts = PQconninfoParse((char *) value[1].data, &err);

    if (opts == NULL) {
        if (err == NULL) {
            return NGX_CONF_ERROR;
        }

        len = ngx_strlen(err);
        while (len && (err[len - 1] == '\n' || err[len - 1] == ' ')) {
            len--;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"bulletdrop_db\" connection string: %*s",
                           len, err);
        PQfreemem(err);
        return NGX_CONF_ERROR;
    }

    dbcf->options = ngx_array_create(cf->pool, 8, sizeof(ngx_keyval_t));
    if (dbcf->options == NULL) {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL) {
            continue;
        }

        val.data = (u_char *) o->val;
        val.len = ngx_strlen(o->val);

        if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options, o->keyword,
                                              &val)
            != NGX_OK)
        {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }
    }

    PQconninfoFree(opts);

    return ngx_http_bulletdrop_db_resolve(cf, dbcf);
}


/*
 * libpq looks host names up with a blocking getaddrinfo() while it
 * connects.  Like nginx does for upstream servers, the names are resolved
 * once here, at configuration time, and passed as "hostaddr"; "host" is
 * kept for TLS verification and the password file.  A name with several
 * addresses becomes several entries, tried in order as libpq would.
 */

static char *
ngx_http_bulletdrop_db_resolve(ngx_conf_t *cf,
    ngx_http_bulletdrop_db_conf_t *dbcf)
{
    u_char        *h, *hend, *pt, *pend, *comma;
    ngx_str_t      host, port, addr, lists[3];
    ngx_url_t      u;
    ngx_uint_t     i, n, multi_port;
    ngx_keyval_t  *host_kv, *port_kv;
    u_char         text[NGX_SOCKADDR_STRLEN];

    host_kv = ngx_http_bulletdrop_db_option(dbcf->options, "host");

    if (host_kv == NULL || host_kv->value.len == 0
        || ngx_http_bulletdrop_db_option(dbcf->options, "hostaddr") != NULL)
    {
        return NGX_CONF_OK;
    }

    port_kv = ngx_http_bulletdrop_db_option(dbcf->options, "port");

    /* one port applies to every host; a list must match the hosts */
    multi_port = (port_kv != NULL
                  && ngx_strlchr(port_kv->value.data,
                                 port_kv->value.data + port_kv->value.len,
                                 ',')
                     != NULL);

    /* the new host, hostaddr and port lists, entry by entry */
    ngx_memzero(lists, sizeof(lists));
    ngx_str_null(&port);

    h = host_kv->value.data;
    hend = h + host_kv->value.len;
    pt = multi_port ? port_kv->value.data : NULL;
    pend = multi_port ? pt + port_kv->value.len : NULL;
    n = 0;

    for ( ;; ) {
        comma = ngx_strlchr(h, hend, ',');
        host.data = h;
        host.len = (comma ? comma : hend) - h;

        if (multi_port) {
            if (pt > pend) {
                goto mismatch;
            }

            port.data = pt;
            pt = ngx_strlchr(pt, pend, ',');
            pt = pt ? pt : pend;
            port.len = pt - port.data;
            pt++;
        }

        if (host.len == 0 || host.data[0] == '/' || host.data[0] == '@') {
            /* a Unix socket: an empty hostaddr entry uses the host as is */
            ngx_str_null(&addr);

            if (ngx_http_bulletdrop_db_add_host(cf->pool, lists, &host,
                                                &addr, &port, n++)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else {
            ngx_memzero(&u, sizeof(ngx_url_t));
            u.host = host;
            u.port = 5432;

            if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"bulletdrop_db\": %s \"%V\"",
                                   u.err ? u.err : "cannot resolve", &host);
                return NGX_CONF_ERROR;
            }

            for (i = 0; i < u.naddrs; i++) {
                addr.data = text;
                addr.len = ngx_sock_ntop(u.addrs[i].sockaddr,
                                         u.addrs[i].socklen, text,
                                         NGX_SOCKADDR_STRLEN, 0);

                if (ngx_http_bulletdrop_db_add_host(cf->pool, lists, &host,
                                                    &addr, &port, n++)
                    != NGX_OK)
                {
                    return NGX_CONF_ERROR;
                }
            }
        }

        if (comma == NULL) {
            break;
        }

        h = comma + 1;
    }

    if (multi_port && pt <= pend) {
        goto mismatch;
    }

    if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options, "host",
                                          &lists[0])
        != NGX_OK
        || ngx_http_bulletdrop_db_add_option(cf, dbcf->options, "hostaddr",
                                             &lists[1])
           != NGX_OK
        || (multi_port
            && ngx_http_bulletdrop_db_add_option(cf, dbcf->options, "port",
                                                 &lists[2])
               != NGX_OK))
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

mismatch:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"bulletdrop_db\": the port list does not "
                       "match the host list");
    return NGX_CONF_ERROR;
}


/* appends ",host", ",addr" and ",port" to the lists (no comma at n == 0) */

static ngx_int_t
ngx_http_bulletdrop_db_add_host(ngx_pool_t *pool, ngx_str_t *lists,
    ngx_str_t *host, ngx_str_t *addr, ngx_str_t *port, ngx_uint_t n)
{
    u_char      *p, *last;
    ngx_str_t   *item[3];
    ngx_uint_t   i;

    item[0] = host;
    item[1] = addr;
    item[2] = port;

    for (i = 0; i < 3; i++) {
        p = ngx_pnalloc(pool, lists[i].len + 1 + item[i]->len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /* memcpy() from NULL is undefined even for no bytes */
        last = p;

        if (n) {
            last = ngx_cpymem(last, lists[i].data, lists[i].len);
            *last++ = ',';
        }

        if (item[i]->len) {
            last = ngx_cpymem(last, item[i]->data, item[i]->len);
        }

        lists[i].data = p;
        lists[i].len = last - p;
    }

    return NGX_OK;
}


static ngx_keyval_t *
ngx_http_bulletdrop_db_option(ngx_array_t *options, const char *key)
{
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    kv = options->elts;

    for (i = 0; i < options->nelts; i++) {
        if (ngx_strcmp(kv[i].key.data, key) == 0) {
            return &kv[i];
        }
    }

    return NULL;
}


/* sets or adds an option; keys and values are kept NUL-terminated */

static ngx_int_t
ngx_http_bulletdrop_db_add_option(ngx_conf_t *cf, ngx_array_t *options,
    const char *key, ngx_str_t *value)
{
    ngx_keyval_t  *kv;

    kv = ngx_http_bulletdrop_db_option(options, key);

    if (kv == NULL) {
        kv = ngx_array_push(options);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.len = ngx_strlen(key);
        kv->key.data = ngx_pnalloc(cf->pool, kv->key.len + 1);
        if (kv->key.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kv->key.data, key, kv->key.len + 1);
    }

    kv->value.len = value->len;
    kv->value.data = ngx_pnalloc(cf->pool, value->len + 1);
    if (kv->value.data == NULL) {
        return NGX_ERROR;
    }

    if (value->len) {
        ngx_memcpy(kv->value.data, value->data, value->len);
    }

    kv->value.data[value->len] = '\0';

    return NGX_OK;
}


/*
 * Runs once every directive is known: defaults, then the parameter arrays
 * for PQconnectStartParams() with what the module relies on added.
 */

char *
ngx_http_bulletdrop_db_init_conf(ngx_conf_t *cf,
    ngx_http_bulletdrop_db_conf_t *dbcf)
{
    u_char        *p;
    ngx_str_t      value;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    ngx_conf_init_value(dbcf->pool_size, 4);
    ngx_conf_init_msec_value(dbcf->timeout, 5000);
    ngx_conf_init_value(dbcf->queue_size, 256);

    if (dbcf->options == NULL) {
        return NGX_CONF_OK;
    }

    /* every string the module sends or reads back is UTF-8 */
    ngx_str_set(&value, "UTF8");
    if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options,
                                          "client_encoding", &value)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* names the connections in pg_stat_activity unless the user did */
    ngx_str_set(&value, "bulletdrop");
    if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options,
                                          "fallback_application_name",
                                          &value)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /*
     * GSSAPI encryption is tried first by default over TCP, and the
     * Kerberos library may block looking for credentials
     */
    if (ngx_http_bulletdrop_db_option(dbcf->options, "gssencmode") == NULL) {
        ngx_str_set(&value, "disable");
        if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options,
                                              "gssencmode", &value)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /*
     * A query that outlives its deadline has its connection dropped; the
     * server-side statement_timeout stops the query itself.  User options
     * come after, so theirs win.
     */
    kv = ngx_http_bulletdrop_db_option(dbcf->options, "options");

    value.len = sizeof("-c statement_timeout=") - 1 + NGX_INT_T_LEN
                + (kv ? 1 + kv->value.len : 0);
    value.data = ngx_pnalloc(cf->pool, value.len);
    if (value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(value.data, "-c statement_timeout=%M", dbcf->timeout);
    if (kv) {
        p = ngx_sprintf(p, " %V", &kv->value);
    }
    value.len = p - value.data;

    if (ngx_http_bulletdrop_db_add_option(cf, dbcf->options, "options",
                                          &value)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    dbcf->keywords = ngx_pcalloc(cf->pool,
                                 (dbcf->options->nelts + 1) * sizeof(char *));
    dbcf->values = ngx_pcalloc(cf->pool,
                               (dbcf->options->nelts + 1) * sizeof(char *));
    if (dbcf->keywords == NULL || dbcf->values == NULL) {
        return NGX_CONF_ERROR;
    }

    kv = dbcf->options->elts;

    for (i = 0; i < dbcf->options->nelts; i++) {
        dbcf->keywords[i] = (const char *) kv[i].key.data;
        dbcf->values[i] = (const char *) kv[i].value.data;
    }

    return NGX_CONF_OK;
}


/* worker start and exit */

ngx_int_t
ngx_http_bulletdrop_db_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_db_conf_t *dbcf)
{
    ngx_uint_t                      i;
    ngx_http_bulletdrop_db_conn_t  *conn;
    ngx_http_bulletdrop_db_pool_t  *pool;

    if (dbcf->keywords == NULL) {
        return NGX_OK;
    }

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_http_bulletdrop_db_pool_t));
    if (pool == NULL) {
        return NGX_ERROR;
    }

    pool->conf = dbcf;
    pool->nconns = dbcf->pool_size;
    pool->log = *cycle->log;

    pool->conns = ngx_pcalloc(cycle->pool, pool->nconns
                              * sizeof(ngx_http_bulletdrop_db_conn_t));
    if (pool->conns == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiting);

    for (i = 0; i < pool->nconns; i++) {
        conn = &pool->conns[i];

        conn->pool = pool;
        conn->id = i;

        conn->log = pool->log;
        conn->log.handler = ngx_http_bulletdrop_db_log_error;
        conn->log.data = conn;

        conn->prepared = ngx_pcalloc(cycle->pool, NGX_HTTP_BULLETDROP_SQL_N);
        if (conn->prepared == NULL) {
            return NGX_ERROR;
        }

        conn->reconnect.handler = ngx_http_bulletdrop_db_reconnect_handler;
        conn->reconnect.data = conn;
        conn->reconnect.log = &conn->log;
        /* a pending reconnect must not hold a worker that is shutting down */
        conn->reconnect.cancelable = 1;
    }

    pool->count[bd_conn_closed] = pool->nconns;
    dbcf->pool = pool;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &pool->log, 0,
                   "bulletdrop db: %ui connections, timeout %M ms, "
                   "queue %i", pool->nconns, dbcf->timeout,
                   dbcf->queue_size);

    for (i = 0; i < pool->nconns; i++) {
        ngx_http_bulletdrop_db_connect(&pool->conns[i]);
    }

    return NGX_OK;
}


void
ngx_http_bulletdrop_db_exit_process(ngx_http_bulletdrop_db_conf_t *dbcf)
{
    ngx_uint_t                      i;
    ngx_http_bulletdrop_db_conn_t  *conn;

    if (dbcf->pool == NULL) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &dbcf->pool->log, 0,
                   "bulletdrop db: exit, %ui queries wait",
                   dbcf->pool->nwaiting);

    for (i = 0; i < dbcf->pool->nconns; i++) {
        conn = &dbcf->pool->conns[i];

        if (conn->reconnect.timer_set) {
            ngx_del_timer(&conn->reconnect);
        }

        if (conn->query) {
            conn->query->conn = NULL;
            conn->query = NULL;
        }

        ngx_http_bulletdrop_db_close(conn);
    }

    dbcf->pool = NULL;
}


/* connecting */

static void
ngx_http_bulletdrop_db_connect(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_connection_t               *c;
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = conn->pool;

    conn->pg = PQconnectStartParams(pool->conf->keywords, pool->conf->values,
                                    0);
    if (conn->pg == NULL) {
        ngx_log_error(NGX_LOG_ALERT, &pool->log, 0,
                      "bulletdrop db #%ui: PQconnectStartParams() failed",
                      conn->id);
        goto failed;
    }

    if (PQstatus(conn->pg) == CONNECTION_BAD
        || PQsetnonblocking(conn->pg, 1) != 0)
    {
        ngx_http_bulletdrop_db_log(conn, NGX_LOG_ERR, "cannot connect",
                                   PQerrorMessage(conn->pg));
        goto failed;
    }

    PQsetNoticeProcessor(conn->pg, ngx_http_bulletdrop_db_notice, conn);

    if (PQsocket(conn->pg) == -1) {
        ngx_http_bulletdrop_db_log(conn, NGX_LOG_ERR, "cannot connect",
                                   PQerrorMessage(conn->pg));
        goto failed;
    }

    c = ngx_get_connection(PQsocket(conn->pg), &conn->log);
    if (c == NULL) {
        goto failed;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: connect start, fd %d", conn->id,
                   c->fd);

    c->data = conn;
    c->read->handler = ngx_http_bulletdrop_db_event_handler;
    c->write->handler = ngx_http_bulletdrop_db_event_handler;
    c->read->log = &conn->log;
    c->write->log = &conn->log;

    conn->c = c;
    ngx_http_bulletdrop_db_set_state(conn, bd_conn_connecting);

    c->read->cancelable = 1;
    ngx_add_timer(c->read, pool->conf->timeout);

    /* libpq: before the first PQconnectPoll(), wait until writable */
    if (ngx_http_bulletdrop_db_watch(conn, NGX_WRITE_EVENT) != NGX_OK) {
        goto failed;
    }

    return;

failed:

    ngx_http_bulletdrop_db_connect_failed(conn);
}


static void
ngx_http_bulletdrop_db_connect_poll(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_int_t                       event;
    PostgresPollingStatusType       status;
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = conn->pool;

    /*
     * libpq may close the socket and open another one inside
     * PQconnectPoll() (the next address, or a retry without TLS): take
     * the registration off while the old descriptor is surely still open.
     */
    if (ngx_http_bulletdrop_db_unwatch(conn, NGX_READ_EVENT) != NGX_OK
        || ngx_http_bulletdrop_db_unwatch(conn, NGX_WRITE_EVENT) != NGX_OK)
    {
        goto failed;
    }

    status = PQconnectPoll(conn->pg);

    ngx_http_bulletdrop_db_set_fd(conn);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: connect poll: %s, fd %d", conn->id,
                   ngx_http_bulletdrop_db_polls[status], conn->c->fd);

    switch (status) {

    case PGRES_POLLING_READING:
        event = NGX_READ_EVENT;
        break;

    case PGRES_POLLING_WRITING:
        event = NGX_WRITE_EVENT;
        break;

    case PGRES_POLLING_OK:
        ngx_del_timer(conn->c->read);
        conn->c->read->cancelable = 0;

        if (ngx_http_bulletdrop_db_watch(conn, NGX_READ_EVENT) != NGX_OK) {
            goto failed;
        }

        if (conn->failures) {
            ngx_log_error(NGX_LOG_NOTICE, &pool->log, 0,
                          "bulletdrop db #%ui: connected after %ui failed "
                          "attempts", conn->id, conn->failures);
        }

        conn->failures = 0;

        if (conn->id == 0 && pool->conf->notify) {
            ngx_http_bulletdrop_db_listen(conn);
            return;
        }

        ngx_http_bulletdrop_db_set_state(conn, bd_conn_idle);
        ngx_http_bulletdrop_db_pump(pool);
        return;

    default: /* PGRES_POLLING_FAILED */
        ngx_http_bulletdrop_db_log(conn,
                                   conn->failures ? NGX_LOG_INFO
                                                  : NGX_LOG_ERR,
                                   "cannot connect",
                                   PQerrorMessage(conn->pg));
        goto failed;
    }

    if (ngx_http_bulletdrop_db_watch(conn, event) == NGX_OK) {
        return;
    }

failed:

    ngx_http_bulletdrop_db_connect_failed(conn);
}


/*
 * LISTEN is sent like a query that no request waits for; the connection
 * takes queries once it is answered (see listened()).
 */

static void
ngx_http_bulletdrop_db_listen(ngx_http_bulletdrop_db_conn_t *conn)
{
    conn->stmt = NGX_HTTP_BULLETDROP_SQL_LISTEN;

    ngx_http_bulletdrop_db_set_state(conn, bd_conn_listening);
    ngx_add_timer(conn->c->read, conn->pool->conf->timeout);

    if (!PQsendQuery(conn->pg, ngx_http_bulletdrop_sql[conn->stmt].sql)) {
        ngx_http_bulletdrop_db_lost(conn, "cannot send");
        return;
    }

    (void) ngx_http_bulletdrop_db_flush(conn);
}


static void
ngx_http_bulletdrop_db_notified(ngx_http_bulletdrop_db_conn_t *conn)
{
    PGnotify                          *n;
    ngx_http_bulletdrop_db_notify_pt   notify;

    notify = conn->pool->conf->notify;

    while ((n = PQnotifies(conn->pg)) != NULL) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: notified \"%s\" while %s",
                       conn->id, n->extra,
                       ngx_http_bulletdrop_db_states[conn->state]);

        if (notify) {
            notify(&conn->pool->log, n->extra);
        }

        PQfreemem(n);
    }
}


/*
 * A failed attempt: the next one is scheduled.  If no connection is left
 * up or on its way up, pump() fails the waiting queries at once rather
 * than letting them wait for an attempt that may never succeed.
 */

static void
ngx_http_bulletdrop_db_connect_failed(ngx_http_bulletdrop_db_conn_t *conn)
{
    conn->failures++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: connect failed, %ui in a row",
                   conn->id, conn->failures);

    ngx_http_bulletdrop_db_close(conn);
    ngx_http_bulletdrop_db_schedule(conn);
    ngx_http_bulletdrop_db_pump(conn->pool);
}


static void
ngx_http_bulletdrop_db_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_bulletdrop_db_conn_t  *conn;

    conn = ev->data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bulletdrop db #%ui: reconnect timer", conn->id);

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_bulletdrop_db_connect(conn);
}


/*
 * The first attempt after losing a working connection is made at once
 * (the server dropped one session, or was restarted); attempts after
 * failures back off exponentially, with jitter so that the workers do not
 * knock in step.
 */

static void
ngx_http_bulletdrop_db_schedule(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_msec_t  delay;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: no reconnect, exiting",
                       conn->id);
        return;
    }

    ngx_http_bulletdrop_metrics_add(BD_METRIC_DB_RECONNECTS, 1);

    if (conn->failures == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: reconnect now", conn->id);

        ngx_http_bulletdrop_db_connect(conn);
        return;
    }

    delay = NGX_HTTP_BULLETDROP_DB_BACKOFF_MAX;

    if (conn->failures < 16) {
        delay = ngx_min(delay, (ngx_msec_t) NGX_HTTP_BULLETDROP_DB_BACKOFF_MIN
                               << (conn->failures - 1));
    }

    delay -= ngx_random() % (delay / 4 + 1);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: reconnect in %M ms, %ui failed",
                   conn->id, delay, conn->failures);

    ngx_add_timer(&conn->reconnect, delay);
}


/* events */

static void
ngx_http_bulletdrop_db_event_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c;
    ngx_http_bulletdrop_db_conn_t  *conn;

    c = ev->data;
    conn = c->data;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bulletdrop db #%ui: %s event while %s%s", conn->id,
                   ev->write ? "write" : "read",
                   ngx_http_bulletdrop_db_states[conn->state],
                   ev->timedout ? ", timed out" : "");

#if (NGX_DEBUG)
    if (conn->state == bd_conn_closed) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "bulletdrop db #%ui: event while closed", conn->id);
        return;
    }
#endif

    if (ev->timedout) {
        ev->timedout = 0;
        ngx_http_bulletdrop_db_timed_out(conn);
        return;
    }

    if (conn->state == bd_conn_connecting) {
        ngx_http_bulletdrop_db_connect_poll(conn);
        return;
    }

    ngx_http_bulletdrop_db_receive(conn);
}


static void
ngx_http_bulletdrop_db_timed_out(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_uint_t                       level;
    ngx_http_bulletdrop_db_query_t  *q;
    ngx_http_bulletdrop_db_pool_t   *pool;

    pool = conn->pool;

    if (conn->state == bd_conn_connecting) {
        /* while the database stays away, only the first failure is an error */
        level = conn->failures ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, &pool->log, 0,
                      "bulletdrop db #%ui: connecting timed out after %M ms",
                      conn->id, pool->conf->timeout);

        ngx_http_bulletdrop_db_connect_failed(conn);
        return;
    }

    /*
     * Asking the server to cancel would block (PQcancel() connects
     * synchronously), so the connection is dropped instead: the server
     * gives the query up when it finds the client gone, or at its
     * statement_timeout.
     */

    q = conn->query;
    conn->query = NULL;

    ngx_log_error(NGX_LOG_ERR, &pool->log, 0,
                  "bulletdrop db #%ui: \"%s\" timed out%s, reconnecting",
                  conn->id, ngx_http_bulletdrop_sql[conn->stmt].name,
                  (conn->state == bd_conn_draining)
                  ? " after its requester left" : "");

    ngx_http_bulletdrop_db_close(conn);
    ngx_http_bulletdrop_db_schedule(conn);

    if (q) {
        ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_TIMEOUT,
                                        NULL);
    }

    ngx_http_bulletdrop_db_pump(pool);
}


static void
ngx_http_bulletdrop_db_receive(ngx_http_bulletdrop_db_conn_t *conn)
{
    PGresult  *res;

    if (conn->c->write->active
        && ngx_http_bulletdrop_db_flush(conn) == NGX_ERROR)
    {
        return;
    }

    if (!PQconsumeInput(conn->pg)) {
        ngx_http_bulletdrop_db_lost(conn, "connection lost");
        return;
    }

    ngx_http_bulletdrop_db_notified(conn);

    if (conn->state == bd_conn_idle) {
        /*
         * no reply is due on an idle connection: besides notifications,
         * all it can hear is the server closing it
         */
        if (PQstatus(conn->pg) == CONNECTION_BAD) {
            ngx_http_bulletdrop_db_lost(conn, "connection lost");
        }

        return;
    }

    while (!PQisBusy(conn->pg)) {
        res = PQgetResult(conn->pg);

        if (res == NULL) {
            ngx_http_bulletdrop_db_advance(conn);
            return;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: result %s while %s", conn->id,
                       PQresStatus(PQresultStatus(res)),
                       ngx_http_bulletdrop_db_states[conn->state]);

        /* a prepared statement yields one result; keep the first */
        if (conn->result == NULL) {
            conn->result = res;

        } else {
            PQclear(res);
        }
    }

    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        ngx_http_bulletdrop_db_lost(conn, "connection lost");
    }
}


/*
 * The dispatcher.  libpq has returned all it will for the operation under
 * way, its first result in conn->result: the state says what comes next.
 */

static void
ngx_http_bulletdrop_db_advance(ngx_http_bulletdrop_db_conn_t *conn)
{
    if (conn->result == NULL || PQstatus(conn->pg) == CONNECTION_BAD) {
        /* e.g. "terminating connection due to administrator command" */
        ngx_http_bulletdrop_db_lost(conn, "connection lost");
        return;
    }

    switch (conn->state) {

    case bd_conn_listening:
        ngx_http_bulletdrop_db_listened(conn);
        return;

    case bd_conn_preparing:
        if (ngx_http_bulletdrop_db_prepared(conn) == NGX_OK) {
            /* now the query itself */
            (void) ngx_http_bulletdrop_db_send(conn);
            return;
        }

        /* a statement that cannot be prepared: the error is its result */
        break;

    case bd_conn_querying:
        break;

    case bd_conn_draining:
        /*
         * what is drained may be the answer to a prepare (the statement
         * is not prepared yet): it is kept if it succeeded
         */
        if (!conn->prepared[conn->stmt]) {
            (void) ngx_http_bulletdrop_db_prepared(conn);
        }

        break;

    default:
        ngx_log_error(NGX_LOG_ALERT, &conn->pool->log, 0,
                      "bulletdrop db #%ui: a reply while %s", conn->id,
                      ngx_http_bulletdrop_db_states[conn->state]);
        ngx_http_bulletdrop_db_lost(conn, "unexpected reply");
        return;
    }

    ngx_http_bulletdrop_db_release(conn);
}


/*
 * Whatever was notified before the LISTEN (while this connection was down
 * or connecting) was missed: the notify handler is told that anything may
 * have changed.
 */

static void
ngx_http_bulletdrop_db_listened(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = conn->pool;

    if (PQresultStatus(conn->result) != PGRES_COMMAND_OK) {
        ngx_http_bulletdrop_db_log(conn, NGX_LOG_ERR, "cannot listen",
                                   PQresultErrorMessage(conn->result));
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: listening; anything may have changed",
                   conn->id);

    pool->conf->notify(&pool->log, NULL);

    ngx_http_bulletdrop_db_release(conn);
}


/* NGX_OK: the statement is prepared on this connection, its result freed */

static ngx_int_t
ngx_http_bulletdrop_db_prepared(ngx_http_bulletdrop_db_conn_t *conn)
{
    if (PQresultStatus(conn->result) != PGRES_COMMAND_OK) {
        ngx_http_bulletdrop_db_log(conn, NGX_LOG_ERR, "cannot prepare",
                                   PQresultErrorMessage(conn->result));
        return NGX_ERROR;
    }

    PQclear(conn->result);
    conn->result = NULL;
    conn->prepared[conn->stmt] = 1;

    return NGX_OK;
}


/*
 * The operation is over: the connection goes back to the pool, and its
 * query, if any, gets the result.
 */

static void
ngx_http_bulletdrop_db_release(ngx_http_bulletdrop_db_conn_t *conn)
{
    PGresult                        *res;
    ngx_http_bulletdrop_db_query_t  *q;

    res = conn->result;
    conn->result = NULL;

    if (conn->c->read->timer_set) {
        ngx_del_timer(conn->c->read);
    }

    q = conn->query;
    conn->query = NULL;

    ngx_http_bulletdrop_db_set_state(conn, bd_conn_idle);

    if (q) {
        ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_OK, res);

    } else if (res) {
        PQclear(res);
    }

    ngx_http_bulletdrop_db_pump(conn->pool);
}


/* running queries */

/* an idle connection takes a query */

static void
ngx_http_bulletdrop_db_start(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_http_bulletdrop_db_query_t *q)
{
    ngx_msec_int_t  left;

#if (NGX_DEBUG)
    if (conn->state != bd_conn_idle || conn->query || q->conn) {
        ngx_log_error(NGX_LOG_ALERT, &conn->pool->log, 0,
                      "bulletdrop db #%ui: \"%s\" started while %s",
                      conn->id, ngx_http_bulletdrop_sql[q->stmt].name,
                      ngx_http_bulletdrop_db_states[conn->state]);
    }
#endif

    conn->query = q;
    conn->stmt = q->stmt;
    q->conn = conn;

    left = (ngx_msec_int_t) (q->deadline - ngx_current_msec);
    ngx_add_timer(conn->c->read, left > 0 ? (ngx_msec_t) left : 1);

    (void) ngx_http_bulletdrop_db_send(conn);
}


/*
 * Sends the query's statement: PQsendPrepare() if this connection has not
 * prepared it yet (the query itself follows once that is answered), else
 * PQsendQueryPrepared().
 */

static ngx_int_t
ngx_http_bulletdrop_db_send(ngx_http_bulletdrop_db_conn_t *conn)
{
    int                               ok;
    const ngx_http_bulletdrop_sql_t  *stmt;

    stmt = &ngx_http_bulletdrop_sql[conn->stmt];

    if (!conn->prepared[conn->stmt]) {
        ngx_http_bulletdrop_db_set_state(conn, bd_conn_preparing);
        ok = PQsendPrepare(conn->pg, stmt->name, stmt->sql, stmt->nparams,
                           NULL);

    } else {
        ngx_http_bulletdrop_db_set_state(conn, bd_conn_querying);
        ok = PQsendQueryPrepared(conn->pg, stmt->name, stmt->nparams,
                                 conn->query->params, NULL, NULL, 0);
    }

    if (!ok) {
        ngx_http_bulletdrop_db_lost(conn, "cannot send");
        return NGX_ERROR;
    }

    return ngx_http_bulletdrop_db_flush(conn);
}


static ngx_int_t
ngx_http_bulletdrop_db_flush(ngx_http_bulletdrop_db_conn_t *conn)
{
    int  rc;

    rc = PQflush(conn->pg);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                   "bulletdrop db #%ui: flush: %s", conn->id,
                   rc == 0 ? "all sent" : (rc == 1 ? "more to send"
                                                   : "failed"));

    if (rc == 0) {
        if (ngx_http_bulletdrop_db_unwatch(conn, NGX_WRITE_EVENT) == NGX_OK) {
            return NGX_OK;
        }

    } else if (rc == 1) {
        if (ngx_http_bulletdrop_db_watch(conn, NGX_WRITE_EVENT) == NGX_OK) {
            return NGX_AGAIN;
        }
    }

    ngx_http_bulletdrop_db_lost(conn, "cannot send");

    return NGX_ERROR;
}


/*
 * The connection broke while its events were being handled: it is
 * dropped, and the waiting queries get the connections that are left (or
 * fail at once if none is left).
 */

static void
ngx_http_bulletdrop_db_lost(ngx_http_bulletdrop_db_conn_t *conn,
    const char *what)
{
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = conn->pool;

    ngx_http_bulletdrop_db_drop(conn, what);
    ngx_http_bulletdrop_db_pump(pool);
}


/*
 * Closes a broken connection and schedules its replacement.  Its query, if
 * any, is sent again when that is harmless (a read-only statement) and
 * there is time left: the next request after PostgreSQL dropped its
 * sessions should not fail.  When the server drops all of them, the other
 * idle connections may not know it yet, so a query may be retried once per
 * connection in the pool: each loss retires a different stale one.
 */

static void
ngx_http_bulletdrop_db_drop(ngx_http_bulletdrop_db_conn_t *conn,
    const char *what)
{
    ngx_http_bulletdrop_db_query_t  *q;

    q = conn->query;
    conn->query = NULL;

    ngx_http_bulletdrop_db_log(conn, NGX_LOG_ERR, what,
                               PQerrorMessage(conn->pg));

    ngx_http_bulletdrop_db_close(conn);
    ngx_http_bulletdrop_db_schedule(conn);

    if (q == NULL) {
        return;
    }

    q->conn = NULL;

    if (ngx_http_bulletdrop_sql[q->stmt].read_only
        && q->retries < conn->pool->nconns)
    {
        q->retries++;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                       "bulletdrop db: \"%s\" sent again, try %ui of %ui",
                       ngx_http_bulletdrop_sql[q->stmt].name, q->retries,
                       conn->pool->nconns);

        ngx_http_bulletdrop_db_enqueue(q, 1);
        return;
    }

    ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_LOST, NULL);
}


static void
ngx_http_bulletdrop_db_close(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c;

    c = conn->c;

    if (c) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        /*
         * libpq closes the socket itself when it sees the connection
         * break; the kernel has then already forgotten the registration
         */
        flags = (PQsocket(conn->pg) == c->fd) ? 0 : NGX_CLOSE_EVENT;

        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        conn->c = NULL;
    }

    if (conn->pg) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }

    if (conn->result) {
        PQclear(conn->result);
        conn->result = NULL;
    }

    ngx_memzero(conn->prepared, NGX_HTTP_BULLETDROP_SQL_N);

    ngx_http_bulletdrop_db_set_state(conn, bd_conn_closed);
}


/*
 * Every change of state goes through here: it keeps the idle list and the
 * counts per state, and it is what a debug log traces.
 */

static void
ngx_http_bulletdrop_db_set_state(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_uint_t state)
{
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = conn->pool;

    if (ngx_http_bulletdrop_db_busy(state)) {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: %s -> %s \"%s\"", conn->id,
                       ngx_http_bulletdrop_db_states[conn->state],
                       ngx_http_bulletdrop_db_states[state],
                       ngx_http_bulletdrop_sql[conn->stmt].name);

    } else {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &conn->log, 0,
                       "bulletdrop db #%ui: %s -> %s", conn->id,
                       ngx_http_bulletdrop_db_states[conn->state],
                       ngx_http_bulletdrop_db_states[state]);
    }

#if (NGX_DEBUG)
    if (pool->count[conn->state] == 0
        || (conn->query != NULL)
           != (state == bd_conn_preparing || state == bd_conn_querying))
    {
        ngx_log_error(NGX_LOG_ALERT, &pool->log, 0,
                      "bulletdrop db #%ui: %s -> %s out of step "
                      "(%ui %s, query %p)", conn->id,
                      ngx_http_bulletdrop_db_states[conn->state],
                      ngx_http_bulletdrop_db_states[state],
                      pool->count[conn->state],
                      ngx_http_bulletdrop_db_states[conn->state],
                      conn->query);
    }
#endif

    if (conn->state == bd_conn_idle) {
        ngx_queue_remove(&conn->idle);
    }

    pool->count[conn->state]--;
    pool->count[state]++;
    conn->state = state;
    conn->log.action = ngx_http_bulletdrop_db_actions[state];

    if (state == bd_conn_idle) {
        ngx_queue_insert_tail(&pool->idle, &conn->idle);
    }

    ngx_http_bulletdrop_db_gauges(pool);
}


/* this worker's connections and queue, for the metrics */

static void
ngx_http_bulletdrop_db_gauges(ngx_http_bulletdrop_db_pool_t *pool)
{
    ngx_uint_t  state, conns[BD_DB_STATES];

    conns[BD_DB_CLOSED] = pool->count[bd_conn_closed];
    conns[BD_DB_CONNECTING] = pool->count[bd_conn_connecting];
    conns[BD_DB_IDLE] = pool->count[bd_conn_idle];
    conns[BD_DB_BUSY] = 0;

    for (state = bd_conn_listening; state < bd_conn_nstates; state++) {
        conns[BD_DB_BUSY] += pool->count[state];
    }

    ngx_http_bulletdrop_metrics_db_pool(conns, pool->nwaiting);
}


/* follows libpq to the socket it uses now */

static void
ngx_http_bulletdrop_db_set_fd(ngx_http_bulletdrop_db_conn_t *conn)
{
    ngx_socket_t       fd;
    ngx_connection_t  *c;

    c = conn->c;
    fd = PQsocket(conn->pg);

    if (fd == c->fd || fd == (ngx_socket_t) -1) {
        return;
    }

    if (ngx_cycle->files) {
        if (ngx_cycle->files[c->fd] == c) {
            ngx_cycle->files[c->fd] = NULL;
        }

        if ((ngx_uint_t) fd < ngx_cycle->files_n) {
            ngx_cycle->files[fd] = c;
        }
    }

    c->fd = fd;
}


static ngx_int_t
ngx_http_bulletdrop_db_watch(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_int_t event)
{
    ngx_event_t  *ev;

    ev = (event == NGX_READ_EVENT) ? conn->c->read : conn->c->write;

    if (ev->active) {
        return NGX_OK;
    }

    return ngx_add_event(ev, event, NGX_LEVEL_EVENT);
}


static ngx_int_t
ngx_http_bulletdrop_db_unwatch(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_int_t event)
{
    ngx_event_t  *ev;

    ev = (event == NGX_READ_EVENT) ? conn->c->read : conn->c->write;

    if (!ev->active) {
        return NGX_OK;
    }

    return ngx_del_event(ev, event, 0);
}


/* the queue */

/* up or on its way up: connecting, idle or busy */

static ngx_uint_t
ngx_http_bulletdrop_db_alive(ngx_http_bulletdrop_db_pool_t *pool)
{
    return pool->nconns - pool->count[bd_conn_closed];
}


/*
 * Gives idle connections to waiting queries, in order.  When no connection
 * is up or on its way up, no connection will come to serve the queue: the
 * queries left in it fail at once.
 */

static void
ngx_http_bulletdrop_db_pump(ngx_http_bulletdrop_db_pool_t *pool)
{
    ngx_http_bulletdrop_db_conn_t   *conn;
    ngx_http_bulletdrop_db_query_t  *q;

    if (ngx_queue_empty(&pool->waiting)) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &pool->log, 0,
                   "bulletdrop db: pump: %ui waiting, %ui idle",
                   pool->nwaiting, pool->count[bd_conn_idle]);

    while (!ngx_queue_empty(&pool->waiting)) {

        q = ngx_queue_data(ngx_queue_head(&pool->waiting),
                           ngx_http_bulletdrop_db_query_t, queue);

        conn = ngx_http_bulletdrop_db_idle(pool);

        if (conn) {
            ngx_http_bulletdrop_db_dequeue(q);
            ngx_http_bulletdrop_db_start(conn, q);
            continue;
        }

        if (ngx_http_bulletdrop_db_alive(pool)) {
            return;
        }

        ngx_http_bulletdrop_db_dequeue(q);
        ngx_http_bulletdrop_db_complete(q,
                                        NGX_HTTP_BULLETDROP_DB_UNAVAILABLE,
                                        NULL);
    }
}


/*
 * An idle connection the server has not closed.  When PostgreSQL restarts
 * or terminates sessions, the news may sit unread in several sockets while
 * a request is being handled: reading it (one recv() that usually finds
 * nothing) before sending keeps a query off a dead connection.
 */

static ngx_http_bulletdrop_db_conn_t *
ngx_http_bulletdrop_db_idle(ngx_http_bulletdrop_db_pool_t *pool)
{
    ngx_http_bulletdrop_db_conn_t  *conn;

    while (!ngx_queue_empty(&pool->idle)) {
        conn = ngx_queue_data(ngx_queue_head(&pool->idle),
                              ngx_http_bulletdrop_db_conn_t, idle);

        if (PQconsumeInput(conn->pg) && PQstatus(conn->pg) == CONNECTION_OK)
        {
            return conn;
        }

        ngx_http_bulletdrop_db_drop(conn, "connection lost");
    }

    return NULL;
}


static void
ngx_http_bulletdrop_db_enqueue(ngx_http_bulletdrop_db_query_t *q,
    ngx_uint_t at_head)
{
    ngx_msec_int_t                  left;
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = q->db;

    left = (ngx_msec_int_t) (q->deadline - ngx_current_msec);
    if (left <= 0) {
        ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_TIMEOUT,
                                        NULL);
        return;
    }

    if (at_head) {
        ngx_queue_insert_head(&pool->waiting, &q->queue);

    } else {
        ngx_queue_insert_tail(&pool->waiting, &q->queue);
    }

    pool->nwaiting++;
    q->waiting = 1;
    ngx_http_bulletdrop_db_gauges(pool);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                   "bulletdrop db: \"%s\" waits%s, %ui in the queue",
                   ngx_http_bulletdrop_sql[q->stmt].name,
                   at_head ? " first" : "", pool->nwaiting);

    q->event.handler = ngx_http_bulletdrop_db_wait_expired;
    ngx_add_timer(&q->event, (ngx_msec_t) left);
}


static void
ngx_http_bulletdrop_db_dequeue(ngx_http_bulletdrop_db_query_t *q)
{
    ngx_queue_remove(&q->queue);
    q->db->nwaiting--;
    q->waiting = 0;
    ngx_http_bulletdrop_db_gauges(q->db);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                   "bulletdrop db: \"%s\" dequeued, %ui in the queue",
                   ngx_http_bulletdrop_sql[q->stmt].name, q->db->nwaiting);

    if (q->event.timer_set) {
        ngx_del_timer(&q->event);
    }
}


static void
ngx_http_bulletdrop_db_wait_expired(ngx_event_t *ev)
{
    ngx_http_bulletdrop_db_query_t  *q;

    q = ev->data;

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "bulletdrop db: \"%s\" waited %M ms for a connection",
                  ngx_http_bulletdrop_sql[q->stmt].name,
                  q->db->conf->timeout);

    ngx_http_bulletdrop_db_dequeue(q);
    ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_TIMEOUT, NULL);
}


/* the query API */

ngx_http_bulletdrop_db_query_t *
ngx_http_bulletdrop_db_query_create(ngx_http_bulletdrop_db_pool_t *dbp,
    ngx_pool_t *pool, ngx_log_t *log, ngx_uint_t stmt)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_bulletdrop_db_query_t  *q;

    q = ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_db_query_t));
    if (q == NULL) {
        return NULL;
    }

    if (ngx_http_bulletdrop_sql[stmt].nparams) {
        q->params = ngx_pcalloc(pool, ngx_http_bulletdrop_sql[stmt].nparams
                                      * sizeof(char *));
        if (q->params == NULL) {
            return NULL;
        }
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_bulletdrop_db_abandon;
    cln->data = q;

    q->stmt = stmt;
    q->db = dbp;
    q->pool = pool;
    q->event.data = q;
    q->event.log = log;

    /* not run yet: abandoning it must be a no-op */
    q->finished = 1;

    return q;
}


/* n-th text parameter; a NULL value is SQL NULL */

ngx_int_t
ngx_http_bulletdrop_db_param(ngx_http_bulletdrop_db_query_t *q, ngx_uint_t n,
    ngx_str_t *value)
{
    u_char  *p;

    if (n >= (ngx_uint_t) ngx_http_bulletdrop_sql[q->stmt].nparams) {
        return NGX_ERROR;
    }

    if (value == NULL) {
        q->params[n] = NULL;
        return NGX_OK;
    }

    /* libpq text parameters end at the first NUL */
    if (ngx_strlchr(value->data, value->data + value->len, '\0') != NULL) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(q->pool, value->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, value->data, value->len);
    p[value->len] = '\0';
    q->params[n] = (const char *) p;

    return NGX_OK;
}


void
ngx_http_bulletdrop_db_run(ngx_http_bulletdrop_db_query_t *q)
{
    ngx_http_bulletdrop_db_conn_t  *conn;
    ngx_http_bulletdrop_db_pool_t  *pool;

    pool = q->db;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                   "bulletdrop db: run \"%s\"",
                   ngx_http_bulletdrop_sql[q->stmt].name);

    q->finished = 0;
    q->retries = 0;
    q->deadline = ngx_current_msec + pool->conf->timeout;

    /*
     * the queue is served before a connection is left idle: with an idle
     * connection, there is no queue for this query to jump
     */
    conn = ngx_http_bulletdrop_db_idle(pool);

    if (conn) {
        ngx_http_bulletdrop_db_start(conn, q);
        return;
    }

    if (!ngx_http_bulletdrop_db_alive(pool)) {
        ngx_http_bulletdrop_db_complete(q,
                                        NGX_HTTP_BULLETDROP_DB_UNAVAILABLE,
                                        NULL);
        return;
    }

    if (pool->nwaiting >= (ngx_uint_t) pool->conf->queue_size) {
        ngx_log_error(NGX_LOG_WARN, q->event.log, 0,
                      "bulletdrop db: %ui queries already wait, "
                      "refusing \"%s\"", pool->nwaiting,
                      ngx_http_bulletdrop_sql[q->stmt].name);

        ngx_http_bulletdrop_db_complete(q, NGX_HTTP_BULLETDROP_DB_BUSY, NULL);
        return;
    }

    ngx_http_bulletdrop_db_enqueue(q, 0);
}


const char *
ngx_http_bulletdrop_db_status_text(ngx_int_t status)
{
    switch (status) {

    case NGX_HTTP_BULLETDROP_DB_OK:
        return "ok";

    case NGX_HTTP_BULLETDROP_DB_TIMEOUT:
        return "the database did not answer in time";

    case NGX_HTTP_BULLETDROP_DB_UNAVAILABLE:
        return "no connection to the database";

    case NGX_HTTP_BULLETDROP_DB_BUSY:
        return "too many database queries are waiting";

    default: /* NGX_HTTP_BULLETDROP_DB_LOST */
        return "the database connection was lost";
    }
}


ngx_int_t
ngx_http_bulletdrop_db_check(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, ExecStatusType want, ngx_log_t *log, const char *what)
{
    ngx_str_t  line;

    if (q->status == NGX_HTTP_BULLETDROP_DB_OK
        && PQresultStatus(res) == want)
    {
        return NGX_OK;
    }

    line = ngx_http_bulletdrop_db_line(q->status == NGX_HTTP_BULLETDROP_DB_OK
                               ? PQresultErrorMessage(res)
                               : ngx_http_bulletdrop_db_status_text(q->status));

    ngx_log_error(NGX_LOG_ERR, log, 0, "bulletdrop: %s: %V", what, &line);

    return NGX_ERROR;
}


/* reading results: see db.h for what each gives for NULL and bad values */

ngx_uint_t
ngx_http_bulletdrop_db_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 1 : 0;
}


int64_t
ngx_http_bulletdrop_db_int(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return -1;
    }

    /* NGX_ERROR (-1) for an empty value, a non-digit or an overflow */
    return ngx_atoof((u_char *) PQgetvalue(res, row, col),
                     PQgetlength(res, row, col));
}


int64_t
ngx_http_bulletdrop_db_msec(PGresult *res, int row, int col)
{
    u_char   *p, *dot, *end;
    int64_t   s, ms, unit;

    if (PQgetisnull(res, row, col)) {
        return -1;
    }

    p = (u_char *) PQgetvalue(res, row, col);
    end = p + PQgetlength(res, row, col);

    /* float8 text: "1765000000.123456", or "1765000000" when whole */
    dot = ngx_strlchr(p, end, '.');

    s = ngx_atoof(p, (dot ? dot : end) - p);
    if (s < 0 || s >= NGX_MAX_OFF_T_VALUE / 1000) {
        return -1;
    }

    ms = 0;

    if (dot) {
        for (p = dot + 1, unit = 100; p < end; p++, unit /= 10) {
            if (*p < '0' || *p > '9') {
                return -1;
            }

            ms += (*p - '0') * unit;
        }
    }

    return s * 1000 + ms;
}


ngx_uint_t
ngx_http_bulletdrop_db_bool(PGresult *res, int row, int col)
{
    /* booleans come as "t" and "f" */
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}


ngx_int_t
ngx_http_bulletdrop_db_str(ngx_pool_t *pool, PGresult *res, int row, int col,
    ngx_str_t *s)
{
    if (PQgetisnull(res, row, col)) {
        ngx_str_null(s);
        return NGX_OK;
    }

    s->len = PQgetlength(res, row, col);
    s->data = ngx_pnalloc(pool, s->len + 1);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, PQgetvalue(res, row, col), s->len);
    s->data[s->len] = '\0';

    return NGX_OK;
}


void
ngx_http_bulletdrop_db_ref(PGresult *res, int row, int col, ngx_str_t *s)
{
    if (PQgetisnull(res, row, col)) {
        ngx_str_null(s);
        return;
    }

    s->data = (u_char *) PQgetvalue(res, row, col);
    s->len = PQgetlength(res, row, col);
}


const char *
ngx_http_bulletdrop_db_text(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}


/* handlers run from posted events, never inside the pool's own changes */

static void
ngx_http_bulletdrop_db_complete(ngx_http_bulletdrop_db_query_t *q,
    ngx_int_t status, PGresult *res)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                   "bulletdrop db: \"%s\" done: %s",
                   ngx_http_bulletdrop_sql[q->stmt].name,
                   ngx_http_bulletdrop_db_statuses[status]);

    /* asked at its deadline less the timeout, queue time included */
    ngx_http_bulletdrop_metrics_db_query(ngx_current_msec
                                     - (q->deadline - q->db->conf->timeout),
                                     status == NGX_HTTP_BULLETDROP_DB_TIMEOUT);

    q->status = status;
    q->result = res;
    q->conn = NULL;

    q->event.handler = ngx_http_bulletdrop_db_completed;
    ngx_post_event(&q->event, &ngx_posted_events);
}


static void
ngx_http_bulletdrop_db_completed(ngx_event_t *ev)
{
    PGresult                        *res;
    ngx_http_bulletdrop_db_query_t  *q;

    q = ev->data;

    res = q->result;
    q->result = NULL;
    q->finished = 1;

    /* the handler may free q with its pool; res is still ours */
    q->handler(q, res);

    if (res) {
        PQclear(res);
    }
}


/* the pool holding the query is going away: its requester has left */

static void
ngx_http_bulletdrop_db_abandon(void *data)
{
    ngx_http_bulletdrop_db_query_t *q = data;

    ngx_http_bulletdrop_db_conn_t  *conn;

    if (q->finished) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, q->event.log, 0,
                   "bulletdrop db: \"%s\" abandoned %s",
                   ngx_http_bulletdrop_sql[q->stmt].name,
                   q->event.posted ? "with its answer posted"
                   : (q->waiting ? "while waiting" : "on its connection"));

    q->finished = 1;

    if (q->event.posted) {
        ngx_delete_posted_event(&q->event);
    }

    if (q->result) {
        PQclear(q->result);
        q->result = NULL;
    }

    if (q->waiting) {
        ngx_http_bulletdrop_db_dequeue(q);
    }

    if (q->conn) {
        /* the connection reads the reply to its end, then takes queries */
        conn = q->conn;

#if (NGX_DEBUG)
        if (conn->query != q) {
            ngx_log_error(NGX_LOG_ALERT, &conn->pool->log, 0,
                          "bulletdrop db #%ui: abandoned \"%s\" while %s "
                          "another", conn->id,
                          ngx_http_bulletdrop_sql[q->stmt].name,
                          ngx_http_bulletdrop_db_states[conn->state]);
        }
#endif

        conn->query = NULL;
        q->conn = NULL;

        ngx_http_bulletdrop_db_set_state(conn, bd_conn_draining);
    }
}


static void
ngx_http_bulletdrop_db_notice(void *arg, const char *message)
{
    ngx_http_bulletdrop_db_conn_t *conn = arg;

    ngx_http_bulletdrop_db_log(conn, NGX_LOG_NOTICE, "server says", message);
}


/* libpq's messages end in a newline and may add lines of advice: one line */

static void
ngx_http_bulletdrop_db_log(ngx_http_bulletdrop_db_conn_t *conn,
    ngx_uint_t level, const char *what, const char *detail)
{
    ngx_str_t  line;

    line = ngx_http_bulletdrop_db_line(detail);

    ngx_log_error(level, &conn->log, 0, "bulletdrop db #%ui: %s: %V",
                  conn->id, what, &line);
}


/*
 * The first line of a message of libpq's: the lines after it (DETAIL:
 * "Failing row contains (...)") may quote a client's values, and a log
 * line is one line
 */

ngx_str_t
ngx_http_bulletdrop_db_line(const char *message)
{
    ngx_str_t  line;

    line.data = (u_char *) (message ? message : "");

    for (line.len = 0;
         line.data[line.len] != '\0' && line.data[line.len] != '\n'
         && line.data[line.len] != '\r';
         line.len++)
    {
        /* void */
    }

    while (line.len && line.data[line.len - 1] == ' ') {
        line.len--;
    }

    return line;
}


/* what the connection was doing, after an error line on its log */

static u_char *
ngx_http_bulletdrop_db_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_http_bulletdrop_db_conn_t  *conn;

    if (log->action == NULL) {
        return buf;
    }

    conn = log->data;

    return ngx_snprintf(buf, len, " while %s \"%s\"", log->action,
                       ngx_http_bulletdrop_sql[conn->stmt].name);
}
