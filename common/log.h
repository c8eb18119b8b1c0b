/*
 * log.h - the partition log: how every partition replica (and later the
 * controllers' metadata log) is stored on disk. No knowledge of the network.
 *
 * Layout, after Kafka's: <log.dir>/<topic>-<partition>/ holds
 *
 *   <20-digit base offset>.log / .index / .timeindex   segments (segment.h)
 *   leader-epoch-checkpoint              epoch -> start offset (checkpoint.h)
 *   recovery-point-offset-checkpoint     offset below which data is fsynced
 *   log-start-offset-checkpoint          first offset clients may read
 *   .clean-shutdown                      present only after a clean close
 *   cleaner-swap-manifest                present only during a segment swap
 *
 * Kafka keeps the recovery point and log start offset checkpoints per log
 * directory (one line per partition); Gregor keeps them per partition
 * directory in the same text format, so that no file is shared between
 * partitions. The marker of a clean shutdown is per partition for the same
 * reason.
 *
 * Offsets: the log holds offsets [log start offset, log end offset). The
 * segments are sorted by base offset; only the last one (the active
 * segment) is appended to. Offsets may have gaps (compaction, replicated
 * gaps) but never go backwards.
 *
 * Durability: appends go to the page cache with one write(2) per append;
 * nothing is fsynced until the flush policy (flush.messages, flush.ms;
 * Kafka's default is never, leaving it to the OS and to replication), a
 * roll, gr_log_flush or a clean close says so. After each flush the
 * recovery point is checkpointed. After an unclean shutdown, everything
 * from the recovery point on is validated batch by batch (header and CRC),
 * the log is cut at the first torn or invalid batch and the indexes are
 * rebuilt; after a clean one the scan is skipped.
 *
 * Threads: a gr_log is used from several threads (produce, fetch,
 * retention, the cleaner). One mutex protects it. A read holds the mutex
 * only to find its file range; it returns with a reference on the segment
 * and the caller sends the range with sendfile(2) after the call, then
 * releases it. Deleted segments are renamed *.deleted and unlinked
 * file.delete.delay.ms later (by gr_log_tick), and their descriptors stay
 * open until the last reader releases them, so a read never fails because
 * retention or the cleaner got there first.
 *
 * Time is never read from a clock here: every function that needs it takes
 * now_ms, which makes the tests deterministic.
 *
 * Errors: functions return GR_LOG_OK or a negative gr_log_err, and log the
 * cause (with the topic-partition) when it is the disk's fault.
 */
#ifndef GR_LOG_H
#define GR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"

typedef struct gr_log gr_log;
struct gr_segment;

/* Kafka's broker (log.*) and topic (*) names; defaults are Kafka's. */
typedef struct {
    int64_t segment_bytes;           /* log.segment.bytes / segment.bytes: 1 GiB */
    int64_t segment_ms;              /* log.roll.ms, log.roll.hours / segment.ms: 168 h */
    int64_t segment_index_bytes;     /* log.index.size.max.bytes / segment.index.bytes: 10 MiB */
    int32_t index_interval_bytes;    /* log.index.interval.bytes / index.interval.bytes: 4096 */
    int64_t flush_interval_messages; /* log.flush.interval.messages / flush.messages: INT64_MAX */
    int64_t flush_interval_ms;       /* log.flush.interval.ms / flush.ms: INT64_MAX (never) */
    int64_t retention_ms;            /* log.retention.ms, .minutes, .hours / retention.ms: 168 h; -1 none */
    int64_t retention_bytes;         /* log.retention.bytes / retention.bytes: -1 (none) */
    int64_t file_delete_delay_ms;    /* log.segment.delete.delay.ms / file.delete.delay.ms: 60000 */
    bool log_append_time;            /* log.message.timestamp.type / message.timestamp.type
                                        = LogAppendTime (default CreateTime: false) */
} gr_log_config;

void gr_log_config_defaults(gr_log_config *cfg);

typedef enum {
    GR_LOG_OK = 0,
    GR_LOG_ERR_IO = -1,           /* the disk failed (KAFKA_STORAGE_ERROR) */
    GR_LOG_ERR_NOMEM = -2,
    GR_LOG_ERR_CORRUPT = -3,      /* an invalid batch (result->batch_result says how) */
    GR_LOG_ERR_OUT_OF_RANGE = -4, /* offset outside [log start, log end] (OFFSET_OUT_OF_RANGE) */
    GR_LOG_ERR_TOO_LARGE = -5,    /* bigger than a segment (RECORD_LIST_TOO_LARGE) */
    GR_LOG_ERR_BAD_OFFSET = -6,   /* replicated offsets not increasing from the log end */
    GR_LOG_ERR_INVALID = -7,      /* a bad argument */
} gr_log_err;

const char *gr_log_err_str(int err);

/* Opens (creating if needed) <dir>/<topic>-<partition>, recovering it if it
 * was not closed cleanly. GR_LOG_OK and *out, or an error. */
int gr_log_open(gr_log **out, const char *dir, const char *topic, int32_t partition,
                const gr_log_config *cfg, int64_t now_ms);

/* Clean shutdown: flush, trim the active indexes, write the marker, free.
 * Every read range must have been released. */
int gr_log_close(gr_log *log, int64_t now_ms);

/* Frees the log leaving the files exactly as they are, as if the process
 * had died (for crash tests). */
void gr_log_abandon(gr_log *log);

/* Applies a new configuration to a live log (retention, segment size, flush
 * policy, ...); it takes effect from the next operation. */
void gr_log_set_config(gr_log *log, const gr_log_config *cfg);

/* ---- append ---- */

#define GR_LOG_APPEND_DEEP 0x1 /* validate every record, not just header + CRC */

typedef struct {
    int64_t first_offset;     /* of the first batch appended */
    int64_t last_offset;      /* of the last record appended */
    int64_t log_append_time;  /* the time stamped, or -1 (CreateTime) */
    int64_t max_timestamp;    /* largest batch max timestamp appended */
    gr_batch_result batch_result; /* why a batch was refused (GR_LOG_ERR_CORRUPT) */
    int32_t bad_batch;        /* index of the refused batch, -1 when none */
} gr_log_append_result;

/* Leader append of `len` bytes of concatenated batches (a produce request's
 * records), modified in place: each batch is validated (header and CRC at
 * least; every record with GR_LOG_APPEND_DEEP, decompressing up to
 * max_uncompressed), gets its base offset and partition leader epoch
 * rewritten, and LogAppendTime when the topic says so. Then all of them are
 * written at once, or none (any invalid batch refuses the whole append). */
int gr_log_append(gr_log *log, uint8_t *batches, size_t len, int32_t leader_epoch, unsigned flags,
                  size_t max_uncompressed, int64_t now_ms, gr_log_append_result *res);

/* Follower append: offsets and epochs are kept as in the batches, which must
 * be increasing and start at the log end offset or later. Header and CRC are
 * validated. */
int gr_log_append_replica(gr_log *log, const uint8_t *batches, size_t len, int64_t now_ms,
                          gr_log_append_result *res);

/* ---- read ---- */

/* A range of a segment file, for sendfile(2) or pread(2). It holds a
 * reference on the segment: release it with gr_log_read_release. */
typedef struct {
    int fd;
    int64_t position;
    size_t length;            /* 0: nothing to read (at the end, or max_offset) */
    int64_t first_offset;     /* base offset of the first batch, when length > 0 */
    struct gr_segment *seg;
} gr_log_read_result;

/* Whole batches starting with the one that contains offset: at least one
 * (even if larger than max_bytes), then more while the total stays within
 * max_bytes, none whose base offset >= max_offset (the high watermark for
 * consumers, INT64_MAX for followers), and never past the end of the
 * segment holding the first one. offset == log end offset gives length 0;
 * below the log start or above the end is GR_LOG_ERR_OUT_OF_RANGE. */
int gr_log_read(gr_log *log, int64_t offset, size_t max_bytes, int64_t max_offset,
                gr_log_read_result *out);
void gr_log_read_release(gr_log_read_result *r);

/* ---- offsets and timestamps ---- */

int64_t gr_log_start_offset(gr_log *log);
int64_t gr_log_end_offset(gr_log *log);
int64_t gr_log_recovery_point(gr_log *log);
uint64_t gr_log_size_bytes(gr_log *log);
size_t gr_log_segment_count(gr_log *log);
const char *gr_log_name(const gr_log *log); /* "topic-partition" */

/* ListOffsets' special timestamps. */
#define GR_LOG_TS_LATEST (-1)
#define GR_LOG_TS_EARLIEST (-2)
#define GR_LOG_TS_MAX_TIMESTAMP (-3)

/* ListOffsets: for ts >= 0 the first record with timestamp >= ts; the
 * special values above give the log end offset, the log start offset, or the
 * record with the largest timestamp. GR_LOG_OK with *offset and *timestamp
 * (-1 when not applicable), 1 when no record qualifies, or an error. */
int gr_log_offset_for_timestamp(gr_log *log, int64_t ts, int64_t *offset, int64_t *timestamp);

/* ---- maintenance ---- */

/* fsync everything not yet fsynced, then checkpoint the recovery point. */
int gr_log_flush(gr_log *log, int64_t now_ms);

/* Closes the active segment and starts a new one at the log end offset
 * (no-op on an empty active segment). */
int gr_log_roll(gr_log *log, int64_t now_ms);

/* Timed work: flush by flush.ms, and unlinking of *.deleted files whose
 * delay has passed. Call it periodically. */
int gr_log_tick(gr_log *log, int64_t now_ms);

/* Retention: deletes the oldest inactive segments while they are past
 * retention.ms (their largest timestamp) or the log exceeds retention.bytes,
 * never the active segment, and only segments wholly below max_offset (the
 * high watermark). Advances and checkpoints the log start offset. *deleted
 * (may be NULL) gets the number of segments deleted. */
int gr_log_retention(gr_log *log, int64_t now_ms, int64_t max_offset, int *deleted);

/* DeleteRecords: the log start offset becomes offset (which must be <= log
 * end offset; the caller checks the high watermark), checkpointed, and the
 * inactive segments wholly below it are deleted. */
int gr_log_delete_records(gr_log *log, int64_t offset, int64_t now_ms);

/* Removes every offset >= offset (replication). Indexes, the recovery point
 * and the leader epoch cache follow. A batch straddling offset goes entirely,
 * so the log end offset may end below offset. Truncating below the log start
 * offset empties the log and restarts it at offset. Readers must not hold
 * ranges above offset (they never do above the high watermark). */
int gr_log_truncate_to(gr_log *log, int64_t offset, int64_t now_ms);

/* Removes everything and restarts the log, empty, at offset (which may lie
 * beyond the end): a replica that installs a snapshot does this. */
int gr_log_reset(gr_log *log, int64_t offset, int64_t now_ms);

/* ---- leader epochs ---- */

typedef struct {
    int32_t epoch;
    int64_t start_offset;
} gr_log_epoch_entry;

/* Records that `epoch` starts at start_offset (the append paths do it from
 * each batch's partition leader epoch). Ignored unless epoch is newer than
 * the latest; persisted in leader-epoch-checkpoint. */
int gr_log_epoch_assign(gr_log *log, int32_t epoch, int64_t start_offset);
int32_t gr_log_latest_epoch(gr_log *log); /* -1 when none */
/* OffsetForLeaderEpoch, Kafka's semantics: for the latest epoch, the log end
 * offset; for an older one, the start offset of the next higher epoch and
 * the largest known epoch <= requested; (-1, -1) when unknown. */
void gr_log_epoch_end_offset(gr_log *log, int32_t epoch, int32_t *out_epoch, int64_t *end_offset);
/* The same answer computed over a copy of the cache (epochs ascending, n of
 * them) and a log end offset: for callers that add to what the log knows
 * (a new leader's epoch that has no records yet). */
void gr_log_epochs_end_offset(const gr_log_epoch_entry *epochs, size_t n, int32_t epoch,
                              int64_t log_end, int32_t *out_epoch, int64_t *out_end);
/* Copies up to max entries; returns how many exist. */
size_t gr_log_epochs(gr_log *log, gr_log_epoch_entry *out, size_t max);
/* A malloc'd copy of the whole cache, with room for `extra` more entries
 * after it; *n gets the count. NULL on allocation failure. */
gr_log_epoch_entry *gr_log_epochs_copy(gr_log *log, size_t extra, size_t *n);

/* ---- for the cleaner ---- */

typedef struct {
    int64_t base_offset;
    int64_t next_offset;
    uint64_t size;
    int64_t max_timestamp;
    bool active;
} gr_log_segment_info;

/* Copies up to max segment descriptions, oldest first; returns how many
 * segments exist. */
size_t gr_log_segments(gr_log *log, gr_log_segment_info *out, size_t max);

/* The whole of one segment as a read range (the cleaner preads it). */
int gr_log_read_segment(gr_log *log, int64_t base_offset, gr_log_read_result *out);

/* Starts a replacement segment "<base>.log.cleaned" (+ indexes) that the
 * cleaner fills with gr_log_cleaned_append. NULL on failure. */
struct gr_segment *gr_log_cleaned_create(gr_log *log, int64_t base_offset, int64_t now_ms);
int gr_log_cleaned_append(gr_log *log, struct gr_segment *seg, const uint8_t *batches, size_t len);
/* Abandons a replacement segment that will not be used (deletes its files). */
void gr_log_cleaned_discard(gr_log *log, struct gr_segment *seg);

/* Atomically replaces the contiguous run of inactive segments starting at
 * old_first and ending at old_last (base offsets) with the new segments
 * (ascending, offsets within the run's range; ownership passes to the log
 * in every case). Crash-safe: after a crash at any point the next open
 * finds either the old segments or the new ones. Steps:
 *   1 fsync the new segments, rename *.cleaned -> *.swap
 *   2 write cleaner-swap-manifest atomically (the commit point)
 *   3 rename the old segments to *.deleted (unlinked after the delay)
 *   4 rename *.swap to their final names
 *   5 remove the manifest
 * gr_log_replace_segments_steps runs only the first `steps` steps and then
 * stops as a crash would (the caller must gr_log_abandon the log): crash
 * tests use it. */
int gr_log_replace_segments(gr_log *log, int64_t old_first, int64_t old_last,
                            struct gr_segment **news, size_t n_new, int64_t now_ms);
int gr_log_replace_segments_steps(gr_log *log, int64_t old_first, int64_t old_last,
                                  struct gr_segment **news, size_t n_new, int64_t now_ms,
                                  int steps);

#endif
