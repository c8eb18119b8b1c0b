/*
 * api_offset_for_leader_epoch.c - OffsetForLeaderEpoch (v2-v4; Kafka 4.0
 * dropped v0 and v1): the end offset of a leader epoch, which a consumer
 * (replica_id -1) uses to detect that its position was truncated away after
 * a leader change (KIP-320) and a follower (replica_id its broker id) uses
 * to find where its log diverges from the leader's.
 *
 * Per partition, in Kafka's order: current_leader_epoch is checked first
 * (-1: no check; older than ours: FENCED_LEADER_EPOCH; newer:
 * UNKNOWN_LEADER_EPOCH), then the partition must be led here
 * (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION when the cluster has
 * no such partition). replica_id only matters to authorization, which is
 * not there yet: consumers and brokers get the same answer.
 *
 * The answer is Kafka's LeaderEpochFileCache.endOffsetFor over the leader's
 * epoch cache (gr_log_epochs_end_offset): -1 or an epoch newer than all
 * gives epoch -1, offset -1; the latest epoch gives the log end offset; any
 * other the start offset of the next higher epoch, with the largest known
 * epoch at most the one asked for (the epoch asked for when it is older
 * than every known one).
 *
 * A Kafka leader writes its epoch into the cache, at the log end offset,
 * the moment it takes over. Here an epoch enters the cache with the first
 * batch appended under it, so a leader that has taken no writes yet in its
 * epoch answers as if the entry (current epoch, log end offset) were
 * there: that is exactly what Kafka's cache would hold, since no record of
 * the epoch exists.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "broker/api.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

int16_t gr_api_leader_epoch_check(int32_t current_leader_epoch, int32_t leader_epoch)
{
    if (current_leader_epoch == -1)
        return GR_NONE;
    if (current_leader_epoch < leader_epoch)
        return GR_FENCED_LEADER_EPOCH;
    if (current_leader_epoch > leader_epoch)
        return GR_UNKNOWN_LEADER_EPOCH;
    return GR_NONE;
}

void gr_api_leader_end_offset_for(gr_log_epoch_entry *epochs, size_t n, int32_t leader_epoch,
                                  int32_t requested, int64_t log_end, int32_t *out_epoch,
                                  int64_t *out_end)
{
    if (leader_epoch >= 0 && (n == 0 || epochs[n - 1].epoch < leader_epoch))
        epochs[n++] = (gr_log_epoch_entry){leader_epoch, log_end};
    gr_log_epochs_end_offset(epochs, n, requested, log_end, out_epoch, out_end);
}

/* The leader's answer for one partition. The log end offset is read before
 * the cache, so an epoch that starts meanwhile starts at or after it. */
static int16_t end_offset_for(gr_partition *p, int32_t leader_epoch, int32_t requested,
                              int32_t *out_epoch, int64_t *out_end)
{
    int64_t leo = gr_log_end_offset(p->log);
    size_t n;
    gr_log_epoch_entry *e = gr_log_epochs_copy(p->log, 1, &n); /* room for the leader's */
    if (!e)
        return GR_UNKNOWN_SERVER_ERROR; /* out of memory */
    gr_api_leader_end_offset_for(e, n, leader_epoch, requested, leo, out_epoch, out_end);
    free(e);
    return GR_NONE;
}

static void epoch_partition(gr_str topic,
                            const gr_offset_for_leader_epoch_request_offset_for_leader_partition
                                *in,
                            gr_offset_for_leader_epoch_response_epoch_end_offset *out,
                            gr_request *req)
{
    gr_broker *b = req->ctx;
    gr_offset_for_leader_epoch_response_epoch_end_offset_init(out);
    out->partition = in->partition;
    out->leader_epoch = -1;
    out->end_offset = -1;
    int16_t err;
    gr_partition *p = gr_replica_get(b->replicas, topic, in->partition, &err);
    if (!p) {
        out->error_code = err;
        return;
    }
    int32_t epoch = atomic_load(&p->leader_epoch);
    err = gr_api_leader_epoch_check(in->current_leader_epoch, epoch);
    if (err == GR_NONE && !atomic_load(&p->leader))
        err = GR_NOT_LEADER_OR_FOLLOWER;
    if (err == GR_NONE)
        err = end_offset_for(p, epoch, in->leader_epoch, &out->leader_epoch, &out->end_offset);
    out->error_code = err;
    gr_partition_unref(p);
}

int gr_handle_offset_for_leader_epoch(gr_request *req, gr_writer *out)
{
    gr_offset_for_leader_epoch_request body;
    int rc = gr_offset_for_leader_epoch_request_decode(&body, &req->body, req->api_version,
                                                       &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed OffsetForLeaderEpoch v%d body from %s: %s", req->api_version,
                req->peer, gr_err_str(rc));
        return GR_CLOSE;
    }
    gr_offset_for_leader_epoch_response resp;
    gr_offset_for_leader_epoch_response_init(&resp);
    GR_API_ANSWER_PARTITIONS(rc, &req->arena, body, resp, topic, epoch_partition, req);
    if (rc != GR_HANDLED)
        return rc;
    return gr_offset_for_leader_epoch_response_encode(&resp, req->api_version, out) == GR_OK
               ? GR_HANDLED
               : GR_CLOSE;
}
