/*
 * BulletDrop: text rules for untrusted input.
 */

#include <string.h>

#include "bd_text.h"


static const char  bd_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


int
bd_username_valid(const char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len < BD_USERNAME_MIN || len > BD_USERNAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


int
bd_utf8_valid(const char *s, size_t len)
{
    size_t                i, n, k;
    uint32_t              cp, min;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    i = 0;

    while (i < len) {

        if (p[i] < 0x80) {
            i++;
            continue;
        }

        /* C0 and C1 can only start overlong forms; F5..FF are past 10FFFF */

        if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            n = 1;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if (p[i] >= 0xe0 && p[i] <= 0xef) {
            n = 2;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
            n = 3;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i - 1 < n) {
            return 0;
        }

        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }

        i += n + 1;
    }

    return 1;
}


int
bd_has_control(const char *s, size_t len)
{
    size_t  i;

    const unsigned char  *p;

    p = (const unsigned char *) s;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 1;
        }

        /* C1 controls, U+0080..U+009F: C2 80..C2 9F */
        if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80
            && p[i + 1] <= 0x9f)
        {
            return 1;
        }

        /*
         * bidirectional overrides and isolates, which make a name read
         * other than it is: U+202A..U+202E (E2 80 AA..AE) and
         * U+2066..U+2069 (E2 81 A6..A9)
         */
        if (p[i] == 0xe2 && i + 2 < len
            && ((p[i + 1] == 0x80 && p[i + 2] >= 0xaa && p[i + 2] <= 0xae)
                || (p[i + 1] == 0x81 && p[i + 2] >= 0xa6
                    && p[i + 2] <= 0xa9)))
        {
            return 1;
        }
    }

    return 0;
}


int
bd_hostname_valid(const char *s, size_t len)
{
    size_t         i, label, labels;
    unsigned char  c;

    if (len == 0 || len > 253) {
        return 0;
    }

    label = 0;
    labels = 1;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return 0;
            }

            label = 0;
            labels++;
            continue;
        }

        if (c == '-') {
            if (label == 0) {
                return 0;
            }

        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return 0;
        }

        if (++label > 63) {
            return 0;
        }
    }

    /* the last label: empty means a trailing dot */
    if (label == 0 || s[len - 1] == '-') {
        return 0;
    }

    /* an all-digit top label is an IPv4 address, not a host name */
    for (i = len - label; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            break;
        }
    }

    if (i == len) {
        return 0;
    }

    return labels >= 2;
}


int
bd_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* decodes one '+' and %XX encoded piece; returns its length or -1 */
static long
bd_form_decode(const char *src, const char *end, char *dst)
{
    int          hi, lo;
    char        *d;
    const char  *p;

    d = dst;

    for (p = src; p < end; p++) {

        if (*p == '+') {
            *d++ = ' ';
            continue;
        }

        if (*p != '%') {
            *d++ = *p;
            continue;
        }

        if (end - p < 3) {
            return -1;
        }

        hi = bd_hex_value((unsigned char) p[1]);
        lo = bd_hex_value((unsigned char) p[2]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        *d++ = (char) (hi << 4 | lo);
        p += 2;
    }

    return d - dst;
}


int
bd_form_next(const char **pos, const char *end, char *name,
    size_t *nlen, char *value, size_t *vlen)
{
    long         n, v;
    const char  *p, *amp, *eq;

    p = *pos;

    while (p < end && *p == '&') {
        p++;
    }

    if (p == end) {
        *pos = p;
        return 0;
    }

    amp = memchr(p, '&', (size_t) (end - p));
    if (amp == NULL) {
        amp = end;
    }

    /* the first raw '=' splits: an encoded one (%3D) stays in the name */
    eq = memchr(p, '=', (size_t) (amp - p));
    if (eq == NULL) {
        eq = amp;
    }

    /* past the pair even when it is malformed, so a caller cannot loop */
    *pos = amp;

    n = bd_form_decode(p, eq, name);
    v = (eq < amp) ? bd_form_decode(eq + 1, amp, value) : 0;

    if (n < 0 || v < 0) {
        return -1;
    }

    *nlen = (size_t) n;
    *vlen = (size_t) v;

    return 1;
}


size_t
bd_base64url_encode(const unsigned char *src, size_t n, char *dst)
{
    char  *d;

    d = dst;

    while (n >= 3) {
        *d++ = bd_base64url_alphabet[src[0] >> 2];
        *d++ = bd_base64url_alphabet[(src[0] & 0x03) << 4 | src[1] >> 4];
        *d++ = bd_base64url_alphabet[(src[1] & 0x0f) << 2 | src[2] >> 6];
        *d++ = bd_base64url_alphabet[src[2] & 0x3f];
        src += 3;
        n -= 3;
    }

    if (n > 0) {
        *d++ = bd_base64url_alphabet[src[0] >> 2];

        if (n == 1) {
            *d++ = bd_base64url_alphabet[(src[0] & 0x03) << 4];

        } else {
            *d++ = bd_base64url_alphabet[(src[0] & 0x03) << 4 | src[1] >> 4];
            *d++ = bd_base64url_alphabet[(src[1] & 0x0f) << 2];
        }
    }

    *d = '\0';

    return (size_t) (d - dst);
}


int
bd_base64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


long
bd_base64url_decode(const char *src, size_t len, unsigned char *dst)
{
    int             v;
    size_t          i;
    uint32_t        acc;
    unsigned        bits;
    unsigned char  *d;

    if (len % 4 == 1) {
        return -1;
    }

    d = dst;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = bd_base64url_value((unsigned char) src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6 | (uint32_t) v) & 0xffffff;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (unsigned char) (acc >> bits);
        }
    }

    /*
     * The last character's unused low bits must be zero: one text per
     * byte string, so that a token cannot be spelled two ways.
     */
    if (acc & ((1u << bits) - 1)) {
        return -1;
    }

    return d - dst;
}


void
bd_hex_encode(const unsigned char *src, size_t n, char *dst)
{
    static const char  hex[] = "0123456789abcdef";

    while (n--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0x0f];
    }

    *dst = '\0';
}


int
bd_cookie_find(const char *header, size_t len, const char *name,
    size_t nlen, const char **value, size_t *vlen)
{
    int          found;
    const char  *p, *end, *semi, *eq, *n, *nend;

    found = 0;
    p = header;
    end = header + len;

    while (p < end) {
        semi = memchr(p, ';', (size_t) (end - p));
        if (semi == NULL) {
            semi = end;
        }

        eq = memchr(p, '=', (size_t) (semi - p));

        if (eq) {
            n = p;
            while (n < eq && (*n == ' ' || *n == '\t')) {
                n++;
            }

            nend = eq;
            while (nend > n && (nend[-1] == ' ' || nend[-1] == '\t')) {
                nend--;
            }

            if ((size_t) (nend - n) == nlen && memcmp(n, name, nlen) == 0) {
                if (found++ == 0) {
                    *value = eq + 1;
                    *vlen = (size_t) (semi - (eq + 1));

                    while (*vlen && ((*value)[*vlen - 1] == ' '
                                     || (*value)[*vlen - 1] == '\t'))
                    {
                        (*vlen)--;
                    }

                    while (*vlen && (**value == ' ' || **value == '\t')) {
                        (*value)++;
                        (*vlen)--;
                    }
                }
            }
        }

        if (semi == end) {
            break;
        }

        p = semi + 1;
    }

    return found;
}
