/*
 * BulletDrop: uploads committed in batches (group commit).
 *
 * A worker sends the uploads that are ready while its previous commits
 * run in one statement, bd_upload_commit_batch() (sql/006), and one
 * transaction; an upload alone goes at once, in a batch of one.
 */

#ifndef _NGX_HTTP_BULLETDROP_COMMIT_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_COMMIT_H_INCLUDED_


#include "ngx_http_bulletdrop.h"
#include "ngx_http_bulletdrop_sql.h"


/*
 * the arguments of bd_upload_commit_batch(), one array each, indexed by
 * NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_*
 */
#define NGX_HTTP_BULLETDROP_COMMIT_FIELDS                                     \
    NGX_HTTP_BULLETDROP_UPLOAD_INSERT_NARGS


typedef struct ngx_http_bulletdrop_commit_s  ngx_http_bulletdrop_commit_t;

/*
 * Called once for each upload, from nginx's posted events and never from
 * inside ngx_http_bulletdrop_commit(): q is the batch's query (its status
 * says how it went), res its result or NULL, row the upload's row in it,
 * or -1 when it has none.  q is NULL when the row was never sent: its
 * deadline passed in the queue (c->late), or the batch could not be made.
 */
typedef void (*ngx_http_bulletdrop_commit_pt)(
    ngx_http_bulletdrop_commit_t *c, ngx_http_bulletdrop_db_query_t *q,
    PGresult *res, int row);

struct ngx_http_bulletdrop_commit_s {
    ngx_http_request_t             *request;
    /*
     * text of each argument (NGX_HTTP_BULLETDROP_UPLOAD_INSERT_ARG_*), in
     * the request's pool; data NULL: SQL NULL
     */
    ngx_str_t                       fields[NGX_HTTP_BULLETDROP_COMMIT_FIELDS];
    /* ngx_current_msec after which the row must not be sent */
    ngx_msec_t                      deadline;
    ngx_http_bulletdrop_commit_pt   done;

    /* its statement is out: the row may be written from then on */
    unsigned                        sent:1;
    unsigned                        late:1;

    /* private */
    unsigned                        queued:1;
    ngx_queue_t                     queue;
    void                           *batch;
    ngx_uint_t                      slot;
};


/* this worker's queue (bmcf->commit), on the pool of dbcf */
ngx_int_t ngx_http_bulletdrop_commit_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_db_conf_t *dbcf);

/*
 * Queues an upload's row to be written (NGX_ERROR: it could not be).  The
 * request must stay until done is called: the caller holds it
 * (r->main->count); if nginx frees it all the same, the row is forgotten.
 */
ngx_int_t ngx_http_bulletdrop_commit(ngx_http_bulletdrop_commit_t *c);


#endif /* _NGX_HTTP_BULLETDROP_COMMIT_H_INCLUDED_ */
