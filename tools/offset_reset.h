/*
 * offset_reset.h - the arithmetic of `gregorctl group reset-offsets`: how a
 * --to-datetime argument is read, and which offset each reset mode picks
 * for a partition. Pure functions, so that they are unit-tested without a
 * cluster.
 *
 * The rules are kafka-consumer-groups' (ResetOffsets): an explicit offset
 * (--to-offset, --shift-by) is clamped to [log start, log end]; --shift-by
 * needs a committed offset to shift; --to-datetime takes the first offset
 * whose timestamp is at or after the time, or the log end when there is
 * none.
 */
#ifndef GR_TOOLS_OFFSET_RESET_H
#define GR_TOOLS_OFFSET_RESET_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    GR_RESET_NONE = 0,
    GR_RESET_EARLIEST,
    GR_RESET_LATEST,
    GR_RESET_TO_OFFSET,   /* arg: the offset */
    GR_RESET_SHIFT_BY,    /* arg: the shift, may be negative */
    GR_RESET_TO_DATETIME, /* arg: the time in ms since the epoch */
} gr_reset_mode;

/* What is known of one partition. -1 where unknown: committed when the
 * group has no offset for it, by_time when ListOffsets found no record at
 * or after the time. */
typedef struct {
    int64_t committed;
    int64_t log_start;
    int64_t log_end;
    int64_t by_time;
} gr_reset_partition;

/* The new offset of a partition, or -1 when the mode cannot apply (shift
 * without a committed offset). */
int64_t gr_reset_target(gr_reset_mode mode, int64_t arg, const gr_reset_partition *p);

/* Reads an ISO-8601 date-time: YYYY-MM-DD['T'HH:MM[:SS[.fraction]]] and an
 * optional zone (Z, +HH, +HH:MM, +HHMM, or -), local time without one, as
 * kafka-consumer-groups reads --to-datetime. The result is in ms since the
 * epoch. Returns false for anything else (out-of-range fields included). */
bool gr_reset_parse_datetime(const char *s, int64_t *ms);

#endif
