/*
 * BulletDrop: the store's client.  A request goes on a connection of its
 * own ("Connection: close"): its head signed, then its body from a file
 * (sendfile on plain TCP) or memory, then the answer read whole into a
 * small buffer (the store's answers to what is asked here are short: an
 * empty 200, or a page of XML).  Every step has bulletdrop_storage's
 * timeout=.  Nothing here logs a credential: the secret is only ever an
 * HMAC key, and the Authorization value is never logged.
 */

#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_s3.h"
#include "bd_sigv4.h"


/* the head of a request: method, path, query and the signed headers */
#define NGX_HTTP_BULLETDROP_S3_HEAD       4096
/* what is kept of an answer: its head and a page of XML */
#define NGX_HTTP_BULLETDROP_S3_ANSWER     16384
/* file bytes read at a time for a TLS connection */
#define NGX_HTTP_BULLETDROP_S3_CHUNK      65536

static char *ngx_http_bulletdrop_s3_credentials(ngx_conf_t *cf,
    ngx_http_bulletdrop_s3_conf_t *s3, ngx_str_t *name);
static ngx_int_t ngx_http_bulletdrop_s3_head(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_s3_connected(ngx_http_bulletdrop_s3_op_t *op);
#if (NGX_HTTP_SSL)
static void ngx_http_bulletdrop_s3_handshaked(ngx_connection_t *c);
#endif
static void ngx_http_bulletdrop_s3_write(ngx_event_t *wev);
static void ngx_http_bulletdrop_s3_read(ngx_event_t *rev);
static ngx_int_t ngx_http_bulletdrop_s3_parse(ngx_http_bulletdrop_s3_op_t *op,
    ngx_uint_t eof);
static ngx_uint_t ngx_http_bulletdrop_s3_etag_ok(u_char *p, u_char *last);
static void ngx_http_bulletdrop_s3_dechunk(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_s3_answered(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_s3_finish(ngx_http_bulletdrop_s3_op_t *op,
    const char *failure);
static void ngx_http_bulletdrop_s3_close(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_s3_not_started(ngx_event_t *ev);
static void ngx_http_bulletdrop_s3_removed(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_s3_dummy(ngx_event_t *ev);


/* the key of the bucket itself: "/bucket/" (or "/") */
static ngx_str_t  ngx_http_bulletdrop_s3_bucket = ngx_null_string;


/*
 * bulletdrop_storage local;
 * bulletdrop_storage s3 endpoint=URL bucket=NAME credentials=FILE
 *     [region=R] [style=path|virtual] [serve=proxy|redirect]
 *     [public_url=URL] [part_size=SIZE] [timeout=TIME] [ca=FILE];
 */

char *
ngx_http_bulletdrop_storage_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    char                           *rv;
    size_t                          n;
    ngx_str_t                      *value, v, endpoint, credentials, ca;
    ngx_uint_t                      i, path_style;
    ngx_http_bulletdrop_s3_conf_t  *s3;

    if (bmcf->storage_set) {
        return "is duplicate";
    }

    bmcf->storage_set = 1;
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "local") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameters with \"local\"";
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "s3") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_storage\" is \"local\" or \"s3\", "
                           "not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    s3 = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulletdrop_s3_conf_t));
    if (s3 == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&endpoint);
    ngx_str_null(&credentials);
    ngx_str_set(&ca, "/etc/ssl/certs/ca-certificates.crt");
    ngx_str_set(&s3->region, "us-east-1");
    s3->serve = NGX_HTTP_BULLETDROP_S3_PROXY;
    s3->part_size = 16 * 1024 * 1024;
    s3->timeout = 30000;
    path_style = 1;

    for (i = 2; i < cf->args->nelts; i++) {
        v = value[i];

#define bd_param(name)                                                      \
        (v.len > sizeof(name) - 1                                           \
         && ngx_strncmp(v.data, name, sizeof(name) - 1) == 0                \
         && (v.data += sizeof(name) - 1, v.len -= sizeof(name) - 1, 1))

        if (bd_param("endpoint=")) {
            endpoint = v;

        } else if (bd_param("bucket=")) {
            s3->bucket = v;

        } else if (bd_param("region=")) {
            s3->region = v;

        } else if (bd_param("credentials=")) {
            credentials = v;

        } else if (bd_param("ca=")) {
            ca = v;

        } else if (bd_param("public_url=")) {
            while (v.len && v.data[v.len - 1] == '/') {
                v.len--;
            }

            s3->public_url = v;

        } else if (bd_param("style=")) {
            if (v.len == 4 && ngx_strncmp(v.data, "path", 4) == 0) {
                path_style = 1;

            } else if (v.len == 7 && ngx_strncmp(v.data, "virtual", 7) == 0) {
                path_style = 0;

            } else {
                goto invalid;
            }

        } else if (bd_param("serve=")) {
            if (v.len == 5 && ngx_strncmp(v.data, "proxy", 5) == 0) {
                s3->serve = NGX_HTTP_BULLETDROP_S3_PROXY;

            } else if (v.len == 8 && ngx_strncmp(v.data, "redirect", 8) == 0)
            {
                s3->serve = NGX_HTTP_BULLETDROP_S3_REDIRECT;

            } else {
                goto invalid;
            }

        } else if (bd_param("part_size=")) {
            s3->part_size = ngx_parse_offset(&v);

            /* S3 takes parts of 5 MiB to 5 GiB, and 10000 of them */
            if (s3->part_size < 5 * 1024 * 1024
                || s3->part_size > (off_t) 5 * 1024 * 1024 * 1024)
            {
                goto invalid;
            }

        } else if (bd_param("timeout=")) {
            s3->timeout = ngx_parse_time(&v, 0);
            if (s3->timeout == (ngx_msec_t) NGX_ERROR || s3->timeout == 0) {
                goto invalid;
            }

        } else {
            goto invalid;
        }

#undef bd_param
    }

    if (endpoint.data == NULL || s3->bucket.len == 0
        || credentials.data == NULL)
    {
        return "needs endpoint=, bucket= and credentials= with \"s3\"";
    }

    /* what S3 takes as a bucket name, and no more: it goes in the Host */
    if (s3->bucket.len < 3 || s3->bucket.len > 63) {
        return "takes a bucket name of 3 to 63 characters";
    }

    for (n = 0; n < s3->bucket.len; n++) {
        if (!((s3->bucket.data[n] >= 'a' && s3->bucket.data[n] <= 'z')
              || (s3->bucket.data[n] >= '0' && s3->bucket.data[n] <= '9')
              || s3->bucket.data[n] == '-' || s3->bucket.data[n] == '.'))
        {
            return "takes a bucket name of a-z, 0-9, \"-\" and \".\"";
        }
    }

    for (n = 0; n < s3->region.len; n++) {
        if (!((s3->region.data[n] >= 'a' && s3->region.data[n] <= 'z')
              || (s3->region.data[n] >= '0' && s3->region.data[n] <= '9')
              || s3->region.data[n] == '-' || s3->region.data[n] == '_'))
        {
            return "takes a region of a-z, 0-9, \"-\" and \"_\"";
        }
    }

    if (s3->serve == NGX_HTTP_BULLETDROP_S3_REDIRECT
        && s3->public_url.len == 0)
    {
        return "needs public_url= with serve=redirect";
    }

    if (endpoint.len > 8 && ngx_strncasecmp(endpoint.data,
                                            (u_char *) "https://", 8) == 0)
    {
        s3->https = 1;
        s3->url.url.data = endpoint.data + 8;
        s3->url.url.len = endpoint.len - 8;
        s3->url.default_port = 443;

    } else if (endpoint.len > 7 && ngx_strncasecmp(endpoint.data,
                                             (u_char *) "http://", 7) == 0)
    {
        s3->url.url.data = endpoint.data + 7;
        s3->url.url.len = endpoint.len - 7;
        s3->url.default_port = 80;

    } else {
        return "takes an endpoint=http://... or https://...";
    }

    while (s3->url.url.len && s3->url.url.data[s3->url.url.len - 1] == '/') {
        s3->url.url.len--;
    }

    s3->url.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &s3->url) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_storage\": %s in endpoint \"%V\"",
                           s3->url.err ? s3->url.err : "invalid", &endpoint);
        return NGX_CONF_ERROR;
    }

    if (s3->url.uri.len || s3->url.naddrs == 0) {
        return "takes an endpoint of a scheme, a host and a port only";
    }

    /* the Host that is signed: the port only where it is not the default */
    s3->virtual_host = !path_style;

    s3->host.data = ngx_pnalloc(cf->pool, s3->bucket.len + 1
                                          + s3->url.host.len
                                          + 1 + NGX_INT_T_LEN + 1);
    if (s3->host.data == NULL) {
        return NGX_CONF_ERROR;
    }

    if (path_style) {
        s3->host.len = ngx_sprintf(s3->host.data, "%V", &s3->url.host)
                       - s3->host.data;
    } else {
        s3->host.len = ngx_sprintf(s3->host.data, "%V.%V", &s3->bucket,
                                   &s3->url.host)
                       - s3->host.data;
    }

    /* the name in the certificate, and in SNI: the Host without a port */
    s3->tls_name.len = s3->host.len;
    s3->tls_name.data = ngx_pnalloc(cf->pool, s3->host.len + 1);
    if (s3->tls_name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(s3->tls_name.data, s3->host.data, s3->host.len + 1);

    if (s3->url.port != s3->url.default_port) {
        s3->host.len = ngx_sprintf(s3->host.data + s3->host.len, ":%d",
                                   (int) s3->url.port)
                       - s3->host.data;
    }

    s3->host.data[s3->host.len] = '\0';

    if (path_style) {
        s3->root.data = ngx_pnalloc(cf->pool, s3->bucket.len + 1);
        if (s3->root.data == NULL) {
            return NGX_CONF_ERROR;
        }

        s3->root.len = ngx_sprintf(s3->root.data, "/%V", &s3->bucket)
                       - s3->root.data;
    }

    rv = ngx_http_bulletdrop_s3_credentials(cf, s3, &credentials);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (s3->https) {
#if (NGX_HTTP_SSL)
        ngx_pool_cleanup_t  *cln;

        s3->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
        if (s3->ssl == NULL) {
            return NGX_CONF_ERROR;
        }

        s3->ssl->log = cf->log;

        if (ngx_ssl_create(s3->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            ngx_ssl_cleanup_ctx(s3->ssl);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_ssl_cleanup_ctx;
        cln->data = s3->ssl;

        /* the store's certificate is checked against these, and its name */
        if (ngx_ssl_trusted_certificate(cf, s3->ssl, &ca, 9) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
#else
        return "needs nginx built with the SSL module for https://";
#endif
    }

    bmcf->s3 = s3;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"bulletdrop_storage\": invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * The key and secret from an AWS shared credentials file:
 * aws_access_key_id = ... and aws_secret_access_key = ..., read once,
 * by the master, like bulletdrop_jwt_secret_file.
 */

static char *
ngx_http_bulletdrop_s3_credentials(ngx_conf_t *cf,
    ngx_http_bulletdrop_s3_conf_t *s3, ngx_str_t *name)
{
    char       *rv;
    u_char     *p, *last, *eol, *k, *kend, *v, *vend;
    ngx_str_t   path, text;

    path = *name;

    rv = ngx_http_bulletdrop_conf_read_secret(cf, "bulletdrop_storage",
                                              &path, &text);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    for (p = text.data, last = text.data + text.len; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        k = p;
        while (k < eol && (*k == ' ' || *k == '\t')) {
            k++;
        }

        if (k == eol || *k == '#' || *k == ';' || *k == '[') {
            continue;
        }

        kend = k;
        while (kend < eol && *kend != '=' && *kend != ' ' && *kend != '\t') {
            kend++;
        }

        v = ngx_strlchr(kend, eol, '=');
        if (v == NULL) {
            continue;
        }

        for (v++; v < eol && (*v == ' ' || *v == '\t'); v++) { /* void */ }

        vend = eol;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'
                            || vend[-1] == '\r'))
        {
            vend--;
        }

        if (kend - k == sizeof("aws_access_key_id") - 1
            && ngx_strncmp(k, "aws_access_key_id", kend - k) == 0)
        {
            s3->access_key.data = v;
            s3->access_key.len = vend - v;

        } else if (kend - k == sizeof("aws_secret_access_key") - 1
                   && ngx_strncmp(k, "aws_secret_access_key", kend - k) == 0)
        {
            s3->secret.data = v;
            s3->secret.len = vend - v;
        }
    }

    if (s3->access_key.len == 0 || s3->secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_storage\": the credentials \"%V\" "
                           "lack aws_access_key_id or aws_secret_access_key",
                           &path);
        return NGX_CONF_ERROR;
    }

    /* NUL-terminated for bd_sigv4_sign(): the text has room after each */
    *(s3->access_key.data + s3->access_key.len) = '\0';
    *(s3->secret.data + s3->secret.len) = '\0';

    return NGX_CONF_OK;
}


ngx_http_bulletdrop_s3_op_t *
ngx_http_bulletdrop_s3_op(ngx_http_bulletdrop_s3_conf_t *conf, ngx_log_t *log,
    const char *method, ngx_str_t *key, const char *query)
{
    ngx_pool_t                   *pool;
    ngx_http_bulletdrop_s3_op_t  *op;

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return NULL;
    }

    op = ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_s3_op_t));
    if (op == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    op->pool = pool;
    op->conf = conf;
    /*
     * The log's handler and data are the request's, which may go first:
     * an op's lines say what they need themselves
     */
    op->log = *log;
    op->log.handler = NULL;
    op->log.data = NULL;
    op->log.action = "talking to the file store";
    pool->log = &op->log;
    op->method = method;
    op->file.fd = NGX_INVALID_FILE;
    op->file.log = &op->log;
    ngx_str_set(&op->file.name, "an upload");

    op->key.len = key->len;
    op->key.data = ngx_pstrdup(pool, key);
    op->query.len = ngx_strlen(query);
    op->query.data = ngx_pnalloc(pool, op->query.len + 1);

    if (op->key.data == NULL || op->query.data == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    (void) ngx_cpystrn(op->query.data, (u_char *) query, op->query.len + 1);

    return op;
}


ngx_int_t
ngx_http_bulletdrop_s3_start(ngx_http_bulletdrop_s3_op_t *op)
{
    ngx_int_t                       rc;
    ngx_connection_t               *c;
    ngx_http_bulletdrop_s3_conf_t  *conf;

    conf = op->conf;

    if (op->payload_hash[0] == '\0') {
        if (op->body.len) {
            bd_sigv4_sha256_hex(op->body.data, op->body.len,
                                op->payload_hash);

        } else if (op->file.fd == NGX_INVALID_FILE) {
            ngx_memcpy(op->payload_hash, NGX_HTTP_BULLETDROP_S3_EMPTY_SHA,
                       64);

        } else {
            ngx_memcpy(op->payload_hash, "UNSIGNED-PAYLOAD",
                       sizeof("UNSIGNED-PAYLOAD"));
        }
    }

    if (ngx_http_bulletdrop_s3_head(op) != NGX_OK) {
        return NGX_ERROR;
    }

    op->in = ngx_create_temp_buf(op->pool, NGX_HTTP_BULLETDROP_S3_ANSWER);
    if (op->in == NULL) {
        return NGX_ERROR;
    }

    op->failed.handler = ngx_http_bulletdrop_s3_not_started;
    op->failed.data = op;
    op->failed.log = &op->log;

    /* the first address: a store has one name, resolved at start */
    op->peer.sockaddr = conf->url.addrs[0].sockaddr;
    op->peer.socklen = conf->url.addrs[0].socklen;
    op->peer.name = &conf->url.addrs[0].name;
    op->peer.get = ngx_event_get_peer;
    op->peer.log = &op->log;
    op->peer.log_error = NGX_ERROR_ERR;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, &op->log, 0,
                   "bulletdrop s3: %s \"%V\" \"%V\" to %V",
                   op->method, &op->key, &op->query, op->peer.name);

    rc = ngx_event_connect_peer(&op->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        op->failure = "cannot connect";
        ngx_post_event(&op->failed, &ngx_posted_events);
        return NGX_OK;
    }

    c = op->peer.connection;
    c->data = op;
    c->pool = op->pool;
    /*
     * Never corked: sendfile() would cork it, and the request's last
     * segment would wait 200 ms for the cork to time out
     */
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->log = &op->log;
    c->read->log = &op->log;
    c->write->log = &op->log;
    c->read->handler = ngx_http_bulletdrop_s3_read;
    c->write->handler = ngx_http_bulletdrop_s3_write;

    ngx_add_timer(c->write, conf->timeout);

    if (rc == NGX_AGAIN) {
        /* the write event says when the connection is made */
        return NGX_OK;
    }

    ngx_http_bulletdrop_s3_connected(op);

    return NGX_OK;
}


/* the request's head, signed */

static ngx_int_t
ngx_http_bulletdrop_s3_head(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char                         *p, *path;
    size_t                          len;
    ssize_t                         n;
    off_t                           length;
    bd_sigv4_request_t              sr;
    ngx_http_bulletdrop_s3_conf_t  *conf;
    char                            date[BD_SIGV4_DATE_LEN + 1];
    char                            auth[512];

    conf = op->conf;

    len = bd_sigv4_uri_encode((char *) op->key.data, op->key.len, NULL, 1);

    path = ngx_pnalloc(op->pool, conf->root.len + 1 + len + 1);
    if (path == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(path, conf->root.data, conf->root.len);
    *p++ = '/';
    p += bd_sigv4_uri_encode((char *) op->key.data, op->key.len, (char *) p,
                             1);
    *p = '\0';

    ngx_memzero(&sr, sizeof(bd_sigv4_request_t));
    sr.method = op->method;
    sr.host = (char *) conf->host.data;
    sr.path = (char *) path;
    sr.query = (char *) op->query.data;
    sr.payload_hash = op->payload_hash;
    sr.region = (char *) conf->region.data;
    sr.service = "s3";
    sr.access_key = (char *) conf->access_key.data;
    sr.secret = (char *) conf->secret.data;
    sr.now = ngx_time();

    n = bd_sigv4_sign(&sr, date, auth, sizeof(auth));
    if (n < 0) {
        ngx_log_error(NGX_LOG_ALERT, &op->log, 0,
                      "bulletdrop: cannot sign a request to the file store");
        return NGX_ERROR;
    }

    length = op->body.len ? (off_t) op->body.len : op->length;

    op->out = ngx_create_temp_buf(op->pool, NGX_HTTP_BULLETDROP_S3_HEAD);
    if (op->out == NULL) {
        return NGX_ERROR;
    }

    if ((size_t) (p - path) + op->query.len + conf->host.len
        + op->content_type.len + op->disposition.len + n + 512
        > NGX_HTTP_BULLETDROP_S3_HEAD)
    {
        ngx_log_error(NGX_LOG_ALERT, &op->log, 0,
                      "bulletdrop: a request to the file store too long");
        return NGX_ERROR;
    }

    p = ngx_sprintf(op->out->last, "%s %s%s%V HTTP/1.1" CRLF
                                   "Host: %V" CRLF
                                   "X-Amz-Date: %s" CRLF
                                   "X-Amz-Content-SHA256: %s" CRLF
                                   "Authorization: %*s" CRLF
                                   "Connection: close" CRLF,
                    op->method, path, op->query.len ? "?" : "", &op->query,
                    &conf->host, date, op->payload_hash, (size_t) n, auth);

    if (length || ngx_strcmp(op->method, "PUT") == 0
        || ngx_strcmp(op->method, "POST") == 0)
    {
        p = ngx_sprintf(p, "Content-Length: %O" CRLF, length);
    }

    if (op->content_type.len) {
        p = ngx_sprintf(p, "Content-Type: %V" CRLF, &op->content_type);
    }

    if (op->disposition.len) {
        p = ngx_sprintf(p, "Content-Disposition: %V" CRLF, &op->disposition);
    }

    *p++ = CR; *p++ = LF;

    op->out->last = p;

    /* the signature is in the head only */
    ngx_explicit_memzero(auth, sizeof(auth));

    return NGX_OK;
}


static void
ngx_http_bulletdrop_s3_connected(ngx_http_bulletdrop_s3_op_t *op)
{
    ngx_connection_t  *c;

    c = op->peer.connection;

#if (NGX_HTTP_SSL)

    if (op->conf->ssl && c->ssl == NULL) {
        ngx_int_t  rc;

        /*
         * Unbuffered: each buffer goes as it is given (a buffered
         * connection would hold the request's last bytes until flushed)
         */
        if (ngx_ssl_create_connection(op->conf->ssl, c, NGX_SSL_CLIENT)
            != NGX_OK)
        {
            ngx_http_bulletdrop_s3_finish(op, "cannot start TLS");
            return;
        }

        if (SSL_set_tlsext_host_name(c->ssl->connection,
                                     (char *) op->conf->tls_name.data)
            == 0)
        {
            ngx_http_bulletdrop_s3_finish(op, "cannot set the TLS name");
            return;
        }

        c->log->action = "a TLS handshake with the file store";

        rc = ngx_ssl_handshake(c);

        if (rc == NGX_AGAIN) {
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, op->conf->timeout);
            }

            c->ssl->handler = ngx_http_bulletdrop_s3_handshaked;
            return;
        }

        ngx_http_bulletdrop_s3_handshaked(c);
        return;
    }

#endif

    ngx_http_bulletdrop_s3_write(c->write);
}


#if (NGX_HTTP_SSL)

static void
ngx_http_bulletdrop_s3_handshaked(ngx_connection_t *c)
{
    long                          rc;
    ngx_http_bulletdrop_s3_op_t  *op;

    op = c->data;

    if (!c->ssl->handshaked) {
        ngx_http_bulletdrop_s3_finish(op, "the TLS handshake failed");
        return;
    }

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "bulletdrop: the file store's certificate: (%l:%s)",
                      rc, X509_verify_cert_error_string(rc));
        ngx_http_bulletdrop_s3_finish(op, "the certificate is not trusted");
        return;
    }

    if (ngx_ssl_check_host(c, &op->conf->tls_name) != NGX_OK) {
        ngx_http_bulletdrop_s3_finish(op, "the certificate names another");
        return;
    }

    c->log->action = "talking to the file store";
    c->write->handler = ngx_http_bulletdrop_s3_write;
    c->read->handler = ngx_http_bulletdrop_s3_read;

    ngx_http_bulletdrop_s3_write(c->write);
}

#endif


/* the head, then the body: sendfile() where it can, else bytes read */

static void
ngx_http_bulletdrop_s3_write(ngx_event_t *wev)
{
    off_t                         left;
    ssize_t                       n;
    ngx_buf_t                    *b;
    ngx_chain_t                  *cl, head, body;
    ngx_connection_t             *c;
    ngx_http_bulletdrop_s3_op_t  *op;

    c = wev->data;
    op = c->data;

    if (wev->timedout) {
        ngx_http_bulletdrop_s3_finish(op, "timed out");
        return;
    }

#if (NGX_HTTP_SSL)
    /* the connection was made: TLS first */
    if (op->conf->ssl && c->ssl == NULL) {
        ngx_http_bulletdrop_s3_connected(op);
        return;
    }
#endif

    if (op->head_done) {
        /* all sent: the answer is awaited */
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        return;
    }

    for ( ;; ) {
        cl = NULL;
        b = NULL;
        n = 0;
        left = (op->body.len ? (off_t) op->body.len : op->length) - op->sent;

        if (left > 0) {
            body.next = NULL;
            body.buf = op->chunk;
            cl = &body;

            if (op->body.len) {
                if (op->chunk == NULL) {
                    op->chunk = ngx_calloc_buf(op->pool);
                    if (op->chunk == NULL) {
                        ngx_http_bulletdrop_s3_finish(op, "out of memory");
                        return;
                    }

                    op->chunk->memory = 1;
                }

                b = op->chunk;
                b->start = op->body.data;
                b->pos = op->body.data + op->sent;
                b->last = op->body.data + op->body.len;

            } else if (c->sendfile && c->ssl == NULL) {
                if (op->chunk == NULL) {
                    op->chunk = ngx_calloc_buf(op->pool);
                    if (op->chunk == NULL) {
                        ngx_http_bulletdrop_s3_finish(op, "out of memory");
                        return;
                    }
                }

                b = op->chunk;
                b->in_file = 1;
                b->file = &op->file;
                b->file_pos = op->offset + op->sent;
                b->file_last = op->offset + op->length;

            } else {
                if (op->chunk == NULL) {
                    op->chunk = ngx_create_temp_buf(op->pool,
                                             NGX_HTTP_BULLETDROP_S3_CHUNK);
                    if (op->chunk == NULL) {
                        ngx_http_bulletdrop_s3_finish(op, "out of memory");
                        return;
                    }

                    op->chunk->last = op->chunk->pos;
                }

                b = op->chunk;

                if (b->pos == b->last) {
                    n = ngx_read_file(&op->file, b->start,
                                      (size_t) ngx_min(left,
                                           NGX_HTTP_BULLETDROP_S3_CHUNK),
                                      op->offset + op->sent);
                    if (n <= 0) {
                        ngx_http_bulletdrop_s3_finish(op,
                                                 "cannot read the upload");
                        return;
                    }

                    b->pos = b->start;
                    b->last = b->start + n;
                }
            }

            body.buf = op->chunk;
            b = op->chunk;
            /* where the body's buffer starts, to count what went */
            n = b->in_file ? b->file_pos : (off_t) (b->pos - b->start);
        }

        if (op->out->pos < op->out->last) {
            head.buf = op->out;
            head.next = cl;
            cl = &head;
        }

        if (cl == NULL) {
            break;
        }

        cl = c->send_chain(c, cl, 0);

        if (cl == NGX_CHAIN_ERROR) {
            ngx_http_bulletdrop_s3_finish(op, "cannot send");
            return;
        }

        /* what of the body went */
        if (b) {
            if (b->in_file) {
                op->sent += b->file_pos - n;

            } else if (op->body.len) {
                op->sent = b->pos - op->body.data;

            } else {
                op->sent += (b->pos - b->start) - n;
            }
        }

        if (cl != NULL || !wev->ready) {
            /* the rest when the socket takes more */
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_bulletdrop_s3_finish(op, "cannot send");
                return;
            }

            ngx_add_timer(wev, op->conf->timeout);
            return;
        }
    }

    op->head_done = 1;

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_http_bulletdrop_s3_dummy;

    ngx_add_timer(c->read, op->conf->timeout);

    if (c->read->ready) {
        ngx_http_bulletdrop_s3_read(c->read);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_bulletdrop_s3_finish(op, "cannot read");
    }
}


static void
ngx_http_bulletdrop_s3_read(ngx_event_t *rev)
{
    ssize_t                       n;
    ngx_buf_t                    *b;
    ngx_connection_t             *c;
    ngx_http_bulletdrop_s3_op_t  *op;

    c = rev->data;
    op = c->data;

    if (rev->timedout) {
        ngx_http_bulletdrop_s3_finish(op, "timed out");
        return;
    }

    b = op->in;

    for ( ;; ) {
        if (b->last == b->end) {
            /* more than is kept: whatever it says, it is not believed */
            ngx_http_bulletdrop_s3_finish(op, "an answer too large");
            return;
        }

        n = c->recv(c, b->last, b->end - b->last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            /* closed: the answer is what came */
            if (ngx_http_bulletdrop_s3_parse(op, 1) == NGX_OK) {
                ngx_http_bulletdrop_s3_answered(op);
            } else {
                ngx_http_bulletdrop_s3_finish(op, n == 0
                                              ? "the store closed early"
                                              : "cannot read");
            }

            return;
        }

        b->last += n;

        if (ngx_http_bulletdrop_s3_parse(op, 0) == NGX_OK) {
            ngx_http_bulletdrop_s3_answered(op);
            return;
        }
    }

    if (!op->head_done) {
        /* an answer before the body went: what it says is the answer */
        return;
    }

    /* the whole answer within the timeout: a trickle does not hold it */
    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_bulletdrop_s3_finish(op, "cannot read");
    }
}


/*
 * NGX_OK: the answer is whole (or eof and its head is); NGX_AGAIN: more
 * is needed; NGX_ERROR: it is not an HTTP answer
 */

static ngx_int_t
ngx_http_bulletdrop_s3_parse(ngx_http_bulletdrop_s3_op_t *op, ngx_uint_t eof)
{
    u_char     *p, *last, *eol, *colon, *v, *vend, *body;
    size_t      klen;
    ngx_buf_t  *b;

    b = op->in;
    p = b->start;
    last = b->last;

    body = ngx_strlcasestrn(p, last, (u_char *) CRLF CRLF, 4 - 1);
    if (body == NULL) {
        return eof ? NGX_ERROR : NGX_AGAIN;
    }

    body += 4;

    if (!op->status) {
        /* "HTTP/1.1 200 OK": three digits, then a space or the end */
        if (last - p < 13 || ngx_strncmp(p, "HTTP/1.", 7) != 0
            || p[8] != ' ' || (p[12] != ' ' && p[12] != CR))
        {
            return NGX_ERROR;
        }

        op->status = ngx_atoi(p + 9, 3);
        if (op->status == (ngx_uint_t) NGX_ERROR || op->status < 100) {
            op->status = 0;
            return NGX_ERROR;
        }

        op->content_length = -1;

        for (p = ngx_strlchr(p, body, LF) + 1; p < body - 2; p = eol + 1) {
            eol = ngx_strlchr(p, body, LF);
            if (eol == NULL) {
                break;
            }

            colon = ngx_strlchr(p, eol, ':');
            if (colon == NULL) {
                continue;
            }

            klen = colon - p;

            for (v = colon + 1; v < eol && *v == ' '; v++) { /* void */ }

            vend = eol;
            while (vend > v && (vend[-1] == '\r' || vend[-1] == ' ')) {
                vend--;
            }

            if (klen == sizeof("Content-Length") - 1
                && ngx_strncasecmp(p, (u_char *) "Content-Length", klen) == 0)
            {
                op->content_length = ngx_atoof(v, vend - v);

            } else if (klen == sizeof("ETag") - 1
                       && ngx_strncasecmp(p, (u_char *) "ETag", klen) == 0
                       && ngx_http_bulletdrop_s3_etag_ok(v, vend))
            {
                op->etag.data = v;
                op->etag.len = vend - v;

            } else if (klen == sizeof("Transfer-Encoding") - 1
                       && ngx_strncasecmp(p, (u_char *) "Transfer-Encoding",
                                          klen) == 0
                       && ngx_strlcasestrn(v, vend, (u_char *) "chunked",
                                           7 - 1))
            {
                op->chunked = 1;
            }
        }
    }

    op->answer.data = body;
    op->answer.len = last - body;

    /* a 1xx (100 Continue, never asked for) is skipped */
    if (op->status < 200) {
        ngx_memmove(b->start, body, last - body);
        b->last = b->start + (last - body);
        op->status = 0;
        op->etag.len = 0;
        op->chunked = 0;
        return ngx_http_bulletdrop_s3_parse(op, eof);
    }

    if (op->chunked) {
        if (!eof && ngx_strlcasestrn(body, last, (u_char *) "0" CRLF CRLF,
                                     5 - 1) == NULL)
        {
            return NGX_AGAIN;
        }

        if (ngx_strlcasestrn(body, last, (u_char *) "0" CRLF CRLF, 5 - 1)
            == NULL)
        {
            return NGX_ERROR;
        }

        ngx_http_bulletdrop_s3_dechunk(op);
        return NGX_OK;
    }

    if (op->content_length >= 0 && (off_t) op->answer.len
                                   < op->content_length)
    {
        /* closed before the body was whole: not an answer to believe */
        return eof ? NGX_ERROR : NGX_AGAIN;
    }

    if (op->content_length < 0 && !eof && op->status != 204
        && op->status != 304)
    {
        return NGX_AGAIN;
    }

    return NGX_OK;
}


/* an ETag goes into XML (CompleteMultipartUpload): printable, no markup */

static ngx_uint_t
ngx_http_bulletdrop_s3_etag_ok(u_char *p, u_char *last)
{
    if (p == last || last - p > 128) {
        return 0;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p < 0x21 || *p > 0x7e || *p == '<' || *p == '>' || *p == '&') {
            return 0;
        }
    }

    return 1;
}


/* the chunks of a chunked answer joined, in place; what is cut is left */

static void
ngx_http_bulletdrop_s3_dechunk(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char  *p, *last, *to, *eol;
    size_t   size;

    p = op->answer.data;
    last = op->answer.data + op->answer.len;
    to = p;

    while (p < last) {
        eol = ngx_strlchr(p, last, LF);
        if (eol == NULL) {
            break;
        }

        size = 0;

        for ( /* void */ ; p < eol; p++) {
            if (*p >= '0' && *p <= '9') {
                size = size * 16 + (*p - '0');

            } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
                size = size * 16 + ((*p | 0x20) - 'a' + 10);

            } else {
                break;
            }

            if (size > NGX_HTTP_BULLETDROP_S3_ANSWER) {
                break;
            }
        }

        p = eol + 1;

        if (size == 0 || (size_t) (last - p) < size) {
            size = ngx_min(size, (size_t) (last - p));
            to = ngx_movemem(to, p, size);
            break;
        }

        to = ngx_movemem(to, p, size);
        p += size + 2;
    }

    op->answer.len = to - op->answer.data;
}


/*
 * A whole answer.  One that says the request succeeded before all of it
 * was sent is not believed: the store cannot have what it did not get.
 */

static void
ngx_http_bulletdrop_s3_answered(ngx_http_bulletdrop_s3_op_t *op)
{
    if (!op->head_done && op->status >= 200 && op->status < 300) {
        ngx_http_bulletdrop_s3_finish(op, "a success before the request "
                                          "was sent");
        return;
    }

    ngx_http_bulletdrop_s3_finish(op, NULL);
}


static void
ngx_http_bulletdrop_s3_finish(ngx_http_bulletdrop_s3_op_t *op,
    const char *failure)
{
    if (op->finished) {
        return;
    }

    op->finished = 1;

    /* before the first byte went, the connection is what failed */
    if (failure && !ngx_http_bulletdrop_s3_sent(op)) {
        if (ngx_strcmp(failure, "timed out") == 0) {
            failure = "timed out connecting";

        } else if (ngx_strcmp(failure, "cannot send") == 0
                   || ngx_strcmp(failure, "cannot read") == 0
                   || ngx_strcmp(failure, "the store closed early") == 0)
        {
            failure = "cannot connect";
        }
    }

    op->failure = failure;

    if (failure) {
        /* a status may have come before the failure: it does not count */
        op->status = 0;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &op->log, 0,
                   "bulletdrop s3: %s \"%V\": %ui", op->method, &op->key,
                   op->status);

    ngx_http_bulletdrop_s3_close(op);

    if (op->handler) {
        op->handler(op);
    }
}


ngx_uint_t
ngx_http_bulletdrop_s3_sent(ngx_http_bulletdrop_s3_op_t *op)
{
    return op->out && op->out->pos != op->out->start;
}


static void
ngx_http_bulletdrop_s3_close(ngx_http_bulletdrop_s3_op_t *op)
{
    ngx_connection_t  *c;

    c = op->peer.connection;

    if (c == NULL) {
        return;
    }

    op->peer.connection = NULL;

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }
#endif

    /* the pool is the op's, not the connection's */
    c->pool = NULL;
    ngx_close_connection(c);
}


void
ngx_http_bulletdrop_s3_free(ngx_http_bulletdrop_s3_op_t *op)
{
    op->handler = NULL;
    op->finished = 1;

    if (op->failed.posted) {
        ngx_delete_posted_event(&op->failed);
    }

    ngx_http_bulletdrop_s3_close(op);

    if (op->file.fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(op->file.fd);
        op->file.fd = NGX_INVALID_FILE;
    }

    ngx_destroy_pool(op->pool);
}


/*
 * S3 answers 204 for a key that is not there; a 404 is gone only when it
 * says the key or the multipart upload is (not NoSuchBucket, nor a proxy's
 * 404 of a wrong endpoint, which would leave every object behind)
 */

ngx_uint_t
ngx_http_bulletdrop_s3_gone(ngx_http_bulletdrop_s3_op_t *op)
{
    ssize_t  n;
    char     code[32];

    if (op->status == NGX_HTTP_OK || op->status == NGX_HTTP_NO_CONTENT) {
        return 1;
    }

    if (op->status != NGX_HTTP_NOT_FOUND || op->answer.len == 0) {
        return 0;
    }

    n = bd_s3_xml_text((char *) op->answer.data, op->answer.len, "Code",
                       code, sizeof(code));

    return (n == sizeof("NoSuchKey") - 1
            && ngx_strncmp(code, "NoSuchKey", n) == 0)
           || (n == sizeof("NoSuchUpload") - 1
               && ngx_strncmp(code, "NoSuchUpload", n) == 0);
}


u_char *
ngx_http_bulletdrop_s3_said(ngx_http_bulletdrop_s3_op_t *op, u_char *buf,
    size_t len)
{
    size_t   i;
    ssize_t  n;
    char     code[64];

    if (op->status == 0) {
        return ngx_snprintf(buf, len, "%s", op->failure ? op->failure
                                                        : "no answer");
    }

    n = -1;

    if (op->answer.len) {
        n = bd_s3_xml_text((char *) op->answer.data, op->answer.len, "Code",
                           code, sizeof(code));
    }

    if (n > 0) {
        /* a store's text in the log: letters, digits and dots only */
        for (i = 0; i < (size_t) n; i++) {
            if (!((code[i] >= 'a' && code[i] <= 'z')
                  || (code[i] >= 'A' && code[i] <= 'Z')
                  || (code[i] >= '0' && code[i] <= '9')
                  || code[i] == '.'))
            {
                code[i] = '?';
            }
        }

        return ngx_snprintf(buf, len, "status %ui (%*s)", op->status,
                            (size_t) n, code);
    }

    return ngx_snprintf(buf, len, "status %ui", op->status);
}


static void
ngx_http_bulletdrop_s3_not_started(ngx_event_t *ev)
{
    ngx_http_bulletdrop_s3_op_t  *op;

    op = ev->data;

    ngx_http_bulletdrop_s3_finish(op, op->failure);
}


ngx_int_t
ngx_http_bulletdrop_s3_remove(ngx_http_bulletdrop_s3_conf_t *conf,
    ngx_log_t *log, ngx_str_t *key, ngx_http_bulletdrop_s3_done_pt done,
    void *data)
{
    ngx_http_bulletdrop_s3_op_t  *op;

    op = ngx_http_bulletdrop_s3_op(conf, log, "DELETE", key, "");
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = done;
    op->data = data;

    if (ngx_http_bulletdrop_s3_remove_op(op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(op);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_bulletdrop_s3_remove_op(ngx_http_bulletdrop_s3_op_t *op)
{
    if (op->handler == NULL) {
        op->handler = ngx_http_bulletdrop_s3_removed;
    }

    return ngx_http_bulletdrop_s3_start(op);
}


/* a delete nobody waits for: its failure is logged, for make fsck */

static void
ngx_http_bulletdrop_s3_removed(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char  said[128], *p;

    if (!ngx_http_bulletdrop_s3_gone(op)) {
        p = ngx_http_bulletdrop_s3_said(op, said, sizeof(said));
        ngx_log_error(NGX_LOG_ERR, &op->log, 0,
                      "bulletdrop: the store kept \"%V\"%s%V: %*s",
                      &op->key, op->query.len ? "?" : "", &op->query,
                      p - said, said);
    }

    ngx_http_bulletdrop_s3_free(op);
}


static void
ngx_http_bulletdrop_s3_dummy(ngx_event_t *ev)
{
}


/*
 * Forgetting an upload the store may have taken without saying so: its
 * steps in order, each retried after the next of the delays while the
 * store fails; then all of them once more a while later, for a request
 * the store carries out only after the first round.
 */

typedef enum {
    bd_forget_abort = 0,
    bd_forget_list,
    bd_forget_abort_listed,
    bd_forget_delete,
    bd_forget_done
} ngx_http_bulletdrop_forget_step_e;


typedef struct {
    ngx_pool_t                         *pool;
    ngx_log_t                           log;
    ngx_http_bulletdrop_s3_conf_t      *conf;
    ngx_str_t                           key;
    ngx_str_t                           upload_id;
    /* of ngx_str_t: the ids the store listed, encoded */
    ngx_array_t                         listed;
    ngx_uint_t                          next;
    ngx_uint_t                          step;
    ngx_uint_t                          tries;
    ngx_uint_t                          round;
    ngx_event_t                         timer;
    unsigned                            multipart:1;
} ngx_http_bulletdrop_forget_t;


/* after a failure, the next try waits this long (ms) */
static ngx_msec_t  ngx_http_bulletdrop_forget_delays[] = {
    1000, 2000, 5000, 15000, 60000, 300000
};

/* the second round, for what the store did after the first */
#define NGX_HTTP_BULLETDROP_FORGET_AGAIN  30000


static void ngx_http_bulletdrop_forget_run(ngx_event_t *ev);
static void ngx_http_bulletdrop_forget_done(ngx_http_bulletdrop_s3_op_t *op);
static void ngx_http_bulletdrop_forget_later(
    ngx_http_bulletdrop_forget_t *fg, ngx_uint_t failed);


ngx_int_t
ngx_http_bulletdrop_s3_forget(ngx_http_bulletdrop_s3_conf_t *conf,
    ngx_log_t *log, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_uint_t multipart)
{
    ngx_pool_t                    *pool;
    ngx_http_bulletdrop_forget_t  *fg;

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    fg = ngx_pcalloc(pool, sizeof(ngx_http_bulletdrop_forget_t));
    if (fg == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    fg->pool = pool;
    fg->conf = conf;
    fg->log = *log;
    fg->log.handler = NULL;
    fg->log.data = NULL;
    fg->multipart = multipart;

    fg->key.len = key->len;
    fg->key.data = ngx_pstrdup(pool, key);

    if (upload_id && upload_id->len) {
        fg->upload_id.len = upload_id->len;
        fg->upload_id.data = ngx_pstrdup(pool, upload_id);
        if (fg->upload_id.data == NULL) {
            ngx_destroy_pool(pool);
            return NGX_ERROR;
        }
    }

    if (fg->key.data == NULL
        || ngx_array_init(&fg->listed, pool, 1, sizeof(ngx_str_t)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    fg->timer.handler = ngx_http_bulletdrop_forget_run;
    fg->timer.data = fg;
    fg->timer.log = &fg->log;
    /* a worker that stops does not wait for it: fsck finds what is left */
    fg->timer.cancelable = 1;

    ngx_log_error(NGX_LOG_WARN, &fg->log, 0,
                  "bulletdrop: the store may have kept \"%V\": it is "
                  "deleted when the store answers", &fg->key);

    ngx_add_timer(&fg->timer, ngx_http_bulletdrop_forget_delays[0]);

    return NGX_OK;
}


static void
ngx_http_bulletdrop_forget_run(ngx_event_t *ev)
{
    char                           query[128 + 3 * 512];
    ngx_str_t                     *id;
    ngx_http_bulletdrop_s3_op_t   *op;
    ngx_http_bulletdrop_forget_t  *fg;

    fg = ev->data;

    /* the steps that have nothing to do */
    if (fg->step == bd_forget_abort && fg->upload_id.len == 0) {
        fg->step = bd_forget_list;
    }

    if (fg->step == bd_forget_list && !fg->multipart) {
        fg->step = bd_forget_delete;
    }

    if (fg->step == bd_forget_abort_listed && fg->next >= fg->listed.nelts) {
        fg->step = bd_forget_delete;
    }

    if (fg->step == bd_forget_done) {
        if (++fg->round == 2) {
            ngx_log_error(NGX_LOG_INFO, &fg->log, 0,
                          "bulletdrop: \"%V\" is not in the store",
                          &fg->key);
            ngx_destroy_pool(fg->pool);
            return;
        }

        fg->step = bd_forget_abort;
        fg->listed.nelts = 0;
        fg->next = 0;
        ngx_add_timer(&fg->timer, NGX_HTTP_BULLETDROP_FORGET_AGAIN);
        return;
    }

    switch (fg->step) {

    case bd_forget_abort:
        (void) ngx_snprintf((u_char *) query, sizeof(query), "uploadId=%V%Z",
                            &fg->upload_id);
        op = ngx_http_bulletdrop_s3_op(fg->conf, &fg->log, "DELETE",
                                       &fg->key, query);
        break;

    case bd_forget_list: {
        size_t  len;
        u_char *p;

        /* the bucket's own URI: "/bucket/", listing this key's uploads */
        p = ngx_cpymem((u_char *) query, "prefix=", sizeof("prefix=") - 1);
        len = bd_sigv4_uri_encode((char *) fg->key.data, fg->key.len, NULL,
                                  0);
        if (len > sizeof(query) - 64) {
            ngx_destroy_pool(fg->pool);
            return;
        }

        p += bd_sigv4_uri_encode((char *) fg->key.data, fg->key.len,
                                 (char *) p, 0);
        (void) ngx_cpystrn(p, (u_char *) "&uploads=", sizeof("&uploads="));

        op = ngx_http_bulletdrop_s3_op(fg->conf, &fg->log, "GET",
                                       &ngx_http_bulletdrop_s3_bucket,
                                       query);
        break;
    }

    case bd_forget_abort_listed:
        id = fg->listed.elts;
        (void) ngx_snprintf((u_char *) query, sizeof(query), "uploadId=%V%Z",
                            &id[fg->next]);
        op = ngx_http_bulletdrop_s3_op(fg->conf, &fg->log, "DELETE",
                                       &fg->key, query);
        break;

    default: /* bd_forget_delete */
        op = ngx_http_bulletdrop_s3_op(fg->conf, &fg->log, "DELETE",
                                       &fg->key, "");
    }

    if (op == NULL) {
        ngx_http_bulletdrop_forget_later(fg, 1);
        return;
    }

    op->handler = ngx_http_bulletdrop_forget_done;
    op->data = fg;

    if (ngx_http_bulletdrop_s3_start(op) != NGX_OK) {
        ngx_http_bulletdrop_s3_free(op);
        ngx_http_bulletdrop_forget_later(fg, 1);
    }
}


static void
ngx_http_bulletdrop_forget_done(ngx_http_bulletdrop_s3_op_t *op)
{
    u_char                        *p, *last, said[160];
    size_t                         len;
    ssize_t                        n;
    ngx_str_t                     *id;
    ngx_http_bulletdrop_forget_t  *fg;
    char                           text[512];

    fg = op->data;

    if (!ngx_http_bulletdrop_s3_gone(op)) {
        p = ngx_http_bulletdrop_s3_said(op, said, sizeof(said));
        ngx_log_error(NGX_LOG_ERR, &fg->log, 0,
                      "bulletdrop: the store did not forget \"%V\" yet: %*s",
                      &fg->key, p - said, said);
        ngx_http_bulletdrop_s3_free(op);
        ngx_http_bulletdrop_forget_later(fg, 1);
        return;
    }

    switch (fg->step) {

    case bd_forget_abort:
        fg->step = bd_forget_list;
        break;

    case bd_forget_list:
        /* each <UploadId> of the listing, aborted in turn */
        p = op->answer.data;
        last = op->answer.data + op->answer.len;

        while (op->status == 200) {
            p = ngx_strlcasestrn(p, last, (u_char *) "<UploadId>",
                                 sizeof("<UploadId>") - 2);
            if (p == NULL) {
                break;
            }

            n = bd_s3_xml_text((char *) p, last - p, "UploadId", text,
                               sizeof(text));
            p++;

            if (n <= 0) {
                continue;
            }

            id = ngx_array_push(&fg->listed);
            if (id == NULL) {
                break;
            }

            len = bd_sigv4_uri_encode(text, n, NULL, 0);
            id->data = ngx_pnalloc(fg->pool, len);
            if (id->data == NULL) {
                fg->listed.nelts--;
                break;
            }

            id->len = bd_sigv4_uri_encode(text, n, (char *) id->data, 0);
        }

        fg->next = 0;
        fg->step = bd_forget_abort_listed;
        break;

    case bd_forget_abort_listed:
        fg->next++;
        break;

    default: /* bd_forget_delete */
        fg->step = bd_forget_done;
    }

    ngx_http_bulletdrop_s3_free(op);

    fg->tries = 0;
    ngx_http_bulletdrop_forget_later(fg, 0);
}


static void
ngx_http_bulletdrop_forget_later(ngx_http_bulletdrop_forget_t *fg,
    ngx_uint_t failed)
{
    ngx_uint_t  n;

    if (!failed) {
        /* the next step at once, from the event loop */
        ngx_add_timer(&fg->timer, 1);
        return;
    }

    n = sizeof(ngx_http_bulletdrop_forget_delays) / sizeof(ngx_msec_t);

    if (fg->tries == n) {
        ngx_log_error(NGX_LOG_ERR, &fg->log, 0,
                      "bulletdrop: the store may still have \"%V\": "
                      "bulletdrop-s3 fsck lists it", &fg->key);
        ngx_destroy_pool(fg->pool);
        return;
    }

    ngx_add_timer(&fg->timer, ngx_http_bulletdrop_forget_delays[fg->tries++]);
}
