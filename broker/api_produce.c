/*
 * api_produce.c - Produce.
 *
 * Versions. Kafka 4.0 serves Produce v3 and up. Gregor advertises v0-v2 as
 * well, because librdkafka decides from the advertised Produce range
 * whether the broker understands compressed message sets, and answers
 * those versions with UNSUPPORTED_VERSION for every partition.
 *
 * Per partition, in Kafka's order: the partition must be led here
 * (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER); the records must be
 * exactly one record batch of magic 2 (check_envelope says how Kafka
 * answers each way of failing that); the batch may not exceed the topic's
 * max.message.bytes (MESSAGE_TOO_LARGE); idempotent and transactional
 * batches (producer id >= 0) are refused with UNSUPPORTED_FOR_MESSAGE_FORMAT
 * until producer ids exist; then the topic's per-record rules: a key on
 * every record of a compacted topic (INVALID_RECORD), CreateTime timestamps
 * within message.timestamp.before.max.ms / after.max.ms of the broker's
 * clock, and no LogAppendTime set by the producer (INVALID_TIMESTAMP), each
 * refused record listed in record_errors (v8+) with Kafka's message; then a
 * topic whose compression.type names another codec than the batch's gets
 * the batch re-encoded with its codec (and MESSAGE_TOO_LARGE if that grew
 * it past max.message.bytes); then the log validates every record
 * (CORRUPT_MESSAGE, INVALID_RECORD), assigns offsets, stamps LogAppendTime
 * when the topic says so (log_append_time_ms answers it) and writes the
 * batch, or answers RECORD_LIST_TOO_LARGE when it exceeds segment.bytes.
 * Every setting is the topic's live one (replica.h, topic_settings.h).
 *
 * acks: 0 sends no response (and closes the connection when a partition
 * failed, as Kafka does); 1 answers after the local append; -1 (all)
 * first refuses a partition whose ISR is smaller than its
 * min.insync.replicas with NOT_ENOUGH_REPLICAS (nothing appended), then
 * appends and waits for the high watermark to cover the appended records,
 * as Kafka's delayed produce does. A partition whose high watermark moved
 * past them with the append (an ISR of this broker alone) is done at once;
 * when every partition is done the answer goes out without waiting. Else
 * the request waits (GR_PENDING) in the purgatory of its connection's
 * thread (waits.h), watching the keys of its waiting partitions, and the
 * replica manager's wait hook makes it look again whenever one of them
 * changes. A waiting partition ends with:
 *   - GR_NONE when its high watermark reaches its last offset + 1 with at
 *     least min.insync.replicas in the ISR;
 *   - NOT_LEADER_OR_FOLLOWER when it is no longer led here, or led at
 *     another leader epoch than the one its records were appended at (they
 *     may be truncated away by the new leader); UNKNOWN_TOPIC_OR_PARTITION
 *     when its topic was deleted;
 *   - NOT_ENOUGH_REPLICAS_AFTER_APPEND when its ISR is smaller than
 *     min.insync.replicas. Kafka answers this once the high watermark
 *     covers the records; it is answered as soon as the ISR is too small,
 *     because the only answer that can follow is the same one unless the
 *     ISR grows back, and the producer should learn of it early;
 *   - REQUEST_TIMED_OUT when timeout_ms passes first, or the broker shuts
 *     down (waiting produces are answered at once then, as fetches are).
 * min.insync.replicas is capped by the replication factor throughout, as
 * Kafka's effective min ISR is: an RF=1 topic with min.insync.replicas=2
 * takes acks=all writes. The records stay appended in every case.
 * Partitions that failed before the wait keep their error, and every
 * appended partition reports its base_offset, log_append_time_ms and
 * log_start_offset. Other acks values: INVALID_REQUIRED_ACKS. A produce
 * whose client went away while it waited is dropped at once
 * (gr_request_on_gone), or else on its next wake-up or deadline.
 *
 * Without follower replication (there is none yet) the high watermark of a
 * partition whose ISR has other brokers never moves, so such a produce
 * times out, unless the controller shrinks the ISR to this broker (it
 * fences the others), which moves the high watermark and completes it.
 *
 * The records are validated and rewritten (offsets, leader epoch) in the
 * request's own buffer, which the request owns until it completes; a
 * re-encoded batch lives in a buffer of its own until the append returns.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/api.h"
#include "broker/offsets_topic.h"
#include "broker/replica.h"
#include "broker/waits.h"
#include "common/compress.h"
#include "common/errors.h"
#include "common/logging.h"

/* The bound on a batch's decompressed records during validation. */
#define MAX_UNCOMPRESSED (64u << 20)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int16_t batch_error(gr_batch_result r)
{
    switch (r) {
    case GR_BATCH_BAD_COUNT:
    case GR_BATCH_BAD_RECORD:
        return GR_INVALID_RECORD;
    case GR_BATCH_BAD_TIMESTAMP:
        return GR_INVALID_TIMESTAMP;
    default:
        return GR_CORRUPT_MESSAGE;
    }
}

/*
 * The records field as Kafka's ProduceRequest.validateRecords reads it (its
 * batch iterator first): fewer bytes than a whole first batch is no batch at
 * all (INVALID_RECORD); a size field below 14 or a magic outside 0-2 is
 * CORRUPT_MESSAGE; a first batch of magic 0 or 1 is INVALID_RECORD, and so
 * is a second whole batch; trailing bytes that make no whole batch are
 * dropped, as Kafka's log trims them. A whole magic 2 batch shorter than
 * its header is CORRUPT_MESSAGE (Kafka's ensureValid). On success *blen is
 * the first batch's size; on failure *why says why (for INVALID_RECORD,
 * the end of Kafka's sentence "Produce requests with version N ...").
 */
static int16_t check_envelope(const uint8_t *p, size_t len, size_t *blen, const char **why)
{
    for (int i = 0; i < 2; i++) {
        size_t rest = len - (i ? *blen : 0);
        const uint8_t *q = p + (i ? *blen : 0);
        if (rest < GR_BATCH_LOG_OVERHEAD)
            break;
        int32_t size = (int32_t)((uint32_t)q[8] << 24 | (uint32_t)q[9] << 16 |
                                 (uint32_t)q[10] << 8 | q[11]);
        if (size < 14) {
            *why = "Record size is less than the minimum record overhead (14)";
            return GR_CORRUPT_MESSAGE;
        }
        if (rest <= GR_BATCH_OFF_MAGIC)
            break;
        int8_t magic = (int8_t)q[GR_BATCH_OFF_MAGIC];
        if (magic < 0 || magic > GR_BATCH_MAGIC) {
            *why = "Invalid magic found in record";
            return GR_CORRUPT_MESSAGE;
        }
        if (rest - GR_BATCH_LOG_OVERHEAD < (size_t)size)
            break; /* not a whole batch: not one at all */
        if (i == 1) {
            *why = "are only allowed to contain exactly one record batch per partition";
            return GR_INVALID_RECORD;
        }
        if (magic != GR_BATCH_MAGIC) {
            *why = "are only allowed to contain record batches with magic version 2";
            return GR_INVALID_RECORD;
        }
        *blen = GR_BATCH_LOG_OVERHEAD + (size_t)size;
        if (*blen < GR_BATCH_HEADER_SIZE) {
            *why = "Record batch is corrupt (its size is smaller than the minimum allowed "
                   "overhead 61)";
            return GR_CORRUPT_MESSAGE;
        }
    }
    if (*blen == 0) {
        *why = "must have at least one record batch per partition";
        return GR_INVALID_RECORD;
    }
    return GR_NONE;
}

/* ---- per-record errors (Produce v8+ record_errors) ---- */

typedef struct {
    gr_request *req;
    const gr_partition *p;
    const gr_batch_record_policy *pol;
    gr_produce_response_batch_index_and_error_message *out;
    int32_t n, cap;
    bool timestamps; /* some record has a timestamp problem */
} record_errors;

static void add_record_error(void *ctx, int32_t index, gr_batch_record_problem problem, int64_t ts,
                             int64_t offset, const gr_record *rec)
{
    record_errors *e = ctx;
    if (e->n >= e->cap)
        return;
    char msg[512];
    const gr_batch_record_policy *pol = e->pol;
    switch (problem) {
    case GR_BATCH_REC_NO_KEY:
        snprintf(msg, sizeof msg,
                 "Compacted topic cannot accept message without key in topic partition %s-%d.",
                 e->p->topic, e->p->index);
        break;
    case GR_BATCH_REC_TS_OUT_OF_RANGE:
        e->timestamps = true;
        /* Kafka prints the bounds in wrapping long arithmetic. */
        snprintf(msg, sizeof msg,
                 "Timestamp %lld of message with offset %lld is out of range. The timestamp "
                 "should be within [%lld, %lld]",
                 (long long)ts, (long long)offset,
                 (long long)(int64_t)((uint64_t)pol->now_ms - (uint64_t)pol->before_max_ms),
                 (long long)(int64_t)((uint64_t)pol->now_ms + (uint64_t)pol->after_max_ms));
        break;
    default:
        e->timestamps = true;
        snprintf(msg, sizeof msg,
                 "Invalid timestamp type in message DefaultRecord(offset=%lld, timestamp=%lld, "
                 "key=%d bytes, value=%d bytes). Producer should not set timestamp type to "
                 "LogAppendTime.",
                 (long long)offset, (long long)ts, rec->key.len < 0 ? 0 : (int)rec->key.len,
                 rec->value.len < 0 ? 0 : (int)rec->value.len);
        break;
    }
    gr_produce_response_batch_index_and_error_message *o = &e->out[e->n++];
    gr_produce_response_batch_index_and_error_message_init(o);
    o->batch_index = index;
    size_t n = strlen(msg);
    char *copy = gr_arena_strdup(&e->req->arena, msg, n);
    o->batch_index_error_message = copy ? (gr_str){copy, (int32_t)n} : GR_STR_NULL;
}

/* Kafka's summary of the record errors: INVALID_TIMESTAMP when any is a
 * timestamp's, else INVALID_RECORD listing the first three. */
static void record_errors_answer(gr_request *req, const record_errors *e,
                                 gr_produce_response_partition_produce_response *out)
{
    out->record_errors = e->out;
    out->record_errors_count = e->n;
    if (e->timestamps) {
        out->error_code = GR_INVALID_TIMESTAMP;
        out->error_message =
            gr_str_from("One or more records have been rejected due to invalid timestamp");
        return;
    }
    out->error_code = GR_INVALID_RECORD;
    char msg[2048];
    int k = snprintf(msg, sizeof msg,
                     "One or more records have been rejected due to %d record errors in total, "
                     "and only showing the first three errors at most: [",
                     (int)e->n);
    for (int32_t i = 0; i < e->n && i < 3 && k > 0 && (size_t)k < sizeof msg; i++) {
        gr_str m = e->out[i].batch_index_error_message;
        k += snprintf(msg + k, sizeof msg - (size_t)k,
                      "%sRecordError(batchIndex=%d, message='%.*s')", i ? ", " : "",
                      (int)e->out[i].batch_index, m.len > 0 ? (int)m.len : 0, m.ptr ? m.ptr : "");
    }
    if (k > 0 && (size_t)k < sizeof msg)
        snprintf(msg + k, sizeof msg - (size_t)k, "]");
    char *copy = gr_arena_strdup(&req->arena, msg, strlen(msg));
    out->error_message = copy ? gr_str_from(copy) : GR_STR_NULL;
}

/*
 * The topic's per-record rules (keys on compacted topics, CreateTime
 * bounds, no producer LogAppendTime). Records are read only when the header
 * cannot rule a problem out, so the usual batch (recent timestamps, no
 * lower bound, a delete topic) costs nothing here. A batch whose records
 * break a rule is first validated whole: a corrupt batch answers for its
 * corruption, as Kafka checks the batch before its records. Returns
 * GR_NONE or the partition's error, *out filled.
 */
static int16_t check_records(gr_request *req, const gr_partition *p, const uint8_t *batch,
                             size_t blen, const gr_batch_header *h, int64_t now,
                             gr_produce_response_partition_produce_response *out)
{
    gr_batch_record_policy pol = {
        .now_ms = now,
        .create_time = !atomic_load(&p->log_append_time),
        .before_max_ms = (int64_t)atomic_load(&p->ts_before_max_ms),
        .after_max_ms = (int64_t)atomic_load(&p->ts_after_max_ms),
        .require_key = atomic_load(&p->compact),
    };
    bool future = pol.after_max_ms < INT64_MAX - now && h->max_timestamp > now + pol.after_max_ms;
    bool read = pol.require_key || (h->attributes & GR_BATCH_ATTR_LOG_APPEND_TIME) ||
                (pol.create_time && (pol.before_max_ms != INT64_MAX || future));
    if (!read)
        return GR_NONE;
    int bad = gr_batch_check_records(batch, blen, MAX_UNCOMPRESSED, &pol, NULL, NULL);
    if (bad <= 0)
        return GR_NONE; /* unreadable records: the log's validation says why */
    gr_batch_result br = gr_batch_validate(batch, blen, true, MAX_UNCOMPRESSED, NULL);
    if (br != GR_BATCH_OK) {
        out->error_message = gr_str_from(gr_batch_result_str(br));
        return batch_error(br);
    }
    record_errors e = {.req = req, .p = p, .pol = &pol, .cap = bad};
    e.out = gr_arena_calloc(&req->arena, (size_t)bad, sizeof *e.out);
    if (!e.out)
        return GR_UNKNOWN_SERVER_ERROR;
    gr_batch_check_records(batch, blen, MAX_UNCOMPRESSED, &pol, add_record_error, &e);
    record_errors_answer(req, &e, out);
    GR_DEBUG("api", "produce to %s-%d refused: %d records break the topic's rules", p->topic,
             p->index, bad);
    return out->error_code;
}

/*
 * compression.type other than producer, and a batch in another codec: the
 * batch is validated whole (the log will then only check its new CRC),
 * re-encoded into *w and checked again against max.message.bytes, as Kafka
 * does after recompressing.
 */
static int16_t recompress(const gr_partition *p, const uint8_t *batch, size_t blen,
                          const gr_batch_header *h, gr_writer *w, bool *done,
                          gr_produce_response_partition_produce_response *out)
{
    int codec = atomic_load(&p->compression);
    *done = false;
    if (codec == GR_TOPIC_COMPRESSION_PRODUCER || codec == (int)gr_batch_codec(h))
        return GR_NONE;
    gr_batch_result br = gr_batch_validate(batch, blen, true, MAX_UNCOMPRESSED, NULL);
    if (br != GR_BATCH_OK) {
        out->error_message = gr_str_from(gr_batch_result_str(br));
        return batch_error(br);
    }
    int rc = gr_batch_recompress(batch, blen, (gr_codec)codec, atomic_load(&p->compression_level),
                                 MAX_UNCOMPRESSED, w);
    if (rc != GR_OK) {
        GR_WARN("api", "%s-%d: cannot re-encode a batch as %s: %s", p->topic, p->index,
                gr_codec_name((gr_codec)codec), gr_err_str(rc));
        return rc == GR_ERR_NOMEM ? GR_UNKNOWN_SERVER_ERROR : GR_CORRUPT_MESSAGE;
    }
    if (w->len > (size_t)atomic_load(&p->max_message_bytes))
        return GR_MESSAGE_TOO_LARGE;
    *done = true;
    return GR_NONE;
}

/* The ISR an acks=all produce needs: min.insync.replicas, capped by the
 * replication factor as Kafka's effective min ISR is (a topic may set more
 * than it has replicas). */
int32_t gr_api_effective_min_isr(int32_t min_insync_replicas, int32_t replicas)
{
    return replicas > 0 && replicas < min_insync_replicas ? replicas : min_insync_replicas;
}

static int32_t effective_min_isr(const gr_partition *p)
{
    return gr_api_effective_min_isr(atomic_load(&p->min_insync_replicas),
                                    atomic_load(&p->replicas));
}

/* acks=all needs the effective min ISR before anything is appended
 * (Kafka's NotEnoughReplicasException, with its message). */
static int16_t check_min_isr(gr_request *req, const gr_partition *p,
                             gr_produce_response_partition_produce_response *out)
{
    int32_t isr = atomic_load(&p->isr_size), min = effective_min_isr(p);
    if (isr >= min)
        return GR_NONE;
    char msg[512];
    snprintf(msg, sizeof msg,
             "The size of the current ISR : %d is insufficient to satisfy the min.isr "
             "requirement of %d for partition %s-%d",
             (int)isr, (int)min, p->topic, p->index);
    char *copy = gr_arena_strdup(&req->arena, msg, strlen(msg));
    out->error_message = copy ? gr_str_from(copy) : GR_STR_NULL;
    return GR_NOT_ENOUGH_REPLICAS;
}

/* ---- acks=all ---- */

/* One appended partition of an acks=all produce, waiting for its high
 * watermark. */
typedef struct {
    gr_str topic; /* points into the decoded request */
    gr_uuid topic_id;
    int32_t index;
    int32_t epoch;    /* the leader epoch its records were appended at */
    int64_t required; /* the high watermark that covers them: last offset + 1 */
    bool waiting;
    gr_produce_response_partition_produce_response *out;
} acks_part;

/* An acks=all produce: its answer and the partitions it waits for, in the
 * request's arena (freed when the request completes). */
typedef struct {
    gr_delayed_op op;
    gr_request *req;
    struct event_base *base; /* of the connection's thread, where it waits */
    gr_produce_response resp;
    acks_part *parts;
    size_t nparts, cap, nwaiting;
} acks_all;

bool gr_api_produce_acked(bool leader, int32_t leader_epoch, int32_t append_epoch, int64_t hw,
                          int64_t required, int32_t isr_size, int32_t min_isr, int16_t *err)
{
    if (!leader || leader_epoch != append_epoch)
        *err = GR_NOT_LEADER_OR_FOLLOWER;
    else if (isr_size < min_isr)
        *err = GR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    else if (hw >= required)
        *err = GR_NONE;
    else
        return false;
    return true;
}

/* Decides the waiting partitions that can be decided now. */
static void acks_settle(acks_all *a)
{
    gr_broker *b = a->req->ctx;
    for (size_t i = 0; i < a->nparts; i++) {
        acks_part *ap = &a->parts[i];
        if (!ap->waiting)
            continue;
        /* Found by name, as the request named it: a topic gone answers as
         * a Produce to it would now (UNKNOWN_TOPIC_OR_PARTITION), one
         * deleted and created again under the same name is another
         * partition, no longer led here by the one appended to. */
        int16_t err = GR_NONE;
        gr_partition *p = gr_replica_get(b->replicas, ap->topic, ap->index, &err);
        if (p && memcmp(p->topic_id.b, ap->topic_id.b, sizeof p->topic_id.b) != 0) {
            gr_partition_unref(p);
            p = NULL;
            err = GR_NOT_LEADER_OR_FOLLOWER;
        }
        bool done = !p;
        if (p) {
            done = gr_api_produce_acked(atomic_load(&p->leader), atomic_load(&p->leader_epoch),
                                        ap->epoch, atomic_load(&p->hw), ap->required,
                                        atomic_load(&p->isr_size), effective_min_isr(p),
                                        &err);
            gr_partition_unref(p);
        }
        if (done) {
            ap->waiting = false;
            ap->out->error_code = err;
            a->nwaiting--;
        }
    }
}

/* The partitions still waiting when the answer must go out. */
static void acks_time_out(acks_all *a)
{
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].waiting) {
            a->parts[i].waiting = false;
            a->parts[i].out->error_code = GR_REQUEST_TIMED_OUT;
            GR_DEBUG("api", "acks=all produce from %s: %.*s-%d not replicated in time "
                     "(high watermark short of %lld)",
                     a->req->peer, (int)a->parts[i].topic.len, a->parts[i].topic.ptr,
                     a->parts[i].index, (long long)a->parts[i].required);
        }
    a->nwaiting = 0;
}

static acks_all *acks_of(gr_delayed_op *op)
{
    return (acks_all *)((char *)op - offsetof(acks_all, op));
}

static bool acks_try(gr_delayed_op *op, int64_t now_ms)
{
    (void)now_ms;
    acks_all *a = acks_of(op);
    gr_broker *b = a->req->ctx;
    /* A client that has gone needs no answer: let it go at once. */
    if (!gr_request_base(a->req))
        return true;
    acks_settle(a);
    return a->nwaiting == 0 || gr_replica_stopping(b->replicas);
}

static int acks_answer(acks_all *a, gr_writer *out)
{
    acks_time_out(a);
    return gr_produce_response_encode(&a->resp, a->req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                    : GR_CLOSE;
}

static void acks_done(gr_delayed_op *op, int64_t now_ms, gr_delayed_cause cause)
{
    (void)now_ms;
    (void)cause;
    acks_all *a = acks_of(op);
    gr_request *req = a->req;
    gr_broker *b = req->ctx;
    int rc = gr_request_base(req) ? acks_answer(a, &req->out) : GR_CLOSE;
    gr_request_complete(req, rc); /* frees a with the arena; may start the next request */
    gr_replica_wait_end(b->replicas);
}

/* The client went away: the produce stops waiting now rather than at its
 * timeout (acks_done drops it unanswered; the records stay appended). */
static void acks_gone(gr_request *req, void *arg)
{
    (void)req;
    acks_all *a = arg;
    if (gr_waits_cancel(a->base, &a->op))
        acks_done(&a->op, gr_waits_now_ms(), GR_DELAYED_EXPIRED);
}

/* Some partitions wait for their high watermark: the request waits in the
 * purgatory until timeout_ms, or answers now when it cannot wait. */
static int acks_wait(acks_all *a, int32_t timeout_ms, gr_writer *out)
{
    gr_request *req = a->req;
    gr_broker *b = req->ctx;
    struct event_base *base = gr_request_base(req);
    if (!base)
        return GR_CLOSE; /* the client has gone */
    uint64_t *keys = gr_arena_calloc(&req->arena, a->nwaiting, sizeof *keys);
    if (!keys || gr_replica_stopping(b->replicas))
        return acks_answer(a, out);
    size_t nkeys = 0;
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].waiting)
            keys[nkeys++] = gr_purgatory_key(&a->parts[i].topic_id, a->parts[i].index);
    gr_delayed_op_init(&a->op, acks_try, acks_done);
    a->base = base;
    gr_request_on_gone(req, acks_gone, a);
    if (gr_waits_park(base, b->replicas, &a->op, keys, nkeys,
                      gr_waits_now_ms() + (timeout_ms > 0 ? timeout_ms : 0)) ==
        GR_PURGATORY_ENOMEM) {
        gr_request_on_gone(req, NULL, NULL);
        return acks_answer(a, out);
    }
    return GR_PENDING; /* answered by acks_done, perhaps already */
}

/* Kafka lets a client append to an internal topic only under the client
 * id of its own admin tools. */
static bool internal_writer(const gr_request *req)
{
    return gr_str_eq(req->header.client_id, "__admin_client");
}

/* One partition of the request; with acks=all, a partition appended but
 * not yet covered by its high watermark is added to a's waiting ones. */
static void produce_partition(gr_request *req, int16_t acks, gr_str topic,
                              const gr_produce_request_partition_produce_data *in,
                              gr_produce_response_partition_produce_response *out, acks_all *a)
{
    gr_broker *b = req->ctx;
    gr_produce_response_partition_produce_response_init(out);
    out->index = in->index;
    out->base_offset = -1;
    out->log_append_time_ms = -1;
    out->log_start_offset = -1;
    if (req->api_version < 3) {
        out->error_code = GR_UNSUPPORTED_VERSION;
        return;
    }
    if (acks != 0 && acks != 1 && acks != -1) {
        out->error_code = GR_INVALID_REQUIRED_ACKS;
        return;
    }
    int16_t err;
    gr_partition *p = gr_replica_get(b->replicas, topic, in->index, &err);
    if (!p && err != GR_NOT_LEADER_OR_FOLLOWER) {
        out->error_code = err; /* no such partition in the cluster */
        return;
    }
    if (gr_internal_topic(topic) && !internal_writer(req)) {
        /* As Kafka: only its coordinators write the internal topics. What
         * a client wrote there would be loaded as the groups' state. */
        out->error_code = GR_INVALID_TOPIC_EXCEPTION;
        gr_partition_unref(p);
        return;
    }
    if (!p) {
        out->error_code = err;
        return;
    }
    if (!atomic_load(&p->leader)) {
        out->error_code = GR_NOT_LEADER_OR_FOLLOWER;
        gr_partition_unref(p);
        return;
    }
    uint8_t *batch = (uint8_t *)in->records.ptr;
    size_t len = in->records.len > 0 ? (size_t)in->records.len : 0, blen = 0;
    const char *why = NULL;
    gr_batch_header h;
    gr_writer w;
    gr_writer_init(&w, 0);
    bool recompressed = false;
    int64_t now = wall_ms();
    if ((err = check_envelope(batch, len, &blen, &why)) != GR_NONE) {
        /* Kafka's texts: "Produce requests with version 8 must have ...". */
        char msg[160];
        if (err == GR_INVALID_RECORD)
            snprintf(msg, sizeof msg, "Produce requests with version %d %s", req->api_version, why);
        else
            snprintf(msg, sizeof msg, "%s", why);
        char *copy = gr_arena_strdup(&req->arena, msg, strlen(msg));
        out->error_message = copy ? gr_str_from(copy) : GR_STR_NULL;
    } else if (gr_batch_parse_header(batch, blen, &h) != GR_BATCH_OK) {
        err = GR_CORRUPT_MESSAGE; /* cannot happen after the envelope checks */
    } else if (acks == -1 && (err = check_min_isr(req, p, out)) != GR_NONE) {
        /* As Kafka's leader append: before the log looks at the records. */
    } else if (blen > (size_t)atomic_load(&p->max_message_bytes)) {
        err = GR_MESSAGE_TOO_LARGE;
    } else if (h.producer_id >= 0 || (h.attributes & GR_BATCH_ATTR_TRANSACTIONAL)) {
        err = GR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        out->error_message =
            gr_str_from("idempotent and transactional produce are not supported yet");
    } else if ((err = check_records(req, p, batch, blen, &h, now, out)) == GR_NONE) {
        err = recompress(p, batch, blen, &h, &w, &recompressed, out);
    }
    if (err != GR_NONE) {
        out->error_code = err;
        gr_writer_free(&w);
        gr_partition_unref(p);
        return;
    }
    if (recompressed) {
        batch = w.p;
        blen = w.len;
    }
    gr_log_append_result res;
    int32_t epoch = atomic_load(&p->leader_epoch);
    /* The request owns its frame until it completes: the log rewrites the
     * batch (offsets, leader epoch) in place. A re-encoded batch was
     * validated whole before; the log checks its header and CRC. */
    int rc = gr_log_append(p->log, batch, blen, epoch, recompressed ? 0 : GR_LOG_APPEND_DEEP,
                           MAX_UNCOMPRESSED, now, &res);
    gr_writer_free(&w);
    if (rc == GR_LOG_OK) {
        gr_partition_appended(p);
        out->base_offset = res.first_offset;
        out->log_append_time_ms = res.log_append_time;
        out->log_start_offset = gr_log_start_offset(p->log);
        /* a has a slot for every partition of the request. */
        if (acks == -1 && a->nparts < a->cap) {
            a->parts[a->nparts++] =
                (acks_part){.topic = topic, .topic_id = p->topic_id, .index = p->index,
                            .epoch = epoch, .required = res.last_offset + 1, .waiting = true,
                            .out = out};
            a->nwaiting++;
        }
    } else if (rc == GR_LOG_ERR_CORRUPT) {
        out->error_code = batch_error(res.batch_result);
        out->error_message = gr_str_from(gr_batch_result_str(res.batch_result));
        GR_DEBUG("api", "produce to %s-%d refused: %s", p->topic, p->index,
                 gr_batch_result_str(res.batch_result));
    } else if (rc == GR_LOG_ERR_TOO_LARGE) {
        out->error_code = GR_RECORD_LIST_TOO_LARGE;
    } else if (rc == GR_LOG_ERR_IO) {
        out->error_code = GR_KAFKA_STORAGE_ERROR;
    } else {
        out->error_code = GR_UNKNOWN_SERVER_ERROR;
    }
    gr_partition_unref(p);
}

int gr_handle_produce(gr_request *req, gr_writer *out)
{
    gr_produce_request body;
    int rc = gr_produce_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed Produce v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }
    /* acks=all: the request's answer and waiting partitions live here. */
    acks_all *a = NULL;
    if (body.acks == -1) {
        size_t total = 0;
        for (int32_t i = 0; i < body.topic_data_count; i++)
            total += (size_t)body.topic_data[i].partition_data_count;
        a = gr_arena_calloc(&req->arena, 1, sizeof *a);
        if (!a || !(a->parts = gr_arena_calloc(&req->arena, total ? total : 1, sizeof *a->parts)))
            return GR_CLOSE;
        a->req = req;
        a->cap = total;
    }
    gr_produce_response resp;
    gr_produce_response_init(&resp);
    resp.responses = gr_arena_calloc(&req->arena, body.topic_data_count ? (size_t)body.topic_data_count : 1,
                                     sizeof *resp.responses);
    if (!resp.responses)
        return GR_CLOSE;
    resp.responses_count = body.topic_data_count;
    for (int32_t i = 0; i < body.topic_data_count; i++) {
        const gr_produce_request_topic_produce_data *t = &body.topic_data[i];
        gr_produce_response_topic_produce_response *rt = &resp.responses[i];
        gr_produce_response_topic_produce_response_init(rt);
        rt->name = t->name;
        rt->partition_responses = gr_arena_calloc(
            &req->arena, t->partition_data_count ? (size_t)t->partition_data_count : 1,
            sizeof *rt->partition_responses);
        if (!rt->partition_responses)
            return GR_CLOSE;
        rt->partition_responses_count = t->partition_data_count;
        for (int32_t k = 0; k < t->partition_data_count; k++)
            produce_partition(req, body.acks, t->name, &t->partition_data[k],
                              &rt->partition_responses[k], a);
    }
    if (body.acks == 0) {
        /* As Kafka: an acks=0 producer learns of a failure only by the
         * connection closing (it then refreshes its metadata). */
        for (int32_t i = 0; i < resp.responses_count; i++)
            for (int32_t k = 0; k < resp.responses[i].partition_responses_count; k++)
                if (resp.responses[i].partition_responses[k].error_code != GR_NONE) {
                    GR_INFO("api", "closing the connection of %s: acks=0 produce failed: %s",
                            req->peer,
                            gr_kafka_error_name(resp.responses[i].partition_responses[k].error_code));
                    return GR_CLOSE;
                }
        return GR_NO_RESPONSE;
    }
    if (a) {
        a->resp = resp;
        acks_settle(a);
        if (a->nwaiting > 0)
            return acks_wait(a, body.timeout_ms, out);
    }
    return gr_produce_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                              : GR_CLOSE;
}
