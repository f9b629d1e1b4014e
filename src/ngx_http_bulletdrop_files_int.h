/*
 * BulletDrop: what the files served on the file domains share among the
 * files that serve them (files.c, files_filter.c, known.c, views.c), and
 * no other file sees: a request for a file, as its phases see it.
 */

#ifndef _NGX_HTTP_BULLETDROP_FILES_INT_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_FILES_INT_H_INCLUDED_


#include "ngx_http_bulletdrop_request.h"
#include "bd_deliver.h"


typedef struct ngx_http_bulletdrop_asks_s  ngx_http_bulletdrop_asks_t;
typedef struct ngx_http_bulletdrop_s3_get_s  ngx_http_bulletdrop_s3_get_t;

struct ngx_http_bulletdrop_file_s {
    u_char                              id[BD_DELIVER_ID_LEN];
    ngx_http_request_t                 *request;
    /* waiting to be sent, then in a batch at slot */
    ngx_queue_t                         queue;
    ngx_http_bulletdrop_asks_t         *asks;
    ngx_uint_t                          slot;
    ngx_str_t                           path;
    /* "<category>/<id>.<ext>": its key in a bucket */
    ngx_str_t                           key;
    /* its signed GET, for the proxy module (s3_serve.c) */
    ngx_http_bulletdrop_s3_get_t       *s3;
    /* empty: the bucket's object has it (bulletdrop_storage s3) */
    ngx_str_t                           disposition;
    bd_deliver_type_t                   type;
    /* milliseconds since the epoch; 0: none (or not known) */
    int64_t                             expires;

    unsigned                            limited:1;
    /* a view limit: every view is counted, so none is cached */
    unsigned                            max_views:1;
    /* the access phase waits for the database */
    unsigned                            waiting:1;
    unsigned                            decided:1;
    unsigned                            gone:1;
    /* the view was counted by the database already */
    unsigned                            counted:1;
    /* the one view a file had (burn after reading): it goes once served */
    unsigned                            last:1;
    /* an error page (a 416) goes through the filters again */
    unsigned                            headers:1;
    unsigned                            queued:1;
};


/*
 * An answer from the access phase, in JSON: the request is finalized and
 * the phases stop (files.c)
 */
ngx_int_t ngx_http_bulletdrop_files_refuse(ngx_http_request_t *r,
    ngx_http_bulletdrop_err_e err, const char *detail);


#endif /* _NGX_HTTP_BULLETDROP_FILES_INT_H_INCLUDED_ */
