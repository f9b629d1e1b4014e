/*
 * libFuzzer target for src/bd_deliver.c.
 *
 * Input: byte 0 picks what is read (a request path, an X-BulletDrop-
 * Expires or -Max-Views value, a display name for Content-Disposition, an
 * extension, text to escape); the rest is that untrusted text.  What comes
 * out must be what a header, a link or a page can carry as it is.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd_deliver.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)

/* 2026-11-25T12:00:00Z */
#define NOW_MS  1795608000000LL


static int
one_of(const char *s, size_t len, const char *a, const char *b,
    const char *c)
{
    return (len == strlen(a) && memcmp(s, a, len) == 0)
           || (len == strlen(b) && memcmp(s, b, len) == 0)
           || (len == strlen(c) && memcmp(s, c, len) == 0);
}


static void
path(const char *s, size_t len)
{
    size_t             i;
    char               again[64];
    bd_deliver_path_t  p;

    if (bd_deliver_path(s, len, &p) != 0) {
        return;
    }

    check(one_of(p.category, p.category_len, "images", "documents",
                 "other"));
    check(p.ext_len >= 1 && p.ext_len <= 16);

    for (i = 0; i < p.ext_len; i++) {
        check((p.ext[i] >= 'a' && p.ext[i] <= 'z')
              || (p.ext[i] >= '0' && p.ext[i] <= '9'));
    }

    /* nothing else in the path: it is made again from its parts */
    check(len < sizeof(again));
    check((size_t) snprintf(again, sizeof(again), "/static/%.*s/%.*s.%.*s",
                            (int) p.category_len, p.category,
                            BD_DELIVER_ID_LEN, p.id, (int) p.ext_len, p.ext)
          == len);
    check(memcmp(again, s, len) == 0);
}


static void
expiry(const char *s, size_t len)
{
    int      rc;
    int64_t  at;

    at = -1;
    rc = bd_expiry_parse(s, len, NOW_MS, &at);

    check(rc >= BD_EXPIRY_TOO_FAR && rc <= BD_EXPIRY_NEVER);

    if (rc == BD_EXPIRY_OK) {
        check(at > NOW_MS && at <= NOW_MS + BD_EXPIRY_MAX_MS);

    } else {
        check(at == -1);
    }
}


static void
views(const char *s, size_t len)
{
    int32_t  n;

    if (bd_max_views_parse(s, len, &n) == 0) {
        check(n >= 1);
    }
}


static void
disposition(int inline_ok, const char *s, size_t len)
{
    size_t  n, i;
    char    out[BD_DELIVER_DISPOSITION_MAX];

    if (len > 255) {
        len = 255;
    }

    n = bd_deliver_disposition(inline_ok, s, len, out, sizeof(out));

    check(n < sizeof(out));
    check(out[n] == '\0');
    check(bd_deliver_disposition(inline_ok, s, len, NULL, 0) == n);

    /* a header value as it is: printable ASCII, nothing more */
    for (i = 0; i < n; i++) {
        check(out[i] >= 0x20 && out[i] <= 0x7e);
    }

    check(strncmp(out, inline_ok ? "inline" : "attachment",
                  inline_ok ? 6 : 10) == 0);
}


static void
type(const char *s, size_t len)
{
    const char         *ct;
    bd_deliver_type_t   t;

    bd_deliver_type(s, len, &t);

    ct = t.content_type;
    check(ct != NULL && strpbrk(ct, "\r\n") == NULL);

    /* what renders is an image, a video or a PDF, nothing else */
    if (t.inline_ok && !t.text) {
        check(strncmp(ct, "image/", 6) == 0 || strncmp(ct, "video/", 6) == 0
              || strcmp(ct, "application/pdf") == 0);
        check(strstr(ct, "svg") == NULL);
    }

    if (t.text) {
        check(strcmp(ct, "text/plain; charset=utf-8") == 0);
    }
}


static void
escape(const char *s, size_t len)
{
    size_t  n, i;
    char   *out;

    out = malloc(bd_html_escape_len(len) + 1);
    check(out != NULL);

    n = bd_html_escape(s, len, out);
    check(n >= len && n <= bd_html_escape_len(len));

    for (i = 0; i < n; i++) {
        check(out[i] != '<' && out[i] != '>' && out[i] != '"'
              && out[i] != '\'');
    }

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *s;
    size_t   len;

    if (size == 0) {
        return 0;
    }

    /* an exact-size copy: a read past the end is a sanitizer report */
    len = size - 1;
    s = malloc(len ? len : 1);
    check(s != NULL);
    memcpy(s, data + 1, len);

    switch (data[0] % 6) {
    case 0: path(s, len); break;
    case 1: expiry(s, len); break;
    case 2: views(s, len); break;
    case 3: disposition(data[0] & 0x80, s, len); break;
    case 4: type(s, len); break;
    default: escape(s, len); break;
    }

    free(s);

    return 0;
}
