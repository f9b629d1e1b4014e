/*
 * libFuzzer target: src/bd_sigv4.c, which reads the object store's XML
 * answers (bd_s3_xml_text()), encodes keys (bd_sigv4_uri_encode()) and
 * signs requests with headers of the caller's (bd_sigv4_sign()).
 *
 * Input: byte 0 % 3 picks the function, byte 1 is a size; the rest is its
 * input, read from an exact-size copy so that a read past the end is
 * caught.
 *
 *   0: XML.  Byte 1 picks the tag (% 5), byte 2 the room for the text
 *      (1..256).  The answer is -1 with out "", or n < room with out
 *      NUL-terminated at n, never longer than the input; with 4096 bytes
 *      of room the same text, and -1 for the small room only when the
 *      text does not fit; a text found comes after "<tag" in the input.
 *   1: URI encoding, '/' kept when bit 0 of byte 1 is set.  The measured
 *      length is the written one, len + 2 for each byte encoded; the
 *      output is unreserved bytes (and '/') or %XX in upper case, and
 *      decodes back to the input.
 *   2: signing.  The rest, cut at '\n', is name, value, name, value...
 *      of extra headers (up to BD_SIGV4_HEADERS_MAX + 1); byte 1 is the
 *      room for Authorization (byte * 2 + 1).  The answer is -1 with auth
 *      "", or strlen(auth), a value of the right shape, the same when
 *      signed again.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_sigv4.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)


static const char  *tags[] = { "UploadId", "Code", "Message", "ETag", "a" };


static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}


static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


static void
fuzz_xml(const uint8_t *data, size_t size)
{
    char        *in, *small, *big, open[16];
    size_t       room, olen, i;
    ssize_t      n, m;
    const char  *tag;

    if (size < 3) {
        return;
    }

    tag = tags[data[1] % 5];
    room = (size_t) data[2] + 1;
    data += 3;
    size -= 3;

    in = malloc(size ? size : 1);
    memcpy(in, data, size);
    small = malloc(room);
    big = malloc(4096);

    n = bd_s3_xml_text(in, size, tag, small, room);
    m = bd_s3_xml_text(in, size, tag, big, 4096);

    check(n >= -1 && m >= -1);

    if (n == -1) {
        check(small[0] == '\0');
        check(m == -1 || (size_t) m + 1 > room);

    } else {
        check((size_t) n < room && (size_t) n <= size);
        check(small[n] == '\0');
        check(m == n && memcmp(small, big, n + 1) == 0);
    }

    if (m >= 0) {
        check((size_t) m <= size && big[m] == '\0');

        open[0] = '<';
        olen = strlen(tag) + 1;
        memcpy(open + 1, tag, olen - 1);

        for (i = 0; i + olen <= size; i++) {
            if (memcmp(in + i, open, olen) == 0) {
                break;
            }
        }

        check(i + olen <= size);

    } else {
        check(big[0] == '\0');
    }

    free(in);
    free(small);
    free(big);
}


static void
fuzz_uri(const uint8_t *data, size_t size)
{
    int            slash, hi, lo;
    char          *in, *out;
    size_t         n, m, i, j, want;
    unsigned char  c;

    if (size < 2) {
        return;
    }

    slash = data[1] & 1;
    data += 2;
    size -= 2;

    in = malloc(size ? size : 1);
    memcpy(in, data, size);

    want = 0;

    for (i = 0; i < size; i++) {
        c = (unsigned char) in[i];
        want += (unreserved(c) || (c == '/' && slash)) ? 1 : 3;
    }

    n = bd_sigv4_uri_encode(in, size, NULL, slash);
    check(n == want);

    /* an exact-size output, so that a write past it is caught */
    out = malloc(n ? n : 1);
    m = bd_sigv4_uri_encode(in, size, out, slash);
    check(m == n);

    for (i = 0, j = 0; i < m; j++) {
        check(j < size);
        c = (unsigned char) out[i];

        if (c == '%') {
            check(i + 2 < m);
            hi = hexval(out[i + 1]);
            lo = hexval(out[i + 2]);
            check(hi >= 0 && lo >= 0);
            c = (unsigned char) (hi << 4 | lo);
            /* what may stand for itself never is encoded */
            check(!unreserved(c) && !(c == '/' && slash));
            i += 3;

        } else {
            check(unreserved(c) || (c == '/' && slash));
            i++;
        }

        check(c == (unsigned char) in[j]);
    }

    check(j == size);

    free(in);
    free(out);
}


static void
fuzz_sign(const uint8_t *data, size_t size)
{
    char                *text, *p, *nl, *auth, *again, date[32];
    size_t               room, nf, i;
    ssize_t              n, n2;
    const char          *sig, *f[2 * (BD_SIGV4_HEADERS_MAX + 1)];
    bd_sigv4_header_t    h[BD_SIGV4_HEADERS_MAX + 1];
    bd_sigv4_request_t   r;

    static const char  prefix[] = "AWS4-HMAC-SHA256 Credential=AK/20261206/"
                                  "us-east-1/s3/aws4_request, SignedHeaders=";

    if (size < 2) {
        return;
    }

    room = (size_t) data[1] * 2 + 1;
    data += 2;
    size -= 2;

    /* NUL-terminated fields; a NUL inside one just ends it early */
    text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    nf = 0;
    p = text;

    while (nf < sizeof(f) / sizeof(f[0])) {
        f[nf++] = p;
        nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }

        *nl = '\0';
        p = nl + 1;
    }

    for (i = 0; i + 1 < nf; i += 2) {
        h[i / 2].name = f[i];
        h[i / 2].value = f[i + 1];
    }

    memset(&r, 0, sizeof(r));
    r.method = "PUT";
    r.host = "127.0.0.1:7480";
    r.path = "/bkt/a.png";
    r.query = "";
    r.payload_hash = BD_SIGV4_UNSIGNED;
    r.headers = h;
    r.nheaders = nf / 2;
    r.region = "us-east-1";
    r.service = "s3";
    r.access_key = "AK";
    r.secret = "secret";
    r.now = 1796552100;

    auth = malloc(room);
    again = malloc(room);
    memset(date, 'x', sizeof(date));

    n = bd_sigv4_sign(&r, date, auth, room);
    n2 = bd_sigv4_sign(&r, date, again, room);

    check(n == n2);

    if (n == -1) {
        check(auth[0] == '\0');

    } else {
        check(n > 0 && (size_t) n < room && strlen(auth) == (size_t) n);
        check(strcmp(auth, again) == 0);
        check(strcmp(date, "20261206T101500Z") == 0);
        check((size_t) n >= sizeof(prefix) - 1 + 12 + 64);
        check(strncmp(auth, prefix, sizeof(prefix) - 1) == 0);
        sig = auth + n - 64;
        check(strncmp(sig - 12, ", Signature=", 12) == 0);

        for (i = 0; i < 64; i++) {
            check((sig[i] >= '0' && sig[i] <= '9')
                  || (sig[i] >= 'a' && sig[i] <= 'f'));
        }

        for (i = 0; i < (size_t) n; i++) {
            check(auth[i] >= 0x20 && auth[i] < 0x7f);
        }
    }

    free(text);
    free(auth);
    free(again);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }

    switch (data[0] % 3) {
    case 0:
        fuzz_xml(data, size);
        break;
    case 1:
        fuzz_uri(data, size);
        break;
    default:
        fuzz_sign(data, size);
    }

    return 0;
}
