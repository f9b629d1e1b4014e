/*
 * BulletDrop: AWS Signature Version 4 for the requests the module sends to
 * S3-compatible object storage, and the few values it reads from the
 * store's XML answers.  Pure C (libc and OpenSSL 3's libcrypto) so that t/
 * can unit-test it and fuzz/ can fuzz it.
 */

#ifndef _BD_SIGV4_H_INCLUDED_
#define _BD_SIGV4_H_INCLUDED_

#include <stddef.h>
#include <sys/types.h>
#include <time.h>


#define BD_SIGV4_DATE_LEN     16     /* "20261206T101500Z" */
#define BD_SIGV4_HASH_LEN     64     /* lowercase hex of a SHA-256 */
#define BD_SIGV4_UNSIGNED     "UNSIGNED-PAYLOAD"

/* the extra headers one request may sign, besides the three always signed */
#define BD_SIGV4_HEADERS_MAX  16


typedef struct {
    const char  *name;     /* lowercase, e.g. "range" */
    const char  *value;    /* trimmed */
} bd_sigv4_header_t;


typedef struct {
    const char               *method;       /* "PUT" */
    const char               *host;         /* "127.0.0.1:7480" */
    const char               *path;         /* canonical URI, encoded */
    const char               *query;        /* canonical query, "" if none */
    const char               *payload_hash; /* 64 hex, or UNSIGNED-PAYLOAD */
    const bd_sigv4_header_t  *headers;      /* extra headers, may be NULL */
    size_t                    nheaders;
    const char               *region;       /* "us-east-1" */
    const char               *service;      /* "s3" */
    const char               *access_key;
    const char               *secret;
    time_t                    now;
} bd_sigv4_request_t;


/*
 * Signs req: writes amz_date (BD_SIGV4_DATE_LEN + 1 bytes with the NUL),
 * the value of x-amz-date, and the whole Authorization value
 *
 *     AWS4-HMAC-SHA256 Credential=AK/20261206/us-east-1/s3/aws4_request,
 *     SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=<hex>
 *
 * (one line) into auth, auth_size bytes with the NUL.  Signed are host,
 * x-amz-content-sha256 (payload_hash) and x-amz-date, and the extra
 * headers, sorted by name; values have blanks trimmed and inner runs of
 * blanks folded into one space.  Returns the length of auth, or -1 when it
 * does not fit, for bad input (a header name that is not a lowercase
 * token, a name given twice or one of the three, a control character in a
 * value, an empty or malformed field, more than BD_SIGV4_HEADERS_MAX extra
 * headers) or when OpenSSL fails; auth is then "".
 */
ssize_t bd_sigv4_sign(const bd_sigv4_request_t *req, char *amz_date,
    char *auth, size_t auth_size);

/*
 * AWS's URI encoding: the unreserved A-Za-z0-9-._~ are kept, every other
 * byte becomes %XX (upper case); '/' is kept when keep_slash (a key in a
 * path) and encoded otherwise (a query value).  out may be NULL to
 * measure; returns the encoded length.  No NUL is written.
 */
size_t bd_sigv4_uri_encode(const char *in, size_t len, char *out,
    int keep_slash);

/*
 * Lowercase hex SHA-256 of a buffer into out (BD_SIGV4_HASH_LEN + 1
 * bytes); out is "" if OpenSSL fails, which no payload hash can be.
 */
void bd_sigv4_sha256_hex(const void *data, size_t len, char *out);

/* lowercase hex of len bytes into out (2 * len + 1 bytes) */
void bd_sigv4_hex(const unsigned char *digest, size_t len, char *out);


/*
 * The text of the first <tag>...</tag> of a small S3 XML answer (UploadId,
 * Code, Message, ETag), decoded into out (out_size bytes with the NUL).
 * Decoded are &quot; &amp; &lt; &gt; &apos; and numeric references to
 * ASCII (&#34; as Go's encoding/xml, and so MinIO, writes an ETag's
 * quotes).  Comments, CDATA sections and processing instructions are
 * skipped over when looking for the tag; <tag/> is found and empty.
 * Returns the decoded length, or -1 when the tag is absent, its text holds
 * markup or another reference, the input ends inside it, or it does not
 * fit.
 */
ssize_t bd_s3_xml_text(const char *xml, size_t len, const char *tag,
    char *out, size_t out_size);


#endif /* _BD_SIGV4_H_INCLUDED_ */
