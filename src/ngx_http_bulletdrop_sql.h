/*
 * BulletDrop: every SQL statement the module sends, in one place.
 *
 * Each is prepared once per connection, on first use, and only ever
 * executed with parameters: no SQL is built from input.
 */

#ifndef _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_HTTP_BULLETDROP_SQL_HEALTH = 0,
    NGX_HTTP_BULLETDROP_SQL_N
} ngx_http_bulletdrop_sql_e;


typedef struct {
    const char  *name;
    const char  *sql;
    int          nparams;
    /* has no effect when run twice: may be resent after a broken connection */
    unsigned     read_only:1;
} ngx_http_bulletdrop_sql_t;


extern const ngx_http_bulletdrop_sql_t
    ngx_http_bulletdrop_sql[NGX_HTTP_BULLETDROP_SQL_N];


#endif /* _NGX_HTTP_BULLETDROP_SQL_H_INCLUDED_ */
