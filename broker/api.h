/*
 * api.h - the APIs the broker serves: the tables dispatch and ApiVersions
 * use (broker/api.c), and one handler per API (broker/api_*.c).
 *
 * Handlers receive the gr_broker as req->ctx.
 */
#ifndef GR_BROKER_API_H
#define GR_BROKER_API_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "common/log.h"
#include "common/netserver.h"

/* A broker alone (no controller.quorum.voters), and one in a cluster. */
extern const gr_api_table gr_broker_apis_standalone;
extern const gr_api_table gr_broker_apis_cluster;

int gr_handle_metadata(gr_request *req, gr_writer *out);
int gr_handle_describe_cluster(gr_request *req, gr_writer *out);
/* Forwarded to the active controller (api_admin.c). */
int gr_handle_create_topics(gr_request *req, gr_writer *out);
int gr_handle_delete_topics(gr_request *req, gr_writer *out);
int gr_handle_create_partitions(gr_request *req, gr_writer *out);
int gr_handle_describe_configs(gr_request *req, gr_writer *out);
int gr_handle_alter_configs(gr_request *req, gr_writer *out);
int gr_handle_incremental_alter_configs(gr_request *req, gr_writer *out);
int gr_handle_describe_quorum(gr_request *req, gr_writer *out);
/* The data path (api_produce.c, api_fetch.c, api_list_offsets.c), over the
 * partitions of the replica manager (replica.h). */
int gr_handle_produce(gr_request *req, gr_writer *out);
int gr_handle_fetch(gr_request *req, gr_writer *out);
int gr_handle_list_offsets(gr_request *req, gr_writer *out);
/* Group and transaction coordinators (api_find_coordinator.c). */
int gr_handle_find_coordinator(gr_request *req, gr_writer *out);

/* The group coordinator (api_group.c, api_offsets.c; broker/coordinator.h). */
int gr_handle_join_group(gr_request *req, gr_writer *out);
int gr_handle_sync_group(gr_request *req, gr_writer *out);
int gr_handle_heartbeat(gr_request *req, gr_writer *out);
int gr_handle_leave_group(gr_request *req, gr_writer *out);
int gr_handle_describe_groups(gr_request *req, gr_writer *out);
int gr_handle_list_groups(gr_request *req, gr_writer *out);
int gr_handle_delete_groups(gr_request *req, gr_writer *out);
int gr_handle_offset_commit(gr_request *req, gr_writer *out);
int gr_handle_offset_fetch(gr_request *req, gr_writer *out);
int gr_handle_offset_delete(gr_request *req, gr_writer *out);

/*
 * For the APIs whose answer mirrors the request topic by topic, partition
 * by partition (ListOffsets, DeleteRecords, OffsetForLeaderEpoch): fills
 * resp.topics from body.topics, copying each topic's NAME field, and calls
 * ANSWER(name, &request partition, &response partition, ...) for every
 * partition. rc becomes GR_HANDLED, or GR_CLOSE when the arena runs out.
 * Decoded counts of non-nullable arrays are >= 0, and the arena gives
 * memory even for 0 elements, so NULL always means out of memory. The
 * topic results are left zeroed: they have no other defaults.
 */
#define GR_API_ANSWER_PARTITIONS(rc, arena, body, resp, NAME, ANSWER, ...)                      \
    do {                                                                                        \
        (rc) = GR_HANDLED;                                                                      \
        (resp).topics =                                                                         \
            gr_arena_calloc((arena), (size_t)(body).topics_count, sizeof *(resp).topics);      \
        if (!(resp).topics) {                                                                   \
            (rc) = GR_CLOSE;                                                                    \
            break;                                                                              \
        }                                                                                       \
        (resp).topics_count = (body).topics_count;                                              \
        for (int32_t i_ = 0; i_ < (body).topics_count && (rc) == GR_HANDLED; i_++) {            \
            int32_t n_ = (body).topics[i_].partitions_count;                                    \
            (resp).topics[i_].NAME = (body).topics[i_].NAME;                                    \
            (resp).topics[i_].partitions =                                                      \
                gr_arena_calloc((arena), (size_t)n_, sizeof *(resp).topics[i_].partitions);     \
            if (!(resp).topics[i_].partitions) {                                                \
                (rc) = GR_CLOSE;                                                                \
                break;                                                                          \
            }                                                                                   \
            (resp).topics[i_].partitions_count = n_;                                            \
            for (int32_t k_ = 0; k_ < n_; k_++)                                                 \
                ANSWER((body).topics[i_].NAME, &(body).topics[i_].partitions[k_],               \
                       &(resp).topics[i_].partitions[k_], __VA_ARGS__);                         \
        }                                                                                       \
    } while (0)

/* The log APIs (api_delete_records.c, api_describe_log_dirs.c,
 * api_offset_for_leader_epoch.c). */
int gr_handle_delete_records(gr_request *req, gr_writer *out);
int gr_handle_describe_log_dirs(gr_request *req, gr_writer *out);
int gr_handle_offset_for_leader_epoch(gr_request *req, gr_writer *out);

/* Their decisions, apart from any partition (for the tests). */
/* DeleteRecords' target: -1 is the high watermark; OFFSET_OUT_OF_RANGE below
 * 0 or above the high watermark, else GR_NONE with *target set. */
int16_t gr_api_delete_records_target(int64_t requested, int64_t high_watermark,
                                     int64_t *target);
/* acks=all: whether a partition whose records were appended at
 * append_epoch up to required - 1 can be answered now, from its state
 * (led here, leader epoch, high watermark, ISR size, effective min ISR);
 * true with *err set (GR_NONE, NOT_LEADER_OR_FOLLOWER,
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND), false while it must wait. */
bool gr_api_produce_acked(bool leader, int32_t leader_epoch, int32_t append_epoch, int64_t hw,
                          int64_t required, int32_t isr_size, int32_t min_isr, int16_t *err);
/* The ISR an acks=all produce needs: min.insync.replicas capped by the
 * replication factor (Kafka's effective min ISR); replicas <= 0: unknown,
 * no cap. */
int32_t gr_api_effective_min_isr(int32_t min_insync_replicas, int32_t replicas);
/* A cleanup.policy value (comma-separated) includes "delete"; unset does. */
bool gr_api_cleanup_policy_deletes(gr_str policy);
/* Kafka's check of a request's current_leader_epoch against ours: -1 skips
 * it; older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. */
int16_t gr_api_leader_epoch_check(int32_t current_leader_epoch, int32_t leader_epoch);
/* OffsetForLeaderEpoch's answer for `requested` from a leader at
 * leader_epoch, over a copy of its epoch cache (n entries ascending, with
 * room for one more: the leader's own epoch is added at log_end when the
 * cache does not have it yet) and its log end offset. */
void gr_api_leader_end_offset_for(gr_log_epoch_entry *epochs, size_t n, int32_t leader_epoch,
                                  int32_t requested, int64_t log_end, int32_t *out_epoch,
                                  int64_t *out_end);

#endif
