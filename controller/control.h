/*
 * control.h - the active controller's decisions.
 *
 * A pure core: no I/O, no clocks, no logging; time is an argument and
 * randomness (topic ids, placement start) comes from a seeded generator, so
 * the same inputs give the same outputs, which the simulation tests need.
 *
 * The controller reads a gr_metadata_image it does not own: the "latest"
 * image, which already includes every entry proposed so far, committed or
 * not. Each operation validates a request against that image and returns
 *   - the response fields (in the caller's response struct, with strings
 *     and arrays from the caller's arena), and
 *   - zero or one entry to propose: the bytes appended to the caller's
 *     gr_writer *entry (see common/mdentry.h). entry->len == 0 means there
 *     is nothing to propose.
 * Response strings and arrays point into the arena, into static tables or
 * into the request, so the request and the arena must outlive the encoded
 * response; none points into the image.
 * Operations return 0, or GR_ERR_NOMEM if memory ran out (the response and
 * entry are then unusable; answer UNKNOWN_SERVER_ERROR or drop the request).
 * Kafka errors are answers: they are in the response, never in the return.
 *
 * What the shell must do:
 *   - propose each non-empty entry through Raft as one Raft entry, and apply
 *     it (gr_mdentry_apply) to the latest image right away, before calling
 *     the next operation: every decision assumes the image holds all earlier
 *     proposals. Entries must be proposed in the order they were made.
 *   - answer a request that produced an entry only once that entry is
 *     committed; answer a request without an entry at once (validation
 *     errors, validate_only, idempotent re-registrations, DescribeConfigs).
 *     If leadership is lost before the commit, answer NOT_CONTROLLER.
 *   - pass to gr_control_register_broker the offset the entry will get
 *     (the Raft log end offset once every earlier proposal is counted): it
 *     becomes the broker epoch, as in Kafka.
 *   - call gr_control_tick periodically (e.g. every 1/4 session timeout)
 *     and propose what it returns.
 *   - on becoming the active controller: rebuild the latest image from the
 *     committed image, then gr_control_activate(now) (heartbeat state is
 *     not replicated; every unfenced broker gets a fresh session, as Kafka
 *     does on failover).
 *
 * Heartbeat state (last contact, session deadline) lives here and only on
 * the active controller, as in Kafka.
 */
#ifndef GR_CONTROL_H
#define GR_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metadata.h"
#include "proto/messages.h"

/* DescribeConfigs config_source values (Kafka's ConfigSource ids). */
enum {
    GR_CONFIG_SOURCE_UNKNOWN = 0,
    GR_CONFIG_SOURCE_TOPIC = 1,
    GR_CONFIG_SOURCE_DYNAMIC_BROKER = 2,
    GR_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER = 3,
    GR_CONFIG_SOURCE_STATIC_BROKER = 4,
    GR_CONFIG_SOURCE_DEFAULT = 5,
};

/* IncrementalAlterConfigs operations. */
enum {
    GR_CONFIG_OP_SET = 0,
    GR_CONFIG_OP_DELETE = 1,
    GR_CONFIG_OP_APPEND = 2,
    GR_CONFIG_OP_SUBTRACT = 3,
};

typedef struct {
    int32_t num_partitions;             /* num.partitions (1) */
    int16_t default_replication_factor; /* default.replication.factor (1) */
    int64_t session_timeout_ms;         /* broker.session.timeout.ms (9000) */
    const char *cluster_id;             /* NULL: registrations are not checked */
    uint64_t seed;                      /* topic ids and placement */
    /*
     * The controller's static server.properties value of a broker key
     * (log.retention.ms, unclean.leader.election.enable, ...), or NULL if it
     * is not set; used as the default of the matching topic keys, below any
     * dynamic cluster-wide value. May be NULL.
     */
    const char *(*static_config)(void *ctx, const char *broker_key);
    void *static_ctx;
} gr_control_config;

/* The defaults above. */
void gr_control_config_defaults(gr_control_config *cfg);

typedef struct gr_control gr_control;

/* img is not owned and must outlive the controller. NULL on OOM. */
gr_control *gr_control_new(gr_metadata_image *img, const gr_control_config *cfg);
void gr_control_free(gr_control *c);
/* Points the controller at another latest image (after a rebuild). */
void gr_control_set_image(gr_control *c, gr_metadata_image *img);
/* Forgets heartbeat state and gives every unfenced registered broker a
 * session that ends at now + session timeout. */
int gr_control_activate(gr_control *c, int64_t now);

/* ---- brokers ---- */

/* BrokerRegistration. next_offset: the offset the entry will get (the new
 * broker epoch). */
int gr_control_register_broker(gr_control *c, const gr_broker_registration_request *req,
                               int64_t next_offset, int64_t now, gr_arena *a,
                               gr_broker_registration_response *resp, gr_writer *entry);

/* BrokerHeartbeat: session renewal, unfencing, want_fence, controlled shutdown. */
int gr_control_heartbeat(gr_control *c, const gr_broker_heartbeat_request *req, int64_t now,
                         gr_broker_heartbeat_response *resp, gr_writer *entry);

/* Fences every broker whose session expired before now, moving its
 * leaderships. *fenced (may be NULL) gets the number fenced. */
int gr_control_tick(gr_control *c, int64_t now, gr_writer *entry, int32_t *fenced);

/* UnregisterBroker. */
int gr_control_unregister_broker(gr_control *c, const gr_unregister_broker_request *req,
                                 gr_arena *a, gr_unregister_broker_response *resp,
                                 gr_writer *entry);

/* ---- topics ---- */

int gr_control_create_topics(gr_control *c, const gr_create_topics_request *req, int16_t version,
                             gr_arena *a, gr_create_topics_response *resp, gr_writer *entry);

/* Creation with every default, for auto.create.topics.enable (Metadata):
 * num.partitions and default.replication.factor; a factor above the number
 * of live brokers is INVALID_REPLICATION_FACTOR, as in Kafka. The result is
 * that of one CreateTopics v7 topic. */
int gr_control_create_topic_default(gr_control *c, gr_str name, gr_arena *a,
                                    gr_create_topics_response_creatable_topic_result *res,
                                    gr_writer *entry);

int gr_control_delete_topics(gr_control *c, const gr_delete_topics_request *req, int16_t version,
                             gr_arena *a, gr_delete_topics_response *resp, gr_writer *entry);

int gr_control_create_partitions(gr_control *c, const gr_create_partitions_request *req,
                                 int16_t version, gr_arena *a,
                                 gr_create_partitions_response *resp, gr_writer *entry);

/* ---- configs ---- */

int gr_control_incremental_alter_configs(gr_control *c,
                                         const gr_incremental_alter_configs_request *req,
                                         int16_t version, gr_arena *a,
                                         gr_incremental_alter_configs_response *resp,
                                         gr_writer *entry);

int gr_control_alter_configs(gr_control *c, const gr_alter_configs_request *req, int16_t version,
                             gr_arena *a, gr_alter_configs_response *resp, gr_writer *entry);

int gr_control_describe_configs(gr_control *c, const gr_describe_configs_request *req,
                                int16_t version, gr_arena *a, gr_describe_configs_response *resp);

/* The effective value of a topic key for a topic (topic config, then the
 * dynamic cluster default of its broker synonym, then the static broker
 * value, then Kafka's default), copied into buf, and its source. Returns 0,
 * or -1 for an unknown key. */
int gr_control_topic_config(const gr_control *c, gr_str topic, const char *key, char *buf,
                            size_t buflen, int8_t *source);

#endif
