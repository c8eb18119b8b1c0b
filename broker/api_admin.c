/*
 * api_admin.c - admin requests, forwarded to the active controller.
 *
 * Topics, partitions, configs and the quorum's state belong to the
 * controllers. A broker decodes such a request (so that a malformed one is
 * refused here), sends it on to the active controller at the client's
 * version, and answers with the controller's response body as it came.
 */
#include "broker/api.h"
#include "broker/cluster.h"

#define FORWARD_HANDLER(name, type)                                                                \
    int name(gr_request *req, gr_writer *out)                                                      \
    {                                                                                              \
        (void)out;                                                                                 \
        gr_broker *b = req->ctx;                                                                   \
        type *body = gr_arena_alloc(&req->arena, sizeof *body);                                    \
        if (!body || type##_decode(body, &req->body, req->api_version, &req->arena) != GR_OK)      \
            return GR_CLOSE;                                                                       \
        return gr_cluster_forward(b->cluster, req, body);                                          \
    }

FORWARD_HANDLER(gr_handle_create_topics, gr_create_topics_request)
FORWARD_HANDLER(gr_handle_delete_topics, gr_delete_topics_request)
FORWARD_HANDLER(gr_handle_create_partitions, gr_create_partitions_request)
FORWARD_HANDLER(gr_handle_describe_configs, gr_describe_configs_request)
FORWARD_HANDLER(gr_handle_alter_configs, gr_alter_configs_request)
FORWARD_HANDLER(gr_handle_incremental_alter_configs, gr_incremental_alter_configs_request)
FORWARD_HANDLER(gr_handle_describe_quorum, gr_describe_quorum_request)
