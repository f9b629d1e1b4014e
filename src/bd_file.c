/*
 * BulletDrop: rules for uploaded files.
 */

#include <stdint.h>
#include <string.h>

#include "bd_file.h"


typedef struct {
    const char  *ext;
    const char  *value;
} bd_file_map_t;


typedef struct {
    const char  *ext;
    const char  *sig;       /* '?' stands for any byte */
    size_t       len;
} bd_file_magic_t;


static const bd_file_map_t  bd_file_categories[] = {
    { "jpg", "images" },
    { "jpeg", "images" },
    { "png", "images" },
    { "gif", "images" },
    { "webp", "images" },
    { "pdf", "documents" },
    { "txt", "documents" },
    { "md", "documents" },
    { NULL, NULL }
};


/* an extension may have several; the first bytes must match one of them */
static const bd_file_magic_t  bd_file_magics[] = {
    { "jpg", "\xff\xd8\xff", 3 },
    { "jpeg", "\xff\xd8\xff", 3 },
    { "png", "\x89PNG\r\n\x1a\n", 8 },
    { "gif", "GIF87a", 6 },
    { "gif", "GIF89a", 6 },
    { "webp", "RIFF????WEBP", 12 },
    { "pdf", "%PDF-", 5 },
    { "mp4", "????ftyp", 8 },
    { "webm", "\x1a\x45\xdf\xa3", 4 },
    { NULL, NULL, 0 }
};


static const char *
bd_file_lookup(const bd_file_map_t *map, const char *ext, const char *dflt)
{
    if (ext == NULL) {
        return dflt;
    }

    for ( /* void */ ; map->ext; map++) {
        if (strcmp(map->ext, ext) == 0) {
            return map->value;
        }
    }

    return dflt;
}


/* the part after the last '/' or '\' */
static const char *
bd_file_base(const char *name, size_t len)
{
    const char  *p;

    for (p = name + len; p > name; p--) {
        if (p[-1] == '/' || p[-1] == '\\') {
            break;
        }
    }

    return p;
}


/* past the leading dots and spaces */
static const char *
bd_file_lead(const char *p, const char *end)
{
    while (p < end && (*p == '.' || *p == ' ')) {
        p++;
    }

    return p;
}


/*
 * The extension of [p, end), a name without its directories and leading
 * dots: where its last '.' stands, or NULL when there is no extension.
 */
static const char *
bd_file_dot(const char *p, const char *end)
{
    size_t       n;
    const char  *dot, *e;

    for (dot = end; dot > p; dot--) {
        if (dot[-1] == '.') {
            break;
        }
    }

    if (dot == p) {
        return NULL;
    }

    dot--;
    n = (size_t) (end - dot - 1);

    if (n == 0 || n > BD_FILE_EXT_MAX) {
        return NULL;
    }

    for (e = dot + 1; e < end; e++) {
        if (!((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z')
              || (*e >= '0' && *e <= '9')))
        {
            return NULL;
        }
    }

    return dot;
}


size_t
bd_file_ext(const char *name, size_t len, char *ext)
{
    size_t       n;
    const char  *p, *end, *dot;

    end = name + len;
    p = bd_file_lead(bd_file_base(name, len), end);

    dot = bd_file_dot(p, end);

    if (dot == NULL) {
        ext[0] = '\0';
        return 0;
    }

    for (n = 0, p = dot + 1; p < end; n++, p++) {
        ext[n] = (*p >= 'A' && *p <= 'Z') ? (char) (*p | 0x20) : *p;
    }

    ext[n] = '\0';

    return n;
}


const char *
bd_file_category(const char *ext)
{
    return bd_file_lookup(bd_file_categories, ext, "other");
}


int
bd_file_magic(const char *ext, const unsigned char *head, size_t n,
    int complete)
{
    int                     rc, known;
    size_t                  i;
    const bd_file_magic_t  *m;

    if (ext == NULL) {
        return 1;
    }

    known = 0;
    rc = 0;

    for (m = bd_file_magics; m->ext; m++) {
        if (strcmp(m->ext, ext) != 0) {
            continue;
        }

        known = 1;

        for (i = 0; i < m->len && i < n; i++) {
            if (m->sig[i] != '?' && (unsigned char) m->sig[i] != head[i]) {
                break;
            }
        }

        if (i == m->len) {
            return 1;
        }

        /* too few bytes, none of them wrong: more may tell */
        if (i == n && !complete) {
            rc = -1;
        }
    }

    return known ? rc : 1;
}


/*
 * The length of the well-formed UTF-8 character at p (no overlongs,
 * surrogates or more than U+10FFFF) and its code point; 0 when there is
 * none there.
 */
static size_t
bd_file_utf8(const unsigned char *p, size_t len, uint32_t *cp)
{
    size_t    n, k;
    uint32_t  c, min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        c = p[0] & 0x1f;
        min = 0x80;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        c = p[0] & 0x0f;
        min = 0x800;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        c = p[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            return 0;
        }

        c = c << 6 | (p[k] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;

    return n;
}


/*
 * Characters that must not reach a display: C0, DEL and C1 controls, the
 * line and paragraph separators, and the bidirectional controls that can
 * make "gnp.exe" read "exe.png".
 */
static int
bd_file_unsafe(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c
           || c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e)
           || (c >= 0x2066 && c <= 0x2069);
}


/*
 * Copies from *pos up to end to out, a character at a time, unsafe ones
 * and each byte of invalid UTF-8 as '_'; stops before a character that
 * would take more than max bytes, with *pos there.  Returns the length.
 */
static size_t
bd_file_clean(const char **pos, const char *end, char *out, size_t max)
{
    size_t       o, n;
    uint32_t     c;
    const char  *p;

    o = 0;

    for (p = *pos; p < end; p += n) {
        n = bd_file_utf8((const unsigned char *) p, (size_t) (end - p), &c);

        if (n == 0 || bd_file_unsafe(c)) {
            if (o + 1 > max) {
                break;
            }

            out[o++] = '_';
            n = n ? n : 1;
            continue;
        }

        if (o + n > max) {
            break;
        }

        memcpy(out + o, p, n);
        o += n;
    }

    *pos = p;

    return o;
}


size_t
bd_file_display_name(const char *name, size_t len, char *out)
{
    size_t       o, n;
    const char  *p, *q, *end, *dot;

    end = name + len;
    p = bd_file_lead(bd_file_base(name, len), end);

    q = p;
    o = bd_file_clean(&q, end, out, BD_FILE_NAME_MAX);

    /*
     * Cut short: the extension stays, the stem is cut instead.  Cleaning
     * keeps ASCII other than controls as it is, so the extension found in
     * the raw name is the cleaned name's too.
     */
    if (q < end) {
        dot = bd_file_dot(p, end);

        if (dot != NULL) {
            n = (size_t) (end - dot);
            q = p;
            o = bd_file_clean(&q, dot, out, BD_FILE_NAME_MAX - n);
            memcpy(out + o, dot, n);
            o += n;
        }
    }

    if (o == 0) {
        memcpy(out, "file", 4);
        o = 4;
    }

    out[o] = '\0';

    return o;
}
