/*
 * BulletDrop: password hashing with scrypt (OpenSSL 3), in a self-describing
 * string so that the cost can be raised later without breaking old hashes:
 *
 *     $scrypt$ln=15,r=8,p=3$<salt, base64url>$<key, base64url>
 *
 * Pure C plus libcrypto, no nginx: these run on nginx's thread pool and are
 * unit-tested alone.  They are slow on purpose; never call them on the
 * event loop.
 */

#ifndef _BD_PASSWORD_H_INCLUDED_
#define _BD_PASSWORD_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>


/* the cost of new hashes: N = 2^15, r = 8, p = 3 (32 MiB, OWASP's advice) */
#define BD_PASSWORD_LN        15
#define BD_PASSWORD_R         8
#define BD_PASSWORD_P         3

#define BD_PASSWORD_SALT_LEN  16
#define BD_PASSWORD_KEY_LEN   32

/* room for any string bd_password_hash() writes, NUL included */
#define BD_PASSWORD_HASH_MAX  128


typedef struct {
    unsigned  ln;       /* log2 of N */
    unsigned  r;
    unsigned  p;
} bd_password_cost_t;


/*
 * Hashes a password with a fresh random salt and the given cost (NULL:
 * the defaults above) into out (BD_PASSWORD_HASH_MAX bytes), NUL-terminated.
 * Returns 0, or -1 when the cost is out of the bounds that verify accepts
 * or OpenSSL fails.
 */
int bd_password_hash(const char *password, size_t len,
    const bd_password_cost_t *cost, char *out);

/*
 * 1 when the password matches the stored string, 0 when it does not, -1 when
 * the stored string is malformed or its cost is out of bounds (a key is then
 * still derived with the default cost, so the answer takes as long) or when
 * OpenSSL fails.  The comparison is in constant time.
 *
 * Bounds: ln 10..20, r 1..32, p 1..16, salt 8..64 bytes, key 16..64 bytes,
 * and at most 256 MiB of memory (128 r 2^ln bytes).
 */
int bd_password_verify(const char *password, size_t len, const char *stored);

/*
 * Burns the time of one verification against the default cost without any
 * stored hash: for a login whose user does not exist.
 */
void bd_password_dummy(const char *password, size_t len);


#endif /* _BD_PASSWORD_H_INCLUDED_ */
