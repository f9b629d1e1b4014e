/*
 * BulletDrop: every error the module answers with, in one table.
 *
 * A step that refuses records an error in the request's ctx; whoever
 * finishes the request sends it.  The JSON body is {"error": code,
 * "detail": text}; the code and the status come from the table, so that
 * a misspelt error does not compile, and the detail is the table's unless
 * the step says more.
 */

#ifndef _NGX_HTTP_BULLETDROP_ERROR_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_ERROR_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


typedef enum {
    BD_ERR_NONE = 0,

    /* the request itself */
    BD_ERR_BAD_REQUEST,
    BD_ERR_TOO_LONG,
    BD_ERR_HEADERS_TOO_LARGE,
    BD_ERR_INVALID_HOST,
    BD_ERR_NOT_FOUND,
    BD_ERR_RANGE_NOT_SATISFIABLE,
    BD_ERR_METHOD_NOT_ALLOWED,
    BD_ERR_BODY_TOO_LARGE,
    BD_ERR_UNSUPPORTED_MEDIA_TYPE,
    BD_ERR_INVALID_JSON,
    BD_ERR_INVALID_FORM,
    BD_ERR_INVALID_QUERY,
    BD_ERR_MISSING_FIELD,
    BD_ERR_UNKNOWN_FIELD,
    BD_ERR_WRONG_TYPE,
    BD_ERR_NOTHING_TO_CHANGE,

    /* who asks */
    BD_ERR_UNAUTHORIZED,
    BD_ERR_INVALID_TOKEN,
    BD_ERR_TOKEN_EXPIRED,
    BD_ERR_INVALID_CREDENTIALS,
    BD_ERR_FORBIDDEN,
    BD_ERR_ACCOUNT_DISABLED,
    BD_ERR_CSRF,
    BD_ERR_TOO_MANY_ATTEMPTS,
    BD_ERR_RATE_LIMITED,

    /* accounts */
    BD_ERR_REGISTRATION_CLOSED,
    BD_ERR_INVITE_REQUIRED,
    BD_ERR_INVALID_INVITE,
    BD_ERR_INVALID_USERNAME,
    BD_ERR_INVALID_PASSWORD,
    BD_ERR_WRONG_PASSWORD,
    BD_ERR_USERNAME_TAKEN,
    BD_ERR_INVALID_NAME,
    BD_ERR_TOO_MANY_KEYS,
    BD_ERR_INVALID_EXPIRY,
    BD_ERR_INVALID_ROLE,
    BD_ERR_INVALID_QUOTA,
    BD_ERR_CANNOT_CHANGE_SELF,
    BD_ERR_CONFLICT,

    /* domains */
    BD_ERR_INVALID_DOMAIN,
    BD_ERR_DOMAIN_EXISTS,
    BD_ERR_NO_BASE_DOMAIN,

    /* uploads */
    BD_ERR_INVALID_MULTIPART,
    BD_ERR_MISSING_FILENAME,
    BD_ERR_NO_FILE,
    BD_ERR_TOO_MANY_FILES,
    BD_ERR_EMPTY_FILE,
    BD_ERR_EXTENSION_NOT_ALLOWED,
    BD_ERR_TYPE_MISMATCH,
    BD_ERR_FILE_TOO_LARGE,
    BD_ERR_QUOTA_EXCEEDED,
    BD_ERR_INVALID_MAX_VIEWS,

    /* the server */
    BD_ERR_INTERNAL,
    BD_ERR_UNAVAILABLE,
    BD_ERR_DATABASE_UNAVAILABLE,
    BD_ERR_DATABASE_ERROR,
    BD_ERR_INSUFFICIENT_STORAGE,
    BD_ERR_STORAGE_UNAVAILABLE,

    BD_ERR_COUNT
} ngx_http_bulletdrop_err_e;


typedef struct {
    ngx_uint_t                      status;
    const char                     *code;
    /* what a client is told when the step says nothing more */
    const char                     *detail;
    /* of the line that says the request was answered so */
    ngx_uint_t                      level;
} ngx_http_bulletdrop_error_t;


extern const ngx_http_bulletdrop_error_t  ngx_http_bulletdrop_errors[];


/*
 * The request's ctx, made when it has none yet (a request refused before
 * it was routed); NULL when out of memory
 */
ngx_http_bulletdrop_ctx_t *ngx_http_bulletdrop_ctx(ngx_http_request_t *r);

/*
 * Records err as the answer of ctx's request; detail (NULL: the table's)
 * must live as long as the request.  Returns NGX_DECLINED, what a step
 * that refuses returns.
 */
ngx_int_t ngx_http_bulletdrop_error_record(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_err_e err, const char *detail);

/*
 * Sends the error recorded in ctx: a body not read yet is dropped, or the
 * connection closed after the answer when it is too large to drop or
 * still coming.  Returns what a handler returns.
 */
ngx_int_t ngx_http_bulletdrop_error_send(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


#endif /* _NGX_HTTP_BULLETDROP_ERROR_H_INCLUDED_ */
