/*
 * api.h - the APIs the broker serves: the tables dispatch and ApiVersions
 * use (broker/api.c), and one handler per API (broker/api_*.c).
 *
 * Handlers receive the gr_broker as req->ctx.
 */
#ifndef GR_BROKER_API_H
#define GR_BROKER_API_H

#include "broker/broker.h"
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

#endif
