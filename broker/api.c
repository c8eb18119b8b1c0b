/*
 * api.c - the broker's API tables: what it serves, at which versions. The
 * network layer dispatches from them and ApiVersions advertises them, so a
 * standalone broker does not advertise the admin APIs it cannot forward.
 */
#include "broker/api.h"
#include "common/api_versions.h"

static const gr_api_handler standalone[] = {
    {GR_API_METADATA, 0, 12, gr_handle_metadata},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
    {GR_API_DESCRIBE_CLUSTER, 0, 1, gr_handle_describe_cluster},
};

/* Produce from v0: see api_produce.c for why v0-v2 are advertised. */
static const gr_api_handler clustered[] = {
    {GR_API_PRODUCE, 0, 11, gr_handle_produce},
    {GR_API_FETCH, 4, 16, gr_handle_fetch},
    {GR_API_LIST_OFFSETS, 1, 8, gr_handle_list_offsets},
    {GR_API_DELETE_RECORDS, 0, 2, gr_handle_delete_records},
    {GR_API_OFFSET_FOR_LEADER_EPOCH, 2, 4, gr_handle_offset_for_leader_epoch},
    {GR_API_DESCRIBE_LOG_DIRS, 1, 4, gr_handle_describe_log_dirs},
    {GR_API_METADATA, 0, 12, gr_handle_metadata},
    {GR_API_FIND_COORDINATOR, 0, 6, gr_handle_find_coordinator},
    /* The group coordinator at Kafka 4.0's ranges (OffsetCommit v0-1 and
     * OffsetFetch v0 are gone). */
    {GR_API_OFFSET_COMMIT, 2, 9, gr_handle_offset_commit},
    {GR_API_OFFSET_FETCH, 1, 9, gr_handle_offset_fetch},
    {GR_API_JOIN_GROUP, 0, 9, gr_handle_join_group},
    {GR_API_HEARTBEAT, 0, 4, gr_handle_heartbeat},
    {GR_API_LEAVE_GROUP, 0, 5, gr_handle_leave_group},
    {GR_API_SYNC_GROUP, 0, 5, gr_handle_sync_group},
    {GR_API_DESCRIBE_GROUPS, 0, 5, gr_handle_describe_groups},
    {GR_API_LIST_GROUPS, 0, 5, gr_handle_list_groups},
    {GR_API_DELETE_GROUPS, 0, 2, gr_handle_delete_groups},
    {GR_API_OFFSET_DELETE, 0, 0, gr_handle_offset_delete},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
    {GR_API_DESCRIBE_CLUSTER, 0, 1, gr_handle_describe_cluster},
    {GR_API_CREATE_TOPICS, 2, 7, gr_handle_create_topics},
    {GR_API_DELETE_TOPICS, 1, 6, gr_handle_delete_topics},
    {GR_API_CREATE_PARTITIONS, 0, 3, gr_handle_create_partitions},
    {GR_API_DESCRIBE_CONFIGS, 1, 4, gr_handle_describe_configs},
    {GR_API_ALTER_CONFIGS, 0, 2, gr_handle_alter_configs},
    {GR_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, gr_handle_incremental_alter_configs},
    {GR_API_DESCRIBE_QUORUM, 0, 2, gr_handle_describe_quorum},
};

const gr_api_table gr_broker_apis_standalone = {standalone,
                                                sizeof standalone / sizeof standalone[0]};
const gr_api_table gr_broker_apis_cluster = {clustered, sizeof clustered / sizeof clustered[0]};
