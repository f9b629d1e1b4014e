/*
 * A minimal TAP producer for the pure C unit tests (prove reads it).
 */

#ifndef _BD_TAP_H_INCLUDED_
#define _BD_TAP_H_INCLUDED_

#include <stdio.h>
#include <string.h>

/* a test uses some of these helpers, not all */
#define TAP_UNUSED  __attribute__((unused))

static int  tap_n;
static int  tap_failed;

#define ok(cond, ...)                                                         \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                \
    tap_is_int((long) (got), (long) (want), __FILE__, __LINE__, __VA_ARGS__)

#define is_str(got, want, ...)                                                \
    tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#define is_mem(got, glen, want, ...)                                          \
    tap_is_mem((got), (glen), (want), __FILE__, __LINE__, __VA_ARGS__)


static TAP_UNUSED int
tap_ok(int pass, const char *file, int line, const char *name, ...)
{
    tap_n++;
    printf("%sok %d - %s\n", pass ? "" : "not ", tap_n, name);

    if (!pass) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
    }

    return pass;
}


static TAP_UNUSED void
tap_is_int(long got, long want, const char *file, int line, const char *name)
{
    if (!tap_ok(got == want, file, line, name)) {
        printf("#          got: %ld\n#     expected: %ld\n", got, want);
    }
}


static TAP_UNUSED void
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *name)
{
    if (!tap_ok(got && want && strcmp(got, want) == 0, file, line, name)) {
        printf("#          got: '%s'\n#     expected: '%s'\n",
               got ? got : "(null)", want ? want : "(null)");
    }
}


static TAP_UNUSED void
tap_is_mem(const char *got, size_t glen, const char *want, const char *file,
    int line, const char *name)
{
    size_t  wlen = strlen(want);

    if (!tap_ok(got && glen == wlen && memcmp(got, want, wlen) == 0,
                file, line, name))
    {
        printf("#          got: '%.*s'\n#     expected: '%s'\n",
               (int) glen, got ? got : "", want);
    }
}


static TAP_UNUSED int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* _BD_TAP_H_INCLUDED_ */
