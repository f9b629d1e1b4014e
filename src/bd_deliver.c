/*
 * BulletDrop: rules for serving stored files and for the limits set on
 * them.
 */

#include <stdint.h>
#include <string.h>

#include "bd_deliver.h"
#include "bd_text.h"


#define BD_DELIVER_EXT_MAX  16            /* as BD_FILE_EXT_MAX */
#define BD_DELIVER_TEXT     "text/plain; charset=utf-8"
#define BD_DELIVER_OCTETS   "application/octet-stream"

/* 10000-01-01T00:00:00Z: a clock past it is wrong, and sums stay small */
#define BD_EXPIRY_NOW_MAX   253402300800000LL


typedef struct {
    const char  *ext;
    const char  *type;
} bd_deliver_media_t;


static const char  bd_deliver_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static const char  *bd_deliver_categories[] = {
    "images", "documents", "other", NULL
};


/* shown inline as what they are: nothing here can run script */
static const bd_deliver_media_t  bd_deliver_media[] = {
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "png", "image/png" },
    { "gif", "image/gif" },
    { "webp", "image/webp" },
    { "avif", "image/avif" },
    { "bmp", "image/bmp" },
    { "ico", "image/x-icon" },

    { "mp4", "video/mp4" },
    { "webm", "video/webm" },
    { "mov", "video/quicktime" },
    { "m4v", "video/x-m4v" },
    { "ogv", "video/ogg" },
    { "mkv", "video/x-matroska" },

    { "pdf", "application/pdf" },
    { NULL, NULL }
};


/*
 * Shown inline as plain text: text and source code, and what a browser
 * would run or render with its own type (markup, svg, scripts, styles),
 * which this way shows as its source.
 */
static const char  *bd_deliver_text[] = {
    "txt", "md", "markdown", "log", "csv", "tsv", "json", "yaml", "yml",
    "toml", "ini", "conf", "cfg", "c", "h", "cc", "cpp", "hpp", "py", "rb",
    "go", "rs", "java", "kt", "js", "mjs", "ts", "tsx", "jsx", "css",
    "scss", "sql", "sh", "bash", "zsh", "diff", "patch", "srt", "vtt",

    "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl", "xslt",
    "rss", "atom",
    NULL
};


/* cumulative days before each month of a common year */
static const int  bd_expiry_month_days[] = {
    0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365
};


/* s of len bytes equals the NUL-terminated word */
static int
bd_deliver_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}


int
bd_deliver_path(const char *uri, size_t len, bd_deliver_path_t *p)
{
    size_t        i, clen, n;
    const char   *q, *end, *cat, *id, *ext;

    end = uri + len;

    if (len < sizeof("/static/") - 1
        || memcmp(uri, "/static/", sizeof("/static/") - 1) != 0)
    {
        return -1;
    }

    q = uri + sizeof("/static/") - 1;

    for (i = 0; bd_deliver_categories[i]; i++) {
        clen = strlen(bd_deliver_categories[i]);

        if ((size_t) (end - q) > clen
            && memcmp(q, bd_deliver_categories[i], clen) == 0
            && q[clen] == '/')
        {
            break;
        }
    }

    if (bd_deliver_categories[i] == NULL) {
        return -1;
    }

    cat = q;
    q += clen + 1;

    /* the id, the dot and at least one byte of extension */
    if ((size_t) (end - q) < BD_DELIVER_ID_LEN + 2) {
        return -1;
    }

    id = q;

    for (n = 0; n < BD_DELIVER_ID_LEN; n++) {
        if (bd_base64url_value((unsigned char) id[n]) < 0) {
            return -1;
        }
    }

    q += BD_DELIVER_ID_LEN;

    if (*q++ != '.') {
        return -1;
    }

    ext = q;
    n = (size_t) (end - ext);

    if (n > BD_DELIVER_EXT_MAX) {
        return -1;
    }

    for ( /* void */ ; q < end; q++) {
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))) {
            return -1;
        }
    }

    p->category = cat;
    p->category_len = clen;
    p->id = id;
    p->ext = ext;
    p->ext_len = n;

    return 0;
}


int
bd_deliver_id_limited(const char *id)
{
    int  i;

    i = bd_base64url_value((unsigned char) id[BD_DELIVER_ID_LEN - 1]);

    return i >= 0 && (i & 1);
}


void
bd_deliver_id_mark(char *id, int limited)
{
    int  i;

    i = bd_base64url_value((unsigned char) id[BD_DELIVER_ID_LEN - 1]);

    if (i < 0) {
        return;
    }

    i = (i & ~1) | (limited ? 1 : 0);

    id[BD_DELIVER_ID_LEN - 1] = bd_deliver_alphabet[i];
}


void
bd_deliver_type(const char *ext, size_t len, bd_deliver_type_t *t)
{
    size_t                     i;
    const bd_deliver_media_t  *m;

    t->inline_ok = 1;
    t->text = 0;

    if (len != 0) {
        for (m = bd_deliver_media; m->ext; m++) {
            if (bd_deliver_is(ext, len, m->ext)) {
                t->content_type = m->type;
                return;
            }
        }

        for (i = 0; bd_deliver_text[i]; i++) {
            if (bd_deliver_is(ext, len, bd_deliver_text[i])) {
                t->content_type = BD_DELIVER_TEXT;
                t->text = 1;
                return;
            }
        }
    }

    t->content_type = BD_DELIVER_OCTETS;
    t->inline_ok = 0;
}


/*
 * The pieces of the Content-Disposition value.  Each writes to out at *o
 * unless out is NULL, and advances *o either way, so that one walk
 * measures and another writes.
 */

static void
bd_deliver_put(char *out, size_t *o, const char *s)
{
    size_t  n;

    n = strlen(s);

    if (out) {
        memcpy(out + *o, s, n);
    }

    *o += n;
}


static void
bd_deliver_fallback(char *out, size_t *o, const unsigned char *p,
    size_t len)
{
    size_t         i, skip;
    unsigned char  c;

    skip = 0;

    for (i = 0; i < len; i++) {
        c = p[i];

        /* the rest of a UTF-8 character already shown as its '_' */
        if (skip && c >= 0x80 && c <= 0xbf) {
            skip--;
            continue;
        }

        skip = (c >= 0xc0 && c <= 0xdf) ? 1
               : (c >= 0xe0 && c <= 0xef) ? 2
               : (c >= 0xf0 && c <= 0xf7) ? 3 : 0;

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            c = '_';
        }

        if (out) {
            out[*o] = (char) c;
        }

        (*o)++;
    }
}


/* RFC 8187 attr-char */
static int
bd_deliver_attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL);
}


static void
bd_deliver_pct(char *out, size_t *o, const unsigned char *p, size_t len)
{
    size_t             i;
    static const char  hex[] = "0123456789ABCDEF";

    for (i = 0; i < len; i++) {
        if (bd_deliver_attr_char(p[i])) {
            if (out) {
                out[*o] = (char) p[i];
            }

            (*o)++;
            continue;
        }

        if (out) {
            out[*o] = '%';
            out[*o + 1] = hex[p[i] >> 4];
            out[*o + 2] = hex[p[i] & 0x0f];
        }

        *o += 3;
    }
}


static size_t
bd_deliver_disposition_write(int inline_ok, const unsigned char *name,
    size_t len, char *out)
{
    size_t  o, i;
    int     plain;

    o = 0;

    bd_deliver_put(out, &o, inline_ok ? "inline" : "attachment");

    if (len == 0) {
        return o;
    }

    bd_deliver_put(out, &o, "; filename=\"");
    bd_deliver_fallback(out, &o, name, len);
    bd_deliver_put(out, &o, "\"");

    /*
     * The fallback says it all only for printable ASCII without '"' or
     * '\'; a '%' in it some clients would take for an escape.
     */

    plain = 1;

    for (i = 0; i < len; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '"'
            || name[i] == '\\' || name[i] == '%')
        {
            plain = 0;
            break;
        }
    }

    if (!plain) {
        bd_deliver_put(out, &o, "; filename*=UTF-8''");
        bd_deliver_pct(out, &o, name, len);
    }

    return o;
}


size_t
bd_deliver_disposition(int inline_ok, const char *name, size_t len,
    char *out, size_t size)
{
    size_t  n;

    n = bd_deliver_disposition_write(inline_ok, (const unsigned char *) name,
                                     len, NULL);

    if (n < size) {
        bd_deliver_disposition_write(inline_ok, (const unsigned char *) name,
                                     len, out);
        out[n] = '\0';

    } else if (size != 0) {
        out[0] = '\0';
    }

    return n;
}


/* without the spaces and tabs around it */
static void
bd_deliver_trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }

    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t')) {
        (*len)--;
    }
}


/* the value of n decimal digits, or -1 */
static int
bd_expiry_digits(const char *s, size_t n)
{
    int     v;
    size_t  i;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    return v;
}


static int
bd_expiry_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


/* the leap years from 1 to y */
static int64_t
bd_expiry_leaps(int y)
{
    return y / 4 - y / 100 + y / 400;
}


/* days from 1970-01-01 to y-m-d, the Gregorian calendar throughout */
static int64_t
bd_expiry_days(int y, int m, int d)
{
    return (int64_t) (y - 1970) * 365
           + bd_expiry_leaps(y - 1) - bd_expiry_leaps(1969)
           + bd_expiry_month_days[m - 1] + (m > 2 && bd_expiry_leap(y))
           + d - 1;
}


/*
 * RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) to
 * milliseconds since the epoch; -1 when it is not such.
 */
static int
bd_expiry_date(const char *s, size_t len, int64_t *at)
{
    int          year, mon, day, hour, min, sec, ms, oh, om, mdays;
    size_t       n;
    int64_t      off;
    const char  *p, *f, *end;

    /* "YYYY-MM-DDTHH:MM:SSZ" is the shortest */
    if (len < 20) {
        return -1;
    }

    year = bd_expiry_digits(s, 4);
    mon = bd_expiry_digits(s + 5, 2);
    day = bd_expiry_digits(s + 8, 2);
    hour = bd_expiry_digits(s + 11, 2);
    min = bd_expiry_digits(s + 14, 2);
    sec = bd_expiry_digits(s + 17, 2);

    if (year < 0 || mon < 0 || day < 0 || hour < 0 || min < 0 || sec < 0
        || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':'
        || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    {
        return -1;
    }

    p = s + 19;
    end = s + len;
    ms = 0;

    if (*p == '.') {
        f = ++p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        n = (size_t) (p - f);

        if (n == 0 || n > 9) {
            return -1;
        }

        /* milliseconds: the first three digits, padded */
        ms = bd_expiry_digits(f, n < 3 ? n : 3);
        ms *= (n == 1) ? 100 : (n == 2) ? 10 : 1;
    }

    if (p == end) {
        return -1;
    }

    if (*p == 'Z' || *p == 'z') {
        off = 0;
        p++;

    } else if (*p == '+' || *p == '-') {
        if (end - p < 6 || p[3] != ':') {
            return -1;
        }

        oh = bd_expiry_digits(p + 1, 2);
        om = bd_expiry_digits(p + 4, 2);

        if (oh < 0 || oh > 23 || om < 0 || om > 59) {
            return -1;
        }

        off = ((int64_t) oh * 60 + om) * 60000;
        off = (*p == '-') ? -off : off;
        p += 6;

    } else {
        return -1;
    }

    if (p != end) {
        return -1;
    }

    if (year < 1970 || mon < 1 || mon > 12) {
        return -1;
    }

    mdays = bd_expiry_month_days[mon] - bd_expiry_month_days[mon - 1]
            + (mon == 2 && bd_expiry_leap(year));

    if (day < 1 || day > mdays || hour > 23 || min > 59 || sec > 60) {
        return -1;
    }

    /* a leap second: the last moment of the minute before */
    if (sec == 60) {
        sec = 59;
        ms = 999;
    }

    /* local time minus its offset is UTC */
    *at = (((bd_expiry_days(year, mon, day) * 24 + hour) * 60 + min) * 60
           + sec) * 1000 + ms - off;

    return 0;
}


/*
 * "<digits><unit>" to milliseconds: BD_EXPIRY_OK, BD_EXPIRY_INVALID or
 * BD_EXPIRY_TOO_FAR, checked before multiplying so nothing overflows
 */
static int
bd_expiry_duration(const char *s, size_t len, int64_t *ms)
{
    size_t   i;
    int64_t  n, unit;

    switch (s[len - 1] | 0x20) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    case 'w':
        unit = 7 * 86400 * 1000;
        break;
    default:
        return BD_EXPIRY_INVALID;
    }

    if (len - 1 > 12) {
        return BD_EXPIRY_INVALID;
    }

    n = 0;

    for (i = 0; i < len - 1; i++) {
        n = n * 10 + (s[i] - '0');
    }

    if (n == 0) {
        return BD_EXPIRY_INVALID;
    }

    if (n > BD_EXPIRY_MAX_MS / unit) {
        return BD_EXPIRY_TOO_FAR;
    }

    *ms = n * unit;

    return BD_EXPIRY_OK;
}


int
bd_expiry_parse(const char *s, size_t len, int64_t now_ms, int64_t *at_ms)
{
    int      rc;
    size_t   i;
    int64_t  at, ms;

    bd_deliver_trim(&s, &len);

    if (len == 0 || now_ms < 0 || now_ms >= BD_EXPIRY_NOW_MAX) {
        return BD_EXPIRY_INVALID;
    }

    if (len == 5) {
        for (i = 0; i < 5; i++) {
            if ((s[i] | 0x20) != "never"[i]) {
                break;
            }
        }

        if (i == 5) {
            return BD_EXPIRY_NEVER;
        }
    }

    /* digits up to the last byte: a duration; else it must be a date */

    for (i = 0; i < len - 1; i++) {
        if (s[i] < '0' || s[i] > '9') {
            break;
        }
    }

    if (len >= 2 && i == len - 1) {
        rc = bd_expiry_duration(s, len, &ms);

        if (rc != BD_EXPIRY_OK) {
            return rc;
        }

        at = now_ms + ms;

    } else if (bd_expiry_date(s, len, &at) != 0) {
        return BD_EXPIRY_INVALID;
    }

    if (at <= now_ms) {
        return BD_EXPIRY_PAST;
    }

    if (at - now_ms > BD_EXPIRY_MAX_MS) {
        return BD_EXPIRY_TOO_FAR;
    }

    *at_ms = at;

    return BD_EXPIRY_OK;
}


int
bd_max_views_parse(const char *s, size_t len, int32_t *views)
{
    size_t   i;
    int64_t  n;

    bd_deliver_trim(&s, &len);

    /* 2147483647 has ten digits */
    if (len == 0 || len > 10 || s[0] == '0') {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (s[i] - '0');
    }

    if (n > INT32_MAX) {
        return -1;
    }

    *views = (int32_t) n;

    return 0;
}


size_t
bd_html_escape(const char *s, size_t len, char *out)
{
    size_t       i, o, n;
    const char  *e;

    o = 0;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            out[o++] = s[i];
            continue;
        }

        n = strlen(e);
        memcpy(out + o, e, n);
        o += n;
    }

    return o;
}
