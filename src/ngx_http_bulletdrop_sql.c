/*
 * BulletDrop: every SQL statement the module sends, in one place.
 */

#include "ngx_http_bulletdrop_sql.h"


const ngx_http_bulletdrop_sql_t
    ngx_http_bulletdrop_sql[NGX_HTTP_BULLETDROP_SQL_N] =
{
    /* a real round trip through the pool, touching no table */
    [NGX_HTTP_BULLETDROP_SQL_HEALTH] = {
        "bd_health",
        "SELECT 1",
        0, 1
    },
};
