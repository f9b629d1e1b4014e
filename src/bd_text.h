/*
 * BulletDrop: text rules for untrusted input (names, UTF-8, form bodies,
 * tokens).  Pure C (libc only) so that t/ can unit-test it and fuzz/ can
 * fuzz it.
 */

#ifndef _BD_TEXT_H_INCLUDED_
#define _BD_TEXT_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>


#define BD_USERNAME_MIN   3
#define BD_USERNAME_MAX   32
#define BD_PASSWORD_MIN   8      /* bytes */
#define BD_PASSWORD_MAX   1024   /* bytes */


/* 1 when 3..32 bytes, all of [A-Za-z0-9_.-] */
int bd_username_valid(const char *s, size_t len);

/* 1 when s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF) */
int bd_utf8_valid(const char *s, size_t len);

/*
 * 1 when s holds a NUL or another C0 control character, DEL, a C1 control
 * (U+0080..U+009F) or a bidirectional override or isolate (U+202A..U+202E,
 * U+2066..U+2069), all of which change how a name reads; s is UTF-8
 */
int bd_has_control(const char *s, size_t len);

/*
 * 1 when s is a DNS host name a file domain may have: 1..253 bytes,
 * labels of 1..63 [a-z0-9-] not starting or ending with '-', at least two
 * labels, lower case only, no trailing dot.  "localhost" names such as
 * "img.localhost" are fine.
 */
int bd_hostname_valid(const char *s, size_t len);


/*
 * application/x-www-form-urlencoded, one pair at a time:
 *
 *     const char *p = body, *end = body + len;
 *     while ((rc = bd_form_next(&p, end, name, &nlen, value, &vlen)) == 1)
 *
 * name and value receive the decoded bytes ('+' is a space, %XX a byte) and
 * must each hold as many bytes as the encoded pair has (len is enough).
 * Returns 1 for a pair, 0 at the end, -1 for a malformed pair (a bad %
 * escape; *pos is then past it).  Empty pieces between '&'s are skipped;
 * a pair without '=' has an empty value.
 */
int bd_form_next(const char **pos, const char *end, char *name,
    size_t *nlen, char *value, size_t *vlen);


/*
 * The cookies named name (case counts) in a Cookie header's text, "a=1;
 * b=2": returns how many there are, with *value and *vlen the first's
 * value as sent (quotes included).  Pieces without '=' are skipped.
 */
int bd_cookie_find(const char *header, size_t len, const char *name,
    size_t nlen, const char **value, size_t *vlen);


/* base64url without padding: the length of the text for n bytes */
/* the base64url index (RFC 4648 section 5) of c, or -1 */
int bd_base64url_value(unsigned char c);

#define bd_base64url_len(n)  (((n) * 4 + 2) / 3)

/* writes bd_base64url_len(n) characters and a NUL; returns their count */
size_t bd_base64url_encode(const unsigned char *src, size_t n, char *dst);

/*
 * Decodes unpadded base64url into dst (room for len * 3 / 4 bytes);
 * returns the number of bytes, or -1 on a character outside the alphabet,
 * an impossible length or unused bits left set in the last character (so
 * that no byte string has two spellings).
 */
long bd_base64url_decode(const char *src, size_t len, unsigned char *dst);

/* the value of a hex digit (either case), or -1 */
int bd_hex_value(unsigned char c);

/* lower-case hex of n bytes, NUL-terminated (2n + 1 bytes of room) */
void bd_hex_encode(const unsigned char *src, size_t n, char *dst);


#endif /* _BD_TEXT_H_INCLUDED_ */
