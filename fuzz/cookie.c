/*
 * libFuzzer target: bd_cookie_find() (src/bd_text.c), which reads a
 * Cookie header for the session cookie.
 *
 * Input: byte 0 is the length of the name (% 16), the next bytes the name,
 * the rest the header.  Checked against a splitter written here: the same
 * count of cookies of that exact name; the value found lies inside the
 * header, holds no ';', has no blank at either end, and is the first
 * such cookie's (the same bytes).  Read from an exact-size copy, so that a read past the
 * end is caught.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_text.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)


static int
blank(char c)
{
    return c == ' ' || c == '\t';
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          n, want;
    char        *h, *name;
    size_t       nlen, hlen, vlen, i, s, e, ns, ne, vs, ve, eq;
    const char  *value, *first;
    size_t       first_len;

    if (size < 1) {
        return 0;
    }

    nlen = data[0] % 16;
    if (size < 1 + nlen) {
        return 0;
    }

    name = malloc(nlen ? nlen : 1);
    memcpy(name, data + 1, nlen);
    hlen = size - 1 - nlen;
    h = malloc(hlen ? hlen : 1);
    memcpy(h, data + 1 + nlen, hlen);

    /* the pieces between ';', a name before the first '=', blanks trimmed */
    want = 0;
    first = NULL;
    first_len = 0;

    for (s = 0; s <= hlen; s = e + 1) {
        for (e = s; e < hlen && h[e] != ';'; e++) { /* void */ }

        for (eq = s; eq < e && h[eq] != '='; eq++) { /* void */ }

        if (eq < e) {
            for (ns = s; ns < eq && blank(h[ns]); ns++) { /* void */ }
            for (ne = eq; ne > ns && blank(h[ne - 1]); ne--) { /* void */ }

            if (ne - ns == nlen && memcmp(h + ns, name, nlen) == 0) {
                if (want++ == 0) {
                    for (vs = eq + 1; vs < e && blank(h[vs]); vs++) { }
                    for (ve = e; ve > vs && blank(h[ve - 1]); ve--) { }
                    first = h + vs;
                    first_len = ve - vs;
                }
            }
        }

        if (e == hlen) {
            break;
        }
    }

    value = NULL;
    vlen = 0;
    n = bd_cookie_find(h, hlen, name, nlen, &value, &vlen);

    check(n == want);

    if (n > 0) {
        check(value >= h && value + vlen <= h + hlen);
        /* an empty value may be placed on either side of its blanks */
        check(vlen == first_len && memcmp(value, first, vlen) == 0);

        for (i = 0; i < vlen; i++) {
            check(value[i] != ';');
        }

        check(vlen == 0 || (!blank(value[0]) && !blank(value[vlen - 1])));
    }

    free(name);
    free(h);

    return 0;
}
