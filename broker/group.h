/*
 * group.h - the classic group coordinator as a pure state machine.
 *
 * One gr_gc holds the consumer groups of one partition of
 * __consumer_offsets: their membership, rebalance state and committed
 * offsets. It has no sockets, files, threads or clocks. Inputs are decoded
 * requests plus the current time (now_ms: wall-clock milliseconds since the
 * epoch, because commit timestamps are stored and expire by it) and timer
 * ticks; outputs are
 *   - responses filled in at once (Heartbeat, LeaveGroup, OffsetCommit, ...),
 *   - deferred JoinGroup/SyncGroup answers (gr_gc_reply) that complete
 *     when a rebalance does, possibly on a later call,
 *   - records to persist in __consumer_offsets (gr_offsets_record), and
 *   - the next deadline at which gr_gc_tick wants to run.
 * The shell (broker/coordinator.c) appends the records of a call before it
 * sends any answer of that call, and applies committed offsets and
 * tombstones only once they are in the log (gr_gc_applied): the log is the
 * truth, the memory a cache of it. A group's own metadata record (after a
 * rebalance) describes state already in memory; if it cannot be written the
 * shell turns the replies of that call into errors and tells the core
 * (gr_gc_append_failed), which makes the group rebalance.
 *
 * The protocol is Kafka's classic group protocol (ClassicGroup of Kafka
 * 4.0): states Empty, PreparingRebalance, CompletingRebalance, Stable and
 * Dead; member ids client_id "-" uuid; MEMBER_ID_REQUIRED from JoinGroup
 * v4; static membership (group.instance.id); the initial rebalance delay;
 * rebalance, sync and session timeouts; protocol selection by vote.
 *
 * Invariants
 *   - Every gr_gc_reply handed in (JoinGroup, SyncGroup) comes back exactly
 *     once in some gr_gc_out, with its response filled in; after that the
 *     core never touches it. gr_gc_free hands back every one still waiting.
 *   - A member waits on at most one JoinGroup and one SyncGroup; a second
 *     request replaces the first, which is answered (as Kafka does).
 *   - Strings and bytes of requests are copied; nothing here points into a
 *     request after the call returns. Responses filled at once point into
 *     the caller's arena or into the group state (valid until the next call
 *     on this gr_gc): encode them before unlocking.
 *
 * Not thread-safe: the shell serialises calls on one gr_gc.
 */
#ifndef GR_BROKER_GROUP_H
#define GR_BROKER_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/offsets_log.h"
#include "common/buf.h"
#include "proto/messages.h"

#define GR_GC_NO_DEADLINE INT64_MAX

/* The most protocols (assignors) one member may offer. Clients offer a
 * handful; the cap bounds the work of protocol selection, which a member
 * offering thousands could otherwise make quadratic in them while holding
 * its partition's lock. More is answered INCONSISTENT_GROUP_PROTOCOL
 * (Kafka has no such cap). */
#define GR_GC_MAX_PROTOCOLS 64

typedef struct {
    int32_t min_session_timeout_ms;     /* group.min.session.timeout.ms */
    int32_t max_session_timeout_ms;     /* group.max.session.timeout.ms */
    int32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
    int32_t max_size;                   /* group.max.size */
    int32_t offset_metadata_max_bytes;  /* offset.metadata.max.bytes */
    int64_t offsets_retention_ms;       /* offsets.retention.minutes, in ms */
    int64_t retention_check_interval_ms; /* offsets.retention.check.interval.ms */
    /* The most bytes of protocol metadata one member may offer. A group's
     * metadata must fit in one record of __consumer_offsets; Kafka finds
     * out only when it stores the group and fails the whole generation
     * with UNKNOWN_SERVER_ERROR. Here the member that brings too much is
     * refused at JoinGroup with that code, and the others never see it. */
    int32_t max_member_metadata_bytes;
    /* How long a member that joined waits for its first generation before
     * it is removed (KIP-394; Kafka's fixed 5 minutes, not a broker
     * config there either). */
    int32_t new_member_join_timeout_ms;
    /* Fills buf with n random bytes (member ids). */
    void (*random)(void *ctx, uint8_t *buf, size_t n);
    void *random_ctx;
} gr_gc_config;

/* Kafka's defaults; random must still be set. */
void gr_gc_config_defaults(gr_gc_config *c);

/* A deferred JoinGroup or SyncGroup answer. The shell allocates it (it must
 * live until it comes back), initialises it with gr_gc_reply_init and
 * passes it in; the core fills join or sync (strings in arena) and hands
 * it back through a gr_gc_out. */
typedef struct gr_gc_reply {
    struct gr_gc_reply *next; /* link in a gr_gc_out */
    void *waiter;             /* the shell's; untouched here */
    bool is_sync;             /* SyncGroup, else JoinGroup */
    int16_t version;          /* of the request */
    gr_arena arena;           /* what the response points to */
    gr_join_group_response join;
    gr_sync_group_response sync;
} gr_gc_reply;

void gr_gc_reply_init(gr_gc_reply *r, bool is_sync, int16_t version, void *waiter);
/* Frees what the response points to (after encoding it). */
void gr_gc_reply_release(gr_gc_reply *r);

/* The effects of one call: replies to send (after the records are in the
 * log) and records to append, in order. */
typedef struct {
    gr_gc_reply *replies, **replies_tail;
    gr_offsets_record *records;
    size_t nrecords, cap;
    gr_arena arena; /* strings of the records */
    bool failed;    /* a record could not be built (allocation): treat as an append error */
    /* The records do not depend on each other (timer work: expiry and
     * timeouts, Kafka's non-atomic writes): the shell may write them in
     * several batches, so that their sum exceeding one batch of the log
     * does not stop them all for good. */
    bool split;
} gr_gc_out;

void gr_gc_out_init(gr_gc_out *o);
/* Frees the records (not the replies, which belong to the shell). */
void gr_gc_out_free(gr_gc_out *o);

typedef struct gr_gc gr_gc;

/* NULL on allocation failure. cfg is copied. */
gr_gc *gr_gc_new(const gr_gc_config *cfg);
/* Hands every waiting reply back into out, answered with err (for example
 * NOT_COORDINATOR when leadership moved), and frees everything. */
void gr_gc_free(gr_gc *gc, int16_t err, gr_gc_out *out);

/* While loading, every request is answered COORDINATOR_LOAD_IN_PROGRESS. */
void gr_gc_set_loading(gr_gc *gc, bool loading);
bool gr_gc_loading(const gr_gc *gc);

/* ---- loading ---- */

/* Applies one record read back from the log (offsets, group metadata,
 * tombstones). Returns false on allocation failure. */
bool gr_gc_replay(gr_gc *gc, const gr_offsets_record *rec);
/* After the last record: loaded members get a full session from now. */
void gr_gc_load_done(gr_gc *gc, int64_t now_ms);

/* After the records of out were appended: applies its offsets and
 * tombstones (group metadata records are already in memory). */
void gr_gc_applied(gr_gc *gc, const gr_gc_out *out);

/* After the records of a call could not be appended (the shell answers
 * that call's JoinGroup and SyncGroup replies with the error): a group
 * whose new assignment was among them drops it and rebalances, as Kafka's
 * coordinator does when it cannot store a generation's assignment. Effects
 * (replies, records) go into out. */
void gr_gc_append_failed(gr_gc *gc, int64_t now_ms, gr_gc_out *out);

/* ---- the group protocol ---- */

/* JoinGroup. reply is answered now or when the rebalance completes. */
void gr_gc_join(gr_gc *gc, const gr_join_group_request *req, const char *client_id,
                const char *client_host, gr_gc_reply *reply, int64_t now_ms, gr_gc_out *out);
/* SyncGroup. reply is answered now or when the leader's assignment comes. */
void gr_gc_sync(gr_gc *gc, const gr_sync_group_request *req, gr_gc_reply *reply,
                int64_t now_ms, gr_gc_out *out);
/* Heartbeat: the error code to answer. */
int16_t gr_gc_heartbeat(gr_gc *gc, const gr_heartbeat_request *req, int64_t now_ms,
                        gr_gc_out *out);
/* LeaveGroup of any version (v0-2 as one member): fills resp (member
 * answers allocated from a, v0-2 folded into the top-level error). */
void gr_gc_leave(gr_gc *gc, const gr_leave_group_request *req, int16_t version, int64_t now_ms,
                 gr_arena *a, gr_leave_group_response *resp, gr_gc_out *out);

/* ---- offsets ---- */

/* OffsetCommit: validates, fills resp's per-partition errors and puts the
 * records to append into out. Nothing is applied until gr_gc_applied. */
void gr_gc_commit(gr_gc *gc, const gr_offset_commit_request *req, int16_t version,
                  int64_t now_ms, gr_arena *a, gr_offset_commit_response *resp, gr_gc_out *out);
/* The answer of an OffsetCommit with every partition failed with err
 * (when no coordinator can take it). false on allocation failure. */
bool gr_gc_commit_answer(const gr_offset_commit_request *req, gr_arena *a,
                         gr_offset_commit_response *resp, int16_t err);
/* OffsetFetch of one group (the v8+ shape; the shell folds older
 * versions into it). A NULL topics list (topics_count < 0 or topics NULL
 * with require_all) asks for every committed offset. */
void gr_gc_fetch(gr_gc *gc, const gr_offset_fetch_request_group *req, bool all_topics,
                 gr_arena *a, gr_offset_fetch_response_group *resp);
/* OffsetDelete: fills resp, tombstones into out. */
void gr_gc_offset_delete(gr_gc *gc, const gr_offset_delete_request *req, int64_t now_ms,
                         gr_arena *a, gr_offset_delete_response *resp, gr_gc_out *out);

/* ---- administration ---- */

void gr_gc_describe(gr_gc *gc, gr_str group, gr_arena *a,
                    gr_describe_groups_response_described_group *out);
/* Appends this gc's groups that pass the filters to *groups (grown from a).
 * Returns false on allocation failure. */
bool gr_gc_list(gr_gc *gc, const gr_list_groups_request *req, gr_arena *a,
                gr_list_groups_response_listed_group **groups, int32_t *count, int32_t *cap);
/* DeleteGroups of one group: the error to answer; tombstones into out. */
int16_t gr_gc_delete_group(gr_gc *gc, gr_str group, int64_t now_ms, gr_gc_out *out);

/* ---- time ---- */

/* Runs every timer due at now_ms: rebalance delays and timeouts, sync and
 * session timeouts, offset expiry. */
void gr_gc_tick(gr_gc *gc, int64_t now_ms, gr_gc_out *out);
/* When gr_gc_tick next has work (GR_GC_NO_DEADLINE: none), or earlier:
 * a deadline that moved later is noticed only by the next tick, which
 * then does nothing and makes the answer exact again. O(1). */
int64_t gr_gc_next_deadline(const gr_gc *gc);

/* The state name Kafka uses ("Stable", ...); "Dead" for an unknown group.
 * For tests and tools. */
const char *gr_gc_group_state(const gr_gc *gc, gr_str group);
/* How many groups this gc holds. */
size_t gr_gc_group_count(const gr_gc *gc);

#endif
