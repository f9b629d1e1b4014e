/*
 * BulletDrop: a fixed-size table of failure counters.
 *
 * Open addressing without tombstones: a key lives in one of the
 * BD_LIMIT_PROBES slots from its hash onwards, and every lookup looks at
 * all of them instead of stopping at the first free one, so freeing a slot
 * never hides a key behind it.
 */

#include <stddef.h>
#include <string.h>

#include "bd_limit.h"


typedef struct {
    uint64_t              hash;
    size_t                len;
    const unsigned char  *key;
} bd_limit_key_t;


static void
bd_limit_key(bd_limit_t *t, bd_limit_key_t *k, const void *key, size_t len)
{
    size_t    i;
    uint64_t  h;

    /* cut before hashing, so that a long key always finds itself */
    if (len > BD_LIMIT_KEY_MAX) {
        len = BD_LIMIT_KEY_MAX;
    }

    k->key = key;
    k->len = len;

    /*
     * FNV-1a from a secret start: without the table's seed nobody can
     * pick names that crowd a victim's slots and push its count out
     */
    h = 0xcbf29ce484222325ULL ^ t->seed;

    for (i = 0; i < len; i++) {
        h ^= k->key[i];
        h *= 0x100000001b3ULL;
    }

    /*
     * FNV's last byte reaches only the low bits it touched, so "k1" and
     * "k2" would land side by side; a finalizer (MurmurHash3's) spreads it.
     */
    h ^= t->seed >> 29;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;

    k->hash = h;
}


static uint32_t
bd_limit_probes(bd_limit_t *t)
{
    /* a table smaller than the probe run must not visit a slot twice */
    return t->nslots < BD_LIMIT_PROBES ? t->nslots : BD_LIMIT_PROBES;
}


static bd_limit_slot_t *
bd_limit_find(bd_limit_t *t, const bd_limit_key_t *k)
{
    uint32_t          i, n, start;
    bd_limit_slot_t  *s;

    n = bd_limit_probes(t);
    start = n ? (uint32_t) (k->hash % t->nslots) : 0;

    for (i = 0; i < n; i++) {
        s = &t->slots[(start + i) % t->nslots];

        if (s->window_start != 0
            && s->hash == k->hash
            && s->len == k->len
            && memcmp(s->key, k->key, k->len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


size_t
bd_limit_size(uint32_t nslots)
{
    return offsetof(bd_limit_t, slots) + nslots * sizeof(bd_limit_slot_t);
}


uint32_t
bd_limit_slots_for(size_t size)
{
    size_t  n;

    if (size < offsetof(bd_limit_t, slots)) {
        return 0;
    }

    n = (size - offsetof(bd_limit_t, slots)) / sizeof(bd_limit_slot_t);

    return n > UINT32_MAX ? UINT32_MAX : (uint32_t) n;
}


void
bd_limit_init(bd_limit_t *t, uint32_t nslots, uint64_t seed)
{
    t->nslots = nslots;
    t->seed = seed;
    memset(t->slots, 0, nslots * sizeof(bd_limit_slot_t));
}


/*
 * "now" is unix time; a window_start of 0 marks a free slot, so a clock
 * at or before the epoch is read as 1 rather than freeing what it writes.
 */

int64_t
bd_limit_check(bd_limit_t *t, const void *key, size_t len, int64_t now,
    uint32_t max, int64_t period)
{
    int64_t           elapsed;
    bd_limit_key_t    k;
    bd_limit_slot_t  *s;

    if (now < 1) {
        now = 1;
    }

    bd_limit_key(t, &k, key, len);

    s = bd_limit_find(t, &k);
    if (s == NULL || s->count < max) {
        return 0;
    }

    /* a clock that stepped back does not stretch the window */
    elapsed = now - s->window_start;
    if (elapsed < 0) {
        elapsed = 0;
    }

    if (elapsed >= period) {
        return 0;
    }

    return period - elapsed;
}


void
bd_limit_fail(bd_limit_t *t, const void *key, size_t len, int64_t now,
    int64_t period)
{
    uint32_t          i, n, start;
    bd_limit_key_t    k;
    bd_limit_slot_t  *s, *victim;

    if (now < 1) {
        now = 1;
    }

    n = bd_limit_probes(t);
    if (n == 0) {
        return;
    }

    bd_limit_key(t, &k, key, len);

    s = bd_limit_find(t, &k);

    if (s == NULL) {
        start = (uint32_t) (k.hash % t->nslots);
        victim = NULL;

        /*
         * A free slot, else an ended window, else the fewest failures
         * (a name being blocked is the last to go), the oldest of those
         */
        for (i = 0; i < n; i++) {
            s = &t->slots[(start + i) % t->nslots];

            if (s->window_start == 0 || now - s->window_start >= period) {
                victim = s;
                break;
            }

            if (victim == NULL
                || s->count < victim->count
                || (s->count == victim->count
                    && s->window_start < victim->window_start))
            {
                victim = s;
            }
        }

        s = victim;

        s->hash = k.hash;
        s->len = (uint8_t) k.len;
        memcpy(s->key, k.key, k.len);
        s->window_start = 0;
    }

    if (s->window_start == 0 || now - s->window_start >= period) {
        s->window_start = now;
        s->count = 0;
    }

    if (s->count < UINT32_MAX) {
        s->count++;
    }
}


void
bd_limit_reset(bd_limit_t *t, const void *key, size_t len)
{
    bd_limit_key_t    k;
    bd_limit_slot_t  *s;

    bd_limit_key(t, &k, key, len);

    s = bd_limit_find(t, &k);
    if (s != NULL) {
        memset(s, 0, sizeof(bd_limit_slot_t));
    }
}


void
bd_limit_refund(bd_limit_t *t, const void *key, size_t len)
{
    bd_limit_key_t    k;
    bd_limit_slot_t  *s;

    bd_limit_key(t, &k, key, len);

    s = bd_limit_find(t, &k);
    if (s != NULL && s->count > 0) {
        s->count--;
    }
}
