/*
 * mdentry.h - one Raft entry of the metadata log: an atomic batch of
 * metadata records.
 *
 * The controller proposes, and every controller and broker applies, whole
 * entries: a topic creation (TopicRecord, its PartitionRecords, its
 * ConfigRecords) is one entry, so nobody ever sees half a topic. The Raft
 * core replicates entries as opaque bytes, one entry per offset, so every
 * record of an entry is applied at the entry's offset (that offset is, for
 * example, the broker epoch a RegisterBrokerRecord gets).
 *
 * Format: a sequence of (unsigned varint length, metadata frame) pairs,
 * where a frame is what gr_metadata_record_encode writes (frame version,
 * record type, record version, body). An empty entry holds no records.
 *
 * Applying is all or nothing as far as the bytes go: every frame is decoded
 * and checked first, and if one is truncated, malformed, of an unknown type
 * or version, or has trailing bytes, nothing is applied. A record that
 * decodes but does not fit the image (GR_METADATA_ERR_INVALID) cannot be
 * rolled back without a copy of the image; such a record is skipped, the
 * others are applied and the first such error is returned, so that every
 * node that replays the same log ends with the same image (Kafka's loader
 * likewise counts a replay fault and goes on).
 */
#ifndef GR_MDENTRY_H
#define GR_MDENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metadata.h"

/* Builds an entry by appending to a writer the caller owns. */
typedef struct {
    gr_writer *w;
    int32_t count; /* records added */
    int err;       /* first error (GR_ERR_*), sticky */
} gr_mdentry_builder;

void gr_mdentry_builder_init(gr_mdentry_builder *b, gr_writer *w);
/* Appends one record of the given GR_METADATA_RECORD_* type, encoded at
 * version (which the type must have). Returns 0 or a GR_ERR_* (sticky). */
int gr_mdentry_add(gr_mdentry_builder *b, int16_t type, int16_t version, const void *record);
/* The same at the latest version the codec has for the type. */
int gr_mdentry_add_latest(gr_mdentry_builder *b, int16_t type, const void *record);
/* 0 if every add succeeded and the writer is healthy, else the first error.
 * The entry is the writer's bytes (empty if no record was added). */
int gr_mdentry_finish(gr_mdentry_builder *b);

/* Walks the frames of an entry without decoding them. */
typedef struct {
    gr_reader r;
} gr_mdentry_iter;

void gr_mdentry_iter_init(gr_mdentry_iter *it, const uint8_t *entry, size_t len);
/* 1 and the next frame in *frame and *len; 0 at the end; GR_METADATA_ERR_DECODE
 * if the length prefixes do not fit the entry. */
int gr_mdentry_next(gr_mdentry_iter *it, const uint8_t **frame, size_t *len);

/* Checks every frame decodes exactly (see above) without applying; returns
 * GR_METADATA_OK or the GR_METADATA_ERR_* of the first bad frame, and the
 * number of records in *count (may be NULL). */
int gr_mdentry_check(const uint8_t *entry, size_t len, int32_t *count);

/*
 * Applies every record of an entry at (offset, epoch). Returns
 * GR_METADATA_OK; a decode/version/nomem error with nothing applied; or
 * the first GR_METADATA_ERR_INVALID of a record that did not fit the image,
 * with the other records applied (see the top of this file).
 */
int gr_mdentry_apply(gr_metadata_image *img, const uint8_t *entry, size_t len, int64_t offset,
                     int32_t epoch);

#endif
