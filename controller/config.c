/*
 * config.c - the controller's configuration keys, with Kafka's names and
 * defaults, and their translation into gr_controller settings.
 */
#include <stdio.h>
#include <string.h>

#include "common/logging.h"
#include "controller/controller.h"

const gr_config_def gr_controller_config_defs[] = {
    {.name = "node.id", .type = GR_CFG_INT, .dflt = "-1", .min = -1, .max = INT32_MAX,
     .doc = "The id of this node; required, and distinct from every broker's."},
    {.name = "process.roles", .type = GR_CFG_LIST, .dflt = "controller",
     .doc = "The roles of this process; gregor-controller is a controller."},
    {.name = "listeners", .type = GR_CFG_LIST, .dflt = "CONTROLLER://:9093",
     .doc = "NAME://host:port endpoints brokers and other controllers reach us on."},
    {.name = "controller.listener.names", .type = GR_CFG_LIST, .dflt = "CONTROLLER",
     .doc = "The listener names used by the quorum."},
    {.name = "listener.security.protocol.map", .type = GR_CFG_LIST,
     .dflt = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
     .doc = "Listener name to security protocol; only PLAINTEXT is served so far."},
    {.name = "controller.quorum.voters", .type = GR_CFG_LIST, .dflt = NULL,
     .doc = "id@host:port of every controller; required."},
    {.name = "cluster.id", .type = GR_CFG_STRING, .dflt = NULL,
     .doc = "The cluster id for new storage (kafka-storage format's --cluster-id); "
            "derived from controller.quorum.voters when unset."},
    {.name = "metadata.log.dir", .type = GR_CFG_STRING, .dflt = NULL,
     .doc = "Where the metadata log lives; defaults to the first of log.dirs."},
    {.name = "log.dirs", .type = GR_CFG_LIST, .dflt = NULL, .doc = "Storage directories."},
    {.name = "log.dir", .type = GR_CFG_STRING, .dflt = "/tmp/kraft-controller-logs",
     .doc = "The storage directory when log.dirs is not set."},
    {.name = "controller.quorum.election.timeout.ms", .type = GR_CFG_INT, .dflt = "1000",
     .min = 10, .max = INT32_MAX, .doc = "Base election timeout (randomised up to twice)."},
    {.name = "controller.quorum.fetch.timeout.ms", .type = GR_CFG_INT, .dflt = "2000", .min = 10,
     .max = INT32_MAX, .doc = "A follower without a successful fetch this long stands."},
    {.name = "controller.quorum.request.timeout.ms", .type = GR_CFG_INT, .dflt = "2000",
     .min = 10, .max = INT32_MAX, .doc = "Quorum requests time out after this."},
    {.name = "controller.quorum.retry.backoff.ms", .type = GR_CFG_INT, .dflt = "20", .min = 0,
     .max = INT32_MAX, .doc = "Backoff between quorum retries."},
    {.name = "metadata.log.max.record.bytes.between.snapshots", .type = GR_CFG_LONG,
     .dflt = "20971520", .min = 1, .max = INT64_MAX,
     .doc = "A snapshot is written after this many bytes of new records."},
    {.name = "metadata.log.segment.bytes", .type = GR_CFG_LONG, .dflt = "1073741824",
     .min = 1024, .max = INT64_MAX, .doc = "Segment size of the metadata log."},
    {.name = "broker.session.timeout.ms", .type = GR_CFG_INT, .dflt = "9000", .min = 1,
     .max = INT32_MAX, .doc = "A broker without a heartbeat this long is fenced."},
    {.name = "broker.heartbeat.interval.ms", .type = GR_CFG_INT, .dflt = "2000", .min = 1,
     .max = INT32_MAX, .doc = "How often brokers heartbeat (a broker setting, accepted here)."},
    {.name = "num.partitions", .type = GR_CFG_INT, .dflt = "1", .min = 1, .max = INT32_MAX,
     .doc = "Partitions of a topic created without a count."},
    {.name = "default.replication.factor", .type = GR_CFG_INT, .dflt = "1", .min = 1,
     .max = INT16_MAX, .doc = "Replication factor of a topic created without one."},
    {.name = "unclean.leader.election.enable", .type = GR_CFG_BOOL, .dflt = "false",
     .doc = "Elect a leader outside the ISR when no ISR member is alive (may lose data)."},
    {.name = "socket.request.max.bytes", .type = GR_CFG_INT, .dflt = "104857600", .min = 1,
     .max = INT32_MAX, .doc = "The largest request accepted."},
    {.name = "connections.max.idle.ms", .type = GR_CFG_LONG, .dflt = "600000", .min = -1,
     .max = INT64_MAX, .doc = "Idle connections are closed after this long."},
    {.name = "log.level", .type = GR_CFG_STRING, .dflt = "info",
     .doc = "debug, info, warn or error."},
};
const size_t gr_controller_config_ndefs =
    sizeof gr_controller_config_defs / sizeof gr_controller_config_defs[0];

int gr_controller_configure(gr_controller *c)
{
    gr_config *cfg = c->config;
    char err[256];
    int level = gr_logging_parse_level(gr_config_str(cfg, "log.level"));
    if (level < 0) {
        GR_ERROR("config", "invalid value '%s' for log.level", gr_config_str(cfg, "log.level"));
        return -1;
    }
    gr_logging_set_level((gr_logging_level)level);

    c->node_id = gr_config_int(cfg, "node.id");
    if (c->node_id < 0) {
        GR_ERROR("config", "node.id is required: set it to this controller's id (>= 0)");
        return -1;
    }
    const char *voters = gr_config_str(cfg, "controller.quorum.voters");
    c->nvoters = voters ? gr_voters_parse(voters, c->voters, 16, err, sizeof err) : -1;
    if (c->nvoters <= 0) {
        GR_ERROR("config", "controller.quorum.voters is required (id@host:port,...)%s%s",
                 c->nvoters < 0 && voters ? ": " : "", c->nvoters < 0 && voters ? err : "");
        return -1;
    }
    bool voter = false;
    for (int i = 0; i < c->nvoters; i++)
        voter |= c->voters[i].id == c->node_id;
    if (!voter) {
        GR_ERROR("config", "node.id %d is not one of controller.quorum.voters", c->node_id);
        return -1;
    }
    c->nlisteners = gr_listeners_parse(gr_config_str(cfg, "listeners"), c->listeners,
                                       GR_CONTROLLER_MAX_LISTENERS, err, sizeof err);
    if (c->nlisteners <= 0) {
        GR_ERROR("config", "invalid value for listeners: %s", c->nlisteners == 0 ? "none" : err);
        return -1;
    }
    gr_cluster_id_default(gr_config_str(cfg, "cluster.id"), voters, c->cluster_id);

    const char *dir = gr_config_str(cfg, "metadata.log.dir");
    if (!dir || !dir[0]) {
        dir = gr_config_str(cfg, "log.dirs");
        if (!dir || !dir[0])
            dir = gr_config_str(cfg, "log.dir");
    }
    size_t n = strcspn(dir, ",");
    snprintf(c->metadata_dir, sizeof c->metadata_dir, "%.*s", (int)n, dir);
    return 0;
}
