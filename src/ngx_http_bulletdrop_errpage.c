/*
 * BulletDrop: nginx's own error answers in the API's JSON.
 */

#include "ngx_http_bulletdrop_errpage.h"
#include "ngx_http_bulletdrop_error.h"
#include "ngx_http_bulletdrop_json.h"


static ngx_int_t ngx_http_bulletdrop_error_page_handler(
    ngx_http_request_t *r);
static ngx_http_bulletdrop_err_e ngx_http_bulletdrop_error_page_err(
    ngx_uint_t status);


char *
ngx_http_bulletdrop_error_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_bulletdrop_loc_conf_t *blcf = conf;

    ngx_str_t                  *value, s;
    ngx_http_core_loc_conf_t   *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_bulletdrop_error_page_handler;

    /*
     * nginx checks the body's length again on the way in: its default
     * 1m would answer a large upload refused elsewhere with its HTML 413
     */
    if (clcf->client_max_body_size == NGX_CONF_UNSET) {
        clcf->client_max_body_size = 0;
    }

    value = cf->args->elts;

    if (cf->args->nelts == 1) {
        blcf->error_retry_after = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "retry_after=", 12) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    s.data = value[1].data + 12;
    s.len = value[1].len - 12;

    blcf->error_retry_after = ngx_parse_time(&s, 1);

    /* a client is told whole seconds, one at least */
    if (blcf->error_retry_after == (time_t) NGX_ERROR
        || blcf->error_retry_after < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid retry_after \"%V\": a time of 1s or "
                           "more", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * error_page has brought the request here with the status nginx gave it
 * in r->err_status; reached any other way, there is nothing here
 */

static ngx_int_t
ngx_http_bulletdrop_error_page_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    const char                      *detail;
    ngx_http_bulletdrop_ctx_t       *ctx;
    ngx_http_bulletdrop_err_e        err;
    ngx_http_bulletdrop_loc_conf_t  *blcf;

    ctx = ngx_http_bulletdrop_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    err = r->err_status ? ngx_http_bulletdrop_error_page_err(r->err_status)
                        : BD_ERR_NOT_FOUND;

    /* the store's failure (s3-files.conf's "=502") is the 503 it is */
    if (err == BD_ERR_STORAGE_UNAVAILABLE) {
        r->err_status = ngx_http_bulletdrop_errors[err].status;
        detail = "the file store did not answer: try again";

    } else {
        detail = NULL;
    }

    if (ngx_http_bulletdrop_errors[err].status == NGX_HTTP_TOO_MANY_REQUESTS) {
        blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulletdrop_module);

        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_bulletdrop_header_out(r, "Retry-After", (char *) p,
                ngx_sprintf(p, "%T", blcf->error_retry_after) - p)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * A body that nginx refused before reading it is not read now either:
     * the connection closes after the answer, as after the module's own
     * refusals, rather than wait for a body the client may never send
     */
    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        r->keepalive = 0;
    }

    ngx_http_bulletdrop_error_record(ctx, err, detail);

    return ngx_http_bulletdrop_error_send(r, ctx);
}


/* another status keeps nginx's class: a client's fault, or the server's */

static ngx_http_bulletdrop_err_e
ngx_http_bulletdrop_error_page_err(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_NOT_FOUND:
        return BD_ERR_NOT_FOUND;

    case NGX_HTTP_NOT_ALLOWED:
        return BD_ERR_METHOD_NOT_ALLOWED;

    /* the store's (s3-files.conf), its XML never shown */
    case NGX_HTTP_RANGE_NOT_SATISFIABLE:
        return BD_ERR_RANGE_NOT_SATISFIABLE;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return BD_ERR_BODY_TOO_LARGE;

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        return BD_ERR_TOO_LONG;

    /* nginx's 494, which error_page makes a 400 unless told "=431" */
    case 431:
        return BD_ERR_HEADERS_TOO_LARGE;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return BD_ERR_RATE_LIMITED;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        return BD_ERR_UNAVAILABLE;

    /* the proxy's, of a bucket that did not answer (s3-files.conf) */
    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_GATEWAY_TIME_OUT:
        return BD_ERR_STORAGE_UNAVAILABLE;
    }

    return status < NGX_HTTP_INTERNAL_SERVER_ERROR ? BD_ERR_BAD_REQUEST
                                                  : BD_ERR_INTERNAL;
}
