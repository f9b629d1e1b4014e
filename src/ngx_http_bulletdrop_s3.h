/*
 * BulletDrop: files in S3-compatible object storage (bulletdrop_storage
 * s3).  The module's own small client of the store: one request per
 * connection, signed with AWS Signature V4 (bd_sigv4.c), on the event
 * loop, plain or TLS.  It puts uploads (one PUT, or a multipart upload
 * for large files: s3_store.c) and deletes objects; files are read from
 * the store by nginx's proxy module, through the $bulletdrop_s3_*
 * variables (s3_serve.c).
 */

#ifndef _NGX_HTTP_BULLETDROP_S3_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_S3_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


#define NGX_HTTP_BULLETDROP_S3_PROXY      0
#define NGX_HTTP_BULLETDROP_S3_REDIRECT   1

/* the SHA-256 of no bytes: the payload of a GET or a DELETE */
#define NGX_HTTP_BULLETDROP_S3_EMPTY_SHA                                     \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* "images/<id>.<ext>": the key of a file, as its path under upload_dir */
#define NGX_HTTP_BULLETDROP_S3_KEY_MAX    64


struct ngx_http_bulletdrop_s3_conf_s {
    /* the endpoint: its host and port, resolved at configuration */
    ngx_url_t                           url;
    /* the Host of requests: "host[:port]", or "bucket.host[:port]" */
    ngx_str_t                           host;
    /* the Host without its port, NUL-terminated: SNI and the certificate */
    ngx_str_t                           tls_name;
    /* what precedes a key in paths: "/bucket", or "" (virtual hosts) */
    ngx_str_t                           root;
    ngx_str_t                           bucket;
    ngx_str_t                           region;
    ngx_str_t                           access_key;
    ngx_str_t                           secret;
    /* serve=redirect: permanent files go to <public_url>/<key> */
    ngx_str_t                           public_url;
    ngx_uint_t                          serve;
    /* files larger than this go as multipart uploads of such parts */
    off_t                               part_size;
    ngx_msec_t                          timeout;
#if (NGX_HTTP_SSL)
    ngx_ssl_t                          *ssl;
#endif
    unsigned                            https:1;
    unsigned                            virtual_host:1;
};


typedef struct ngx_http_bulletdrop_s3_op_s  ngx_http_bulletdrop_s3_op_t;

typedef void (*ngx_http_bulletdrop_s3_done_pt)(
    ngx_http_bulletdrop_s3_op_t *op);

/*
 * One request to the store.  Its memory is its own pool: it may outlive
 * whoever started it (a delete nobody waits for).
 */
struct ngx_http_bulletdrop_s3_op_s {
    ngx_pool_t                         *pool;
    ngx_log_t                           log;
    ngx_http_bulletdrop_s3_conf_t      *conf;
    ngx_peer_connection_t               peer;
    /* when it cannot even start, its handler is called from here */
    ngx_event_t                         failed;

    const char                         *method;
    /* unencoded; the query canonical already (sorted, encoded) or "" */
    ngx_str_t                           key;
    ngx_str_t                           query;

    /* the body: length bytes of a file from offset, or bytes in memory */
    ngx_file_t                          file;
    off_t                               offset;
    off_t                               length;
    ngx_str_t                           body;
    /* 64 hex digits, or "UNSIGNED-PAYLOAD" (set by the caller or start) */
    char                                payload_hash[65];
    ngx_str_t                           content_type;
    ngx_str_t                           disposition;

    ngx_buf_t                          *out;
    ngx_buf_t                          *chunk;
    off_t                               sent;
    ngx_buf_t                          *in;

    /* the answer: status 0 when there was none */
    ngx_uint_t                          status;
    ngx_str_t                           etag;
    ngx_str_t                           answer;
    /* why it failed, for the log; NULL: it did not, or the status says */
    const char                         *failure;

    ngx_http_bulletdrop_s3_done_pt      handler;
    void                               *data;

    off_t                               content_length;
    unsigned                            head_done:1;
    unsigned                            chunked:1;
    unsigned                            finished:1;
};


char *ngx_http_bulletdrop_storage_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* a request to the store; body and handler are set before it starts */
ngx_http_bulletdrop_s3_op_t *ngx_http_bulletdrop_s3_op(
    ngx_http_bulletdrop_s3_conf_t *conf, ngx_log_t *log, const char *method,
    ngx_str_t *key, const char *query);
/* NGX_OK: its handler will be called, once, later; NGX_ERROR: never */
ngx_int_t ngx_http_bulletdrop_s3_start(ngx_http_bulletdrop_s3_op_t *op);
/* no handler is called after this; the connection closes */
void ngx_http_bulletdrop_s3_free(ngx_http_bulletdrop_s3_op_t *op);
/* some of the request went: the store may act on it, answer or not */
ngx_uint_t ngx_http_bulletdrop_s3_sent(ngx_http_bulletdrop_s3_op_t *op);
/* a DELETE's answer: what it deleted is not there (any more) */
ngx_uint_t ngx_http_bulletdrop_s3_gone(ngx_http_bulletdrop_s3_op_t *op);
/* what the store said, for a log line: "status 403 (AccessDenied)" */
u_char *ngx_http_bulletdrop_s3_said(ngx_http_bulletdrop_s3_op_t *op,
    u_char *buf, size_t len);

/*
 * The object of a file goes; done (may be NULL) is called with
 * op->status 204 or 404 when it is gone.  Nobody needs to wait for it.
 */
ngx_int_t ngx_http_bulletdrop_s3_remove(ngx_http_bulletdrop_s3_conf_t *conf,
    ngx_log_t *log, ngx_str_t *key, ngx_http_bulletdrop_s3_done_pt done,
    void *data);

/*
 * What a request that got no answer may still leave in the store, once
 * it comes back (a store that hung keeps the requests it had taken):
 * the object of key, and a multipart upload of it (upload_id, encoded,
 * or NULL with multipart: those the store lists for the key) are
 * deleted, now and again a while later, retried while the store fails.
 */
ngx_int_t ngx_http_bulletdrop_s3_forget(ngx_http_bulletdrop_s3_conf_t *conf,
    ngx_log_t *log, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_uint_t multipart);

/* a DELETE op started; without a handler, its failure is logged */
ngx_int_t ngx_http_bulletdrop_s3_remove_op(ngx_http_bulletdrop_s3_op_t *op);


#endif /* _NGX_HTTP_BULLETDROP_S3_H_INCLUDED_ */
