/*
 * topic_config.h - Kafka's topic-level configuration keys.
 *
 * The keys a client may set on a topic (CreateTopics configs,
 * IncrementalAlterConfigs / AlterConfigs on a TOPIC resource), with Kafka's
 * types, defaults and bounds, as a gr_config_def table so that it reads like
 * the broker's own configuration table. The values follow Kafka 4.0's
 * LogConfig / TopicConfig (for example segment.bytes has a 1 MiB minimum and
 * message.timestamp.after.max.ms defaults to one hour since 4.0).
 *
 * Keys that Kafka 4.0 removed (message.format.version,
 * message.downconversion.enable, message.timestamp.difference.max.ms) and the
 * tiered-storage keys (remote.storage.enable, local.retention.*) are not in
 * the table: setting them is INVALID_CONFIG "Unknown topic config name".
 *
 * Validation messages follow Kafka's ConfigException text:
 *   "Invalid value abc for configuration retention.ms: Not a number of type LONG"
 *
 * The module also holds, as data, the broker keys whose value is the default
 * of each topic key (log.retention.ms is the default of retention.ms, ...),
 * which DescribeConfigs reports as synonyms and which the broker uses when a
 * topic does not set a key.
 */
#ifndef GR_TOPIC_CONFIG_H
#define GR_TOPIC_CONFIG_H

#include <stddef.h>

#include "common/config.h"

/* Every topic config key, sorted by name. */
extern const gr_config_def gr_topic_config_defs[];
extern const size_t gr_topic_config_ndefs;

/* The definition of a topic key, or NULL if it is not one. */
const gr_config_def *gr_topic_config_find(const char *key);

/*
 * Checks one key=value for a topic. Returns 0, or GR_INVALID_CONFIG (40)
 * with Kafka's message in err: "Unknown topic config name: foo",
 * "Invalid value abc for configuration retention.ms: Not a number of type
 * LONG", "Null value not supported for topic configs: retention.ms"
 * (value NULL).
 */
int gr_topic_config_validate(const char *key, const char *value, char *err, size_t errlen);

/*
 * Checks value against one definition (type, bounds, validator) the way
 * Kafka's ConfigDef parses it: numbers and booleans are trimmed first.
 * Returns 0, or GR_INVALID_CONFIG with "Invalid value V for configuration
 * K: reason" in err. Usable for any gr_config_def table (the controller
 * checks dynamic broker keys with it).
 */
int gr_config_def_check(const gr_config_def *def, const char *value, char *err, size_t errlen);

/* A topic key and the broker key (server.properties) that gives its
 * default. Several broker keys may feed one topic key (log.retention.ms,
 * log.retention.minutes, log.retention.hours): they are listed in Kafka's
 * precedence order, highest first. */
typedef struct {
    const char *topic_key;
    const char *broker_key;
} gr_topic_config_synonym;

extern const gr_topic_config_synonym gr_topic_config_synonyms[];
extern const size_t gr_topic_config_nsynonyms;

/* The first (highest-precedence) broker key for a topic key, or NULL when
 * the key has no broker-level default (e.g. leader.replication.throttled.replicas). */
const char *gr_topic_config_broker_key(const char *topic_key);

#endif
