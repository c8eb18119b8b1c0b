/*
 * main.c - gregor-controller: a voter of the metadata quorum, and the
 * active controller while it leads it (see controller.h).
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/logging.h"
#include "common/process.h"
#include "common/version.h"
#include "controller/controller.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gregor-controller [--config FILE] [--override key=value ...]\n"
            "\n"
            "A voter of the metadata quorum. Settings use Kafka's names (node.id,\n"
            "listeners=CONTROLLER://host:port, controller.quorum.voters=1@host:port,...,\n"
            "metadata.log.dir); they come from GREGOR_<KEY> environment variables, then\n"
            "the --config file, then --override flags, each overriding the one before.\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    GR_INFO("controller", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(arg, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_controller_tick(arg);
}

static int serve(gr_controller *c)
{
    c->base = event_base_new();
    if (!c->base)
        return -1;
    c->sm = (gr_metadata_sm){.ctx = c,
                             .applied = gr_controller_applied,
                             .reloaded = gr_controller_reloaded,
                             .role = gr_controller_role};
    c->activation_offset = -1;
    gr_quorum_config qc = {
        .node_id = c->node_id,
        .voters = c->voters,
        .n_voters = (size_t)c->nvoters,
        .dir = c->metadata_dir,
        .cluster_id = c->cluster_id,
        .snapshot_bytes =
            gr_config_long(c->config, "metadata.log.max.record.bytes.between.snapshots"),
        .segment_bytes = gr_config_long(c->config, "metadata.log.segment.bytes"),
        .sm = gr_metadata_sm_callbacks(&c->sm),
    };
    gr_raft_config_defaults(&qc.raft);
    qc.raft.election_timeout_ms = gr_config_int(c->config, "controller.quorum.election.timeout.ms");
    qc.raft.fetch_timeout_ms = gr_config_int(c->config, "controller.quorum.fetch.timeout.ms");
    qc.raft.request_timeout_ms = gr_config_int(c->config, "controller.quorum.request.timeout.ms");
    qc.raft.retry_backoff_ms = gr_config_int(c->config, "controller.quorum.retry.backoff.ms");
    gr_netserver_config nc = {
        .listeners = c->listeners,
        .nlisteners = c->nlisteners,
        .max_request_bytes = gr_config_int(c->config, "socket.request.max.bytes"),
        .idle_ms = gr_config_long(c->config, "connections.max.idle.ms"),
        .num_threads = 0, /* everything on this loop: see controller.h */
        .apis = &gr_controller_apis,
        .ctx = c,
        .subsystem = "controller",
    };
    struct event *sig_int = evsignal_new(c->base, SIGINT, on_signal, c->base);
    struct event *sig_term = evsignal_new(c->base, SIGTERM, on_signal, c->base);
    c->ticker = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    struct timeval tick = {0, 100000};
    int rc = -1;
    if (sig_int && sig_term && c->ticker && event_add(sig_int, NULL) == 0 &&
        event_add(sig_term, NULL) == 0 && event_add(c->ticker, &tick) == 0 &&
        (c->quorum = gr_quorum_open(c->base, &qc)) &&
        (c->server = gr_netserver_new(c->base, &nc)) && gr_netserver_start(c->server) == 0) {
        GR_INFO("controller", "node %d ready, cluster %s", c->node_id, c->cluster_id);
        rc = event_base_dispatch(c->base) < 0 ? -1 : 0;
    }
    gr_controller_deactivate(c);
    gr_netserver_free(c->server);
    gr_quorum_close(c->quorum);
    gr_metadata_image_free(c->sm.img);
    if (c->ticker)
        event_free(c->ticker);
    if (sig_int)
        event_free(sig_int);
    if (sig_term)
        event_free(sig_term);
    event_base_free(c->base);
    return rc;
}

int main(int argc, char **argv)
{
    gr_controller c = {0};
    int status = gr_process_begin(argc, argv, "gregor-controller", usage, gr_controller_config_defs,
                                  gr_controller_config_ndefs, &c.config);
    if (status != GR_PROCESS_RUN)
        return status;
    if (gr_controller_configure(&c) != 0)
        return 1;
    GR_INFO("controller", "gregor-controller %s starting, node.id=%d", GR_VERSION, c.node_id);
    gr_config_log(c.config, "config");
    if (gr_metaprops_ensure(c.metadata_dir, c.node_id, c.cluster_id) != 0)
        return 1;
    int rc = serve(&c);
    gr_config_free(c.config);
    GR_INFO("controller", "node %d stopped", c.node_id);
    return rc == 0 ? 0 : 1;
}
