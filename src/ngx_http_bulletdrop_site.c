/*
 * BulletDrop: what the web app needs of the module.
 *
 * The app is static files that nginx serves; what it cannot know from
 * them it asks GET /api/config, which needs no account (the sign-in page
 * draws itself from it).  Its Content-Security-Policy names the file
 * domains that its gallery loads images from, which an administrator
 * changes at run time: $bulletdrop_file_origins gives them to add_header.
 */

#include "ngx_http_bulletdrop_site.h"
#include "ngx_http_bulletdrop_s3_serve.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_json.h"


static ngx_int_t ngx_http_bulletdrop_file_origins_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


static ngx_str_t  ngx_http_bulletdrop_file_origins_name =
    ngx_string("bulletdrop_file_origins");


ngx_int_t
ngx_http_bulletdrop_site_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_bulletdrop_file_origins_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_bulletdrop_file_origins_variable;

    return ngx_http_bulletdrop_s3_add_variables(cf);
}


static ngx_int_t
ngx_http_bulletdrop_file_origins_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  origins;

    if (ngx_http_bulletdrop_domains_origins(r, &origins) != NGX_OK) {
        return NGX_ERROR;
    }

    v->len = origins.len;
    v->data = origins.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * GET /api/config: {registration, max_file_size, allowed_extensions,
 * base_domain, version}
 */

ngx_int_t
ngx_http_bulletdrop_site_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    u_char                           *p;
    json_t                           *exts, *ext;
    ngx_str_t                        *names;
    ngx_uint_t                        i;
    const char                       *mode;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulletdrop_module);

    switch (bmcf->registration) {
    case NGX_HTTP_BULLETDROP_REGISTRATION_INVITE:
        mode = "invite";
        break;
    case NGX_HTTP_BULLETDROP_REGISTRATION_CLOSED:
        mode = "closed";
        break;
    default:
        mode = "open";
        break;
    }

    exts = json_array();
    if (exts == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    names = bmcf->extensions->elts;

    for (i = 0; i < bmcf->extensions->nelts; i++) {
        /* as the directive names them: ".png" */
        p = ngx_pnalloc(r->pool, names[i].len + 1);
        if (p == NULL) {
            json_decref(exts);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p[0] = '.';
        ngx_memcpy(p + 1, names[i].data, names[i].len);

        ext = json_stringn((char *) p, names[i].len + 1);

        if (ext == NULL || json_array_append_new(exts, ext) != 0) {
            json_decref(exts);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK,
               json_pack("{s:s, s:I, s:o, s:o, s:s}",
                         "registration", mode,
                         "max_file_size", (json_int_t) bmcf->max_file_size,
                         "allowed_extensions", exts,
                         "base_domain", bmcf->base_domain.len
                             ? json_stringn((char *) bmcf->base_domain.data,
                                            bmcf->base_domain.len)
                             : json_null(),
                         "version", NGX_HTTP_BULLETDROP_VERSION));
}
