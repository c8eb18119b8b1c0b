/*
 * fetch_session.h - the broker's cache of incremental fetch sessions
 * (KIP-227).
 *
 * A fetcher (a consumer, or a follower replica) that sends a full fetch
 * with session epoch 0 may be given a session: the broker remembers the
 * partitions it fetched, with their fetch offsets and what the last answer
 * told it about each (high watermark, last stable offset, log start
 * offset). Its next fetches are incremental: they name only the partitions
 * whose fetch parameters changed (and those to forget), and the answers
 * name only the partitions with something new to say. For a follower of
 * thousands of partitions this turns every fetch from thousands of entries
 * each way into a handful.
 *
 * The module is a pure core: no sockets, no clock (every call that needs
 * the time takes now_ms, any monotonic milliseconds), no logs read. The
 * Fetch handler (api_fetch.c) drives it:
 *
 *   gr_fsess_remove       a full fetch naming a session closes it;
 *   gr_fsess_create       a full fetch with epoch 0, once answered, opens a
 *                         session of what it answered (0 when no room);
 *   gr_fsess_incremental  an incremental fetch: checks id, epoch, kind and
 *                         naming, applies the request's changes, advances
 *                         the epoch and hands back the session's partitions
 *                         in answer order (or, with apply false, only shows
 *                         what they would be: the long poll's view);
 *   gr_fsess_answered     once those partitions are read: which of them the
 *                         answer carries, remembering what it says.
 *
 * Cache bound (max.incremental.fetch.session.cache.slots) and eviction
 * (min.incremental.fetch.session.eviction.ms), as Kafka: a new session
 * takes a free slot; with none free it first evicts the session unused for
 * longest if that one has been idle longer than the eviction time; else
 * the least valuable of the sessions made more than the eviction time ago
 * (when the newcomer is a follower, also of the consumer sessions of any
 * age), if it is worth less than the newcomer. Value orders follower over
 * consumer, then more partitions over fewer; a tie keeps the old session.
 * Otherwise no session is made and the fetch is answered sessionless (id
 * 0), which clients accept.
 *
 * Ids are random positive 32-bit numbers (a fetcher must not guess another
 * one's session), never 0 and never two live sessions alike; the generator
 * is seeded by the caller, so tests are reproducible. Epochs run 1, 2, ...
 * and wrap from INT32_MAX to 1.
 *
 * Naming. A session made by a request before v13 names topics by name, one
 * from v13 by topic id; an incremental request naming them the other way is
 * refused (FETCH_SESSION_TOPIC_ID_ERROR), as Kafka. A session also belongs
 * to the kind of fetcher that made it: a consumer cannot continue a
 * follower's session or the reverse (FETCH_SESSION_ID_NOT_FOUND), so a
 * consumer can never turn a follower's privileged slot into its own.
 *
 * Threads: every call is thread-safe (one mutex; the work under it is
 * proportional to the session's partitions and does no I/O). A session may
 * be continued from any thread, as a client may reconnect anywhere.
 *
 * Memory: names and partitions given in are copied; what comes out lives in
 * the caller's arena. Allocation failures leave the cache as it was and
 * answer as if there were no room (create) or UNKNOWN_SERVER_ERROR.
 */
#ifndef GR_BROKER_FETCH_SESSION_H
#define GR_BROKER_FETCH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct gr_fetch_sessions gr_fetch_sessions;

/* One partition a fetcher wants: its key (topic by name or by id, and the
 * index) and its fetch parameters. For partitions coming out of a session,
 * prev_* are what the last answer said of it (-1: nothing yet, or an error,
 * so the next answer carries it). */
typedef struct {
    gr_str topic;     /* sessions by name (before v13) */
    gr_uuid topic_id; /* sessions by id (v13+) */
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch;
    int64_t log_start_offset; /* the fetcher's own (followers) */
    int64_t prev_hw, prev_lso, prev_log_start;
} gr_fsess_part;

/* What an answer says of one partition. */
typedef struct {
    int16_t error;
    int64_t hw, lso, log_start;
    bool has_records;
} gr_fsess_answer;

/* What an incremental fetch resolved to. */
typedef struct {
    gr_fsess_part *parts; /* the session's partitions, in answer order (arena) */
    size_t count;
    bool closed;          /* its last partition was forgotten: the session is gone */
    uint64_t version;     /* for gr_fsess_answered */
} gr_fsess_view;

/* slots: the most sessions (0: none is ever made); eviction_ms: see above;
 * seed: of the id generator. NULL on allocation failure. */
gr_fetch_sessions *gr_fsess_new(int32_t slots, int64_t eviction_ms, uint64_t seed);
void gr_fsess_free(gr_fetch_sessions *c);

/* The epoch after epoch: 1, 2, ... INT32_MAX, then 1 again. */
int32_t gr_fsess_next_epoch(int32_t epoch);

/* Sessions in the cache now. */
size_t gr_fsess_count(gr_fetch_sessions *c);
/* Partitions in session id (-1: no such session). */
int64_t gr_fsess_size(gr_fetch_sessions *c, int32_t id);

/* Closes session id; false when there is none. */
bool gr_fsess_remove(gr_fetch_sessions *c, int32_t id);

/* Opens a session of the n partitions a full fetch was answered with
 * (answers[i] for parts[i]); returns its id, or 0 when it cannot (no room,
 * no memory, slots 0). follower: made by a replica; by_id: v13+ naming. */
int32_t gr_fsess_create(gr_fetch_sessions *c, int64_t now_ms, bool follower, bool by_id,
                        const gr_fsess_part *parts, const gr_fsess_answer *answers, size_t n);

/* An incremental fetch of session id at epoch: upd are the partitions the
 * request names (added, or new parameters for ones in the session), forget
 * those it drops (only the key is read). Returns GR_NONE with *out filled,
 * or the top-level error: FETCH_SESSION_ID_NOT_FOUND (no such session, or
 * of the other kind of fetcher), INVALID_FETCH_SESSION_EPOCH,
 * FETCH_SESSION_TOPIC_ID_ERROR, UNKNOWN_SERVER_ERROR (no memory).
 *
 * apply: the changes are made, the epoch advances and the session counts as
 * used at now_ms; a session left without partitions is closed. Without
 * apply nothing changes: *out shows what applying would give (a long poll
 * watches those partitions until it answers, and applies then). */
int16_t gr_fsess_incremental(gr_fetch_sessions *c, int32_t id, int32_t epoch, bool follower,
                             bool by_id, const gr_fsess_part *upd, size_t nupd,
                             const gr_fsess_part *forget, size_t nforget, int64_t now_ms,
                             bool apply, gr_arena *arena, gr_fsess_view *out);

/* After an applied incremental fetch was read: answers[i] for
 * view->parts[i]. Sets respond[i] when the answer must carry partition i
 * (it has records or an error, or its high watermark, last stable offset or
 * log start offset differs from what was last sent), and remembers what is
 * sent. Partitions answered go to the back of the session's order, so that
 * under a max_bytes budget the others come first next time. */
void gr_fsess_answered(gr_fetch_sessions *c, int32_t id, const gr_fsess_view *view,
                       const gr_fsess_answer *answers, bool *respond);

#endif
