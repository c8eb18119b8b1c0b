/*
 * api_produce.c - Produce.
 *
 * Versions. Kafka 4.0 serves Produce v3 and up. Gregor advertises v0-v2 as
 * well, because librdkafka decides from the advertised Produce range
 * whether the broker understands compressed message sets, and answers
 * those versions with UNSUPPORTED_VERSION for every partition.
 *
 * Per partition: the partition must be led here (UNKNOWN_TOPIC_OR_PARTITION,
 * NOT_LEADER_OR_FOLLOWER); the records must be exactly one record batch of
 * magic 2 (INVALID_RECORD otherwise, as Kafka); no batch may exceed the
 * topic's max.message.bytes (MESSAGE_TOO_LARGE); idempotent and
 * transactional batches (producer id >= 0) are refused with
 * UNSUPPORTED_FOR_MESSAGE_FORMAT until producer ids exist; then the log
 * validates every record (CORRUPT_MESSAGE, INVALID_RECORD,
 * INVALID_TIMESTAMP), assigns offsets and writes the batch.
 *
 * acks: 0 sends no response (and closes the connection when a partition
 * failed, as Kafka does); 1 answers after the local append; -1 answers
 * at once when the ISR is this broker alone (the append moved the high
 * watermark). With a larger ISR there is no replication yet to wait for:
 * the append stays and the partition answers
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka does when the ISR shrinks
 * below min.insync.replicas after the append. Other acks values:
 * INVALID_REQUIRED_ACKS.
 *
 * The records are validated and rewritten (offsets, leader epoch) in the
 * request's own buffer, which the request owns until it completes.
 */
#include <string.h>
#include <time.h>

#include "broker/api.h"
#include "broker/replica.h"
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

static void produce_partition(gr_request *req, int16_t acks, gr_str topic,
                              const gr_produce_request_partition_produce_data *in,
                              gr_produce_response_partition_produce_response *out)
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
    if (!p) {
        out->error_code = err;
        return;
    }
    if (!atomic_load(&p->leader)) {
        out->error_code = GR_NOT_LEADER_OR_FOLLOWER;
        gr_partition_unref(p);
        return;
    }
    /* Exactly one batch of magic 2, as Kafka requires from Produce v3 on. */
    gr_batch_header h;
    size_t len = in->records.len > 0 ? (size_t)in->records.len : 0;
    if (len == 0 || gr_batch_parse_header(in->records.ptr, len, &h) != GR_BATCH_OK ||
        gr_batch_size(&h) != len) {
        bool bad_magic = len > GR_BATCH_OFF_MAGIC && in->records.ptr[GR_BATCH_OFF_MAGIC] != 2;
        out->error_code = bad_magic || len < GR_BATCH_HEADER_SIZE ? GR_CORRUPT_MESSAGE
                                                                 : GR_INVALID_RECORD;
        out->error_message = gr_str_from(bad_magic ? "only record batches of magic 2 are supported"
                                                   : "a produce request must carry exactly one "
                                                     "record batch per partition");
        gr_partition_unref(p);
        return;
    }
    if (len > (size_t)atomic_load(&p->max_message_bytes)) {
        out->error_code = GR_MESSAGE_TOO_LARGE;
        gr_partition_unref(p);
        return;
    }
    if (h.producer_id >= 0 || (h.attributes & GR_BATCH_ATTR_TRANSACTIONAL)) {
        out->error_code = GR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        out->error_message =
            gr_str_from("idempotent and transactional produce are not supported yet");
        gr_partition_unref(p);
        return;
    }
    gr_log_append_result res;
    /* The request owns its frame until it completes: the log rewrites the
     * batch (offsets, leader epoch) in place. */
    int rc = gr_log_append(p->log, (uint8_t *)in->records.ptr, len,
                           atomic_load(&p->leader_epoch), GR_LOG_APPEND_DEEP, MAX_UNCOMPRESSED,
                           wall_ms(), &res);
    if (rc == GR_LOG_OK) {
        gr_partition_appended(p);
        out->base_offset = res.first_offset;
        out->log_append_time_ms = res.log_append_time;
        out->log_start_offset = gr_log_start_offset(p->log);
        if (acks == -1 && !atomic_load(&p->isr_only_self))
            out->error_code = GR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
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
                              &rt->partition_responses[k]);
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
    return gr_produce_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                              : GR_CLOSE;
}
