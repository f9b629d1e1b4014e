/*
 * libFuzzer target for src/bd_multipart.c.
 *
 * Input: two control bytes, then a body whose boundary is "AaB03x".  The
 * first control byte chooses how the body is cut into pieces, the second
 * whether a callback stops the parser (a part_begin or part_end, or a
 * part_data), and which.  The body is fed whole without a stop, then in
 * those pieces, each in a buffer of its own size.  Without a stop both
 * walks must give the same events, byte for byte, the same answer and
 * the same error; with one, the cut walk's events must be a prefix of the
 * whole one's, ending where it stopped.  Neither may pass on more data
 * than the body holds, hold back a delimiter's length, or call back after
 * it has been stopped.  The body is also read as a Content-Type value
 * for bd_multipart_boundary().
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_multipart.h"


#define BOUNDARY  "AaB03x"

#define check(cond)  do { if (!(cond)) abort(); } while (0)


typedef struct {
    unsigned char  *log;
    size_t          len;
    size_t          cap;
    size_t          data_total;

    /* the stop_at'th call of stop_kind ('m': begin or end, 'd') stops */
    int             stop_kind;
    int             stop_at;
    int             marks;
    int             datas;
    int             stopped;
    int             last;
} rec_t;


static void
rec_add(rec_t *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        r->log = realloc(r->log, r->cap);
        check(r->log != NULL);
    }

    memcpy(r->log + r->len, p, n);
    r->len += n;
}


static void
rec_field(rec_t *r, const char *p, size_t n, size_t max)
{
    check(n < max && p[n] == '\0');

    rec_add(r, &n, sizeof(size_t));
    rec_add(r, p, n);
}


static int
rec_stop(rec_t *r, int kind, int *count)
{
    check(!r->stopped);

    r->last = kind;

    if (kind == r->stop_kind && ++*count == r->stop_at) {
        r->stopped = 1;
        return 1;
    }

    return 0;
}


static int
rec_begin(void *data, const bd_multipart_part_t *part)
{
    rec_t  *r = data;

    rec_add(r, "B", 1);
    rec_field(r, part->name, part->name_len, BD_MULTIPART_NAME_MAX);
    rec_field(r, part->filename, part->filename_len,
              BD_MULTIPART_FILENAME_MAX);
    rec_field(r, part->content_type, part->content_type_len,
              BD_MULTIPART_TYPE_MAX);
    rec_add(r, part->has_filename ? "1" : "0", 1);

    return rec_stop(r, 'm', &r->marks);
}


/* "d" and the byte, for each byte: the same however the body was cut */
static int
rec_data(void *data, const char *p, size_t n)
{
    size_t  i;
    rec_t  *r = data;

    check(n > 0);

    for (i = 0; i < n; i++) {
        rec_add(r, "d", 1);
        rec_add(r, p + i, 1);
    }

    r->data_total += n;

    return rec_stop(r, 'd', &r->datas);
}


static int
rec_end(void *data)
{
    rec_t  *r = data;

    rec_add(r, "E", 1);

    return rec_stop(r, 'm', &r->marks);
}


static const bd_multipart_callbacks_t  callbacks = {
    rec_begin, rec_data, rec_end
};


/* the size of the next piece, from the chunking byte and a state */
static size_t
piece(unsigned mode, uint32_t *state)
{
    switch (mode & 3) {

    case 0:
        return 1;

    case 1:
        return (mode >> 2) + 1;

    default:
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;

        return 1 + *state % ((mode & 3) == 2 ? 8 : 200);
    }
}


static int
walk(const char *body, size_t len, unsigned mode, int whole, rec_t *r,
    const char **error)
{
    int              rc, last;
    char            *buf;
    size_t           off, n;
    uint32_t         state;
    bd_multipart_t  *mp;

    mp = malloc(sizeof(bd_multipart_t));
    check(mp != NULL);
    memset(mp, 0xa5, sizeof(bd_multipart_t));

    bd_multipart_init(mp, BOUNDARY, sizeof(BOUNDARY) - 1, &callbacks, r);

    state = 0x9e3779b9u ^ mode;
    last = BD_MULTIPART_OK;

    for (off = 0; off < len; off += n) {
        n = whole ? len - off : piece(mode, &state);

        if (n > len - off) {
            n = len - off;
        }

        buf = malloc(n);
        check(buf != NULL);
        memcpy(buf, body + off, n);

        rc = bd_multipart_feed(mp, buf, n);

        free(buf);

        check(rc == BD_MULTIPART_OK || rc == BD_MULTIPART_DONE
              || rc == BD_MULTIPART_ERROR || rc == BD_MULTIPART_STOPPED);
        check(last == BD_MULTIPART_OK || rc == last);
        check(rc != BD_MULTIPART_OK || mp->matched < mp->delim_len);
        check(rc != BD_MULTIPART_STOPPED || r->stopped);

        last = rc;
    }

    rc = bd_multipart_finish(mp);

    check(last == BD_MULTIPART_OK || rc == last);
    check(rc != BD_MULTIPART_OK);
    check((rc == BD_MULTIPART_ERROR) == (mp->error != NULL));
    check(bd_multipart_feed(mp, "x", 1) == rc);
    check(bd_multipart_finish(mp) == rc);

    *error = mp->error;
    free(mp);

    return rc;
}


static void
boundary(const char *ct, size_t len)
{
    char            b[BD_MULTIPART_BOUNDARY_MAX + 1];
    size_t          blen, i;
    bd_multipart_t  mp;

    if (bd_multipart_boundary(ct, len, b, &blen) != 0) {
        return;
    }

    check(blen >= 1 && blen <= BD_MULTIPART_BOUNDARY_MAX);
    check(b[blen] == '\0' && b[blen - 1] != ' ');

    for (i = 0; i < blen; i++) {
        check(b[i] > ' ' || b[i] == ' ');
        check(b[i] != '\r' && b[i] != '\n' && b[i] != '"');
    }

    bd_multipart_init(&mp, b, blen, &callbacks, NULL);
    check(mp.error == NULL);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc1, rc2;
    rec_t         r1, r2;
    unsigned      mode;
    const char   *body, *e1, *e2;

    if (size < 2) {
        return 0;
    }

    mode = data[0];
    body = (const char *) data + 2;
    size -= 2;

    boundary(body, size);

    memset(&r1, 0, sizeof(rec_t));
    memset(&r2, 0, sizeof(rec_t));

    r2.stop_kind = (data[1] & 0x30) == 0x10 ? 'm'
                   : (data[1] & 0x30) == 0x20 ? 'd' : 0;
    r2.stop_at = (data[1] & 0x0f) + 1;

    rc1 = walk(body, size, mode, 1, &r1, &e1);
    rc2 = walk(body, size, mode, 0, &r2, &e2);

    check(r1.data_total <= size);
    check(r2.data_total <= size);
    check(rc1 != BD_MULTIPART_STOPPED);
    check((rc2 == BD_MULTIPART_STOPPED) == (r2.stopped != 0));

    if (rc2 != BD_MULTIPART_STOPPED) {
        check(rc1 == rc2);
        check(e1 == e2);
        check(r1.len == r2.len);
        check(r1.len == 0 || memcmp(r1.log, r2.log, r1.len) == 0);

    } else {
        check(r2.len <= r1.len);
        check(r2.len == 0 || memcmp(r1.log, r2.log, r2.len) == 0);
        check(r2.last == r2.stop_kind);
        check((r2.stop_kind == 'm' ? r2.marks : r2.datas) == r2.stop_at);
    }

    free(r1.log);
    free(r2.log);

    return 0;
}
