/*
 * cleaner.h - log compaction (cleanup.policy=compact and compact,delete):
 * keeps the latest record per key in the inactive segments of a partition
 * log, drops old tombstones, and swaps the rewritten segments in crash-safely.
 *
 * gr_cleaner_clean runs one pass over one log; a gr_cleaner is the thread
 * (Kafka's log.cleaner.threads = 1) that runs passes over every compacted
 * log it is given, dirtiest first. cleaner.c explains the algorithm.
 *
 * Per partition directory, the cleaner keeps `cleaner-offset-checkpoint`
 * (checkpoint.h's "topic partition offset" format): the first offset not yet
 * cleaned (the first dirty offset). Kafka keeps one such file per log
 * directory; Gregor keeps one per partition, like the log's other
 * checkpoints, so that no file is shared between partitions.
 *
 * For compact,delete the caller also runs gr_log_retention on the log:
 * retention deletes whole old segments, the cleaner rewrites the rest, and
 * the two never conflict because the log swaps segments only if the run it
 * was given is still there.
 *
 * Time is never read from a clock by gr_cleaner_clean (it takes now_ms);
 * only the thread reads CLOCK_REALTIME, to compare with record timestamps.
 */
#ifndef GR_CLEANER_H
#define GR_CLEANER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define GR_CLEANER_CHECKPOINT_FILE "cleaner-offset-checkpoint"

/* Kafka's topic (and log.cleaner.* broker) names; defaults are Kafka's. */
typedef struct {
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio: 0.5 */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms: 0 */
    int64_t max_compaction_lag_ms;    /* max.compaction.lag.ms: INT64_MAX */
    int64_t delete_retention_ms;      /* delete.retention.ms: 86400000 (1 day) */
    size_t dedupe_buffer_bytes;       /* log.cleaner.dedupe.buffer.size: 128 MiB; bounds the
                                         key map (keys and table) of one pass */
    size_t max_uncompressed;          /* bound on one batch's decompressed records: 64 MiB */
    int64_t segment_bytes;            /* the log's segment.bytes: cleaned segments are merged
                                         while their total stays within it: 1 GiB */
    bool delete_too;                  /* cleanup.policy=compact,delete: the caller also runs
                                         gr_log_retention (informational here) */
} gr_cleaner_config;

void gr_cleaner_config_defaults(gr_cleaner_config *cfg);

/* What one pass did (all zero when it had nothing to do, apart from the
 * dirty ratio it measured). */
typedef struct {
    double dirty_ratio;          /* dirty bytes / cleanable bytes when the pass started */
    int64_t first_dirty_offset;  /* where the dirty section started */
    int64_t end_offset;          /* the checkpoint written: everything below is clean */
    uint64_t bytes_read;         /* batch bytes read: key map and rewrite */
    uint64_t bytes_written;      /* batch bytes written to the cleaned segments */
    uint64_t records_read;       /* records of the rewritten segments */
    uint64_t records_kept;
    uint64_t tombstones_dropped;
    uint64_t batches_rebuilt;    /* some records removed: rebuilt */
    uint64_t batches_emptied;    /* kept as an empty batch for the producer's state */
    size_t segments_before;      /* in the log when the pass started */
    size_t segments_after;       /* in the log when it ended */
} gr_cleaner_stats;

/* Results of gr_cleaner_clean besides the negative gr_log_err codes. */
enum {
    GR_CLEANER_CLEANED = 0,
    GR_CLEANER_NOTHING = 1, /* dirty ratio not above min.cleanable.dirty.ratio (and not
                               forced by max.compaction.lag.ms), nothing cleanable, or the
                               pass was aborted (the thread stopping) */
};

/* One compaction pass over log (see cleaner.c). Never blocks appends or
 * reads for longer than the log's own short critical sections. Returns
 * GR_CLEANER_CLEANED, GR_CLEANER_NOTHING, or a negative gr_log_err (the
 * log is left valid and unchanged where the error struck). stats may be
 * NULL. */
int gr_cleaner_clean(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                     gr_cleaner_stats *stats);

/* For crash tests: like gr_cleaner_clean, but the first segment swap runs
 * only `steps` steps of gr_log_replace_segments_steps and the pass stops
 * there as a crash would; the caller must then gr_log_abandon the log. */
int gr_cleaner_clean_steps(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                           gr_cleaner_stats *stats, int steps);

/* The dirty ratio the next pass would see (0 when nothing is cleanable) and
 * whether a pass would run. GR_LOG_OK or a negative gr_log_err. */
int gr_cleaner_dirty_ratio(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                           double *ratio, bool *cleanable);

/* ---- the cleaner thread ---- */

typedef struct gr_cleaner gr_cleaner;

/* Starts the thread; backoff_ms is log.cleaner.backoff.ms (15000), the
 * sleep after a round that found nothing to clean. NULL on failure. */
gr_cleaner *gr_cleaner_start(int64_t backoff_ms);

/* Wakes the thread, waits for the pass in progress (if any) to finish and
 * joins it. The logs are not the cleaner's: they stay open. */
void gr_cleaner_stop(gr_cleaner *c);

/* Adds a log (or replaces its configuration; cfg is copied). 0 or -1. */
int gr_cleaner_add(gr_cleaner *c, gr_log *log, const gr_cleaner_config *cfg);

/* Removes a log, waiting first if it is being cleaned right now; after the
 * call the cleaner never touches it again (it may then be closed). */
void gr_cleaner_remove(gr_cleaner *c, gr_log *log);

/* Totals over every pass the thread has completed (counters and segment
 * counts summed; ratio and offsets those of the last pass), and their
 * number. */
void gr_cleaner_totals(gr_cleaner *c, gr_cleaner_stats *total, uint64_t *passes);

#endif
