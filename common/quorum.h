/*
 * quorum.h - the shell that runs the Raft core (raft.h) for real: the
 * metadata log on disk, the quorum-state file, snapshots, timers and
 * Kafka's KRaft messages on the wire. Controllers run it as voters;
 * brokers run it as observers that follow the metadata log.
 *
 * Storage, under the metadata directory (metadata.log.dir, else the first
 * log directory):
 *
 *   __cluster_metadata-0/           the metadata log (log.h): one record
 *                                   batch per Raft entry, base offset = the
 *                                   entry's offset, partition leader epoch =
 *                                   its epoch, one record whose value is the
 *                                   entry; control batches are Raft's own
 *                                   LeaderChange entries
 *   __cluster_metadata-0/<end>-<epoch>.checkpoint
 *                                   snapshots: "GRSNAP01", CRC-32C and length
 *                                   of the state machine's bytes, then them
 *   quorum-state                    epoch, leader and vote, Kafka's JSON
 *                                   shape, written atomically and fsynced
 *                                   before anyone hears of the vote
 *
 * The state machine (the metadata image) sits behind callbacks: committed
 * entries are delivered to it in log order, exactly once per process life,
 * after the snapshot it was loaded from; it writes snapshots of itself when
 * asked and reloads from one when a snapshot is installed from the leader.
 *
 * Everything runs on one event loop: inputs (timers, messages from peers,
 * proposals) go into the core, and its effects are carried out before the
 * next input: quorum state persisted, messages sent (with kclient) or
 * answered (pending netserver requests), the log fsynced, commits applied.
 * An I/O error on the metadata log or the quorum-state file stops the
 * process, as in Kafka: continuing could break Raft's promises.
 */
#ifndef GR_QUORUM_H
#define GR_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/netserver.h"
#include "common/raft.h"

struct event_base;
typedef struct gr_quorum gr_quorum;

typedef struct {
    void *ctx;
    /* A committed entry (data as proposed), in log order. */
    void (*apply)(void *ctx, int64_t offset, int32_t epoch, const uint8_t *data, size_t len);
    /* The role, epoch or leader changed. */
    void (*role)(void *ctx, gr_raft_role role, int32_t epoch, int32_t leader_id);
    /* Writes the state machine as of the last applied entry. 0 or -1. */
    int (*snapshot_write)(void *ctx, gr_writer *w);
    /* Replaces the state machine by a snapshot's bytes (NULL, 0: empty). 0 or -1. */
    int (*snapshot_load)(void *ctx, const uint8_t *data, size_t len);
} gr_quorum_sm;

typedef struct {
    int32_t node_id;
    const gr_voter *voters; /* controller.quorum.voters */
    size_t n_voters;        /* a node whose id is not a voter's is an observer */
    const char *dir;        /* the metadata directory */
    const char *cluster_id;
    gr_raft_config raft;    /* timeouts (node_id, voters and seed are filled in here) */
    int64_t snapshot_bytes; /* metadata.log.max.record.bytes.between.snapshots */
    int64_t segment_bytes;  /* metadata.log.segment.bytes */
    gr_quorum_sm sm;
} gr_quorum_config;

/* Opens the metadata log and the quorum state, loads the latest snapshot
 * into the state machine and replays nothing yet (entries are applied as
 * they are known to be committed). NULL (logged) on failure. */
gr_quorum *gr_quorum_open(struct event_base *base, const gr_quorum_config *cfg);
void gr_quorum_close(gr_quorum *q);

/* Leader only: appends one entry; *offset gets its offset. Committed when
 * the state machine's apply sees it. GR_RAFT_ERR_NOT_LEADER elsewhere;
 * GR_RAFT_ERR_INVALID for an entry larger than a log segment. */
int gr_quorum_propose(gr_quorum *q, const uint8_t *data, size_t len, int64_t *offset);

gr_raft_role gr_quorum_role(const gr_quorum *q);
int32_t gr_quorum_epoch(const gr_quorum *q);
int32_t gr_quorum_leader(const gr_quorum *q);
int64_t gr_quorum_high_watermark(const gr_quorum *q);
/* The next offset the state machine will be given (all below are applied). */
int64_t gr_quorum_applied(const gr_quorum *q);
int64_t gr_quorum_end_offset(const gr_quorum *q);
const gr_voter *gr_quorum_voter(const gr_quorum *q, int32_t id);

/* Serves the Raft APIs a controller answers: Vote, BeginQuorumEpoch,
 * EndQuorumEpoch, Fetch, FetchSnapshot and DescribeQuorum. Most answers
 * come from the core later (GR_PENDING). */
int gr_quorum_handle(gr_quorum *q, gr_request *req, gr_writer *out);

/* The metadata topic, as KRaft names it. */
#define GR_METADATA_TOPIC "__cluster_metadata"

#endif
