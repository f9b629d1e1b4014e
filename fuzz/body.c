/*
 * libFuzzer target for the pure parts of the API's small bodies
 * (src/ngx_http_bulletdrop_body.c): bd_form_next() on a form body, and the
 * src/bd_text.c rules that then see a client's fields.
 *
 * Input: byte 0 seeds the choices of the round trip below; the rest is a
 * request body, in a buffer of its own size.
 *
 *  - The body is walked as body.c walks it, with name and value buffers
 *    of the body's length + 1, to its end (a malformed pair does not stop
 *    this walk).  Every call answers 1, 0 or -1, moves on to a '&' or the
 *    end, never back; 0 only at the end; at most one call per byte and
 *    one more; a name and a value together no longer than the bytes
 *    passed over.  The pairs and errors must be those of an independent
 *    decoder written here, at the same places.
 *  - The body is walked again with buffers of exactly the encoded pair's
 *    length (the header's contract): the same pairs.
 *  - Field pairs cut from the body's bytes are form-encoded here, with
 *    choices taken from byte 0 ('+' or %20, either case of hex, escapes
 *    where none is needed, raw '=' in values, runs of '&'), and must
 *    decode to themselves.
 *  - The whole body and each decoded name and value go through
 *    bd_utf8_valid() (against a check by the Unicode table of well-formed
 *    sequences), bd_has_control() (against code points, for UTF-8 text),
 *    bd_hostname_valid(), bd_username_valid() and bd_base64url_decode()
 *    (against their rules written again; a decoded token encodes back to
 *    the same text), each on a copy of its own size.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_text.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)

#define MAX_FIELDS  64


typedef struct {
    int            rc;        /* 1, or -1 for a malformed pair */
    size_t         start;     /* the pair's offset, past any '&'s */
    size_t         end;       /* the offset of its '&' or of the end */
    char          *name;
    size_t         nlen;
    char          *value;
    size_t         vlen;
} pair_t;


typedef struct {
    pair_t        *pair;
    size_t         n;
    size_t         cap;
} pairs_t;


static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static char *
dup(const void *s, size_t n)
{
    char  *d;

    d = malloc(n ? n : 1);
    check(d != NULL);

    if (n) {
        memcpy(d, s, n);
    }

    return d;
}


static void
pairs_add(pairs_t *ps, int rc, size_t start, size_t end, const char *name,
    size_t nlen, const char *value, size_t vlen)
{
    pair_t  *p;

    if (ps->n == ps->cap) {
        ps->cap = ps->cap * 2 + 8;
        ps->pair = realloc(ps->pair, ps->cap * sizeof(pair_t));
        check(ps->pair != NULL);
    }

    p = &ps->pair[ps->n++];
    p->rc = rc;
    p->start = start;
    p->end = end;
    p->name = (rc == 1) ? dup(name, nlen) : NULL;
    p->nlen = (rc == 1) ? nlen : 0;
    p->value = (rc == 1) ? dup(value, vlen) : NULL;
    p->vlen = (rc == 1) ? vlen : 0;
}


static void
pairs_free(pairs_t *ps)
{
    size_t  i;

    for (i = 0; i < ps->n; i++) {
        free(ps->pair[i].name);
        free(ps->pair[i].value);
    }

    free(ps->pair);
}


static void
pairs_same(const pairs_t *a, const pairs_t *b)
{
    size_t         i;
    const pair_t  *x, *y;

    check(a->n == b->n);

    for (i = 0; i < a->n; i++) {
        x = &a->pair[i];
        y = &b->pair[i];

        check(x->rc == y->rc && x->start == y->start && x->end == y->end);

        if (x->rc == 1) {
            check(x->nlen == y->nlen && x->vlen == y->vlen);
            check(x->nlen == 0 || memcmp(x->name, y->name, x->nlen) == 0);
            check(x->vlen == 0 || memcmp(x->value, y->value, x->vlen) == 0);
        }
    }
}


/* the independent decoder: '&' splits, empty pieces go, '=' splits once */

static int
ref_hex(unsigned char c)
{
    const char  *digits = "0123456789abcdef";
    const char  *p;

    if (c >= 'A' && c <= 'F') {
        c = (unsigned char) (c - 'A' + 'a');
    }

    p = (c == '\0') ? NULL : strchr(digits, c);

    return p ? (int) (p - digits) : -1;
}


static long
ref_unescape(const unsigned char *s, size_t len, char *out)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (len - i < 3) {
                return -1;
            }

            if (ref_hex(s[i + 1]) < 0 || ref_hex(s[i + 2]) < 0) {
                return -1;
            }

            out[n++] = (char) (ref_hex(s[i + 1]) * 16 + ref_hex(s[i + 2]));
            i += 2;

        } else {
            out[n++] = (s[i] == '+') ? ' ' : (char) s[i];
        }
    }

    return (long) n;
}


static void
ref_form(const unsigned char *s, size_t len, pairs_t *out)
{
    long    n, v;
    char   *name, *value;
    size_t  start, end, eq;

    name = dup("", len);
    value = dup("", len);

    for (start = 0; start < len; start = end + 1) {
        for (end = start; end < len && s[end] != '&'; end++) {
            /* void */
        }

        if (end == start) {
            continue;
        }

        for (eq = start; eq < end && s[eq] != '='; eq++) {
            /* void */
        }

        n = ref_unescape(s + start, eq - start, name);
        v = (eq < end) ? ref_unescape(s + eq + 1, end - eq - 1, value) : 0;

        if (n < 0 || v < 0) {
            pairs_add(out, -1, start, end, NULL, 0, NULL, 0);

        } else {
            pairs_add(out, 1, start, end, name, (size_t) n, value,
                      (size_t) v);
        }
    }

    free(name);
    free(value);
}


/*
 * body.c's walk.  With ref, each call has buffers of exactly the encoded
 * pair's length (the header's contract); without, of the body's length
 * + 1, as body.c allocates them, and the name is NUL-terminated as there.
 */

static void
walk(const char *body, size_t len, pairs_t *out, const pairs_t *ref)
{
    int          rc;
    char        *name, *value;
    size_t       nlen, vlen, calls, size, start;
    const char  *p, *end, *before;

    p = body;
    end = body + len;
    calls = 0;
    name = NULL;
    value = NULL;

    for ( ;; ) {
        check(++calls <= len + 1);

        if (ref == NULL) {
            size = len + 1;

        } else if (out->n < ref->n) {
            size = ref->pair[out->n].end - ref->pair[out->n].start;

        } else {
            /* more pairs than the decoder found: pairs_same() will say */
            size = len + 1;
        }

        if (name == NULL || ref != NULL) {
            free(name);
            free(value);
            name = malloc(size ? size : 1);
            value = malloc(size ? size : 1);
            check(name != NULL && value != NULL);
        }

        before = p;
        nlen = (size_t) -1;
        vlen = (size_t) -1;

        rc = bd_form_next(&p, end, name, &nlen, value, &vlen);

        check(rc == 1 || rc == 0 || rc == -1);
        check(p >= before && p <= end);

        if (rc == 0) {
            check(p == end);
            break;
        }

        /* a pair was passed over: the walk cannot stall */
        check(p > before);
        check(p == end || *p == '&');

        for (start = (size_t) (before - body);
             start < len && body[start] == '&';
             start++)
        {
            /* void */
        }

        check(start < (size_t) (p - body));

        if (rc == 1) {
            check(nlen + vlen <= (size_t) (p - body) - start);

            if (ref == NULL) {
                /* body.c ends the name with a NUL in the same buffer */
                check(nlen <= len);
                name[nlen] = '\0';
            }
        }

        pairs_add(out, rc, start, (size_t) (p - body), name, nlen, value,
                  vlen);
    }

    free(name);
    free(value);
}


/* UTF-8 by the table of well-formed byte sequences (Unicode 3.9, 3-7) */

static int
ref_utf8(const unsigned char *s, size_t len)
{
    size_t         i, n, k;
    unsigned char  c, lo, hi;

    i = 0;

    while (i < len) {
        c = s[i];
        lo = 0x80;
        hi = 0xbf;

        if (c <= 0x7f) {
            i++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c == 0xe0) {
            n = 2;
            lo = 0xa0;

        } else if (c == 0xed) {
            n = 2;
            hi = 0x9f;

        } else if (c >= 0xe1 && c <= 0xef) {
            n = 2;

        } else if (c == 0xf0) {
            n = 3;
            lo = 0x90;

        } else if (c == 0xf4) {
            n = 3;
            hi = 0x8f;

        } else if (c >= 0xf1 && c <= 0xf3) {
            n = 3;

        } else {
            return 0;
        }

        if (len - i <= n) {
            return 0;
        }

        if (s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }

        for (k = 2; k <= n; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) {
                return 0;
            }
        }

        i += n + 1;
    }

    return 1;
}


/* for well-formed UTF-8: a control or a bidirectional control code point */

static int
ref_control(const unsigned char *s, size_t len)
{
    size_t    i, n, k;
    uint32_t  cp;

    for (i = 0; i < len; i += n) {
        if (s[i] < 0x80) {
            cp = s[i];
            n = 1;

        } else if (s[i] < 0xe0) {
            cp = s[i] & 0x1f;
            n = 2;

        } else if (s[i] < 0xf0) {
            cp = s[i] & 0x0f;
            n = 3;

        } else {
            cp = s[i] & 0x07;
            n = 4;
        }

        for (k = 1; k < n; k++) {
            cp = cp << 6 | (s[i + k] & 0x3f);
        }

        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
            || (cp >= 0x202a && cp <= 0x202e)
            || (cp >= 0x2066 && cp <= 0x2069))
        {
            return 1;
        }
    }

    return 0;
}


static int
ref_hostname(const unsigned char *s, size_t len)
{
    int     digits;
    size_t  i, k, start, labels;

    if (len < 1 || len > 253) {
        return 0;
    }

    labels = 0;
    digits = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            continue;
        }

        /* the label s[start, i) */
        if (i - start < 1 || i - start > 63) {
            return 0;
        }

        if (s[start] == '-' || s[i - 1] == '-') {
            return 0;
        }

        digits = 1;

        for (k = start; k < i; k++) {
            if (s[k] >= '0' && s[k] <= '9') {
                continue;
            }

            digits = 0;

            if (!((s[k] >= 'a' && s[k] <= 'z') || s[k] == '-')) {
                return 0;
            }
        }

        labels++;
        start = i + 1;
    }

    /* an all-digit last label is an IPv4 address */
    return labels >= 2 && !digits;
}


static int
ref_username(const unsigned char *s, size_t len)
{
    static const char  ok[] = "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    size_t             i;

    if (len < BD_USERNAME_MIN || len > BD_USERNAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (memchr(ok, s[i], sizeof(ok) - 1) == NULL) {
            return 0;
        }
    }

    return 1;
}


/* the decoded length of unpadded base64url, or -1 */

static long
ref_base64url(const unsigned char *s, size_t len)
{
    const char  *p;
    size_t       i;
    unsigned     last;

    if (len % 4 == 1) {
        return -1;
    }

    last = 0;

    for (i = 0; i < len; i++) {
        p = memchr(b64url, s[i], sizeof(b64url) - 1);
        if (p == NULL) {
            return -1;
        }

        last = (unsigned) (p - b64url);
    }

    /* the bits past the last whole byte are zero */
    if ((len % 4 == 2 && (last & 0x0f)) || (len % 4 == 3 && (last & 0x03))) {
        return -1;
    }

    return (long) (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0));
}


/* a client's text through the rules that see it, in a copy of its size */

static void
texts(const char *text, size_t len)
{
    long            n;
    char           *s, *again;
    size_t          room;
    unsigned char  *bytes;

    s = dup(text, len);

    check(bd_utf8_valid(s, len) == ref_utf8((unsigned char *) s, len));

    /* the header wants UTF-8; on other bytes it must only not misread */
    if (ref_utf8((unsigned char *) s, len)) {
        check(bd_has_control(s, len)
              == ref_control((unsigned char *) s, len));

    } else {
        check(bd_has_control(s, len) == 0 || bd_has_control(s, len) == 1);
    }

    check(bd_hostname_valid(s, len) == ref_hostname((unsigned char *) s, len));
    check(bd_username_valid(s, len) == ref_username((unsigned char *) s, len));

    /* "room for len * 3 / 4 bytes", exactly */
    room = len * 3 / 4;
    bytes = malloc(room ? room : 1);
    check(bytes != NULL);

    n = bd_base64url_decode(s, len, bytes);
    check(n == ref_base64url((unsigned char *) s, len));

    if (n >= 0) {
        check((size_t) n <= room);

        /* one spelling per byte string: it encodes back to the text */
        again = malloc(bd_base64url_len((size_t) n) + 1);
        check(again != NULL);
        check(bd_base64url_len((size_t) n) == len);
        check(bd_base64url_encode(bytes, (size_t) n, again) == len);
        check(again[len] == '\0' && memcmp(again, s, len) == 0);
        free(again);
    }

    free(bytes);
    free(s);
}


/* the round trip: pairs cut from bytes, encoded here, decoded there */

static uint32_t
rnd(uint32_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 17;
    *st ^= *st << 5;

    return *st;
}


static char *
put_escape(char *d, unsigned char c, uint32_t *st)
{
    static const char  lower[] = "0123456789abcdef";
    static const char  upper[] = "0123456789ABCDEF";

    *d++ = '%';
    *d++ = (rnd(st) & 1 ? upper : lower)[c >> 4];
    *d++ = (rnd(st) & 1 ? upper : lower)[c & 0x0f];

    return d;
}


static char *
put_text(char *d, const unsigned char *s, size_t n, int value, uint32_t *st)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (c == '&' || c == '%' || c == '+' || (c == '=' && !value)) {
            d = put_escape(d, c, st);

        } else if (c == ' ') {
            if (rnd(st) & 1) {
                *d++ = '+';

            } else {
                d = put_escape(d, c, st);
            }

        } else if (rnd(st) & 3) {
            /* raw: controls, NULs, bytes past ASCII, '=' in a value */
            *d++ = (char) c;

        } else {
            d = put_escape(d, c, st);
        }
    }

    return d;
}


static char *
put_amps(char *d, unsigned max, uint32_t *st)
{
    unsigned  n;

    for (n = rnd(st) % (max + 1); n; n--) {
        *d++ = '&';
    }

    return d;
}


static void
roundtrip(const unsigned char *s, size_t len, uint32_t seed)
{
    char      *buf, *d, *text;
    size_t     i, rem, nlen, vlen, cap, tlen;
    pairs_t    want, got;
    uint32_t   st;

    st = seed * 0x9e3779b9u ^ (uint32_t) len;
    if (st == 0) {
        st = 1;
    }

    memset(&want, 0, sizeof(pairs_t));
    memset(&got, 0, sizeof(pairs_t));

    cap = 3 * len + 5 * (MAX_FIELDS + 1) + 8;
    buf = malloc(cap);
    check(buf != NULL);

    d = put_amps(buf, 2, &st);
    rem = len;

    for (i = 0; i < MAX_FIELDS && (rem > 0 || (rnd(&st) & 7) == 0); i++) {

        if (i > 0) {
            *d++ = '&';
            d = put_amps(d, 2, &st);
        }

        if (i == MAX_FIELDS - 1) {
            /* the last field takes what is left as its value */
            nlen = 0;
            vlen = rem;

        } else {
            nlen = rnd(&st) % ((rem < 24 ? rem : 24) + 1);
            vlen = rnd(&st) % ((rem - nlen < 40 ? rem - nlen : 40) + 1);
        }

        /* start and end offsets are not known here: only the bytes count */
        pairs_add(&want, 1, 0, 0, (const char *) s + (len - rem), nlen,
                  (const char *) s + (len - rem) + nlen, vlen);

        d = put_text(d, s + (len - rem), nlen, 0, &st);

        /* a name without '=' has an empty value; "=" alone is a pair */
        if (vlen > 0 || nlen == 0 || (rnd(&st) & 1)) {
            *d++ = '=';
        }

        d = put_text(d, s + (len - rem) + nlen, vlen, 1, &st);
        rem -= nlen + vlen;
    }

    d = put_amps(d, 2, &st);
    tlen = (size_t) (d - buf);
    check(tlen <= cap);

    text = dup(buf, tlen);
    walk(text, tlen, &got, NULL);

    for (i = 0; i < got.n; i++) {
        got.pair[i].start = 0;
        got.pair[i].end = 0;
    }

    pairs_same(&want, &got);

    pairs_free(&want);
    pairs_free(&got);
    free(text);
    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char     *body;
    size_t    i, len;
    pairs_t   ref, first, again;

    if (size == 0) {
        return 0;
    }

    len = size - 1;
    body = dup(data + 1, len);

    memset(&ref, 0, sizeof(pairs_t));
    memset(&first, 0, sizeof(pairs_t));
    memset(&again, 0, sizeof(pairs_t));

    ref_form((unsigned char *) body, len, &ref);

    walk(body, len, &first, NULL);
    pairs_same(&ref, &first);

    walk(body, len, &again, &ref);
    pairs_same(&first, &again);

    texts(body, len);

    for (i = 0; i < first.n; i++) {
        if (first.pair[i].rc == 1) {
            texts(first.pair[i].name, first.pair[i].nlen);
            texts(first.pair[i].value, first.pair[i].vlen);
        }
    }

    roundtrip((unsigned char *) body, len, data[0]);

    pairs_free(&ref);
    pairs_free(&first);
    pairs_free(&again);
    free(body);

    return 0;
}
