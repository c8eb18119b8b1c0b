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
 * Fetch sessions (KIP-227, v7+; the cache is fetch_session.h). By session
 * id and epoch:
 *   0, -1   a sessionless full fetch: every partition answered, id 0;
 *   0, 0    a full fetch that opens a session of its partitions once
 *           answered; the answer carries the new id (0 when the cache has
 *           no room and may evict none);
 *   X, -1   closes X, then as 0, -1;   X, 0   closes X, then as 0, 0;
 *   X, N    incremental: the request's partitions are added to X or update
 *           its fetch parameters, forgotten_topics_data leave it (by name
 *           before v13, by topic id from v13), and the answer names only
 *           the partitions with records, an error, or a high watermark,
 *           last stable offset or log start offset other than last sent.
 *           An unknown X (or one of the other kind of fetcher) answers
 *           FETCH_SESSION_ID_NOT_FOUND, a wrong N
 *           INVALID_FETCH_SESSION_EPOCH, a session named the other way
 *           (ids against names) FETCH_SESSION_TOPIC_ID_ERROR: top-level
 *           errors with id 0 and no partitions. A session whose last
 *           partition is forgotten ends (answer id 0, as Kafka).
 * Session state changes only when the answer is built, exactly once per
 * request: a long poll decides readiness and its watch keys from a view of
 * what the session would be (gr_fsess_incremental without apply), and
 * applies the request when it answers.
 *
 * Long polls: when no partition has an error and the records below the
 * high watermarks come to less than min_bytes, the request waits (up to
 * max_wait_ms) in the purgatory of its connection's thread (waits.h),
 * watching the keys of its partitions. A high watermark move, a leadership
 * change or a removal of one of them (replica.h's wait hook) makes it look
 * again; it answers as soon as it has min_bytes or an error, or at its
 * deadline with what there is. Nothing runs while it waits: no polling.
 * The logs are read when it answers. At shutdown waiting fetches are
 * answered at once; a fetch whose client went away is dropped at once
 * (gr_request_on_gone), or else on its next wake-up or deadline.
 *
 * Follower fetches (replica id >= 0) are not served differently yet: there
 * is no replication. They matter to sessions only: a follower's session
 * weighs more when the cache must evict.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api.h"
#include "broker/fetch_session.h"
#include "broker/replica.h"
#include "broker/waits.h"
#include "common/errors.h"
#include "common/logging.h"

/* What a request asks for, resolved against its session. */
typedef enum {
    PLAN_SESSIONLESS, /* full; answers id 0 */
    PLAN_NEW_SESSION, /* full; opens a session when answered */
    PLAN_INCREMENTAL, /* continues session_id */
} plan_kind;

typedef struct {
    plan_kind kind;
    bool follower;
    bool by_id;                   /* v13+: topics by id */
    gr_fsess_part *req, *forget;  /* the request's partitions and forgotten ones (arena) */
    size_t nreq, nforget;
    /* The partitions to read: the request's, or the session's view. */
    const gr_fsess_part *parts;
    size_t nparts;
} fetch_plan;

static gr_partition *find(gr_request *req, const gr_fsess_part *fp, int16_t *err)
{
    gr_broker *b = req->ctx;
    if (req->api_version >= 13)
        return gr_replica_get_by_id(b->replicas, &fp->topic_id, fp->partition, err);
    return gr_replica_get(b->replicas, fp->topic, fp->partition, err);
}

/* The error for a partition a consumer may not read, or GR_NONE. */
static int16_t check_partition(gr_partition *p, const gr_fsess_part *fp)
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
static bool fetch_ready(gr_request *req, const gr_fetch_request *body, const fetch_plan *plan)
{
    int64_t bytes = 0;
    for (size_t i = 0; i < plan->nparts; i++) {
        const gr_fsess_part *fp = &plan->parts[i];
        int16_t err;
        gr_partition *p = find(req, fp, &err);
        if (!p)
            return true;
        bool ready = check_partition(p, fp) != GR_NONE;
        int64_t hw = atomic_load(&p->hw);
        if (!ready && fp->max_bytes > 0 && fp->fetch_offset < hw) {
            if (body->min_bytes <= 1) {
                ready = true;
            } else {
                gr_log_read_result r;
                if (gr_log_read(p->log, fp->fetch_offset, (size_t)fp->max_bytes, hw, &r) !=
                    GR_LOG_OK) {
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
static void fetch_partition(gr_request *req, const gr_fsess_part *fp, int64_t *budget, bool *any,
                            gr_fetch_response_partition_data *out)
{
    gr_fetch_response_partition_data_init(out);
    out->partition_index = fp->partition;
    out->high_watermark = -1;
    int16_t err;
    gr_partition *p = find(req, fp, &err);
    if (!p) {
        out->error_code = err;
        return;
    }
    err = check_partition(p, fp);
    int64_t hw = atomic_load(&p->hw);
    out->high_watermark = hw;
    out->last_stable_offset = hw;
    out->log_start_offset = gr_log_start_offset(p->log);
    if (err != GR_NONE || fp->fetch_offset >= hw || fp->max_bytes <= 0 ||
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
    size_t max = (size_t)fp->max_bytes;
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

static bool same_topic(bool by_id, const gr_fsess_part *a, const gr_fsess_part *b)
{
    if (by_id)
        return memcmp(a->topic_id.b, b->topic_id.b, sizeof a->topic_id.b) == 0;
    return a->topic.len == b->topic.len &&
           (a->topic.len <= 0 || memcmp(a->topic.ptr, b->topic.ptr, (size_t)a->topic.len) == 0);
}

/* The response's topics: the answered partitions (keep[i], or all when keep
 * is NULL) in order, a run of partitions of one topic making one topic
 * entry, as Kafka groups them. */
static int group_topics(gr_request *req, const fetch_plan *plan, const gr_fsess_part *parts,
                        const gr_fetch_response_partition_data *pd, size_t n, const bool *keep,
                        gr_fetch_response *resp)
{
    resp->responses = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *resp->responses);
    gr_fetch_response_partition_data *packed = gr_arena_calloc(&req->arena, n ? n : 1,
                                                               sizeof *packed);
    if (!resp->responses || !packed)
        return GR_CLOSE;
    const gr_fsess_part *prev = NULL;
    gr_fetch_response_fetchable_topic_response *rt = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep && !keep[i])
            continue;
        if (!prev || !same_topic(plan->by_id, prev, &parts[i])) {
            rt = &resp->responses[resp->responses_count++];
            gr_fetch_response_fetchable_topic_response_init(rt);
            rt->topic = parts[i].topic;
            rt->topic_id = parts[i].topic_id;
            rt->partitions = &packed[k];
        }
        packed[k++] = pd[i];
        rt->partitions_count++;
        prev = &parts[i];
    }
    return GR_OK;
}

static int answer_error(int16_t err, int api_version, gr_writer *out)
{
    gr_fetch_response resp;
    gr_fetch_response_init(&resp);
    resp.error_code = err;
    return gr_fetch_response_encode(&resp, api_version, out) == GR_OK ? GR_HANDLED : GR_CLOSE;
}

static int answer_fetch(gr_request *req, const gr_fetch_request *body, const fetch_plan *plan,
                        gr_writer *out)
{
    gr_broker *b = req->ctx;
    gr_fetch_sessions *cache = b->fetch_sessions;
    int64_t now = gr_waits_now_ms();
    gr_fetch_response resp;
    gr_fetch_response_init(&resp);
    resp.session_id = 0;
    const gr_fsess_part *parts = plan->req;
    size_t n = plan->nreq;
    gr_fsess_view view = {0};
    if (plan->kind == PLAN_INCREMENTAL) {
        /* The one place an incremental request changes its session. */
        int16_t err = cache ? gr_fsess_incremental(cache, body->session_id, body->session_epoch,
                                                   plan->follower, plan->by_id, plan->req,
                                                   plan->nreq, plan->forget, plan->nforget, now,
                                                   true, &req->arena, &view)
                            : GR_FETCH_SESSION_ID_NOT_FOUND;
        if (err != GR_NONE)
            return answer_error(err, req->api_version, out);
        parts = view.parts;
        n = view.count;
        if (!view.closed)
            resp.session_id = body->session_id;
    } else if (body->session_id != 0 && cache) {
        gr_fsess_remove(cache, body->session_id);
    }
    gr_fetch_response_partition_data *pd = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *pd);
    gr_fsess_answer *answers = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *answers);
    bool *keep = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *keep);
    if (!pd || !answers || !keep)
        return GR_CLOSE;
    int64_t budget = body->max_bytes > 0 ? body->max_bytes : 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        fetch_partition(req, &parts[i], &budget, &any, &pd[i]);
        answers[i] = (gr_fsess_answer){.error = pd[i].error_code,
                                       .hw = pd[i].high_watermark,
                                       .lso = pd[i].last_stable_offset,
                                       .log_start = pd[i].log_start_offset,
                                       .has_records = pd[i].records.len > 0};
    }
    if (plan->kind == PLAN_INCREMENTAL)
        gr_fsess_answered(cache, body->session_id, &view, answers, keep);
    else if (plan->kind == PLAN_NEW_SESSION && cache) {
        resp.session_id = gr_fsess_create(cache, now, plan->follower, plan->by_id, parts,
                                          answers, n);
        GR_DEBUG("fetch", "%s from %s: %s%d (%zu partitions)",
                 plan->follower ? "follower" : "consumer", req->peer,
                 resp.session_id ? "opened fetch session " : "no room for a fetch session: ",
                 resp.session_id, n);
    }
    if (group_topics(req, plan, parts, pd, n, plan->kind == PLAN_INCREMENTAL ? keep : NULL,
                     &resp) != GR_OK)
        return GR_CLOSE;
    return gr_fetch_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                            : GR_CLOSE;
}

/* A fetch waiting for data, in the purgatory of its connection's thread. */
typedef struct {
    gr_delayed_op op;
    gr_request *req;
    struct event_base *base; /* of the connection's thread, where it waits */
    gr_fetch_request body; /* lives in req's arena, like the plan's arrays */
    fetch_plan plan;
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
           fetch_ready(w->req, &w->body, &w->plan);
}

static void wait_done(gr_delayed_op *op, int64_t now_ms, gr_delayed_cause cause)
{
    (void)now_ms;
    (void)cause;
    waiting_fetch *w = waiting_of(op);
    gr_request *req = w->req;
    gr_broker *b = req->ctx;
    /* The logs are read now: what arrived up to this moment goes out. A
     * client that has gone leaves its session as it was. */
    int rc = gr_request_base(req) ? answer_fetch(req, &w->body, &w->plan, &req->out) : GR_CLOSE;
    free(w);
    gr_request_complete(req, rc); /* may start the connection's next request */
    gr_replica_wait_end(b->replicas);
}

/* The client went away: the fetch stops waiting now rather than at its
 * deadline (wait_done drops it unanswered). */
static void wait_gone(gr_request *req, void *arg)
{
    (void)req;
    waiting_fetch *w = arg;
    if (gr_waits_cancel(w->base, &w->op))
        wait_done(&w->op, gr_waits_now_ms(), GR_DELAYED_EXPIRED);
}

/* The watch keys of the plan's partitions, in req's arena; false when a
 * partition cannot be found (then there is an error to answer at once). */
static bool watch_keys(gr_request *req, const fetch_plan *plan, uint64_t **keys, size_t *nkeys)
{
    *keys = gr_arena_calloc(&req->arena, plan->nparts ? plan->nparts : 1, sizeof **keys);
    *nkeys = 0;
    if (!*keys)
        return false;
    for (size_t i = 0; i < plan->nparts; i++) {
        int16_t err;
        gr_partition *p = find(req, &plan->parts[i], &err);
        if (!p)
            return false;
        (*keys)[(*nkeys)++] = gr_purgatory_key(&p->topic_id, p->index);
        gr_partition_unref(p);
    }
    return true;
}

/* The request's partitions (and forgotten ones) as session parts, in req's
 * arena. Names and ids point into the decoded request. */
static bool flatten(gr_request *req, const gr_fetch_request *body, fetch_plan *plan)
{
    size_t n = 0, nf = 0;
    for (int32_t i = 0; i < body->topics_count; i++)
        n += (size_t)(body->topics[i].partitions_count > 0 ? body->topics[i].partitions_count : 0);
    for (int32_t i = 0; i < body->forgotten_topics_data_count; i++) {
        int32_t c = body->forgotten_topics_data[i].partitions_count;
        nf += (size_t)(c > 0 ? c : 0);
    }
    plan->req = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *plan->req);
    plan->forget = gr_arena_calloc(&req->arena, nf ? nf : 1, sizeof *plan->forget);
    if (!plan->req || !plan->forget)
        return false;
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_fetch_request_fetch_topic *t = &body->topics[i];
        for (int32_t k = 0; k < t->partitions_count; k++) {
            const gr_fetch_request_fetch_partition *fp = &t->partitions[k];
            plan->req[plan->nreq++] = (gr_fsess_part){
                .topic = t->topic,
                .topic_id = t->topic_id,
                .partition = fp->partition,
                .fetch_offset = fp->fetch_offset,
                .max_bytes = fp->partition_max_bytes,
                .current_leader_epoch = fp->current_leader_epoch,
                .last_fetched_epoch = fp->last_fetched_epoch,
                .log_start_offset = fp->log_start_offset,
                .prev_hw = -1,
                .prev_lso = -1,
                .prev_log_start = -1,
            };
        }
    }
    for (int32_t i = 0; i < body->forgotten_topics_data_count; i++) {
        const gr_fetch_request_forgotten_topic *t = &body->forgotten_topics_data[i];
        for (int32_t k = 0; k < t->partitions_count; k++)
            plan->forget[plan->nforget++] = (gr_fsess_part){
                .topic = t->topic, .topic_id = t->topic_id, .partition = t->partitions[k]};
    }
    plan->parts = plan->req;
    plan->nparts = plan->nreq;
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
    gr_broker *b = req->ctx;
    fetch_plan plan = {0};
    if (!flatten(req, &body, &plan))
        return GR_CLOSE;
    plan.follower = (req->api_version >= 15 ? body.replica_state.replica_id : body.replica_id) >= 0;
    plan.by_id = req->api_version >= 13;
    if (body.session_epoch == -1)
        plan.kind = PLAN_SESSIONLESS;
    else if (body.session_epoch == 0)
        plan.kind = PLAN_NEW_SESSION;
    else
        plan.kind = PLAN_INCREMENTAL;
    if (plan.kind == PLAN_INCREMENTAL) {
        /* What the session would be: its partitions decide readiness and
         * what to watch. Errors (and a session about to end) answer now. */
        gr_fsess_view view;
        int16_t err = b->fetch_sessions
                          ? gr_fsess_incremental(b->fetch_sessions, body.session_id,
                                                 body.session_epoch, plan.follower, plan.by_id,
                                                 plan.req, plan.nreq, plan.forget, plan.nforget,
                                                 gr_waits_now_ms(), false, &req->arena, &view)
                          : GR_FETCH_SESSION_ID_NOT_FOUND;
        if (err != GR_NONE)
            return answer_error(err, req->api_version, out);
        if (view.count == 0)
            return answer_fetch(req, &body, &plan, out);
        plan.parts = view.parts;
        plan.nparts = view.count;
    }
    if (body.max_wait_ms <= 0 || body.min_bytes <= 0 || fetch_ready(req, &body, &plan))
        return answer_fetch(req, &body, &plan, out);
    struct event_base *base = gr_request_base(req);
    uint64_t *keys;
    size_t nkeys;
    if (!base || !b->replicas || gr_replica_stopping(b->replicas) ||
        !watch_keys(req, &plan, &keys, &nkeys))
        return answer_fetch(req, &body, &plan, out);
    waiting_fetch *w = calloc(1, sizeof *w);
    if (!w)
        return answer_fetch(req, &body, &plan, out);
    w->req = req;
    w->base = base;
    w->body = body;
    w->plan = plan;
    gr_delayed_op_init(&w->op, wait_try, wait_done);
    gr_request_on_gone(req, wait_gone, w);
    if (gr_waits_park(base, b->replicas, &w->op, keys, nkeys,
                      gr_waits_now_ms() + body.max_wait_ms) == GR_PURGATORY_ENOMEM) {
        gr_request_on_gone(req, NULL, NULL);
        free(w);
        return answer_fetch(req, &body, &plan, out);
    }
    return GR_PENDING; /* answered by wait_done, perhaps already */
}
