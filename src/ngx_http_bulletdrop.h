/*
 * BulletDrop: what every nginx-facing file of the module shares.
 */

#ifndef _NGX_HTTP_BULLETDROP_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include "ngx_http_bulletdrop_db.h"
#include "bd_route.h"


/* of the module and of its API, as GET /api/config says */
#define NGX_HTTP_BULLETDROP_VERSION  "0.14.0"

#define NGX_HTTP_BULLETDROP_REGISTRATION_OPEN     0
#define NGX_HTTP_BULLETDROP_REGISTRATION_INVITE   1
#define NGX_HTTP_BULLETDROP_REGISTRATION_CLOSED   2


typedef struct {
    ngx_uint_t                      user;
    ngx_uint_t                      addr;
    time_t                          period;
    ngx_shm_zone_t                 *zone;
} ngx_http_bulletdrop_limit_conf_t;


/* what each worker keeps of a concern, private to its files */
typedef struct ngx_http_bulletdrop_upload_worker_s
    ngx_http_bulletdrop_upload_worker_t;
typedef struct ngx_http_bulletdrop_known_worker_s
    ngx_http_bulletdrop_known_worker_t;
typedef struct ngx_http_bulletdrop_views_worker_s
    ngx_http_bulletdrop_views_worker_t;
typedef struct ngx_http_bulletdrop_sweep_worker_s
    ngx_http_bulletdrop_sweep_worker_t;
typedef struct ngx_http_bulletdrop_commit_worker_s
    ngx_http_bulletdrop_commit_worker_t;
typedef struct ngx_http_bulletdrop_domains_worker_s
    ngx_http_bulletdrop_domains_worker_t;
typedef struct ngx_http_bulletdrop_authcache_worker_s
    ngx_http_bulletdrop_authcache_worker_t;

/* bulletdrop_storage s3 (s3.h) */
typedef struct ngx_http_bulletdrop_s3_conf_s  ngx_http_bulletdrop_s3_conf_t;


typedef struct {
    ngx_http_bulletdrop_db_conf_t   db;

    /* the HMAC key of every JWT, read from bulletdrop_jwt_secret_file */
    ngx_str_t                       jwt_secret;
    time_t                          jwt_ttl;

    ngx_uint_t                      registration;
    /* quota of new users; -1: none */
    off_t                           default_quota;

    ngx_str_t                       thread_pool_name;
#if (NGX_THREADS)
    ngx_thread_pool_t              *thread_pool;
#endif

    ngx_http_bulletdrop_limit_conf_t  login_limit;

    /* the generation of remembered credentials (authcache.c) */
    ngx_shm_zone_t                 *authcache_zone;

    /* uploads: <upload_dir>/{.tmp,images,documents,other} */
    ngx_str_t                       upload_dir;
    /* bulletdrop_storage s3: files live in a bucket (NULL: local) */
    ngx_http_bulletdrop_s3_conf_t  *s3;
    off_t                           max_file_size;
    /* of ngx_str_t: lower case, without the dot */
    ngx_array_t                    *extensions;
    ngx_flag_t                      fsync;
    /* uploads under way are O_TMPFILE files, where the system can */
    ngx_flag_t                      unnamed_temp_files;

    /* the main site; the seed adds img., shots., cdn. and media. of it */
    ngx_str_t                       base_domain;
    /* the enabled file domains (domains.c) */
    ngx_shm_zone_t                 *domains_zone;
    /* what workers know of files with limits (files.c) */
    ngx_shm_zone_t                 *files_zone;
    /* the counters of every worker (metrics.c) */
    ngx_shm_zone_t                 *metrics_zone;
    /* of the lines that say a credential was refused */
    ngx_uint_t                      auth_log_level;
    /* of uploads that do not say: seconds, 0: never */
    time_t                          default_expiry;
    ngx_msec_t                      sweep_interval;

    /* this worker's state, set up in init_process (NULL: not used) */
    ngx_http_bulletdrop_upload_worker_t  *upload;    /* upload.c */
    ngx_http_bulletdrop_known_worker_t   *known;     /* known.c */
    ngx_http_bulletdrop_views_worker_t   *views;     /* views.c */
    ngx_http_bulletdrop_sweep_worker_t   *sweep;     /* sweep.c */
    ngx_http_bulletdrop_commit_worker_t     *commit;     /* commit.c */
    ngx_http_bulletdrop_authcache_worker_t  *authcache;  /* authcache.c */
    /* made at configuration: the master reads its file (domains.c) */
    ngx_http_bulletdrop_domains_worker_t    *domains;

    /* $realip_remote_addr, for bulletdrop_forwarded_proto */
    ngx_int_t                       realip_index;

    /* some location has "bulletdrop_api" */
    unsigned                        api:1;
    unsigned                        storage_set:1;
    /* some location has "bulletdrop_files on" */
    unsigned                        files:1;
} ngx_http_bulletdrop_main_conf_t;


typedef struct {
    /* bulletdrop_files: requests are checked as a file domain's */
    ngx_flag_t                      files;
    /* bulletdrop_file_cache_ttl: how long caches keep a file (files.c) */
    time_t                          file_cache_ttl;
    /* bulletdrop_file_cache_shared_ttl: s-maxage; NGX_CONF_UNSET: none */
    time_t                          file_cache_shared_ttl;
    /* bulletdrop_forwarded_proto: a believed proxy's scheme in links */
    ngx_flag_t                      forwarded_proto;
    /* bulletdrop_error_page retry_after=: of its 429 answers */
    time_t                          error_retry_after;
} ngx_http_bulletdrop_loc_conf_t;


/* a users row, as every statement returning users selects it */
typedef struct {
    int64_t                         id;
    ngx_str_t                       username;
    ngx_str_t                       role;
    ngx_str_t                       created_at;
    /* data == NULL: SQL NULL */
    ngx_str_t                       default_domain;
    ngx_str_t                       password_hash;
    int64_t                         quota_bytes;     /* -1: none */
    int64_t                         usage_bytes;
    int64_t                         usage_files;
    int64_t                         token_version;
    unsigned                        admin:1;
    unsigned                        disabled:1;
} ngx_http_bulletdrop_user_t;


typedef struct ngx_http_bulletdrop_ctx_s  ngx_http_bulletdrop_ctx_t;

/* the state of the steps, each private to its file */
typedef struct ngx_http_bulletdrop_auth_s     ngx_http_bulletdrop_auth_t;
typedef struct ngx_http_bulletdrop_reader_s   ngx_http_bulletdrop_reader_t;
typedef struct ngx_http_bulletdrop_account_s  ngx_http_bulletdrop_account_t;
typedef struct ngx_http_bulletdrop_upload_s   ngx_http_bulletdrop_upload_t;
typedef struct ngx_http_bulletdrop_file_s     ngx_http_bulletdrop_file_t;

/*
 * One step of a request: returns what a content handler returns (NGX_DONE
 * when it went asynchronous and will finish the request itself).
 */
typedef ngx_int_t (*ngx_http_bulletdrop_step_pt)(ngx_http_request_t *r,
    ngx_http_bulletdrop_ctx_t *ctx);


/* per-request state of an API request */
struct ngx_http_bulletdrop_ctx_s {
    bd_route_match_t                match;
    ngx_http_bulletdrop_step_pt     handler;
    /* NGX_HTTP_BULLETDROP_BODY_*: what the route reads */
    ngx_uint_t                      body_kind;
    unsigned                        admin_only:1;
    /* the credential came in the session cookie; a new one is due */
    unsigned                        session:1;
    unsigned                        session_renew:1;
    /* when the session's user signed in; 0: unknown */
    time_t                          session_since;
    /* the answer's Set-Cookie of the session: one, even when set twice */
    ngx_table_elt_t                *session_cookie;

    /* who asked: set once the request is authenticated */
    ngx_http_bulletdrop_user_t      user;
    /* the API key it used, if it used one */
    ngx_str_t                       api_key;
    /* its credential as the auth cache names it */
    ngx_str_t                       cred;

    /* the parsed request body: a JSON object, or NULL */
    json_t                         *body;
    /* ctx->body came from a form: its values are strings */
    unsigned                        body_form:1;

    /* the error recorded to be answered (error.h): BD_ERR_* */
    ngx_uint_t                      error;
    const char                     *error_detail;

    /* each step's own state, while it runs */
    ngx_http_bulletdrop_auth_t     *auth;
    ngx_http_bulletdrop_reader_t   *reader;
    ngx_http_bulletdrop_account_t  *account;
    ngx_http_bulletdrop_upload_t   *upload;
    /* a request for a file on a file domain */
    ngx_http_bulletdrop_file_t     *file;
    /* a delete link's upload, while its file goes (deletelink.c) */
    void                           *delete_link;
    ngx_uint_t                      page_limit;
    /* the read of the domains this request changed (domains.c) */
    ngx_atomic_uint_t               domains_ticket;
    /* an answer held while the domains are read again; NULL: 204 */
    ngx_buf_t                      *domains_answer;
};


extern ngx_module_t  ngx_http_bulletdrop_module;


#endif /* _NGX_HTTP_BULLETDROP_H_INCLUDED_ */
