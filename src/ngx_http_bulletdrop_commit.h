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


/* the arguments of bd_upload_commit_batch(), one array each */
#define NGX_HTTP_BULLETDROP_COMMIT_FIELDS   12


typedef struct ngx_http_bulletdrop_commit_s  ngx_http_bulletdrop_commit_t;

/*
 * Called once for each upload, from nginx's posted events and never from
 * inside ngx_http_bulletdrop_commit(): q is the batch's query (its status
 * says how it went; NULL when the batch could not be sent), res its result
 * or NULL, row the upload's row in it, or -1 when it has none.
 */
typedef void (*ngx_http_bulletdrop_commit_pt)(ngx_http_request_t *r,
    ngx_http_bulletdrop_db_query_t *q, PGresult *res, int row);

struct ngx_http_bulletdrop_commit_s {
    ngx_http_request_t             *request;
    /* text of each argument, in the request's pool; data NULL: SQL NULL */
    ngx_str_t                       fields[NGX_HTTP_BULLETDROP_COMMIT_FIELDS];
    ngx_http_bulletdrop_commit_pt   done;

    /* private */
    ngx_queue_t                     queue;
};


/*
 * Queues an upload's row to be written.  The request must stay until
 * done is called: the caller holds it (r->main->count).
 */
void ngx_http_bulletdrop_commit(ngx_http_bulletdrop_commit_t *c);


#endif /* _NGX_HTTP_BULLETDROP_COMMIT_H_INCLUDED_ */
