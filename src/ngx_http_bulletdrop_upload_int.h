/*
 * BulletDrop: what the parts of an upload share, and no other file sees.
 *
 * upload.c         the route: headers, options, early refusals; the temp
 *                  file opened and, on every way out but success, dropped
 * upload_body.c    the body as it streams: chunks, multipart parts, bytes
 *                  counted, hashed, sniffed and written
 * upload_sync.c    the file put in place: fsync()ed on the thread pool
 *                  when asked, linked or renamed to its name
 * upload_store.c   or put in the bucket (bulletdrop_storage s3)
 * upload_commit.c  its row handed to commit.c's batches, and the answer
 */

#ifndef _NGX_HTTP_BULLETDROP_UPLOAD_INT_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_UPLOAD_INT_H_INCLUDED_


#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_commit.h"
#include "bd_file.h"
#include "bd_multipart.h"

#include <openssl/evp.h>


/* room for a multipart body's boundaries and part headers */
#define NGX_HTTP_BULLETDROP_MULTIPART_SLACK   16384


struct ngx_http_bulletdrop_upload_s {
    ngx_http_request_t                 *request;
    /* "http://host", checked before the body is read */
    ngx_str_t                           base;

    ngx_fd_t                            fd;
    /* NUL-terminated paths; tmp is the directory of an unnamed file */
    ngx_str_t                           tmp;
    ngx_str_t                           path;

    EVP_MD_CTX                         *sha;
    /* the file's bytes, and the body's (a multipart body has more) */
    off_t                               size;
    off_t                               received;
    /* the smaller of the file size limit and what the quota leaves */
    off_t                               limit;

    bd_multipart_t                     *mp;

    u_char                              head[BD_FILE_MAGIC_LEN];
    size_t                              head_len;

    char                                ext[BD_FILE_EXT_MAX + 1];
    const char                         *category;
    char                                name[BD_FILE_NAME_MAX + 1];
    size_t                              name_len;
    char                                id[BD_FILE_ID_LEN + 1];
    char                                sha256[
                                            NGX_HTTP_BULLETDROP_HASH_HEX_LEN];
    ngx_str_t                           delete_token;
    char                                delete_hash[
                                            NGX_HTTP_BULLETDROP_HASH_HEX_LEN];

    /* where its link lives (data NULL: the host it came to), its limits */
    ngx_str_t                           domain;
    /* milliseconds since the epoch; 0: never */
    int64_t                             expires;
    int32_t                             max_views;

    unsigned                            sharex:1;
    unsigned                            multipart:1;
    unsigned                            quota_limits:1;
    unsigned                            in_file:1;
    unsigned                            file_seen:1;
    unsigned                            magic_checked:1;
    unsigned                            unnamed:1;
    /* the file is at path (the key in the bucket); the row makes it kept */
    unsigned                            placed:1;
    unsigned                            committed:1;
    /* the row's INSERT is out: until it answers, the file stays */
    unsigned                            inserting:1;

    ngx_http_bulletdrop_commit_t        commit;
};


/* upload.c */
void ngx_http_bulletdrop_upload_drop(ngx_http_bulletdrop_upload_t *up);
void ngx_http_bulletdrop_too_large(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_upload_t *up);
ngx_int_t ngx_http_bulletdrop_upload_abort(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_err_e err, const char *detail);
ngx_int_t ngx_http_bulletdrop_upload_fail(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, ngx_int_t status);
ngx_int_t ngx_http_bulletdrop_upload_name(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up, u_char *name, size_t len);

/* upload_body.c */
extern bd_multipart_callbacks_t  ngx_http_bulletdrop_multipart_callbacks;

ngx_int_t ngx_http_bulletdrop_upload_chunk(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, u_char *p, size_t n);
ngx_int_t ngx_http_bulletdrop_upload_end(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);

/* upload_sync.c */
int ngx_http_bulletdrop_place(ngx_fd_t fd, u_char *tmp, u_char *path);
ngx_int_t ngx_http_bulletdrop_upload_sync(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up);

/* upload_store.c: bulletdrop_storage s3 */
ngx_int_t ngx_http_bulletdrop_upload_store(ngx_http_request_t *r,
    ngx_http_bulletdrop_upload_t *up);

/* upload_commit.c */
ngx_int_t ngx_http_bulletdrop_upload_commit(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_UPLOAD_INT_H_INCLUDED_ */
