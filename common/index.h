/*
 * index.h - the sparse, memory-mapped indexes of a log segment.
 *
 * Each segment <base>.log has two companions, as in Kafka:
 *
 *   <base>.index      offset index: 8-byte entries
 *                       int32 relative offset (batch base offset - segment base)
 *                       int32 file position of that batch in the .log
 *   <base>.timeindex  time index: 12-byte entries
 *                       int64 timestamp (largest timestamp seen in the segment
 *                             up to and including the batch)
 *                       int32 relative offset of that batch's base offset
 *
 * Integers are big-endian, like Kafka's. An entry is added every
 * log.index.interval.bytes of log, so the indexes are sparse: a lookup gives
 * the closest indexed batch at or before the target and the caller scans the
 * log forward from there.
 *
 * Invariants of a well-formed index (gr_index_check verifies them):
 *   - offset index: relative offsets strictly increase, positions strictly
 *     increase and are > 0 (the batch at position 0 is never indexed: the
 *     segment start is the implicit first entry), every position is below the
 *     log file's size and every offset below the segment's next offset;
 *   - time index: timestamps strictly increase, offsets never decrease.
 * Because an all-zero entry is never valid, the zeros of a preallocated file
 * left by a crash are recognised and trimmed when the file is opened.
 *
 * The offset index is keyed by the batch's *base* offset (Kafka keys it by the
 * last offset), so that every entry can be verified against the log: the
 * batch at the entry's position must have exactly that base offset. The
 * segment code checks this on every lookup and rebuilds an index that lies.
 *
 * The active segment's index files are preallocated to
 * log.index.size.max.bytes and mapped whole; when the segment rolls (or the
 * log is closed) they are trimmed to their entries. Reads of an index are
 * plain memory reads of the mapping: the page cache holds the data.
 *
 * Not thread-safe: the owning log's mutex protects every index.
 */
#ifndef GR_INDEX_H
#define GR_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GR_INDEX_OFFSET_ENTRY 8
#define GR_INDEX_TIME_ENTRY 12

typedef enum { GR_INDEX_OFFSET, GR_INDEX_TIME } gr_index_kind;

typedef struct {
    gr_index_kind kind;
    int fd;
    char *path;          /* owned */
    int64_t base_offset; /* the segment's base offset */
    uint8_t *map;        /* NULL when map_len is 0 */
    size_t map_len;      /* bytes mapped == file size */
    uint32_t entries;    /* valid entries at the start of the mapping */
    bool created;        /* the file did not exist when opened */
    bool ragged;         /* its size was not a whole number of entries */
} gr_index;

typedef struct {
    int64_t offset;   /* absolute */
    uint32_t position; /* offset index: file position; time index: unused */
    int64_t timestamp; /* time index: timestamp; offset index: unused */
} gr_index_entry;

/* Opens (creating if absent) an index file. The file is sized to max_bytes
 * rounded down to whole entries when max_bytes > 0 (an active segment), or
 * to exactly its entries when max_bytes is 0. Existing entries are kept;
 * trailing all-zero entries are dropped. 0, or -1 with errno set. */
int gr_index_open(gr_index *idx, const char *path, gr_index_kind kind, int64_t base_offset,
                  size_t max_bytes);
void gr_index_close(gr_index *idx);

/* Re-sizes the file and mapping: max_bytes > 0 preallocates (a segment
 * becoming active again), 0 trims to the entries (a segment rolling). */
int gr_index_resize(gr_index *idx, size_t max_bytes);

/* Renames the file (segment swaps and deletions); the mapping stays. */
int gr_index_rename(gr_index *idx, const char *new_path);

/* Writes the mapping's dirty pages and fsyncs the file. */
int gr_index_sync(gr_index *idx);

size_t gr_index_entry_size(gr_index_kind kind);
uint32_t gr_index_capacity(const gr_index *idx);
bool gr_index_full(const gr_index *idx);
gr_index_entry gr_index_get(const gr_index *idx, uint32_t i);
bool gr_index_last(const gr_index *idx, gr_index_entry *out); /* false if empty */

/* Appends an entry. Returns 0, 1 when skipped (not increasing: the entry
 * would add nothing), or -1 when the index is full or the relative offset
 * does not fit. */
int gr_index_append_offset(gr_index *idx, int64_t offset, uint32_t position);
int gr_index_append_time(gr_index *idx, int64_t timestamp, int64_t offset);

/* Offset index: the last entry with offset <= target. Time index: the last
 * entry with timestamp < target. Return the entry number or -1 if none.
 * Binary search; on a corrupt (unsorted) index the answer still satisfies
 * the comparison, which is what makes verification by the caller enough. */
int64_t gr_index_lookup_offset(const gr_index *idx, int64_t target, gr_index_entry *out);
int64_t gr_index_lookup_time(const gr_index *idx, int64_t target, gr_index_entry *out);

/* Drops entries: all of them, or those with offset >= offset. */
void gr_index_reset(gr_index *idx);
void gr_index_truncate_offset(gr_index *idx, int64_t offset);

/* Checks the invariants above against the segment's log size and next
 * offset. full: every entry; otherwise only the first and the last (cheap,
 * what Kafka does). NULL when well-formed, else a reason for the log. */
const char *gr_index_check(const gr_index *idx, uint64_t log_size, int64_t next_offset, bool full);

#endif
