/*
 * BulletDrop: password hashing with scrypt (OpenSSL 3).
 *
 * No state of our own: OpenSSL 3's RAND_bytes() and EVP_PBE_scrypt() are
 * safe to call from several threads at once.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bd_password.h"
#include "bd_text.h"


/* what verify accepts; RFC 7914's own test vector (ln=10, p=16) fits */
#define BD_PASSWORD_LN_MIN    10
#define BD_PASSWORD_LN_MAX    20
#define BD_PASSWORD_R_MIN     1
#define BD_PASSWORD_R_MAX     32
#define BD_PASSWORD_P_MIN     1
#define BD_PASSWORD_P_MAX     16
#define BD_PASSWORD_SALT_MIN  8
#define BD_PASSWORD_SALT_MAX  64
#define BD_PASSWORD_KEY_MIN   16
#define BD_PASSWORD_KEY_MAX   64
/* 8 times the default cost's 32 MiB */
#define BD_PASSWORD_MEM_MAX   (256 * 1024 * 1024)

#define BD_PASSWORD_PREFIX    "$scrypt$ln="


static const bd_password_cost_t  bd_password_default = {
    BD_PASSWORD_LN, BD_PASSWORD_R, BD_PASSWORD_P
};


static int
bd_password_cost_valid(const bd_password_cost_t *cost)
{
    return cost->ln >= BD_PASSWORD_LN_MIN && cost->ln <= BD_PASSWORD_LN_MAX
           && cost->r >= BD_PASSWORD_R_MIN && cost->r <= BD_PASSWORD_R_MAX
           && cost->p >= BD_PASSWORD_P_MIN && cost->p <= BD_PASSWORD_P_MAX
           /*
            * each check runs on a pool thread, many at once: a stored
            * string (the database's word) must not ask for gigabytes
            */
           && 128 * (uint64_t) cost->r * ((uint64_t) 1 << cost->ln)
              <= BD_PASSWORD_MEM_MAX;
}


static int
bd_password_derive(const char *password, size_t len,
    const bd_password_cost_t *cost, const unsigned char *salt, size_t slen,
    unsigned char *key, size_t klen)
{
    uint64_t  n, maxmem;

    n = (uint64_t) 1 << cost->ln;

    /*
     * Exactly what OpenSSL will allocate (V is 128 r (N + 2) bytes, B is
     * 128 r p): its default ceiling of 32 MiB is just short of our default.
     */
    maxmem = 128 * (uint64_t) cost->r * (n + 2 + cost->p);

    if (EVP_PBE_scrypt(password, len, salt, slen, n, cost->r, cost->p,
                       maxmem, key, klen)
        != 1)
    {
        /* a pool thread's error queue would keep them for whoever is next */
        ERR_clear_error();
        OPENSSL_cleanse(key, klen);
        return -1;
    }

    return 0;
}


/* 1..3 digits without a leading zero; the bounds are checked later */
static int
bd_password_number(const char **pos, unsigned *out)
{
    unsigned     v;
    const char  *p;

    p = *pos;

    if (*p < '1' || *p > '9') {
        return -1;
    }

    v = 0;

    while (*p >= '0' && *p <= '9') {
        if (p - *pos == 3) {
            return -1;
        }

        v = v * 10 + (unsigned) (*p++ - '0');
    }

    *pos = p;
    *out = v;

    return 0;
}


/* the base64url text from s to end into buf, with min..max bytes */
static int
bd_password_bytes(const char *s, const char *end, unsigned char *buf,
    size_t min, size_t max, size_t *len)
{
    long  n;

    if ((size_t) (end - s) > bd_base64url_len(max)) {
        return -1;
    }

    n = bd_base64url_decode(s, (size_t) (end - s), buf);

    if (n < (long) min || n > (long) max) {
        return -1;
    }

    *len = (size_t) n;

    return 0;
}


static int
bd_password_parse(const char *s, bd_password_cost_t *cost,
    unsigned char *salt, size_t *slen, unsigned char *key, size_t *klen)
{
    const char  *end;

    if (strncmp(s, BD_PASSWORD_PREFIX, sizeof(BD_PASSWORD_PREFIX) - 1)
        != 0)
    {
        return -1;
    }

    s += sizeof(BD_PASSWORD_PREFIX) - 1;

    if (bd_password_number(&s, &cost->ln) != 0
        || strncmp(s, ",r=", 3) != 0)
    {
        return -1;
    }

    s += 3;

    if (bd_password_number(&s, &cost->r) != 0
        || strncmp(s, ",p=", 3) != 0)
    {
        return -1;
    }

    s += 3;

    if (bd_password_number(&s, &cost->p) != 0 || *s++ != '$') {
        return -1;
    }

    if (!bd_password_cost_valid(cost)) {
        return -1;
    }

    end = strchr(s, '$');
    if (end == NULL
        || bd_password_bytes(s, end, salt, BD_PASSWORD_SALT_MIN,
                             BD_PASSWORD_SALT_MAX, slen)
           != 0)
    {
        return -1;
    }

    /* a '$' or anything else past the key is not base64url: refused */
    s = end + 1;
    end = s + strlen(s);

    return bd_password_bytes(s, end, key, BD_PASSWORD_KEY_MIN,
                             BD_PASSWORD_KEY_MAX, klen);
}


int
bd_password_hash(const char *password, size_t len,
    const bd_password_cost_t *cost, char *out)
{
    int            n;
    char          *p;
    unsigned char  salt[BD_PASSWORD_SALT_LEN], key[BD_PASSWORD_KEY_LEN];

    if (cost == NULL) {
        cost = &bd_password_default;
    }

    /* the bounds keep the text within BD_PASSWORD_HASH_MAX (91 at most) */
    if (!bd_password_cost_valid(cost)) {
        return -1;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return -1;
    }

    if (bd_password_derive(password, len, cost, salt, sizeof(salt), key,
                           sizeof(key))
        != 0)
    {
        return -1;
    }

    n = snprintf(out, BD_PASSWORD_HASH_MAX, BD_PASSWORD_PREFIX "%u,r=%u,p=%u$",
                 cost->ln, cost->r, cost->p);

    p = out + n;
    p += bd_base64url_encode(salt, sizeof(salt), p);
    *p++ = '$';
    bd_base64url_encode(key, sizeof(key), p);

    OPENSSL_cleanse(key, sizeof(key));

    return 0;
}


int
bd_password_verify(const char *password, size_t len, const char *stored)
{
    int                 rc;
    size_t              slen, klen;
    unsigned char       salt[BD_PASSWORD_SALT_MAX];
    unsigned char       want[BD_PASSWORD_KEY_MAX], got[BD_PASSWORD_KEY_MAX];
    bd_password_cost_t  cost;

    if (stored == NULL
        || bd_password_parse(stored, &cost, salt, &slen, want, &klen) != 0)
    {
        bd_password_dummy(password, len);
        return -1;
    }

    if (bd_password_derive(password, len, &cost, salt, slen, got, klen)
        != 0)
    {
        return -1;
    }

    rc = CRYPTO_memcmp(got, want, klen) == 0;

    OPENSSL_cleanse(got, klen);
    OPENSSL_cleanse(want, klen);

    return rc;
}


void
bd_password_dummy(const char *password, size_t len)
{
    unsigned char  salt[BD_PASSWORD_SALT_LEN], key[BD_PASSWORD_KEY_LEN];

    /* any fixed salt will do: the key is thrown away */
    memset(salt, 0, sizeof(salt));

    (void) bd_password_derive(password, len, &bd_password_default, salt,
                              sizeof(salt), key, sizeof(key));

    OPENSSL_cleanse(key, sizeof(key));
}
