/*
 * BulletDrop: method + path routing for the JSON API.
 *
 * Pure C (libc only) so that t/ can unit-test it and fuzz/ can fuzz it.
 * A route table is an array of caller structs whose first member is a
 * bd_route_t; the matcher walks it with the element size, like qsort().
 */

#ifndef _BD_ROUTE_H_INCLUDED_
#define _BD_ROUTE_H_INCLUDED_

#include <stddef.h>


#define BD_METHOD_GET      0x0001
#define BD_METHOD_HEAD     0x0002
#define BD_METHOD_POST     0x0004
#define BD_METHOD_PUT      0x0008
#define BD_METHOD_PATCH    0x0010
#define BD_METHOD_DELETE   0x0020
#define BD_METHOD_OPTIONS  0x0040

#define BD_ROUTE_MAX_PARAMS  4


typedef struct {
    /* BD_METHOD_* bits; a route that takes GET takes HEAD too */
    unsigned      methods;
    /* "/api/uploads/:id": a ":name" segment matches one non-empty segment */
    const char   *pattern;
} bd_route_t;


typedef struct {
    const char   *data;
    size_t        len;
} bd_slice_t;


typedef struct {
    size_t        index;
    /* methods of every route whose pattern fits the path, for "Allow" */
    unsigned      allowed;
    size_t        nparams;
    bd_slice_t    params[BD_ROUTE_MAX_PARAMS];
} bd_route_match_t;


typedef enum {
    BD_ROUTE_FOUND = 0,
    BD_ROUTE_NOT_FOUND,
    BD_ROUTE_METHOD_NOT_ALLOWED
} bd_route_result_e;


bd_route_result_e bd_route_match(const void *table, size_t n, size_t size,
    unsigned method, const char *path, size_t len, bd_route_match_t *m);

/*
 * Writes "GET, HEAD, POST" for the bits set, NUL-terminated; returns the
 * length, or the length needed when size is too small (like snprintf).
 */
size_t bd_route_allow(unsigned methods, char *buf, size_t size);


#endif /* _BD_ROUTE_H_INCLUDED_ */
