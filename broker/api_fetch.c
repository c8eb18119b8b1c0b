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
 * Long polls: when no partition has anything to say (no data, no error),
 * the request waits up to max_wait_ms, checking every POLL_MS whether data
 * arrived. The check is cheap (atomic high watermarks); a wake-up on append
 * (a purgatory) replaces the polling later. min_bytes is honoured as "at
 * least one byte". At shutdown waiting fetches are answered at once.
 *
 * Follower fetches (replica id >= 0) are not served differently yet: there
 * is no replication.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/api.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

#define POLL_MS 5

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* Whether an answer now would carry something: data or an error. */
static bool fetch_ready(gr_request *req, const gr_fetch_request *body)
{
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_fetch_request_fetch_topic *t = &body->topics[i];
        for (int32_t k = 0; k < t->partitions_count; k++) {
            const gr_fetch_request_fetch_partition *fp = &t->partitions[k];
            int16_t err;
            gr_partition *p = find(req, t, fp->partition, &err);
            if (!p)
                return true;
            bool ready = check_partition(p, fp) != GR_NONE ||
                         (fp->partition_max_bytes > 0 && fp->fetch_offset < atomic_load(&p->hw));
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

/* A fetch waiting for data. */
typedef struct {
    gr_request *req;
    gr_fetch_request body; /* lives in req's arena */
    struct event *timer;
    int64_t deadline;
} waiting_fetch;

static void wait_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiting_fetch *w = arg;
    gr_broker *b = w->req->ctx;
    if (gr_request_base(w->req) && mono_ms() < w->deadline && !gr_replica_stopping(b->replicas) &&
        !fetch_ready(w->req, &w->body)) {
        struct timeval tv = {0, POLL_MS * 1000};
        if (evtimer_add(w->timer, &tv) == 0)
            return;
    }
    gr_request *req = w->req;
    int rc = gr_request_base(req) ? answer_fetch(req, &w->body, &req->out) : GR_CLOSE;
    event_free(w->timer);
    free(w);
    gr_request_complete(req, rc);
    gr_replica_wait_end(b->replicas);
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
    waiting_fetch *w = calloc(1, sizeof *w);
    if (!w || !base || gr_replica_stopping(b->replicas))
        goto now;
    w->req = req;
    w->body = body;
    w->deadline = mono_ms() + body.max_wait_ms;
    w->timer = evtimer_new(base, wait_tick, w);
    struct timeval tv = {0, POLL_MS * 1000};
    if (!w->timer || evtimer_add(w->timer, &tv) != 0) {
        if (w->timer)
            event_free(w->timer);
        goto now;
    }
    gr_replica_wait_begin(b->replicas);
    return GR_PENDING;
now:
    free(w);
    return answer_fetch(req, &body, out);
}
