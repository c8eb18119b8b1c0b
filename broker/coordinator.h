/*
 * coordinator.h - the group coordinator's shell: it drives the pure state
 * machines of broker/group.h with threads, timers and the log.
 *
 * One slot per partition of __consumer_offsets. A slot whose partition
 * this broker leads holds a gr_gc; the others hold nothing and requests
 * for their groups are answered NOT_COORDINATOR. Which slot a group
 * belongs to is Kafka's gr_coordinator_partition over the partition count
 * of __consumer_offsets in the metadata image.
 *
 * Threads and locks. Handlers run on the network threads; each slot has a
 * mutex that serialises every call into its gr_gc, the append of that
 * call's records and the re-arming of its timer. Deferred JoinGroup and
 * SyncGroup answers are encoded and completed on their own request's
 * connection thread (event_base_once on the event base the request came
 * from); the answers of the calling request complete inline. Timers run on
 * the main loop. Leadership changes come from the replica manager's sync
 * hook on the main loop: a partition gained is loaded by a background
 * thread (the slot answers COORDINATOR_LOAD_IN_PROGRESS meanwhile; a load
 * that fails is retried after a backoff of 100 ms doubling up to 10 s), a
 * partition lost drops its groups and answers their waiting members
 * NOT_COORDINATOR.
 *
 * Persistence. The records a call produces are appended to the partition
 * with gr_offsets_append under the slot's lock, before any answer of that
 * call leaves; committed offsets and tombstones are applied to memory only
 * once appended (gr_gc_applied). Without follower replication the append
 * is acknowledged once it is in the local log, and loading reads up to the
 * log end offset.
 */
#ifndef GR_BROKER_COORDINATOR_H
#define GR_BROKER_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/group.h"
#include "common/netserver.h"

struct event_base;
struct gr_broker;
typedef struct gr_coordinator gr_coordinator;
typedef struct gr_coord_slot gr_coord_slot;

/* Hooks itself into b->replicas; timers run on base (the main loop).
 * NULL (logged) on failure. */
gr_coordinator *gr_coordinator_new(struct gr_broker *b, struct event_base *base);
/* At shutdown, on the main loop while the network threads still run:
 * drops every group, answering waiting members NOT_COORDINATOR, and waits
 * (at most 5 s) until every JoinGroup and SyncGroup answer it owes has
 * completed on its connection's thread, so that none is left pending
 * when those threads stop. */
void gr_coordinator_stop(gr_coordinator *c);
/* After the network threads have stopped. */
void gr_coordinator_free(gr_coordinator *c);

/* Wall-clock milliseconds: the core's clock. */
int64_t gr_coordinator_now_ms(void);

/* Locks the slot of the request's broker coordinating group and gives its
 * gr_gc, or NULL with *err set (NOT_COORDINATOR, or
 * COORDINATOR_NOT_AVAILABLE when the broker has no coordinator or
 * __consumer_offsets does not exist). */
gr_coord_slot *gr_coordinator_lock(gr_request *req, gr_str group, gr_gc **gc, int16_t *err);

/* Appends out's records, applies them, re-arms the slot's timer, unlocks
 * and delivers out's replies (self's inline). Returns 0, or the error the
 * append failed with, mapped for an offsets operation
 * (gr_coordinator_append_error(err, false)); the JoinGroup and SyncGroup
 * replies of a failed call carry it mapped for a group's members. Frees
 * out. */
int16_t gr_coordinator_unlock(gr_coord_slot *s, gr_gc_out *out, gr_request *self);

/* Kafka's mapping of an append error of __consumer_offsets to the answer:
 * for a group's metadata record (the members of a rebalance; records too
 * large are UNKNOWN_SERVER_ERROR) or for offsets (OffsetCommit and the
 * deletions; records too large are INVALID_COMMIT_OFFSET_SIZE). Either way
 * a lost leadership or a storage error is NOT_COORDINATOR and a missing
 * partition or too few replicas COORDINATOR_NOT_AVAILABLE. */
int16_t gr_coordinator_append_error(int16_t err, bool group_metadata);

/* Calls fn on every slot of c (NULL: none) holding groups, locked; loading says whether one
 * is still loading (then fn is not called for it). */
void gr_coordinator_each(gr_coordinator *c, void (*fn)(void *ctx, gr_gc *gc), void *ctx,
                         bool *loading);

/* A deferred answer living in req's arena, to hand to gr_gc_join/sync. */
gr_gc_reply *gr_coordinator_waiter(gr_request *req, bool is_sync);

/* Answers a waiter at once with err (no group involved), completing req. */
void gr_coordinator_fail(gr_gc_reply *r, int16_t err, gr_str member_id);

/* "/host" of the request's peer, as Kafka shows a member's client host;
 * and its client id ("" if none). Both live in req's arena. */
const char *gr_coordinator_client_host(gr_request *req);
const char *gr_coordinator_client_id(gr_request *req);

/* A request body that did not decode: logs why and answers GR_CLOSE. */
int gr_coordinator_malformed(gr_request *req, const char *api, int rc);

#endif
