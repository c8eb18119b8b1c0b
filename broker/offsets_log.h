/*
 * offsets_log.h - the records of __consumer_offsets: how the group
 * coordinator writes its state into a partition log and reads it back.
 *
 * Kafka's format, so that the topic means the same to Kafka's tools: a
 * committed offset is a record with an OffsetCommitKey (key version 1) and
 * an OffsetCommitValue; a classic group's metadata is a GroupMetadataKey
 * (key version 2) and a GroupMetadataValue. Each key and value is a
 * big-endian int16 version followed by the message in that version
 * (proto/schema/offset_commit_*.def, group_metadata_*.def). A null value is
 * a tombstone: the offset or the group was deleted, and compaction drops
 * the key afterwards.
 *
 * Versions written are the ones Kafka 4.0 writes: OffsetCommitValue v3
 * (v1 only when an explicit expire timestamp is set) and GroupMetadataValue
 * v3. Any version of the schemas is read. Records whose key version is not
 * 0, 1 or 2 (for example the new consumer protocol's records) are skipped,
 * as a coordinator that does not know them must.
 *
 * The coordinator keeps its state in memory (broker/group.h) and the log
 * is its durable copy: every change is appended here before it is
 * answered, and a broker that becomes the leader of a partition of
 * __consumer_offsets loads the state of that partition's groups from it.
 */
#ifndef GR_BROKER_OFFSETS_LOG_H
#define GR_BROKER_OFFSETS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/replica.h"
#include "common/buf.h"
#include "common/log.h"
#include "proto/messages.h"

typedef enum {
    GR_OFFSETS_REC_OFFSET, /* a committed offset of (group, topic, partition) */
    GR_OFFSETS_REC_GROUP,  /* a classic group's metadata */
} gr_offsets_rec_kind;

/* One record of __consumer_offsets. Strings and bytes point into memory
 * the caller owns (when encoding) or into the scratch arena / the read
 * buffer (when loading: valid during the visit only). */
typedef struct {
    gr_offsets_rec_kind kind;
    bool tombstone;  /* null value: the offset or the group was deleted */
    gr_str group;
    /* GR_OFFSETS_REC_OFFSET */
    gr_str topic;
    int32_t partition;
    gr_offset_commit_value offset; /* unless tombstone */
    /* GR_OFFSETS_REC_GROUP */
    gr_group_metadata_value value; /* unless tombstone */
} gr_offsets_record;

/* Appends n records (n >= 1) as one uncompressed record batch of magic 2 to
 * the log of p, which this broker must lead, stamped with now_ms, and moves
 * p's high watermark (gr_partition_appended). One batch is atomic: a crash
 * keeps all of it or none. *last_offset (if not NULL) gets the offset of
 * the last record. Returns 0, or the Kafka error to answer:
 * NOT_COORDINATOR when p is no longer led here, KAFKA_STORAGE_ERROR,
 * UNKNOWN_SERVER_ERROR (allocation), RECORD_LIST_TOO_LARGE. Any thread. */
int16_t gr_offsets_append(gr_partition *p, const gr_offsets_record *recs, size_t n, int64_t now_ms,
                          int64_t *last_offset);

/* Appends n records (n >= 1) that do not depend on each other in as few
 * batches as hold them, each within p's max.message.bytes: Kafka's
 * non-atomic coordinator writes (offset expiry, timeouts), which a single
 * batch too large for the log must not stop for good. *appended gets how
 * many records, from the first, are in the log. Returns 0, or the error of
 * the first batch that failed (RECORD_LIST_TOO_LARGE only when one record
 * alone is too large). */
int16_t gr_offsets_append_split(gr_partition *p, const gr_offsets_record *recs, size_t n,
                                int64_t now_ms, size_t *appended);

/* Encodes the batch gr_offsets_append writes (base offset 0) into w; for
 * tests and tools. Returns GR_OK or a gr_err. */
int gr_offsets_encode_batch(const gr_offsets_record *recs, size_t n, int64_t now_ms, gr_writer *w);

/* Called for every record read back, in offset order. */
typedef void (*gr_offsets_visit_fn)(void *ctx, const gr_offsets_record *rec, int64_t offset);

/* Reads log from its start up to (not including) end_offset and calls
 * visit for every record of a known kind. Records that do not decode
 * (hostile or corrupt bytes) are skipped with a warning naming the offset;
 * they never stop the load. Returns 0, or a gr_log error when the log
 * cannot be read. */
int gr_offsets_load(gr_log *log, int64_t end_offset, gr_offsets_visit_fn visit, void *ctx);

#endif
