/*
 * controller.h - the gregor-controller process: a voter of the metadata
 * quorum and, while it is the quorum's leader, the active controller.
 *
 * One event loop runs everything: the network (common/netserver with no
 * extra threads), the Raft shell (common/quorum) and the decisions
 * (controller/control). Two images of the metadata exist on the leader:
 *
 *   committed  what the metadata log has committed, applied in order; every
 *              controller keeps it;
 *   latest     committed plus what this leader has proposed and not yet
 *              seen committed; decisions read it, so two requests in a row
 *              see each other's effects. It is rebuilt from committed when
 *              this node becomes leader, and dropped when it stops being.
 *
 * A request that changes metadata is answered only once its entry is
 * committed (as Kafka's controller does): the handler proposes the entry,
 * applies it to latest and parks the request until the committed image
 * reaches its offset. A controller that is not active answers
 * NOT_CONTROLLER, and brokers try another.
 */
#ifndef GR_CONTROLLER_H
#define GR_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/metadata_sm.h"
#include "common/metaprops.h"
#include "common/netserver.h"
#include "common/quorum.h"
#include "controller/control.h"

#define GR_CONTROLLER_MAX_LISTENERS 8

typedef struct gr_waiter gr_waiter;

typedef struct gr_controller {
    gr_config *config;
    int32_t node_id;
    char cluster_id[GR_CLUSTER_ID_MAX];
    char metadata_dir[4096];
    gr_listener listeners[GR_CONTROLLER_MAX_LISTENERS];
    int nlisteners;
    gr_voter voters[16];
    int nvoters;

    struct event_base *base;
    gr_netserver *server;
    gr_quorum *quorum;
    gr_metadata_sm sm;         /* sm.img is the committed image */
    gr_metadata_image *latest; /* while active */
    gr_control *control;       /* while active */
    bool active;
    int64_t activation_offset; /* leader, not yet active: apply up to here first */
    gr_waiter *waiters;        /* requests waiting for their entry to commit */
    struct event *ticker;
} gr_controller;

extern const gr_config_def gr_controller_config_defs[];
extern const size_t gr_controller_config_ndefs;

/* Reads the typed settings; logs and returns -1 on error. */
int gr_controller_configure(gr_controller *c);

/* The APIs a controller serves. */
extern const gr_api_table gr_controller_apis;

/* Quorum hooks (controller/api.c). */
void gr_controller_applied(void *ctx, int64_t offset);
void gr_controller_reloaded(void *ctx);
void gr_controller_role(void *ctx, gr_raft_role role, int32_t epoch, int32_t leader_id);
/* Periodic work: activation, broker session expiry. */
void gr_controller_tick(gr_controller *c);
void gr_controller_deactivate(gr_controller *c);

#endif
