/*
 * topic_settings.h - the effective configuration of one topic's logs: what
 * the partition logs, the cleaner and the produce path of a topic follow.
 *
 * Every setting is resolved as Kafka's LogConfig does it, highest first:
 *
 *   1 the topic's own key (CreateTopics configs, IncrementalAlterConfigs /
 *     AlterConfigs on the TOPIC resource; the metadata image holds them);
 *   2 the broker keys that default it (the synonym table of topic_config.h,
 *     in its precedence order: log.retention.ms, then .minutes, then .hours),
 *     each as a dynamic per-broker value, a dynamic cluster-wide value, then
 *     the static server.properties value;
 *   3 Kafka's default (the topic key table's default, which is the broker
 *     key's default too).
 *
 * A value that does not pass the topic key's checks at its level (a topic
 * value the controller should have refused, a kept unknown broker key) is
 * skipped with a warning, so that one bad value cannot take a log down.
 *
 * The resolution is a pure function of two lookups, so it is unit-tested
 * without a broker; gr_topic_settings_from_image binds the lookups to the
 * metadata image and the broker's configuration.
 *
 * Invariant: two gr_topic_settings built from the same inputs compare
 * equal with memcmp (the struct is zeroed before it is filled), which is
 * how the replica manager tells that a topic's settings changed.
 */
#ifndef GR_BROKER_TOPIC_SETTINGS_H
#define GR_BROKER_TOPIC_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/cleaner.h"
#include "common/config.h"
#include "common/log.h"
#include "common/metadata.h"

/* compression.type=producer: keep the producer's codec. */
#define GR_TOPIC_COMPRESSION_PRODUCER (-1)

typedef struct {
    gr_log_config log;         /* segment, retention, flush, index, timestamp type */
    gr_cleaner_config cleaner; /* min.cleanable.dirty.ratio, *.compaction.lag.ms, ... */
    bool compact;              /* cleanup.policy has compact */
    bool delete_;              /* cleanup.policy has delete */
    int32_t max_message_bytes; /* max.message.bytes */
    int32_t compression;       /* a gr_codec, or GR_TOPIC_COMPRESSION_PRODUCER */
    int32_t compression_level; /* the level key of that codec; -1: the codec's default */
    int64_t ts_before_max_ms;  /* message.timestamp.before.max.ms */
    int64_t ts_after_max_ms;   /* message.timestamp.after.max.ms */
    int32_t min_insync_replicas; /* min.insync.replicas: the ISR an acks=all produce needs */
} gr_topic_settings;

/* Writes the text of key into buf (NUL-terminated) and returns buf, or
 * returns NULL when the key is not set at that level. */
typedef const char *(*gr_topic_settings_lookup)(void *ctx, const char *key, char *buf,
                                                size_t buflen);

/* Resolves every setting. topic looks up topic keys, broker looks up broker
 * keys (already in their precedence order of sources); either may be NULL.
 * name is only for log lines. */
void gr_topic_settings_build(gr_topic_settings *out, const char *name,
                             gr_topic_settings_lookup topic, void *topic_ctx,
                             gr_topic_settings_lookup broker, void *broker_ctx);

/* The settings of topic `name` on broker node_id: topic keys from the
 * image, broker keys from the image's dynamic broker configs (this node's,
 * then the cluster default) and then from cfg. img may be NULL. */
void gr_topic_settings_from_image(gr_topic_settings *out, const gr_metadata_image *img,
                                  gr_str name, int32_t node_id, const gr_config *cfg);

#endif
