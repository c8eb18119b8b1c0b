/*
 * offsets_topic.h - which partition of an internal topic coordinates a key.
 *
 * A consumer group is coordinated by the leader of one partition of
 * __consumer_offsets, and a transactional id by the leader of one partition
 * of __transaction_state. Kafka picks the partition as
 * abs(key.hashCode()) mod partition count, where hashCode is Java's
 * String.hashCode over the key's UTF-16 code units and abs maps
 * Integer.MIN_VALUE to 0. Every client and tool that computes a coordinator
 * itself (and every existing __consumer_offsets topic) relies on exactly
 * this function, so it is reproduced bit for bit.
 */
#ifndef GR_BROKER_OFFSETS_TOPIC_H
#define GR_BROKER_OFFSETS_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

#define GR_OFFSETS_TOPIC "__consumer_offsets"
#define GR_TRANSACTION_TOPIC "__transaction_state"

/* Java's String.hashCode of the UTF-8 string s (len bytes). Invalid UTF-8
 * bytes count as U+FFFD, as Java's decoder replaces them. */
int32_t gr_java_string_hash(const char *s, size_t len);

/* The partition (0 .. nparts-1) coordinating key; nparts must be > 0. */
int32_t gr_coordinator_partition(const char *key, size_t len, int32_t nparts);

#define GR_SHARE_STATE_TOPIC "__share_group_state"

/* Whether name is one of Kafka's internal topics (Topic.INTERNAL_TOPICS:
 * the two above and the share groups' state): Metadata flags them
 * is_internal and DeleteRecords refuses them. The two above are only ever
 * created as gr_internal_topic_spec_for says, never with the ordinary
 * topic defaults. */
bool gr_internal_topic(gr_str name);

#define GR_INTERNAL_TOPIC_MAX_CONFIGS 5

/* How an internal topic is created: Kafka's partition count, replication
 * factor and topic configs for it, from the broker's configuration
 * (offsets.topic.* or transaction.state.log.*). Unlike Kafka, which fails
 * the creation until enough brokers are up, the replication factor is
 * capped at the live broker count so that a small cluster gets working
 * groups; `capped` says so, for a warning. min.insync.replicas (the
 * transaction topic's) is capped at the replication factor likewise, or no
 * write could ever succeed. Config values point into the spec itself. */
typedef struct {
    int32_t partitions;
    int16_t replication_factor;
    int16_t wanted_replication_factor; /* before the cap */
    bool capped;
    int nconfigs;
    struct {
        const char *name;
        const char *value;
    } configs[GR_INTERNAL_TOPIC_MAX_CONFIGS];
    char values[GR_INTERNAL_TOPIC_MAX_CONFIGS][24];
} gr_internal_topic_spec;

/* Fills *out for internal topic name given live_brokers (unfenced, not
 * shutting down); false if name is not an internal topic. With no live
 * broker the replication factor stays as configured (the creation fails
 * and is retried). */
bool gr_internal_topic_spec_for(const gr_config *cfg, gr_str name, int32_t live_brokers,
                                gr_internal_topic_spec *out);

#endif
