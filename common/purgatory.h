/*
 * purgatory.h - delayed operations: requests that wait for an event or a
 * deadline, whichever comes first (Kafka's "purgatory").
 *
 * Produce with acks=all waits until the high watermark of every partition it
 * wrote passes its last offset; Fetch with min_bytes waits until enough data
 * has been appended or max_wait_ms has passed. Both are delayed operations:
 *
 *   - the owner embeds a gr_delayed_op in its own request struct and
 *     supplies two callbacks;
 *   - gr_purgatory_watch() asks the op once whether it can complete now, and
 *     if not stores it under its watch keys (one per partition) and its
 *     deadline;
 *   - when something happens on a key (an append, a high watermark move),
 *     gr_purgatory_check(key) asks only the ops watching that key; those that
 *     can complete are removed from all their keys and completed;
 *   - a timer armed at gr_purgatory_next_deadline() calls
 *     gr_purgatory_expire(now), which completes every op whose deadline has
 *     passed, with what it has.
 *
 * Callbacks. try_complete(op, now) answers "can you complete now?"; it may
 * compute and keep the answer in the op (a fetch gathers its partitions), but
 * it must not free the op or send the response. on_complete(op, now, cause)
 * is called exactly once per watched op, after the purgatory has dropped
 * every reference to it: the owner sends the response there and may free the
 * op. The exactly-once rule is the purgatory's, not the owner's: an op is in
 * one state at a time (idle, watching, being asked, done) and only the
 * transition to done calls on_complete.
 *
 * Re-entrancy. From inside either callback the owner may call
 * gr_purgatory_watch, gr_purgatory_check (on any key, including the one being
 * checked) and gr_purgatory_cancel (on any op except the one being asked).
 * An op already being asked higher up the stack is skipped by nested checks,
 * so no op is asked twice at once or completed twice; ops added during a
 * check are not visited by that check (they were asked when watched).
 * gr_purgatory_expire and gr_purgatory_free must not be called from a
 * callback (asserted): expiry is the timer's job, at the top of the stack.
 *
 * Keys are opaque 64-bit values. Two partitions sharing a key is harmless
 * (their ops are asked once more than needed), so the caller may hash;
 * gr_purgatory_key() does so for (topic id, partition).
 *
 * Cost: check(key) touches only the ops watching key (a hash map from key to
 * an intrusive list); an op watching N keys is linked and unlinked in O(N);
 * deadlines live in a binary min-heap, so expiry is O(log n) per expired op
 * and next_deadline is O(1). Memory is proportional to what is watched: an
 * empty key's entry is freed, and the tables shrink as they empty.
 *
 * Threads: none. The module is pure (no clock: "now" is an argument; no I/O;
 * no locks). The intended use is one purgatory per network thread, each
 * thread completing its own requests, so nothing here is shared.
 *
 * Ownership: the op belongs to the caller; the purgatory never frees it and
 * holds no reference to it once it is completed, expired or cancelled.
 */
#ifndef GR_PURGATORY_H
#define GR_PURGATORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct gr_purgatory gr_purgatory;
typedef struct gr_delayed_op gr_delayed_op;
typedef struct gr_pwatch gr_pwatch; /* private: one (op, key) link */

/* Why on_complete was called. */
typedef enum {
    GR_DELAYED_COMPLETED = 0, /* try_complete said yes (at watch time or on a check) */
    GR_DELAYED_EXPIRED = 1,   /* the deadline passed: complete with what there is */
} gr_delayed_cause;

typedef bool (*gr_delayed_try_fn)(gr_delayed_op *op, int64_t now_ms);
typedef void (*gr_delayed_done_fn)(gr_delayed_op *op, int64_t now_ms, gr_delayed_cause cause);

/* Embed in the request struct; recover the outer struct with offsetof. */
struct gr_delayed_op {
    gr_delayed_try_fn try_complete;
    gr_delayed_done_fn on_complete;
    /* Private to the purgatory. */
    gr_purgatory *owner;
    gr_pwatch *watches;  /* nwatches links, one per distinct key */
    uint32_t nwatches;
    uint8_t state;
    size_t heap_pos;
    int64_t deadline_ms;
    uint64_t seq;        /* watch order: ties between equal deadlines expire first-in first */
};

/* No op waiting: what gr_purgatory_next_deadline returns when empty. */
#define GR_PURGATORY_NO_DEADLINE INT64_MAX

/* Results of gr_purgatory_watch. */
enum {
    GR_PURGATORY_WATCHING = 0,   /* stored; on_complete comes later */
    GR_PURGATORY_DONE = 1,       /* completed at once; on_complete has run */
    GR_PURGATORY_ENOMEM = -1,    /* not stored, no callback run: complete it yourself */
};

typedef struct {
    size_t watched;      /* ops waiting */
    size_t keys;         /* distinct keys with at least one op waiting */
    size_t watches;      /* (op, key) links */
    uint64_t completed;  /* since creation: completed by try_complete */
    uint64_t expired;    /* since creation: completed by their deadline */
    uint64_t cancelled;  /* since creation: removed by gr_purgatory_cancel */
} gr_purgatory_stats;

/* Prepares an op (once, or again to reuse it after it is done). */
void gr_delayed_op_init(gr_delayed_op *op, gr_delayed_try_fn try_complete,
                        gr_delayed_done_fn on_complete);

/* True while the op is stored in a purgatory (watched, not yet done). */
bool gr_delayed_op_pending(const gr_delayed_op *op);

/* NULL when out of memory. */
gr_purgatory *gr_purgatory_new(void);

/* Frees the purgatory. Ops still watched get no callback and are reset to
 * idle (so they must still be valid memory; the caller cancels them first if
 * it is about to free them). Not from inside a callback. */
void gr_purgatory_free(gr_purgatory *p);

/* Asks the op once (try_complete); if it completes, on_complete runs and
 * GR_PURGATORY_DONE is returned. Otherwise stores it under each of the
 * keys (duplicates in keys count once) until deadline_ms and returns
 * GR_PURGATORY_WATCHING. The op must have been initialised and not be
 * pending. nkeys may be 0 (the op then waits for its deadline only). */
int gr_purgatory_watch(gr_purgatory *p, gr_delayed_op *op, const uint64_t *keys, size_t nkeys,
                       int64_t deadline_ms, int64_t now_ms);

/* Something happened on key: asks each op watching it, in the order they
 * were watched, and completes those that say yes (removing them from all
 * their keys first). Returns how many completed. */
size_t gr_purgatory_check(gr_purgatory *p, uint64_t key, int64_t now_ms);

/* Completes with GR_DELAYED_EXPIRED every op whose deadline is <= now_ms,
 * earliest deadline first (equal deadlines in watch order). Returns how many. */
size_t gr_purgatory_expire(gr_purgatory *p, int64_t now_ms);

/* The earliest deadline of a watched op, or GR_PURGATORY_NO_DEADLINE. O(1). */
int64_t gr_purgatory_next_deadline(const gr_purgatory *p);

/* Removes a pending op without calling back (the client went away). Returns
 * false, doing nothing, if the op is not pending here. The op must not be the
 * one whose try_complete is running (asserted). */
bool gr_purgatory_cancel(gr_purgatory *p, gr_delayed_op *op);

size_t gr_purgatory_watched(const gr_purgatory *p);
size_t gr_purgatory_keys(const gr_purgatory *p);
void gr_purgatory_get_stats(const gr_purgatory *p, gr_purgatory_stats *out);

/* A watch key for (topic id, partition). Topic ids are random (v4 uuids), so
 * folding them is a good hash; a collision only costs an extra question. */
static inline uint64_t gr_purgatory_key(const gr_uuid *topic_id, int32_t partition)
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = (hi << 8) | topic_id->b[i];
        lo = (lo << 8) | topic_id->b[8 + i];
    }
    uint64_t x = hi ^ (lo * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(uint32_t)partition << 1);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return x;
}

#endif
