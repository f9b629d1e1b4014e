/*
 * BulletDrop: what the workers know of files with limits, in a shared
 * memory zone, so that most views of them need no query.
 */

#ifndef _NGX_HTTP_BULLETDROP_KNOWN_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_KNOWN_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "bd_deliver.h"


/* what the workers know of a file with limits */
typedef struct {
    ngx_rbtree_node_t                   node;
    ngx_queue_t                         queue;
    /* milliseconds since the epoch; 0: never */
    int64_t                             expires;
    /* views the database gave this server ahead, for any worker */
    ngx_uint_t                          lease;
    u_char                              id[BD_DELIVER_ID_LEN];
    unsigned                            max_views:1;
    unsigned                            gone:1;
} ngx_http_bulletdrop_known_t;


/* the zone's init, and each worker's hold on it (bmcf->known) */
ngx_int_t ngx_http_bulletdrop_files_init_zone(ngx_shm_zone_t *zone,
    void *data);
ngx_int_t ngx_http_bulletdrop_known_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);

/*
 * What a worker learns of a new file with limits (expires: milliseconds
 * since the epoch, 0 for none), so its first view needs no query; nothing
 * in a worker that serves no files
 */
void ngx_http_bulletdrop_files_learn(u_char *id, int64_t expires,
    ngx_uint_t max_views);

/* NGX_OK and *out when the file is known; NGX_DECLINED when not */
ngx_int_t ngx_http_bulletdrop_known_find(u_char *id,
    ngx_http_bulletdrop_known_t *out);
/* NGX_OK when one of the views leased ahead was left, and is now taken */
ngx_int_t ngx_http_bulletdrop_known_take(u_char *id);
void ngx_http_bulletdrop_known_store(u_char *id, int64_t expires,
    ngx_uint_t max_views, ngx_uint_t gone, ngx_uint_t lease);

/* milliseconds since the epoch, as expiries are kept */
int64_t ngx_http_bulletdrop_now(void);


#endif /* _NGX_HTTP_BULLETDROP_KNOWN_H_INCLUDED_ */
