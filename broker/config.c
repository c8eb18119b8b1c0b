/*
 * config.c - the broker's configuration keys, with Kafka's names and
 * defaults, and their translation into the typed gr_broker settings.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/logging.h"
#include "common/topic_config.h"

#define INT32_RANGE .min = INT32_MIN, .max = INT32_MAX

/* The broker keys that default topic keys take the topic key's checks. */
static int check_as(const char *topic_key, const char *v, char *err, size_t errlen)
{
    const gr_config_def *def = gr_topic_config_find(topic_key);
    return def && def->validate ? def->validate(v, err, errlen) : 0;
}
static int v_cleanup_policy(const char *v, char *e, size_t n) { return check_as("cleanup.policy", v, e, n); }
static int v_compression_type(const char *v, char *e, size_t n) { return check_as("compression.type", v, e, n); }
static int v_gzip_level(const char *v, char *e, size_t n) { return check_as("compression.gzip.level", v, e, n); }
static int v_timestamp_type(const char *v, char *e, size_t n) { return check_as("message.timestamp.type", v, e, n); }

const gr_config_def gr_broker_config_defs[] = {
    {.name = "node.id", .type = GR_CFG_INT, .dflt = "-1", .min = -1, .max = INT32_MAX,
     .doc = "The id of this node; required."},
    {.name = "listeners", .type = GR_CFG_LIST, .dflt = "PLAINTEXT://:9092",
     .doc = "NAME://host:port endpoints to listen on; an empty host means every interface."},
    {.name = "advertised.listeners", .type = GR_CFG_LIST, .dflt = NULL,
     .doc = "Endpoints given to clients, per listener name; defaults to listeners."},
    {.name = "listener.security.protocol.map", .type = GR_CFG_LIST,
     .dflt = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
     .doc = "Listener name to security protocol; only PLAINTEXT is served so far."},
    {.name = "log.dirs", .type = GR_CFG_LIST, .dflt = NULL,
     .doc = "Directories holding the partition logs; overrides log.dir."},
    {.name = "log.dir", .type = GR_CFG_STRING, .dflt = "/tmp/kafka-logs",
     .doc = "The log directory when log.dirs is not set."},
    {.name = "broker.rack", .type = GR_CFG_STRING, .dflt = NULL,
     .doc = "The rack of this broker, given to clients in Metadata."},
    {.name = "controller.quorum.voters", .type = GR_CFG_LIST, .dflt = "",
     .doc = "id@host:port of each controller (used from the controller quorum on)."},
    {.name = "cluster.id", .type = GR_CFG_STRING, .dflt = NULL,
     .doc = "The cluster id for new storage (kafka-storage format's --cluster-id); "
            "derived from controller.quorum.voters when unset."},
    {.name = "broker.heartbeat.interval.ms", .type = GR_CFG_INT, .dflt = "2000", .min = 1,
     .max = INT32_MAX, .doc = "How often the broker heartbeats to the active controller."},
    {.name = "auto.create.topics.enable", .type = GR_CFG_BOOL, .dflt = "true",
     .doc = "Create a topic when Metadata names one that does not exist."},
    {.name = "controller.listener.names", .type = GR_CFG_LIST, .dflt = "CONTROLLER",
     .doc = "The controllers' listener names."},
    {.name = "process.roles", .type = GR_CFG_LIST, .dflt = "broker",
     .doc = "The roles of this process; gregor-broker is a broker."},
    {.name = "socket.request.max.bytes", .type = GR_CFG_INT, .dflt = "104857600",
     .min = 1, .max = INT32_MAX, .doc = "The largest request a client may send."},
    {.name = "num.network.threads", .type = GR_CFG_INT, .dflt = "3", .min = 1,
     .max = 256, .doc = "Network threads, each an event loop serving its connections."},
    {.name = "connections.max.idle.ms", .type = GR_CFG_LONG, .dflt = "600000",
     .min = -1, .max = INT64_MAX, .doc = "Idle connections are closed after this long."},
    {.name = "log.segment.bytes", .type = GR_CFG_INT, .dflt = "1073741824", .min = 14,
     .max = INT32_MAX, .doc = "The largest size of a log segment file."},
    {.name = "log.retention.hours", .type = GR_CFG_INT, .dflt = "168", .min = -1,
     .max = INT32_MAX, .doc = "How long log segments are kept (log.retention.ms wins when set)."},
    {.name = "log.retention.ms", .type = GR_CFG_LONG, .dflt = NULL, .min = -1,
     .max = INT64_MAX, .doc = "How long log segments are kept; -1: forever."},
    {.name = "log.retention.bytes", .type = GR_CFG_LONG, .dflt = "-1", .min = -1,
     .max = INT64_MAX, .doc = "The largest size of a partition's log before old segments go."},
    {.name = "log.retention.check.interval.ms", .type = GR_CFG_LONG, .dflt = "300000",
     .min = 1, .max = INT64_MAX, .doc = "How often retention runs."},
    {.name = "min.insync.replicas", .type = GR_CFG_INT, .dflt = "1", .min = 1, .max = INT32_MAX,
     .doc = "Default min.insync.replicas of topics: in-sync replicas an acks=all write needs."},
    {.name = "message.max.bytes", .type = GR_CFG_INT, .dflt = "1048588", .min = 0,
     .max = INT32_MAX,
     .doc = "The largest record batch a partition accepts (default of max.message.bytes)."},
    /* Broker defaults of topic keys (see topic_settings.h), Kafka's names
     * and defaults. */
    {.name = "log.retention.minutes", .type = GR_CFG_INT, .dflt = NULL, .min = -1,
     .max = INT32_MAX, .doc = "How long log segments are kept, in minutes (wins over .hours)."},
    {.name = "log.roll.ms", .type = GR_CFG_LONG, .dflt = NULL, .min = 1, .max = INT64_MAX,
     .doc = "Age after which the active segment is rolled (wins over log.roll.hours)."},
    {.name = "log.roll.hours", .type = GR_CFG_INT, .dflt = "168", .min = 1, .max = INT32_MAX,
     .doc = "Age in hours after which the active segment is rolled."},
    {.name = "log.cleanup.policy", .type = GR_CFG_LIST, .dflt = "delete",
     .doc = "delete, compact or both: the default cleanup.policy.", .validate = v_cleanup_policy},
    {.name = "compression.type", .type = GR_CFG_STRING, .dflt = "producer",
     .doc = "The default compression.type: producer, uncompressed, gzip, snappy, lz4, zstd.",
     .validate = v_compression_type},
    {.name = "compression.gzip.level", .type = GR_CFG_INT, .dflt = "-1", INT32_RANGE,
     .doc = "The default gzip level (1-9, -1: the codec's default).", .validate = v_gzip_level},
    {.name = "compression.lz4.level", .type = GR_CFG_INT, .dflt = "9", .min = 1, .max = 17,
     .doc = "The default lz4 level."},
    {.name = "compression.zstd.level", .type = GR_CFG_INT, .dflt = "3", .min = -131072, .max = 22,
     .doc = "The default zstd level."},
    {.name = "log.message.timestamp.type", .type = GR_CFG_STRING, .dflt = "CreateTime",
     .doc = "CreateTime or LogAppendTime: the default message.timestamp.type.",
     .validate = v_timestamp_type},
    {.name = "log.message.timestamp.before.max.ms", .type = GR_CFG_LONG,
     .dflt = "9223372036854775807", .min = 0, .max = INT64_MAX,
     .doc = "How far in the past a CreateTime timestamp may be."},
    {.name = "log.message.timestamp.after.max.ms", .type = GR_CFG_LONG, .dflt = "3600000",
     .min = 0, .max = INT64_MAX, .doc = "How far in the future a CreateTime timestamp may be."},
    {.name = "log.index.size.max.bytes", .type = GR_CFG_INT, .dflt = "10485760", .min = 4,
     .max = INT32_MAX, .doc = "The size of a segment's offset index."},
    {.name = "log.index.interval.bytes", .type = GR_CFG_INT, .dflt = "4096", .min = 0,
     .max = INT32_MAX, .doc = "Bytes of batches between offset index entries."},
    {.name = "log.flush.interval.messages", .type = GR_CFG_LONG, .dflt = "9223372036854775807",
     .min = 1, .max = INT64_MAX, .doc = "Messages appended before a log is fsynced."},
    {.name = "log.flush.interval.ms", .type = GR_CFG_LONG, .dflt = NULL, .min = 0,
     .max = INT64_MAX, .doc = "Time before a log is fsynced (default log.flush.scheduler.interval.ms)."},
    {.name = "log.flush.scheduler.interval.ms", .type = GR_CFG_LONG,
     .dflt = "9223372036854775807", .min = 0, .max = INT64_MAX,
     .doc = "The default of log.flush.interval.ms."},
    {.name = "log.segment.delete.delay.ms", .type = GR_CFG_LONG, .dflt = "60000", .min = 0,
     .max = INT64_MAX, .doc = "How long a deleted segment file stays before it is unlinked."},
    {.name = "replica.high.watermark.checkpoint.interval.ms", .type = GR_CFG_LONG,
     .dflt = "5000", .min = 0, .max = INT64_MAX,
     .doc = "How often the high watermarks are saved to replication-offset-checkpoint."},
    {.name = "log.cleaner.backoff.ms", .type = GR_CFG_LONG, .dflt = "15000", .min = 0,
     .max = INT64_MAX, .doc = "How long the cleaner sleeps when there is nothing to clean."},
    {.name = "log.cleaner.min.cleanable.ratio", .type = GR_CFG_DOUBLE, .dflt = "0.5", .min = 0,
     .max = 1, .doc = "The default min.cleanable.dirty.ratio."},
    {.name = "log.cleaner.min.compaction.lag.ms", .type = GR_CFG_LONG, .dflt = "0", .min = 0,
     .max = INT64_MAX, .doc = "The default min.compaction.lag.ms."},
    {.name = "log.cleaner.max.compaction.lag.ms", .type = GR_CFG_LONG,
     .dflt = "9223372036854775807", .min = 1, .max = INT64_MAX,
     .doc = "The default max.compaction.lag.ms."},
    {.name = "log.cleaner.delete.retention.ms", .type = GR_CFG_LONG, .dflt = "86400000", .min = 0,
     .max = INT64_MAX, .doc = "The default delete.retention.ms."},
    {.name = "offsets.topic.num.partitions", .type = GR_CFG_INT, .dflt = "50", .min = 1,
     .max = INT32_MAX, .doc = "Partitions of __consumer_offsets, created on first use."},
    {.name = "offsets.topic.replication.factor", .type = GR_CFG_INT, .dflt = "3", .min = 1,
     .max = INT16_MAX,
     .doc = "Replicas of __consumer_offsets (capped at the live broker count, with a warning)."},
    {.name = "offsets.topic.segment.bytes", .type = GR_CFG_INT, .dflt = "104857600", .min = 1,
     .max = INT32_MAX, .doc = "segment.bytes of __consumer_offsets."},
    {.name = "offsets.retention.minutes", .type = GR_CFG_INT, .dflt = "10080", .min = 1,
     .max = INT32_MAX, .doc = "How long the committed offsets of an empty group are kept."},
    {.name = "offsets.retention.check.interval.ms", .type = GR_CFG_LONG, .dflt = "600000",
     .min = 1, .max = INT64_MAX, .doc = "How often expired offsets are removed."},
    {.name = "offsets.commit.timeout.ms", .type = GR_CFG_INT, .dflt = "5000", .min = 1,
     .max = INT32_MAX, .doc = "How long an offset commit waits for its append."},
    {.name = "offset.metadata.max.bytes", .type = GR_CFG_INT, .dflt = "4096", .min = 0,
     .max = INT32_MAX, .doc = "The largest metadata string of an offset commit."},
    {.name = "group.initial.rebalance.delay.ms", .type = GR_CFG_INT, .dflt = "3000", .min = 0,
     .max = INT32_MAX, .doc = "How long the first rebalance of an empty group waits for members."},
    {.name = "group.min.session.timeout.ms", .type = GR_CFG_INT, .dflt = "6000", .min = 0,
     .max = INT32_MAX, .doc = "The smallest session timeout a member may ask for."},
    {.name = "group.max.session.timeout.ms", .type = GR_CFG_INT, .dflt = "1800000", .min = 0,
     .max = INT32_MAX, .doc = "The largest session timeout a member may ask for."},
    {.name = "group.max.size", .type = GR_CFG_INT, .dflt = "2147483647", .min = 1,
     .max = INT32_MAX, .doc = "The most members a classic group may have."},
    {.name = "transaction.state.log.num.partitions", .type = GR_CFG_INT, .dflt = "50",
     .min = 1, .max = INT32_MAX, .doc = "Partitions of __transaction_state."},
    {.name = "transaction.state.log.replication.factor", .type = GR_CFG_INT, .dflt = "3",
     .min = 1, .max = INT16_MAX,
     .doc = "Replicas of __transaction_state (capped at the live broker count, with a warning)."},
    {.name = "transaction.state.log.segment.bytes", .type = GR_CFG_INT, .dflt = "104857600",
     .min = 1, .max = INT32_MAX, .doc = "segment.bytes of __transaction_state."},
    {.name = "transaction.state.log.min.isr", .type = GR_CFG_INT, .dflt = "2", .min = 1,
     .max = INT32_MAX, .doc = "min.insync.replicas of __transaction_state."},
    {.name = "max.incremental.fetch.session.cache.slots", .type = GR_CFG_INT, .dflt = "1000",
     .min = 0, .max = INT32_MAX, .doc = "The most incremental fetch sessions kept (KIP-227)."},
    {.name = "min.incremental.fetch.session.eviction.ms", .type = GR_CFG_INT, .dflt = "120000",
     .min = 0, .max = INT32_MAX,
     .doc = "The least time an incremental fetch session is kept before it may be evicted."},
    {.name = "log.level", .type = GR_CFG_STRING, .dflt = "info",
     .doc = "debug, info, warn or error."},
};
const size_t gr_broker_config_ndefs = sizeof gr_broker_config_defs / sizeof gr_broker_config_defs[0];

/* Every listener name needs a security protocol in
 * listener.security.protocol.map (Kafka refuses to start otherwise), and
 * PLAINTEXT is the only protocol served so far. */
static int check_protocol(const gr_config *c, const char *listener)
{
    size_t n;
    const char *const *map = gr_config_list(c, "listener.security.protocol.map", &n);
    size_t len = strlen(listener);
    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(map[i], listener, len) != 0 || map[i][len] != ':')
            continue;
        const char *proto = map[i] + len + 1;
        if (strcasecmp(proto, "PLAINTEXT") == 0)
            return 0;
        GR_ERROR("config", "listener %s uses security protocol %s, which is not supported yet",
                 listener, proto);
        return -1;
    }
    GR_ERROR("config", "listener %s has no entry in listener.security.protocol.map", listener);
    return -1;
}

/* Finds the advertised endpoint for a listener name in advertised.listeners. */
static const gr_listener *find_named(const gr_listener *ls, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ls[i].name, name) == 0)
            return &ls[i];
    return NULL;
}

int gr_broker_configure(gr_broker *b)
{
    gr_config *c = b->config;
    char err[256];

    int level = gr_logging_parse_level(gr_config_str(c, "log.level"));
    if (level < 0) {
        GR_ERROR("config", "invalid value '%s' for log.level: use debug, info, warn or error",
                 gr_config_str(c, "log.level"));
        return -1;
    }
    gr_logging_set_level((gr_logging_level)level);

    b->node_id = gr_config_int(c, "node.id");
    if (b->node_id < 0) {
        GR_ERROR("config", "node.id is required: set it to this broker's id (>= 0)");
        return -1;
    }
    const char *rack = gr_config_str(c, "broker.rack");
    snprintf(b->rack, sizeof b->rack, "%s", rack ? rack : "");
    b->socket_request_max_bytes = gr_config_int(c, "socket.request.max.bytes");
    b->num_network_threads = gr_config_int(c, "num.network.threads");

    gr_listener binds[GR_BROKER_MAX_LISTENERS], adv[GR_BROKER_MAX_LISTENERS];
    int nb = gr_listeners_parse(gr_config_str(c, "listeners"), binds, GR_BROKER_MAX_LISTENERS,
                                err, sizeof err);
    if (nb <= 0) {
        GR_ERROR("config", "invalid value for listeners: %s", nb == 0 ? "no listener" : err);
        return -1;
    }
    int na = 0;
    const char *adv_value = gr_config_str(c, "advertised.listeners");
    if (adv_value && adv_value[0]) {
        na = gr_listeners_parse(adv_value, adv, GR_BROKER_MAX_LISTENERS, err, sizeof err);
        if (na < 0) {
            GR_ERROR("config", "invalid value for advertised.listeners: %s", err);
            return -1;
        }
        for (int i = 0; i < na; i++)
            if (!find_named(binds, nb, adv[i].name)) {
                GR_ERROR("config", "advertised.listeners names %s, which is not in listeners",
                         adv[i].name);
                return -1;
            }
    }
    for (int i = 0; i < nb; i++)
        if (check_protocol(c, binds[i].name) != 0)
            return -1;
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname - 1);
    for (int i = 0; i < nb; i++) {
        gr_broker_listener *l = &b->listeners[i];
        l->bind = binds[i];
        const gr_listener *a = find_named(adv, na, binds[i].name);
        l->advertise = a ? *a : binds[i];
        /* A wildcard address cannot be dialled: advertise the host name, as
         * Kafka does. */
        if (l->advertise.host[0] == 0 || strcmp(l->advertise.host, "0.0.0.0") == 0 ||
            strcmp(l->advertise.host, "::") == 0)
            snprintf(l->advertise.host, sizeof l->advertise.host, "%s", hostname);
    }
    b->nlisteners = nb;
    return 0;
}

/* The first of log.dirs, else log.dir: where meta.properties lives. */
const char *gr_broker_first_log_dir(const gr_broker *b, char *buf, size_t len)
{
    const char *dirs = gr_config_str(b->config, "log.dirs");
    if (!dirs || !dirs[0])
        dirs = gr_config_str(b->config, "log.dir");
    size_t n = strcspn(dirs, ",");
    snprintf(buf, len, "%.*s", (int)n, dirs);
    return buf;
}
