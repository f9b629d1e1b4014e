/*
 * BulletDrop: a streaming multipart/form-data parser.
 */

#include <string.h>

#include "bd_multipart.h"
#include "bd_text.h"


enum {
    bd_mp_preamble = 0,
    bd_mp_after_boundary,
    bd_mp_close_dash,
    bd_mp_padding,
    bd_mp_boundary_lf,
    bd_mp_headers,
    bd_mp_body,
    bd_mp_done,
    bd_mp_error,
    bd_mp_stopped
};


/* one "; name=value" of a header value; value is inside the quotes */
typedef struct {
    const char  *name;
    size_t       name_len;
    const char  *value;
    size_t       value_len;
    int          quoted;
} bd_multipart_param_t;


#define BD_MP_NAME       0x01
#define BD_MP_FILENAME   0x02
#define BD_MP_EXT        0x04


static int
bd_multipart_tchar(unsigned char c)
{
    /* RFC 7230's token characters */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


static int
bd_multipart_bchar(unsigned char c)
{
    /* RFC 2046's bchars: a space too, though not last */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}


/* 1 when s (len bytes) is lit, a lower-case literal, in any case */
static int
bd_multipart_eq(const char *s, size_t len, const char *lit)
{
    size_t         i;
    unsigned char  c;

    if (len != strlen(lit)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) lit[i]) {
            return 0;
        }
    }

    return 1;
}


static const char *
bd_multipart_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p;
}


/*
 * The next "; name=value" of a header value: 1, 0 at the end of the
 * value (a trailing ';' is let pass), -1 when malformed.
 */
static int
bd_multipart_param(const char **pos, const char *end,
    bd_multipart_param_t *prm)
{
    const char  *p, *last;

    p = bd_multipart_ows(*pos, end);

    if (p == end) {
        return 0;
    }

    if (*p != ';') {
        return -1;
    }

    p = bd_multipart_ows(p + 1, end);

    if (p == end) {
        *pos = p;
        return 0;
    }

    prm->name = p;

    while (p < end && bd_multipart_tchar((unsigned char) *p)) {
        p++;
    }

    prm->name_len = (size_t) (p - prm->name);

    if (prm->name_len == 0) {
        return -1;
    }

    p = bd_multipart_ows(p, end);

    if (p == end || *p != '=') {
        return -1;
    }

    p = bd_multipart_ows(p + 1, end);

    if (p < end && *p == '"') {
        prm->value = ++p;

        while (p < end && *p != '"') {

            /* a quoted-pair: the escaped byte does not end the string */
            if (*p == '\\') {
                p++;

                if (p == end) {
                    return -1;
                }
            }

            p++;
        }

        if (p == end) {
            return -1;
        }

        prm->value_len = (size_t) (p - prm->value);
        prm->quoted = 1;
        *pos = p + 1;

        return 1;
    }

    /* unquoted: what comes before the next ';', trimmed */

    prm->value = p;

    while (p < end && *p != ';') {
        p++;
    }

    last = p;

    while (last > prm->value && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    prm->value_len = (size_t) (last - prm->value);
    prm->quoted = 0;
    *pos = p;

    return 1;
}


/*
 * Copies a parameter's value to dst, undoing a quoted string's backslash
 * escapes, and NUL-terminates it; returns its length, or -1 when it needs
 * more than size bytes.  With dst NULL, only measures.
 */
static long
bd_multipart_unquote(const bd_multipart_param_t *prm, char *dst,
    size_t size)
{
    size_t       n;
    const char  *p, *end;

    p = prm->value;
    end = p + prm->value_len;
    n = 0;

    while (p < end) {
        if (prm->quoted && *p == '\\') {
            p++;
        }

        if (n + 1 >= size) {
            return -1;
        }

        if (dst != NULL) {
            dst[n] = *p;
        }

        n++;
        p++;
    }

    if (dst != NULL) {
        dst[n] = '\0';
    }

    return (long) n;
}


/*
 * RFC 5987's ext-value, charset'language'percent-encoded, into UTF-8 in
 * dst, NUL-terminated; returns its length, or -1 when malformed, of
 * another charset or more than size bytes.
 */
static long
bd_multipart_ext_value(const char *p, size_t len, char *dst, size_t size)
{
    int            hi, lo, latin1;
    size_t         n;
    const char    *end, *q;
    unsigned char  c;

    end = p + len;

    q = memchr(p, '\'', len);
    if (q == NULL) {
        return -1;
    }

    if (bd_multipart_eq(p, (size_t) (q - p), "utf-8")) {
        latin1 = 0;

    } else if (bd_multipart_eq(p, (size_t) (q - p), "iso-8859-1")) {
        latin1 = 1;

    } else {
        return -1;
    }

    /* the language tag says nothing about the bytes */
    q = memchr(q + 1, '\'', (size_t) (end - q - 1));
    if (q == NULL) {
        return -1;
    }

    n = 0;

    for (p = q + 1; p < end; p++) {
        c = (unsigned char) *p;

        if (c == '%') {
            if (end - p < 3) {
                return -1;
            }

            hi = bd_hex_value((unsigned char) p[1]);
            lo = bd_hex_value((unsigned char) p[2]);

            if (hi < 0 || lo < 0) {
                return -1;
            }

            c = (unsigned char) (hi << 4 | lo);
            p += 2;
        }

        if (latin1 && c >= 0x80) {
            if (n + 2 >= size) {
                return -1;
            }

            dst[n++] = (char) (0xc0 | c >> 6);
            dst[n++] = (char) (0x80 | (c & 0x3f));
            continue;
        }

        if (n + 1 >= size) {
            return -1;
        }

        dst[n++] = (char) c;
    }

    dst[n] = '\0';

    return (long) n;
}


static int
bd_multipart_fail(bd_multipart_t *mp, const char *why)
{
    mp->state = bd_mp_error;
    mp->error = why;

    return BD_MULTIPART_ERROR;
}


static int
bd_multipart_rc(bd_multipart_t *mp)
{
    switch (mp->state) {

    case bd_mp_done:
        return BD_MULTIPART_DONE;

    case bd_mp_error:
        return BD_MULTIPART_ERROR;

    case bd_mp_stopped:
        return BD_MULTIPART_STOPPED;

    default:
        return BD_MULTIPART_OK;
    }
}


static int
bd_multipart_disposition(bd_multipart_t *mp, const char *p, const char *end)
{
    long                   n;
    unsigned               seen;
    const char            *type;
    bd_multipart_param_t   prm;

    type = p;

    while (p < end && bd_multipart_tchar((unsigned char) *p)) {
        p++;
    }

    if (!bd_multipart_eq(type, (size_t) (p - type), "form-data")) {
        return bd_multipart_fail(mp, "a part that is not form-data");
    }

    seen = 0;

    for ( ;; ) {
        n = bd_multipart_param(&p, end, &prm);

        if (n == 0) {
            break;
        }

        if (n < 0) {
            return bd_multipart_fail(mp, "a malformed Content-Disposition");
        }

        if (bd_multipart_eq(prm.name, prm.name_len, "name")) {
            if (seen & BD_MP_NAME) {
                return bd_multipart_fail(mp, "two names for a part");
            }

            seen |= BD_MP_NAME;

            n = bd_multipart_unquote(&prm, mp->part.name,
                                     BD_MULTIPART_NAME_MAX);
            if (n < 0) {
                return bd_multipart_fail(mp, "a field name too long");
            }

            mp->part.name_len = (size_t) n;

        } else if (bd_multipart_eq(prm.name, prm.name_len, "filename")) {
            if (seen & BD_MP_FILENAME) {
                return bd_multipart_fail(mp, "two filenames for a part");
            }

            seen |= BD_MP_FILENAME;

            /* filename* wins, wherever it stands; this is checked anyway */
            n = bd_multipart_unquote(&prm,
                                     (seen & BD_MP_EXT) ? NULL
                                                        : mp->part.filename,
                                     BD_MULTIPART_FILENAME_MAX);
            if (n < 0) {
                return bd_multipart_fail(mp, "a filename too long");
            }

            if (!(seen & BD_MP_EXT)) {
                mp->part.filename_len = (size_t) n;
            }

        } else if (bd_multipart_eq(prm.name, prm.name_len, "filename*")) {
            if (seen & BD_MP_EXT) {
                return bd_multipart_fail(mp, "two filename* for a part");
            }

            seen |= BD_MP_EXT;

            /* RFC 5987's ext-value is a token, never quoted */
            if (prm.quoted) {
                return bd_multipart_fail(mp, "a malformed or long filename*");
            }

            n = bd_multipart_ext_value(prm.value, prm.value_len,
                                       mp->part.filename,
                                       BD_MULTIPART_FILENAME_MAX);
            if (n < 0) {
                return bd_multipart_fail(mp, "a malformed or long filename*");
            }

            mp->part.filename_len = (size_t) n;
        }
    }

    if (!(seen & BD_MP_NAME)) {
        return bd_multipart_fail(mp, "a part without a name");
    }

    mp->part.has_filename = (seen & (BD_MP_FILENAME|BD_MP_EXT)) != 0;

    return BD_MULTIPART_OK;
}


/* the header block is complete, its empty line included: parses it */
static int
bd_multipart_headers(bd_multipart_t *mp)
{
    int          rc, disposition, type;
    char        *h, *p, *end, *line, *colon, *lf;
    const char  *v, *vend;

    h = mp->header;
    end = h + mp->header_len - 2;

    if (end > h && (h[0] == ' ' || h[0] == '\t')) {
        return bd_multipart_fail(mp, "a continuation line first");
    }

    /* RFC 7230 lets a recipient replace an obs-fold with spaces */
    for (p = h; p + 2 < end; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p[0] = ' ';
            p[1] = ' ';
        }
    }

    disposition = 0;
    type = 0;

    for (line = h; line < end; line = lf + 1) {
        lf = memchr(line, '\n', (size_t) (end - line));

        /* the block ends in CRLF, so each line has an LF */
        if (lf == line || lf[-1] != '\r'
            || memchr(line, '\r', (size_t) (lf - 1 - line)) != NULL)
        {
            return bd_multipart_fail(mp, "a bare CR or LF in headers");
        }

        colon = line;

        while (colon < lf && bd_multipart_tchar((unsigned char) *colon)) {
            colon++;
        }

        if (colon == line || *colon != ':') {
            return bd_multipart_fail(mp, "a malformed header line");
        }

        v = bd_multipart_ows(colon + 1, lf - 1);
        vend = lf - 1;

        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) {
            vend--;
        }

        if (bd_multipart_eq(line, (size_t) (colon - line),
                            "content-disposition"))
        {
            if (disposition) {
                return bd_multipart_fail(mp, "two Content-Dispositions");
            }

            disposition = 1;

            rc = bd_multipart_disposition(mp, v, vend);
            if (rc != BD_MULTIPART_OK) {
                return rc;
            }

        } else if (bd_multipart_eq(line, (size_t) (colon - line),
                                   "content-type"))
        {
            if (type) {
                return bd_multipart_fail(mp, "two Content-Types");
            }

            type = 1;

            if ((size_t) (vend - v) >= BD_MULTIPART_TYPE_MAX) {
                return bd_multipart_fail(mp, "a Content-Type too long");
            }

            memcpy(mp->part.content_type, v, (size_t) (vend - v));
            mp->part.content_type[vend - v] = '\0';
            mp->part.content_type_len = (size_t) (vend - v);
        }
    }

    if (!disposition) {
        return bd_multipart_fail(mp, "a part without Content-Disposition");
    }

    return BD_MULTIPART_OK;
}


/* gathers a part's header block, a line at a time */
static int
bd_multipart_header(bd_multipart_t *mp, const char **pos, const char *end)
{
    int          rc;
    char        *h;
    size_t       n;
    const char  *p, *lf;

    p = *pos;

    lf = memchr(p, '\n', (size_t) (end - p));
    n = (size_t) ((lf ? lf + 1 : end) - p);

    if (n > BD_MULTIPART_HEADER_MAX - mp->header_len) {
        return bd_multipart_fail(mp, "a part's headers too long");
    }

    memcpy(mp->header + mp->header_len, p, n);
    mp->header_len += n;
    *pos = p + n;

    if (lf == NULL) {
        return BD_MULTIPART_OK;
    }

    /* the block ends with an empty line */

    h = mp->header + mp->header_len;

    if (!(mp->header_len == 2 && h[-2] == '\r')
        && !(mp->header_len >= 4 && memcmp(h - 4, "\r\n\r\n", 4) == 0))
    {
        return BD_MULTIPART_OK;
    }

    rc = bd_multipart_headers(mp);
    if (rc != BD_MULTIPART_OK) {
        return rc;
    }

    if (mp->cb->part_begin != NULL
        && mp->cb->part_begin(mp->data, &mp->part) != 0)
    {
        mp->state = bd_mp_stopped;
        return BD_MULTIPART_STOPPED;
    }

    /* the headers' last CRLF may be the one of the delimiter */
    mp->state = bd_mp_body;
    mp->matched = 2;
    mp->skip = 2;

    return BD_MULTIPART_OK;
}


static int
bd_multipart_data(bd_multipart_t *mp, const char *p, size_t n)
{
    if (n == 0 || mp->cb->part_data == NULL) {
        return BD_MULTIPART_OK;
    }

    if (mp->cb->part_data(mp->data, p, n) != 0) {
        mp->state = bd_mp_stopped;
        return BD_MULTIPART_STOPPED;
    }

    return BD_MULTIPART_OK;
}


/*
 * Passes on the first n bytes of what a call has seen of a body: the held
 * delim[0..held), less the headers' CRLF (mp->skip), then the call's own
 * bytes from start.
 */
static int
bd_multipart_emit(bd_multipart_t *mp, size_t held, const char *start,
    size_t n)
{
    size_t  k, skip;

    k = (n < held) ? n : held;
    skip = (k < mp->skip) ? k : mp->skip;
    mp->skip -= skip;

    if (bd_multipart_data(mp, mp->delim + skip, k - skip)
        != BD_MULTIPART_OK)
    {
        return BD_MULTIPART_STOPPED;
    }

    return bd_multipart_data(mp, start, n - k);
}


/*
 * A part's body: looks for the delimiter, and passes on all but what may
 * be its start.  As the delimiter holds a CR at its start only (bchars
 * have none), a byte that breaks a match starts a new one when it is a
 * CR, none otherwise: no bytes held need a second look.
 */
static int
bd_multipart_body(bd_multipart_t *mp, const char **pos, const char *end)
{
    int          rc;
    size_t       m, held;
    const char  *p, *start;

    start = *pos;
    p = start;
    held = mp->matched;
    m = held;

    while (p < end) {

        if (m == 0) {
            p = memchr(p, '\r', (size_t) (end - p));
            if (p == NULL) {
                p = end;
                break;
            }
        }

        if (*p == mp->delim[m]) {
            p++;

            if (++m < mp->delim_len) {
                continue;
            }

            *pos = p;
            mp->matched = 0;

            rc = bd_multipart_emit(mp, held, start,
                                   held + (size_t) (p - start) - m);
            if (rc != BD_MULTIPART_OK) {
                return rc;
            }

            if (mp->cb->part_end != NULL && mp->cb->part_end(mp->data) != 0) {
                mp->state = bd_mp_stopped;
                return BD_MULTIPART_STOPPED;
            }

            mp->state = bd_mp_after_boundary;

            return BD_MULTIPART_OK;
        }

        m = (*p == '\r');
        p++;
    }

    *pos = end;
    mp->matched = m;

    return bd_multipart_emit(mp, held, start,
                             held + (size_t) (end - start) - m);
}


/* before the first boundary: the same search, passing nothing on */
static const char *
bd_multipart_preamble(bd_multipart_t *mp, const char *p, const char *end)
{
    while (p < end) {

        if (mp->matched == 0) {
            p = memchr(p, '\r', (size_t) (end - p));
            if (p == NULL) {
                return end;
            }
        }

        if (*p == mp->delim[mp->matched]) {
            p++;

            if (++mp->matched == mp->delim_len) {
                mp->matched = 0;
                mp->state = bd_mp_after_boundary;
                return p;
            }

            continue;
        }

        mp->matched = (*p == '\r');
        p++;
    }

    return p;
}


static int
bd_multipart_boundary_valid(const char *b, size_t len)
{
    size_t  i;

    if (len == 0 || len > BD_MULTIPART_BOUNDARY_MAX || b[len - 1] == ' ') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!bd_multipart_bchar((unsigned char) b[i])) {
            return 0;
        }
    }

    return 1;
}


int
bd_multipart_boundary(const char *content_type, size_t len,
    char *boundary, size_t *blen)
{
    long                   n;
    int                    found;
    const char            *p, *end, *type;
    bd_multipart_param_t   prm;

    end = content_type + len;
    p = bd_multipart_ows(content_type, end);
    type = p;

    while (p < end && (bd_multipart_tchar((unsigned char) *p) || *p == '/')) {
        p++;
    }

    if (!bd_multipart_eq(type, (size_t) (p - type), "multipart/form-data")) {
        return -1;
    }

    found = 0;

    for ( ;; ) {
        n = bd_multipart_param(&p, end, &prm);

        if (n == 0) {
            break;
        }

        if (n < 0) {
            return -1;
        }

        if (!bd_multipart_eq(prm.name, prm.name_len, "boundary")) {
            continue;
        }

        if (found) {
            return -1;
        }

        found = 1;

        n = bd_multipart_unquote(&prm, boundary,
                                 BD_MULTIPART_BOUNDARY_MAX + 1);

        /* a space needs the quotes */
        if (n < 0 || !bd_multipart_boundary_valid(boundary, (size_t) n)
            || (!prm.quoted && memchr(boundary, ' ', (size_t) n) != NULL))
        {
            return -1;
        }

        *blen = (size_t) n;
    }

    return found ? 0 : -1;
}


void
bd_multipart_init(bd_multipart_t *mp, const char *boundary,
    size_t blen, const bd_multipart_callbacks_t *cb, void *data)
{
    mp->cb = cb;
    mp->data = data;
    mp->delim_len = 0;
    mp->matched = 0;
    mp->skip = 0;
    mp->header_len = 0;
    mp->error = NULL;

    if (!bd_multipart_boundary_valid(boundary, blen)) {
        (void) bd_multipart_fail(mp, "bad boundary");
        return;
    }

    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary, blen);
    mp->delim_len = 4 + blen;

    /* as if a CRLF came first: the body may open with the boundary */
    mp->state = bd_mp_preamble;
    mp->matched = 2;
}


int
bd_multipart_feed(bd_multipart_t *mp, const char *p, size_t n)
{
    int          rc;
    const char  *end;

    if (n == 0) {
        return bd_multipart_rc(mp);
    }

    end = p + n;

    while (p < end) {

        switch (mp->state) {

        case bd_mp_preamble:
            p = bd_multipart_preamble(mp, p, end);
            break;

        case bd_mp_after_boundary:
            if (*p == '-') {
                mp->state = bd_mp_close_dash;

            } else if (*p == ' ' || *p == '\t') {
                mp->state = bd_mp_padding;

            } else if (*p == '\r') {
                mp->state = bd_mp_boundary_lf;

            } else {
                return bd_multipart_fail(mp, "junk after a boundary");
            }

            p++;
            break;

        case bd_mp_close_dash:
            if (*p != '-') {
                return bd_multipart_fail(mp, "junk after a boundary");
            }

            /* the epilogue is ignored */
            mp->state = bd_mp_done;
            return BD_MULTIPART_DONE;

        case bd_mp_padding:
            if (*p == '\r') {
                mp->state = bd_mp_boundary_lf;

            } else if (*p != ' ' && *p != '\t') {
                return bd_multipart_fail(mp, "junk after a boundary");
            }

            p++;
            break;

        case bd_mp_boundary_lf:
            if (*p != '\n') {
                return bd_multipart_fail(mp, "junk after a boundary");
            }

            p++;
            memset(&mp->part, 0, sizeof(bd_multipart_part_t));
            mp->header_len = 0;
            mp->state = bd_mp_headers;
            break;

        case bd_mp_headers:
            rc = bd_multipart_header(mp, &p, end);
            if (rc != BD_MULTIPART_OK) {
                return rc;
            }

            break;

        case bd_mp_body:
            rc = bd_multipart_body(mp, &p, end);
            if (rc != BD_MULTIPART_OK) {
                return rc;
            }

            break;

        default:
            return bd_multipart_rc(mp);
        }
    }

    return bd_multipart_rc(mp);
}


int
bd_multipart_finish(bd_multipart_t *mp)
{
    switch (mp->state) {

    case bd_mp_done:
    case bd_mp_error:
    case bd_mp_stopped:
        return bd_multipart_rc(mp);

    default:
        return bd_multipart_fail(mp, "no closing boundary");
    }
}
