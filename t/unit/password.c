/*
 * Unit tests for src/bd_password.c: scrypt password hashes.
 *
 * Most round trips use a cheap cost (ln=10): a default-cost derivation
 * takes a quarter of a second, and every malformed string costs one.
 */

#define _POSIX_C_SOURCE  200112L

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "tap.h"
#include "bd_password.h"
#include "bd_text.h"


#define S(s)  (s), (sizeof(s) - 1)

#define PW    "correct horse battery staple"


static const bd_password_cost_t  cheap = { 10, 8, 1 };


/* RFC 7914, section 12, the third vector: N = 16384, r = 8, p = 1 */
static const unsigned char  rfc7914_key[64] = {
    0x70, 0x23, 0xbd, 0xcb, 0x3a, 0xfd, 0x73, 0x48,
    0x46, 0x1c, 0x06, 0xcd, 0x81, 0xfd, 0x38, 0xeb,
    0xfd, 0xa8, 0xfb, 0xba, 0x90, 0x4f, 0x8e, 0x3e,
    0xa9, 0xb5, 0x43, 0xf6, 0x54, 0x5d, 0xa1, 0xf2,
    0xd5, 0x43, 0x29, 0x55, 0x61, 0x3f, 0x0f, 0xcf,
    0x62, 0xd4, 0x97, 0x05, 0x24, 0x2a, 0x9a, 0xf9,
    0xe6, 0x1e, 0x85, 0xdc, 0x0d, 0x65, 0x1e, 0x40,
    0xdf, 0xcf, 0x01, 0x7b, 0x45, 0x57, 0x58, 0x87,
};

#define RFC7914_KEY                                                           \
    "cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofLVQylVYT8Pz2LUlwUkKpr55h6F3A"  \
    "1lHkDfzwF7RVdYhw"

#define RFC7914_STORED                                                        \
    "$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$" RFC7914_KEY


/* CPU seconds: a busy machine slows the wall clock, not the work done */
static double
cpu_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/*
 * A stored string made without bd_password: OpenSSL's scrypt straight,
 * for salt and key lengths that bd_password_hash() never writes.
 */
static void
make_stored(const char *pw, unsigned ln, unsigned r, unsigned p,
    size_t slen, size_t klen, char *out)
{
    size_t         i;
    unsigned char  salt[64], key[64];

    for (i = 0; i < slen; i++) {
        salt[i] = (unsigned char) (i * 37 + 11);
    }

    if (EVP_PBE_scrypt(pw, strlen(pw), salt, slen, (uint64_t) 1 << ln, r, p,
                       256 * 1024 * 1024, key, klen)
        != 1)
    {
        strcpy(out, "(scrypt failed)");
        return;
    }

    out += sprintf(out, "$scrypt$ln=%u,r=%u,p=%u$", ln, r, p);
    out += bd_base64url_encode(salt, slen, out);
    *out++ = '$';
    bd_base64url_encode(key, klen, out);
}


static int
verify(const char *pw, const char *stored)
{
    return bd_password_verify(pw, strlen(pw), stored);
}


int
main(void)
{
    int                 rc;
    long                n;
    char                h[BD_PASSWORD_HASH_MAX], h2[BD_PASSWORD_HASH_MAX];
    char                s[256], enc[128], big[BD_PASSWORD_MAX];
    size_t              i, plen;
    double              t, t_default, t_cheap, t_bad, t_dummy;
    unsigned char       key[64];
    bd_password_cost_t  c;

    static const struct {
        const char  *stored;
        const char  *name;
    } malformed[] = {
        { "", "an empty string" },
        { "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U",
          "another algorithm" },
        { "$scrypt$ln=9,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U",
          "ln below 10" },
        { "$scrypt$ln=10,r=8,p=17$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U",
          "p above 16" },
        { "$scrypt$ln=010,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U",
          "a leading zero" },
        { "$scrypt$r=8,ln=10,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U",
          "parameters out of order" },
        { "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ", "no key" },
        { "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U$",
          "something after the key" },
        { "$scrypt$ln=10,r=8,p=1$c2FsdHNhbA$a2V5a2V5a2V5a2V5a2V5a2U",
          "a 7-byte salt" },
        { "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
          "a 15-byte key" },
        { "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2U=",
          "padding after the key" },
    };

    /* a cheap hash and its round trip */

    rc = bd_password_hash(S(PW), &cheap, h);
    is_int(rc, 0, "hashing succeeds");
    is_mem(h, 22, "$scrypt$ln=10,r=8,p=1$",
           "the string names the algorithm and its cost");
    is_int(strlen(h), 22 + bd_base64url_len(BD_PASSWORD_SALT_LEN) + 1
                      + bd_base64url_len(BD_PASSWORD_KEY_LEN),
           "then a 16-byte salt and a 32-byte key");
    ok(h[22 + bd_base64url_len(BD_PASSWORD_SALT_LEN)] == '$',
       "salt and key are split by '$'");
    is_int(strspn(h + 22, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_$"),
           strlen(h + 22), "both in base64url");

    is_int(verify(PW, h), 1, "the right password verifies");
    is_int(verify("correct horse battery stapl", h), 0,
           "a prefix of it does not");
    is_int(verify("correct horse battery staple!", h), 0,
           "nor one byte more");
    is_int(verify("Correct horse battery staple", h), 0,
           "nor another case");
    is_int(bd_password_verify(PW "\0x", sizeof(PW) + 1, h), 0,
           "the length counts, not the NUL");

    rc = bd_password_hash(S(PW), &cheap, h2);
    ok(rc == 0 && strcmp(h, h2) != 0,
       "the same password hashes differently each time (fresh salt)");
    is_int(verify(PW, h2), 1, "and each verifies");

    strcpy(s, h);
    s[22] = (s[22] == 'A') ? 'B' : 'A';
    is_int(verify(PW, s), 0, "another salt does not verify");

    strcpy(s, h);
    i = 22 + bd_base64url_len(BD_PASSWORD_SALT_LEN) + 1;
    s[i] = (s[i] == 'A') ? 'B' : 'A';
    is_int(verify(PW, s), 0, "another key does not verify");

    /* the whole key is compared, not a prefix of it */
    strcpy(s, h);
    i = 22 + bd_base64url_len(BD_PASSWORD_SALT_LEN) + 1;
    n = bd_base64url_decode(s + i, strlen(s + i), key);
    key[n - 1] ^= 0x01;
    bd_base64url_encode(key, n, s + i);
    is_int(verify(PW, s), 0, "a key that differs in its last bit only");

    strcpy(s, h);
    s[12] = '1';
    is_int(verify(PW, s), 0, "another cost does not verify");

    rc = bd_password_hash("", 0, &cheap, h2);
    is_int(rc, 0, "an empty password hashes");
    is_int(verify("", h2), 1, "and verifies");
    is_int(verify("x", h2), 0, "and nothing else does");

    memset(big, 0xa5, sizeof(big));
    rc = bd_password_hash(big, sizeof(big), &cheap, h2);
    is_int(rc, 0, "a longest password hashes");
    is_int(bd_password_verify(big, sizeof(big), h2), 1, "and verifies");
    is_int(bd_password_verify(big, sizeof(big) - 1, h2), 0,
           "one byte short does not");

    /* costs outside the bounds are refused before any work */

    c = cheap; c.ln = 9;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses ln 9");
    c = cheap; c.ln = 21;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses ln 21");
    c = cheap; c.r = 0;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses r 0");
    c = cheap; c.r = 33;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses r 33");
    c = cheap; c.p = 0;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses p 0");
    c = cheap; c.p = 17;
    is_int(bd_password_hash(S(PW), &c, h2), -1, "hash refuses p 17");
    c = cheap; c.ln = 18; c.r = 8;
    is_int(bd_password_hash(S(PW), &c, h2), 0,
           "256 MiB (ln 18, r 8) is the most memory taken");
    c = cheap; c.ln = 19; c.r = 8;
    is_int(bd_password_hash(S(PW), &c, h2), -1,
           "hash refuses 512 MiB (ln 19, r 8)");

    /* a known answer: RFC 7914's vector, through our own parser */

    plen = bd_base64url_encode(rfc7914_key, sizeof(rfc7914_key), enc);
    is_str(enc, RFC7914_KEY, "the stored vector holds RFC 7914's key");
    is_int(plen, 86, "all 64 bytes of it");
    is_int(verify("pleaseletmein", RFC7914_STORED), 1,
           "RFC 7914: \"pleaseletmein\", \"SodiumChloride\", N=16384");
    is_int(verify("pleaseletmeio", RFC7914_STORED), 0,
           "and a wrong password against it");

    /* what verify accepts at its bounds, made by OpenSSL directly */

    make_stored(PW, 10, 8, 1, 8, 32, s);
    is_int(verify(PW, s), 1, "an 8-byte salt, the shortest");
    make_stored(PW, 10, 8, 1, 64, 32, s);
    is_int(verify(PW, s), 1, "a 64-byte salt, the longest");
    make_stored(PW, 10, 8, 1, 16, 16, s);
    is_int(verify(PW, s), 1, "a 16-byte key, the shortest");
    make_stored(PW, 10, 8, 1, 16, 64, s);
    is_int(verify(PW, s), 1, "a 64-byte key, the longest");
    make_stored(PW, 10, 1, 1, 16, 32, s);
    is_int(verify(PW, s), 1, "r 1");
    make_stored(PW, 10, 32, 1, 16, 32, s);
    is_int(verify(PW, s), 1, "r 32");
    make_stored(PW, 10, 1, 16, 16, 32, s);
    is_int(verify(PW, s), 1, "p 16");
    make_stored("other", 10, 8, 1, 16, 64, s);
    is_int(verify(PW, s), 0, "and a wrong password at a bound");

    /* a salt or key one byte past the bounds */

    make_stored(PW, 10, 8, 1, 16, 32, s);
    strcpy(strchr(s + 22, '$') + 1,
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAA");
    is_int(verify(PW, s), -1, "a 65-byte key is malformed");

    /* the default cost, end to end */

    rc = bd_password_hash(S(PW), NULL, h);
    is_int(rc, 0, "hashing at the default cost");
    is_mem(h, 22, "$scrypt$ln=15,r=8,p=3$", "which is ln=15, r=8, p=3");

    t = cpu_now();
    rc = verify(PW, h);
    t_default = cpu_now() - t;
    is_int(rc, 1, "and verifies");

    /* malformed strings: -1, each after a default-cost derivation */

    t_bad = 0;

    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        t = cpu_now();
        rc = verify(PW, malformed[i].stored);
        t = cpu_now() - t;

        is_int(rc, -1, malformed[i].name);

        if (i == 0 || t < t_bad) {
            t_bad = t;
        }
    }

    bd_password_hash(S(PW), &cheap, h2);

    t = cpu_now();
    verify(PW, h2);
    t_cheap = cpu_now() - t;

    t = cpu_now();
    bd_password_dummy(S(PW));
    t_dummy = cpu_now() - t;

    printf("# cpu: default %.3fs, malformed %.3fs at least, dummy %.3fs, "
           "cheap %.3fs\n",
           t_default, t_bad, t_dummy, t_cheap);

    ok(t_bad > t_default / 4 && t_bad > t_cheap * 8,
       "every malformed string costs a default-cost derivation");
    ok(t_dummy > t_default / 4 && t_dummy > t_cheap * 8,
       "so does the dummy for a user that does not exist");

    return tap_done();
}
