/*
 * Unit tests for src/bd_deliver.c: public paths, the id's limited mark,
 * how types are served, Content-Disposition, X-BulletDrop-Expires and
 * -Max-Views, and HTML escaping.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_deliver.h"


#define S(s)  (s), (sizeof(s) - 1)

/* 2026-01-01T00:00:00Z, the clock of most expiry tests */
#define NOW  1767225600000LL

#define ID   "AbCdEfGh_-012345"

#define TEXT    "text/plain; charset=utf-8"
#define OCTETS  "application/octet-stream"


/* an exact-size copy, so that the sanitizer sees a read past the end */
static char *
copy(const char *s, size_t len)
{
    char  *c;

    c = malloc(len ? len : 1);
    memcpy(c, s, len);

    return c;
}


static int
path(const char *uri, size_t len)
{
    int                 rc;
    char               *c;
    bd_deliver_path_t   p;

    c = copy(uri, len);
    rc = bd_deliver_path(c, len, &p);
    free(c);

    return rc;
}


/* 1 when uri is a path of that category, id and extension */
static int
path_is(const char *uri, size_t len, const char *cat, const char *ext)
{
    int                 rc;
    char               *c;
    bd_deliver_path_t   p;

    c = copy(uri, len);

    rc = bd_deliver_path(c, len, &p) == 0
         && p.category == c + 8
         && p.category_len == strlen(cat)
         && memcmp(p.category, cat, p.category_len) == 0
         && p.id == c + 8 + strlen(cat) + 1
         && memcmp(p.id, ID, BD_DELIVER_ID_LEN) == 0
         && p.ext == p.id + BD_DELIVER_ID_LEN + 1
         && p.ext_len == strlen(ext)
         && memcmp(p.ext, ext, p.ext_len) == 0;

    free(c);

    return rc;
}


/* "(type) inline|attachment text|-" for an extension */
static const char *
type(const char *ext, size_t len)
{
    char               *c;
    bd_deliver_type_t   t;
    static char         out[128];

    c = copy(ext, len);
    memset(&t, 0, sizeof(t));
    bd_deliver_type(c, len, &t);
    free(c);

    snprintf(out, sizeof(out), "%s %s %s", t.content_type,
             t.inline_ok ? "inline" : "attachment", t.text ? "text" : "-");

    return out;
}


/*
 * bd_deliver_disposition() on an exact-size copy of the name, into a
 * buffer of exactly the size it asks for; the answer is static.
 */
static const char *
disp(int inline_ok, const char *name, size_t len)
{
    char         *c, *o;
    size_t        n, m;
    static char   out[4096];

    c = copy(name, len);

    n = bd_deliver_disposition(inline_ok, c, len, NULL, 0);
    o = malloc(n + 1);
    m = bd_deliver_disposition(inline_ok, c, len, o, n + 1);

    if (m != n || strlen(o) != n || n + 1 > sizeof(out)) {
        strcpy(out, "(wrong length)");

    } else {
        strcpy(out, o);
    }

    free(c);
    free(o);

    return out;
}


static int
expiry(const char *s, size_t len, int64_t now, int64_t *at)
{
    int    rc;
    char  *c;

    c = copy(s, len);
    rc = bd_expiry_parse(c, len, now, at);
    free(c);

    return rc;
}


/* the expiry when it is OK, else the result code */
static int64_t
expiry_at(const char *s, size_t len, int64_t now)
{
    int      rc;
    int64_t  at;

    at = -100;
    rc = expiry(s, len, now, &at);

    return rc == BD_EXPIRY_OK ? at : rc;
}


/* the views when they parse, else -1 (with *views unchanged) */
static long
views(const char *s, size_t len)
{
    int      rc;
    char    *c;
    int32_t  v;

    c = copy(s, len);
    v = -7;
    rc = bd_max_views_parse(c, len, &v);
    free(c);

    if (rc != 0) {
        return v == -7 ? -1 : -2;
    }

    return v;
}


static const char *
esc(const char *s, size_t len)
{
    char         *c, *o;
    size_t        n;
    static char   out[4096];

    c = copy(s, len);
    o = malloc(len ? bd_html_escape_len(len) : 1);

    n = bd_html_escape(c, len, o);
    memcpy(out, o, n);
    out[n] = '\0';

    free(c);
    free(o);

    return out;
}


static int
b64_index(char ch)
{
    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    return (int) (strchr(alphabet, ch) - alphabet);
}


int
main(void)
{
    int                 i, b, bad_set, bad_clear, bad_read, bad_kept;
    int                 bad_head, bad_safe;
    char                name[255], buf[BD_DELIVER_DISPOSITION_MAX];
    char               *id;
    size_t              n, k, max;
    int64_t             at;
    bd_deliver_type_t   t;
    static const char   alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char  *texts[] = {
        "txt", "md", "markdown", "log", "csv", "tsv", "json", "yaml", "yml",
        "toml", "ini", "conf", "cfg", "c", "h", "cc", "cpp", "hpp", "py",
        "rb", "go", "rs", "java", "kt", "js", "mjs", "ts", "tsx", "jsx",
        "css", "scss", "sql", "sh", "bash", "zsh", "diff", "patch", "srt",
        "vtt", "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl",
        "xslt", "rss", "atom", NULL
    };

    /* public paths */

    ok(path_is(S("/static/images/" ID ".png"), "images", "png"),
       "an image's path");
    ok(path_is(S("/static/documents/" ID ".pdf"), "documents", "pdf"),
       "a document's path");
    ok(path_is(S("/static/other/" ID ".0123456789abcdef"), "other",
               "0123456789abcdef"), "another's, with a 16-byte extension");
    ok(path_is(S("/static/other/" ID ".x"), "other", "x"),
       "a 1-byte extension");
    ok(path_is("/static/images/" ID ".png/", 35, "images", "png"),
       "the length bounds the path");
    is_int(path(S("/static/images/----------------.mp4")), 0,
           "an id of '-' only");
    is_int(path(S("/static/images/________________.mp4")), 0,
           "or of '_' only");

    is_int(path(S("/static/.tmp/x")), -1, "the temp directory is not one");
    is_int(path(S("/static/.tmp/" ID ".png")), -1, "even with a file name");
    is_int(path(S("//")), -1, "\"//\"");
    is_int(path(S("")), -1, "\"\"");
    is_int(path(S("/")), -1, "\"/\"");
    is_int(path(S("/static/")), -1, "\"/static/\"");
    is_int(path(S("/static/images")), -1, "a category alone");
    is_int(path(S("/static/images/")), -1, "a category's directory");
    is_int(path(S("/static/images/../../etc/passwd")), -1, "\"..\"");
    is_int(path(S("/static/images/..")), -1, "\"..\" alone");
    is_int(path(S("/static/images/" ID "/../x.png")), -1,
           "\"..\" after an id");
    is_int(path(S("/static/images/../" ID ".png")), -1,
           "\"..\" before one");
    is_int(path(S("/static/images/AbCdEfGh_-01234.png")), -1,
           "a 15-byte id");
    is_int(path(S("/static/images/AbCdEfGh_-0123456.png")), -1,
           "a 17-byte id");
    is_int(path(S("/static/images/AbCdEfGh+/012345.png")), -1,
           "an id in standard base64");
    is_int(path(S("/static/images/AbCdEfGh.-012345.png")), -1,
           "a dot in the id");
    is_int(path(S("/static/images/" ID ".PNG")), -1,
           "an upper-case extension");
    is_int(path(S("/static/images/" ID ".Png")), -1, "a mixed-case one");
    is_int(path(S("/static/images/" ID ".")), -1, "an empty extension");
    is_int(path(S("/static/images/" ID)), -1, "no extension");
    is_int(path(S("/static/images/" ID ".0123456789abcdefg")), -1,
           "a 17-byte extension");
    is_int(path(S("/static/images/" ID ".tar.gz")), -1,
           "a dot in the extension");
    is_int(path(S("/static/images/" ID ".p_g")), -1, "an '_' in it");
    is_int(path(S("/static/images/" ID ".png/")), -1, "a trailing slash");
    is_int(path(S("/static/images/" ID ".png?x=1")), -1, "a query");
    is_int(path(S("/static/images/" ID ".png\0")), -1, "a NUL after it");
    is_int(path(S("/static/images/" ID ".png ")), -1, "a space after it");
    is_int(path(S("/static/images//" ID ".png")), -1, "a doubled slash");
    is_int(path(S("//static/images/" ID ".png")), -1, "a leading one");
    is_int(path(S("/static//images/" ID ".png")), -1, "another");
    is_int(path(S("/static/image/" ID ".png")), -1, "an unknown category");
    is_int(path(S("/static/imagesx/" ID ".png")), -1,
           "a category's prefix does not make one");
    is_int(path(S("/static/Images/" ID ".png")), -1, "nor its case");
    is_int(path(S("/static/images/x/" ID ".png")), -1,
           "a directory in between");
    is_int(path(S("/Static/images/" ID ".png")), -1, "\"/Static/\"");
    is_int(path(S("static/images/" ID ".png")), -1, "no leading slash");
    is_int(path(S("/files/images/" ID ".png")), -1, "not under /static/");

    /* the id's limited mark */

    bad_set = bad_clear = bad_read = bad_kept = bad_head = 0;
    id = malloc(BD_DELIVER_ID_LEN);

    for (i = 0; i < 64; i++) {
        memcpy(id, "AAAAAAAAAAAAAAA", BD_DELIVER_ID_LEN - 1);
        id[BD_DELIVER_ID_LEN - 1] = alphabet[i];

        if (bd_deliver_id_limited(id) != (i & 1)) {
            printf("# limited('%c') is %d\n", alphabet[i],
                   bd_deliver_id_limited(id));
            bad_read++;
        }

        bd_deliver_id_mark(id, 1);

        if (bd_deliver_id_limited(id) != 1) {
            bad_set++;
        }

        if (b64_index(id[BD_DELIVER_ID_LEN - 1]) >> 1 != i >> 1) {
            bad_kept++;
        }

        bd_deliver_id_mark(id, 0);

        if (bd_deliver_id_limited(id) != 0) {
            bad_clear++;
        }

        if (b64_index(id[BD_DELIVER_ID_LEN - 1]) != (i & ~1)) {
            bad_kept++;
        }

        bd_deliver_id_mark(id, 5);

        if (b64_index(id[BD_DELIVER_ID_LEN - 1]) != (i | 1)) {
            bad_kept++;
        }

        if (memcmp(id, "AAAAAAAAAAAAAAA", BD_DELIVER_ID_LEN - 1) != 0) {
            bad_head++;
        }
    }

    is_int(bad_read, 0, "limited() is the low bit of each character's index");
    is_int(bad_set, 0, "mark(1) makes each of the 64 limited");
    is_int(bad_clear, 0, "mark(0) makes each unlimited");
    is_int(bad_kept, 0, "the other five bits stay");
    is_int(bad_head, 0, "and the first 15 characters");

    memcpy(id, "AAAAAAAAAAAAAAA_", BD_DELIVER_ID_LEN);
    is_int(bd_deliver_id_limited(id), 1, "'_' (63) is limited");
    bd_deliver_id_mark(id, 0);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAA-", "unmarked it is '-'");
    bd_deliver_id_mark(id, 0);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAA-", "unmarked again too");

    memcpy(id, "AAAAAAAAAAAAAAAA", BD_DELIVER_ID_LEN);
    is_int(bd_deliver_id_limited(id), 0, "'A' (0) is not");
    bd_deliver_id_mark(id, 1);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAAB", "marked it is 'B'");

    memcpy(id, "AAAAAAAAAAAAAAAZ", BD_DELIVER_ID_LEN);
    is_int(bd_deliver_id_limited(id), 1, "'Z' (25) is limited");
    bd_deliver_id_mark(id, 0);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAAY", "unmarked it is 'Y'");

    memcpy(id, "AAAAAAAAAAAAAAAz", BD_DELIVER_ID_LEN);
    bd_deliver_id_mark(id, 0);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAAy",
           "'z' (51) unmarked: 'y'");

    memcpy(id, "AAAAAAAAAAAAAAA9", BD_DELIVER_ID_LEN);
    bd_deliver_id_mark(id, 0);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAA8",
           "'9' (61) unmarked: '8'");

    memcpy(id, "AAAAAAAAAAAAAAA.", BD_DELIVER_ID_LEN);
    is_int(bd_deliver_id_limited(id), 0, "a character outside: not limited");
    bd_deliver_id_mark(id, 1);
    is_mem(id, BD_DELIVER_ID_LEN, "AAAAAAAAAAAAAAA.", "and left alone");

    memcpy(id, "_______________A", BD_DELIVER_ID_LEN);
    is_int(bd_deliver_id_limited(id), 0, "only the last character counts");

    free(id);

    /* how types are served */

    is_str(type(S("jpg")), "image/jpeg inline -", "jpg");
    is_str(type(S("jpeg")), "image/jpeg inline -", "jpeg");
    is_str(type(S("png")), "image/png inline -", "png");
    is_str(type(S("gif")), "image/gif inline -", "gif");
    is_str(type(S("webp")), "image/webp inline -", "webp");
    is_str(type(S("avif")), "image/avif inline -", "avif");
    is_str(type(S("bmp")), "image/bmp inline -", "bmp");
    is_str(type(S("ico")), "image/x-icon inline -", "ico");
    is_str(type(S("mp4")), "video/mp4 inline -", "mp4");
    is_str(type(S("webm")), "video/webm inline -", "webm");
    is_str(type(S("mov")), "video/quicktime inline -", "mov");
    is_str(type(S("m4v")), "video/x-m4v inline -", "m4v");
    is_str(type(S("ogv")), "video/ogg inline -", "ogv");
    is_str(type(S("mkv")), "video/x-matroska inline -", "mkv");
    is_str(type(S("pdf")), "application/pdf inline -", "pdf");

    is_str(type(S("txt")), TEXT " inline text", "txt is text");
    is_str(type(S("svg")), TEXT " inline text", "svg is shown as text");
    is_str(type(S("svgz")), TEXT " inline text", "so is svgz");
    is_str(type(S("html")), TEXT " inline text", "and html");
    is_str(type(S("xhtml")), TEXT " inline text", "and xhtml");
    is_str(type(S("xml")), TEXT " inline text", "and xml");
    is_str(type(S("js")), TEXT " inline text", "and js");
    is_str(type(S("css")), TEXT " inline text", "and css");
    is_str(type(S("c")), TEXT " inline text", "and a 1-byte one, c");

    for (i = 0; texts[i]; i++) {
        if (strcmp(type(texts[i], strlen(texts[i])), TEXT " inline text")
            != 0)
        {
            printf("# %s: %s\n", texts[i], type(texts[i], strlen(texts[i])));
            break;
        }
    }

    ok(texts[i] == NULL, "every text and source type is text");

    is_str(type(S("zip")), OCTETS " attachment -", "zip is a download");
    is_str(type(S("mp3")), OCTETS " attachment -", "mp3 too");
    is_str(type(S("exe")), OCTETS " attachment -", "exe too");
    is_str(type(S("swf")), OCTETS " attachment -", "swf too");
    is_str(type(S("xyz")), OCTETS " attachment -", "an unknown one too");
    is_str(type(S("")), OCTETS " attachment -", "no extension too");
    is_str(type(S("PNG")), OCTETS " attachment -", "an upper-case one too");
    is_str(type(S("SVG")), OCTETS " attachment -", "SVG too");
    is_str(type(S("pngx")), OCTETS " attachment -", "no prefix match");
    is_str(type(S("pn")), OCTETS " attachment -", "nor a shorter one");
    is_str(type(S("svg ")), OCTETS " attachment -", "nor with a space");
    is_str(type(S("html\0")), OCTETS " attachment -", "nor with a NUL");
    is_str(type("pngx", 3), "image/png inline -",
           "the length bounds the extension");

    memset(&t, 0xff, sizeof(t));
    bd_deliver_type(NULL, 0, &t);
    ok(strcmp(t.content_type, OCTETS) == 0 && !t.inline_ok && !t.text,
       "NULL, 0 is a download, every field set");

    /* Content-Disposition */

    is_str(disp(1, S("photo.png")), "inline; filename=\"photo.png\"",
           "an ASCII name inline");
    is_str(disp(0, S("report 2024 (v2).zip")),
           "attachment; filename=\"report 2024 (v2).zip\"",
           "as an attachment, spaces and parentheses kept");
    is_str(disp(1, S("a;b=c,d'e.txt")),
           "inline; filename=\"a;b=c,d'e.txt\"",
           "';' '=' ',' and \"'\" are safe in the quotes");
    is_str(disp(1, S("say \"hi\".txt")),
           "inline; filename=\"say _hi_.txt\"; "
           "filename*=UTF-8''say%20%22hi%22.txt",
           "quotes become '_', and the name goes in filename*");
    is_str(disp(1, S("a\\b.txt")),
           "inline; filename=\"a_b.txt\"; filename*=UTF-8''a%5Cb.txt",
           "a backslash too");
    is_str(disp(0, S("100%.txt")),
           "attachment; filename=\"100%.txt\"; filename*=UTF-8''100%25.txt",
           "a '%' stays but brings filename*");
    is_str(disp(1, S("r\xc3\xa9sum\xc3\xa9.pdf")),
           "inline; filename=\"r_sum_.pdf\"; "
           "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
           "UTF-8: one '_' a character, percent-encoded in filename*");
    is_str(disp(1, S("\xe2\x82\xac\xf0\x9f\x98\x80.png")),
           "inline; filename=\"__.png\"; "
           "filename*=UTF-8''%E2%82%AC%F0%9F%98%80.png",
           "three- and four-byte characters");
    is_str(disp(1, S("a\x80" "b\xbf")),
           "inline; filename=\"a_b_\"; filename*=UTF-8''a%80b%BF",
           "a continuation byte without a lead is '_' itself");
    is_str(disp(1, S("\xc3\xa9\xa9")),
           "inline; filename=\"__\"; filename*=UTF-8''%C3%A9%A9",
           "one more than the lead announces too");
    is_str(disp(1, S("\xff\xfe")),
           "inline; filename=\"__\"; filename*=UTF-8''%FF%FE",
           "bytes that are never UTF-8 are '_' each");
    is_str(disp(0, S("a\r\nSet-Cookie: x=1")),
           "attachment; filename=\"a__Set-Cookie: x=1\"; "
           "filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1",
           "CR and LF cannot split the header");
    is_str(disp(0, S("a\0b\x7f\tc")),
           "attachment; filename=\"a_b__c\"; filename*=UTF-8''a%00b%7F%09c",
           "nor NUL, DEL or a tab");
    is_str(disp(1, S("\xc3\xa9!#$&+-.^_`|~ '()*,/:;<=>?@[]{}")),
           "inline; filename=\"_!#$&+-.^_`|~ '()*,/:;<=>?@[]{}\"; "
           "filename*=UTF-8''%C3%A9!#$&+-.^_`|~%20%27%28%29%2A%2C%2F%3A%3B"
           "%3C%3D%3E%3F%40%5B%5D%7B%7D",
           "attr-chars stay in filename*, the rest is encoded");
    is_str(disp(1, "", 0), "inline", "no name: inline alone");
    is_str(disp(0, "", 0), "attachment", "attachment alone");

    n = bd_deliver_disposition(1, S("r\xc3\xa9sum\xc3\xa9.pdf"), NULL, 0);
    is_int(n, strlen("inline; filename=\"r_sum_.pdf\"; "
                     "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"),
           "NULL and 0: the length it needs");

    memset(buf, 'x', sizeof(buf));
    k = bd_deliver_disposition(1, S("r\xc3\xa9sum\xc3\xa9.pdf"), buf, n);
    ok(k == n && buf[0] == '\0' && buf[n] == 'x',
       "one byte too few: the length, an empty string, nothing past it");

    k = bd_deliver_disposition(1, S("r\xc3\xa9sum\xc3\xa9.pdf"), buf, 1);
    ok(k == n && buf[0] == '\0', "one byte: the length and \"\"");

    k = bd_deliver_disposition(1, S("r\xc3\xa9sum\xc3\xa9.pdf"), buf, n + 1);
    ok(k == n && strlen(buf) == n, "exactly enough: all of it");

    /* the worst name of each byte: 255 of it, as an attachment */

    max = 0;
    bad_safe = 0;

    for (b = 0; b < 256; b++) {
        memset(name, b, sizeof(name));
        n = bd_deliver_disposition(0, name, sizeof(name), buf, sizeof(buf));
        max = n > max ? n : max;

        for (k = 0; k < n; k++) {
            if (buf[k] < 0x20 || buf[k] > 0x7e) {
                break;
            }
        }

        if (n >= sizeof(buf) || k < n || buf[n] != '\0') {
            printf("# byte 0x%02x\n", b);
            bad_safe++;
        }
    }

    is_int(bad_safe, 0, "255 of any byte: printable ASCII only, and fits");
    is_int(max, 22 + 255 + 1 + 19 + 3 * 255,
           "the longest: 255 quotes, as computed for the buffer");
    ok(max + 1 <= BD_DELIVER_DISPOSITION_MAX,
       "BD_DELIVER_DISPOSITION_MAX holds it");

    /* X-BulletDrop-Expires: durations */

    is_int(expiry_at(S("10m"), NOW), NOW + 600000, "10m");
    is_int(expiry_at(S("1s"), NOW), NOW + 1000, "1s");
    is_int(expiry_at(S("3h"), NOW), NOW + 3 * 3600000LL, "3h");
    is_int(expiry_at(S("7d"), NOW), NOW + 7 * 86400000LL, "7d");
    is_int(expiry_at(S("2w"), NOW), NOW + 14 * 86400000LL, "2w");
    is_int(expiry_at(S("10M"), NOW), NOW + 600000, "10M: upper case too");
    is_int(expiry_at(S("7D"), NOW), NOW + 7 * 86400000LL, "7D");
    is_int(expiry_at(S("010m"), NOW), NOW + 600000, "a leading zero");
    is_int(expiry_at(S(" \t10m\t "), NOW), NOW + 600000,
           "spaces and tabs around");
    is_int(expiry_at(S("3650d"), NOW), NOW + BD_EXPIRY_MAX_MS,
           "3650d: the most");
    is_int(expiry_at(S("315360000s"), NOW), NOW + BD_EXPIRY_MAX_MS,
           "in seconds too");
    is_int(expiry_at(S("521w"), NOW), NOW + 521 * 7 * 86400000LL, "521w");
    is_int(expiry_at(S("000000000001s"), NOW), NOW + 1000, "12 digits");

    is_int(expiry_at(S("3651d"), NOW), BD_EXPIRY_TOO_FAR, "3651d: too far");
    is_int(expiry_at(S("315360001s"), NOW), BD_EXPIRY_TOO_FAR,
           "a second past ten years");
    is_int(expiry_at(S("522w"), NOW), BD_EXPIRY_TOO_FAR, "522w");
    is_int(expiry_at(S("999999999999w"), NOW), BD_EXPIRY_TOO_FAR,
           "12 digits of weeks: too far, not an overflow");
    is_int(expiry_at(S("999999999999s"), NOW), BD_EXPIRY_TOO_FAR,
           "12 digits of seconds");

    is_int(expiry_at(S("0s"), NOW), BD_EXPIRY_INVALID, "0s is invalid");
    is_int(expiry_at(S("000w"), NOW), BD_EXPIRY_INVALID, "000w too");
    is_int(expiry_at(S("1000000000000s"), NOW), BD_EXPIRY_INVALID,
           "13 digits");
    is_int(expiry_at(S("5x"), NOW), BD_EXPIRY_INVALID, "5x");
    is_int(expiry_at(S("-5m"), NOW), BD_EXPIRY_INVALID, "-5m");
    is_int(expiry_at(S("+5m"), NOW), BD_EXPIRY_INVALID, "+5m");
    is_int(expiry_at(S("5"), NOW), BD_EXPIRY_INVALID, "no unit");
    is_int(expiry_at(S("600"), NOW), BD_EXPIRY_INVALID, "digits alone");
    is_int(expiry_at(S("m"), NOW), BD_EXPIRY_INVALID, "a unit alone");
    is_int(expiry_at(S("5 m"), NOW), BD_EXPIRY_INVALID, "a space inside");
    is_int(expiry_at(S("5mm"), NOW), BD_EXPIRY_INVALID, "two units");
    is_int(expiry_at(S("1h30m"), NOW), BD_EXPIRY_INVALID, "two parts");
    is_int(expiry_at(S("1.5h"), NOW), BD_EXPIRY_INVALID, "a fraction");
    is_int(expiry_at(S("5ms"), NOW), BD_EXPIRY_INVALID, "ms");
    is_int(expiry_at(S("10m\0"), NOW), BD_EXPIRY_INVALID, "a NUL after");
    is_int(expiry_at(S(""), NOW), BD_EXPIRY_INVALID, "nothing");
    is_int(expiry_at(S(" \t "), NOW), BD_EXPIRY_INVALID, "only blanks");

    /* never */

    at = 42;
    is_int(expiry(S("never"), NOW, &at), BD_EXPIRY_NEVER, "never");
    is_int(at, 42, "leaves the time alone");
    is_int(expiry(S("NEVER"), NOW, &at), BD_EXPIRY_NEVER, "NEVER");
    is_int(expiry(S("Never"), NOW, &at), BD_EXPIRY_NEVER, "Never");
    is_int(expiry(S(" never\t"), NOW, &at), BD_EXPIRY_NEVER, "with blanks");
    is_int(expiry(S("neve"), NOW, &at), BD_EXPIRY_INVALID, "neve");
    is_int(expiry(S("nevers"), NOW, &at), BD_EXPIRY_INVALID, "nevers");
    is_int(expiry(S("ne ver"), NOW, &at), BD_EXPIRY_INVALID, "ne ver");
    is_int(at, 42, "nor does a refusal touch it");

    /* RFC 3339 */

    is_int(expiry_at(S("2026-11-25T12:00:00Z"), NOW), 1795608000000LL,
           "2026-11-25T12:00:00Z");
    is_int(expiry_at(S("2026-11-25t12:00:00z"), NOW), 1795608000000LL,
           "lower-case t and z");
    is_int(expiry_at(S("2026-11-25 12:00:00Z"), NOW), 1795608000000LL,
           "a space for the T");
    is_int(expiry_at(S("  2026-11-25T12:00:00Z\t"), NOW), 1795608000000LL,
           "blanks around");
    is_int(expiry_at(S("2026-11-25T12:00:00+00:00"), NOW), 1795608000000LL,
           "+00:00");
    is_int(expiry_at(S("2026-11-25T12:00:00-00:00"), NOW), 1795608000000LL,
           "-00:00");
    is_int(expiry_at(S("2026-11-25T12:00:00+05:30"), NOW), 1795588200000LL,
           "+05:30 is 5h30 earlier in UTC");
    is_int(expiry_at(S("2026-11-25T12:00:00-08:00"), NOW), 1795636800000LL,
           "-08:00 is 8h later");
    is_int(expiry_at(S("2026-11-25T12:00:00.5Z"), NOW), 1795608000500LL,
           "a tenth");
    is_int(expiry_at(S("2026-11-25T12:00:00.05Z"), NOW), 1795608000050LL,
           "a hundredth");
    is_int(expiry_at(S("2026-11-25T12:00:00.123Z"), NOW), 1795608000123LL,
           "milliseconds");
    is_int(expiry_at(S("2026-11-25T12:00:00.123456789Z"), NOW),
           1795608000123LL, "nanoseconds are cut to milliseconds");
    is_int(expiry_at(S("2026-11-25T12:00:00.999999999+05:30"), NOW),
           1795588200999LL, "not rounded, with an offset");
    is_int(expiry_at(S("2026-11-25T23:59:59Z"), NOW), 1795651199000LL,
           "23:59:59");
    is_int(expiry_at(S("2026-11-25T23:59:60Z"), NOW), 1795651199999LL,
           "23:59:60, a leap second, is 23:59:59.999");
    is_int(expiry_at(S("2026-11-25T23:59:60.5Z"), NOW), 1795651199999LL,
           "with a fraction too");
    is_int(expiry_at(S("2026-04-30T00:00:00Z"), NOW), 1777507200000LL,
           "April 30th");
    is_int(expiry_at(S("2026-03-01T00:00:00Z"), NOW), 1772323200000LL,
           "March 1st of a common year");
    is_int(expiry_at(S("2028-02-29T00:00:00Z"), NOW), 1835395200000LL,
           "February 29th, 2028");
    is_int(expiry_at(S("2024-02-29T00:00:00Z"), 1704067200000LL),
           1709164800000LL, "February 29th, 2024");
    is_int(expiry_at(S("2000-03-01T00:00:00Z"), 946684800000LL),
           951868800000LL, "2000 was a leap year");
    is_int(expiry_at(S("2000-02-29T00:00:00Z"), 946684800000LL),
           951782400000LL, "its February 29th");
    is_int(expiry_at(S("2100-03-01T00:00:00Z"), 4102444800000LL),
           4107542400000LL, "2100 will not be");
    is_int(expiry_at(S("1970-01-01T00:00:00.001Z"), 0), 1,
           "the epoch's first millisecond");
    is_int(expiry_at(S("9999-12-31T23:59:59Z"), 253370764800000LL),
           253402300799000LL, "the last second of 9999");

    is_int(expiry_at(S("2023-02-29T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "no February 29th in 2023");
    is_int(expiry_at(S("2100-02-29T00:00:00Z"), 4102444800000LL),
           BD_EXPIRY_INVALID, "nor in 2100");
    is_int(expiry_at(S("2028-02-30T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "nor a 30th");
    is_int(expiry_at(S("2026-04-31T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "April 31st");
    is_int(expiry_at(S("2026-12-32T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "December 32nd");
    is_int(expiry_at(S("2026-12-00T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "day 0");
    is_int(expiry_at(S("2026-13-01T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "month 13");
    is_int(expiry_at(S("2026-00-01T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "month 0");
    is_int(expiry_at(S("2026-11-25T24:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "24:00");
    is_int(expiry_at(S("2026-11-25T12:60:00Z"), NOW), BD_EXPIRY_INVALID,
           "minute 60");
    is_int(expiry_at(S("2026-11-25T12:00:61Z"), NOW), BD_EXPIRY_INVALID,
           "second 61");
    is_int(expiry_at(S("2026-11-25T12:00:00+24:00"), NOW), BD_EXPIRY_INVALID,
           "offset +24:00");
    is_int(expiry_at(S("2026-11-25T12:00:00+05:60"), NOW), BD_EXPIRY_INVALID,
           "offset minute 60");
    is_int(expiry_at(S("2026-11-25T12:00:00+0530"), NOW), BD_EXPIRY_INVALID,
           "an offset without its colon");
    is_int(expiry_at(S("2026-11-25T12:00:00+05"), NOW), BD_EXPIRY_INVALID,
           "an offset in hours alone");
    is_int(expiry_at(S("2026-11-25T12:00:00+05:3"), NOW), BD_EXPIRY_INVALID,
           "a short offset");
    is_int(expiry_at(S("2026-11-25T12:00:00+05:300"), NOW),
           BD_EXPIRY_INVALID, "a long one");
    is_int(expiry_at(S("2026-11-25T12:00:00"), NOW), BD_EXPIRY_INVALID,
           "no zone");
    is_int(expiry_at(S("2026-11-25T12:00:00ZZ"), NOW), BD_EXPIRY_INVALID,
           "something after it");
    is_int(expiry_at(S("2026-11-25T12:00:00 Z"), NOW), BD_EXPIRY_INVALID,
           "a space before it");
    is_int(expiry_at(S("2026-11-25T12:00:00.Z"), NOW), BD_EXPIRY_INVALID,
           "a dot and no fraction");
    is_int(expiry_at(S("2026-11-25T12:00:00.1234567890Z"), NOW),
           BD_EXPIRY_INVALID, "ten digits of fraction");
    is_int(expiry_at(S("2026-11-25T12:00:00,5Z"), NOW), BD_EXPIRY_INVALID,
           "a decimal comma");
    is_int(expiry_at(S("2026-11-25T12:00Z"), NOW), BD_EXPIRY_INVALID,
           "no seconds");
    is_int(expiry_at(S("2026-11-25"), NOW), BD_EXPIRY_INVALID, "a date alone");
    is_int(expiry_at(S("2026-1-25T12:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "a one-digit month");
    is_int(expiry_at(S("2026-11-25X12:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "an X for the T");
    is_int(expiry_at(S("2026-11-25  12:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "two spaces for it");
    is_int(expiry_at(S("2026/11/25T12:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "slashes");
    is_int(expiry_at(S("2026-11-25T12-00-00Z"), NOW), BD_EXPIRY_INVALID,
           "dashes in the time");
    is_int(expiry_at(S("+026-11-25T12:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "a sign in the year");
    is_int(expiry_at(S("1969-12-31T23:59:59Z"), 0), BD_EXPIRY_INVALID,
           "1969");
    is_int(expiry_at(S("10000-01-01T00:00:00Z"), NOW), BD_EXPIRY_INVALID,
           "year 10000");
    is_int(expiry_at(S("2026-11-25T12:00:00Z\0"), NOW), BD_EXPIRY_INVALID,
           "a NUL after it");

    /* the window: after now, at most ten years on */

    is_int(expiry_at(S("2025-12-31T23:59:59Z"), NOW), BD_EXPIRY_PAST,
           "a second before now: past");
    is_int(expiry_at(S("2026-01-01T00:00:00Z"), NOW), BD_EXPIRY_PAST,
           "now itself: past");
    is_int(expiry_at(S("2026-01-01T05:00:00+05:00"), NOW), BD_EXPIRY_PAST,
           "now, in another zone");
    is_int(expiry_at(S("2026-01-01T00:00:00.001Z"), NOW), NOW + 1,
           "a millisecond after: fine");
    is_int(expiry_at(S("1970-01-01T00:00:00Z"), NOW), BD_EXPIRY_PAST,
           "the epoch: past");
    is_int(expiry_at(S("2035-12-30T00:00:00Z"), NOW), NOW + BD_EXPIRY_MAX_MS,
           "3650 days on: fine");
    is_int(expiry_at(S("2035-12-30T00:00:00.001Z"), NOW), BD_EXPIRY_TOO_FAR,
           "a millisecond more: too far");
    is_int(expiry_at(S("2036-01-01T00:00:00Z"), NOW), BD_EXPIRY_TOO_FAR,
           "ten calendar years (two leap days): too far");
    is_int(expiry_at(S("9999-12-31T23:59:59Z"), NOW), BD_EXPIRY_TOO_FAR,
           "9999");
    is_int(expiry_at(S("10m"), -1), BD_EXPIRY_INVALID,
           "a clock before 1970 is refused");
    is_int(expiry_at(S("10m"), INT64_MAX), BD_EXPIRY_INVALID,
           "so is one past 9999");

    /* X-BulletDrop-Max-Views */

    is_int(views(S("1")), 1, "1 view");
    is_int(views(S("2147483647")), 2147483647, "2147483647");
    is_int(views(S(" 7 ")), 7, "spaces around");
    is_int(views(S("\t42\t")), 42, "tabs around");
    is_int(views(S("1000")), 1000, "a zero after");
    is_int(views(S("2147483648")), -1, "2147483648 is refused");
    is_int(views(S("4294967297")), -1, "2^32 + 1 does not wrap");
    is_int(views(S("99999999999")), -1, "11 digits");
    is_int(views(S("0")), -1, "0");
    is_int(views(S("007")), -1, "a leading zero");
    is_int(views(S("")), -1, "nothing");
    is_int(views(S("  ")), -1, "blanks");
    is_int(views(S("+1")), -1, "+1");
    is_int(views(S("-1")), -1, "-1");
    is_int(views(S("1 2")), -1, "a space inside");
    is_int(views(S("12a")), -1, "a letter");
    is_int(views(S("1e3")), -1, "an exponent");
    is_int(views(S("0x10")), -1, "hex");
    is_int(views(S("5\0")), -1, "a NUL");
    is_int(views(S("\n5")), -1, "a newline is not a blank here");

    /* HTML escaping */

    is_str(esc(S("<a href=\"x\">Tom & Jerry's</a>")),
           "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;",
           "& < > \" and ' are escaped");
    is_str(esc(S("photo.png")), "photo.png", "the rest is copied");
    is_str(esc(S("caf\xc3\xa9")), "caf\xc3\xa9", "UTF-8 too");
    is_str(esc(S("&amp;")), "&amp;amp;", "an entity is escaped again");
    is_str(esc("", 0), "", "nothing");
    is_int(bd_html_escape(S("a\0b"), buf), 3, "a NUL is a byte like others");
    is_str(esc(S("\"\"\"")), "&quot;&quot;&quot;",
           "the longest escape, to the last byte of bd_html_escape_len()");

    return tap_done();
}
