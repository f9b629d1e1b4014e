/*
 * BulletDrop: what every nginx-facing file of the module shares.
 */

#ifndef _NGX_HTTP_BULLETDROP_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_bulletdrop_db.h"


typedef struct {
    ngx_http_bulletdrop_db_conf_t   db;

    /* some location has "bulletdrop_api" */
    unsigned                        api:1;
} ngx_http_bulletdrop_main_conf_t;


extern ngx_module_t  ngx_http_bulletdrop_module;


#endif /* _NGX_HTTP_BULLETDROP_H_INCLUDED_ */
