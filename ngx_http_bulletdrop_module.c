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
#include "ngx_http_bulletdrop_auth.h"
#include "ngx_http_bulletdrop_authcache.h"
#include "ngx_http_bulletdrop_commit.h"
#include "ngx_http_bulletdrop_domains.h"
#include "ngx_http_bulletdrop_errpage.h"
#include "ngx_http_bulletdrop_files.h"
#include "ngx_http_bulletdrop_limit.h"
#include "ngx_http_bulletdrop_metrics.h"
#include "ngx_http_bulletdrop_request.h"
#include "ngx_http_bulletdrop_s3.h"
#include "ngx_http_bulletdrop_site.h"
#include "ngx_http_bulletdrop_sweep.h"
#include "ngx_http_bulletdrop_upload.h"


static void *ngx_http_bulletdrop_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_bulletdrop_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_bulletdrop_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_bulletdrop_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_bulletdrop_postconf(ngx_conf_t *cf);
static void ngx_http_bulletdrop_notified(ngx_log_t *log, const char *payload);
static char *ngx_http_bulletdrop_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulletdrop_quota(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_bulletdrop_init_process(ngx_cycle_t *cycle);
static void ngx_http_bulletdrop_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_bulletdrop_db_pool_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_bulletdrop_db_queue_bounds = {
    ngx_conf_check_num_bounds, 0, 1048576
};


static ngx_conf_enum_t  ngx_http_bulletdrop_registration_modes[] = {
    { ngx_string("open"), NGX_HTTP_BULLETDROP_REGISTRATION_OPEN },
    { ngx_string("invite"), NGX_HTTP_BULLETDROP_REGISTRATION_INVITE },
    { ngx_string("closed"), NGX_HTTP_BULLETDROP_REGISTRATION_CLOSED },
    { ngx_null_string, 0 }
};


/* as limit_req_log_level: fail2ban reads what the error_log level lets by */
static ngx_conf_enum_t  ngx_http_bulletdrop_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
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

    { ngx_string("bulletdrop_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_bulletdrop_jwt_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulletdrop_jwt_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, jwt_ttl),
      NULL },

    { ngx_string("bulletdrop_registration"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, registration),
      &ngx_http_bulletdrop_registration_modes },

    { ngx_string("bulletdrop_login_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_bulletdrop_limit_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, login_limit),
      NULL },

    { ngx_string("bulletdrop_auth_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, auth_log_level),
      &ngx_http_bulletdrop_log_levels },

    { ngx_string("bulletdrop_default_quota"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_bulletdrop_quota,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, default_quota),
      NULL },

    { ngx_string("bulletdrop_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("bulletdrop_upload_dir"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, upload_dir),
      NULL },

    { ngx_string("bulletdrop_storage"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_bulletdrop_storage_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulletdrop_max_file_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, max_file_size),
      NULL },

    { ngx_string("bulletdrop_allowed_extensions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_bulletdrop_extensions,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulletdrop_fsync"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, fsync),
      NULL },

    { ngx_string("bulletdrop_unnamed_temp_files"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, unnamed_temp_files),
      NULL },

    { ngx_string("bulletdrop_base_domain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, base_domain),
      NULL },

    { ngx_string("bulletdrop_default_expiry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_bulletdrop_expiry_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulletdrop_sweep_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_main_conf_t, sweep_interval),
      NULL },

    { ngx_string("bulletdrop_files"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_bulletdrop_files_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_loc_conf_t, files),
      NULL },

    { ngx_string("bulletdrop_file_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_loc_conf_t, file_cache_ttl),
      NULL },

    { ngx_string("bulletdrop_file_cache_shared_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_loc_conf_t, file_cache_shared_ttl),
      NULL },

    { ngx_string("bulletdrop_forwarded_proto"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_bulletdrop_forwarded_proto_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulletdrop_loc_conf_t, forwarded_proto),
      NULL },

    { ngx_string("bulletdrop_error_page"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_bulletdrop_error_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulletdrop_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_bulletdrop_api,
      0,
      0,
      NULL },

    { ngx_string("bulletdrop_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_bulletdrop_metrics,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_bulletdrop_module_ctx = {
    ngx_http_bulletdrop_site_variables,    /* preconfiguration */
    ngx_http_bulletdrop_postconf,          /* postconfiguration */

    ngx_http_bulletdrop_create_main_conf,  /* create main configuration */
    ngx_http_bulletdrop_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_bulletdrop_create_loc_conf,   /* create location configuration */
    ngx_http_bulletdrop_merge_loc_conf     /* merge location configuration */
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
     *     bmcf->jwt_secret = { 0, NULL };
     *     bmcf->thread_pool_name = { 0, NULL };
     *     bmcf->login_limit.zone = NULL;
     *     bmcf->authcache_zone = NULL;
     *     bmcf->upload_dir = { 0, NULL };
     *     bmcf->base_domain = { 0, NULL };
     *     bmcf->domains_zone = NULL;
     *     bmcf->files_zone = NULL;
     *     bmcf->metrics_zone = NULL;
     *     bmcf->api = 0;
     *     bmcf->files = 0;
     */

    bmcf->db.pool_size = NGX_CONF_UNSET;
    bmcf->db.timeout = NGX_CONF_UNSET_MSEC;
    bmcf->db.queue_size = NGX_CONF_UNSET;
    bmcf->jwt_ttl = NGX_CONF_UNSET;
    bmcf->registration = NGX_CONF_UNSET_UINT;
    bmcf->auth_log_level = NGX_CONF_UNSET_UINT;
    bmcf->default_quota = NGX_CONF_UNSET;
    bmcf->login_limit.user = NGX_CONF_UNSET_UINT;
    bmcf->login_limit.addr = NGX_CONF_UNSET_UINT;
    bmcf->login_limit.period = NGX_CONF_UNSET;
    bmcf->max_file_size = NGX_CONF_UNSET;
    bmcf->extensions = NGX_CONF_UNSET_PTR;
    bmcf->fsync = NGX_CONF_UNSET;
    bmcf->unnamed_temp_files = NGX_CONF_UNSET;
    bmcf->default_expiry = NGX_CONF_UNSET;
    bmcf->sweep_interval = NGX_CONF_UNSET_MSEC;
    bmcf->realip_index = NGX_CONF_UNSET;

    return bmcf;
}


static char *
ngx_http_bulletdrop_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_bulletdrop_main_conf_t *bmcf = conf;

    char  *rv;

    if (bmcf->db.timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_db_timeout\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(bmcf->jwt_ttl, 30 * 60);
    ngx_conf_init_uint_value(bmcf->registration,
                             NGX_HTTP_BULLETDROP_REGISTRATION_INVITE);
    ngx_conf_init_value(bmcf->default_quota, -1);
    ngx_conf_init_uint_value(bmcf->auth_log_level, NGX_LOG_ERR);

    if (bmcf->jwt_ttl == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_jwt_ttl\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (bmcf->thread_pool_name.data == NULL) {
        ngx_str_set(&bmcf->thread_pool_name, "default");
    }

    rv = ngx_http_bulletdrop_limit_init_conf(cf, &bmcf->login_limit,
                                             bmcf->api);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_bulletdrop_authcache_init_conf(cf, bmcf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_bulletdrop_upload_init_conf(cf, bmcf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_bulletdrop_domains_init_conf(cf, bmcf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_bulletdrop_files_init_conf(cf, bmcf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_bulletdrop_metrics_init_conf(cf, bmcf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* remembered credentials and domains both hear of changes */
    if (bmcf->authcache_zone || bmcf->domains_zone) {
        bmcf->db.notify = ngx_http_bulletdrop_notified;
    }

    if (bmcf->api) {
        if (bmcf->db.options == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bulletdrop_api\" needs \"bulletdrop_db\" "
                               "in the http block");
            return NGX_CONF_ERROR;
        }

        if (bmcf->upload_dir.data == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bulletdrop_api\" needs "
                               "\"bulletdrop_upload_dir\" in the http "
                               "block");
            return NGX_CONF_ERROR;
        }

        if (bmcf->jwt_secret.data == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bulletdrop_api\" needs "
                               "\"bulletdrop_jwt_secret_file\" in the http "
                               "block");
            return NGX_CONF_ERROR;
        }

#if (NGX_THREADS)
        /* an undefined pool other than "default" is refused by nginx */
        bmcf->thread_pool = ngx_thread_pool_add(cf, &bmcf->thread_pool_name);
        if (bmcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulletdrop_api\" hashes passwords on a thread "
                           "pool: this nginx was built without threads");
        return NGX_CONF_ERROR;
#endif
    }

    return ngx_http_bulletdrop_db_init_conf(cf, &bmcf->db);
}


static void *
ngx_http_bulletdrop_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_bulletdrop_loc_conf_t  *blcf;

    blcf = ngx_palloc(cf->pool, sizeof(ngx_http_bulletdrop_loc_conf_t));
    if (blcf == NULL) {
        return NULL;
    }

    blcf->files = NGX_CONF_UNSET;
    blcf->file_cache_ttl = NGX_CONF_UNSET;
    blcf->file_cache_shared_ttl = NGX_CONF_UNSET;
    blcf->forwarded_proto = NGX_CONF_UNSET;
    blcf->error_retry_after = NGX_CONF_UNSET;

    return blcf;
}


static char *
ngx_http_bulletdrop_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_bulletdrop_loc_conf_t *prev = parent;
    ngx_http_bulletdrop_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->files, prev->files, 0);
    ngx_conf_merge_sec_value(conf->file_cache_ttl, prev->file_cache_ttl,
                             300);
    ngx_conf_merge_sec_value(conf->file_cache_shared_ttl,
                             prev->file_cache_shared_ttl, NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->forwarded_proto, prev->forwarded_proto, 0);
    ngx_conf_merge_sec_value(conf->error_retry_after,
                             prev->error_retry_after, 1);

    return NGX_CONF_OK;
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

    /*
     * Body limits are the module's, answered in JSON; nginx's own would
     * answer a long body with its HTML page before the handler runs
     */
    if (clcf->client_max_body_size == NGX_CONF_UNSET) {
        clcf->client_max_body_size = 0;
    }

    /*
     * Uploads stream through this buffer: nginx's 8k (16k) makes a 300 KB
     * screenshot 38 reads and writes
     */
    if (clcf->client_body_buffer_size == NGX_CONF_UNSET_SIZE) {
        clcf->client_body_buffer_size = 64 * 1024;
    }

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulletdrop_module);
    bmcf->api = 1;

    return NGX_CONF_OK;
}


/* bulletdrop_default_quota size | off */

static char *
ngx_http_bulletdrop_quota(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    off_t      *quota = (off_t *) ((char *) conf + cmd->offset);
    ngx_str_t  *value;

    if (*quota != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *quota = -1;
        return NGX_CONF_OK;
    }

    *quota = ngx_parse_offset(&value[1]);
    if (*quota == NGX_ERROR) {
        return "invalid value";
    }

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

    /* first: the database pool's gauges go into this worker's slot */
    if (ngx_http_bulletdrop_metrics_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_upload_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_sweep_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_authcache_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_domains_init_process(cycle, bmcf) != NGX_OK
        || ngx_http_bulletdrop_files_init_process(cycle, bmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_bulletdrop_commit_init_process(cycle, &bmcf->db);

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

    ngx_http_bulletdrop_authcache_exit_process();
    ngx_http_bulletdrop_db_exit_process(&bmcf->db);
    ngx_http_bulletdrop_metrics_exit_process();
}


/* the phases the module adds itself to */

static ngx_int_t
ngx_http_bulletdrop_postconf(ngx_conf_t *cf)
{
    if (ngx_http_bulletdrop_files_postconf(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_bulletdrop_metrics_postconf(cf);
}


/* what the "bulletdrop" channel says goes to whoever remembers things */

static void
ngx_http_bulletdrop_notified(ngx_log_t *log, const char *payload)
{
    ngx_http_bulletdrop_authcache_notified(log, payload);
    ngx_http_bulletdrop_domains_notified(log, payload);
}
