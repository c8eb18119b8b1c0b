/*
 * api_metadata.c - Metadata and DescribeCluster.
 *
 * In a cluster both are answered from the metadata image this broker
 * follows: every unfenced broker at its endpoint for the listener the
 * request arrived on (as Kafka does, so that clients stay on the network
 * they came in on), the cluster id, a controller id, and the topics with
 * each partition's leader, leader epoch, replicas, ISR and offline replicas
 * (replicas on brokers that are fenced or gone). As in KRaft, the
 * "controller" clients are told about is a live broker, which forwards
 * admin requests to the active controller.
 *
 * A standalone broker (no controller.quorum.voters) is a cluster of one
 * with no topics.
 *
 * Responses are encoded while the image's read lock is held: they point
 * into it.
 */
#include "broker/api.h"
#include "broker/cluster.h"
#include "broker/offsets_topic.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/names.h"

/* An endpoint of broker `br` for listener `name`, or NULL. */
static const gr_metadata_endpoint *endpoint_for(const gr_metadata_broker *br, const char *name)
{
    for (int32_t i = 0; i < br->endpoint_count; i++)
        if (gr_str_eq(br->endpoints[i].name, name))
            return &br->endpoints[i];
    return NULL;
}

static bool broker_live(const gr_metadata_image *img, int32_t id)
{
    const gr_metadata_broker *br = gr_metadata_broker_get(img, id);
    return br && !br->fenced;
}

/* The brokers a client is told about: live ones with this listener. */
static int list_brokers(gr_request *req, const gr_metadata_image *img,
                        gr_metadata_response_broker **out, int32_t *count, int32_t *first_id)
{
    gr_broker *b = req->ctx;
    const char *listener = b->listeners[req->listener].bind.name;
    size_t n = gr_metadata_broker_count(img);
    gr_metadata_response_broker *v = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *v);
    if (!v)
        return -1;
    int32_t k = 0;
    *first_id = -1;
    for (size_t i = 0; i < n; i++) {
        const gr_metadata_broker *br = gr_metadata_broker_at(img, i);
        const gr_metadata_endpoint *ep = endpoint_for(br, listener);
        if (br->fenced || !ep)
            continue;
        gr_metadata_response_broker_init(&v[k]);
        v[k].node_id = br->id;
        v[k].host = ep->host;
        v[k].port = ep->port;
        v[k].rack = br->rack;
        if (*first_id < 0)
            *first_id = br->id;
        k++;
    }
    *out = v;
    *count = k;
    return 0;
}

static int copy_ids(gr_arena *a, const gr_metadata_ids *ids, int32_t **out, int32_t *count)
{
    *out = gr_arena_calloc(a, ids->count ? (size_t)ids->count : 1, sizeof **out);
    if (!*out)
        return -1;
    for (int32_t i = 0; i < ids->count; i++)
        (*out)[i] = ids->ids[i];
    *count = ids->count;
    return 0;
}

static int describe_topic(gr_request *req, const gr_metadata_image *img, const gr_metadata_topic *t,
                          gr_metadata_response_topic *rt)
{
    gr_arena *a = &req->arena;
    rt->name = t->name;
    rt->topic_id = t->id;
    rt->is_internal = gr_internal_topic(t->name);
    rt->partitions = gr_arena_calloc(a, t->partition_count ? (size_t)t->partition_count : 1,
                                     sizeof *rt->partitions);
    if (!rt->partitions)
        return -1;
    rt->partitions_count = t->partition_count;
    for (int32_t i = 0; i < t->partition_count; i++) {
        const gr_metadata_partition *p = &t->partitions[i];
        gr_metadata_response_partition *rp = &rt->partitions[i];
        gr_metadata_response_partition_init(rp);
        rp->partition_index = p->id;
        rp->leader_id = p->leader;
        rp->leader_epoch = p->leader_epoch;
        rp->error_code = p->leader < 0 ? GR_LEADER_NOT_AVAILABLE : GR_NONE;
        if (copy_ids(a, &p->replicas, &rp->replica_nodes, &rp->replica_nodes_count) ||
            copy_ids(a, &p->isr, &rp->isr_nodes, &rp->isr_nodes_count))
            return -1;
        rp->offline_replicas = gr_arena_calloc(a, p->replicas.count ? (size_t)p->replicas.count : 1,
                                               sizeof(int32_t));
        if (!rp->offline_replicas)
            return -1;
        for (int32_t r = 0; r < p->replicas.count; r++)
            if (!broker_live(img, p->replicas.ids[r]))
                rp->offline_replicas[rp->offline_replicas_count++] = p->replicas.ids[r];
    }
    return 0;
}

/* A requested topic that is not in the image. */
static void unknown_topic(gr_request *req, const gr_metadata_request *body,
                          const gr_metadata_request_topic *t, gr_metadata_response_topic *rt)
{
    gr_broker *b = req->ctx;
    rt->name = t->name;
    if (t->name.len < 0) {
        rt->error_code = GR_UNKNOWN_TOPIC_ID;
        rt->topic_id = t->topic_id;
        return;
    }
    if (!gr_topic_name_valid(t->name)) {
        rt->error_code = GR_INVALID_TOPIC_EXCEPTION;
        return;
    }
    rt->error_code = GR_UNKNOWN_TOPIC_OR_PARTITION;
    if (b->cluster && body->allow_auto_topic_creation &&
        gr_config_bool(b->config, "auto.create.topics.enable")) {
        /* As Kafka: the topic is being created; the client retries. */
        gr_cluster_create_topic(b->cluster, t->name);
        rt->error_code = GR_LEADER_NOT_AVAILABLE;
    }
}

static int answer_metadata(gr_request *req, const gr_metadata_request *body,
                           const gr_metadata_image *img, gr_writer *out)
{
    gr_broker *b = req->ctx;
    gr_arena *a = &req->arena;
    gr_metadata_response resp;
    gr_metadata_response_init(&resp);
    resp.cluster_id = gr_str_from(b->cluster_id);
    int32_t first_live = -1;
    if (img) {
        if (list_brokers(req, img, &resp.brokers, &resp.brokers_count, &first_live) != 0)
            return GR_CLOSE;
    } else {
        const gr_listener *ep = &b->listeners[req->listener].advertise;
        resp.brokers = gr_arena_calloc(a, 1, sizeof *resp.brokers);
        if (!resp.brokers)
            return GR_CLOSE;
        gr_metadata_response_broker_init(resp.brokers);
        resp.brokers_count = 1;
        resp.brokers[0].node_id = b->node_id;
        resp.brokers[0].host = gr_str_from(ep->host);
        resp.brokers[0].port = ep->port;
        resp.brokers[0].rack = b->rack[0] ? gr_str_from(b->rack) : GR_STR_NULL;
        first_live = b->node_id;
    }
    /* Clients send admin requests to the "controller": a live broker, which
     * forwards them (KRaft's answer). Ourselves when we are live. */
    resp.controller_id = img && broker_live(img, b->node_id) ? b->node_id : first_live;

    /* A null list (v1+, or an empty one in v0) asks for every topic. */
    bool all = body->topics_count < 0 || (req->api_version == 0 && body->topics_count == 0);
    size_t n = all ? (img ? gr_metadata_topic_count(img) : 0) : (size_t)body->topics_count;
    resp.topics = gr_arena_calloc(a, n ? n : 1, sizeof *resp.topics);
    if (!resp.topics)
        return GR_CLOSE;
    resp.topics_count = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        gr_metadata_response_topic *rt = &resp.topics[i];
        gr_metadata_response_topic_init(rt);
        const gr_metadata_topic *t = NULL;
        if (all) {
            t = gr_metadata_topic_at(img, i);
        } else if (img) {
            const gr_metadata_request_topic *q = &body->topics[i];
            t = q->name.len >= 0 ? gr_metadata_topic_by_name(img, q->name)
                                 : gr_metadata_topic_by_id(img, &q->topic_id);
        }
        if (t) {
            if (describe_topic(req, img, t, rt) != 0)
                return GR_CLOSE;
        } else {
            unknown_topic(req, body, &body->topics[i], rt);
        }
    }
    return gr_metadata_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                               : GR_CLOSE;
}

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
    if (!b->cluster)
        return answer_metadata(req, &body, NULL, out);
    const gr_metadata_image *img = gr_cluster_read_lock(b->cluster);
    rc = answer_metadata(req, &body, img, out);
    gr_cluster_read_unlock(b->cluster);
    return rc;
}

int gr_handle_describe_cluster(gr_request *req, gr_writer *out)
{
    gr_broker *b = req->ctx;
    gr_describe_cluster_request body;
    if (gr_describe_cluster_request_decode(&body, &req->body, req->api_version, &req->arena) !=
        GR_OK)
        return GR_CLOSE;
    gr_describe_cluster_response resp;
    gr_describe_cluster_response_init(&resp);
    resp.cluster_id = gr_str_from(b->cluster_id);
    if (!b->cluster) {
        const gr_listener *ep = &b->listeners[req->listener].advertise;
        gr_describe_cluster_response_describe_cluster_broker self = {
            .broker_id = b->node_id, .host = gr_str_from(ep->host), .port = ep->port,
            .rack = b->rack[0] ? gr_str_from(b->rack) : GR_STR_NULL};
        resp.brokers = &self;
        resp.brokers_count = 1;
        resp.controller_id = b->node_id;
        return gr_describe_cluster_response_encode(&resp, req->api_version, out) == GR_OK
                   ? GR_HANDLED
                   : GR_CLOSE;
    }
    const gr_metadata_image *img = gr_cluster_read_lock(b->cluster);
    gr_metadata_response_broker *brokers;
    int32_t n, first_live;
    int rc = GR_CLOSE;
    if (list_brokers(req, img, &brokers, &n, &first_live) == 0) {
        resp.brokers = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *resp.brokers);
        if (resp.brokers) {
            for (int32_t i = 0; i < n; i++)
                resp.brokers[i] = (gr_describe_cluster_response_describe_cluster_broker){
                    brokers[i].node_id, brokers[i].host, brokers[i].port, brokers[i].rack};
            resp.brokers_count = n;
            resp.controller_id = broker_live(img, b->node_id) ? b->node_id : first_live;
            rc = gr_describe_cluster_response_encode(&resp, req->api_version, out) == GR_OK
                     ? GR_HANDLED
                     : GR_CLOSE;
        }
    }
    gr_cluster_read_unlock(b->cluster);
    return rc;
}
