/*
 * api.c - what the controller serves, and how a decision becomes an answer.
 *
 * Raft's own APIs go to the quorum shell. Every other API is a decision of
 * controller/control on the latest image: its response, and at most one
 * entry of records. With no entry the answer leaves at once; with one, the
 * entry is proposed, applied to the latest image, and the request waits
 * (GR_PENDING) until the committed image has applied it.
 */
#include <stdlib.h>
#include <time.h>

#include "common/api_versions.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/mdentry.h"
#include "controller/controller.h"

#define SUB "controller"

struct gr_waiter {
    gr_waiter *next;
    int64_t offset; /* answered once the committed image has applied this */
    gr_request *req;
    void *resp;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int encode_now(gr_request *req, const void *resp, gr_writer *out)
{
    return gr_response_encode(req->api_key, req->api_version, resp, out) == GR_OK ? GR_HANDLED
                                                                                : GR_CLOSE;
}

/* Answers every waiter whose entry the committed image has applied. */
static void release_waiters(gr_controller *c)
{
    int64_t applied = gr_quorum_applied(c->quorum);
    gr_waiter **pp = &c->waiters;
    while (*pp) {
        gr_waiter *w = *pp;
        if (w->offset >= applied) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        gr_request_complete(w->req, encode_now(w->req, w->resp, &w->req->out));
        free(w);
    }
}

/* Proposes an entry (if the decision made one) and answers or parks req. */
static int finish(gr_controller *c, gr_request *req, void *resp, gr_writer *entry,
                  gr_writer *out)
{
    if (entry->len == 0) {
        gr_writer_free(entry);
        return encode_now(req, resp, out);
    }
    int64_t offset;
    int rc = gr_quorum_propose(c->quorum, entry->p, entry->len, &offset);
    if (rc != GR_RAFT_OK) {
        gr_writer_free(entry);
        GR_WARN(SUB, "node %d cannot propose: %s", c->node_id, gr_raft_err_str(rc));
        return GR_CLOSE;
    }
    if (c->latest && gr_mdentry_apply(c->latest, entry->p, entry->len, offset,
                                      gr_quorum_epoch(c->quorum)) != 0)
        GR_ERROR(SUB, "entry %lld does not apply to the latest image", (long long)offset);
    gr_writer_free(entry);
    if (gr_quorum_applied(c->quorum) > offset) /* a one-voter quorum commits at once */
        return encode_now(req, resp, out);
    gr_waiter *w = malloc(sizeof *w);
    if (!w)
        return GR_CLOSE;
    *w = (gr_waiter){c->waiters, offset, req, resp};
    c->waiters = w;
    return GR_PENDING;
}

/* Requests only the active controller may decide: others close, and the
 * broker finds the leader again through the quorum. */
static bool not_active(gr_controller *c, gr_request *req)
{
    if (c->active)
        return false;
    GR_INFO(SUB, "node %d is not the active controller: %s from %s refused", c->node_id,
            gr_api_lookup(req->api_key)->name, req->peer);
    return true;
}

#define DECODE(type, var)                                                                          \
    type var;                                                                                      \
    if (type##_decode(&var, &req->body, req->api_version, &req->arena) != GR_OK)                   \
    return GR_CLOSE

static int handle_raft(gr_request *req, gr_writer *out)
{
    gr_controller *c = req->ctx;
    return gr_quorum_handle(c->quorum, req, out);
}

static int handle_broker_registration(gr_request *req, gr_writer *out)
{
    gr_controller *c = req->ctx;
    DECODE(gr_broker_registration_request, body);
    gr_broker_registration_response *resp = gr_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return GR_CLOSE;
    gr_broker_registration_response_init(resp);
    if (!c->active) {
        resp->error_code = GR_NOT_CONTROLLER;
        return encode_now(req, resp, out);
    }
    gr_writer entry;
    gr_writer_init(&entry, 0);
    gr_control_register_broker(c->control, &body, gr_quorum_end_offset(c->quorum), mono_ms(),
                               &req->arena, resp, &entry);
    return finish(c, req, resp, &entry, out);
}

static int handle_broker_heartbeat(gr_request *req, gr_writer *out)
{
    gr_controller *c = req->ctx;
    DECODE(gr_broker_heartbeat_request, body);
    gr_broker_heartbeat_response *resp = gr_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return GR_CLOSE;
    gr_broker_heartbeat_response_init(resp);
    if (!c->active) {
        resp->error_code = GR_NOT_CONTROLLER;
        return encode_now(req, resp, out);
    }
    gr_writer entry;
    gr_writer_init(&entry, 0);
    gr_control_heartbeat(c->control, &body, mono_ms(), resp, &entry);
    return finish(c, req, resp, &entry, out);
}

static int handle_unregister_broker(gr_request *req, gr_writer *out)
{
    gr_controller *c = req->ctx;
    DECODE(gr_unregister_broker_request, body);
    gr_unregister_broker_response *resp = gr_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return GR_CLOSE;
    gr_unregister_broker_response_init(resp);
    if (!c->active) {
        resp->error_code = GR_NOT_CONTROLLER;
        return encode_now(req, resp, out);
    }
    gr_writer entry;
    gr_writer_init(&entry, 0);
    gr_control_unregister_broker(c->control, &body, &req->arena, resp, &entry);
    return finish(c, req, resp, &entry, out);
}

/* The admin APIs: one decision function each, the same path around it. */
#define ADMIN_HANDLER(name, reqtype, resptype, call)                                               \
    static int name(gr_request *req, gr_writer *out)                                               \
    {                                                                                              \
        gr_controller *c = req->ctx;                                                               \
        if (not_active(c, req))                                                                    \
            return GR_CLOSE;                                                                       \
        DECODE(reqtype, body);                                                                     \
        resptype *resp = gr_arena_alloc(&req->arena, sizeof *resp);                                \
        if (!resp)                                                                                 \
            return GR_CLOSE;                                                                       \
        resptype##_init(resp);                                                                     \
        gr_writer entry;                                                                           \
        gr_writer_init(&entry, 0);                                                                 \
        call(c->control, &body, req->api_version, &req->arena, resp, &entry);                      \
        return finish(c, req, resp, &entry, out);                                                  \
    }

ADMIN_HANDLER(handle_create_topics, gr_create_topics_request, gr_create_topics_response,
              gr_control_create_topics)
ADMIN_HANDLER(handle_delete_topics, gr_delete_topics_request, gr_delete_topics_response,
              gr_control_delete_topics)
ADMIN_HANDLER(handle_create_partitions, gr_create_partitions_request,
              gr_create_partitions_response, gr_control_create_partitions)
ADMIN_HANDLER(handle_incremental_alter_configs, gr_incremental_alter_configs_request,
              gr_incremental_alter_configs_response, gr_control_incremental_alter_configs)
ADMIN_HANDLER(handle_alter_configs, gr_alter_configs_request, gr_alter_configs_response,
              gr_control_alter_configs)

static int handle_describe_configs(gr_request *req, gr_writer *out)
{
    gr_controller *c = req->ctx;
    if (not_active(c, req))
        return GR_CLOSE;
    DECODE(gr_describe_configs_request, body);
    gr_describe_configs_response resp;
    gr_describe_configs_response_init(&resp);
    gr_control_describe_configs(c->control, &body, req->api_version, &req->arena, &resp);
    return encode_now(req, &resp, out);
}

static const gr_api_handler handlers[] = {
    {GR_API_FETCH, 12, 17, handle_raft},
    {GR_API_CREATE_TOPICS, 2, 7, handle_create_topics},
    {GR_API_DELETE_TOPICS, 1, 6, handle_delete_topics},
    {GR_API_DESCRIBE_CONFIGS, 1, 4, handle_describe_configs},
    {GR_API_ALTER_CONFIGS, 0, 2, handle_alter_configs},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
    {GR_API_CREATE_PARTITIONS, 0, 3, handle_create_partitions},
    {GR_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, handle_incremental_alter_configs},
    {GR_API_VOTE, 0, 2, handle_raft},
    {GR_API_BEGIN_QUORUM_EPOCH, 0, 1, handle_raft},
    {GR_API_END_QUORUM_EPOCH, 0, 1, handle_raft},
    {GR_API_DESCRIBE_QUORUM, 0, 2, handle_raft},
    {GR_API_FETCH_SNAPSHOT, 0, 1, handle_raft},
    {GR_API_BROKER_REGISTRATION, 0, 4, handle_broker_registration},
    {GR_API_BROKER_HEARTBEAT, 0, 1, handle_broker_heartbeat},
    {GR_API_UNREGISTER_BROKER, 0, 0, handle_unregister_broker},
};

const gr_api_table gr_controller_apis = {handlers, sizeof handlers / sizeof handlers[0]};

/* ---- activation ---- */

static const char *static_config(void *ctx, const char *key)
{
    gr_controller *c = ctx;
    return gr_config_original(c->config, key);
}

static void activate(gr_controller *c)
{
    gr_writer w;
    gr_writer_init(&w, 4096);
    c->latest = gr_metadata_image_to_entry(c->sm.img, &w) == 0
                    ? gr_metadata_image_from_entry(w.p, w.len)
                    : NULL;
    gr_writer_free(&w);
    gr_control_config cc;
    gr_control_config_defaults(&cc);
    cc.num_partitions = gr_config_int(c->config, "num.partitions");
    cc.default_replication_factor = (int16_t)gr_config_int(c->config, "default.replication.factor");
    cc.session_timeout_ms = gr_config_int(c->config, "broker.session.timeout.ms");
    cc.cluster_id = c->cluster_id;
    cc.seed = (uint64_t)mono_ms() * 2654435761u ^ (uint64_t)c->node_id;
    cc.static_config = static_config;
    cc.static_ctx = c;
    if (!c->latest || !(c->control = gr_control_new(c->latest, &cc)) ||
        gr_control_activate(c->control, mono_ms()) != 0) {
        GR_ERROR(SUB, "node %d cannot become the active controller", c->node_id);
        gr_controller_deactivate(c);
        return;
    }
    c->active = true;
    GR_INFO(SUB, "node %d is the active controller in epoch %d", c->node_id,
            gr_quorum_epoch(c->quorum));
}

void gr_controller_deactivate(gr_controller *c)
{
    if (c->active)
        GR_INFO(SUB, "node %d is no longer the active controller", c->node_id);
    c->active = false;
    c->activation_offset = -1;
    gr_control_free(c->control);
    c->control = NULL;
    gr_metadata_image_free(c->latest);
    c->latest = NULL;
    /* Entries that were proposed may still commit, but this node cannot
     * tell the requester: closing makes it retry with the new leader. */
    while (c->waiters) {
        gr_waiter *w = c->waiters;
        c->waiters = w->next;
        gr_request_complete(w->req, GR_CLOSE);
        free(w);
    }
}

void gr_controller_applied(void *ctx, int64_t offset)
{
    (void)offset;
    release_waiters(ctx);
}

void gr_controller_reloaded(void *ctx) { (void)ctx; }

void gr_controller_role(void *ctx, gr_raft_role role, int32_t epoch, int32_t leader_id)
{
    (void)epoch;
    (void)leader_id;
    gr_controller *c = ctx;
    if (role == GR_RAFT_LEADER) {
        if (!c->active && c->activation_offset < 0)
            /* Decide nothing until every entry of earlier epochs is applied. */
            c->activation_offset = gr_quorum_end_offset(c->quorum);
    } else {
        gr_controller_deactivate(c);
    }
}

void gr_controller_tick(gr_controller *c)
{
    release_waiters(c);
    if (!c->active && c->activation_offset >= 0 &&
        gr_quorum_applied(c->quorum) >= c->activation_offset)
        activate(c);
    if (!c->active)
        return;
    gr_writer entry;
    gr_writer_init(&entry, 0);
    int32_t fenced = 0;
    gr_control_tick(c->control, mono_ms(), &entry, &fenced);
    if (entry.len > 0) {
        int64_t offset;
        if (gr_quorum_propose(c->quorum, entry.p, entry.len, &offset) == GR_RAFT_OK)
            gr_mdentry_apply(c->latest, entry.p, entry.len, offset, gr_quorum_epoch(c->quorum));
        if (fenced)
            GR_INFO(SUB, "fenced %d broker(s) whose sessions expired", fenced);
    }
    gr_writer_free(&entry);
}
