/*
 * BulletDrop: AWS Signature Version 4 and the S3 answers' few values.
 *
 * The canonical request is fed to SHA-256 piece by piece, never built in a
 * buffer, so that no path or header value is too long for it; what is
 * built (scope, signed header list, string to sign) has fixed bounds and
 * every write is checked.  No state of our own: OpenSSL 3's digests and
 * MACs are safe to use from several threads at once.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "bd_sigv4.h"


#define BD_SIGV4_ALGORITHM   "AWS4-HMAC-SHA256"
#define BD_SIGV4_TERMINATOR  "aws4_request"

/* region, service, access key, secret: real ones are far shorter */
#define BD_SIGV4_FIELD_MAX   128
/* "host;range;x-amz-content-sha256;x-amz-date;x-amz-meta-...": 16 + 3 */
#define BD_SIGV4_SIGNED_MAX  1024
/* "20261206/" region "/" service "/aws4_request" */
#define BD_SIGV4_SCOPE_MAX   (2 * BD_SIGV4_FIELD_MAX + 32)

#define BD_SIGV4_KEY_LEN     32


typedef struct {
    EVP_MD_CTX  *md;
    int          ok;
} bd_sigv4_canon_t;


static const char  bd_sigv4_hex_digits[] = "0123456789abcdef";


static void
bd_sigv4_feed(bd_sigv4_canon_t *c, const char *s, size_t len)
{
    if (c->ok && len && EVP_DigestUpdate(c->md, s, len) != 1) {
        c->ok = 0;
    }
}


static int
bd_sigv4_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}


/*
 * A header value as AWS canonicalizes it: blanks at either end dropped,
 * each inner run of them one space
 */
static void
bd_sigv4_feed_value(bd_sigv4_canon_t *c, const char *v)
{
    const char  *p, *q, *end;

    p = v;
    end = v + strlen(v);

    while (p < end && bd_sigv4_blank(*p)) {
        p++;
    }

    while (end > p && bd_sigv4_blank(end[-1])) {
        end--;
    }

    while (p < end) {
        for (q = p; q < end && !bd_sigv4_blank(*q); q++) { /* void */ }

        bd_sigv4_feed(c, p, q - p);

        if (q == end) {
            break;
        }

        while (bd_sigv4_blank(*q)) {
            q++;
        }

        bd_sigv4_feed(c, " ", 1);
        p = q;
    }
}


/*
 * the length of s when it is 1..max visible ASCII characters, none of
 * them one of deny; 0 otherwise
 */
static size_t
bd_sigv4_visible(const char *s, size_t max, const char *deny)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }

    for (i = 0; s[i]; i++) {
        if (i == max || s[i] < 0x21 || s[i] > 0x7e
            || strchr(deny, s[i]) != NULL)
        {
            return 0;
        }
    }

    return i;
}


/* a lowercase HTTP token (RFC 9110): ';' and ':' would break the lists */
static int
bd_sigv4_name_valid(const char *s)
{
    size_t  i;

    if (s == NULL || s[0] == '\0') {
        return 0;
    }

    for (i = 0; s[i]; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
            || strchr("!#$%&'*+-.^_`|~", s[i]) != NULL)
        {
            continue;
        }

        return 0;
    }

    return 1;
}


/* no CR or LF (a header of our own), no other control but tab */
static int
bd_sigv4_value_valid(const char *s)
{
    const unsigned char  *p;

    if (s == NULL) {
        return 0;
    }

    for (p = (const unsigned char *) s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static int
bd_sigv4_payload_valid(const char *s)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }

    if (strcmp(s, BD_SIGV4_UNSIGNED) == 0) {
        return 1;
    }

    for (i = 0; i < BD_SIGV4_HASH_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return s[i] == '\0';
}


/*
 * "YYYYMMDDTHHMMSSZ" of now in UTC, computed here rather than with
 * gmtime_r() and strftime(), which need feature macros and a locale;
 * the civil date from days since the epoch is Howard Hinnant's algorithm
 */
static int
bd_sigv4_date(time_t now, char *out)
{
    long long  days, secs, era, doe, yoe, doy, mp, y, m, d;

    /* 1970-01-01 to 9999-12-31: four digits of year */
    if (now < 0 || (long long) now >= 253402300800LL) {
        return -1;
    }

    days = (long long) now / 86400;
    secs = (long long) now % 86400;

    days += 719468;
    era = days / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);

    if (snprintf(out, BD_SIGV4_DATE_LEN + 1, "%04lld%02lld%02lldT%02lld%02lld"
                 "%02lldZ", y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
        != BD_SIGV4_DATE_LEN)
    {
        return -1;
    }

    return 0;
}


static int
bd_sigv4_hmac(EVP_MAC_CTX *ctx, const unsigned char *key, size_t klen,
    const char *data, size_t len, unsigned char *out)
{
    size_t  outl;

    return EVP_MAC_init(ctx, key, klen, NULL) == 1
           && EVP_MAC_update(ctx, (const unsigned char *) data, len) == 1
           && EVP_MAC_final(ctx, out, &outl, BD_SIGV4_KEY_LEN) == 1
           && outl == BD_SIGV4_KEY_LEN;
}


/*
 * HMAC-SHA256 of the string to sign with the key derived from the secret,
 * the date, the region and the service
 */
static int
bd_sigv4_signature(const bd_sigv4_request_t *req, const char *date,
    const char *sts, size_t sts_len, unsigned char *sig)
{
    int             rc;
    size_t          slen;
    EVP_MAC        *mac;
    OSSL_PARAM      params[2];
    EVP_MAC_CTX    *ctx;
    unsigned char   secret[4 + BD_SIGV4_FIELD_MAX], key[BD_SIGV4_KEY_LEN];

    slen = strlen(req->secret);
    if (slen == 0 || slen > BD_SIGV4_FIELD_MAX) {
        return 0;
    }

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        return 0;
    }

    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL) {
        EVP_MAC_free(mac);
        return 0;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, req->secret, slen);

    /* each step's key is the one before's MAC */
    rc = EVP_MAC_CTX_set_params(ctx, params) == 1
         && bd_sigv4_hmac(ctx, secret, 4 + slen, date, 8, key)
         && bd_sigv4_hmac(ctx, key, sizeof(key), req->region,
                          strlen(req->region), key)
         && bd_sigv4_hmac(ctx, key, sizeof(key), req->service,
                          strlen(req->service), key)
         && bd_sigv4_hmac(ctx, key, sizeof(key), BD_SIGV4_TERMINATOR,
                          sizeof(BD_SIGV4_TERMINATOR) - 1, key)
         && bd_sigv4_hmac(ctx, key, sizeof(key), sts, sts_len, sig);

    /* the secret and the day's key stay out of freed stack memory */
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);

    return rc;
}


ssize_t
bd_sigv4_sign(const bd_sigv4_request_t *req, char *amz_date, char *auth,
    size_t auth_size)
{
    int                 n;
    char                scope[BD_SIGV4_SCOPE_MAX];
    char                signed_list[BD_SIGV4_SIGNED_MAX];
    char                sts[sizeof(BD_SIGV4_ALGORITHM) + BD_SIGV4_DATE_LEN
                            + BD_SIGV4_SCOPE_MAX + BD_SIGV4_HASH_LEN + 8];
    char                canon_hex[BD_SIGV4_HASH_LEN + 1];
    char                sig_hex[BD_SIGV4_HASH_LEN + 1];
    size_t              i, j, nall, len, slen;
    unsigned int        mdlen;
    unsigned char       md[EVP_MAX_MD_SIZE], sig[BD_SIGV4_KEY_LEN];
    bd_sigv4_canon_t    c;
    bd_sigv4_header_t   all[BD_SIGV4_HEADERS_MAX + 3], h;

    if (auth == NULL || auth_size == 0) {
        return -1;
    }

    auth[0] = '\0';

    if (req == NULL || amz_date == NULL
        || bd_sigv4_visible(req->method, BD_SIGV4_FIELD_MAX, "") == 0
        || bd_sigv4_visible(req->host, 2 * BD_SIGV4_FIELD_MAX, "") == 0
        || bd_sigv4_visible(req->path, (size_t) -1, "") == 0
        || req->path[0] != '/'
        || req->query == NULL
        || (req->query[0] != '\0'
            && bd_sigv4_visible(req->query, (size_t) -1, "") == 0)
        || !bd_sigv4_payload_valid(req->payload_hash)
        || bd_sigv4_visible(req->region, BD_SIGV4_FIELD_MAX, "/") == 0
        || bd_sigv4_visible(req->service, BD_SIGV4_FIELD_MAX, "/") == 0
        || bd_sigv4_visible(req->access_key, BD_SIGV4_FIELD_MAX, "/,") == 0
        || req->secret == NULL
        || req->nheaders > BD_SIGV4_HEADERS_MAX
        || (req->nheaders && req->headers == NULL))
    {
        return -1;
    }

    if (bd_sigv4_date(req->now, amz_date) != 0) {
        return -1;
    }

    /* the three always signed and the extra ones, sorted by name */

    all[0].name = "host";
    all[0].value = req->host;
    all[1].name = "x-amz-content-sha256";
    all[1].value = req->payload_hash;
    all[2].name = "x-amz-date";
    all[2].value = amz_date;
    nall = 3;

    for (i = 0; i < req->nheaders; i++) {
        if (!bd_sigv4_name_valid(req->headers[i].name)
            || !bd_sigv4_value_valid(req->headers[i].value))
        {
            return -1;
        }

        all[nall++] = req->headers[i];
    }

    for (i = 1; i < nall; i++) {
        h = all[i];

        for (j = i; j > 0 && strcmp(all[j - 1].name, h.name) > 0; j--) {
            all[j] = all[j - 1];
        }

        all[j] = h;
    }

    /* a name twice would be signed as S3 never reads it */

    len = 0;

    for (i = 0; i < nall; i++) {
        if (i > 0 && strcmp(all[i - 1].name, all[i].name) == 0) {
            return -1;
        }

        slen = strlen(all[i].name);
        if (len + (i > 0) + slen >= sizeof(signed_list)) {
            return -1;
        }

        if (i > 0) {
            signed_list[len++] = ';';
        }

        memcpy(signed_list + len, all[i].name, slen);
        len += slen;
    }

    signed_list[len] = '\0';

    /* the canonical request, straight into SHA-256 */

    c.md = EVP_MD_CTX_new();
    if (c.md == NULL) {
        return -1;
    }

    c.ok = EVP_DigestInit_ex(c.md, EVP_sha256(), NULL) == 1;

    bd_sigv4_feed(&c, req->method, strlen(req->method));
    bd_sigv4_feed(&c, "\n", 1);
    bd_sigv4_feed(&c, req->path, strlen(req->path));
    bd_sigv4_feed(&c, "\n", 1);
    bd_sigv4_feed(&c, req->query, strlen(req->query));
    bd_sigv4_feed(&c, "\n", 1);

    for (i = 0; i < nall; i++) {
        bd_sigv4_feed(&c, all[i].name, strlen(all[i].name));
        bd_sigv4_feed(&c, ":", 1);
        bd_sigv4_feed_value(&c, all[i].value);
        bd_sigv4_feed(&c, "\n", 1);
    }

    bd_sigv4_feed(&c, "\n", 1);
    bd_sigv4_feed(&c, signed_list, len);
    bd_sigv4_feed(&c, "\n", 1);
    bd_sigv4_feed(&c, req->payload_hash, strlen(req->payload_hash));

    if (c.ok && EVP_DigestFinal_ex(c.md, md, &mdlen) == 1
        && mdlen == BD_SIGV4_KEY_LEN)
    {
        bd_sigv4_hex(md, mdlen, canon_hex);

    } else {
        c.ok = 0;
    }

    EVP_MD_CTX_free(c.md);

    if (!c.ok) {
        return -1;
    }

    /* the string to sign and its signature */

    n = snprintf(scope, sizeof(scope), "%.8s/%s/%s/" BD_SIGV4_TERMINATOR,
                 amz_date, req->region, req->service);
    if (n < 0 || (size_t) n >= sizeof(scope)) {
        return -1;
    }

    n = snprintf(sts, sizeof(sts), BD_SIGV4_ALGORITHM "\n%s\n%s\n%s",
                 amz_date, scope, canon_hex);
    if (n < 0 || (size_t) n >= sizeof(sts)) {
        return -1;
    }

    if (!bd_sigv4_signature(req, amz_date, sts, n, sig)) {
        return -1;
    }

    bd_sigv4_hex(sig, sizeof(sig), sig_hex);

    n = snprintf(auth, auth_size, BD_SIGV4_ALGORITHM " Credential=%s/%s, "
                 "SignedHeaders=%s, Signature=%s",
                 req->access_key, scope, signed_list, sig_hex);
    if (n < 0 || (size_t) n >= auth_size) {
        auth[0] = '\0';
        return -1;
    }

    return n;
}


size_t
bd_sigv4_uri_encode(const char *in, size_t len, char *out, int keep_slash)
{
    size_t         i, n;
    unsigned char  c;

    static const char  upper[] = "0123456789ABCDEF";

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~' || (c == '/' && keep_slash))
        {
            if (out) {
                out[n] = (char) c;
            }

            n++;
            continue;
        }

        if (out) {
            out[n] = '%';
            out[n + 1] = upper[c >> 4];
            out[n + 2] = upper[c & 0x0f];
        }

        n += 3;
    }

    return n;
}


void
bd_sigv4_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != BD_SIGV4_KEY_LEN)
    {
        out[0] = '\0';
        return;
    }

    bd_sigv4_hex(md, mdlen, out);
}


void
bd_sigv4_hex(const unsigned char *digest, size_t len, char *out)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        out[2 * i] = bd_sigv4_hex_digits[digest[i] >> 4];
        out[2 * i + 1] = bd_sigv4_hex_digits[digest[i] & 0x0f];
    }

    out[2 * len] = '\0';
}


/* p points at '<': past the markup that cannot hold an element, or NULL */
static const char *
bd_s3_xml_skip(const char *p, const char *end)
{
    size_t       i, left, olen;
    const char  *close, *q;

    static const struct {
        const char  *open;
        const char  *close;
    } skip[] = {
        { "<!--", "-->" },
        { "<![CDATA[", "]]>" },
        { "<?", "?>" },
        { "<!", ">" },      /* a DOCTYPE; S3 sends none */
    };

    left = end - p;

    for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        olen = strlen(skip[i].open);

        if (left < olen || memcmp(p, skip[i].open, olen) != 0) {
            continue;
        }

        close = skip[i].close;

        for (q = p + olen; q < end; q++) {
            if ((size_t) (end - q) >= strlen(close)
                && memcmp(q, close, strlen(close)) == 0)
            {
                return q + strlen(close);
            }
        }

        return NULL;
    }

    return p;
}


/*
 * One reference at p (at '&'), decoded into *ch; returns its length, or 0
 * for one not decoded here
 */
static size_t
bd_s3_xml_ref(const char *p, const char *end, char *ch)
{
    int          v, d, base;
    size_t       i, left, nlen;
    const char  *q;

    static const struct {
        const char  *name;
        char         ch;
    } named[] = {
        { "&quot;", '"' }, { "&amp;", '&' }, { "&lt;", '<' },
        { "&gt;", '>' }, { "&apos;", '\'' },
    };

    left = end - p;

    for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        nlen = strlen(named[i].name);

        if (left >= nlen && memcmp(p, named[i].name, nlen) == 0) {
            *ch = named[i].ch;
            return nlen;
        }
    }

    /* &#34; or &#x22;, ASCII only: what Go's encoding/xml writes */

    if (left < 4 || p[1] != '#') {
        return 0;
    }

    q = p + 2;
    base = 10;

    if (*q == 'x') {
        base = 16;
        q++;
    }

    v = 0;

    for (i = 0; q < end && *q != ';'; q++, i++) {
        if (*q >= '0' && *q <= '9') {
            d = *q - '0';

        } else if (base == 16 && *q >= 'a' && *q <= 'f') {
            d = *q - 'a' + 10;

        } else if (base == 16 && *q >= 'A' && *q <= 'F') {
            d = *q - 'A' + 10;

        } else {
            return 0;
        }

        v = v * base + d;

        if (v > 0x7f) {
            return 0;
        }
    }

    if (q == end || i == 0 || v == 0) {
        return 0;
    }

    *ch = (char) v;

    return q + 1 - p;
}


ssize_t
bd_s3_xml_text(const char *xml, size_t len, const char *tag, char *out,
    size_t out_size)
{
    char         ch;
    size_t       tlen, n, r;
    const char  *p, *end, *q;

    if (xml == NULL || tag == NULL || out == NULL || out_size == 0) {
        return -1;
    }

    out[0] = '\0';
    tlen = strlen(tag);

    if (tlen == 0) {
        return -1;
    }

    p = xml;
    end = xml + len;

    /* the first start tag of that name, past markup that holds none */

    for ( ;; ) {
        p = memchr(p, '<', end - p);
        if (p == NULL) {
            return -1;
        }

        q = bd_s3_xml_skip(p, end);
        if (q == NULL) {
            return -1;
        }

        if (q != p) {
            p = q;
            continue;
        }

        q = p + 1 + tlen;

        if ((size_t) (end - p) > 1 + tlen
            && memcmp(p + 1, tag, tlen) == 0
            && (*q == '>' || *q == '/' || *q == ' ' || *q == '\t'
                || *q == '\r' || *q == '\n'))
        {
            break;
        }

        p++;
    }

    /* its attributes, which S3 sends none of, up to '>' or "/>" */

    while (q < end && *q != '>') {
        if (*q == '"' || *q == '\'') {
            ch = *q;
            q = memchr(q + 1, ch, end - q - 1);
            if (q == NULL) {
                return -1;
            }
        }

        q++;
    }

    if (q == end) {
        return -1;
    }

    if (q[-1] == '/') {
        return 0;
    }

    /* the text, up to the end tag */

    p = q + 1;
    n = 0;

    while (p < end && *p != '<') {
        ch = *p;
        r = 1;

        if (ch == '&') {
            r = bd_s3_xml_ref(p, end, &ch);
            if (r == 0) {
                goto failed;
            }
        }

        if (n + 1 >= out_size) {
            goto failed;
        }

        out[n++] = ch;
        p += r;
    }

    /* "</tag" and '>' after optional blanks; anything else is markup */

    if ((size_t) (end - p) < 2 + tlen || p[1] != '/'
        || memcmp(p + 2, tag, tlen) != 0)
    {
        goto failed;
    }

    for (q = p + 2 + tlen;
         q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n');
         q++)
    { /* void */ }

    if (q == end || *q != '>') {
        goto failed;
    }

    out[n] = '\0';

    return n;

failed:

    /* what was decoded before the failure is no answer */
    out[0] = '\0';

    return -1;
}
