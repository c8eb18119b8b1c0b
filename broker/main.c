/*
 * main.c - gregor-broker: reads the configuration, claims its log directory
 * and serves clients until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "broker/broker.h"
#include "broker/server.h"
#include "common/logging.h"
#include "common/version.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gregor-broker [--config FILE] [--override key=value ...]\n"
            "\n"
            "Serves Kafka clients. Settings use Kafka's server.properties names; they come\n"
            "from GREGOR_<KEY> environment variables (node.id -> GREGOR_NODE_ID), then the\n"
            "--config file, then --override flags, each overriding the one before.\n");
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
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("gregor-broker %s\n", GR_VERSION);
            return 0;
        }
    }

    gr_broker broker = {0};
    broker.config = gr_config_new(gr_broker_config_defs, gr_broker_config_ndefs);
    if (!broker.config)
        return 1;
    if (gr_config_load(broker.config, argc, argv, environ) != 0) {
        usage(stderr);
        return 1;
    }
    if (gr_broker_configure(&broker) != 0)
        return 1;
    GR_INFO("broker", "gregor-broker %s starting, node.id=%d", GR_VERSION, broker.node_id);
    gr_config_log(broker.config, "config");

    char dir[4096];
    gr_broker_first_log_dir(&broker, dir, sizeof dir);
    if (gr_metaprops_ensure(dir, broker.node_id, broker.cluster_id) != 0)
        return 1;

    raise_fd_limit();
    gr_server *server = gr_server_new(&broker);
    if (!server)
        return 1;
    int rc = gr_server_run(server);
    gr_server_free(server);
    gr_config_free(broker.config);
    GR_INFO("broker", "node %d stopped", broker.node_id);
    return rc == 0 ? 0 : 1;
}
