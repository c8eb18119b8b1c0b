/*
 * segment.h - one segment of a partition log: a .log file of record batches
 * and its two indexes.
 *
 *   <dir>/<base offset, 20 digits>.log         batches, exactly as appended
 *   <dir>/<base offset, 20 digits>.index       offset index (index.h)
 *   <dir>/<base offset, 20 digits>.timeindex   time index (index.h)
 *
 * A suffix may follow each name while a segment is in transit: ".cleaned"
 * (written by the cleaner, not yet committed), ".swap" (committed, being
 * swapped in) and ".deleted" (removed from the log, unlinked after
 * file.delete.delay.ms). The log decides what the suffixes mean; the segment
 * only renames its files.
 *
 * Invariants, which every function here keeps:
 *   - the first `size` bytes of the .log are whole batches with strictly
 *     increasing offsets, all in [base_offset, base_offset + 2^31), at
 *     positions below 2^31; `next_offset` is the last batch's last offset + 1
 *     (base_offset when empty);
 *   - index entries point only into those bytes (index.h);
 *   - the data is never held in the heap: reads are pread(2) of headers, or
 *     a file range handed to the caller.
 *
 * Segments are reference counted. The log holds one reference while the
 * segment is part of it; a reader of a file range holds another, so the
 * descriptor stays open (and the data readable, even unlinked) until the
 * last reader lets go. Everything but the reference count is protected by
 * the owning log's mutex, not by the segment.
 */
#ifndef GR_SEGMENT_H
#define GR_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"
#include "common/index.h"

#define GR_SEGMENT_SUFFIX_MAX 16
#define GR_SEGMENT_MAX_UNCOMPRESSED (64u << 20) /* bound when records are iterated */

typedef struct gr_segment {
    int64_t base_offset;
    char *stem;                           /* "<dir>/<20 digits>", owned */
    char *name;                           /* "topic-partition" for log lines, owned */
    char suffix[GR_SEGMENT_SUFFIX_MAX];   /* appended to every file name */
    int fd;                               /* the .log, read-write */
    uint64_t size;                        /* bytes of whole batches */
    int64_t next_offset;
    int64_t last_batch_base;              /* base offset of the last batch, -1 when empty */
    int64_t max_timestamp;                /* largest batch max timestamp, -1 when none */
    int64_t first_timestamp;              /* max timestamp of the first batch, -1 when empty */
    int64_t created_ms;                   /* when this process created or opened it */
    uint32_t bytes_since_index;
    int32_t index_interval;               /* log.index.interval.bytes */
    size_t index_max_bytes;               /* preallocation while active, 0 when inactive */
    bool dirty;                           /* appended to since the last fsync */
    gr_index oidx;
    gr_index tidx;
    atomic_int refs;
} gr_segment;

/* What recovery did to a segment. */
typedef struct {
    uint64_t truncated_bytes; /* cut from the tail */
    uint64_t batches;         /* valid batches kept */
    const char *reason;       /* why the cut happened, NULL when none */
} gr_segment_recovery;

/* "<dir>/<20-digit base><ext>" into buf; false if it does not fit. */
bool gr_segment_filename(char *buf, size_t cap, const char *dir, int64_t base, const char *ext);

/* Creates an empty segment (truncating files that exist). index_max_bytes
 * is the preallocation for an active segment. NULL with errno on failure. */
gr_segment *gr_segment_create(const char *dir, const char *name, int64_t base, const char *suffix,
                              size_t index_max_bytes, int32_t index_interval, int64_t now_ms);

/* How much gr_segment_open trusts what it finds. */
typedef enum {
    GR_SEGMENT_TRUST,   /* after a clean shutdown: first and last index entries checked */
    GR_SEGMENT_CHECK,   /* fsynced before a crash: every index entry checked */
    GR_SEGMENT_RECOVER, /* maybe torn: every batch validated, indexes rebuilt */
} gr_segment_open_mode;

/* Opens an existing segment. GR_SEGMENT_RECOVER validates every batch
 * (header and CRC), cuts the file at the first bad or torn one and rebuilds
 * the indexes (*rec says what happened). The other modes load the state
 * from the indexes and a walk of the tail; if that finds anything wrong (or
 * an index is missing or ragged) the segment is recovered instead and
 * rec->reason says so. index_max_bytes is 0 for an inactive segment. NULL
 * with errno on failure. */
gr_segment *gr_segment_open(const char *dir, const char *name, int64_t base, const char *suffix,
                            size_t index_max_bytes, int32_t index_interval,
                            gr_segment_open_mode mode, int64_t now_ms, gr_segment_recovery *rec);

gr_segment *gr_segment_ref(gr_segment *seg);
void gr_segment_unref(gr_segment *seg); /* closes and frees at zero */

/* Validates every batch and rebuilds the indexes, cutting the tail at the
 * first invalid batch (see gr_segment_open). */
int gr_segment_recover(gr_segment *seg, gr_segment_recovery *rec);
/* Rebuilds both indexes from the log (which is trusted). */
int gr_segment_rebuild_indexes(gr_segment *seg);

/* Appends whole batches (already validated, offsets assigned, the first at or
 * after next_offset, increasing) with one write at the end of the file, then
 * indexes them. On failure the file is cut back and -1 returned. */
int gr_segment_append(gr_segment *seg, const uint8_t *data, size_t len);

/* Finds the first batch whose last offset >= target: 0 and *pos, *h filled,
 * 1 if there is none in this segment, -1 on an I/O error or a corrupt log. */
int gr_segment_find(gr_segment *seg, int64_t target, uint64_t *pos, gr_batch_header *h);

/* The length of whole batches from pos: at least one batch, then more while
 * the total stays <= max_bytes; no batch with base offset >= max_offset.
 * 0 or -1. */
int gr_segment_range(gr_segment *seg, uint64_t pos, size_t max_bytes, int64_t max_offset,
                     uint64_t *len);

/* The first record at or after min_offset with timestamp >= ts: 0 with
 * *offset, *timestamp; 1 if none in this segment, -1 on error. */
int gr_segment_find_timestamp(gr_segment *seg, int64_t ts, int64_t min_offset, int64_t *offset,
                              int64_t *timestamp);
/* The first record whose timestamp equals the segment's max timestamp. */
int gr_segment_find_max_timestamp(gr_segment *seg, int64_t *offset, int64_t *timestamp);

/* Removes every batch whose last offset >= offset (a batch straddling the
 * offset goes entirely: batches are never split). 0 or -1. */
int gr_segment_truncate_to(gr_segment *seg, int64_t offset);

/* fsync of the log and the indexes if anything changed. */
int gr_segment_flush(gr_segment *seg);
/* The segment stops being active: final time index entry, indexes trimmed,
 * everything fsynced. */
int gr_segment_seal(gr_segment *seg);
/* The segment becomes active again (after a truncation): indexes
 * preallocated to index_max_bytes. */
int gr_segment_activate(gr_segment *seg, size_t index_max_bytes);

/* Renames the three files to the new suffix. The .log is renamed last when
 * the new suffix is "" and first otherwise, so that a crash in between
 * leaves a .log whose name tells the truth and whose indexes can be
 * rebuilt. 0 or -1 with errno (some files may have moved). */
int gr_segment_rename(gr_segment *seg, const char *suffix);

/* Why the segment should roll before appending `len` bytes whose batches
 * end at last_offset and have max_timestamp max_ts, or NULL. */
const char *gr_segment_should_roll(const gr_segment *seg, size_t len, int64_t last_offset,
                                   int64_t max_ts, int64_t segment_bytes, int64_t segment_ms,
                                   int64_t now_ms);

#endif
