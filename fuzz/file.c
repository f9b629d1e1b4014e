/*
 * libFuzzer target for src/bd_file.c.
 *
 * Input: an untrusted file name (and, for the magic checks, the first
 * bytes of a file).  A display name must be well-formed UTF-8 without
 * controls or NULs, 1..255 bytes, with no '/' or '\', no leading dot or
 * space, and stay the same when made again; an extension must be 0..16
 * of [a-z0-9], and the one the display name shows when it was not cut.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_file.h"
#include "bd_text.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)


static const char  *exts[] = {
    "jpg", "jpeg", "png", "gif", "webp", "pdf", "mp4", "webm", "txt", "",
};


static size_t
ext(const char *name, size_t len, char *e)
{
    size_t  n, i;

    n = bd_file_ext(name, len, e);

    check(n <= BD_FILE_EXT_MAX);
    check(e[n] == '\0');

    for (i = 0; i < n; i++) {
        check((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9'));
    }

    check(bd_file_category(e) != NULL);

    return n;
}


static size_t
display(const char *name, size_t len, char *out)
{
    size_t  n;

    n = bd_file_display_name(name, len, out);

    check(n >= 1 && n <= BD_FILE_NAME_MAX);
    check(out[n] == '\0');
    check(memchr(out, '\0', n) == NULL);
    check(memchr(out, '/', n) == NULL);
    check(memchr(out, '\\', n) == NULL);
    check(out[0] != '.' && out[0] != ' ');
    check(bd_utf8_valid(out, n));
    check(!bd_has_control(out, n));

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc;
    char        *out, *again, *e1, *e2;
    size_t       n, m, k, i;
    const char  *name;

    name = (const char *) data;

    /* exact sizes, so that the sanitizer sees a write past them */
    out = malloc(BD_FILE_NAME_MAX + 1);
    again = malloc(BD_FILE_NAME_MAX + 1);
    e1 = malloc(BD_FILE_EXT_MAX + 1);
    e2 = malloc(BD_FILE_EXT_MAX + 1);
    check(out && again && e1 && e2);

    n = display(name, size, out);
    k = ext(name, size, e1);
    ext(out, n, e2);

    /* a cut keeps a (valid) extension; and a cut needs 252 bytes or more */
    if (k > 0 || n < BD_FILE_NAME_MAX - 3) {
        check(strcmp(e1, e2) == 0);
    }

    m = display(out, n, again);
    check(m == n && memcmp(out, again, n) == 0);

    for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        rc = bd_file_magic(exts[i], data, size, 0);
        check(rc == -1 || rc == 0 || rc == 1);

        rc = bd_file_magic(exts[i], data, size, 1);
        check(rc == 0 || rc == 1);
    }

    free(out);
    free(again);
    free(e1);
    free(e2);

    return 0;
}
