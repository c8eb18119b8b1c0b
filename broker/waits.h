/*
 * waits.h - one purgatory (common/purgatory.h) per network thread, and the
 * wake-ups that reach it from other threads.
 *
 * A request that must wait (a long-poll fetch, an acks=all produce) is
 * watched in the purgatory of the thread its connection lives on, found by
 * that thread's event base. A thread's purgatory is made on its first
 * watch and freed as soon as nothing waits in it, so an idle broker holds
 * none; while it lives it has one libevent timer, armed at the earliest
 * deadline, and one event through which other threads wake it.
 *
 * Appends and high watermark moves happen on other threads (a producer's
 * connection, the main loop). gr_waits_notify(key) queues the key on every
 * live purgatory and activates its wake event (thread-safe: the broker
 * enables libevent's locking); the owning thread then checks each queued
 * key. Notices to one thread coalesce until it runs: a burst of appends
 * costs it one wake-up. Telling every thread rather than only those that
 * watch the key costs one lock and one queued key per thread per append,
 * which is cheap at today's thread counts; a per-thread summary of watched
 * keys would trim it.
 *
 * Threads: gr_waits_watch only on the thread running base; gr_waits_notify
 * and gr_waits_wake_all from any thread. Callbacks of watched ops run on the
 * owning thread, from the purgatory (see its re-entrancy rules; an op may
 * watch again or start new watches from inside them).
 */
#ifndef GR_BROKER_WAITS_H
#define GR_BROKER_WAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/purgatory.h"

struct event_base;
struct gr_partition;
struct gr_replica_mgr;

/* Monotonic milliseconds: the clock of every deadline here. */
int64_t gr_waits_now_ms(void);

/* Watches op on the purgatory of base's thread until deadline_ms (see
 * gr_purgatory_watch for keys and results). On GR_PURGATORY_ENOMEM nothing
 * was stored and no callback ran: the caller completes the op itself. */
int gr_waits_watch(struct event_base *base, gr_delayed_op *op, const uint64_t *keys,
                   size_t nkeys, int64_t deadline_ms);

/* Removes op, watched on base's purgatory, without calling back (its client
 * went away); on base's thread. False when op is not waiting there (it is
 * being completed, or done): its on_complete is then the one to finish it. */
bool gr_waits_cancel(struct event_base *base, gr_delayed_op *op);

/* Something happened on key (any thread): every purgatory checks it soon. */
void gr_waits_notify(uint64_t key);

/* Shutdown (any thread): every op waiting anywhere completes soon, as if its
 * deadline had passed. Ops watched afterwards are the watcher's business
 * (a fetch does not wait once the replica manager is stopping). */
void gr_waits_wake_all(void);

/* Parks op, a request waiting on partitions of m, on the purgatory of
 * base's thread until deadline_ms: installs the wait hook below on m,
 * counts the request in (gr_replica_wait_begin) and watches it. The op's
 * on_complete must count it out (gr_replica_wait_end) after completing.
 * On GR_PURGATORY_ENOMEM nothing is counted or stored and the caller
 * answers at once; otherwise the request is answered by on_complete,
 * perhaps already. A stop of m that began meanwhile still reaches it. */
int gr_waits_park(struct event_base *base, struct gr_replica_mgr *m, gr_delayed_op *op,
                  const uint64_t *keys, size_t nkeys, int64_t deadline_ms);

/* The replica manager's wait hook (replica.h) for every request waiting
 * here (fetches, produces): a change on a partition notifies its watch key,
 * gr_purgatory_key(topic id, index); NULL (shutdown) wakes everything. */
void gr_waits_partition_hook(const struct gr_partition *p);

#endif
