/*
 * BulletDrop: rules for uploaded files: extensions, categories, content
 * types, magic bytes, display names and ids.  Pure C (libc only) so that
 * t/ can unit-test it and fuzz/ can fuzz it.
 */

#ifndef _BD_FILE_H_INCLUDED_
#define _BD_FILE_H_INCLUDED_

#include <stddef.h>


#define BD_FILE_EXT_MAX       16      /* bytes of an extension, no dot */
#define BD_FILE_NAME_MAX      255     /* bytes of a display name */
#define BD_FILE_MAGIC_LEN     16      /* bytes the magic checks may read */
#define BD_FILE_ID_BYTES      12      /* 96 random bits */
#define BD_FILE_ID_LEN        16      /* their base64url */


/*
 * The extension of a file name: what follows its last '.', lower-cased,
 * 1..BD_FILE_EXT_MAX of [a-z0-9], after the last '/' or '\' and the
 * leading dots and spaces (as bd_file_display_name() drops them).  Writes
 * it NUL-terminated to ext (BD_FILE_EXT_MAX + 1 bytes); returns its
 * length, or 0 and "" when there is none or it is not such (a name ending
 * in '.', ".hidden" or "..png" alone, "a.tar.g z").
 */
size_t bd_file_ext(const char *name, size_t len, char *ext);

/*
 * "images", "documents" or "other", by extension (lower case, no dot, as
 * bd_file_ext() gives it; NULL or "" is "other")
 */
const char *bd_file_category(const char *ext);

/*
 * Whether the first bytes agree with the extension, for the types whose
 * content has a signature: jpg/jpeg, png, gif, webp, pdf, mp4 (an ISO
 * BMFF "ftyp" box), webm (EBML).  1: they agree, or the type has no
 * signature to check; 0: they do not; -1: n bytes are too few to tell
 * (call again with more, or with all there is: then 0).  `complete`: head
 * holds the whole file.
 */
int bd_file_magic(const char *ext, const unsigned char *head, size_t n,
    int complete);

/*
 * A display name from an untrusted one: the part after the last '/' or
 * '\', leading dots and spaces removed, with control characters (C0, DEL,
 * C1), U+2028, U+2029 and the bidirectional controls (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069) replaced by one '_' each and
 * invalid UTF-8 by one '_' a byte, cut to BD_FILE_NAME_MAX bytes on a
 * character boundary (keeping the extension bd_file_ext() would find,
 * when there is one), "file" when nothing is left.  Writes it
 * NUL-terminated to out (BD_FILE_NAME_MAX + 1 bytes) and returns its
 * length.
 */
size_t bd_file_display_name(const char *name, size_t len, char *out);


#endif /* _BD_FILE_H_INCLUDED_ */
