/*
 * BulletDrop: a fixed-size table of failure counters, for limiting login
 * attempts per user name and per client address.  It lives in a shared
 * memory zone; the caller holds the zone's lock around every call.  Pure C
 * (libc only) so that t/ can unit-test it.
 *
 * Each key has a window that starts at its first failure and lasts
 * `period` seconds; `max` failures inside a window block the key until the
 * window ends.  A full table evicts, among the few slots a key may live
 * in, an ended window first, else the entry with the fewest failures (the
 * oldest of those), so the table never refuses a new key and a key being
 * blocked is the last to be forgotten.  Keys are hashed with a secret
 * seed, so that nobody can choose keys that share a victim's slots.
 */

#ifndef _BD_LIMIT_H_INCLUDED_
#define _BD_LIMIT_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>


#define BD_LIMIT_KEY_MAX  48     /* bytes of key kept; longer keys are cut */
#define BD_LIMIT_PROBES   8      /* slots a key may occupy */


typedef struct {
    uint64_t        hash;
    int64_t         window_start;     /* seconds; 0: a free slot */
    uint32_t        count;
    uint8_t         len;
    unsigned char   key[BD_LIMIT_KEY_MAX];
} bd_limit_slot_t;


typedef struct {
    uint64_t         seed;
    uint32_t         nslots;
    bd_limit_slot_t  slots[];
} bd_limit_t;


/* bytes needed for a table of n slots */
size_t bd_limit_size(uint32_t nslots);

/* how many slots fit in size bytes */
uint32_t bd_limit_slots_for(size_t size);

/* seed: random, kept secret */
void bd_limit_init(bd_limit_t *t, uint32_t nslots, uint64_t seed);

/*
 * Seconds the key must still wait (its window's end minus now) when it has
 * max or more failures in a live window; 0 when it may try.
 */
int64_t bd_limit_check(bd_limit_t *t, const void *key, size_t len,
    int64_t now, uint32_t max, int64_t period);

/* counts one failure; a window that has ended starts anew at now */
void bd_limit_fail(bd_limit_t *t, const void *key, size_t len, int64_t now,
    int64_t period);

/* forgets the key (a successful login clears its user name) */
void bd_limit_reset(bd_limit_t *t, const void *key, size_t len);

/*
 * takes back one failure: a login counts one up front, so that attempts
 * in flight at once are limited too, and gives it back if it succeeds
 */
void bd_limit_refund(bd_limit_t *t, const void *key, size_t len);


#endif /* _BD_LIMIT_H_INCLUDED_ */
