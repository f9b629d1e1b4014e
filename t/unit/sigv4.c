/*
 * Unit tests for src/bd_sigv4.c: AWS Signature Version 4 and the S3
 * answers' values.
 *
 * The four signed requests are the examples of AWS's "Signature
 * Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk" (docs.aws.amazon.com/AmazonS3/latest/API/
 * sig-v4-header-based-auth.html).  The request of our own kind (a path
 * with a port, UNSIGNED-PAYLOAD, metadata with blanks to fold) was signed
 * with the openssl command alone: the canonical request written out by
 * hand, the key chain made with `openssl dgst -sha256 -mac HMAC -macopt
 * key:AWS4<secret>` and then `-macopt hexkey:<previous>`.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_sigv4.h"


#define S(s)  (s), (sizeof(s) - 1)

#define EMPTY_SHA256                                                          \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define WELCOME_SHA256                                                        \
    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
#define AWS_CREDENTIAL                                                        \
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/" \
    "aws4_request, "

/* 2013-05-24T00:00:00Z, the AWS examples' time */
#define AWS_NOW  1369353600


static bd_sigv4_request_t
aws_request(const char *method, const char *path, const char *query,
    const char *payload_hash)
{
    bd_sigv4_request_t  r;

    memset(&r, 0, sizeof(r));
    r.method = method;
    r.host = "examplebucket.s3.amazonaws.com";
    r.path = path;
    r.query = query;
    r.payload_hash = payload_hash;
    r.region = "us-east-1";
    r.service = "s3";
    r.access_key = "AKIAIOSFODNN7EXAMPLE";
    r.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    r.now = AWS_NOW;

    return r;
}


static const char *
enc(const char *in, int keep_slash)
{
    size_t       n, m;
    static char  out[256];

    n = bd_sigv4_uri_encode(in, strlen(in), NULL, keep_slash);
    m = bd_sigv4_uri_encode(in, strlen(in), out, keep_slash);
    out[m] = '\0';

    return n == m ? out : "(measured length differs)";
}


/*
 * bd_s3_xml_text() on an exact-size copy of xml, without the literal's
 * NUL, so that the sanitizer sees a read past its end
 */
static ssize_t
xml(const char *text, const char *tag, char *out, size_t out_size)
{
    char     *copy;
    size_t    len;
    ssize_t   n;

    len = strlen(text);
    copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    n = bd_s3_xml_text(copy, len, tag, out, out_size);
    free(copy);

    return n;
}


int
main(void)
{
    char                 date[BD_SIGV4_DATE_LEN + 1], auth[512], hex[65];
    char                 out[64], small[8];
    size_t               i;
    ssize_t              n, full;
    bd_sigv4_request_t   r;
    bd_sigv4_header_t    h[BD_SIGV4_HEADERS_MAX + 1];

    static const unsigned char  digest[32] = {
        0x00, 0x01, 0x0a, 0xff, 0x10, 0x80, 0x7f, 0xab
    };

    /* AWS's examples */

    r = aws_request("GET", "/test.txt", "", EMPTY_SHA256);
    h[0].name = "range";
    h[0].value = "bytes=0-9";
    r.headers = h;
    r.nheaders = 1;
    n = bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(date, "20130524T000000Z", "x-amz-date of the examples' time");
    is_str(auth, AWS_CREDENTIAL
           "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
           "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd9103"
           "9c6036bdb41",
           "AWS example GET Object with a Range header");
    is_int(n, strlen(auth), "the length of the Authorization value");

    r = aws_request("PUT", "/test%24file.text", "", WELCOME_SHA256);
    h[0].name = "x-amz-storage-class";
    h[0].value = "REDUCED_REDUNDANCY";
    h[1].name = "date";
    h[1].value = "Fri, 24 May 2013 00:00:00 GMT";
    r.headers = h;
    r.nheaders = 2;
    n = bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(auth, AWS_CREDENTIAL
           "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
           "x-amz-storage-class, "
           "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971"
           "af0ece108bd",
           "AWS example PUT Object: extra headers sorted among the three");

    bd_sigv4_sha256_hex(S("Welcome to Amazon S3."), hex);
    is_str(hex, WELCOME_SHA256, "the PUT example's payload hash");
    bd_sigv4_sha256_hex("", 0, hex);
    is_str(hex, EMPTY_SHA256, "SHA-256 of nothing");

    r = aws_request("GET", "/", "lifecycle=", EMPTY_SHA256);
    n = bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(auth, AWS_CREDENTIAL
           "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
           "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200"
           "a0136783543",
           "AWS example GET Bucket Lifecycle (no extra headers)");

    r = aws_request("GET", "/", "max-keys=2&prefix=J", EMPTY_SHA256);
    full = bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(auth, AWS_CREDENTIAL
           "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
           "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed57"
           "11ef69dc6f7",
           "AWS example Get Bucket (List Objects) with a query");

    /* the Authorization value's room */

    n = bd_sigv4_sign(&r, date, auth, full + 1);
    is_int(n, full, "signed into exactly its length and the NUL");
    n = bd_sigv4_sign(&r, date, auth, full);
    is_int(n, -1, "one byte less is too small");
    is_str(auth, "", "and leaves auth empty");
    n = bd_sigv4_sign(&r, date, small, sizeof(small));
    is_int(n, -1, "a tiny auth buffer");

    /* a request of our own kind */

    memset(&r, 0, sizeof(r));
    r.method = "PUT";
    r.host = "127.0.0.1:7480";
    r.path = "/bkt/images/a%20b.png";
    r.query = "";
    r.payload_hash = BD_SIGV4_UNSIGNED;
    r.region = "nyc3";
    r.service = "s3";
    r.access_key = "BDTESTKEY";
    r.secret = "bd/secret+key";
    r.now = 1796552100;
    h[0].name = "x-amz-meta-filename";
    h[0].value = "  my   file \t .png  ";
    h[1].name = "x-amz-acl";
    h[1].value = "private";
    r.headers = h;
    r.nheaders = 2;
    n = bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(date, "20261206T101500Z", "x-amz-date of 2026-12-06T10:15:00Z");
    is_str(auth, "AWS4-HMAC-SHA256 Credential=BDTESTKEY/20261206/nyc3/s3/"
           "aws4_request, SignedHeaders=host;x-amz-acl;x-amz-content-sha256;"
           "x-amz-date;x-amz-meta-filename, "
           "Signature=1711cdfeefb89ed8a0ea83b40fc4147255a0841b58aa84f06e378"
           "92615ab7beb",
           "a port, UNSIGNED-PAYLOAD, blanks trimmed and folded");
    ok(n > 0, "which is signed");

    /* dates */

    r.now = 951868799;
    bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(date, "20000229T235959Z", "a leap day");
    r.now = 4107542400;
    bd_sigv4_sign(&r, date, auth, sizeof(auth));
    is_str(date, "21000301T000000Z", "2100 is no leap year");
    r.now = 253402300799;
    ok(bd_sigv4_sign(&r, date, auth, sizeof(auth)) > 0
       && strcmp(date, "99991231T235959Z") == 0, "the last four-digit year");
    r.now = 253402300800;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1, "year 10000");
    r.now = -1;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "before the epoch");
    r.now = 1796552100;

    /* bad input */

    h[1].name = "X-Amz-Acl";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a header name in upper case");
    h[1].name = "x-amz;acl";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a ';' in a header name");
    h[1].name = "";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "an empty header name");
    h[1].name = "x-amz-date";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "x-amz-date given again");
    h[1].name = "host";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "host given again");
    h[1].name = "x-amz-meta-filename";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "an extra header given twice");
    h[1].name = "x-amz-acl";
    h[1].value = "private\r\nx-evil: 1";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "CR LF in a value");
    h[1].value = NULL;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1, "a NULL value");
    h[1].value = "";
    ok(bd_sigv4_sign(&r, date, auth, sizeof(auth)) > 0,
       "an empty value is signed");
    h[1].value = "private";

    for (i = 0; i <= BD_SIGV4_HEADERS_MAX; i++) {
        h[i].name = i < 10 ? "x-amz-meta-a" : "x-amz-meta-b";
        h[i].value = "v";
    }

    r.headers = h;
    r.nheaders = BD_SIGV4_HEADERS_MAX + 1;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "more extra headers than BD_SIGV4_HEADERS_MAX");
    r.headers = NULL;
    r.nheaders = 1;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "headers NULL with nheaders 1");
    r.nheaders = 0;
    ok(bd_sigv4_sign(&r, date, auth, sizeof(auth)) > 0,
       "headers NULL with nheaders 0");

    r.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA49599"
                     "1B7852B855";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a payload hash in upper case");
    r.payload_hash = "e3b0";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a short payload hash");
    r.payload_hash = EMPTY_SHA256 "0";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a long payload hash");
    r.payload_hash = EMPTY_SHA256;
    r.path = "bkt/a";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a path without its '/'");
    r.path = "/bkt/a b";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a path not encoded");
    r.path = "/bkt/a";
    r.query = NULL;
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1, "a NULL query");
    r.query = "";
    r.region = "us/east";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "a '/' in the region");
    r.region = "";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "an empty region");
    r.region = "us-east-1";
    r.access_key = "AK, Signature=x";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "an access key with ', '");
    r.access_key = "AK";
    r.secret = "";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1,
           "an empty secret");
    r.secret = "s";
    r.host = "";
    is_int(bd_sigv4_sign(&r, date, auth, sizeof(auth)), -1, "an empty host");
    r.host = "h";
    ok(bd_sigv4_sign(&r, date, auth, sizeof(auth)) > 0,
       "and signed again once all is right");
    is_int(bd_sigv4_sign(NULL, date, auth, sizeof(auth)), -1, "no request");

    /* URI encoding */

    is_str(enc("a b", 1), "a%20b", "a space is %20, never '+'");
    is_str(enc("A-Za-z0-9-._~", 1), "A-Za-z0-9-._~", "unreserved kept");
    is_str(enc("bkt/images/a.png", 1), "bkt/images/a.png",
           "'/' kept in a path");
    is_str(enc("a/b", 0), "a%2Fb", "'/' encoded in a query value");
    is_str(enc("\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", 1),
           "%D0%BA%D0%BB%D1%8E%D1%87", "UTF-8 bytes, upper-case hex");
    is_str(enc("a+b=c", 1), "a%2Bb%3Dc", "'+' and '='");
    is_str(enc("100%&?#$", 0), "100%25%26%3F%23%24", "% & ? # $");
    is_str(enc("\xff", 0), "%FF", "the byte 0xff");
    is_int(bd_sigv4_uri_encode("a\0b", 3, NULL, 0), 5, "a NUL is %00");
    is_int(bd_sigv4_uri_encode("", 0, NULL, 0), 0, "nothing");

    /* hex */

    bd_sigv4_hex(digest, sizeof(digest), hex);
    is_str(hex, "00010aff10807fab000000000000000000000000000000000000000000"
           "000000", "hex of a digest, lower case");

    /* the S3 answers' values */

    n = xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
            "doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>a.png</Key>"
            "<UploadId>VXBsb2FkIElE.elZ-ZkU_</UploadId>"
            "</InitiateMultipartUploadResult>", "UploadId", out, sizeof(out));
    ok(n == 21 && strcmp(out, "VXBsb2FkIElE.elZ-ZkU_") == 0,
       "an UploadId");

    n = xml("<CompleteMultipartUploadResult><ETag>&quot;3858f62230ac3c915f3"
            "00c664312c11f-9&quot;</ETag></CompleteMultipartUploadResult>",
            "ETag", out, sizeof(out));
    is_str(out, "\"3858f62230ac3c915f300c664312c11f-9\"",
           "an ETag in &quot;");
    is_int(n, 36, "and its length");

    xml("<ETag>&#34;abc&#x22;</ETag>", "ETag", out, sizeof(out));
    is_str(out, "\"abc\"", "an ETag in &#34; (MinIO) and &#x22;");
    xml("<Message>a &lt;b&gt; &amp; &apos;c&apos;</Message>", "Message",
        out, sizeof(out));
    is_str(out, "a <b> & 'c'", "the five named references");
    is_int(xml("<Message>&eacute;</Message>", "Message", out, sizeof(out)),
           -1, "another named reference");
    is_int(xml("<Message>&#233;</Message>", "Message", out, sizeof(out)),
           -1, "a reference past ASCII");
    is_int(xml("<Message>&#0;</Message>", "Message", out, sizeof(out)),
           -1, "a reference to NUL");
    is_int(xml("<Message>a & b</Message>", "Message", out, sizeof(out)),
           -1, "a bare '&'");
    is_int(xml("<ETag>&quot;abc&x;</ETag>", "ETag", out, sizeof(out)), -1,
           "a bad reference after some text");
    is_str(out, "", "leaves out empty, not the text before it");
    is_int(xml("<ETag>abc<b/></ETag>", "ETag", out, sizeof(out)), -1,
           "markup after some text");
    is_str(out, "", "leaves out empty too");

    n = xml("<Error><Code>NoSuchUpload</Code><Message>The specified upload "
            "does not exist.</Message></Error>", "Code", out, sizeof(out));
    ok(n == 12 && strcmp(out, "NoSuchUpload") == 0, "an error's Code");
    is_int(xml("<Error><Code>X</Code></Error>", "Message", out, sizeof(out)),
           -1, "a missing tag");
    is_str(out, "", "leaves out empty");
    is_int(xml("", "Code", out, sizeof(out)), -1, "an empty answer");
    is_int(xml("<Codes>a</Codes><Code>b</Code>", "Code", out, sizeof(out)),
           1, "a longer name is another tag");
    is_str(out, "b", "and the right one is found");
    is_int(xml("<code>a</code>", "Code", out, sizeof(out)), -1,
           "names are case-sensitive");
    xml("<Part><ETag>\"1\"</ETag></Part><Part><ETag>\"2\"</ETag></Part>",
        "ETag", out, sizeof(out));
    is_str(out, "\"1\"", "the first of several, inside a parent");
    is_int(xml("<Message><b>x</b></Message>", "Message", out, sizeof(out)),
           -1, "markup inside the text");
    is_int(xml("<Message/><Code>C</Code>", "Message", out, sizeof(out)), 0,
           "a self-closing tag is empty text");
    is_str(out, "", "and out is \"\"");
    is_int(xml("<Message />", "Message", out, sizeof(out)), 0,
           "self-closing with a blank");
    xml("<Code a=\"/>\">in</Code>", "Code", out, sizeof(out));
    is_str(out, "in", "an attribute holding \"/>\"");
    xml("<!-- <Code>fake</Code> --><Code>real</Code>", "Code", out,
        sizeof(out));
    is_str(out, "real", "a tag in a comment is not found");
    is_int(xml("<Code><![CDATA[x]]></Code>", "Code", out, sizeof(out)), -1,
           "CDATA text is not read");
    xml("<X><![CDATA[<Code>fake</Code>]]></X><Code>real</Code>", "Code",
        out, sizeof(out));
    is_str(out, "real", "a tag in CDATA is not found");
    xml("<Code>a b\n</Code >", "Code", out, sizeof(out));
    is_str(out, "a b\n", "text kept as sent, a blank in the end tag");

    /* cut short */

    is_int(xml("<UploadId>abc", "UploadId", out, sizeof(out)), -1,
           "cut in the text");
    is_int(xml("<UploadId>abc</Upload", "UploadId", out, sizeof(out)), -1,
           "cut in the end tag");
    is_int(xml("<UploadId>abc</UploadId", "UploadId", out, sizeof(out)), -1,
           "cut before the end tag's '>'");
    is_int(xml("<UploadId>abc</UploadIdX>", "UploadId", out, sizeof(out)),
           -1, "another end tag");
    is_int(xml("<UploadId", "UploadId", out, sizeof(out)), -1,
           "cut in the start tag's name");
    is_int(xml("<UploadId a=\"x", "UploadId", out, sizeof(out)), -1,
           "cut in an attribute");
    is_int(xml("<Upload", "UploadId", out, sizeof(out)), -1,
           "cut before the name is whole");
    is_int(xml("<ETag>&quot", "ETag", out, sizeof(out)), -1,
           "cut in a reference");
    is_int(xml("<ETag>&#34", "ETag", out, sizeof(out)), -1,
           "cut in a numeric reference");
    is_int(xml("<!-- <Code>", "Code", out, sizeof(out)), -1,
           "cut in a comment");

    /* out's room */

    is_int(xml("<Code>1234567</Code>", "Code", small, sizeof(small)), 7,
           "seven bytes and the NUL fit in eight");
    is_int(xml("<Code>12345678</Code>", "Code", small, sizeof(small)), -1,
           "eight do not");
    is_str(small, "", "and leave out empty");
    is_int(xml("<Code>&quot;123456&quot;</Code>", "Code", small,
               sizeof(small)), -1, "counted decoded: eight");
    is_int(xml("<Code>&quot;12345&quot;</Code>", "Code", small,
               sizeof(small)), 7, "seven decoded");
    is_int(xml("<Code></Code>", "Code", small, 1), 0,
           "empty text in a one-byte out");

    return tap_done();
}
