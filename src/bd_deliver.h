/*
 * BulletDrop: rules for serving stored files and for the headers that set
 * their limits: public paths, the id's limited mark, how each type is
 * served, Content-Disposition, X-BulletDrop-Expires and -Max-Views, and
 * HTML escaping.  Pure C (libc only) so that t/ can unit-test it and fuzz/
 * can fuzz it.
 */

#ifndef _BD_DELIVER_H_INCLUDED_
#define _BD_DELIVER_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>


#define BD_DELIVER_ID_LEN  16      /* same as BD_FILE_ID_LEN */


/* the public path of a stored file: "/static/<category>/<id>.<ext>" */
typedef struct {
    const char  *category;         /* points into uri */
    size_t       category_len;
    const char  *id;               /* BD_DELIVER_ID_LEN bytes, into uri */
    const char  *ext;              /* into uri */
    size_t       ext_len;
} bd_deliver_path_t;

/*
 * 0 when uri (the decoded path, without args) is exactly "/static/", a
 * category ("images", "documents" or "other"), "/", an id of
 * BD_DELIVER_ID_LEN [A-Za-z0-9_-], "." and an extension of 1..16 [a-z0-9];
 * -1 otherwise, and p is then left as it was.
 */
int bd_deliver_path(const char *uri, size_t len, bd_deliver_path_t *p);


/*
 * Whether an upload has an expiry or a view limit is marked in its id:
 * the low bit of the base64url index (RFC 4648 section 5) of its last
 * character, id[BD_DELIVER_ID_LEN - 1].  limited() gives 1 for an odd
 * index, 0 for an even one or a character outside the alphabet; mark()
 * sets or clears that bit, keeping the other five (a character outside
 * the alphabet is left alone).
 */
int bd_deliver_id_limited(const char *id);
void bd_deliver_id_mark(char *id, int limited);


/* how a file is served, by extension */
typedef struct {
    const char  *content_type;     /* the full Content-Type value to send */
    unsigned     inline_ok:1;      /* Content-Disposition inline, else
                                      attachment */
    unsigned     text:1;           /* served as text/plain; charset=utf-8 */
} bd_deliver_type_t;

/*
 * Images (not svg), video and pdf: their own type, inline.  Text, source
 * code and everything a browser would run or render (html, svg, xml, js,
 * css, ...): text/plain; charset=utf-8, inline, so shown as source.
 * Anything else, an upper-case extension or none: application/octet-
 * stream as an attachment.  ext is lower case, without the dot.
 */
void bd_deliver_type(const char *ext, size_t len, bd_deliver_type_t *t);


/*
 * "attachment; filename=\"" 255 "\"; filename*=UTF-8''" 3 * 255 and a NUL
 * is 22 + 255 + 1 + 19 + 765 + 1 = 1063 bytes
 */
#define BD_DELIVER_DISPOSITION_MAX  1088

/*
 * The Content-Disposition value for a display name (RFC 6266, RFC 8187):
 * "inline" or "attachment", then, for a name that is not empty,
 * "; filename=\"<fallback>\"" with each byte outside 0x20..0x7e, '"' and
 * '\' as '_' (a UTF-8 character as one '_'), then, when the name has any
 * of those or a '%', "; filename*=UTF-8''" and the name percent-encoded.
 * Writes it NUL-terminated when it fits in size bytes; returns its length
 * (without the NUL) either way, like snprintf().  out may be NULL when
 * size is 0.  BD_DELIVER_DISPOSITION_MAX bytes hold any name of up to 255
 * bytes.
 */
size_t bd_deliver_disposition(int inline_ok, const char *name, size_t len,
    char *out, size_t size);


#define BD_EXPIRY_NEVER      1
#define BD_EXPIRY_OK         0
#define BD_EXPIRY_INVALID   (-1)
#define BD_EXPIRY_PAST      (-2)
#define BD_EXPIRY_TOO_FAR   (-3)

#define BD_EXPIRY_MAX_MS    (3650LL * 86400 * 1000)   /* ten years */

/*
 * X-BulletDrop-Expires: a duration ("10m": 1..12 digits, not all zero,
 * and one of s, m, h, d, w in either case), an RFC 3339 date-time from
 * year 1970 to 9999 ("2026-11-25T12:00:00.5+05:30"; "t", "z" and a space
 * for the "T" too; milliseconds kept) or "never" in any case; spaces and
 * tabs around it do not count.  OK, with *at_ms set (milliseconds since
 * the epoch), when now_ms < *at_ms <= now_ms + BD_EXPIRY_MAX_MS; NEVER;
 * or PAST, TOO_FAR or INVALID with *at_ms untouched.  now_ms is a clock's
 * reading: 0 (1970) up to year 10000, or the answer is INVALID.
 */
int bd_expiry_parse(const char *s, size_t len, int64_t now_ms,
    int64_t *at_ms);

/*
 * X-BulletDrop-Max-Views: 1..2147483647 in decimal digits, no sign, no
 * leading zero, spaces and tabs around it allowed.  0 and *views set, or
 * -1.
 */
int bd_max_views_parse(const char *s, size_t len, int32_t *views);


/* room bd_html_escape() may need for n bytes ("&quot;" is six) */
#define bd_html_escape_len(n)  ((n) * 6)

/*
 * Copies s to out with & < > " ' as &amp; &lt; &gt; &quot; &#39;, safe in
 * HTML text and in quoted attributes; no NUL.  Returns the length written.
 */
size_t bd_html_escape(const char *s, size_t len, char *out);


#endif /* _BD_DELIVER_H_INCLUDED_ */
