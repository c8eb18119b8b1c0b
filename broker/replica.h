/*
 * replica.h - the replica manager: the partition logs this broker holds,
 * and what it knows about each (leader or not, leader epoch, high
 * watermark), kept in step with the metadata image.
 *
 * The main loop calls gr_replica_sync after every change of the metadata
 * image. For every partition of every topic whose replicas include this
 * broker it opens the log under the first log directory (and hands it to
 * the background maintenance task); partitions of topics that have gone are
 * closed and their directories deleted.
 *
 * Network threads look partitions up by topic name or topic id. The table
 * they search is immutable once published: a sync builds a new one and
 * swaps the pointer under a write lock, so a lookup holds the read lock
 * only for the search. A lookup returns a counted reference: a partition
 * (and its log) lives until the last reference is dropped, so a fetch
 * whose file range is still being sent survives a topic deletion.
 *
 * Topic configs. Each sync resolves every topic's effective settings
 * (topic_settings.h: the topic's keys, else the broker's defaults, else
 * Kafka's) and applies those that changed to its live partitions at once:
 * the log's configuration (gr_log_set_config), the cleaner (a log is
 * compacted while its cleanup.policy has compact), and the values the
 * produce path reads. A shorter retention triggers a retention pass.
 *
 * High watermark. There is no follower replication yet. When the ISR is
 * exactly [this broker] the high watermark is the log end offset (updated
 * after every append, and at once when the ISR shrinks to this broker);
 * with any other ISR it does not advance, so an acks=all produce waits
 * until its timeout or until the ISR shrinks (api_produce.c). Replication
 * will move it from follower fetch positions. Every move of it, every
 * change of leadership, leader epoch, ISR size, replication factor or
 * min.insync.replicas reaches the wait hook, which is what wakes waiting fetches and produces. The high
 * watermark is checkpointed (replication-offset-checkpoint, Kafka's text
 * format, one per partition directory) at most every
 * replica.high.watermark.checkpoint.interval.ms and at a clean close, and
 * a replica starts from its checkpoint rather than from the log start.
 */
#ifndef GR_BROKER_REPLICA_H
#define GR_BROKER_REPLICA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metadata.h"
#include "broker/topic_settings.h"

struct gr_broker;
typedef struct gr_replica_mgr gr_replica_mgr;

/* One partition replica held by this broker. The fields marked atomic are
 * written by the main loop (sync) or by appends and read anywhere. */
typedef struct gr_partition {
    char topic[256];
    gr_uuid topic_id;
    int32_t index;
    gr_log *log;
    atomic_bool leader;          /* this broker leads it */
    atomic_int leader_epoch;
    atomic_bool isr_only_self;   /* ISR == [this broker]: HW follows the log end */
    atomic_int isr_size;
    atomic_int min_insync_replicas; /* min.insync.replicas (topic setting) */
    atomic_int replicas;            /* the replication factor */
    atomic_llong hw;             /* high watermark */
    /* What the produce path reads of the topic's settings. */
    atomic_int max_message_bytes; /* max.message.bytes */
    atomic_int compression;       /* compression.type: a gr_codec, or GR_TOPIC_COMPRESSION_PRODUCER */
    atomic_int compression_level;
    atomic_llong ts_before_max_ms; /* message.timestamp.before.max.ms */
    atomic_llong ts_after_max_ms;  /* message.timestamp.after.max.ms */
    atomic_bool compact;           /* cleanup.policy has compact: records need keys */
    atomic_bool log_append_time;   /* message.timestamp.type=LogAppendTime */
    gr_topic_settings settings;    /* the whole of them (main loop only) */
    int64_t hw_checkpointed;       /* the high watermark last checkpointed; -1: none */
    int64_t hw_checkpoint_ms;      /* when it was last considered (the log task's clock) */
    atomic_int refs;
    bool deleted; /* its topic is gone: delete the files after the last reference */
    gr_replica_mgr *mgr; /* for the wait hook */
    char dir[4096];
} gr_partition;

/* NULL (logged) on failure. */
gr_replica_mgr *gr_replica_new(struct gr_broker *b);
/* Closes every log. Call after the network threads have stopped. */
void gr_replica_free(gr_replica_mgr *m);

/* Brings the partitions in line with img (main loop only). */
void gr_replica_sync(gr_replica_mgr *m, const gr_metadata_image *img);

/* Lookups (any thread). On success a reference the caller must drop with
 * gr_partition_unref; otherwise NULL with *err set to the Kafka error:
 * UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID (by id), or
 * NOT_LEADER_OR_FOLLOWER when the partition exists but has no replica here. */
gr_partition *gr_replica_get(gr_replica_mgr *m, gr_str topic, int32_t index, int16_t *err);
gr_partition *gr_replica_get_by_id(gr_replica_mgr *m, const gr_uuid *topic_id, int32_t index,
                                   int16_t *err);
void gr_partition_unref(gr_partition *p);

/* Every partition replica held now (any thread), for answers about all of
 * them (DescribeLogDirs): *out gets a malloc'd array of *n counted
 * references, grouped by topic, each topic's in partition order. Returns 0,
 * or -1 on allocation failure (nothing held, *n 0). Drop them all with
 * gr_replica_list_free. */
int gr_replica_list(gr_replica_mgr *m, gr_partition ***out, size_t *n);
void gr_replica_list_free(gr_partition **ps, size_t n);

/* After an append on the leader: advances the high watermark when the ISR
 * is this broker alone. Returns the high watermark. */
int64_t gr_partition_appended(gr_partition *p);

/* The wait hook: called (on the thread that made the change) whenever what
 * a waiting request on p could see changed: its high watermark moved, it
 * changed leader or leader epoch, its ISR size, replication factor or
 * min.insync.replicas changed, or it was removed. p is NULL once, from
 * gr_replica_stop: every waiting request should answer now. The hook must
 * be cheap and thread-safe. Setting it again replaces it; NULL: none. */
typedef void (*gr_replica_wait_hook)(const gr_partition *p);
void gr_replica_set_wait_hook(gr_replica_mgr *m, gr_replica_wait_hook hook);

/* The sync hook: called on the main loop at the end of every
 * gr_replica_sync, with the image it followed, once the partitions are in
 * line with it (the group coordinator learns here which partitions of
 * __consumer_offsets it now leads). Setting it again replaces it; NULL:
 * none. */
typedef void (*gr_replica_sync_hook)(void *ctx, const gr_metadata_image *img);
void gr_replica_set_sync_hook(gr_replica_mgr *m, gr_replica_sync_hook hook, void *ctx);

/* Requests waiting on partitions (long-poll fetches, acks=all produces) count themselves in
 * and out; they stop waiting once gr_replica_stopping says so. At shutdown
 * the main loop calls gr_replica_stop before stopping the network threads:
 * it calls the wait hook with NULL, then waits (bounded) until every
 * waiting request has been answered. */
void gr_replica_wait_begin(gr_replica_mgr *m);
void gr_replica_wait_end(gr_replica_mgr *m);
bool gr_replica_stopping(gr_replica_mgr *m);
void gr_replica_stop(gr_replica_mgr *m);

#endif
