/*
 * api_fetch.c - Fetch (consumers).
 *
 * Per partition: found by name (v4-v12) or topic id (v13+: UNKNOWN_TOPIC_ID),
 * led here (NOT_LEADER_OR_FOLLOWER), the client's current leader epoch
 * checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), the fetch offset
 * within [log start, log end] (OFFSET_OUT_OF_RANGE). Records are whole
 * batches below the high watermark, up to the partition's max bytes and
 * what remains of the request's max bytes; the first partition that has
 * data returns at least one batch even when it is larger (so a consumer
 * never gets stuck behind a big batch). read_committed reads to the same
 * bound: without transactions the last stable offset is the high
 * watermark. The records go out with sendfile(2) straight from the
 * segment file (gr_request_file_records).
 *
 * Fetch sessions (KIP-227) are not kept yet: every fetch is answered as a
 * full one with session id 0, which tells clients no session was made; a
 * request naming a session (session id != 0, epoch != -1) gets
 * FETCH_SESSION_ID_NOT_FOUND, after which clients fall back to full
 * fetches.
 *
 * Long polls: when no partition has an error and the records below the
 * high watermarks come to less than min_bytes, the request waits (up to
 * max_wait_ms) in the purgatory of its connection's thread (waits.h),
 * watching the keys of its partitions. A high watermark move, a leadership
 * change or a removal of one of them (replica.h's wait hook) makes it look
 * again; it answers as soon as it has min_bytes or an error, or at its
 * deadline with what there is. Nothing runs while it waits: no polling.
 * The logs are read when it answers. At shutdown waiting fetches are
 * answered at once; a fetch whose client went away is dropped on its next
 * wake-up or deadline.
 *
 * Follower fetches (replica id >= 0) are not served differently yet: there
 * is no replication.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api.h"
#include "broker/replica.h"
#include "broker/waits.h"
#include "common/errors.h"
#include "common/logging.h"

static gr_partition *find(gr_request *req, const gr_fetch_request_fetch_topic *t, int32_t index,
                          int16_t *err)
{
    gr_broker *b = req->ctx;
    if (req->api_version >= 13)
        return gr_replica_get_by_id(b->replicas, &t->topic_id, index, err);
    return gr_replica_get(b->replicas, t->topic, index, err);
}

/* The error for a partition a consumer may not read, or GR_NONE. */
static int16_t check_partition(gr_partition *p, const gr_fetch_request_fetch_partition *fp)
{
    if (!atomic_load(&p->leader))
        return GR_NOT_LEADER_OR_FOLLOWER;
    int32_t epoch = atomic_load(&p->leader_epoch);
    if (fp->current_leader_epoch >= 0 && fp->current_leader_epoch < epoch)
        return GR_FENCED_LEADER_EPOCH;
    if (fp->current_leader_epoch > epoch)
        return GR_UNKNOWN_LEADER_EPOCH;
    if (fp->fetch_offset < gr_log_start_offset(p->log) ||
        fp->fetch_offset > gr_log_end_offset(p->log))
        return GR_OFFSET_OUT_OF_RANGE;
    return GR_NONE;
}

/* Whether an answer now would be worth sending: some partition has an
 * error to report, or the partitions together have min_bytes of records
 * below their high watermarks (each counted up to its partition max bytes).
 * Cheap when nothing arrived: the high watermarks say so; the byte count
 * (an index lookup per partition, no data read) is only taken when records
 * are there and more than a byte is asked for. */
static bool fetch_ready(gr_request *req, const gr_fetch_request *body)
{
    int64_t bytes = 0;
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_fetch_request_fetch_topic *t = &body->topics[i];
        for (int32_t k = 0; k < t->partitions_count; k++) {
            const gr_fetch_request_fetch_partition *fp = &t->partitions[k];
            int16_t err;
            gr_partition *p = find(req, t, fp->partition, &err);
            if (!p)
                return true;
            bool ready = check_partition(p, fp) != GR_NONE;
            int64_t hw = atomic_load(&p->hw);
            if (!ready && fp->partition_max_bytes > 0 && fp->fetch_offset < hw) {
                if (body->min_bytes <= 1) {
                    ready = true;
                } else {
                    gr_log_read_result r;
                    if (gr_log_read(p->log, fp->fetch_offset, (size_t)fp->partition_max_bytes,
                                    hw, &r) != GR_LOG_OK) {
                        ready = true; /* the answer will carry the error */
                    } else {
                        bytes += (int64_t)r.length;
                        gr_log_read_release(&r);
                        ready = bytes >= body->min_bytes;
                    }
                }
            }
            gr_partition_unref(p);
            if (ready)
                return true;
        }
    }
    return false;
}

typedef struct {
    gr_log_read_result r;
    gr_partition *p;
} held_range;

static void release_range(void *arg)
{
    held_range *h = arg;
    gr_log_read_release(&h->r);
    gr_partition_unref(h->p);
    free(h);
}

/* Fills one partition's answer; *budget is what remains of max_bytes and
 * *any tells whether some partition already returned data. */
static void fetch_partition(gr_request *req, const gr_fetch_request_fetch_topic *t,
                            const gr_fetch_request_fetch_partition *fp, int64_t *budget, bool *any,
                            gr_fetch_response_partition_data *out)
{
    gr_fetch_response_partition_data_init(out);
    out->partition_index = fp->partition;
    out->high_watermark = -1;
    int16_t err;
    gr_partition *p = find(req, t, fp->partition, &err);
    if (!p) {
        out->error_code = err;
        return;
    }
    err = check_partition(p, fp);
    int64_t hw = atomic_load(&p->hw);
    out->high_watermark = hw;
    out->last_stable_offset = hw;
    out->log_start_offset = gr_log_start_offset(p->log);
    if (err != GR_NONE || fp->fetch_offset >= hw || fp->partition_max_bytes <= 0 ||
        (*any && *budget <= 0)) {
        out->error_code = err;
        if (err == GR_FENCED_LEADER_EPOCH || err == GR_UNKNOWN_LEADER_EPOCH ||
            err == GR_NOT_LEADER_OR_FOLLOWER) {
            out->high_watermark = -1;
            out->last_stable_offset = -1;
            out->log_start_offset = -1;
        }
        gr_partition_unref(p);
        return;
    }
    held_range *h = malloc(sizeof *h);
    if (!h) {
        out->error_code = GR_UNKNOWN_SERVER_ERROR;
        gr_partition_unref(p);
        return;
    }
    h->p = p; /* the reference now belongs to the range */
    size_t max = (size_t)fp->partition_max_bytes;
    if (*budget >= 0 && (size_t)*budget < max)
        max = (size_t)*budget;
    int rc = gr_log_read(p->log, fp->fetch_offset, max, hw, &h->r);
    if (rc != GR_LOG_OK) {
        out->error_code = rc == GR_LOG_ERR_OUT_OF_RANGE ? GR_OFFSET_OUT_OF_RANGE
                                                        : GR_KAFKA_STORAGE_ERROR;
        gr_partition_unref(p);
        free(h);
        return;
    }
    if (h->r.length == 0 || (*any && (int64_t)h->r.length > *budget)) {
        release_range(h); /* nothing, or over budget for a partition after the first */
        return;
    }
    size_t n = h->r.length;
    if (gr_request_file_records(req, h->r.fd, h->r.position, n, release_range, h,
                                &out->records) != GR_OK) {
        out->error_code = GR_UNKNOWN_SERVER_ERROR; /* released already */
        return;
    }
    *budget -= (int64_t)n;
    *any = true;
}

static int answer_fetch(gr_request *req, const gr_fetch_request *body, gr_writer *out)
{
    gr_fetch_response resp;
    gr_fetch_response_init(&resp);
    resp.session_id = 0;
    int64_t budget = body->max_bytes > 0 ? body->max_bytes : 0;
    bool any = false;
    resp.responses = gr_arena_calloc(&req->arena, body->topics_count ? (size_t)body->topics_count : 1,
                                     sizeof *resp.responses);
    if (!resp.responses)
        return GR_CLOSE;
    resp.responses_count = body->topics_count;
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_fetch_request_fetch_topic *t = &body->topics[i];
        gr_fetch_response_fetchable_topic_response *rt = &resp.responses[i];
        gr_fetch_response_fetchable_topic_response_init(rt);
        rt->topic = t->topic;
        rt->topic_id = t->topic_id;
        rt->partitions = gr_arena_calloc(&req->arena,
                                         t->partitions_count ? (size_t)t->partitions_count : 1,
                                         sizeof *rt->partitions);
        if (!rt->partitions)
            return GR_CLOSE;
        rt->partitions_count = t->partitions_count;
        for (int32_t k = 0; k < t->partitions_count; k++)
            fetch_partition(req, t, &t->partitions[k], &budget, &any, &rt->partitions[k]);
    }
    return gr_fetch_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                            : GR_CLOSE;
}

/* A fetch waiting for data, in the purgatory of its connection's thread. */
typedef struct {
    gr_delayed_op op;
    gr_request *req;
    gr_fetch_request body; /* lives in req's arena */
} waiting_fetch;

static waiting_fetch *waiting_of(gr_delayed_op *op)
{
    return (waiting_fetch *)((char *)op - offsetof(waiting_fetch, op));
}

static bool wait_try(gr_delayed_op *op, int64_t now_ms)
{
    (void)now_ms;
    waiting_fetch *w = waiting_of(op);
    gr_broker *b = w->req->ctx;
    /* A client that has gone needs no answer: let it go at once. */
    return !gr_request_base(w->req) || gr_replica_stopping(b->replicas) ||
           fetch_ready(w->req, &w->body);
}

static void wait_done(gr_delayed_op *op, int64_t now_ms, gr_delayed_cause cause)
{
    (void)now_ms;
    (void)cause;
    waiting_fetch *w = waiting_of(op);
    gr_request *req = w->req;
    gr_broker *b = req->ctx;
    /* The logs are read now: what arrived up to this moment goes out. */
    int rc = gr_request_base(req) ? answer_fetch(req, &w->body, &req->out) : GR_CLOSE;
    free(w);
    gr_request_complete(req, rc); /* may start the connection's next request */
    gr_replica_wait_end(b->replicas);
}

static void wait_hook(const gr_partition *p)
{
    if (p)
        gr_waits_notify(gr_purgatory_key(&p->topic_id, p->index));
    else
        gr_waits_wake_all();
}

/* The watch keys of the request's partitions, in req's arena; false when a
 * partition cannot be found (then there is an error to answer at once). */
static bool watch_keys(gr_request *req, const gr_fetch_request *body, uint64_t **keys,
                       size_t *nkeys)
{
    size_t n = 0;
    for (int32_t i = 0; i < body->topics_count; i++)
        if (body->topics[i].partitions_count > 0)
            n += (size_t)body->topics[i].partitions_count;
    *keys = gr_arena_calloc(&req->arena, n ? n : 1, sizeof **keys);
    *nkeys = 0;
    if (!*keys)
        return false;
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_fetch_request_fetch_topic *t = &body->topics[i];
        for (int32_t k = 0; k < t->partitions_count; k++) {
            int16_t err;
            gr_partition *p = find(req, t, t->partitions[k].partition, &err);
            if (!p)
                return false;
            (*keys)[(*nkeys)++] = gr_purgatory_key(&p->topic_id, p->index);
            gr_partition_unref(p);
        }
    }
    return true;
}

int gr_handle_fetch(gr_request *req, gr_writer *out)
{
    gr_fetch_request body;
    int rc = gr_fetch_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed Fetch v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }
    if (body.session_id != 0 && body.session_epoch != -1) {
        gr_fetch_response resp;
        gr_fetch_response_init(&resp);
        resp.error_code = GR_FETCH_SESSION_ID_NOT_FOUND;
        return gr_fetch_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                : GR_CLOSE;
    }
    if (body.max_wait_ms <= 0 || body.min_bytes <= 0 || fetch_ready(req, &body))
        return answer_fetch(req, &body, out);
    gr_broker *b = req->ctx;
    struct event_base *base = gr_request_base(req);
    uint64_t *keys;
    size_t nkeys;
    if (!base || !b->replicas || gr_replica_stopping(b->replicas) ||
        !watch_keys(req, &body, &keys, &nkeys))
        return answer_fetch(req, &body, out);
    waiting_fetch *w = calloc(1, sizeof *w);
    if (!w)
        return answer_fetch(req, &body, out);
    w->req = req;
    w->body = body;
    gr_delayed_op_init(&w->op, wait_try, wait_done);
    gr_replica_set_wait_hook(b->replicas, wait_hook);
    gr_replica_wait_begin(b->replicas);
    rc = gr_waits_watch(base, &w->op, keys, nkeys, gr_waits_now_ms() + body.max_wait_ms);
    if (rc == GR_PURGATORY_ENOMEM) {
        gr_replica_wait_end(b->replicas);
        free(w);
        return answer_fetch(req, &body, out);
    }
    /* A stop that began before the watch was seen may have missed it. */
    if (rc == GR_PURGATORY_WATCHING && gr_replica_stopping(b->replicas))
        gr_waits_wake_all();
    return GR_PENDING; /* answered by wait_done, perhaps already */
}
