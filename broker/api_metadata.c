/*
 * api_metadata.c - the Metadata handler.
 *
 * Answers with the brokers of the cluster (each at its endpoint for the
 * listener the request arrived on, as Kafka does, so that clients stay on
 * the network they came in on), the cluster id, the controller id and the
 * requested topics. Until the controller quorum exists the cluster is this
 * broker alone and holds no topics: a requested topic is answered with
 * UNKNOWN_TOPIC_OR_PARTITION (or UNKNOWN_TOPIC_ID when asked for by id, and
 * INVALID_TOPIC_EXCEPTION when its name is not a legal topic name).
 */
#include "broker/api.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/names.h"

int gr_handle_metadata(gr_request *req, gr_writer *out)
{
    gr_broker *b = req->ctx;
    gr_metadata_request body;
    int rc = gr_metadata_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed Metadata v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }

    gr_metadata_response resp;
    gr_metadata_response_init(&resp);
    resp.throttle_time_ms = 0;

    const gr_listener *ep = &b->listeners[req->listener].advertise;
    resp.brokers = gr_arena_calloc(&req->arena, 1, sizeof *resp.brokers);
    if (!resp.brokers)
        return GR_CLOSE;
    resp.brokers_count = 1;
    resp.brokers[0].node_id = b->node_id;
    resp.brokers[0].host = gr_str_from(ep->host);
    resp.brokers[0].port = ep->port;
    resp.brokers[0].rack = b->rack[0] ? gr_str_from(b->rack) : GR_STR_NULL;
    resp.cluster_id = gr_str_from(b->cluster_id);
    resp.controller_id = b->node_id;

    /* A null topic list (v1+) asks for every topic; there are none yet. An
     * empty list asks for none. */
    int32_t n = body.topics_count < 0 ? 0 : body.topics_count;
    resp.topics = gr_arena_calloc(&req->arena, (size_t)n, sizeof *resp.topics);
    if (n > 0 && !resp.topics)
        return GR_CLOSE;
    resp.topics_count = n;
    for (int32_t i = 0; i < n; i++) {
        gr_metadata_request_topic *t = &body.topics[i];
        gr_metadata_response_topic *rt = &resp.topics[i];
        gr_metadata_response_topic_init(rt);
        rt->name = t->name;
        rt->topic_id = t->topic_id;
        rt->partitions_count = 0;
        if (t->name.len < 0) {
            rt->error_code = GR_UNKNOWN_TOPIC_ID;
        } else {
            rt->error_code = gr_topic_name_valid(t->name) ? GR_UNKNOWN_TOPIC_OR_PARTITION
                                                          : GR_INVALID_TOPIC_EXCEPTION;
            rt->topic_id = (gr_uuid){{0}};
        }
    }
    return gr_metadata_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                               : GR_CLOSE;
}
