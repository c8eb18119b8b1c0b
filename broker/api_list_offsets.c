/*
 * api_list_offsets.c - ListOffsets (v1+; Kafka 4.0 dropped v0).
 *
 * Per partition, on the leader: -2 (earliest) gives the log start offset,
 * -1 (latest) the high watermark (the last stable offset for
 * read_committed, which is the same without transactions), -3 the record
 * with the largest timestamp, and a time the first offset whose record has
 * a timestamp at or after it (offset -1, timestamp -1 when none below the
 * high watermark does). leader_epoch (v4+) is the epoch of the leader that
 * wrote the offset, from the log's leader epoch cache.
 */
#include <stdlib.h>

#include "broker/api.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

/* The epoch whose leader wrote `offset`: the latest entry starting at or
 * before it. -1 when the cache knows none. */
static int32_t epoch_for_offset(gr_log *log, int64_t offset)
{
    size_t n;
    gr_log_epoch_entry *e = gr_log_epochs_copy(log, 0, &n);
    if (!e)
        return gr_log_latest_epoch(log);
    int32_t found = -1;
    for (size_t i = 0; i < n; i++)
        if (e[i].start_offset <= offset)
            found = e[i].epoch;
    free(e);
    return found;
}

static void list_partition(gr_str topic, const gr_list_offsets_request_list_offsets_partition *in,
                           gr_list_offsets_response_list_offsets_partition_response *out,
                           gr_request *req)
{
    gr_broker *b = req->ctx;
    gr_list_offsets_response_list_offsets_partition_response_init(out);
    out->partition_index = in->partition_index;
    out->timestamp = -1;
    out->offset = -1;
    out->leader_epoch = -1;
    int16_t err;
    gr_partition *p = gr_replica_get(b->replicas, topic, in->partition_index, &err);
    if (!p) {
        out->error_code = err;
        return;
    }
    int32_t epoch = atomic_load(&p->leader_epoch);
    if (!atomic_load(&p->leader)) {
        out->error_code = GR_NOT_LEADER_OR_FOLLOWER;
    } else if (in->current_leader_epoch >= 0 && in->current_leader_epoch < epoch) {
        out->error_code = GR_FENCED_LEADER_EPOCH;
    } else if (in->current_leader_epoch > epoch) {
        out->error_code = GR_UNKNOWN_LEADER_EPOCH;
    } else {
        int64_t hw = atomic_load(&p->hw);
        int64_t offset = -1, ts = -1;
        int rc = GR_LOG_OK;
        if (in->timestamp == GR_LOG_TS_LATEST) {
            offset = hw;
        } else if (in->timestamp == GR_LOG_TS_EARLIEST) {
            offset = gr_log_start_offset(p->log);
        } else if (in->timestamp == GR_LOG_TS_MAX_TIMESTAMP || in->timestamp >= 0) {
            rc = gr_log_offset_for_timestamp(p->log, in->timestamp, &offset, &ts);
            if (rc == 1 || (rc == GR_LOG_OK && offset >= hw)) {
                offset = -1; /* nothing a consumer may read qualifies */
                ts = -1;
                rc = GR_LOG_OK;
            }
        } else {
            out->error_code = GR_INVALID_REQUEST; /* -4 and below: not served */
            gr_partition_unref(p);
            return;
        }
        if (rc != GR_LOG_OK) {
            out->error_code = GR_KAFKA_STORAGE_ERROR;
        } else {
            out->offset = offset;
            out->timestamp = ts;
            if (offset >= 0) {
                int32_t e = epoch_for_offset(p->log, offset);
                out->leader_epoch = e >= 0 ? e : epoch;
            }
        }
    }
    gr_partition_unref(p);
}

int gr_handle_list_offsets(gr_request *req, gr_writer *out)
{
    gr_list_offsets_request body;
    int rc = gr_list_offsets_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed ListOffsets v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }
    gr_list_offsets_response resp;
    gr_list_offsets_response_init(&resp);
    GR_API_ANSWER_PARTITIONS(rc, &req->arena, body, resp, name, list_partition, req);
    if (rc != GR_HANDLED)
        return rc;
    return gr_list_offsets_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}
