/*
 * Unit tests for src/bd_multipart.c: the streaming multipart/form-data
 * parser.  Every body is fed whole, a byte at a time and in 200 random
 * chunkings, and must give the same parts, byte for byte, each time.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_multipart.h"


#define S(s)  (s), (sizeof(s) - 1)

#define WHOLE    0
#define BYTES    1
#define RANDOM   2

#define SPLITS   200

/* a run that broke a rule of the interface on its way */
#define BROKEN   -100


/*
 * A body and what it must give: the events as text, "{name;f=filename;
 * t=type}" for a part's start (";f=" only when a filename was given, ";t="
 * only for a Content-Type), the data as it is, "{/}" for a part's end;
 * then finish()'s answer and mp->error.
 */
typedef struct {
    const char  *title;
    const char  *boundary;
    const char  *body;
    size_t       len;
    int          rc;
    const char  *error;
    const char  *log;
    size_t       log_len;
} test_case_t;


typedef struct {
    char        *log;
    size_t       len;
    size_t       cap;
    int          events;

    /* the stop_nth callback of kind stop_kind ('b', 'd', 'e') says stop */
    int          stop_kind;
    int          stop_nth;
    int          seen;
    int          stopped;
    int          after;
} rec_t;


static unsigned  rnd_state;


static unsigned
rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;

    return rnd_state;
}


static void
rec_add(rec_t *r, const char *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->log = realloc(r->log, r->cap);
    }

    memcpy(r->log + r->len, p, n);
    r->len += n;
}


static void
rec_init(rec_t *r)
{
    memset(r, 0, sizeof(rec_t));
    r->cap = 64;
    r->log = malloc(r->cap);
}


static int
rec_stop(rec_t *r, int kind)
{
    r->events++;

    if (r->stopped) {
        r->after++;
        return 1;
    }

    if (kind == r->stop_kind && ++r->seen == r->stop_nth) {
        r->stopped = 1;
        return 1;
    }

    return 0;
}


static int
rec_begin(void *data, const bd_multipart_part_t *part)
{
    rec_t  *r = data;

    rec_add(r, S("{"));
    rec_add(r, part->name, part->name_len);

    if (part->has_filename) {
        rec_add(r, S(";f="));
        rec_add(r, part->filename, part->filename_len);
    }

    if (part->content_type_len) {
        rec_add(r, S(";t="));
        rec_add(r, part->content_type, part->content_type_len);
    }

    rec_add(r, S("}"));

    /* the strings are NUL-terminated too */
    if (part->name[part->name_len] != '\0'
        || part->filename[part->filename_len] != '\0'
        || part->content_type[part->content_type_len] != '\0')
    {
        rec_add(r, S("{unterminated}"));
    }

    return rec_stop(r, 'b');
}


static int
rec_data(void *data, const char *p, size_t n)
{
    rec_t  *r = data;

    if (n == 0) {
        rec_add(r, S("{empty data}"));
    }

    rec_add(r, p, n);

    return rec_stop(r, 'd');
}


static int
rec_end(void *data)
{
    rec_t  *r = data;

    rec_add(r, S("{/}"));

    return rec_stop(r, 'e');
}


static const bd_multipart_callbacks_t  callbacks = {
    rec_begin, rec_data, rec_end
};


/*
 * Feeds a body to a fresh parser in pieces: whole, a byte at a time, or
 * of random sizes (from seed, with empty feeds between), each piece in a
 * buffer of its own size so that the sanitizer sees a read past it.
 * Returns finish()'s answer, or BROKEN when the parser broke a rule on
 * the way: held back a delimiter's length or more, or answered or called
 * back after it had said DONE, ERROR or STOPPED.
 */
static int
run(const char *boundary, const char *body, size_t len, int mode,
    unsigned seed, rec_t *r, const char **error)
{
    int              rc, last, broken, events;
    char            *buf;
    size_t           off, n, cap;
    bd_multipart_t  *mp;
    static const size_t  caps[] = { 1, 2, 3, 5, 8, 13, 64, 100000 };

    mp = malloc(sizeof(bd_multipart_t));
    memset(mp, 0xee, sizeof(bd_multipart_t));
    bd_multipart_init(mp, boundary, strlen(boundary), &callbacks, r);

    rnd_state = seed * 2654435761u + 1;
    cap = caps[rnd() % (sizeof(caps) / sizeof(caps[0]))];
    last = BD_MULTIPART_OK;
    broken = 0;

    for (off = 0; off < len; off += n) {

        if (mode == WHOLE) {
            n = len;

        } else if (mode == BYTES) {
            n = 1;

        } else {
            n = 1 + rnd() % cap;

            if (rnd() % 8 == 0
                && bd_multipart_feed(mp, rnd() % 2 ? body : NULL, 0)
                   != last)
            {
                broken = 1;
            }
        }

        if (n > len - off) {
            n = len - off;
        }

        buf = malloc(n);
        memcpy(buf, body + off, n);
        events = r->events;

        rc = bd_multipart_feed(mp, buf, n);

        free(buf);

        if (last != BD_MULTIPART_OK
            && (rc != last || r->events != events))
        {
            broken = 1;
        }

        if (rc == BD_MULTIPART_OK && mp->matched >= mp->delim_len) {
            broken = 1;
        }

        last = rc;
    }

    events = r->events;
    rc = bd_multipart_finish(mp);

    if ((last != BD_MULTIPART_OK && rc != last) || r->events != events
        || bd_multipart_finish(mp) != rc)
    {
        broken = 1;
    }

    *error = mp->error;
    free(mp);

    return broken ? BROKEN : rc;
}


static void
show(const char *label, const char *p, size_t n)
{
    size_t         i;
    unsigned char  c;

    printf("# %10s: '", label);

    for (i = 0; i < n; i++) {
        c = (unsigned char) p[i];

        if (c >= 0x20 && c < 0x7f && c != '\\') {
            putchar(c);

        } else {
            printf("\\x%02x", c);
        }
    }

    printf("'\n");
}


/* one run of a case: 1 when it gives what it must */
static int
check(const test_case_t *c, int mode, unsigned seed)
{
    int          rc, pass;
    rec_t        r;
    const char  *error;

    rec_init(&r);

    rc = run(c->boundary, c->body, c->len, mode, seed, &r, &error);

    pass = rc == c->rc
           && r.len == c->log_len && memcmp(r.log, c->log, r.len) == 0
           && (c->error ? error && strcmp(error, c->error) == 0
                        : error == NULL);

    if (!pass) {
        printf("# mode %d, seed %u\n", mode, seed);
        printf("#         rc: %d, expected %d\n", rc, c->rc);
        printf("#      error: %s, expected %s\n", error ? error : "(none)",
               c->error ? c->error : "(none)");
        show("got", r.log, r.len);
        show("expected", c->log, c->log_len);
    }

    free(r.log);

    return pass;
}


static void
test(const test_case_t *c)
{
    int       pass;
    char      name[256];
    unsigned  seed;

    snprintf(name, sizeof(name), "%s: whole", c->title);
    ok(check(c, WHOLE, 0), name);

    snprintf(name, sizeof(name), "%s: a byte at a time", c->title);
    ok(check(c, BYTES, 0), name);

    pass = 1;

    for (seed = 1; seed <= SPLITS && pass; seed++) {
        pass = check(c, RANDOM, seed);
    }

    snprintf(name, sizeof(name), "%s: %d random chunkings", c->title,
             SPLITS);
    ok(pass, name);
}


#define B    "--AaB03x"
#define CD   "Content-Disposition: form-data; name="
#define CRLF "\r\n"

#define DONE      BD_MULTIPART_DONE
#define ERROR     BD_MULTIPART_ERROR


static const test_case_t  cases[] = {

    { "one field", "AaB03x",
      S(B CRLF CD "\"field1\"" CRLF CRLF "Joe Blow" CRLF B "--" CRLF),
      DONE, NULL, S("{field1}Joe Blow{/}") },

    { "a field and two files", "AaB03x",
      S(B CRLF CD "\"submit-name\"" CRLF CRLF "Larry" CRLF
        B CRLF CD "\"files\"; filename=\"file1.txt\"" CRLF
        "Content-Type: text/plain" CRLF CRLF
        "... contents of file1.txt ..." CRLF
        B CRLF CD "\"files\"; filename=\"file2.gif\"" CRLF
        "Content-Type: image/gif" CRLF CRLF
        "GIF89a..." CRLF B "--" CRLF),
      DONE, NULL,
      S("{submit-name}Larry{/}"
        "{files;f=file1.txt;t=text/plain}... contents of file1.txt ...{/}"
        "{files;f=file2.gif;t=image/gif}GIF89a...{/}") },

    { "only fields: no filename", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "1" CRLF
        B CRLF CD "\"b\"" CRLF CRLF "2" CRLF B "--"),
      DONE, NULL, S("{a}1{/}{b}2{/}") },

    { "an empty filename is still a filename", "AaB03x",
      S(B CRLF CD "\"f\"; filename=\"\"" CRLF
        "Content-Type: application/octet-stream" CRLF CRLF CRLF B "--"),
      DONE, NULL, S("{f;f=;t=application/octet-stream}{/}") },

    { "CRLF inside data", "AaB03x",
      S(B CRLF CD "\"t\"" CRLF CRLF
        CRLF "line 1" CRLF "line 2" CRLF CRLF CRLF B "--" CRLF),
      DONE, NULL, S("{t}" CRLF "line 1" CRLF "line 2" CRLF CRLF "{/}") },

    { "preamble and epilogue", "AaB03x",
      S("This is the preamble, --AaB03x not at a line's start," CRLF
        "--AaB03 nor whole" CRLF "-" CRLF "--" CRLF "\r\r" CRLF
        B CRLF CD "\"a\"" CRLF CRLF "1" CRLF B "--" CRLF
        "The epilogue: " B CRLF CD "\"b\"" CRLF CRLF "2" CRLF B "--" CRLF),
      DONE, NULL, S("{a}1{/}") },

    { "a preamble that is only a CRLF", "AaB03x",
      S(CRLF B CRLF CD "\"a\"" CRLF CRLF "1" CRLF B "--"),
      DONE, NULL, S("{a}1{/}") },

    { "the closing boundary alone", "AaB03x",
      S(B "--" CRLF),
      DONE, NULL, S("") },

    { "transport padding after boundaries", "AaB03x",
      S(B " \t " CRLF CD "\"a\"" CRLF CRLF "x" CRLF
        B "\t" CRLF CD "\"b\"" CRLF CRLF "y" CRLF B "-- \t" CRLF),
      DONE, NULL, S("{a}x{/}{b}y{/}") },

    { "near-boundaries are data", "AaB03x",
      S(B CRLF CD "\"n\"" CRLF CRLF
        "a\r\n--AaB03\r\n--AaB0\r\r\n-\r\n--\r\n--AaB03y-\r\n--aab03x"
        "\r\n-\r\r\r\n--AaB03" CRLF B "--"),
      DONE, NULL,
      S("{n}a\r\n--AaB03\r\n--AaB0\r\r\n-\r\n--\r\n--AaB03y-\r\n--aab03x"
        "\r\n-\r\r\r\n--AaB03{/}") },

    { "a body that is exactly a near-boundary", "boundary",
      S("--boundary" CRLF CD "\"x\"" CRLF CRLF
        "\r\n--bounda" CRLF "--boundary--"),
      DONE, NULL, S("{x}\r\n--bounda{/}") },

    { "CR and dashes just before the delimiter", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "x\r" CRLF
        B CRLF CD "\"b\"" CRLF CRLF "y\r\n-" CRLF
        B CRLF CD "\"c\"" CRLF CRLF "z\r\n--AaB03" CRLF B "--"),
      DONE, NULL, S("{a}x\r{/}{b}y\r\n-{/}{c}z\r\n--AaB03{/}") },

    { "an empty body", "AaB03x",
      S(B CRLF CD "\"e\"" CRLF CRLF CRLF B CRLF CD "\"f\"" CRLF CRLF
        CRLF B "--"),
      DONE, NULL, S("{e}{/}{f}{/}") },

    { "a missing body (headers, then the delimiter)", "AaB03x",
      S(B CRLF CD "\"e\"" CRLF CRLF B CRLF CD "\"f\"" CRLF CRLF "1" CRLF
        B "--"),
      DONE, NULL, S("{e}{/}{f}1{/}") },

    { "a body of one CRLF", "AaB03x",
      S(B CRLF CD "\"e\"" CRLF CRLF CRLF CRLF B "--"),
      DONE, NULL, S("{e}\r\n{/}") },

    { "binary data with NULs and 0xFF", "AaB03x",
      S(B CRLF CD "\"bin\"; filename=\"b.bin\"" CRLF CRLF
        "\0\xff\xfe\r\0\r\n\xff-\r\n-\0\r\n--\xff\r\n--AaB03\0\r\xff\0"
        "\r\n--AaB03\xff" "\r" CRLF B "--"),
      DONE, NULL,
      S("{bin;f=b.bin}"
        "\0\xff\xfe\r\0\r\n\xff-\r\n-\0\r\n--\xff\r\n--AaB03\0\r\xff\0"
        "\r\n--AaB03\xff" "\r" "{/}") },

    { "a quoted boundary with spaces", "a b",
      S("--a b" CRLF CD "\"n\"" CRLF CRLF "x --a b" CRLF "--a b " CRLF
        CD "\"m\"" CRLF CRLF "y" CRLF "--a b--"),
      DONE, NULL, S("{n}x --a b{/}{m}y{/}") },

    { "a 70-byte boundary", "0123456789012345678901234567890123456789"
                            "012345678901234567890123456789",
      S("--0123456789012345678901234567890123456789"
        "012345678901234567890123456789" CRLF CD "\"n\"" CRLF CRLF
        "\r\n--0123456789012345678901234567890123456789"
        "01234567890123456789012345678" CRLF
        "--0123456789012345678901234567890123456789"
        "012345678901234567890123456789--"),
      DONE, NULL,
      S("{n}\r\n--0123456789012345678901234567890123456789"
        "01234567890123456789012345678{/}") },

    /* filenames */

    { "filename* in UTF-8", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=UTF-8''%e2%82%ac.png" CRLF CRLF "x"
        CRLF B "--"),
      DONE, NULL, S("{f;f=\xe2\x82\xac.png}x{/}") },

    { "filename* wins over a filename before it", "AaB03x",
      S(B CRLF CD "\"f\"; filename=\"euro.png\"; "
        "filename*=UTF-8''%E2%82%AC.png" CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{f;f=\xe2\x82\xac.png}x{/}") },

    { "filename* wins over a filename after it", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=utf-8'en'%e2%82%ac.png; "
        "filename=\"euro.png\"" CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{f;f=\xe2\x82\xac.png}x{/}") },

    { "filename* in ISO-8859-1 turns to UTF-8", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=ISO-8859-1''%e9t%E9.txt" CRLF CRLF
        "x" CRLF B "--"),
      DONE, NULL, S("{f;f=\xc3\xa9t\xc3\xa9.txt}x{/}") },

    { "filename* with a bad escape is an error", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=UTF-8''%zz.png" CRLF CRLF "x" CRLF
        B "--"),
      ERROR, "a malformed or long filename*", S("") },

    { "filename* with a cut escape is an error", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=UTF-8''a%e" CRLF CRLF "x" CRLF
        B "--"),
      ERROR, "a malformed or long filename*", S("") },

    { "filename* in another charset is an error", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=KOI8-R''%c1" CRLF CRLF "x" CRLF
        B "--"),
      ERROR, "a malformed or long filename*", S("") },

    { "filename* without a charset is an error", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=%e2%82%ac.png" CRLF CRLF "x" CRLF
        B "--"),
      ERROR, "a malformed or long filename*", S("") },

    { "a quoted filename* is an error", "AaB03x",
      S(B CRLF CD "\"f\"; filename*=\"UTF-8''a.png\"" CRLF CRLF "x" CRLF
        B "--"),
      ERROR, "a malformed or long filename*", S("") },

    { "backslash escapes in quoted parameters", "AaB03x",
      S(B CRLF CD "\"a\\\"b\"; filename=\"c:\\\\dir\\\\x \\\"y\\\".txt\""
        CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{a\"b;f=c:\\dir\\x \"y\".txt}x{/}") },

    { "unquoted parameters", "AaB03x",
      S(B CRLF CD "plain ; filename = my file.png ;" CRLF CRLF "x" CRLF
        B "--"),
      DONE, NULL, S("{plain;f=my file.png}x{/}") },

    { "a ';' inside quotes is no separator", "AaB03x",
      S(B CRLF CD "\"a;b\"; filename=\"x;y=z.txt\"" CRLF CRLF "x" CRLF
        B "--"),
      DONE, NULL, S("{a;b;f=x;y=z.txt}x{/}") },

    /* headers */

    { "header names and form-data in any case", "AaB03x",
      S(B CRLF "content-DISPOSITION:FORM-DATA;NAME=\"x\";FileName=y.png"
        CRLF "CONTENT-type:  image/png  " CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{x;f=y.png;t=image/png}x{/}") },

    { "other headers are ignored", "AaB03x",
      S(B CRLF "X-Other: a: b" CRLF CD "\"x\"; size=3; creation-date=\"a\""
        CRLF "Content-Transfer-Encoding: binary" CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{x}x{/}") },

    { "folded header lines are unfolded", "AaB03x",
      S(B CRLF "Content-Disposition: form-data;" CRLF " name=\"x\";" CRLF
        "\tfilename=\"y.txt\"" CRLF "Content-Type:" CRLF "  text/plain"
        CRLF CRLF "x" CRLF B "--"),
      DONE, NULL, S("{x;f=y.txt;t=text/plain}x{/}") },

    { "a continuation as the first line is an error", "AaB03x",
      S(B CRLF " " CD "\"x\"" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a continuation line first", S("") },

    { "a part without Content-Disposition is an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "1" CRLF
        B CRLF "Content-Type: text/plain" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a part without Content-Disposition", S("{a}1{/}") },

    { "a part without headers is an error", "AaB03x",
      S(B CRLF CRLF "x" CRLF B "--"),
      ERROR, "a part without Content-Disposition", S("") },

    { "a disposition other than form-data is an error", "AaB03x",
      S(B CRLF "Content-Disposition: attachment; name=\"x\"" CRLF CRLF "x"
        CRLF B "--"),
      ERROR, "a part that is not form-data", S("") },

    { "form-data without a name is an error", "AaB03x",
      S(B CRLF "Content-Disposition: form-data; filename=\"a\"" CRLF CRLF
        "x" CRLF B "--"),
      ERROR, "a part without a name", S("") },

    { "two names are an error", "AaB03x",
      S(B CRLF CD "\"a\"; name=\"b\"" CRLF CRLF "x" CRLF B "--"),
      ERROR, "two names for a part", S("") },

    { "two filenames are an error", "AaB03x",
      S(B CRLF CD "\"a\"; filename=\"b\"; FILENAME=\"c\"" CRLF CRLF "x"
        CRLF B "--"),
      ERROR, "two filenames for a part", S("") },

    { "two Content-Dispositions are an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CD "\"b\"" CRLF CRLF "x" CRLF B "--"),
      ERROR, "two Content-Dispositions", S("") },

    { "two Content-Types are an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF "Content-Type: a/b" CRLF
        "content-type: c/d" CRLF CRLF "x" CRLF B "--"),
      ERROR, "two Content-Types", S("") },

    { "an unterminated quoted parameter is an error", "AaB03x",
      S(B CRLF CD "\"a" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a malformed Content-Disposition", S("") },

    { "junk after a quoted parameter is an error", "AaB03x",
      S(B CRLF CD "\"a\"b" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a malformed Content-Disposition", S("") },

    { "a parameter without '=' is an error", "AaB03x",
      S(B CRLF CD "\"a\"; filename" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a malformed Content-Disposition", S("") },

    { "a bare LF in headers is an error", "AaB03x",
      S(B CRLF CD "\"a\"\nX-A: b" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a bare CR or LF in headers", S("") },

    { "a bare CR in headers is an error", "AaB03x",
      S(B CRLF CD "\"a\"\rX-A: b" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a bare CR or LF in headers", S("") },

    { "a header line without a colon is an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF "NoColon" CRLF CRLF "x" CRLF B "--"),
      ERROR, "a malformed header line", S("") },

    { "a space before the colon is an error", "AaB03x",
      S(B CRLF "Content-Disposition : form-data; name=\"a\"" CRLF CRLF "x"
        CRLF B "--"),
      ERROR, "a malformed header line", S("") },

    /* boundaries and ends */

    { "junk after a boundary is an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "x" CRLF B "junk" CRLF),
      ERROR, "junk after a boundary", S("{a}x{/}") },

    { "junk after padding is an error", "AaB03x",
      S(B "  x" CRLF CD "\"a\"" CRLF CRLF "x" CRLF B "--"),
      ERROR, "junk after a boundary", S("") },

    { "a CR without LF after a boundary is an error", "AaB03x",
      S(B "\r\r\n" CD "\"a\"" CRLF CRLF "x" CRLF B "--"),
      ERROR, "junk after a boundary", S("") },

    { "one dash after a boundary is an error", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "x" CRLF B "-x"),
      ERROR, "junk after a boundary", S("{a}x{/}") },

    { "a missing closing boundary", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "abc" CRLF B CRLF CD "\"b\"" CRLF CRLF
        "de"),
      ERROR, "no closing boundary", S("{a}abc{/}{b}de") },

    { "a body cut inside the delimiter", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "abc" CRLF "--AaB0"),
      ERROR, "no closing boundary", S("{a}abc") },

    { "a body cut after one closing dash", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF CRLF "abc" CRLF B "-"),
      ERROR, "no closing boundary", S("{a}abc{/}") },

    { "a body cut in the headers", "AaB03x",
      S(B CRLF CD "\"a\"" CRLF),
      ERROR, "no closing boundary", S("") },

    { "a body without a boundary", "AaB03x",
      S("just some text\r\n--AaB03"),
      ERROR, "no closing boundary", S("") },

    { "an empty body", "AaB03x",
      "", 0,
      ERROR, "no closing boundary", S("") },
};

#define NCASES  (sizeof(cases) / sizeof(cases[0]))


/* a part whose header block takes len bytes, with a name of nlen bytes */
static char *
big_part(size_t len, size_t nlen, size_t *blen)
{
    char    *b, *p;
    size_t   pad;

    b = malloc(len + nlen + 200);
    p = b;

    p += sprintf(p, B CRLF CD "\"");
    memset(p, 'n', nlen);
    p += nlen;
    p += sprintf(p, "\"" CRLF);

    /* what is left of len after the line above, "X-Pad: ", CRLF CRLF */
    pad = len - (size_t) (p - b - (sizeof(B CRLF) - 1)) - 7 - 4;
    p += sprintf(p, "X-Pad: ");
    memset(p, 'a', pad);
    p += pad;
    p += sprintf(p, CRLF CRLF "x" CRLF B "--");

    *blen = (size_t) (p - b);

    return b;
}


static void
test_big(void)
{
    char         *body, log[400];
    size_t        len;
    test_case_t   c;

    c.boundary = "AaB03x";

    body = big_part(BD_MULTIPART_HEADER_MAX, 1, &len);
    c.title = "a header block of BD_MULTIPART_HEADER_MAX bytes";
    c.body = body;
    c.len = len;
    c.rc = DONE;
    c.error = NULL;
    c.log = "{n}x{/}";
    c.log_len = strlen(c.log);
    test(&c);
    free(body);

    body = big_part(BD_MULTIPART_HEADER_MAX + 1, 1, &len);
    c.title = "a header block one byte longer is an error";
    c.body = body;
    c.len = len;
    c.rc = ERROR;
    c.error = "a part's headers too long";
    c.log = "";
    c.log_len = 0;
    test(&c);
    free(body);

    body = big_part(100000, 1, &len);
    c.title = "a huge header block is an error";
    c.body = body;
    c.len = len;
    test(&c);
    free(body);

    body = big_part(1000, BD_MULTIPART_NAME_MAX - 1, &len);
    c.title = "a name of BD_MULTIPART_NAME_MAX - 1 bytes";
    c.body = body;
    c.len = len;
    c.rc = DONE;
    c.error = NULL;
    log[0] = '{';
    memset(log + 1, 'n', BD_MULTIPART_NAME_MAX - 1);
    strcpy(log + BD_MULTIPART_NAME_MAX, "}x{/}");
    c.log = log;
    c.log_len = strlen(log);
    test(&c);
    free(body);

    body = big_part(1000, BD_MULTIPART_NAME_MAX, &len);
    c.title = "a name one byte longer is an error";
    c.body = body;
    c.len = len;
    c.rc = ERROR;
    c.error = "a field name too long";
    c.log = "";
    c.log_len = 0;
    test(&c);
    free(body);
}


/*
 * A part whose Content-Disposition ends with params; want: the filename
 * it must give, or NULL for an error.
 */
static void
test_filename(const char *title, const char *params, const char *want,
    const char *error)
{
    char         *body, *log;
    test_case_t   c;

    body = malloc(strlen(params) + 200);
    sprintf(body, B CRLF CD "\"f\"; %s" CRLF CRLF "x" CRLF B "--", params);

    log = malloc((want ? strlen(want) : 0) + 20);
    sprintf(log, "{f;f=%s}x{/}", want ? want : "");

    c.title = title;
    c.boundary = "AaB03x";
    c.body = body;
    c.len = strlen(body);
    c.rc = want ? DONE : ERROR;
    c.error = error;
    c.log = want ? log : "";
    c.log_len = strlen(c.log);

    test(&c);

    free(body);
    free(log);
}


static void
test_filenames(void)
{
    char    *p, *want;
    size_t   i, n;

    n = BD_MULTIPART_FILENAME_MAX;
    p = malloc(3 * n + 100);
    want = malloc(2 * n);

    /* the most: one byte less than the array, for the NUL */
    memset(want, 'n', n - 1);
    want[n - 1] = '\0';

    sprintf(p, "filename=\"%s\"", want);
    test_filename("a filename of BD_MULTIPART_FILENAME_MAX - 1 bytes", p,
                  want, NULL);

    sprintf(p, "filename=\"%sn\"", want);
    test_filename("a filename one byte longer is an error", p, NULL,
                  "a filename too long");

    sprintf(p, "filename*=UTF-8''a; filename=\"%sn\"", want);
    test_filename("even when filename* came first and wins", p, NULL,
                  "a filename too long");

    strcpy(p, "filename*=UTF-8''");
    for (i = 0; i < n - 1; i++) {
        strcat(p, "%6e");
    }

    test_filename("a filename* of BD_MULTIPART_FILENAME_MAX - 1 bytes", p,
                  want, NULL);

    strcat(p, "%6e");
    test_filename("a filename* one byte longer is an error", p, NULL,
                  "a malformed or long filename*");

    /* ISO-8859-1 grows: each of these bytes takes two in UTF-8 */
    strcpy(p, "filename*=iso-8859-1''");
    for (i = 0; i < (n - 1) / 2; i++) {
        strcat(p, "%e9");
        memcpy(want + 2 * i, "\xc3\xa9", 2);
    }

    want[2 * i] = '\0';
    test_filename("a filename* of 511 Latin-1 letters", p, want, NULL);

    strcat(p, "%e9");
    test_filename("one more Latin-1 letter is an error", p, NULL,
                  "a malformed or long filename*");

    free(p);
    free(want);
}


/*
 * A callback that answers non-zero stops the parser: STOPPED, then no
 * callback at all, whatever is fed after; what came before is a prefix
 * of the whole walk's events, ending with the one that stopped it (tail,
 * or some data when tail is NULL).
 */
static void
test_stop(int kind, int nth, const char *title, const char *tail)
{
    int               rc, pass, mode;
    rec_t             r;
    unsigned          seed;
    const char       *error;
    const test_case_t  *c;

    c = &cases[1];
    pass = 1;

    for (seed = 0; seed < SPLITS + 2 && pass; seed++) {
        rec_init(&r);
        r.stop_kind = kind;
        r.stop_nth = nth;
        mode = seed == 0 ? WHOLE : seed == 1 ? BYTES : RANDOM;

        rc = run(c->boundary, c->body, c->len, mode, seed, &r, &error);

        pass = rc == BD_MULTIPART_STOPPED && r.stopped && r.after == 0
               && r.len <= c->log_len && memcmp(r.log, c->log, r.len) == 0
               && (tail ? r.len >= strlen(tail)
                          && memcmp(r.log + r.len - strlen(tail), tail,
                                    strlen(tail)) == 0
                        : r.len > 0 && r.log[r.len - 1] != '}');

        if (!pass) {
            printf("# mode %d, seed %u: rc %d, after %d\n", mode, seed, rc,
                   r.after);
            show("got", r.log, r.len);
        }

        free(r.log);
    }

    ok(pass, title);
}


static int
boundary(const char *ct, char *b)
{
    size_t  blen;

    b[0] = '\0';

    if (bd_multipart_boundary(ct, strlen(ct), b, &blen) != 0) {
        return -1;
    }

    return blen == strlen(b) ? (int) blen : -2;
}


static void
test_boundary(void)
{
    int     rc;
    char    b[BD_MULTIPART_BOUNDARY_MAX + 1], ct[200];
    size_t  blen;

    rc = boundary("multipart/form-data; boundary=AaB03x", b);
    ok(rc == 6 && strcmp(b, "AaB03x") == 0, "an unquoted boundary");

    rc = boundary("Multipart/Form-Data; BOUNDARY=\"a b:c\"", b);
    ok(rc == 5 && strcmp(b, "a b:c") == 0,
       "a quoted one with a space; names in any case");

    rc = boundary("multipart/form-data;boundary=----WebKitFormBoundary"
                  "7MA4YWxkTrZu0gW", b);
    is_str(b, "----WebKitFormBoundary7MA4YWxkTrZu0gW", "no space after ';'");

    rc = boundary("  multipart/form-data ; charset=utf-8 ;"
                  " boundary = \"x'()+_,-./:=?y\" ;", b);
    is_str(b, "x'()+_,-./:=?y", "all of RFC 2046's bchars, among others");

    rc = boundary("multipart/form-data; boundary=\"a\\bc\"", b);
    is_str(b, "abc", "a backslash escape in quotes");

    memset(ct, 0, sizeof(ct));
    strcpy(ct, "multipart/form-data; boundary=");
    memset(ct + strlen(ct), 'b', 70);
    ok(boundary(ct, b) == 70, "70 bytes is the most");
    ct[strlen(ct)] = 'b';
    is_int(boundary(ct, b), -1, "71 is too many");

    is_int(boundary("multipart/mixed; boundary=x", b), -1,
           "multipart/mixed is refused");
    is_int(boundary("multipart/form-datax; boundary=x", b), -1,
           "a longer type is refused");
    is_int(boundary("text/plain; boundary=x", b), -1, "so is text/plain");
    is_int(boundary("multipart/form-data", b), -1, "no boundary");
    is_int(boundary("multipart/form-data; charset=x", b), -1,
           "no boundary among the parameters");
    is_int(boundary("multipart/form-data; boundary=", b), -1,
           "an empty boundary");
    is_int(boundary("multipart/form-data; boundary=\"\"", b), -1,
           "an empty quoted boundary");
    is_int(boundary("multipart/form-data; boundary=\"ab \"", b), -1,
           "a boundary ending with a space");
    is_int(boundary("multipart/form-data; boundary=a b", b), -1,
           "a space needs the quotes");
    is_int(boundary("multipart/form-data; boundary=a@b", b), -1,
           "'@' is not a bchar");
    is_int(boundary("multipart/form-data; boundary=\"a\\\"b\"", b), -1,
           "nor is '\"'");
    is_int(boundary("multipart/form-data; boundary=\"ab", b), -1,
           "an unterminated quote");
    is_int(boundary("multipart/form-data; boundary=a; boundary=a", b), -1,
           "two boundaries");
    is_int(boundary("multipart/form-data; boundary", b), -1,
           "a parameter without '='");
    is_int(boundary("multipart/form-data boundary=a", b), -1,
           "a parameter without ';'");

    rc = bd_multipart_boundary("multipart/form-data; boundary=abcdef", 33,
                               b, &blen);
    ok(rc == 0 && blen == 3 && strcmp(b, "abc") == 0,
       "the length bounds the value");
}


static void
test_init(const char *b, size_t blen, const char *title)
{
    rec_t           r;
    bd_multipart_t  mp;

    rec_init(&r);
    bd_multipart_init(&mp, b, blen, &callbacks, &r);

    ok(bd_multipart_feed(&mp, S("--x--")) == BD_MULTIPART_ERROR
       && bd_multipart_finish(&mp) == BD_MULTIPART_ERROR
       && strcmp(mp.error, "bad boundary") == 0 && r.events == 0, title);

    free(r.log);
}


int
main(void)
{
    size_t                    i;
    bd_multipart_t            mp;
    static const bd_multipart_callbacks_t  none = { NULL, NULL, NULL };

    for (i = 0; i < NCASES; i++) {
        test(&cases[i]);
    }

    test_big();
    test_filenames();

    test_stop('b', 2, "stopped by the second part_begin",
              "{/}{files;f=file1.txt;t=text/plain}");
    test_stop('d', 1, "stopped by the first part_data", NULL);
    test_stop('d', 2, "stopped by the second part_data", NULL);
    test_stop('e', 1, "stopped by the first part_end", "Larry{/}");
    test_stop('e', 3, "stopped by the last part_end", "GIF89a...{/}");

    test_boundary();

    test_init("", 0, "init with an empty boundary: ERROR");
    test_init(S("a\rb"), "init with a CR in the boundary: ERROR");
    test_init(S("ab "), "init with a boundary ending in a space: ERROR");
    test_init(S("0123456789012345678901234567890123456789"
                "0123456789012345678901234567890"),
              "init with a 71-byte boundary: ERROR");

    bd_multipart_init(&mp, S("AaB03x"), &none, NULL);
    ok(bd_multipart_feed(&mp, S(B CRLF CD "\"a\"" CRLF CRLF "x" CRLF B "--"))
       == BD_MULTIPART_DONE, "callbacks may all be NULL");

    return tap_done();
}
