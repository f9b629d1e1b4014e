/*
 * BulletDrop: method + path routing for the JSON API.
 */

#include <string.h>

#include "bd_route.h"


static const struct {
    unsigned     bit;
    const char  *name;
} bd_route_methods[] = {
    { BD_METHOD_GET,     "GET" },
    { BD_METHOD_HEAD,    "HEAD" },
    { BD_METHOD_POST,    "POST" },
    { BD_METHOD_PUT,     "PUT" },
    { BD_METHOD_PATCH,   "PATCH" },
    { BD_METHOD_DELETE,  "DELETE" },
    { BD_METHOD_OPTIONS, "OPTIONS" },
};


/*
 * Matches one pattern against the whole path, segment by segment; fills
 * params only on success.
 */
static int
bd_route_fits(const char *pattern, const char *path, size_t len,
    bd_route_match_t *m)
{
    size_t       nparams, seg;
    const char  *p, *end, *pseg;
    bd_slice_t   params[BD_ROUTE_MAX_PARAMS];

    p = path;
    end = path + len;
    nparams = 0;

    while (*pattern != '\0') {

        if (*pattern != '/' || p == end || *p != '/') {
            return 0;
        }

        pattern++;
        p++;

        pseg = pattern;
        while (*pattern != '\0' && *pattern != '/') {
            pattern++;
        }

        seg = 0;
        while (p + seg < end && p[seg] != '/') {
            seg++;
        }

        if (pattern - pseg > 1 && *pseg == ':') {
            if (seg == 0 || nparams == BD_ROUTE_MAX_PARAMS) {
                return 0;
            }

            params[nparams].data = p;
            params[nparams].len = seg;
            nparams++;

        } else if ((size_t) (pattern - pseg) != seg
                   || memcmp(pseg, p, seg) != 0)
        {
            return 0;
        }

        p += seg;
    }

    if (p != end) {
        return 0;
    }

    memcpy(m->params, params, nparams * sizeof(bd_slice_t));
    m->nparams = nparams;

    return 1;
}


bd_route_result_e
bd_route_match(const void *table, size_t n, size_t size, unsigned method,
    const char *path, size_t len, bd_route_match_t *m)
{
    size_t             i;
    unsigned           methods;
    const bd_route_t  *route;

    m->allowed = 0;
    m->nparams = 0;

    for (i = 0; i < n; i++) {
        route = (const bd_route_t *) ((const char *) table + i * size);

        if (!bd_route_fits(route->pattern, path, len, m)) {
            continue;
        }

        methods = route->methods;
        if (methods & BD_METHOD_GET) {
            methods |= BD_METHOD_HEAD;
        }

        if (methods & method) {
            m->index = i;
            return BD_ROUTE_FOUND;
        }

        m->allowed |= methods;
    }

    m->nparams = 0;

    return m->allowed ? BD_ROUTE_METHOD_NOT_ALLOWED : BD_ROUTE_NOT_FOUND;
}


size_t
bd_route_allow(unsigned methods, char *buf, size_t size)
{
    size_t       i, len, n;
    const char  *name;

    len = 0;

    for (i = 0; i < sizeof(bd_route_methods) / sizeof(bd_route_methods[0]);
         i++)
    {
        if (!(methods & bd_route_methods[i].bit)) {
            continue;
        }

        name = bd_route_methods[i].name;
        n = strlen(name);

        if (len && len + 2 < size) {
            memcpy(buf + len, ", ", 2);
        }
        len += len ? 2 : 0;

        if (len + n < size) {
            memcpy(buf + len, name, n);
        }
        len += n;
    }

    /* all or nothing: a short buffer gets an empty string */
    if (size) {
        buf[len < size ? len : 0] = '\0';
    }

    return len;
}
