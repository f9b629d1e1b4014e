/*
 * Unit tests for src/bd_limit.c: the login failure limiter's table.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "bd_limit.h"


#define S(s)  (s), (sizeof(s) - 1)

#define MAX     3
#define PERIOD  60


/* exactly the bytes asked for, so that the sanitizer sees any overrun */
static bd_limit_t *
table(uint32_t nslots)
{
    bd_limit_t  *t;

    t = malloc(bd_limit_size(nslots));
    memset(t, 0xee, bd_limit_size(nslots));
    bd_limit_init(t, nslots, 0);

    return t;
}


static int64_t
check(bd_limit_t *t, const char *key, int64_t now)
{
    return bd_limit_check(t, key, strlen(key), now, MAX, PERIOD);
}


/* max 1: any failure blocks, so the answer tells whether the key is kept */
static int64_t
check1(bd_limit_t *t, const char *key, int64_t now)
{
    return bd_limit_check(t, key, strlen(key), now, 1, PERIOD);
}


static void
fail(bd_limit_t *t, const char *key, int64_t now)
{
    bd_limit_fail(t, key, strlen(key), now, PERIOD);
}


int
main(void)
{
    int          all;
    char         keys[32][8], long1[100], long2[100];
    size_t       size;
    uint32_t     i, k, moved;
    bd_limit_t  *t;

    /* sizes */

    size = bd_limit_size(100);
    ok(size >= 100 * sizeof(bd_limit_slot_t), "a table holds its slots");
    is_int(bd_limit_slots_for(size), 100, "and the size gives them back");
    is_int(bd_limit_slots_for(size - 1), 99, "one byte short, one slot less");
    is_int(bd_limit_slots_for(bd_limit_size(0)), 0, "room for no slot");
    is_int(bd_limit_slots_for(0), 0, "no room at all");

    /* counting and blocking */

    t = table(1024);

    is_int(check(t, "alice", 1000), 0, "an unknown key may try");

    fail(t, "alice", 1000);
    fail(t, "alice", 1001);
    is_int(check(t, "alice", 1001), 0, "max - 1 failures may still try");

    fail(t, "alice", 1002);
    is_int(check(t, "alice", 1002), 58,
           "max failures block until the window from the first one ends");
    is_int(check(t, "alice", 1059), 1, "one second before its end");
    is_int(check(t, "alice", 1060), 0, "free when the window has ended");
    is_int(bd_limit_check(t, S("alice"), 1030, 4, PERIOD), 0,
           "a higher max is not yet reached");

    is_int(check(t, "bob", 1002), 0, "another key is not blocked");
    is_int(check(t, "alic", 1002), 0, "nor is a prefix of the key");
    is_int(check(t, "alicex", 1002), 0, "nor a longer key");

    fail(t, "alice", 1060);
    is_int(check(t, "alice", 1060), 0,
           "a failure after the window starts a new count");
    fail(t, "alice", 1070);
    fail(t, "alice", 1080);
    is_int(check(t, "alice", 1080), 40,
           "the new window runs from its first failure");

    fail(t, "alice", 1090);
    is_int(check(t, "alice", 1090), 30,
           "failing more does not stretch the window");

    bd_limit_reset(t, S("alice"));
    is_int(check(t, "alice", 1090), 0, "reset lets the key try at once");
    fail(t, "alice", 1091);
    fail(t, "alice", 1092);
    is_int(check(t, "alice", 1092), 0, "and counts from zero again");
    fail(t, "alice", 1093);
    is_int(check(t, "alice", 1093), 58, "in a window that starts anew");

    bd_limit_reset(t, S("nobody"));
    is_int(check(t, "alice", 1093), 58, "resetting an unknown key is harmless");

    bd_limit_fail(t, "\0\1", 2, 1000, PERIOD);
    bd_limit_fail(t, "\0\1", 2, 1000, PERIOD);
    bd_limit_fail(t, "\0\1", 2, 1000, PERIOD);
    is_int(bd_limit_check(t, "\0\1", 2, 1000, MAX, PERIOD), PERIOD,
           "binary keys (an address) count by their bytes");
    is_int(bd_limit_check(t, "\0\2", 2, 1000, MAX, PERIOD), 0,
           "not by their C string");

    /* long keys are cut, the same way every time */

    memset(long1, 'k', sizeof(long1));
    memset(long2, 'k', sizeof(long2));
    long2[BD_LIMIT_KEY_MAX] = 'x';
    long2[sizeof(long2) - 1] = 'y';

    for (i = 0; i < MAX; i++) {
        bd_limit_fail(t, long1, sizeof(long1), 2000, PERIOD);
    }

    is_int(bd_limit_check(t, long1, sizeof(long1), 2000, MAX, PERIOD), PERIOD,
           "a key longer than the maximum is counted");
    is_int(bd_limit_check(t, long2, sizeof(long2), 2000, MAX, PERIOD), PERIOD,
           "as one with the same first BD_LIMIT_KEY_MAX bytes");
    is_int(bd_limit_check(t, long1, BD_LIMIT_KEY_MAX, 2000, MAX, PERIOD),
           PERIOD, "and as those bytes alone");
    is_int(bd_limit_check(t, long1, BD_LIMIT_KEY_MAX - 1, 2000, MAX, PERIOD),
           0, "but one byte fewer is another key");

    for (i = 0; i < t->nslots; i++) {
        if (t->slots[i].window_start == 2000) {
            break;
        }
    }

    ok(i < t->nslots, "the long key has a slot");
    is_mem((char *) t->slots[i % t->nslots].key, t->slots[i % t->nslots].len,
           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
           "which keeps its first BD_LIMIT_KEY_MAX bytes");

    bd_limit_reset(t, long2, sizeof(long2));
    is_int(bd_limit_check(t, long1, sizeof(long1), 2000, MAX, PERIOD), 0,
           "and a reset through any spelling frees it");

    free(t);

    /* a full table: every key shares the same BD_LIMIT_PROBES slots */

    t = table(BD_LIMIT_PROBES);

    for (i = 0; i < 32; i++) {
        sprintf(keys[i], "k%u", (unsigned) i);
    }

    /* key i fails first at 100 + i and, with max 1, waits 60 - (now - i) */

    for (i = 0; i < BD_LIMIT_PROBES; i++) {
        fail(t, keys[i], 100 + i);
    }

    all = 1;
    for (i = 0; i < BD_LIMIT_PROBES; i++) {
        all &= (check1(t, keys[i], 100 + BD_LIMIT_PROBES)
                == PERIOD - BD_LIMIT_PROBES + i);
    }
    ok(all, "a full table keeps as many keys as it has slots");

    fail(t, keys[8], 108);
    is_int(check1(t, keys[8], 108), PERIOD, "a new key is never refused");
    is_int(check1(t, keys[0], 108), 0,
           "it evicts the key whose window is oldest");

    all = 1;
    for (i = 1; i <= 8; i++) {
        all &= (check1(t, keys[i], 108) == PERIOD - 8 + i);
    }
    ok(all, "and only that one");

    fail(t, keys[1], 108);
    is_int(bd_limit_check(t, keys[1], 2, 108, 2, PERIOD), PERIOD - 7,
           "failing again counts in the window as it began");
    fail(t, keys[9], 108);
    is_int(check1(t, keys[2], 108), 0,
           "the fewest failures go first, the oldest of those");
    is_int(check1(t, keys[1], 108), PERIOD - 7,
           "an older key with more failures stays");

    bd_limit_reset(t, keys[5], 2);

    all = 1;
    for (i = 1; i <= 9; i++) {
        if (i == 2) {
            continue;
        }

        all &= (check1(t, keys[i], 108)
                == (i == 5 ? 0 : PERIOD - 8 + (i < 8 ? i : 8)));
    }
    ok(all, "a reset frees its key and hides no other behind the hole");

    fail(t, keys[10], 108);

    all = 1;
    for (i = 1; i <= 10; i++) {
        if (i == 2) {
            continue;
        }

        all &= (check1(t, keys[i], 108) > 0) == (i != 5);
    }
    ok(all, "the freed slot is taken before any key is evicted");

    /* a failure counted up front and given back */

    bd_limit_init(t, BD_LIMIT_PROBES, 0);
    fail(t, "bob", 100);
    fail(t, "bob", 100);
    is_int(bd_limit_check(t, S("bob"), 100, 2, PERIOD), PERIOD,
           "two failures block at max 2");
    bd_limit_refund(t, S("bob"));
    is_int(bd_limit_check(t, S("bob"), 100, 2, PERIOD), 0,
           "one given back unblocks");
    is_int(bd_limit_check(t, S("bob"), 100, 1, PERIOD), PERIOD,
           "and one is still counted");
    bd_limit_refund(t, S("bob"));
    bd_limit_refund(t, S("bob"));
    is_int(bd_limit_check(t, S("bob"), 100, 1, PERIOD), 0,
           "refunds stop at zero");
    bd_limit_refund(t, S("nobody"));
    ok(1, "refunding an unknown key is harmless");

    /* the seed decides where keys live */

    bd_limit_init(t, BD_LIMIT_PROBES, 0);
    fail(t, keys[0], 100);
    k = 0;

    for (i = 0; i < BD_LIMIT_PROBES; i++) {
        if (t->slots[i].window_start != 0) {
            k = i;
        }
    }

    moved = 0;
    for (i = 1; i < 64 && !moved; i++) {
        bd_limit_init(t, BD_LIMIT_PROBES, 0x9e3779b97f4a7c15ULL * i);
        fail(t, keys[0], 100);
        moved = (t->slots[k].window_start == 0);
    }
    ok(moved, "another seed puts a key in another slot");

    /*
     * No tombstones: a key pushed past its home slot must still be found
     * when a slot before it is freed.  Free each slot in turn.
     */

    all = 1;
    moved = 0;

    for (k = 0; k < BD_LIMIT_PROBES; k++) {
        bd_limit_init(t, BD_LIMIT_PROBES, 0);

        for (i = 0; i < BD_LIMIT_PROBES; i++) {
            fail(t, keys[i], 100);
        }

        for (i = 0; i < BD_LIMIT_PROBES; i++) {
            moved += (t->slots[i].hash % BD_LIMIT_PROBES != i);
        }

        bd_limit_reset(t, keys[k], strlen(keys[k]));

        for (i = 0; i < BD_LIMIT_PROBES; i++) {
            all &= ((check1(t, keys[i], 100) > 0) == (i != k));
        }
    }

    ok(moved > 0, "some keys live past their home slot");
    ok(all, "and a freed slot before them never hides them");

    /* with one period for all, an expired window is the oldest */

    bd_limit_init(t, BD_LIMIT_PROBES, 0);

    for (i = 0; i < BD_LIMIT_PROBES; i++) {
        fail(t, keys[i], 1000 + i);
    }

    fail(t, keys[20], 1000 + PERIOD);
    is_int(check1(t, keys[0], 1000 + PERIOD), 0,
           "the expired entry made room");
    is_int(check1(t, keys[1], 1000 + PERIOD), 1, "a live one stayed");
    is_int(check1(t, keys[20], 1000 + PERIOD), PERIOD, "for the new key");

    free(t);

    /* a table smaller than the probe run */

    t = table(3);

    for (i = 0; i < 4; i++) {
        fail(t, keys[i], 100 + i);
    }

    is_int(check1(t, keys[0], 103), 0,
           "three slots, four keys: the oldest went");

    all = 1;
    for (i = 1; i < 4; i++) {
        all &= (check1(t, keys[i], 103) > 0);
    }
    ok(all, "and the other three stayed");

    free(t);

    /* a table with no slots counts nothing and blocks nothing */

    t = table(0);
    fail(t, "alice", 100);
    is_int(bd_limit_check(t, S("alice"), 100, 0, PERIOD), 0,
           "an empty table never blocks");
    bd_limit_reset(t, S("alice"));
    free(t);

    return tap_done();
}
