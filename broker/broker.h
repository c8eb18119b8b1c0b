/*
 * broker.h - the broker process: its identity, its configuration and the
 * state every request handler reads.
 *
 * One gr_broker exists per process. It is built by main() from the
 * configuration before any thread starts and is read-only afterwards, so
 * network threads read it without locks. State that changes at run time
 * (metadata, partitions) will get its own module with its own rules.
 */
#ifndef GR_BROKER_H
#define GR_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/metaprops.h"

#define GR_BROKER_MAX_LISTENERS 16

typedef struct {
    gr_listener bind;      /* where we listen */
    gr_listener advertise; /* what we tell clients (same name) */
} gr_broker_listener;

typedef struct gr_broker {
    gr_config *config;
    int32_t node_id;
    char cluster_id[GR_CLUSTER_ID_MAX];
    char rack[256]; /* broker.rack, empty if unset */
    int32_t socket_request_max_bytes;
    int num_network_threads;
    gr_broker_listener listeners[GR_BROKER_MAX_LISTENERS];
    int nlisteners;
    /* In a cluster (controller.quorum.voters set): the metadata this broker
     * follows. NULL for a standalone broker, which serves only itself. */
    struct gr_cluster *cluster;
    /* The partition replicas this broker holds (replica.h); NULL for a
     * standalone broker. Fed by the cluster's metadata on the main loop. */
    struct gr_replica_mgr *replicas;
    /* The group coordinator (coordinator.h); NULL for a standalone broker. */
    struct gr_coordinator *coordinator;
    /* Incremental fetch sessions (fetch_session.h); NULL: none are made. */
    struct gr_fetch_sessions *fetch_sessions;
} gr_broker;

/* The broker's configuration definitions (Kafka's names and defaults). */
extern const gr_config_def gr_broker_config_defs[];
extern const size_t gr_broker_config_ndefs;

/* Reads the typed settings out of b->config; logs and returns -1 on error. */
int gr_broker_configure(gr_broker *b);

/* The first of log.dirs (else log.dir), copied into buf. */
const char *gr_broker_first_log_dir(const gr_broker *b, char *buf, size_t len);

#endif
