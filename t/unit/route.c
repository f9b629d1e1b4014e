/*
 * Unit tests for src/bd_route.c: the API's method and path routing.
 */

#include <string.h>

#include "tap.h"
#include "bd_route.h"


typedef struct {
    bd_route_t   route;
    const char  *name;
} test_route_t;


static const test_route_t  routes[] = {
    { { BD_METHOD_GET, "/api/health" }, "health" },
    { { BD_METHOD_GET|BD_METHOD_POST, "/api/uploads" }, "uploads" },
    { { BD_METHOD_GET|BD_METHOD_DELETE, "/api/uploads/:id" }, "upload" },
    { { BD_METHOD_POST, "/api/uploads/sharex" }, "sharex" },
    { { BD_METHOD_DELETE, "/api/users/me/api-keys/:id" }, "key" },
    { { BD_METHOD_PATCH, "/api/a/:x/b/:y" }, "two" },
};

#define NROUTES  (sizeof(routes) / sizeof(routes[0]))


static bd_route_result_e
match(unsigned method, const char *path, bd_route_match_t *m)
{
    return bd_route_match(routes, NROUTES, sizeof(test_route_t), method,
                          path, strlen(path), m);
}


int
main(void)
{
    char               buf[64];
    size_t             len;
    bd_route_match_t   m;
    bd_route_result_e  rc;

    rc = match(BD_METHOD_GET, "/api/health", &m);
    is_int(rc, BD_ROUTE_FOUND, "a literal route matches");
    is_str(routes[m.index].name, "health", "and names its table entry");
    is_int(m.nparams, 0, "with no parameters");

    rc = match(BD_METHOD_HEAD, "/api/health", &m);
    is_int(rc, BD_ROUTE_FOUND, "HEAD is taken wherever GET is");

    rc = match(BD_METHOD_POST, "/api/health", &m);
    is_int(rc, BD_ROUTE_METHOD_NOT_ALLOWED, "a known path, wrong method");
    is_int(m.allowed, BD_METHOD_GET|BD_METHOD_HEAD,
           "reports the methods the path takes");

    rc = match(BD_METHOD_GET, "/api/healthz", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a longer segment does not match");

    rc = match(BD_METHOD_GET, "/api/health/", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a trailing slash does not match");

    rc = match(BD_METHOD_GET, "/api/heal", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a prefix of a route does not match");

    rc = match(BD_METHOD_GET, "/api", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a parent path does not match");

    rc = match(BD_METHOD_GET, "", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "an empty path does not match");

    rc = match(BD_METHOD_GET, "/api/uploads/abc_DEF-123", &m);
    is_int(rc, BD_ROUTE_FOUND, "a parameter segment matches");
    is_str(routes[m.index].name, "upload", "the parameter route");
    is_int(m.nparams, 1, "one parameter");
    is_mem(m.params[0].data, m.params[0].len, "abc_DEF-123",
           "the parameter is the segment");

    rc = match(BD_METHOD_POST, "/api/uploads/sharex", &m);
    is_int(rc, BD_ROUTE_FOUND, "a literal beside a parameter route");
    is_str(routes[m.index].name, "sharex", "the literal route wins for POST");

    rc = match(BD_METHOD_GET, "/api/uploads/sharex", &m);
    is_int(rc, BD_ROUTE_FOUND, "GET on the same path falls to the parameter");
    is_str(routes[m.index].name, "upload", "which takes GET");
    is_mem(m.params[0].data, m.params[0].len, "sharex", "with its value");

    rc = match(BD_METHOD_PUT, "/api/uploads/sharex", &m);
    is_int(rc, BD_ROUTE_METHOD_NOT_ALLOWED, "no route there takes PUT");
    is_int(m.allowed, BD_METHOD_GET|BD_METHOD_HEAD|BD_METHOD_DELETE
                      |BD_METHOD_POST,
           "allowed is the union over every route that fits the path");

    rc = match(BD_METHOD_GET, "/api/uploads/", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a parameter is never empty");

    rc = match(BD_METHOD_GET, "/api/uploads/a/b", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a parameter is one segment only");

    rc = match(BD_METHOD_PATCH, "/api/a/1/b/22", &m);
    is_int(rc, BD_ROUTE_FOUND, "two parameters");
    is_int(m.nparams, 2, "both captured");
    is_mem(m.params[0].data, m.params[0].len, "1", "first");
    is_mem(m.params[1].data, m.params[1].len, "22", "second");

    rc = match(BD_METHOD_PATCH, "/api/a/1/c/22", &m);
    is_int(rc, BD_ROUTE_NOT_FOUND, "a literal after a parameter must match");
    is_int(m.nparams, 0, "no parameters are left behind on failure");

    rc = match(BD_METHOD_DELETE, "/api/users/me/api-keys/7", &m);
    is_int(rc, BD_ROUTE_FOUND, "a deep route");
    is_mem(m.params[0].data, m.params[0].len, "7", "its parameter");

    rc = match(0, "/api/health", &m);
    is_int(rc, BD_ROUTE_METHOD_NOT_ALLOWED, "an unknown method is refused");

    rc = bd_route_match(routes, NROUTES, sizeof(test_route_t), BD_METHOD_GET,
                        "/api/healthXYZ", 11, &m);
    is_int(rc, BD_ROUTE_FOUND, "the path length bounds the match, not NUL");

    len = bd_route_allow(BD_METHOD_GET|BD_METHOD_HEAD|BD_METHOD_DELETE, buf,
                         sizeof(buf));
    is_str(buf, "GET, HEAD, DELETE", "Allow lists methods in a fixed order");
    is_int(len, strlen("GET, HEAD, DELETE"), "and returns its length");

    len = bd_route_allow(BD_METHOD_GET|BD_METHOD_POST, buf, 5);
    is_int(len, strlen("GET, POST"), "a short buffer reports what it needs");
    is_str(buf, "", "and is left empty rather than cut");

    len = bd_route_allow(BD_METHOD_GET|BD_METHOD_POST, NULL, 0);
    is_int(len, strlen("GET, POST"), "sizing with no buffer at all");

    len = bd_route_allow(0, buf, sizeof(buf));
    is_int(len, 0, "no methods, empty list");
    is_str(buf, "", "an empty string");

    return tap_done();
}
