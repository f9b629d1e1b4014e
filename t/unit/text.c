/*
 * Unit tests for src/bd_text.c: text rules for untrusted input.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_text.h"


#define S(s)  (s), (sizeof(s) - 1)


/*
 * Walks a whole form body into "name=value;" text; returns the last
 * bd_form_next() answer (0 after a clean walk).  The body and the decode
 * buffers are exactly as long as the body, so the sanitizer sees any
 * overrun.
 */
static int
form(const char *body, size_t len, char *out)
{
    int          rc;
    char        *copy, *name, *value;
    size_t       nlen, vlen;
    const char  *p, *end;

    /* a copy without the literal's NUL, so that reading past is caught */
    copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    name = malloc(len ? len : 1);
    value = malloc(len ? len : 1);
    *out = '\0';

    p = copy;
    end = copy + len;

    while ((rc = bd_form_next(&p, end, name, &nlen, value, &vlen)) == 1) {
        out += sprintf(out, "%.*s=%.*s;", (int) nlen, name, (int) vlen,
                       value);
    }

    free(copy);
    free(name);
    free(value);

    return rc;
}


static long
b64dec(const char *s, unsigned char *buf)
{
    return bd_base64url_decode(s, strlen(s), buf);
}


int
main(void)
{
    int             rc;
    long            n;
    char            out[256], host[300], name[64], value[64], *text;
    size_t          i, len, nlen, vlen;
    const char     *p, *end;
    unsigned char   bytes[256], back[256], *copy;
    static const unsigned char  hexin[] = { 0x00, 0x01, 0xab, 0xff };

    /* user names */

    ok(!bd_username_valid(S("ab")), "a 2-byte user name is too short");
    ok(bd_username_valid(S("abc")), "3 bytes is enough");
    ok(bd_username_valid(S("abcdefghijklmnopqrstuvwxyz012345")),
       "32 bytes is the most");
    ok(!bd_username_valid(S("abcdefghijklmnopqrstuvwxyz0123456")),
       "33 bytes is too long");
    ok(bd_username_valid(S("A.b_c-9")), "letters, digits and . _ -");
    ok(!bd_username_valid(S("ab c")), "no spaces");
    ok(!bd_username_valid(S("abc/")), "no slashes");
    ok(!bd_username_valid(S("abc@x")), "no @");
    ok(!bd_username_valid(S("ab\xc3\xa9")), "no letters beyond ASCII");
    ok(!bd_username_valid(S("ab\0c")), "no NUL inside");
    ok(bd_username_valid("abcdef", 3), "the length bounds the name");
    ok(!bd_username_valid("", 0), "an empty name");

    /* UTF-8 */

    ok(bd_utf8_valid("", 0), "empty text is UTF-8");
    ok(bd_utf8_valid(S("plain ascii")), "ASCII is UTF-8");
    ok(bd_utf8_valid(S("\x7f")), "U+007F, the last one-byte form");
    ok(bd_utf8_valid(S("\xc2\x80")), "U+0080, the first two-byte form");
    ok(bd_utf8_valid(S("\xdf\xbf")), "U+07FF, the last two-byte form");
    ok(bd_utf8_valid(S("\xe0\xa0\x80")), "U+0800, the first three-byte form");
    ok(bd_utf8_valid(S("\xed\x9f\xbf")), "U+D7FF, just below surrogates");
    ok(bd_utf8_valid(S("\xee\x80\x80")), "U+E000, just above surrogates");
    ok(bd_utf8_valid(S("\xef\xbf\xbf")), "U+FFFF, the last three-byte form");
    ok(bd_utf8_valid(S("\xf0\x90\x80\x80")), "U+10000, the first four-byte");
    ok(bd_utf8_valid(S("\xf4\x8f\xbf\xbf")), "U+10FFFF, the last code point");
    ok(bd_utf8_valid(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
       "mixed text");
    ok(bd_utf8_valid(S("a\0b")), "U+0000 is well-formed (control check "
       "is separate)");
    ok(!bd_utf8_valid(S("\xf4\x90\x80\x80")), "U+110000 is past the end");
    ok(!bd_utf8_valid(S("\xf5\x80\x80\x80")), "F5 never starts a sequence");
    ok(!bd_utf8_valid(S("\xff")), "FF never appears");
    ok(!bd_utf8_valid(S("\xc0\x80")), "overlong C0 80 (a hidden NUL)");
    ok(!bd_utf8_valid(S("\xc1\xbf")), "overlong C1 BF");
    ok(!bd_utf8_valid(S("\xe0\x80\x80")), "overlong E0 80 80");
    ok(!bd_utf8_valid(S("\xe0\x9f\xbf")), "overlong three-byte U+07FF");
    ok(!bd_utf8_valid(S("\xf0\x8f\xbf\xbf")), "overlong four-byte U+FFFF");
    ok(!bd_utf8_valid(S("\xed\xa0\x80")), "surrogate U+D800");
    ok(!bd_utf8_valid(S("\xed\xbf\xbf")), "surrogate U+DFFF");
    ok(!bd_utf8_valid(S("\x80")), "a lone continuation byte");
    ok(!bd_utf8_valid(S("a\xc2")), "truncated two-byte form at the end");
    ok(!bd_utf8_valid(S("\xe2\x82")), "truncated three-byte form");
    ok(!bd_utf8_valid(S("\xf0\x9f\x98")), "truncated four-byte form");
    ok(!bd_utf8_valid(S("\xe2\x82" "A")), "a sequence cut by ASCII");
    ok(!bd_utf8_valid(S("\xc3\xc3\xa9")), "a lead byte where a "
       "continuation belongs");
    ok(!bd_utf8_valid("\xe2\x82\xac", 2), "the length bounds the text");

    /* control characters */

    ok(!bd_has_control(S("hello, world ~")), "printable ASCII");
    ok(!bd_has_control(S("caf\xc3\xa9")), "UTF-8 bytes are not controls");
    ok(bd_has_control(S("a\0b")), "NUL");
    ok(bd_has_control(S("a\tb")), "tab");
    ok(bd_has_control(S("a\nb")), "newline");
    ok(bd_has_control(S("\x1f")), "unit separator, the last C0");
    ok(bd_has_control(S("a\x7f")), "DEL");
    ok(!bd_has_control("ab\n", 2), "the length bounds the check");
    ok(bd_has_control(S("a\xc2\x80")), "U+0080, the first C1 control");
    ok(bd_has_control(S("\xc2\x9f")), "U+009F, the last C1 control");
    ok(!bd_has_control(S("\xc2\xa0")), "U+00A0 is no control");
    ok(bd_has_control(S("a\xe2\x80\xae" "gnp.exe")),
       "U+202E right-to-left override");
    ok(bd_has_control(S("\xe2\x81\xa6x")), "U+2066 left-to-right isolate");
    ok(!bd_has_control(S("\xe2\x80\x94")), "U+2014 em dash is text");
    ok(!bd_has_control("\xe2\x80\xae", 2), "a cut override is not read past");

    /* host names */

    ok(bd_hostname_valid(S("img.example.com")), "a plain host name");
    ok(bd_hostname_valid(S("img.localhost")), "a localhost name");
    ok(bd_hostname_valid(S("a.b")), "two one-letter labels");
    ok(bd_hostname_valid(S("a--b.xn--bcher-kva.example")),
       "inner hyphens and punycode");
    ok(bd_hostname_valid(S("0.example")), "a digit label");
    ok(!bd_hostname_valid(S("localhost")), "one label is not enough");
    ok(!bd_hostname_valid(S("1.2.3.4")), "an IPv4 address is not a name");
    ok(bd_hostname_valid(S("1.2.3.example")), "digit labels before a name");
    ok(!bd_hostname_valid(S("")), "empty");
    ok(!bd_hostname_valid(S("Img.example.com")), "upper case is refused");
    ok(!bd_hostname_valid(S("-a.example")), "a label starting with '-'");
    ok(!bd_hostname_valid(S("a-.example")), "a label ending with '-'");
    ok(!bd_hostname_valid(S("a.example-")), "the last label ending with '-'");
    ok(!bd_hostname_valid(S("a..example")), "an empty label");
    ok(!bd_hostname_valid(S(".a.example")), "a leading dot");
    ok(!bd_hostname_valid(S("a.example.")), "a trailing dot");
    ok(!bd_hostname_valid(S("a_b.example")), "an underscore");
    ok(!bd_hostname_valid(S("a b.example")), "a space");
    ok(!bd_hostname_valid(S("a.example:80")), "a port");
    ok(!bd_hostname_valid(S("a.example\0")), "a NUL");
    ok(bd_hostname_valid("a.example.", 9), "the length bounds the name");

    memset(host, 'a', sizeof(host));
    host[63] = '.';
    ok(bd_hostname_valid(host, 65), "a 63-byte label");
    host[63] = 'a';
    host[64] = '.';
    ok(!bd_hostname_valid(host, 66), "a 64-byte label");

    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    memset(host, 'a', sizeof(host));
    host[63] = '.';
    host[127] = '.';
    host[191] = '.';
    ok(bd_hostname_valid(host, 253), "253 bytes in all");
    ok(!bd_hostname_valid(host, 254), "254 bytes in all");

    /* forms */

    rc = form(S("a=1&b=2"), out);
    is_int(rc, 0, "a form walks to its end");
    is_str(out, "a=1;b=2;", "pair by pair");

    rc = form(S("q=hello+world"), out);
    is_str(out, "q=hello world;", "'+' is a space");

    rc = form(S("x=%41%62%2b%2B"), out);
    is_str(out, "x=Ab++;", "%XX is a byte, either case of hex");

    rc = form(S("a%3Db=c"), out);
    is_str(out, "a=b=c;", "an encoded '=' stays in the name");

    rc = form(S("a=b=c"), out);
    is_str(out, "a=b=c;", "the first raw '=' splits, the rest is value");

    rc = form(S("&&a=1&&&b=&"), out);
    is_int(rc, 0, "empty pieces are no error");
    is_str(out, "a=1;b=;", "they are skipped; an empty value is kept");

    rc = form(S("flag&x=1"), out);
    is_str(out, "flag=;x=1;", "a pair without '=' has an empty value");

    rc = form(S("=v"), out);
    is_str(out, "=v;", "an empty name");

    rc = form(S(""), out);
    is_int(rc, 0, "an empty body has no pairs");
    is_str(out, "", "none");

    rc = form(S("&"), out);
    is_int(rc, 0, "nor has a lone '&'");

    rc = form(S("x=%zz"), out);
    is_int(rc, -1, "%zz is malformed");

    rc = form(S("x=%4"), out);
    is_int(rc, -1, "a cut escape is malformed");

    rc = form(S("x=%"), out);
    is_int(rc, -1, "a lone '%' is malformed");

    rc = form(S("%=1"), out);
    is_int(rc, -1, "a bad escape in the name too");

    rc = form(S("a=1&x=%g0&b=2"), out);
    is_int(rc, -1, "a bad pair after a good one");
    is_str(out, "a=1;", "the good one came first");

    p = "x=%zz&y=2";
    end = p + strlen(p);
    rc = bd_form_next(&p, end, name, &nlen, value, &vlen);
    is_int(rc, -1, "a malformed pair");
    rc = bd_form_next(&p, end, name, &nlen, value, &vlen);
    is_int(rc, 1, "does not stall the walk");
    is_mem(value, vlen, "2", "the next pair follows");

    p = "k=%00";
    end = p + strlen(p);
    rc = bd_form_next(&p, end, name, &nlen, value, &vlen);
    ok(rc == 1 && vlen == 1 && value[0] == '\0', "%00 decodes to a NUL byte");

    rc = form("a=1&b=2", 3, out);
    is_str(out, "a=1;", "the end pointer bounds the body");

    /* base64url: RFC 4648's vectors, minus the padding */

    len = bd_base64url_encode((const unsigned char *) "", 0, out);
    ok(len == 0 && out[0] == '\0', "base64url of nothing");
    bd_base64url_encode((const unsigned char *) "f", 1, out);
    is_str(out, "Zg", "base64url of \"f\"");
    bd_base64url_encode((const unsigned char *) "fo", 2, out);
    is_str(out, "Zm8", "base64url of \"fo\"");
    bd_base64url_encode((const unsigned char *) "foo", 3, out);
    is_str(out, "Zm9v", "base64url of \"foo\"");
    bd_base64url_encode((const unsigned char *) "foob", 4, out);
    is_str(out, "Zm9vYg", "base64url of \"foob\"");
    bd_base64url_encode((const unsigned char *) "fooba", 5, out);
    is_str(out, "Zm9vYmE", "base64url of \"fooba\"");
    len = bd_base64url_encode((const unsigned char *) "foobar", 6, out);
    is_str(out, "Zm9vYmFy", "base64url of \"foobar\"");
    is_int(len, 8, "returns the length written");

    bd_base64url_encode((const unsigned char *) "\xfb\xff", 2, out);
    is_str(out, "-_8", "the URL alphabet: '-' and '_', not '+' and '/'");

    is_int(bd_base64url_len(0), 0, "length of 0 bytes");
    is_int(bd_base64url_len(1), 2, "length of 1 byte");
    is_int(bd_base64url_len(2), 3, "length of 2 bytes");
    is_int(bd_base64url_len(3), 4, "length of 3 bytes");
    is_int(bd_base64url_len(16), 22, "length of 16 bytes");
    is_int(bd_base64url_len(32), 43, "length of 32 bytes");

    n = b64dec("Zm9vYmFy", back);
    is_mem((char *) back, n, "foobar", "decodes \"Zm9vYmFy\"");
    n = b64dec("Zm9vYmE", back);
    is_mem((char *) back, n, "fooba", "decodes two trailing bytes");
    n = b64dec("Zm9vYg", back);
    is_mem((char *) back, n, "foob", "decodes one trailing byte");
    n = b64dec("-_8", back);
    ok(n == 2 && back[0] == 0xfb && back[1] == 0xff, "decodes '-' and '_'");
    is_int(b64dec("", back), 0, "decodes nothing");

    is_int(b64dec("Zm9vY", back), -1, "a length of 4k + 1 is impossible");
    is_int(b64dec("Z", back), -1, "one character is impossible");
    is_int(b64dec("Zg==", back), -1, "padding is refused");
    is_int(b64dec("Zm+v", back), -1, "'+' is not base64url");
    is_int(b64dec("Zm/v", back), -1, "'/' is not base64url");
    is_int(b64dec("Zm9 v", back), -1, "nor is a space");
    is_int(bd_base64url_decode("Zm\0v", 4, back), -1, "nor is NUL");
    is_int(b64dec("Zh", back), -1, "stray low bits after one byte");
    is_int(b64dec("Zm9", back), -1, "stray low bits after two bytes");

    for (i = 0; i < sizeof(bytes); i++) {
        bytes[i] = (unsigned char) (i * 151 + 7);
    }

    rc = 1;

    /* exact-size buffers, so that any overrun is caught */
    for (len = 0; len <= 67; len++) {
        text = malloc(bd_base64url_len(len) + 1);
        copy = malloc(len ? len : 1);

        if (bd_base64url_encode(bytes, len, text) != bd_base64url_len(len)
            || bd_base64url_decode(text, strlen(text), copy) != (long) len
            || memcmp(copy, bytes, len) != 0)
        {
            rc = 0;
        }

        free(text);
        free(copy);
    }

    ok(rc, "round trips of 0..67 bytes");

    for (i = 0; i < 256; i++) {
        bytes[i] = (unsigned char) i;
    }

    text = malloc(bd_base64url_len(256) + 1);
    bd_base64url_encode(bytes, 256, text);
    n = bd_base64url_decode(text, strlen(text), back);
    ok(n == 256 && memcmp(back, bytes, 256) == 0, "every byte value");
    ok(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_") == strlen(text),
       "all in the URL alphabet");
    free(text);

    /* hex */

    bd_hex_encode(hexin, sizeof(hexin), out);
    is_str(out, "0001abff", "lower-case hex");
    bd_hex_encode(hexin, 0, out);
    is_str(out, "", "hex of nothing");

    /* cookies */

    {
        static const char  *h = "a=1; bd_session=tok.en ;BD_SESSION=x;"
                                "  bd=2;bd_session2=y; bd_session";
        const char         *v;
        size_t              vl;

        ok(bd_cookie_find(h, strlen(h), "bd_session", 10, &v, &vl) == 1
           && vl == 6 && memcmp(v, "tok.en", 6) == 0,
           "a cookie among others, trimmed; names are case-sensitive");
        ok(bd_cookie_find(h, strlen(h), "bd", 2, &v, &vl) == 1
           && vl == 1 && *v == '2', "a name that prefixes others");
        ok(bd_cookie_find(h, strlen(h), "nope", 4, &v, &vl) == 0,
           "absent: 0");
        ok(bd_cookie_find("x=1; x=2", 8, "x", 1, &v, &vl) == 2
           && vl == 1 && *v == '1', "twice: 2, and the first's value");
        ok(bd_cookie_find("x=", 2, "x", 1, &v, &vl) == 1 && vl == 0,
           "an empty value");
        ok(bd_cookie_find("x=\"q\"", 5, "x", 1, &v, &vl) == 1 && vl == 3,
           "quotes are the value's");
        ok(bd_cookie_find("", 0, "x", 1, &v, &vl) == 0, "an empty header");
    }

    return tap_done();
}
