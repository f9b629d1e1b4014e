/*
 * BulletDrop: what the workers know of files with limits, in shared
 * memory: a red-black tree of ids, the least recently used evicted when
 * the zone is full.  Each knows a file's expiry, whether it has a view
 * limit, whether it is gone, and the views the database leased this
 * server ahead, which any worker may take.
 */

#include "ngx_http_bulletdrop_files_int.h"
#include "ngx_http_bulletdrop_known.h"


typedef struct {
    ngx_rbtree_t                        rbtree;
    ngx_rbtree_node_t                   sentinel;
    /* the most recently used first */
    ngx_queue_t                         lru;
} ngx_http_bulletdrop_files_sh_t;


/* what a worker keeps of the zone (bmcf->known) */
struct ngx_http_bulletdrop_known_worker_s {
    ngx_slab_pool_t                    *shpool;
    ngx_http_bulletdrop_files_sh_t     *sh;
};


static ngx_http_bulletdrop_known_worker_t *ngx_http_bulletdrop_known_worker(
    void);
static ngx_http_bulletdrop_known_t *ngx_http_bulletdrop_known_lookup(
    u_char *id, uint32_t hash);
static void ngx_http_bulletdrop_known_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


ngx_int_t
ngx_http_bulletdrop_known_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf)
{
    ngx_http_bulletdrop_known_worker_t  *kw;

    kw = ngx_pcalloc(cycle->pool, sizeof(ngx_http_bulletdrop_known_worker_t));
    if (kw == NULL) {
        return NGX_ERROR;
    }

    kw->shpool = (ngx_slab_pool_t *) bmcf->files_zone->shm.addr;
    kw->sh = bmcf->files_zone->data;

    bmcf->known = kw;

    return NGX_OK;
}


/* NULL in a worker that serves no files */

static ngx_http_bulletdrop_known_worker_t *
ngx_http_bulletdrop_known_worker(void)
{
    ngx_http_bulletdrop_main_conf_t  *bmcf;

    bmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_bulletdrop_module);

    return bmcf->known;
}


ngx_int_t
ngx_http_bulletdrop_files_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_bulletdrop_files_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (data || zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    /* a full zone evicts: not worth a line in the log each time */
    shpool->log_nomem = 0;

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_bulletdrop_files_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_bulletdrop_known_insert);
    ngx_queue_init(&sh->lru);

    shpool->data = sh;
    zone->data = sh;

    return NGX_OK;
}


/* what the workers know of files with limits */

void
ngx_http_bulletdrop_files_learn(u_char *id, int64_t expires,
    ngx_uint_t max_views)
{
    if (ngx_http_bulletdrop_known_worker()) {
        ngx_http_bulletdrop_known_store(id, expires, max_views, 0, 0);
    }
}


ngx_int_t
ngx_http_bulletdrop_known_find(u_char *id, ngx_http_bulletdrop_known_t *out)
{
    ngx_int_t                            rc;
    ngx_http_bulletdrop_known_t         *k;
    ngx_http_bulletdrop_known_worker_t  *kw;

    kw = ngx_http_bulletdrop_known_worker();
    ngx_shmtx_lock(&kw->shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id,
                                   ngx_crc32_short(id, BD_DELIVER_ID_LEN));
    rc = NGX_DECLINED;

    if (k) {
        ngx_queue_remove(&k->queue);
        ngx_queue_insert_head(&kw->sh->lru, &k->queue);

        *out = *k;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&kw->shpool->mutex);

    return rc;
}


/* one of the views leased ahead, if there is one left */

ngx_int_t
ngx_http_bulletdrop_known_take(u_char *id)
{
    ngx_int_t                            rc;
    ngx_http_bulletdrop_known_t         *k;
    ngx_http_bulletdrop_known_worker_t  *kw;

    kw = ngx_http_bulletdrop_known_worker();
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&kw->shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id,
                                   ngx_crc32_short(id, BD_DELIVER_ID_LEN));

    if (k && k->lease && !k->gone
        && (k->expires == 0 || ngx_http_bulletdrop_now() < k->expires))
    {
        k->lease--;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&kw->shpool->mutex);

    return rc;
}


void
ngx_http_bulletdrop_known_store(u_char *id, int64_t expires,
    ngx_uint_t max_views, ngx_uint_t gone, ngx_uint_t lease)
{
    uint32_t                             hash;
    ngx_uint_t                           i;
    ngx_queue_t                         *qu;
    ngx_http_bulletdrop_known_t         *k, *old;
    ngx_http_bulletdrop_files_sh_t      *sh;
    ngx_http_bulletdrop_known_worker_t  *kw;

    kw = ngx_http_bulletdrop_known_worker();
    sh = kw->sh;
    hash = ngx_crc32_short(id, BD_DELIVER_ID_LEN);

    ngx_shmtx_lock(&kw->shpool->mutex);

    k = ngx_http_bulletdrop_known_lookup(id, hash);

    if (k == NULL) {
        /* the least recently used make room; they are asked for again */
        for (i = 0; i < 3; i++) {
            k = ngx_slab_alloc_locked(kw->shpool,
                                      sizeof(ngx_http_bulletdrop_known_t));
            if (k || ngx_queue_empty(&sh->lru)) {
                break;
            }

            qu = ngx_queue_last(&sh->lru);
            old = ngx_queue_data(qu, ngx_http_bulletdrop_known_t, queue);

            ngx_queue_remove(qu);
            ngx_rbtree_delete(&sh->rbtree, &old->node);
            ngx_slab_free_locked(kw->shpool, old);
        }

        if (k == NULL) {
            ngx_shmtx_unlock(&kw->shpool->mutex);
            return;
        }

        k->node.key = hash;
        k->lease = 0;
        ngx_memcpy(k->id, id, BD_DELIVER_ID_LEN);
        ngx_rbtree_insert(&sh->rbtree, &k->node);

    } else {
        ngx_queue_remove(&k->queue);
    }

    ngx_queue_insert_head(&sh->lru, &k->queue);

    /* views the database has spent may be this server's, leased */
    k->expires = expires;
    k->max_views = max_views ? 1 : 0;
    k->lease += lease;
    k->gone = (gone && k->lease == 0);

    ngx_shmtx_unlock(&kw->shpool->mutex);
}


static ngx_http_bulletdrop_known_t *
ngx_http_bulletdrop_known_lookup(u_char *id, uint32_t hash)
{
    ngx_int_t                            rc;
    ngx_rbtree_node_t                   *node, *sentinel;
    ngx_http_bulletdrop_known_t         *k;
    ngx_http_bulletdrop_known_worker_t  *kw;

    kw = ngx_http_bulletdrop_known_worker();
    node = kw->sh->rbtree.root;
    sentinel = kw->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        k = (ngx_http_bulletdrop_known_t *) node;

        rc = ngx_memcmp(id, k->id, BD_DELIVER_ID_LEN);

        if (rc == 0) {
            return k;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_bulletdrop_known_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_bulletdrop_known_t   *k, *kt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            k = (ngx_http_bulletdrop_known_t *) node;
            kt = (ngx_http_bulletdrop_known_t *) temp;

            p = (ngx_memcmp(k->id, kt->id, BD_DELIVER_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


int64_t
ngx_http_bulletdrop_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
