/*
 * BulletDrop: a screenshot and file host inside nginx.
 *
 * This file is the table of contents: the module, its directives, its
 * configuration and where it hooks into nginx.  The work is in src/.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_bulletdrop.h"
#include "ngx_http_bulletdrop_api.h"


static void *ngx_http_bulletdrop_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_bulletdrop_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_bulletdrop_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_bulletdrop_init_process(ngx_cycle_t *cycle);
static void ngx_http_bulletdrop_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_bulletdrop_db_pool_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_bulletdrop_db_queue_bounds = {
    ngx_conf_check_num_bounds, 0, 1048576
};


static ngx_command_t  ngx_http_bulletdrop_commands[] = {

    { ngx_string("bulletdrop_db"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_bulletdrop_db_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, db),
      NULL },

    { ngx_string("bulletdrop_db_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, db.pool_size),
      &ngx_http_bulletdrop_db_pool_bounds },

    { ngx_string("bulletdrop_db_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, db.timeout),
      NULL },

    { ngx_string("bulletdrop_db_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, db.queue_size),
      &ngx_http_bulletdrop_db_queue_bounds },

    { ngx_string("bulletdrop_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_bulletdrop_api,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_bulletdrop_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_bulletdrop_create_main_conf,  /* create main configuration */
    ngx_http_bulletdrop_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_bulletdrop_module = {
    NGX_MODULE_V1,
    &ngx_http_bulletdrop_module_ctx,       /* module context */
    ngx_http_bulletdrop_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_bulletdrop_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_bulletdrop_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_bulletdrop_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulletdrop_main_conf_t));
    if (bmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     bmcf->db.options = NULL;
     *     bmcf->db.pool = NULL;
     *     bmcf->api = 0;
     */

    bmcf->db.pool_size = NGX_CONF_UNSET;
    bmcf->db.timeout = NGX_CONF_UNSET_MSEC;
    bmcf->db.queue_size = NGX_CONF_UNSET;

    return bmcf;
}


static char *
ngx_http_bulletdrop_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    if (bmcf->db.timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_db_timeout\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (bmcf->api && bmcf->db.options == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_api\" needs \"bulletdrop_db\" "
                           "in the http block");
        return NGX_CONF_ERROR;
    }

    return ngx_http_bulletdrop_db_init_conf(cf, &bmcf->db);
}


static char *
ngx_http_bulletdrop_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_bulletdrop_api_handler;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulletdrop_module);
    bmcf->api = 1;

    return NGX_CONF_OK;
}


/* workers only: cache manager and loader processes run this too */

static ngx_int_t
ngx_http_bulletdrop_init_process(ngx_cycle_t *cycle)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    bmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_bulletdrop_module);
    if (bmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_bulletdrop_db_init_process(cycle, &bmcf->db);
}


static void
ngx_http_bulletdrop_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_bulletdrop_module);
    if (bmcf == NULL) {
        return;
    }

    ngx_http_bulletdrop_db_exit_process(&bmcf->db);
}
