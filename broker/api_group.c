/*
 * api_group.c - the classic group protocol's APIs: JoinGroup (v0-9),
 * SyncGroup (v0-5), Heartbeat (v0-4), LeaveGroup (v0-5), DescribeGroups
 * (v0-5), ListGroups (v0-5) and DeleteGroups (v0-2).
 *
 * Each decodes, finds the coordinator slot of the group (NOT_COORDINATOR
 * when this broker does not lead its partition of __consumer_offsets) and
 * hands the request to the group state machine (broker/group.h) through
 * the shell (broker/coordinator.h). JoinGroup and SyncGroup answer when
 * the rebalance allows, possibly from another thread's call: they return
 * GR_PENDING and are completed by the shell.
 */
#include "broker/api.h"
#include "broker/coordinator.h"
#include "common/errors.h"
#include "common/logging.h"

int gr_handle_join_group(gr_request *req, gr_writer *out)
{
    (void)out;
    gr_join_group_request body;
    int rc = gr_join_group_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "JoinGroup", rc);
    gr_gc_reply *r = gr_coordinator_waiter(req, false);
    if (!r)
        return GR_CLOSE;
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    if (!s) {
        gr_coordinator_fail(r, err, body.member_id);
        return GR_PENDING;
    }
    gr_gc_out o;
    gr_gc_out_init(&o);
    gr_gc_join(gc, &body, gr_coordinator_client_id(req), gr_coordinator_client_host(req), r,
               gr_coordinator_now_ms(), &o);
    gr_coordinator_unlock(s, &o, req);
    return GR_PENDING;
}

int gr_handle_sync_group(gr_request *req, gr_writer *out)
{
    (void)out;
    gr_sync_group_request body;
    int rc = gr_sync_group_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "SyncGroup", rc);
    gr_gc_reply *r = gr_coordinator_waiter(req, true);
    if (!r)
        return GR_CLOSE;
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    if (!s) {
        gr_coordinator_fail(r, err, body.member_id);
        return GR_PENDING;
    }
    gr_gc_out o;
    gr_gc_out_init(&o);
    gr_gc_sync(gc, &body, r, gr_coordinator_now_ms(), &o);
    gr_coordinator_unlock(s, &o, req);
    return GR_PENDING;
}

int gr_handle_heartbeat(gr_request *req, gr_writer *out)
{
    gr_heartbeat_request body;
    int rc = gr_heartbeat_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "Heartbeat", rc);
    gr_heartbeat_response resp;
    gr_heartbeat_response_init(&resp);
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    if (s) {
        gr_gc_out o;
        gr_gc_out_init(&o);
        err = gr_gc_heartbeat(gc, &body, gr_coordinator_now_ms(), &o);
        gr_coordinator_unlock(s, &o, req);
    }
    resp.error_code = err;
    return gr_heartbeat_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                               : GR_CLOSE;
}

int gr_handle_leave_group(gr_request *req, gr_writer *out)
{
    gr_leave_group_request body;
    int rc = gr_leave_group_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "LeaveGroup", rc);
    gr_leave_group_response resp;
    gr_leave_group_response_init(&resp);
    gr_gc *gc;
    int16_t err;
    gr_coord_slot *s = gr_coordinator_lock(req, body.group_id, &gc, &err);
    if (s) {
        gr_gc_out o;
        gr_gc_out_init(&o);
        gr_gc_leave(gc, &body, req->api_version, gr_coordinator_now_ms(), &req->arena, &resp, &o);
        /* Tombstones are not written for leaving; the group's next
         * generation (Empty) is, and its failure shows in the rejoins. */
        gr_coordinator_unlock(s, &o, req);
    } else {
        resp.error_code = err;
    }
    return gr_leave_group_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                 : GR_CLOSE;
}

int gr_handle_describe_groups(gr_request *req, gr_writer *out)
{
    gr_describe_groups_request body;
    int rc = gr_describe_groups_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "DescribeGroups", rc);
    gr_describe_groups_response resp;
    gr_describe_groups_response_init(&resp);
    int32_t n = body.groups_count > 0 ? body.groups_count : 0;
    resp.groups = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *resp.groups);
    if (!resp.groups)
        return GR_CLOSE;
    resp.groups_count = n;
    for (int32_t i = 0; i < n; i++) {
        gr_describe_groups_response_described_group *d = &resp.groups[i];
        gr_gc *gc;
        int16_t err;
        gr_coord_slot *s = gr_coordinator_lock(req, body.groups[i], &gc, &err);
        if (s) {
            gr_gc_out o;
            gr_gc_out_init(&o);
            gr_gc_describe(gc, body.groups[i], &req->arena, d);
            gr_coordinator_unlock(s, &o, req);
        } else {
            gr_describe_groups_response_described_group_init(d);
            d->error_code = err;
            d->group_id = body.groups[i];
            d->group_state = d->protocol_type = d->protocol_data = (gr_str){"", 0};
        }
    }
    return gr_describe_groups_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                     : GR_CLOSE;
}

typedef struct {
    gr_request *req;
    const gr_list_groups_request *body;
    gr_list_groups_response_listed_group *groups;
    int32_t count, cap;
    bool failed;
} list_ctx;

static void list_one(void *arg, gr_gc *gc)
{
    list_ctx *l = arg;
    if (!gr_gc_list(gc, l->body, &l->req->arena, &l->groups, &l->count, &l->cap))
        l->failed = true;
}

int gr_handle_list_groups(gr_request *req, gr_writer *out)
{
    gr_list_groups_request body;
    int rc = gr_list_groups_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "ListGroups", rc);
    gr_list_groups_response resp;
    gr_list_groups_response_init(&resp);
    list_ctx l = {.req = req, .body = &body};
    bool loading = false;
    gr_coordinator_each(((gr_broker *)req->ctx)->coordinator, list_one, &l, &loading);
    /* As Kafka: the groups it has, and an error saying some are missing. */
    resp.error_code = l.failed ? GR_UNKNOWN_SERVER_ERROR
                      : loading ? GR_COORDINATOR_LOAD_IN_PROGRESS
                                : GR_NONE;
    resp.groups = l.groups;
    resp.groups_count = l.count;
    return gr_list_groups_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                 : GR_CLOSE;
}

int gr_handle_delete_groups(gr_request *req, gr_writer *out)
{
    gr_delete_groups_request body;
    int rc = gr_delete_groups_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK)
        return gr_coordinator_malformed(req, "DeleteGroups", rc);
    gr_delete_groups_response resp;
    gr_delete_groups_response_init(&resp);
    int32_t n = body.groups_names_count > 0 ? body.groups_names_count : 0;
    resp.results = gr_arena_calloc(&req->arena, n ? (size_t)n : 1, sizeof *resp.results);
    if (!resp.results)
        return GR_CLOSE;
    resp.results_count = n;
    for (int32_t i = 0; i < n; i++) {
        gr_gc *gc;
        int16_t err;
        gr_coord_slot *s = gr_coordinator_lock(req, body.groups_names[i], &gc, &err);
        if (s) {
            gr_gc_out o;
            gr_gc_out_init(&o);
            err = gr_gc_delete_group(gc, body.groups_names[i], gr_coordinator_now_ms(), &o);
            int16_t aerr = gr_coordinator_unlock(s, &o, req);
            if (err == GR_NONE)
                err = aerr;
        }
        resp.results[i].group_id = body.groups_names[i];
        resp.results[i].error_code = err;
    }
    return gr_delete_groups_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}
