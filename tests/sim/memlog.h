/*
 * memlog.h - an in-memory Raft log with a durability model, implementing
 * gr_raft_log_ops for the simulator and the unit tests.
 *
 * The log holds entries [start, end). Entries below durable_end survive a
 * crash (memlog_crash drops the rest); memlog_flush makes everything
 * durable. As raft.h requires, truncation and snapshot installation are
 * durable at once. One snapshot is kept (the latest), plus the one being
 * received from a leader, which a crash discards.
 *
 * Hooks (optional) let the simulator check invariants on every append and
 * truncation as they happen.
 */
#ifndef GR_TEST_MEMLOG_H
#define GR_TEST_MEMLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/raft.h"

typedef struct {
    int32_t epoch;
    uint8_t type;
    uint32_t len;
    uint8_t *data;
} memlog_entry;

typedef struct memlog memlog;

typedef struct {
    void *ctx;
    /* After an append: the entry now at offset (its predecessor, if any, is
     * at offset - 1 or the snapshot). Return nonzero to fail the append. */
    int (*appended)(void *ctx, memlog *l, int64_t offset);
    /* Before a truncation to offset. */
    void (*truncating)(void *ctx, memlog *l, int64_t offset);
} memlog_hooks;

struct memlog {
    int64_t start;
    memlog_entry *ents; /* ents[i] is offset start + i */
    size_t n, cap;
    int64_t durable_end;
    uint64_t trunc_gen; /* bumped by every truncation */

    gr_raft_snapshot_id snap; /* end_offset -1: none */
    uint8_t *snap_data;
    size_t snap_len;

    gr_raft_snapshot_id in_id; /* snapshot being received */
    uint8_t *in_data;
    size_t in_len, in_cap;

    memlog_hooks hooks;
    int fail_appends; /* test knob: appends fail while nonzero */
};

void memlog_init(memlog *l);
void memlog_free(memlog *l);
void memlog_ops(memlog *l, gr_raft_log_ops *ops);

int64_t memlog_end(const memlog *l);
/* The entry at offset, NULL outside [start, end). */
const memlog_entry *memlog_at(const memlog *l, int64_t offset);
/* Epoch of offset - 1 as a fetch would name it (snapshot epoch, or 0). */
int32_t memlog_prev_epoch(const memlog *l, int64_t offset);

void memlog_flush(memlog *l);
/* A crash: the non-durable suffix and a partial incoming snapshot vanish. */
void memlog_crash(memlog *l);
/* Stores a snapshot covering [0, end_offset) and deletes the log prefix
 * below it. end_offset must be in (start, end]. 0, or -1 on no memory. */
int memlog_take_snapshot(memlog *l, int64_t end_offset, const uint8_t *data, size_t len);
/* Appends one entry directly (tests building a log). */
int memlog_append_raw(memlog *l, int32_t epoch, const void *data, uint32_t len);

#endif
