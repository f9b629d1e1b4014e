/*
 * BulletDrop: every error the module answers with, in one table.
 */

#include "ngx_http_bulletdrop_error.h"
#include "ngx_http_bulletdrop_body.h"
#include "ngx_http_bulletdrop_json.h"


/* a refused body up to this size is drained to keep the connection */
#define NGX_HTTP_BULLETDROP_DRAIN_MAX  65536


#define bd_client(status, code, detail)                                       \
    { status, code, detail, NGX_LOG_INFO }
#define bd_server(status, code, detail)                                       \
    { status, code, detail, NGX_LOG_WARN }

const ngx_http_bulletdrop_error_t  ngx_http_bulletdrop_errors[] = {

    [BD_ERR_NONE] =
        bd_server(NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                  "the server failed to answer: see its error log"),

    [BD_ERR_BAD_REQUEST] =
        bd_client(NGX_HTTP_BAD_REQUEST, "bad_request",
                  "the request is malformed"),
    [BD_ERR_TOO_LONG] =
        bd_client(NGX_HTTP_REQUEST_URI_TOO_LARGE, "too_long",
                  "the request line is too long"),
    [BD_ERR_HEADERS_TOO_LARGE] =
        bd_client(431, "headers_too_large",
                  "the request's headers, or its cookies, are too large"),
    [BD_ERR_INVALID_HOST] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_host",
                  "the Host header must be a plain host name, with a port "
                  "if need be"),
    [BD_ERR_NOT_FOUND] =
        bd_client(NGX_HTTP_NOT_FOUND, "not_found", "there is no such thing"),
    [BD_ERR_RANGE_NOT_SATISFIABLE] =
        bd_client(NGX_HTTP_RANGE_NOT_SATISFIABLE, "range_not_satisfiable",
                  "the range is not within the file"),
    [BD_ERR_METHOD_NOT_ALLOWED] =
        bd_client(NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                  "this route does not take that method"),
    [BD_ERR_BODY_TOO_LARGE] =
        bd_client(NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                  "the body is larger than this server takes"),
    [BD_ERR_UNSUPPORTED_MEDIA_TYPE] =
        bd_client(NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                  "send application/json"),
    [BD_ERR_INVALID_JSON] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_json", "malformed JSON"),
    [BD_ERR_INVALID_FORM] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_form", "a malformed form"),
    [BD_ERR_INVALID_QUERY] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_query",
                  "a malformed query string"),
    [BD_ERR_MISSING_FIELD] =
        bd_client(422, "missing_field", "a required field is missing"),
    [BD_ERR_UNKNOWN_FIELD] =
        bd_client(422, "unknown_field", "a field this route does not take"),
    [BD_ERR_WRONG_TYPE] =
        bd_client(422, "wrong_type", "a field has the wrong type"),
    [BD_ERR_NOTHING_TO_CHANGE] =
        bd_client(NGX_HTTP_BAD_REQUEST, "nothing_to_change",
                  "the request changes nothing"),

    [BD_ERR_UNAUTHORIZED] =
        bd_client(NGX_HTTP_UNAUTHORIZED, "unauthorized",
                  "send \"Authorization: Bearer <token or API key>\""),
    [BD_ERR_INVALID_TOKEN] =
        bd_client(NGX_HTTP_UNAUTHORIZED, "invalid_token",
                  "the token is not valid"),
    [BD_ERR_TOKEN_EXPIRED] =
        bd_client(NGX_HTTP_UNAUTHORIZED, "token_expired",
                  "the token has expired"),
    [BD_ERR_INVALID_CREDENTIALS] =
        bd_client(NGX_HTTP_UNAUTHORIZED, "invalid_credentials",
                  "wrong user name or password"),
    [BD_ERR_FORBIDDEN] =
        bd_client(NGX_HTTP_FORBIDDEN, "forbidden",
                  "this route is for administrators"),
    [BD_ERR_ACCOUNT_DISABLED] =
        bd_client(NGX_HTTP_FORBIDDEN, "account_disabled",
                  "this account is disabled"),
    [BD_ERR_CSRF] =
        bd_client(NGX_HTTP_FORBIDDEN, "csrf",
                  "a change made with the session cookie must come from "
                  "this site's own pages"),
    [BD_ERR_TOO_MANY_ATTEMPTS] =
        bd_client(NGX_HTTP_TOO_MANY_REQUESTS, "too_many_attempts",
                  "too many attempts: wait and try again"),
    [BD_ERR_RATE_LIMITED] =
        bd_client(NGX_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                  "too many requests: wait as Retry-After says"),

    [BD_ERR_REGISTRATION_CLOSED] =
        bd_client(NGX_HTTP_FORBIDDEN, "registration_closed",
                  "this server takes no new users"),
    [BD_ERR_INVITE_REQUIRED] =
        bd_client(NGX_HTTP_FORBIDDEN, "invite_required",
                  "registering here needs an invite code"),
    [BD_ERR_INVALID_INVITE] =
        bd_client(NGX_HTTP_FORBIDDEN, "invalid_invite",
                  "that invite does not exist, was used or has expired"),
    [BD_ERR_INVALID_USERNAME] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_username",
                  "a user name has 3 to 32 of A-Z, a-z, 0-9, \"_\", \".\" "
                  "and \"-\""),
    [BD_ERR_INVALID_PASSWORD] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_password",
                  "a password has 8 to 1024 bytes"),
    [BD_ERR_WRONG_PASSWORD] =
        bd_client(NGX_HTTP_FORBIDDEN, "wrong_password",
                  "the current password is wrong"),
    [BD_ERR_USERNAME_TAKEN] =
        bd_client(NGX_HTTP_CONFLICT, "username_taken",
                  "that user name is taken"),
    [BD_ERR_INVALID_NAME] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_name",
                  "a key's name has 1 to 64 bytes of text"),
    [BD_ERR_TOO_MANY_KEYS] =
        bd_client(NGX_HTTP_CONFLICT, "too_many_keys",
                  "a user holds at most 100 API keys: delete one first"),
    [BD_ERR_INVALID_EXPIRY] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_expiry",
                  "the expiry is not one this server takes"),
    [BD_ERR_INVALID_ROLE] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_role",
                  "a role is \"user\" or \"admin\""),
    [BD_ERR_INVALID_QUOTA] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_quota",
                  "quota_bytes is 0 or more, or null for no limit"),
    [BD_ERR_CANNOT_CHANGE_SELF] =
        bd_client(NGX_HTTP_CONFLICT, "cannot_change_self",
                  "an administrator cannot demote or disable themselves"),
    [BD_ERR_CONFLICT] =
        bd_client(NGX_HTTP_CONFLICT, "conflict",
                  "changed meanwhile: try again"),

    [BD_ERR_INVALID_DOMAIN] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_domain",
                  "a domain is a host name such as img.example.com"),
    [BD_ERR_DOMAIN_EXISTS] =
        bd_client(NGX_HTTP_CONFLICT, "domain_exists",
                  "this domain is registered already"),
    [BD_ERR_NO_BASE_DOMAIN] =
        bd_client(NGX_HTTP_CONFLICT, "no_base_domain",
                  "this server has no bulletdrop_base_domain to seed from"),

    [BD_ERR_INVALID_MULTIPART] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_multipart",
                  "a malformed multipart/form-data body"),
    [BD_ERR_MISSING_FILENAME] =
        bd_client(NGX_HTTP_BAD_REQUEST, "missing_filename",
                  "name the file with X-Filename or ?filename=, or send "
                  "multipart/form-data"),
    [BD_ERR_NO_FILE] =
        bd_client(NGX_HTTP_BAD_REQUEST, "no_file",
                  "send the file in a part named \"file\""),
    [BD_ERR_TOO_MANY_FILES] =
        bd_client(NGX_HTTP_BAD_REQUEST, "too_many_files",
                  "send one part named \"file\""),
    [BD_ERR_EMPTY_FILE] =
        bd_client(NGX_HTTP_BAD_REQUEST, "empty_file", "the file is empty"),
    [BD_ERR_EXTENSION_NOT_ALLOWED] =
        bd_client(NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "extension_not_allowed",
                  "files of this type are not taken here"),
    [BD_ERR_TYPE_MISMATCH] =
        bd_client(NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "type_mismatch",
                  "the file's content does not match its extension"),
    [BD_ERR_FILE_TOO_LARGE] =
        bd_client(NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "file_too_large",
                  "the file is larger than this server takes"),
    [BD_ERR_QUOTA_EXCEEDED] =
        bd_client(NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "quota_exceeded",
                  "the file is larger than what is left of your storage "
                  "quota"),
    [BD_ERR_INVALID_MAX_VIEWS] =
        bd_client(NGX_HTTP_BAD_REQUEST, "invalid_max_views",
                  "X-BulletDrop-Max-Views is a whole number from 1 to "
                  "2147483647"),

    [BD_ERR_INTERNAL] =
        bd_server(NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                  "the server failed to answer: see its error log"),
    [BD_ERR_UNAVAILABLE] =
        bd_server(NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                  "the server is busy: try again"),
    [BD_ERR_DATABASE_UNAVAILABLE] =
        bd_server(NGX_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                  "no connection to the database"),
    [BD_ERR_DATABASE_ERROR] =
        bd_server(NGX_HTTP_SERVICE_UNAVAILABLE, "database_error",
                  "the database refused the request"),
    [BD_ERR_INSUFFICIENT_STORAGE] =
        bd_server(507, "insufficient_storage", "the server's disk is full"),
    [BD_ERR_STORAGE_UNAVAILABLE] =
        bd_server(NGX_HTTP_SERVICE_UNAVAILABLE, "storage_unavailable",
                  "the file store did not take the file: try again"),
};


static ngx_int_t ngx_http_bulletdrop_error_body(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


ngx_http_bulletdrop_ctx_t *
ngx_http_bulletdrop_ctx(ngx_http_request_t *r)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulletdrop_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_bulletdrop_module);
    }

    return ctx;
}


ngx_int_t
ngx_http_bulletdrop_error_record(ngx_http_bulletdrop_ctx_t *ctx,
    ngx_http_bulletdrop_err_e err, const char *detail)
{
    ctx->error = err;
    ctx->error_detail = detail;

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_bulletdrop_error_send(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_int_t                           rc;
    const ngx_http_bulletdrop_error_t  *e;

    e = &ngx_http_bulletdrop_errors[ctx->error];

#if (NGX_DEBUG)
    if (ctx->error >= BD_ERR_COUNT) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "bulletdrop: error %ui is not in the table",
                      ctx->error);
        e = &ngx_http_bulletdrop_errors[BD_ERR_INTERNAL];
    }
#endif

    /* the code only: a detail may quote the client's bytes */
    ngx_log_error(e->level, r->connection->log, 0,
                  "bulletdrop: answered %ui %s", e->status, e->code);

    rc = ngx_http_bulletdrop_error_body(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (e->status == NGX_HTTP_UNAUTHORIZED
        && ngx_http_bulletdrop_header_out(r, "WWW-Authenticate",
               "Bearer realm=\"bulletdrop\"",
               sizeof("Bearer realm=\"bulletdrop\"") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (e->status == NGX_HTTP_SERVICE_UNAVAILABLE
        && ngx_http_bulletdrop_header_out(r, "Retry-After", "1", 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_json_error(r, e->status, e->code,
                                          ctx->error_detail
                                          ? ctx->error_detail : e->detail);
}


/*
 * An answer before the body was read: a client waiting for "100
 * Continue" is not invited to send it.  The body is read and dropped, so
 * that the connection can serve the next request, unless the route reads
 * bodies and this one is an upload, of unknown length or large: then it
 * is not read at all, and the connection is closed.  A body already being
 * read is the sender's to settle.
 */

static ngx_int_t
ngx_http_bulletdrop_error_body(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    ngx_int_t  rc;

    r->expect_tested = 1;

    /* being read, dropped already, or left unread on a closing connection */
    if (r->request_body || r->discard_body || !r->keepalive) {
        return NGX_OK;
    }

    if (ctx->handler
        && (r->headers_in.chunked
            || (r->headers_in.content_length_n > 0
                && (ctx->body_kind == NGX_HTTP_BULLETDROP_BODY_STREAM
                    || r->headers_in.content_length_n
                       > NGX_HTTP_BULLETDROP_DRAIN_MAX))))
    {
        r->keepalive = 0;
        r->lingering_close = 1;
        return NGX_OK;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc == NGX_HTTP_BAD_REQUEST) {
        /* a broken chunked body: where it ends is unknown */
        r->keepalive = 0;
        ngx_http_bulletdrop_error_record(ctx, BD_ERR_BAD_REQUEST, NULL);
        return NGX_OK;
    }

    return rc;
}
