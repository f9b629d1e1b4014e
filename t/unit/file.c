/*
 * Unit tests for src/bd_file.c: extensions, categories, magic bytes and
 * display names.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_file.h"


#define S(s)  (s), (sizeof(s) - 1)


/*
 * bd_file_ext() on an exact-size copy of the name, into an exact-size
 * buffer, so that the sanitizer sees any overrun; "" when there is none.
 */
static const char *
ext(const char *name, size_t len)
{
    char         *copy, *e;
    size_t        n;
    static char   out[BD_FILE_EXT_MAX + 1];

    copy = malloc(len ? len : 1);
    memcpy(copy, name, len);
    e = malloc(BD_FILE_EXT_MAX + 1);
    memset(e, 'x', BD_FILE_EXT_MAX + 1);

    n = bd_file_ext(copy, len, e);

    if (n != strlen(e)) {
        strcpy(out, "(wrong length)");

    } else {
        strcpy(out, e);
    }

    free(copy);
    free(e);

    return out;
}


/* bd_file_magic() on an exact-size copy of the bytes */
static int
magic(const char *e, const char *head, size_t n, int complete)
{
    int             rc;
    unsigned char  *copy;

    copy = malloc(n ? n : 1);
    memcpy(copy, head, n);

    rc = bd_file_magic(e, copy, n, complete);

    free(copy);

    return rc;
}


/* bd_file_display_name() the same way; the answer is static */
static const char *
display(const char *name, size_t len)
{
    char         *copy, *o;
    size_t        n;
    static char   out[BD_FILE_NAME_MAX + 1];

    copy = malloc(len ? len : 1);
    memcpy(copy, name, len);
    o = malloc(BD_FILE_NAME_MAX + 1);

    n = bd_file_display_name(copy, len, o);

    if (n != strlen(o)) {
        strcpy(out, "(wrong length)");

    } else {
        strcpy(out, o);
    }

    free(copy);
    free(o);

    return out;
}


static const char *
repeat(const char *unit, size_t times, const char *tail, size_t *len)
{
    size_t       i;
    static char  buf[4096];

    buf[0] = '\0';

    for (i = 0; i < times; i++) {
        strcat(buf, unit);
    }

    strcat(buf, tail);
    *len = strlen(buf);

    return buf;
}


int
main(void)
{
    char         want[1 + 85 * 3], e1[BD_FILE_EXT_MAX + 1];
    char         e2[BD_FILE_EXT_MAX + 1];
    size_t       len, i;
    const char  *name, *d;
    static const char  *same_ext[] = {
        "a.png", "A.JPG", "../x/.y.GIF", " . .png", "..png", "\x01.png",
        "a\xff.txt", "a.p\x01g", "dir.d/", ".hidden", "a.tar.gz", "x.",
        "\xe2\x80\xae" "gnp.exe", "\\\\srv\\share\\b.WebM", "", "...",
    };

    /* extensions */

    is_str(ext(S("a.png")), "png", "an extension");
    is_str(ext(S("Shot.PNG")), "png", "lower-cased");
    is_str(ext(S("photo.JPeG")), "jpeg", "of any case");
    is_str(ext(S("a.tar.gz")), "gz", "what follows the last dot");
    is_str(ext(S("dir/a.png")), "png", "after a '/'");
    is_str(ext(S("C:\\Users\\me\\a.png")), "png", "after a '\\'");
    is_str(ext(S("dir.png/a")), "", "a directory's dot does not count");
    is_str(ext(S("dir.png\\a")), "", "nor on Windows");
    is_str(ext(S("a.png/")), "", "a name ending in '/' has none");
    is_str(ext(S("README")), "", "no dot, no extension");
    is_str(ext(S("a.")), "", "a name ending in '.'");
    is_str(ext(S(".hidden")), "", "\".hidden\" alone");
    is_str(ext(S("..png")), "", "\"..png\": leading dots go first");
    is_str(ext(S(" .png")), "", "so do leading spaces");
    is_str(ext(S(".hidden.png")), "png", "a hidden name with one");
    is_str(ext(S("a.tar.g z")), "", "a space in it");
    is_str(ext(S("a.p_g")), "", "an underscore in it");
    is_str(ext(S("a.png ")), "", "a space after it");
    is_str(ext(S("a.pn\xc3\xa9")), "", "a letter beyond ASCII");
    is_str(ext(S("a.png\0")), "", "a NUL after it");
    is_str(ext(S("a.mp4")), "mp4", "digits");
    is_str(ext(S("a.0123456789abcdef")), "0123456789abcdef", "16 bytes");
    is_str(ext(S("a.0123456789abcdefg")), "", "17 is too many");
    is_str(ext(S("")), "", "an empty name");
    is_str(ext(S(".")), "", "a dot");
    is_str(ext("a.png.exe", 5), "png", "the length bounds the name");

    /* categories */

    is_str(bd_file_category("jpg"), "images", "jpg is an image");
    is_str(bd_file_category("jpeg"), "images", "jpeg is an image");
    is_str(bd_file_category("png"), "images", "png is an image");
    is_str(bd_file_category("gif"), "images", "gif is an image");
    is_str(bd_file_category("webp"), "images", "webp is an image");
    is_str(bd_file_category("pdf"), "documents", "pdf is a document");
    is_str(bd_file_category("txt"), "documents", "txt is a document");
    is_str(bd_file_category("md"), "documents", "md is a document");
    is_str(bd_file_category("mp4"), "other", "mp4 is other");
    is_str(bd_file_category("webm"), "other", "webm is other");
    is_str(bd_file_category("svg"), "other", "svg is other");
    is_str(bd_file_category("html"), "other", "html is other");
    is_str(bd_file_category("pngx"), "other", "no prefix match");
    is_str(bd_file_category("pn"), "other", "nor a shorter one");
    is_str(bd_file_category("PNG"), "other", "extensions come lower-cased");
    is_str(bd_file_category(""), "other", "no extension is other");
    is_str(bd_file_category(NULL), "other", "nor is NULL");

    /* magic bytes */

    is_int(magic("jpg", S("\xff\xd8\xff\xe0\0\x10JFIF"), 0), 1, "a JPEG");
    is_int(magic("jpeg", S("\xff\xd8\xff\xdb"), 1), 1, "jpeg the same");
    is_int(magic("jpg", S("\xff\xd8\xfe"), 1), 0, "not a JPEG");
    is_int(magic("jpg", S("\xff\xd8"), 0), -1,
           "two bytes of a JPEG: too few to tell");
    is_int(magic("jpg", S("\xff\xd8"), 1), 0, "unless that is all there is");
    is_int(magic("jpg", S("\x89"), 0), 0, "a wrong first byte tells");
    is_int(magic("jpg", "", 0, 0), -1, "nothing yet");
    is_int(magic("jpg", "", 0, 1), 0, "an empty file");

    is_int(magic("png", S("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), 0), 1, "a PNG");
    is_int(magic("png", S("\x89PNG\r\n\x1a"), 0), -1, "7 bytes of it");
    is_int(magic("png", S("\x89PNG\r\n\x1a"), 1), 0, "a cut PNG");
    is_int(magic("png", S("\x89PNG\n\r\x1a\n"), 0), 0,
           "a PNG's line ends swapped");
    is_int(magic("png", S("\xff\xd8\xff\xe0\0\x10JFIF"), 0), 0,
           "a JPEG named .png");

    is_int(magic("gif", S("GIF87a\x01\0"), 0), 1, "GIF87a");
    is_int(magic("gif", S("GIF89a\x01\0"), 0), 1, "GIF89a");
    is_int(magic("gif", S("GIF88a\x01\0"), 0), 0, "GIF88a is not");
    is_int(magic("gif", S("GIF8"), 0), -1, "GIF8: too few");
    is_int(magic("gif", S("GIF87"), 0), -1, "GIF87: still too few");
    is_int(magic("gif", S("GIF8"), 1), 0, "GIF8 and no more");

    is_int(magic("webp", S("RIFF\x24\0\0\0WEBPVP8 "), 0), 1, "a WebP");
    is_int(magic("webp", S("RIFF\x24\0\0\0WAVEfmt "), 0), 0,
           "a WAVE is RIFF but not WebP");
    is_int(magic("webp", S("RIFF\x24\0\0\0WEB"), 0), -1, "11 bytes");
    is_int(magic("webp", S("RIFX"), 0), 0, "RIFX");

    is_int(magic("pdf", S("%PDF-1.7\n"), 0), 1, "a PDF");
    is_int(magic("pdf", S("%PDF"), 0), -1, "%PDF: too few");
    is_int(magic("pdf", S("%PDF1"), 0), 0, "%PDF1");
    is_int(magic("pdf", S("\n%PDF-1.7"), 0), 0, "not at the start");

    is_int(magic("mp4", S("\0\0\0\x20" "ftypisom"), 0), 1, "an MP4");
    is_int(magic("mp4", S("\xff\xff\xff\xff" "ftyp"), 0), 1,
           "any box size");
    is_int(magic("mp4", S("\0\0\0\x20" "moov"), 0), 0, "no ftyp box first");
    is_int(magic("mp4", S("\0\0\0\x20" "fty"), 0), -1, "7 bytes");
    is_int(magic("mp4", S("\0\0\0\x20"), 1), 0, "4 bytes in all");

    is_int(magic("webm", S("\x1a\x45\xdf\xa3\x9f\x42\x86\x81"), 0), 1,
           "a WebM");
    is_int(magic("webm", S("\x1a\x45\xdf\xa4"), 0), 0, "not a WebM");

    is_int(magic("txt", S("\xff\0anything"), 1), 1,
           "text has no signature to check");
    is_int(magic("md", "", 0, 0), 1, "nor has md, even with no bytes");
    is_int(magic("exe", S("MZ"), 1), 1, "nor other types");
    is_int(magic("", S("x"), 1), 1, "nor no extension");
    is_int(magic(NULL, S("x"), 1), 1, "nor NULL");

    /* display names */

    is_str(display(S("photo.png")), "photo.png", "a plain name stays");
    is_str(display(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.png")),
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.png",
           "and so does UTF-8");
    is_str(display(S("../../etc/passwd")), "passwd", "directories go");
    is_str(display(S("C:\\Users\\me\\shot.png")), "shot.png",
           "Windows ones too");
    is_str(display(S("a/b\\c")), "c", "after the last of either");
    is_str(display(S("dir/")), "file", "nothing after the last '/'");
    is_str(display(S("")), "file", "an empty name");
    is_str(display(S("...")), "file", "only dots");
    is_str(display(S(" . .png")), "png", "leading dots and spaces go");
    is_str(display(S(".bashrc")), "bashrc", "a hidden name shows");
    is_str(display(S("a.png. ")), "a.png. ", "trailing ones stay");
    is_str(display(S("a\tb\nc\x7f.txt")), "a_b_c_.txt",
           "controls and DEL become '_'");
    is_str(display(S("\0a")), "_a", "a NUL too");
    is_str(display(S("\r\n\x1b[31mred")), "___[31mred",
           "and escape sequences lose their ESC");
    is_str(display(S("a\xc2\x85" "b")), "a_b", "a C1 control is one '_'");
    is_str(display(S("photo\xe2\x80\xae" "gnp.exe")), "photo_gnp.exe",
           "a right-to-left override is one '_'");
    is_str(display(S("a\xe2\x81\xa6" "b\xe2\x80\x8f" "c\xd8\x9c" "d")),
           "a_b_c_d", "other bidi controls too");
    is_str(display(S("a\xe2\x80\xa8" "b")), "a_b", "a line separator too");
    is_str(display(S("a\xe2\x80\x8d" "b")), "a\xe2\x80\x8d" "b",
           "a zero width joiner stays (emoji need it)");
    is_str(display(S("a\xff" "b")), "a_b", "invalid UTF-8 is '_'");
    is_str(display(S("\xe2\x82")), "__", "a byte at a time");
    is_str(display(S("\xc0\xaf.png")), "__.png", "overlongs too");
    is_str(display(S("\xed\xa0\x80")), "___", "and surrogates");
    is_str(display(S("\xf4\x90\x80\x80")), "____", "and U+110000");
    is_str(display(S("\xe2\x82\xac")), "\xe2\x82\xac", "but not U+20AC");
    is_str(display(S("a\xc0/b")), "b", "a '/' ends even a broken name");
    is_str(display("abc.png", 3), "abc", "the length bounds the name");

    name = repeat("a", 255, "", &len);
    is_str(display(name, len), name, "255 bytes stay");

    name = repeat("a", 256, "", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && strspn(d, "a") == 255, "256 are cut to 255");

    name = repeat("a", 300, ".png", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && strspn(d, "a") == 251
       && strcmp(d + 251, ".png") == 0, "the extension is kept when cut");

    name = repeat("a", 300, ".0123456789abcdef", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && strspn(d, "a") == 238
       && strcmp(d + 238, ".0123456789abcdef") == 0,
       "even a 16-byte one");

    name = repeat("a", 300, ".toolongforanextension", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && strspn(d, "a") == 255,
       "one too long to be an extension is cut like the rest");

    name = repeat("\xe2\x82\xac", 100, "", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && memcmp(d, name, 255) == 0,
       "cut on a character boundary (255 = 85 euros)");

    name = repeat("\xe2\x82\xac", 85, "", &len);
    want[0] = 'a';
    memcpy(want + 1, name, len);
    d = display(want, 1 + len);
    ok(strlen(d) == 253 && memcmp(d, want, 253) == 0,
       "cut before a character that would not fit");

    name = repeat("\xe2\x82\xac", 100, ".png", &len);
    d = display(name, len);
    ok(strlen(d) == 253 && memcmp(d, name, 249) == 0
       && strcmp(d + 249, ".png") == 0,
       "on a character boundary before the extension");

    name = repeat("\x01", 300, ".png", &len);
    d = display(name, len);
    ok(strlen(d) == 255 && strspn(d, "_") == 251
       && strcmp(d + 251, ".png") == 0, "controls count after cleaning");

    name = repeat("a", 2000, "/x.png", &len);
    is_str(display(name, len), "x.png", "a long path, a short name");

    /* what the display name shows, bd_file_ext() finds in it too */

    for (i = 0; i < sizeof(same_ext) / sizeof(same_ext[0]); i++) {
        bd_file_ext(same_ext[i], strlen(same_ext[i]), e1);
        d = display(same_ext[i], strlen(same_ext[i]));
        bd_file_ext(d, strlen(d), e2);

        if (strcmp(e1, e2) != 0) {
            printf("# '%s': '%s' vs '%s'\n", same_ext[i], e1, e2);
            break;
        }
    }

    ok(i == sizeof(same_ext) / sizeof(same_ext[0]),
       "the same extension in the name and its display name");

    return tap_done();
}
