/*
 * BulletDrop: a streaming multipart/form-data parser (RFC 7578, RFC 2046).
 *
 * Pure C (libc only), fed the body in chunks of any size, down to one byte:
 * it keeps no more than a boundary's worth of body bytes between calls, so
 * an upload of any size passes through a fixed-size state.  Part data is
 * handed to a callback as it arrives; the boundary never reaches it.
 *
 *     bd_multipart_t  mp;
 *
 *     bd_multipart_init(&mp, boundary, blen, &callbacks, data);
 *     while (more body)  rc = bd_multipart_feed(&mp, p, n);
 *     rc = bd_multipart_finish(&mp);
 *
 * What it takes, and what it refuses (BD_MULTIPART_ERROR):
 *
 *   - the first boundary may open the body ("--b") or follow a preamble
 *     ("...\r\n--b"); transport padding (spaces, tabs) may follow any
 *     boundary before its CRLF; anything else after a boundary but "--"
 *     is an error, since a boundary must not occur inside a part;
 *   - header lines end in CRLF (a bare CR or LF is an error); names are
 *     matched in any case; a folded line (CRLF then a space or tab) is
 *     unfolded into spaces, as RFC 7230 allows, but the first line of a
 *     block cannot be a continuation; the block, its empty line included,
 *     may take BD_MULTIPART_HEADER_MAX bytes;
 *   - each part needs exactly one Content-Disposition: form-data with a
 *     name; its parameters are quoted (a backslash escapes the next byte)
 *     or not (the rest up to ';', trimmed); a parameter given twice, or a
 *     second Content-Disposition or Content-Type, is an error; other
 *     headers and parameters are ignored (so are RFC 2231 continuations,
 *     filename*0 and the like);
 *   - "filename*" is charset'language'value, unquoted, with charset UTF-8
 *     or ISO-8859-1 (turned into UTF-8); another charset or a '%' without
 *     two hex digits after it is an error, not a literal;
 *   - a name, filename or Content-Type that does not fit its field is an
 *     error: nothing is cut short;
 *   - the body must end with the closing "--b--"; what follows it is
 *     ignored, and finish() reports its absence.
 *
 * A part's body may be empty ("\r\n\r\n\r\n--b") or missing altogether
 * ("\r\n\r\n--b", RFC 2046's body-part without its [CRLF *OCTET]): both
 * give no part_data call.
 */

#ifndef _BD_MULTIPART_H_INCLUDED_
#define _BD_MULTIPART_H_INCLUDED_

#include <stddef.h>


#define BD_MULTIPART_BOUNDARY_MAX   70      /* RFC 2046 */
#define BD_MULTIPART_HEADER_MAX     8192    /* one part's headers, in all */
#define BD_MULTIPART_NAME_MAX       256     /* a field name, decoded */
#define BD_MULTIPART_FILENAME_MAX   1024    /* a filename, decoded */
#define BD_MULTIPART_TYPE_MAX       256     /* a part's Content-Type */

/* what feed() and finish() return */
#define BD_MULTIPART_OK       0     /* more input wanted */
#define BD_MULTIPART_DONE     1     /* the closing boundary was seen */
#define BD_MULTIPART_ERROR   -1     /* malformed: see mp->error */
#define BD_MULTIPART_STOPPED -2     /* a callback returned non-zero */


/*
 * The strings are NUL-terminated too (so each holds one byte less than its
 * array), but may hold NULs: use the lengths.
 */
typedef struct {
    /* the part's Content-Disposition "name", decoded */
    char          name[BD_MULTIPART_NAME_MAX];
    size_t        name_len;

    /*
     * its "filename", or "filename*" (RFC 5987/2231: UTF-8''percent-
     * encoded, which wins when both are given), decoded to bytes; the
     * caller decides what is safe.  has_filename: either was given.
     */
    char          filename[BD_MULTIPART_FILENAME_MAX];
    size_t        filename_len;
    int           has_filename;

    /* the part's Content-Type value as sent, or empty */
    char          content_type[BD_MULTIPART_TYPE_MAX];
    size_t        content_type_len;
} bd_multipart_part_t;


/*
 * Any of them may be NULL.  Each returns 0 to go on; non-zero stops the
 * parser: that call returns BD_MULTIPART_STOPPED and no callback follows.
 */
typedef struct {
    /* a part's headers are complete; part is valid until the call returns */
    int         (*part_begin)(void *data, const bd_multipart_part_t *part);
    /* some of the part's body (n > 0); called zero or more times */
    int         (*part_data)(void *data, const char *p, size_t n);
    /* the part's body is complete */
    int         (*part_end)(void *data);
} bd_multipart_callbacks_t;


/* the state: opaque to callers, public so that it can be embedded */
typedef struct {
    const bd_multipart_callbacks_t  *cb;
    void                            *data;

    /* "\r\n--" boundary */
    char                             delim[4 + BD_MULTIPART_BOUNDARY_MAX];
    size_t                           delim_len;

    int                              state;

    /*
     * How many bytes of delim the last ones seen match.  In a part's body
     * these are held back, as they may start a delimiter; being delim's
     * own first bytes, they need no copy.  Of them, the first skip are
     * the CRLF that ended the headers, which RFC 2046 lets the delimiter
     * share when the body is missing: they are not data.
     */
    size_t                           matched;
    size_t                           skip;

    /* the current part's header lines */
    char                             header[BD_MULTIPART_HEADER_MAX];
    size_t                           header_len;
    bd_multipart_part_t              part;

    /* why, after BD_MULTIPART_ERROR: a static string */
    const char                      *error;
} bd_multipart_t;


/*
 * The boundary from a Content-Type value such as
 * `multipart/form-data; boundary="a b"` (quoted or not, any case of the
 * type and parameter names).  Writes it to boundary (room for
 * BD_MULTIPART_BOUNDARY_MAX + 1, NUL-terminated) and its length to *blen.
 * Returns 0, or -1 when the type is not multipart/form-data, the
 * parameters are malformed or name a boundary twice, or the boundary is
 * missing, empty, longer than 70 bytes, not RFC 2046's characters, ends
 * with a space or has one without quotes.
 */
int bd_multipart_boundary(const char *content_type, size_t len,
    char *boundary, size_t *blen);

/*
 * boundary: as bd_multipart_boundary() gives it.  One it would refuse
 * leaves the parser in the ERROR state ("bad boundary").
 */
void bd_multipart_init(bd_multipart_t *mp, const char *boundary,
    size_t blen, const bd_multipart_callbacks_t *cb, void *data);

/*
 * Feeds n more bytes.  A preamble before the first boundary and an
 * epilogue after the closing one are ignored: DONE comes as soon as the
 * closing boundary is seen.  After DONE, ERROR or STOPPED, further calls
 * return the same and do nothing.
 */
int bd_multipart_feed(bd_multipart_t *mp, const char *p, size_t n);

/* the body has ended: DONE, or ERROR when the closing boundary is missing */
int bd_multipart_finish(bd_multipart_t *mp);


#endif /* _BD_MULTIPART_H_INCLUDED_ */
