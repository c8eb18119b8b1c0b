/*
 * api_find_coordinator.c - FindCoordinator: which broker coordinates a
 * consumer group (key type 0) or a transactional id (key type 1).
 *
 * As in Kafka, the coordinator of a key is the leader of partition
 * gr_coordinator_partition(key) of the internal topic (__consumer_offsets
 * or __transaction_state), counted over the topic's actual partitions in
 * the metadata image. The internal topic is created on first use: while it
 * does not exist the broker asks the active controller to create it with
 * the internal topic's settings (offsets_topic.h) and answers
 * COORDINATOR_NOT_AVAILABLE, which clients retry; likewise while the key's
 * partition has no live leader with an endpoint on the request's listener.
 *
 * v0-v3 ask for one key and get one answer; v4+ ask for a batch and get one
 * entry per key, in the order asked. A key type other than 0 and 1 makes
 * the whole request INVALID_REQUEST (per key from v4), as Kafka's
 * CoordinatorType.forId does. An empty key is an ordinary key (Kafka does
 * not validate it here either).
 *
 * The answer is computed under the image's read lock and the host strings
 * copied into the request's arena, so the response outlives the lock.
 */
#include <stdio.h>
#include <string.h>

#include "broker/api.h"
#include "broker/cluster.h"
#include "broker/offsets_topic.h"
#include "common/errors.h"
#include "common/logging.h"

#define KEY_GROUP 0
#define KEY_TRANSACTION 1

typedef struct {
    int16_t error;
    const char *message; /* static, NULL on success */
    int32_t node_id;
    gr_str host; /* in the request's arena */
    int32_t port;
} answer;

static const char *const NOT_AVAILABLE = "The coordinator is not available.";

static answer no_node(int16_t error, const char *message)
{
    return (answer){error, message, -1, gr_str_from(""), -1};
}

/* The coordinator of key under the image img (read-locked), asking for the
 * internal topic to be created when it is missing. */
static answer locate(gr_request *req, const gr_metadata_image *img, const char *topic_name,
                     gr_str key, bool *create)
{
    gr_broker *b = req->ctx;
    const gr_metadata_topic *t = gr_metadata_topic_by_name(img, gr_str_from(topic_name));
    if (!t) {
        *create = true;
        return no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
    }
    if (t->partition_count <= 0)
        return no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
    int32_t pid = gr_coordinator_partition(key.ptr ? key.ptr : "", key.len > 0 ? (size_t)key.len : 0,
                                           t->partition_count);
    const gr_metadata_partition *p = gr_metadata_partition_get(t, pid);
    if (!p || p->leader < 0)
        return no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
    const gr_metadata_broker *br = gr_metadata_broker_get(img, p->leader);
    if (!br || br->fenced)
        return no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
    const char *listener = b->listeners[req->listener].bind.name;
    for (int32_t i = 0; i < br->endpoint_count; i++) {
        const gr_metadata_endpoint *ep = &br->endpoints[i];
        if (!gr_str_eq(ep->name, listener))
            continue;
        char *host = gr_arena_strdup(&req->arena, ep->host.ptr ? ep->host.ptr : "",
                                     ep->host.len > 0 ? (size_t)ep->host.len : 0);
        if (!host)
            return no_node(GR_UNKNOWN_SERVER_ERROR, NULL);
        return (answer){GR_NONE, NULL, br->id, gr_str_from(host), ep->port};
    }
    /* The leader does not listen where this client came in. */
    return no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
}

/* Answers every key; ans[i] for keys[i]. */
static void locate_all(gr_request *req, int8_t key_type, const gr_str *keys, int32_t n,
                       answer *ans)
{
    gr_broker *b = req->ctx;
    if (key_type != KEY_GROUP && key_type != KEY_TRANSACTION) {
        char *msg = gr_arena_alloc(&req->arena, 64);
        if (msg)
            snprintf(msg, 64, "Unknown coordinator type received: %d", key_type);
        for (int32_t i = 0; i < n; i++)
            ans[i] = no_node(GR_INVALID_REQUEST, msg);
        return;
    }
    const char *topic = key_type == KEY_GROUP ? GR_OFFSETS_TOPIC : GR_TRANSACTION_TOPIC;
    if (!b->cluster) { /* a standalone broker coordinates nothing */
        for (int32_t i = 0; i < n; i++)
            ans[i] = no_node(GR_COORDINATOR_NOT_AVAILABLE, NOT_AVAILABLE);
        return;
    }
    bool create = false;
    const gr_metadata_image *img = gr_cluster_read_lock(b->cluster);
    for (int32_t i = 0; i < n; i++)
        ans[i] = locate(req, img, topic, keys[i], &create);
    gr_cluster_read_unlock(b->cluster);
    if (create)
        gr_cluster_create_topic(b->cluster, gr_str_from(topic));
}

int gr_handle_find_coordinator(gr_request *req, gr_writer *out)
{
    gr_find_coordinator_request body;
    int rc = gr_find_coordinator_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed FindCoordinator v%d body from %s: %s", req->api_version,
                req->peer, gr_err_str(rc));
        return GR_CLOSE;
    }
    bool batched = req->api_version >= 4;
    const gr_str *keys = batched ? body.coordinator_keys : &body.key;
    int32_t n = batched ? (body.coordinator_keys_count > 0 ? body.coordinator_keys_count : 0) : 1;
    answer *ans = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *ans);
    if (!ans)
        return GR_CLOSE;
    locate_all(req, body.key_type, keys, n, ans);

    gr_find_coordinator_response resp;
    gr_find_coordinator_response_init(&resp);
    if (!batched) {
        resp.error_code = ans[0].error;
        resp.error_message = ans[0].message ? gr_str_from(ans[0].message) : GR_STR_NULL;
        resp.node_id = ans[0].node_id;
        resp.host = ans[0].host;
        resp.port = ans[0].port;
    } else {
        resp.coordinators = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *resp.coordinators);
        if (!resp.coordinators)
            return GR_CLOSE;
        resp.coordinators_count = n;
        for (int32_t i = 0; i < n; i++) {
            gr_find_coordinator_response_coordinator *c = &resp.coordinators[i];
            gr_find_coordinator_response_coordinator_init(c);
            c->key = keys[i];
            c->node_id = ans[i].node_id;
            c->host = ans[i].host;
            c->port = ans[i].port;
            c->error_code = ans[i].error;
            c->error_message = ans[i].message ? gr_str_from(ans[i].message) : GR_STR_NULL;
        }
    }
    return gr_find_coordinator_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                      : GR_CLOSE;
}
