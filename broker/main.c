/*
 * main.c - gregor-broker: reads the configuration, claims its log directory
 * and serves clients until SIGINT or SIGTERM.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker/api.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/coordinator.h"
#include "broker/fetch_session.h"
#include "broker/replica.h"
#include "common/netserver.h"
#include "common/process.h"
#include "common/logging.h"
#include "common/version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gregor-broker [--config FILE] [--override key=value ...]\n"
            "\n"
            "Serves Kafka clients. Settings use Kafka's server.properties names; they come\n"
            "from GREGOR_<KEY> environment variables (node.id -> GREGOR_NODE_ID), then the\n"
            "--config file, then --override flags, each overriding the one before.\n");
}

typedef struct {
    gr_broker *b;
    struct event_base *base;
    bool stopping;
} shell;

static void stop_now(void *arg)
{
    shell *sh = arg;
    event_base_loopexit(sh->base, NULL);
}

/* The first signal starts a controlled shutdown (in a cluster: leaderships
 * move first); a second one stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    shell *sh = arg;
    GR_INFO("broker", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (sh->stopping || !sh->b->cluster) {
        stop_now(sh);
        return;
    }
    sh->stopping = true;
    gr_cluster_shutdown(sh->b->cluster, stop_now, sh);
}

/* The fetch session cache; its ids must not be guessable across restarts,
 * so its generator is seeded from the kernel (the clock if that fails). */
static struct gr_fetch_sessions *fetch_sessions_new(const gr_broker *b)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    gr_fetch_sessions *c =
        gr_fsess_new(gr_config_int(b->config, "max.incremental.fetch.session.cache.slots"),
                     gr_config_int(b->config, "min.incremental.fetch.session.eviction.ms"), seed);
    if (!c)
        GR_ERROR("broker", "out of memory for the fetch session cache");
    return c;
}

/* Serves clients until SIGINT or SIGTERM. */
static int serve(gr_broker *b)
{
    gr_listener binds[GR_BROKER_MAX_LISTENERS];
    for (int i = 0; i < b->nlisteners; i++)
        binds[i] = b->listeners[i].bind;
    gr_netserver_config cfg = {
        .listeners = binds,
        .nlisteners = b->nlisteners,
        .max_request_bytes = b->socket_request_max_bytes,
        .idle_ms = gr_config_long(b->config, "connections.max.idle.ms"),
        .num_threads = b->num_network_threads,
        .apis = gr_config_str(b->config, "controller.quorum.voters")[0] ? &gr_broker_apis_cluster
                                                                          : &gr_broker_apis_standalone,
        .ctx = b,
        .subsystem = "broker",
    };
    /* Network threads hand work to this loop (forwarding): it needs locks. */
    if (evthread_use_pthreads() != 0)
        return -1;
    struct event_base *base = event_base_new();
    if (!base)
        return -1;
    int rc = -1;
    shell sh = {.b = b, .base = base};
    struct event *sig_int = evsignal_new(base, SIGINT, on_signal, &sh);
    struct event *sig_term = evsignal_new(base, SIGTERM, on_signal, &sh);
    gr_netserver *server = NULL;
    bool clustered = gr_config_str(b->config, "controller.quorum.voters")[0] != 0;
    if (sig_int && sig_term && event_add(sig_int, NULL) == 0 && event_add(sig_term, NULL) == 0 &&
        (b->fetch_sessions = fetch_sessions_new(b)) &&
        (!clustered || (b->replicas = gr_replica_new(b))) &&
        (!clustered || (b->coordinator = gr_coordinator_new(b, base))) &&
        (!clustered || (b->cluster = gr_cluster_start(b, base))) &&
        (server = gr_netserver_new(base, &cfg)) && gr_netserver_start(server) == 0) {
        GR_INFO("broker", "node %d ready%s", b->node_id, clustered ? "" : " (standalone)");
        rc = event_base_dispatch(base) < 0 ? -1 : 0;
    }
    /* Long polls answer now, while the network threads still run. */
    gr_replica_stop(b->replicas);
    /* Members waiting on a rebalance are answered while their threads run. */
    gr_coordinator_stop(b->coordinator);
    gr_netserver_free(server);
    gr_coordinator_free(b->coordinator);
    b->coordinator = NULL;
    gr_cluster_free(b->cluster);
    b->cluster = NULL;
    /* After the network threads: no request holds a partition any more. */
    gr_replica_free(b->replicas);
    b->replicas = NULL;
    gr_fsess_free(b->fetch_sessions);
    b->fetch_sessions = NULL;
    if (sig_int)
        event_free(sig_int);
    if (sig_term)
        event_free(sig_term);
    event_base_free(base);
    return rc;
}

/* Serving many clients needs many descriptors: take what the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    gr_broker broker = {0};
    int status = gr_process_begin(argc, argv, "gregor-broker", usage, gr_broker_config_defs,
                                  gr_broker_config_ndefs, &broker.config);
    if (status != GR_PROCESS_RUN)
        return status;
    if (gr_broker_configure(&broker) != 0)
        return 1;
    GR_INFO("broker", "gregor-broker %s starting, node.id=%d", GR_VERSION, broker.node_id);
    gr_config_log(broker.config, "config");

    char dir[4096];
    gr_broker_first_log_dir(&broker, dir, sizeof dir);
    gr_cluster_id_default(gr_config_str(broker.config, "cluster.id"),
                          gr_config_str(broker.config, "controller.quorum.voters"),
                          broker.cluster_id);
    if (gr_metaprops_ensure(dir, broker.node_id, broker.cluster_id) != 0)
        return 1;

    raise_fd_limit();
    int rc = serve(&broker);
    gr_config_free(broker.config);
    GR_INFO("broker", "node %d stopped", broker.node_id);
    return rc == 0 ? 0 : 1;
}
