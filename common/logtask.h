/*
 * logtask.h - the background maintenance of the partition logs: retention
 * and the timed work of each log (flush by flush.ms, unlinking of *.deleted
 * segment files once file.delete.delay.ms has passed).
 *
 * Kafka's log manager schedules the same two jobs: retention every
 * log.retention.check.interval.ms (300000) and the flusher every
 * log.flush.scheduler.interval.ms. A gr_logtask is one thread that does
 * both over every log it is given:
 *
 *   every tick_interval_ms            gr_log_tick on each log
 *   every retention_check_interval_ms gr_log_retention on each log, with
 *                                     max_offset from the log's callback
 *                                     (the high watermark), then its tick
 *
 * Retention never deletes a segment that is not wholly below the high
 * watermark, so a record that consumers cannot read yet never goes. The
 * deletions themselves are logged by gr_log_retention.
 *
 * The thread reads CLOCK_REALTIME for now_ms (retention compares it with
 * record timestamps) and schedules itself on CLOCK_MONOTONIC, so a step of
 * the wall clock neither stalls nor floods it.
 *
 * Ownership: the logs are not the task's. After gr_logtask_remove returns,
 * the task never touches that log again and the caller may close it.
 */
#ifndef GR_LOGTASK_H
#define GR_LOGTASK_H

#include <stdint.h>

#include "common/log.h"

typedef struct gr_logtask gr_logtask;

/* Returns the offset below which retention may delete (the high watermark).
 * Called from the task's thread, with none of the task's locks held; it must
 * not call gr_logtask_remove or gr_logtask_stop. */
typedef int64_t (*gr_logtask_hw_fn)(void *ctx);

/* Called after every tick of the log (gr_log_tick), with the same now_ms
 * and under the same rules as the hw callback: periodic per-log work of
 * the log's owner (the high watermark checkpoint) that must stay off the
 * owner's event loop. */
typedef void (*gr_logtask_tick_fn)(void *ctx, int64_t now_ms);

typedef struct {
    uint64_t passes;           /* retention passes completed (over every log) */
    uint64_t ticks;            /* tick-only passes completed */
    uint64_t segments_deleted; /* by retention, summed over every pass */
    uint64_t errors;           /* gr_log_retention or gr_log_tick calls that failed */
} gr_logtask_stats;

/* Starts the thread. retention_check_interval_ms is
 * log.retention.check.interval.ms (300000); tick_interval_ms how often
 * gr_log_tick runs (1000 is fine: it is cheap when there is nothing to do).
 * Values below 1 count as 1. The first retention pass comes one interval
 * after the start. NULL on failure. */
gr_logtask *gr_logtask_start(int64_t retention_check_interval_ms, int64_t tick_interval_ms);

/* Wakes the thread, waits for the log being worked on (if any) to finish,
 * and joins it. The logs stay open. NULL is ignored. */
void gr_logtask_stop(gr_logtask *t);

/* Adds a log, or replaces the callbacks of one already added. hw (may be
 * NULL: the log end offset is used) gives max_offset for retention; tick
 * (may be NULL) runs after each of the log's ticks; ctx is passed to both.
 * A replaced callback may still be called once by a pass already working
 * on the log. 0, or -1 when out of memory. */
int gr_logtask_add(gr_logtask *t, gr_log *log, gr_logtask_hw_fn hw, gr_logtask_tick_fn tick,
                   void *ctx);

/* Removes a log, waiting first if the task is working on it right now;
 * after the call the task never touches it (nor calls its hw callback)
 * again. Unknown logs are ignored. */
void gr_logtask_remove(gr_logtask *t, gr_log *log);

/* Asks for a retention pass now (a test, or a topic's retention changed);
 * returns at once. A request made during a pass gets a pass of its own
 * after it. */
void gr_logtask_run_now(gr_logtask *t);

void gr_logtask_get_stats(gr_logtask *t, gr_logtask_stats *out);

#endif
