/*
 * raft.h - the Raft core of the controller quorum (KRaft's protocol, pure).
 *
 * This module is a state machine with no sockets, files, clocks, threads or
 * randomness of its own. The shell (the controller's event loop, or the
 * deterministic simulator) feeds it inputs and carries out its effects:
 *
 *   inputs   gr_raft_tick(now)            time passes (timers fire)
 *            gr_raft_receive(now, msg)     a message from a peer arrived
 *            gr_raft_propose(now, ...)     the controller wants entries appended
 *            gr_raft_log_flushed(now, off) the log is durable below off
 *            gr_raft_snapshot_taken(...)   the shell wrote a snapshot
 *   outputs  an effect queue (gr_raft_effects): messages to send, quorum
 *            state to persist, role changes, high-watermark advances,
 *            snapshot installed; plus calls into the log interface.
 *
 * Every input takes now_ms; gr_raft_next_deadline says when the next tick is
 * due. Randomness (election timeouts, which voter an observer asks first)
 * comes from the seed in the config, so a run is a function of its inputs.
 *
 * ---- Roles ----
 * Epochs are Raft's terms. Every node is in exactly one role:
 *
 *   unattached   a voter in an epoch with no known leader; it may have voted.
 *                When its election timer fires it becomes prospective.
 *   prospective  (KIP-996 pre-vote) asks the voters "would you vote for me
 *                in the next epoch?" with Vote{pre_vote}; nothing is bumped
 *                or persisted. Only when a majority would grant does it
 *                become a candidate. A voter refuses a pre-vote while it has
 *                heard from a live leader within fetch_timeout_ms, so a node
 *                cut off from the quorum cannot force epoch bumps when it
 *                comes back.
 *   candidate    bumped the epoch, voted for itself (persisted), asks Vote.
 *                A majority of grants makes it leader; if its election timer
 *                fires first it goes back to prospective (no epoch storms).
 *   leader       appends a LeaderChange control entry at the start of its
 *                epoch, sends BeginQuorumEpoch to the voters, answers Fetch,
 *                accepts proposals and advances the high watermark. With
 *                check-quorum, a leader that has not had a Fetch from a
 *                majority of voters (itself included) within
 *                fetch_timeout_ms resigns.
 *   resigned     a former leader of the current epoch that gave up (check-
 *                quorum); it sent EndQuorumEpoch, takes no proposals, and
 *                becomes prospective when its election timer fires.
 *   follower     a voter that knows the epoch's leader and pulls from it
 *                with Fetch. No successful Fetch for fetch_timeout_ms makes
 *                it prospective.
 *   observer     a non-voter (a broker): fetches like a follower, never
 *                votes, never counts toward the high watermark. It finds the
 *                leader by fetching from a random voter, which answers with
 *                the leader it knows.
 *
 * ---- Messages ----
 * gr_raft_msg carries the fields of Kafka's KRaft messages; the shell maps
 * them to the wire (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch,
 * FetchSnapshot) and maps corr to the correlation id of the request. Every
 * message carries the sender's epoch; a message from a higher epoch moves
 * the receiver to that epoch first (as a follower when it names the
 * leader), one from a lower epoch is answered with an error and the
 * receiver's epoch and leader.
 *
 * Fetch is a pull, as in KRaft: the replica sends (fetch_offset = its log
 * end offset, last_fetched_epoch = the epoch of the entry before it). The
 * leader answers with entries from fetch_offset, or with a diverging epoch
 * and its end offset (the replica truncates and retries), or with a
 * snapshot id when fetch_offset is below its log start (the replica then
 * pulls the snapshot in chunks with FetchSnapshot and installs it). A fetch
 * that finds nothing new is parked by the leader for up to
 * fetch_max_wait_ms and answered as soon as entries or a newer high
 * watermark are available (long poll).
 *
 * ---- Persistence ----
 * Quorum state (epoch, voted-for, leader) is persisted through the effect
 * queue: a GR_RAFT_EFF_PERSIST effect must be durable (written and fsynced)
 * before the shell carries out any effect queued after it. The core queues
 * the persist before the message that depends on it (a granted vote, a
 * candidate's Vote requests), so a vote is on disk before anyone hears of
 * it. This synchronous rule was chosen over an asynchronous "persisted"
 * notification because the file is tiny and changes only on elections,
 * while an asynchronous protocol would add a pending-state to every role.
 *
 * The log is the opposite: appends are frequent, so they are asynchronous.
 * The core appends and truncates by calling the log interface (the shell
 * writes to the page cache and returns), and the shell later reports with
 * gr_raft_log_flushed(offset) that everything below offset is durable.
 * Appends and truncations are calls rather than effects because the core
 * queries the log right after changing it (end offset, epochs for the next
 * Fetch); as effects the core would have to shadow the log's state.
 *
 * Durability invariants the shell must keep:
 *   - truncate(offset) is durable when it returns (truncation is rare);
 *   - gr_raft_log_flushed(off) means every entry below off *in the log as it
 *     is now* is durable: a flush started before a truncation must not be
 *     reported as covering entries appended after it;
 *   - snapshot_install is durable when it returns;
 *   - the snapshot named in gr_raft_snapshot_taken is durable.
 *
 * ---- Invariants of the core ----
 *   - at most one leader per epoch: a vote is granted at most once per epoch
 *     (persisted first), and only to a candidate whose log is at least as
 *     up to date (last epoch, then end offset);
 *   - a follower acknowledges (by its next fetch_offset) only what it has
 *     flushed: it sends the next Fetch only when its log is durable to its
 *     end, so the leader's view of a replica is always on that replica's disk;
 *   - the leader counts a replica's fetch_offset only from a Fetch in its own
 *     epoch whose (fetch_offset, last_fetched_epoch) matches its log;
 *   - the high watermark is the largest offset X such that a majority of
 *     voters (the leader by its flushed end offset) have replicated [0, X),
 *     and the entry at X-1 belongs to the leader's epoch (Raft section
 *     5.4.2: earlier epochs' entries commit only through a current-epoch
 *     entry; the LeaderChange entry gives every epoch one). It never goes
 *     back while the process lives; after a restart it starts at the
 *     snapshot's end offset;
 *   - a follower truncates only above the entries it shares with the leader,
 *     so committed entries are never truncated;
 *   - a snapshot covers only committed entries (the shell takes snapshots at
 *     or below the high watermark).
 *
 * ---- Offsets ----
 * Each entry occupies one offset. The log holds [start, end); start is 0 or
 * the end offset of the latest snapshot (or lower, while the prefix it
 * covers has not been deleted yet). Epochs start at 1; 0 means "none" (the
 * epoch before the first entry).
 *
 * Memory: gr_raft_receive does not keep the message; effects (and the
 * messages inside them) belong to the core until gr_raft_effects_clear.
 * Errors: functions return GR_RAFT_OK or a negative gr_raft_err; on
 * GR_RAFT_ERR_NOMEM the input was ignored and may be retried; on
 * GR_RAFT_ERR_IO a log call failed and the shell should stop the node, as
 * Kafka does on a metadata log storage error.
 */
#ifndef GR_RAFT_H
#define GR_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GR_RAFT_MAX_VOTERS 16
#define GR_RAFT_NO_NODE (-1)

typedef enum {
    GR_RAFT_OK = 0,
    GR_RAFT_ERR_NOT_LEADER = -1, /* propose on a node that is not the leader */
    GR_RAFT_ERR_NOMEM = -2,
    GR_RAFT_ERR_IO = -3, /* a log interface call failed */
    GR_RAFT_ERR_INVALID = -4,
} gr_raft_err;

const char *gr_raft_err_str(int err);

typedef enum {
    GR_RAFT_UNATTACHED,
    GR_RAFT_PROSPECTIVE,
    GR_RAFT_CANDIDATE,
    GR_RAFT_LEADER,
    GR_RAFT_RESIGNED,
    GR_RAFT_FOLLOWER,
    GR_RAFT_OBSERVER,
} gr_raft_role;

const char *gr_raft_role_name(gr_raft_role role);

/* Error codes inside responses; the shell maps them to Kafka's. */
typedef enum {
    GR_RAFT_E_NONE = 0,
    GR_RAFT_E_FENCED_LEADER_EPOCH,  /* the requester's epoch is older */
    GR_RAFT_E_UNKNOWN_LEADER_EPOCH, /* the requester's epoch is newer */
    GR_RAFT_E_NOT_LEADER,           /* NOT_LEADER_OR_FOLLOWER: ask leader_id */
    GR_RAFT_E_SNAPSHOT_NOT_FOUND,
    GR_RAFT_E_POSITION_OUT_OF_RANGE,
    GR_RAFT_E_INCONSISTENT_VOTER, /* a Vote from or to a non-voter */
} gr_raft_msg_error;

typedef enum {
    GR_RAFT_ENTRY_DATA = 0,          /* opaque bytes from gr_raft_propose */
    GR_RAFT_ENTRY_LEADER_CHANGE = 1, /* control entry: data = leader id, i32 big-endian */
} gr_raft_entry_type;

/* One log entry. In gr_raft_log_ops.read the data points into the shell's
 * memory and stays valid until the next call into the log interface. */
typedef struct {
    int64_t offset;
    int32_t epoch;
    uint8_t type; /* gr_raft_entry_type */
    uint32_t len;
    const uint8_t *data;
} gr_raft_entry;

/* A snapshot is named by the end offset it covers (entries below it) and
 * the epoch of the last entry it covers, as Kafka's snapshot id. */
typedef struct {
    int64_t end_offset; /* -1: none */
    int32_t epoch;
} gr_raft_snapshot_id;

typedef struct {
    int32_t epoch;
    int32_t voted_for; /* GR_RAFT_NO_NODE if none in this epoch */
    int32_t leader_id; /* GR_RAFT_NO_NODE if unknown */
} gr_raft_quorum_state;

typedef enum {
    GR_RAFT_MSG_VOTE_REQ,
    GR_RAFT_MSG_VOTE_RESP,
    GR_RAFT_MSG_BEGIN_EPOCH_REQ,
    GR_RAFT_MSG_BEGIN_EPOCH_RESP,
    GR_RAFT_MSG_END_EPOCH_REQ,
    GR_RAFT_MSG_END_EPOCH_RESP,
    GR_RAFT_MSG_FETCH_REQ,
    GR_RAFT_MSG_FETCH_RESP,
    GR_RAFT_MSG_FETCH_SNAPSHOT_REQ,
    GR_RAFT_MSG_FETCH_SNAPSHOT_RESP,
} gr_raft_msg_type;

const char *gr_raft_msg_type_name(gr_raft_msg_type t);

/* One message; which fields matter depends on type (see the comments). */
typedef struct {
    gr_raft_msg_type type;
    int32_t from;      /* sender's node id */
    int32_t epoch;     /* sender's epoch (a Vote request: the candidate's epoch) */
    int32_t leader_id; /* responses, Begin/EndQuorumEpoch: the leader the sender knows */
    int16_t error;     /* responses: gr_raft_msg_error */
    uint64_t corr;     /* a request's id, echoed by its response */

    /* Vote: last_epoch/last_offset describe the candidate's log (end offset
     * and the epoch of its last entry); pre_vote marks KIP-996's pre-vote
     * (the request's epoch is then the prospective's current epoch). */
    bool pre_vote;
    bool granted;
    int32_t last_epoch;
    int64_t last_offset;

    /* Fetch request: fetch_offset, last_fetched_epoch. Fetch response:
     * high_watermark, entries, or diverging_epoch/diverging_end_offset
     * (epoch -1: none), or snapshot_id (end_offset -1: none). */
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t high_watermark;
    int32_t diverging_epoch;
    int64_t diverging_end_offset;
    gr_raft_snapshot_id snapshot_id;
    gr_raft_entry *entries;
    size_t n_entries;

    /* FetchSnapshot: snapshot_id, position; the response adds size (of the
     * whole snapshot) and the chunk in bytes/n_bytes. */
    int64_t position;
    int64_t size;
    uint8_t *bytes;
    size_t n_bytes;

    void *owned; /* one heap block holding entries/bytes (NULL if none) */
} gr_raft_msg;

/* Deep copy (entries and bytes included); NULL when out of memory. */
gr_raft_msg *gr_raft_msg_dup(const gr_raft_msg *m);
/* Frees a message from gr_raft_msg_dup. */
void gr_raft_msg_free(gr_raft_msg *m);

typedef enum {
    GR_RAFT_EFF_SEND,    /* send msg to node `to` (loss is tolerated) */
    GR_RAFT_EFF_PERSIST, /* write and fsync state before any later effect */
    GR_RAFT_EFF_ROLE,    /* role/epoch/leader changed (informational) */
    GR_RAFT_EFF_COMMIT,  /* the high watermark advanced to high_watermark */
    GR_RAFT_EFF_SNAPSHOT_INSTALLED, /* a fetched snapshot replaced the log:
                                       reload the state machine from it */
} gr_raft_effect_type;

typedef struct {
    gr_raft_effect_type type;
    int32_t to;
    gr_raft_msg msg;
    gr_raft_quorum_state state;
    gr_raft_role role;
    int32_t epoch;
    int32_t leader_id;
    int64_t high_watermark;
    gr_raft_snapshot_id snapshot;
} gr_raft_effect;

/*
 * The log interface, implemented by the shell over the partition log (and
 * by the simulator in memory). ctx is passed back. Functions returning int
 * return 0 on success, nonzero on an I/O error.
 */
typedef struct {
    void *ctx;
    int64_t (*start_offset)(void *ctx);
    int64_t (*end_offset)(void *ctx);
    /* Epoch of the entry at offset in [start, end); -1 outside. */
    int32_t (*epoch_at)(void *ctx, int64_t offset);
    /* Kafka's OffsetForLeaderEpoch over the entries in the log: for the
     * latest epoch the end offset; for an older one the start offset of the
     * next higher epoch, with the largest epoch <= the requested one;
     * (-1, -1) when the log has no entry of an epoch <= requested. */
    void (*epoch_end_offset)(void *ctx, int32_t epoch, int32_t *out_epoch, int64_t *out_end);
    /* Up to max_entries entries from `from` (in [start, end)), at least one,
     * at most max_bytes of data beyond the first. */
    int (*read)(void *ctx, int64_t from, size_t max_bytes, gr_raft_entry *out,
                size_t max_entries, size_t *n);
    /* Appends at the end offset (entries[0].offset == end), not yet durable. */
    int (*append)(void *ctx, const gr_raft_entry *entries, size_t n);
    /* Removes entries at offset and above; durable on return. */
    int (*truncate)(void *ctx, int64_t offset);
    /* Leader: reads the snapshot `id` from position; sets *size to its total
     * size. Returns 0, or 1 if that snapshot does not exist (any more). */
    int (*snapshot_read)(void *ctx, gr_raft_snapshot_id id, int64_t position, uint8_t *buf,
                         size_t max, size_t *len, int64_t *size);
    /* Follower: writes a chunk of the snapshot being fetched; position 0
     * starts a new one (discarding any partial one). */
    int (*snapshot_write)(void *ctx, gr_raft_snapshot_id id, int64_t position,
                          const uint8_t *data, size_t len);
    /* Follower: the fetched snapshot is complete: make it the latest
     * snapshot and replace the whole log by an empty log starting at
     * id.end_offset. Durable on return. */
    int (*snapshot_install)(void *ctx, gr_raft_snapshot_id id);
} gr_raft_log_ops;

typedef struct {
    int32_t node_id;
    int32_t voters[GR_RAFT_MAX_VOTERS]; /* controller.quorum.voters ids */
    size_t n_voters;                    /* 1..GR_RAFT_MAX_VOTERS */
    int32_t election_timeout_ms;        /* controller.quorum.election.timeout.ms: 1000 */
    int32_t fetch_timeout_ms;           /* controller.quorum.fetch.timeout.ms: 2000 */
    int32_t request_timeout_ms;         /* controller.quorum.request.timeout.ms: 2000 */
    int32_t retry_backoff_ms;           /* controller.quorum.retry.backoff.ms: 20 */
    int32_t fetch_max_wait_ms;          /* long-poll of an empty fetch: 500 */
    size_t fetch_max_bytes;             /* per Fetch response: 8 MiB */
    size_t snapshot_chunk_bytes;        /* per FetchSnapshot response: 1 MiB */
    bool pre_vote;                      /* KIP-996 pre-vote: true */
    bool check_quorum;                  /* leader resigns without a fetch majority: true */
    uint64_t seed;                      /* for election timeouts */
} gr_raft_config;

/* Kafka's defaults; node_id, voters and seed are left for the caller. */
void gr_raft_config_defaults(gr_raft_config *cfg);

typedef struct gr_raft gr_raft;

/*
 * A node from its durable state: the persisted quorum state (all zero/-1 on
 * first start), the latest snapshot (end_offset -1 if none) and the log
 * behind ops (which must be durable to its end: on restart the shell
 * recovers the log to what was flushed). NULL on bad config or no memory.
 */
gr_raft *gr_raft_create(const gr_raft_config *cfg, const gr_raft_log_ops *ops,
                        const gr_raft_quorum_state *persisted, gr_raft_snapshot_id snapshot,
                        int64_t now_ms);
void gr_raft_destroy(gr_raft *r);

int gr_raft_tick(gr_raft *r, int64_t now_ms);
int gr_raft_receive(gr_raft *r, int64_t now_ms, const gr_raft_msg *m);
/* Leader only: appends n entries (data/len/type from each; offset and epoch
 * are assigned) and sets *first_offset to the first one's offset.
 * GR_RAFT_ERR_NOT_LEADER on any other node. */
int gr_raft_propose(gr_raft *r, int64_t now_ms, const gr_raft_entry *entries, size_t n,
                    int64_t *first_offset);
int gr_raft_log_flushed(gr_raft *r, int64_t now_ms, int64_t offset);
/* The shell wrote (durably) a snapshot of the entries below id.end_offset,
 * which must be <= the high watermark, and may delete the log prefix below
 * it afterwards. Entries below it count as flushed from now on. */
int gr_raft_snapshot_taken(gr_raft *r, int64_t now_ms, gr_raft_snapshot_id id);

/* The effects queued so far, in order; valid until gr_raft_effects_clear. */
size_t gr_raft_effects(const gr_raft *r, const gr_raft_effect **out);
void gr_raft_effects_clear(gr_raft *r);

/* When gr_raft_tick is next needed (absolute ms). */
int64_t gr_raft_next_deadline(const gr_raft *r);

gr_raft_role gr_raft_get_role(const gr_raft *r);
int32_t gr_raft_epoch(const gr_raft *r);
int32_t gr_raft_leader(const gr_raft *r);
int64_t gr_raft_high_watermark(const gr_raft *r);
int64_t gr_raft_flushed_offset(const gr_raft *r);
gr_raft_snapshot_id gr_raft_latest_snapshot(const gr_raft *r);

/* DescribeQuorum (leader): one row per voter, then per observer seen. */
typedef struct {
    int32_t node_id;
    bool voter;
    int64_t end_offset;    /* last fetch_offset seen (the leader: flushed end); -1 unknown */
    int64_t last_fetch_ms; /* -1 never */
} gr_raft_replica_info;

/* Fills up to max rows (leader only; 0 otherwise); returns the row count. */
size_t gr_raft_describe(const gr_raft *r, gr_raft_replica_info *out, size_t max);

#endif
