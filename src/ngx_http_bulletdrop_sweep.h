/*
 * BulletDrop: the first worker's sweeps: expired and used-up uploads, and
 * temp files that no upload holds.
 */

#ifndef _NGX_HTTP_BULLETDROP_SWEEP_H_INCLUDED_
#define _NGX_HTTP_BULLETDROP_SWEEP_H_INCLUDED_


#include "ngx_http_bulletdrop.h"


/* starts the sweeps' timers in the first worker (bmcf->sweep) */
ngx_int_t ngx_http_bulletdrop_sweep_init_process(ngx_cycle_t *cycle,
    ngx_http_bulletdrop_main_conf_t *bmcf);


#endif /* _NGX_HTTP_BULLETDROP_SWEEP_H_INCLUDED_ */
