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

#endif
