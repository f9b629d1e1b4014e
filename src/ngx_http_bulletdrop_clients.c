/*
 * BulletDrop: ready-made configurations for the uploaders: a ShareX custom
 * uploader (.sxcu) and a Flameshot script, each with an API key in it.
 *
 * The key is one the client asks to be made (?new_key=1, named after the
 * uploader), else the API key the request came with, else a placeholder:
 * keys are stored hashed, so an existing one cannot be shown again.
 */

#include "ngx_http_bulletdrop_accounts.h"
#include "ngx_http_bulletdrop_clients.h"
#include "ngx_http_bulletdrop_json.h"
#include "ngx_http_bulletdrop_session.h"
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_upload.h"


#define NGX_HTTP_BULLETDROP_KEY_PLACEHOLDER  "bd_PASTE_YOUR_API_KEY_HERE"


static ngx_int_t ngx_http_bulletdrop_client(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *key_name);
static void ngx_http_bulletdrop_client_key_made(
    ngx_http_bulletdrop_db_query_t *q, PGresult *res);
static ngx_int_t ngx_http_bulletdrop_client_render(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_bulletdrop_sharex_render(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_bulletdrop_flameshot_render(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_bulletdrop_attachment(ngx_http_request_t *r,
    const char *filename);


/* the script; %1$s is the upload URL, %2$s the key: both shell-safe */
static const char  ngx_http_bulletdrop_flameshot_script[] =
    "#!/usr/bin/env bash\n"
    "# BulletDrop for Flameshot: take a screenshot, upload it, copy its "
    "link.\n"
    "# Needs flameshot and curl; copies with wl-copy, xclip or xsel.\n"
    "set -euo pipefail\n"
    "\n"
    "url='%1$s'\n"
    "key='%2$s'\n"
    "\n"
    "fail() { echo \"bulletdrop: $*\" >&2; "
    "command -v notify-send >/dev/null && notify-send BulletDrop \"$*\"; "
    "exit 1; }\n"
    "\n"
    "command -v flameshot >/dev/null || fail 'flameshot is not installed'\n"
    "command -v curl >/dev/null || fail 'curl is not installed'\n"
    "\n"
    "shot=$(mktemp --suffix=.png)\n"
    "trap 'rm -f \"$shot\"' EXIT\n"
    "\n"
    "flameshot gui --raw > \"$shot\" || fail 'flameshot failed'\n"
    "[ -s \"$shot\" ] || exit 0    # the capture was cancelled\n"
    "\n"
    "name=\"screenshot-$(date +%%Y%%m%%d-%%H%%M%%S).png\"\n"
    "answer=$(curl -sS --http1.1 -H \"Authorization: Bearer $key\" \\\n"
    "              -F \"file=@$shot;type=image/png;filename=$name\" \\\n"
    "              -w '\\n%%{http_code}' \"$url\") "
    "|| fail \"cannot reach $url\"\n"
    "status=${answer##*$'\\n'}\n"
    "body=${answer%%$'\\n'*}\n"
    "\n"
    "field() { printf '%%s' \"$body\" | "
    "sed -n \"s/.*\\\"$1\\\":\\\"\\\\([^\\\"]*\\\\)\\\".*/\\\\1/p\"; }\n"
    "\n"
    "[ \"$status\" = 201 ] || fail \"upload refused ($status): "
    "$(field detail)\"\n"
    "\n"
    "link=$(field url)\n"
    "\n"
    "# the clipboard's helpers stay to serve it: none may hold our output\n"
    "copy() {\n"
    "    if command -v wl-copy >/dev/null && [ -n \"${WAYLAND_DISPLAY:-}\" ]"
    "; then\n"
    "        wl-copy\n"
    "    elif command -v xclip >/dev/null && [ -n \"${DISPLAY:-}\" ]; then\n"
    "        xclip -selection clipboard\n"
    "    elif command -v xsel >/dev/null && [ -n \"${DISPLAY:-}\" ]; then\n"
    "        xsel --clipboard --input\n"
    "    else\n"
    "        cat >/dev/null\n"
    "    fi\n"
    "}\n"
    "printf '%%s' \"$link\" | copy >/dev/null 2>&1 "
    "|| echo 'bulletdrop: the link was not copied' >&2\n"
    "\n"
    "command -v notify-send >/dev/null "
    "&& notify-send BulletDrop \"$link\" || true\n"
    "echo \"$link\"\n";


/* GET /api/users/me/sharex[?new_key=1] */

ngx_int_t
ngx_http_bulletdrop_sharex_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_client(r, ctx, "ShareX");
}


/* GET /api/users/me/flameshot[?new_key=1] */

ngx_int_t
ngx_http_bulletdrop_flameshot_config(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx)
{
    return ngx_http_bulletdrop_client(r, ctx, "Flameshot");
}


static ngx_int_t
ngx_http_bulletdrop_client(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx, const char *key_name)
{
    ngx_str_t  arg, key, name;

    if (ngx_http_bulletdrop_base_url(r, &arg) != NGX_OK) {
        return ngx_http_bulletdrop_bad_host(r, ctx);
    }

    if (ngx_http_arg(r, (u_char *) "new_key", 7, &arg) != NGX_OK
        || arg.len != 1 || arg.data[0] != '1')
    {
        if (ctx->api_key.len) {
            return ngx_http_bulletdrop_client_render(r, &ctx->api_key);
        }

        ngx_str_set(&key, NGX_HTTP_BULLETDROP_KEY_PLACEHOLDER);
        return ngx_http_bulletdrop_client_render(r, &key);
    }

    /* a GET that makes a key: for a session, from this site's pages only */
    if (ctx->session
        && ngx_http_bulletdrop_session_same_origin(r, ctx) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    name.data = (u_char *) key_name;
    name.len = ngx_strlen(key_name);

    return ngx_http_bulletdrop_key_mint(r, ctx, &name,
                                        ngx_http_bulletdrop_client_key_made);
}


static void
ngx_http_bulletdrop_client_key_made(ngx_http_bulletdrop_db_query_t *q,
    PGresult *res)
{
    ngx_http_request_t         *r;
    ngx_http_bulletdrop_ctx_t  *ctx;

    r = q->data;

    ctx = ngx_http_bulletdrop_query_done(q, res);
    if (ctx == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_bulletdrop_too_many_keys(r, ctx);
        return;
    }

    ngx_http_bulletdrop_finish(r,
        ngx_http_bulletdrop_client_render(r, &ctx->api_key));
}


static ngx_int_t
ngx_http_bulletdrop_client_render(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_http_bulletdrop_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module);

    /* the route decides the uploader: its handler is the one that ran */
    if (ctx->handler == ngx_http_bulletdrop_sharex_config) {
        return ngx_http_bulletdrop_sharex_render(r, key);
    }

    return ngx_http_bulletdrop_flameshot_render(r, key);
}


/* a ShareX 13+ custom uploader, as ShareX imports it */

static ngx_int_t
ngx_http_bulletdrop_sharex_render(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char     *request_url, *name, *bearer;
    size_t      host;
    json_t     *sxcu;
    ngx_str_t   base;

    if (ngx_http_bulletdrop_base_url(r, &base) != NGX_OK) {
        return ngx_http_bulletdrop_bad_host(r,
                   ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));
    }

    request_url = ngx_pnalloc(r->pool, base.len
                                       + sizeof("/api/uploads/sharex"));
    name = ngx_pnalloc(r->pool, base.len + sizeof("BulletDrop ()"));
    bearer = ngx_pnalloc(r->pool, key->len + sizeof("Bearer "));

    if (request_url == NULL || name == NULL || bearer == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the host, after "http://" or "https://" */
    host = (base.data[4] == 's') ? 8 : 7;

    (void) ngx_sprintf(request_url, "%V/api/uploads/sharex%Z", &base);
    (void) ngx_sprintf(name, "BulletDrop (%*s)%Z", base.len - host,
                       base.data + host);
    (void) ngx_sprintf(bearer, "Bearer %V%Z", key);

    sxcu = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:s,"
                     " s:s, s:s}",
                     "Version", "15.0.0",
                     "Name", (char *) name,
                     "DestinationType",
                         "ImageUploader, TextUploader, FileUploader",
                     "RequestMethod", "POST",
                     "RequestURL", (char *) request_url,
                     "Headers", "Authorization", (char *) bearer,
                     "Body", "MultipartFormData",
                     "FileFormName", "file",
                     "URL", "{json:url}",
                     "DeletionURL", "{json:delete_url}",
                     "ErrorMessage", "{json:detail}");

    if (ngx_http_bulletdrop_attachment(r, "bulletdrop.sxcu") != NGX_OK) {
        json_decref(sxcu);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulletdrop_json_send(r, NGX_HTTP_OK, sxcu);
}


static ngx_int_t
ngx_http_bulletdrop_flameshot_render(ngx_http_request_t *r, ngx_str_t *key)
{
    int          n;
    char        *text, *url;
    ngx_buf_t   *b;
    ngx_str_t    base;

    if (ngx_http_bulletdrop_base_url(r, &base) != NGX_OK) {
        return ngx_http_bulletdrop_bad_host(r,
                   ngx_http_get_module_ctx(r, ngx_http_bulletdrop_module));
    }

    /*
     * both go between single quotes: base_url() and the keys' alphabet
     * leave no quote in either
     */
    url = ngx_pnalloc(r->pool, base.len + sizeof("/api/uploads/sharex"));
    if (url == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_sprintf((u_char *) url, "%V/api/uploads/sharex%Z", &base);

    text = ngx_pnalloc(r->pool, key->len + 1);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_cpystrn((u_char *) text, key->data, key->len + 1);

    b = ngx_create_temp_buf(r->pool,
                            sizeof(ngx_http_bulletdrop_flameshot_script)
                            + ngx_strlen(url) + key->len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = snprintf((char *) b->pos, b->end - b->pos,
                 ngx_http_bulletdrop_flameshot_script, url, text);

    if (n < 0 || n >= b->end - b->pos) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = b->pos + n;

    if (ngx_http_bulletdrop_attachment(r, "bulletdrop-flameshot.sh")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* it holds a key: no-store */
    return ngx_http_bulletdrop_send_buf(r, NGX_HTTP_OK,
                                        "text/x-shellscript; charset=utf-8",
                                        sizeof("text/x-shellscript") - 1, b);
}


static ngx_int_t
ngx_http_bulletdrop_attachment(ngx_http_request_t *r, const char *filename)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");

    h->value.data = ngx_pnalloc(r->pool, sizeof("attachment; filename=\"\"")
                                         + ngx_strlen(filename));
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "attachment; filename=\"%s\"",
                               filename)
                   - h->value.data;

    return NGX_OK;
}
