/*
 * api_delete_records.c - DeleteRecords (v0-v2): moves the log start offset
 * of partitions forward (kafka-delete-records.sh, Admin.deleteRecords).
 *
 * Per partition, on its leader only (NOT_LEADER_OR_FOLLOWER elsewhere,
 * UNKNOWN_TOPIC_OR_PARTITION when the cluster has no such partition):
 *   - offset -1 stands for the high watermark;
 *   - an offset below 0 or above the high watermark is OFFSET_OUT_OF_RANGE
 *     (records a consumer cannot yet read cannot be deleted);
 *   - the internal topics (__consumer_offsets, __transaction_state,
 *     __share_group_state) refuse it with INVALID_TOPIC_EXCEPTION, and a
 *     topic whose cleanup.policy does not include "delete" (compact only)
 *     with POLICY_VIOLATION, as Kafka does;
 *   - an offset at or below the current log start offset changes nothing.
 * The answer's low_watermark is the log start offset after the delete (-1
 * with an error). Fetch and ListOffsets read the log start offset from the
 * log, so from the answer on a fetch below it is OFFSET_OUT_OF_RANGE and
 * ListOffsets earliest returns it; whole segments below it are deleted.
 *
 * Replication. Kafka answers DeleteRecords only once the partition's low
 * watermark, the smallest log start offset among the leader and its live
 * followers, has reached the requested offset: followers learn the new log
 * start offset from their fetch responses and move their own, and the
 * request waits in a purgatory until then, or until timeout_ms
 * (REQUEST_TIMED_OUT). There is no follower replication yet: a leader's
 * in-sync set is this broker alone, so the low watermark is the local log
 * start offset and the answer goes out right after the local delete. When
 * followers replicate, this handler will watch the partitions whose low
 * watermark is still short in the purgatory of its connection's thread
 * (waits.h, keyed like a fetch) and the follower fetch path will notify the
 * key when a follower reports a new log start offset; low_watermark() is
 * where the followers' offsets will enter. Until then timeout_ms has
 * nothing to bound and is not used.
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "broker/api.h"
#include "broker/cluster.h"
#include "broker/offsets_topic.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

int16_t gr_api_delete_records_target(int64_t requested, int64_t high_watermark,
                                     int64_t *target)
{
    *target = requested == -1 ? high_watermark : requested;
    if (*target < 0 || *target > high_watermark)
        return GR_OFFSET_OUT_OF_RANGE;
    return GR_NONE;
}

bool gr_api_cleanup_policy_deletes(gr_str policy)
{
    if (policy.len <= 0 || !policy.ptr)
        return true; /* unset: Kafka's default, "delete" */
    int32_t i = 0;
    while (i < policy.len) {
        int32_t j = i;
        while (j < policy.len && policy.ptr[j] != ',')
            j++;
        int32_t a = i, z = j; /* one item, trimmed */
        while (a < z && (policy.ptr[a] == ' ' || policy.ptr[a] == '\t'))
            a++;
        while (z > a && (policy.ptr[z - 1] == ' ' || policy.ptr[z - 1] == '\t'))
            z--;
        if (z - a == 6 && memcmp(policy.ptr + a, "delete", 6) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

/* The topic's cleanup.policy allows deleting records. */
static bool topic_deletes(gr_broker *b, const char *topic)
{
    if (!b->cluster)
        return true;
    gr_str name = {topic, (int32_t)strlen(topic)};
    const gr_metadata_image *img = gr_cluster_read_lock(b->cluster);
    bool ok = !img || gr_api_cleanup_policy_deletes(gr_metadata_config(
                                 img, GR_METADATA_RESOURCE_TOPIC, name, "cleanup.policy"));
    gr_cluster_read_unlock(b->cluster);
    return ok;
}

/* The partition's low watermark: today its own log start offset (see the
 * comment at the top for what replication adds). */
static int64_t low_watermark(gr_partition *p) { return gr_log_start_offset(p->log); }

static void delete_partition(gr_str topic,
                             const gr_delete_records_request_delete_records_partition *in,
                             gr_delete_records_response_delete_records_partition_result *out,
                             gr_request *req, int64_t now_ms)
{
    gr_broker *b = req->ctx;
    gr_delete_records_response_delete_records_partition_result_init(out);
    out->partition_index = in->partition_index;
    out->low_watermark = -1;
    int16_t err;
    gr_partition *p = gr_replica_get(b->replicas, topic, in->partition_index, &err);
    if (!p && err != GR_NOT_LEADER_OR_FOLLOWER) {
        out->error_code = err; /* no such partition in the cluster */
        return;
    }
    int64_t target;
    if (gr_internal_topic(topic)) {
        out->error_code = GR_INVALID_TOPIC_EXCEPTION; /* on any broker, as Kafka */
    } else if (!p || !atomic_load(&p->leader)) {
        out->error_code = GR_NOT_LEADER_OR_FOLLOWER;
    } else if (!topic_deletes(b, p->topic)) {
        out->error_code = GR_POLICY_VIOLATION;
    } else if ((err = gr_api_delete_records_target(in->offset, atomic_load(&p->hw),
                                                   &target)) != GR_NONE) {
        out->error_code = err;
    } else {
        /* The high watermark never moves back, and the log end offset is at
         * or above it: the log accepts any target that passed the check. */
        int rc = gr_log_delete_records(p->log, target, now_ms);
        if (rc == GR_LOG_OK) {
            out->low_watermark = low_watermark(p);
        } else {
            GR_WARN("api", "DeleteRecords %s-%d to offset %lld: %s", p->topic, p->index,
                    (long long)target, gr_log_err_str(rc));
            out->error_code =
                rc == GR_LOG_ERR_OUT_OF_RANGE ? GR_OFFSET_OUT_OF_RANGE : GR_KAFKA_STORAGE_ERROR;
        }
    }
    gr_partition_unref(p); /* NULL-safe */
}

int gr_handle_delete_records(gr_request *req, gr_writer *out)
{
    gr_delete_records_request body;
    int rc = gr_delete_records_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed DeleteRecords v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the log times segment deletions by the wall clock */
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    gr_delete_records_response resp;
    gr_delete_records_response_init(&resp);
    GR_API_ANSWER_PARTITIONS(rc, &req->arena, body, resp, name, delete_partition, req, now_ms);
    if (rc != GR_HANDLED)
        return rc;
    return gr_delete_records_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                     : GR_CLOSE;
}
