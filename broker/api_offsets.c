/*
 * api_offsets.c - committed offsets: OffsetCommit (v2-9; Kafka 4.0 dropped
 * v0-1), OffsetFetch (v1-9, one group per request up to v7, several from
 * v8) and OffsetDelete (v0).
 *
 * The group state machine (broker/group.h) validates and answers; the
 * shell (broker/coordinator.h) appends the commit's records to
 * __consumer_offsets before the answer leaves, and a failed append turns
 * every partition that would have succeeded into the append's error.
 */
#include "broker/api.h"
#include "broker/cluster.h"
#include "broker/coordinator.h"
#include "common/errors.h"
#include "common/logging.h"

/* Kafka answers UNKNOWN_TOPIC_OR_PARTITION for the partitions its metadata
 * does not know (of unknown topics, or past a topic's partition count);
 * only the others reach the coordinator. That also bounds the offsets a
 * group can hold to the partitions that exist. Fills *valid with the
 * request restricted to the known partitions and (*known)[i] saying which
 * they are; *unknown when some partition is not. false on allocation
 * failure. */
typedef struct {
    bool *parts;   /* per partition of the request's topic: known */
    int32_t valid; /* the topic's index in the restricted request, or -1 */
} known_topic;

static bool known_partitions(gr_request *req, const gr_offset_commit_request *body,
                             gr_offset_commit_request *valid, known_topic **known, bool *unknown)
{
    gr_broker *b = req->ctx;
    int32_t n = body->topics_count > 0 ? body->topics_count : 0;
    *valid = *body;
    *unknown = false;
    *known = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof **known);
    valid->topics = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *valid->topics);
    if (!*known || !valid->topics)
        return false;
    valid->topics_count = 0;
    bool ok = true;
    const gr_metadata_image *img = b->cluster ? gr_cluster_read_lock(b->cluster) : NULL;
    for (int32_t i = 0; i < n && ok; i++) {
        const gr_offset_commit_request_topic *t = &body->topics[i];
        int32_t np = t->partitions_count > 0 ? t->partitions_count : 0;
        const gr_metadata_topic *mt = img ? gr_metadata_topic_by_name(img, t->name) : NULL;
        bool *k = gr_arena_calloc(&req->arena, np ? (size_t)np : 1, sizeof *k);
        gr_offset_commit_request_topic *vt = &valid->topics[valid->topics_count];
        *vt = *t;
        vt->partitions = gr_arena_calloc(&req->arena, np ? (size_t)np : 1, sizeof *vt->partitions);
        if (!k || !vt->partitions) {
            ok = false;
            break;
        }
        (*known)[i] = (known_topic){k, -1};
        vt->partitions_count = 0;
        for (int32_t j = 0; j < np; j++) {
            /* Without metadata yet, nothing is refused for it. */
            k[j] = !img || (mt && gr_metadata_partition_get(mt, t->partitions[j].partition_index));
            *unknown |= !k[j];
            if (k[j])
                vt->partitions[vt->partitions_count++] = t->partitions[j];
        }
        if (vt->partitions_count > 0 || np == 0)
            (*known)[i].valid = valid->topics_count++;
    }
    if (b->cluster)
        gr_cluster_read_unlock(b->cluster);
    return ok;
}

int gr_handle_offset_commit(gr_request *req, gr_writer *out)
{
    gr_offset_commit_request body;
    int rc = gr_offset_commit_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "OffsetCommit", rc);
    bool unknown;
    known_topic *known;
    gr_offset_commit_request valid;
    if (!known_partitions(req, &body, &valid, &known, &unknown))
        return GR_CLOSE;
    gr_offset_commit_response resp;
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    gr_gc_out o;
    gr_gc_out_init(&o);
    if (s) {
        gr_gc_commit(gc, &valid, req->api_version, gr_coordinator_now_ms(), &req->arena, &resp, &o);
        err = gr_coordinator_unlock(s, &o, req);
    } else if (!gr_gc_commit_answer(&valid, &req->arena, &resp, err)) {
        return GR_CLOSE;
    }
    for (int32_t i = 0; err != GR_NONE && i < resp.topics_count; i++)
        for (int32_t k = 0; k < resp.topics[i].partitions_count; k++)
            if (resp.topics[i].partitions[k].error_code == GR_NONE)
                resp.topics[i].partitions[k].error_code = err; /* the append failed */
    if (unknown) {
        /* The answers of the known partitions, in order, among the unknown. */
        gr_offset_commit_response all;
        if (!gr_gc_commit_answer(&body, &req->arena, &all, GR_UNKNOWN_TOPIC_OR_PARTITION))
            return GR_CLOSE;
        for (int32_t i = 0; i < all.topics_count; i++) {
            int32_t v = known[i].valid;
            if (v < 0 || v >= resp.topics_count)
                continue;
            const gr_offset_commit_response_topic *rt = &resp.topics[v];
            int32_t vp = 0;
            for (int32_t k = 0; k < all.topics[i].partitions_count; k++)
                if (known[i].parts[k] && vp < rt->partitions_count)
                    all.topics[i].partitions[k] = rt->partitions[vp++];
        }
        resp = all;
    }
    return gr_offset_commit_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}

/* One group's committed offsets (the v8+ shape) into resp. */
static void fetch_group(gr_request *req, const gr_offset_fetch_request_group *g, bool all,
                        gr_offset_fetch_response_group *resp)
{
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, g->group_id, &gc, &err);
    if (!s) {
        gr_offset_fetch_response_group_init(resp);
        resp->group_id = g->group_id;
        resp->error_code = err;
        return;
    }
    gr_gc_out o;
    gr_gc_out_init(&o);
    gr_gc_fetch(gc, g, all, &req->arena, resp);
    gr_coordinator_unlock(s, &o, req);
}

int gr_handle_offset_fetch(gr_request *req, gr_writer *out)
{
    gr_offset_fetch_request body;
    int rc = gr_offset_fetch_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "OffsetFetch", rc);
    gr_offset_fetch_response resp;
    gr_offset_fetch_response_init(&resp);
    if (req->api_version >= 8) {
        int32_t n = body.groups_count > 0 ? body.groups_count : 0;
        resp.groups = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *resp.groups);
        if (!resp.groups)
            return GR_CLOSE;
        resp.groups_count = n;
        for (int32_t i = 0; i < n; i++)
            fetch_group(req, &body.groups[i], body.groups[i].topics_count < 0, &resp.groups[i]);
    } else {
        /* v1-7: one group; the same lookup, answered in the old shape. */
        gr_offset_fetch_request_group g;
        gr_offset_fetch_request_group_init(&g);
        g.group_id = body.group_id;
        g.topics_count = body.topics_count;
        if (body.topics_count > 0) {
            g.topics = gr_arena_calloc(&req->arena, (size_t)body.topics_count, sizeof *g.topics);
            if (!g.topics)
                return GR_CLOSE;
            for (int32_t i = 0; i < body.topics_count; i++) {
                g.topics[i].name = body.topics[i].name;
                g.topics[i].partition_indexes = body.topics[i].partition_indexes;
                g.topics[i].partition_indexes_count = body.topics[i].partition_indexes_count;
            }
        }
        gr_offset_fetch_response_group rg;
        fetch_group(req, &g, body.topics_count < 0, &rg);
        resp.error_code = rg.error_code;
        resp.topics = gr_arena_calloc(&req->arena, rg.topics_count > 0 ? (size_t)rg.topics_count : 1,
                                      sizeof *resp.topics);
        if (!resp.topics)
            return GR_CLOSE;
        resp.topics_count = rg.topics_count > 0 ? rg.topics_count : 0;
        for (int32_t i = 0; i < resp.topics_count; i++) {
            const gr_offset_fetch_response_topics *st = &rg.topics[i];
            gr_offset_fetch_response_topic *dt = &resp.topics[i];
            dt->name = st->name;
            dt->partitions_count = st->partitions_count;
            dt->partitions = gr_arena_calloc(&req->arena,
                                             st->partitions_count ? (size_t)st->partitions_count : 1,
                                             sizeof *dt->partitions);
            if (!dt->partitions)
                return GR_CLOSE;
            for (int32_t k = 0; k < st->partitions_count; k++) {
                const gr_offset_fetch_response_partitions *sp = &st->partitions[k];
                gr_offset_fetch_response_partition *dp = &dt->partitions[k];
                dp->partition_index = sp->partition_index;
                dp->committed_offset = sp->committed_offset;
                dp->committed_leader_epoch = sp->committed_leader_epoch;
                dp->metadata = sp->metadata;
                /* v1 has no group-level error: each partition carries it. */
                dp->error_code = req->api_version < 2 ? rg.error_code : sp->error_code;
            }
        }
    }
    return gr_offset_fetch_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                  : GR_CLOSE;
}

int gr_handle_offset_delete(gr_request *req, gr_writer *out)
{
    gr_offset_delete_request body;
    int rc = gr_offset_delete_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "OffsetDelete", rc);
    gr_offset_delete_response resp;
    gr_offset_delete_response_init(&resp);
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    if (!s) {
        resp.error_code = err;
    } else {
        gr_gc_out o;
        gr_gc_out_init(&o);
        gr_gc_offset_delete(gc, &body, gr_coordinator_now_ms(), &req->arena, &resp, &o);
        err = gr_coordinator_unlock(s, &o, req);
        for (int32_t i = 0; err != GR_NONE && i < resp.topics_count; i++)
            for (int32_t k = 0; k < resp.topics[i].partitions_count; k++)
                if (resp.topics[i].partitions[k].error_code == GR_NONE)
                    resp.topics[i].partitions[k].error_code = err;
    }
    return gr_offset_delete_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}
