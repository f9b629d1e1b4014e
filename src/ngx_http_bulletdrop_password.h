/*
 * BulletDrop: password hashing and checking on nginx's thread pool.
 */

#ifndef _NGX_HTTP_BULLETDROP_PASSWORD_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_PASSWORD_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "bd_password.h"


typedef struct ngx_http_bulletdrop_password_s  ngx_http_bulletdrop_password_t;

typedef void (*ngx_http_bulletdrop_password_done_pt)(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw);


/* one job: a check, a new hash, or both (a password change) */
struct ngx_http_bulletdrop_password_s {
    /* check this password against stored (NULL: a user that does not exist) */
    ngx_str_t                       check;
    const char                     *stored;
    unsigned                        do_check:1;

    /* hash this one */
    ngx_str_t                       plain;
    unsigned                        do_hash:1;

    /* results: matched is 1 only for a match; hash is "" when it failed */
    unsigned                        matched:1;
    char                            hash[BD_PASSWORD_HASH_MAX];
};


/*
 * Runs the job on the thread pool and calls done, on the event loop, when
 * it is over; done finishes the request.  Returns NGX_DONE, or a status
 * when the job cannot be queued.  If the request goes away first, done is
 * never called.
 */
ngx_int_t ngx_http_bulletdrop_password_run(ngx_http_request_t *r,
    ngx_http_bulletdrop_password_t *pw,
    ngx_http_bulletdrop_password_done_pt done);


#endif /* _NGX_HTTP_BULLETDROP_PASSWORD_H_INCLUDED_ */
