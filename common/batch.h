/*
 * batch.h - Kafka record batches (magic 2): parsing, validation, the header
 * rewrites a leader makes on append, record iteration and building, the
 * per-record checks a topic's settings ask for (timestamps, keys), and the
 * re-encoding of a batch with another codec (compression.type).
 *
 * A record batch on the wire and on disk:
 *
 *   offset  size  field
 *        0     8  base offset
 *        8     4  batch length (bytes after this field)
 *       12     4  partition leader epoch
 *       16     1  magic (2)
 *       17     4  CRC-32C of everything from attributes to the end
 *       21     2  attributes (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
 *       23     4  last offset delta
 *       27     8  base timestamp
 *       35     8  max timestamp
 *       43     8  producer id
 *       51     2  producer epoch
 *       53     4  base sequence
 *       57     4  record count
 *       61     -  records (compressed as a whole when the codec is not none)
 *
 * Because the CRC starts at the attributes, a broker can assign offsets
 * (base offset) and stamp the partition leader epoch without touching the
 * CRC; only LogAppendTime (attributes and max timestamp) needs it recomputed.
 *
 * Every function here treats its input as hostile: nothing is read outside
 * the given length, and a malformed batch is an error code, never a crash.
 */
#ifndef GR_BATCH_H
#define GR_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define GR_BATCH_HEADER_SIZE 61
#define GR_BATCH_LOG_OVERHEAD 12 /* base offset + batch length */
#define GR_BATCH_MAGIC 2

/* Attribute bits. */
#define GR_BATCH_ATTR_CODEC_MASK 0x07
#define GR_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define GR_BATCH_ATTR_TRANSACTIONAL 0x10
#define GR_BATCH_ATTR_CONTROL 0x20

/* Offsets of header fields, for in-place rewrites. */
#define GR_BATCH_OFF_BASE_OFFSET 0
#define GR_BATCH_OFF_LENGTH 8
#define GR_BATCH_OFF_LEADER_EPOCH 12
#define GR_BATCH_OFF_MAGIC 16
#define GR_BATCH_OFF_CRC 17
#define GR_BATCH_OFF_ATTRIBUTES 21
#define GR_BATCH_OFF_MAX_TIMESTAMP 35

typedef enum {
    GR_CODEC_NONE = 0,
    GR_CODEC_GZIP = 1,
    GR_CODEC_SNAPPY = 2,
    GR_CODEC_LZ4 = 3,
    GR_CODEC_ZSTD = 4,
} gr_codec;

typedef struct {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the length field: total size - 12 */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} gr_batch_header;

static inline gr_codec gr_batch_codec(const gr_batch_header *h)
{
    return (gr_codec)(h->attributes & GR_BATCH_ATTR_CODEC_MASK);
}
static inline int64_t gr_batch_last_offset(const gr_batch_header *h)
{
    return h->base_offset + h->last_offset_delta;
}
static inline size_t gr_batch_size(const gr_batch_header *h)
{
    return GR_BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}

/* Results of validation, mapped by callers to Kafka error codes. */
typedef enum {
    GR_BATCH_OK = 0,
    GR_BATCH_TRUNCATED,      /* fewer bytes than the header or batch length says (CORRUPT_MESSAGE) */
    GR_BATCH_BAD_LENGTH,     /* batch length below the header size or absurd (CORRUPT_MESSAGE) */
    GR_BATCH_BAD_MAGIC,      /* magic other than 2 (UNSUPPORTED_VERSION / CORRUPT_MESSAGE) */
    GR_BATCH_BAD_CRC,        /* CRC-32C mismatch (CORRUPT_MESSAGE) */
    GR_BATCH_BAD_CODEC,      /* codec 5-7 (CORRUPT_MESSAGE) */
    GR_BATCH_BAD_COUNT,      /* record count disagrees with last offset delta or records (INVALID_RECORD) */
    GR_BATCH_BAD_RECORD,     /* a record does not parse (INVALID_RECORD / CORRUPT_MESSAGE) */
    GR_BATCH_BAD_TIMESTAMP,  /* max timestamp is not the max of the records' (INVALID_TIMESTAMP) */
    GR_BATCH_DECOMPRESS,     /* records do not decompress, or exceed the bound (CORRUPT_MESSAGE) */
} gr_batch_result;

const char *gr_batch_result_str(gr_batch_result r);

/* Parses the 61-byte header of the batch at p (len bytes available). Checks
 * only that the header fits, that magic is 2 and that the batch length is
 * sane (>= 49 and fits in len). Cheap: used to walk a log file. */
gr_batch_result gr_batch_parse_header(const uint8_t *p, size_t len, gr_batch_header *h);

/* Full validation of one batch occupying exactly len bytes: header, CRC,
 * codec, and — when deep is true — every record (decompressing if needed,
 * with max_uncompressed as the bound on the decompressed size): record count
 * matches last offset delta + 1 (for uncompressed and decompressed records
 * alike), offset deltas in range, varints well-formed, record lengths
 * consistent, the max timestamp consistent with the records for CreateTime.
 * Recovery uses deep = false (CRC and header); produce uses deep = true. */
gr_batch_result gr_batch_validate(const uint8_t *p, size_t len, bool deep, size_t max_uncompressed,
                                  gr_batch_header *h);

/* In-place header rewrites. Offsets and leader epoch leave the CRC valid. */
void gr_batch_set_base_offset(uint8_t *p, int64_t base_offset);
void gr_batch_set_leader_epoch(uint8_t *p, int32_t epoch);
/* Sets the LogAppendTime attribute bit and max timestamp, recomputes the CRC. */
void gr_batch_set_log_append_time(uint8_t *p, size_t len, int64_t timestamp);

/* ---- records ---- */

typedef struct {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    gr_bytes key;   /* len -1: null */
    gr_bytes value; /* len -1: null (a tombstone) */
    int32_t header_count;
    gr_reader headers; /* header_count x (varint key len, key, varint value len, value) */
} gr_record;

/* Iterates the records of a batch. For a compressed batch the records are
 * decompressed into memory the iterator owns (bounded by max_uncompressed). */
typedef struct {
    gr_batch_header h;
    gr_reader r;
    int32_t remaining;
    uint8_t *owned; /* decompressed records, freed by gr_record_iter_free */
} gr_record_iter;

gr_batch_result gr_record_iter_init(gr_record_iter *it, const uint8_t *batch, size_t len,
                                    size_t max_uncompressed);
/* 1 and *rec filled, 0 at the end, or -1 (a gr_batch_result is in *err). */
int gr_record_iter_next(gr_record_iter *it, gr_record *rec, gr_batch_result *err);
void gr_record_iter_free(gr_record_iter *it);

/* ---- per-record policy (a leader's produce checks) ---- */

/* What a topic asks of each record beyond its well-formedness, as Kafka's
 * LogValidator checks it. */
typedef struct {
    int64_t now_ms;
    bool create_time;    /* message.timestamp.type=CreateTime */
    int64_t before_max_ms; /* message.timestamp.before.max.ms */
    int64_t after_max_ms;  /* message.timestamp.after.max.ms */
    bool require_key;    /* cleanup.policy has compact */
} gr_batch_record_policy;

typedef enum {
    GR_BATCH_REC_NO_KEY,          /* a compacted topic's record without a key (INVALID_RECORD) */
    GR_BATCH_REC_TS_OUT_OF_RANGE, /* CreateTime outside [now - before, now + after] (INVALID_TIMESTAMP) */
    GR_BATCH_REC_LOG_APPEND_TIME, /* the producer set LogAppendTime (INVALID_TIMESTAMP) */
} gr_batch_record_problem;

/* One refused record: its index in the batch, its timestamp and offset as
 * the producer sent them, and the record itself. */
typedef void (*gr_batch_record_error_fn)(void *ctx, int32_t index, gr_batch_record_problem problem,
                                         int64_t timestamp, int64_t offset, const gr_record *rec);

/* Checks every record of a batch against policy, at most one problem per
 * record (a missing key first, as Kafka), calling fn for each. Returns the
 * number of records refused, or -1 when the records cannot be read (the
 * batch's own validation reports why). A record's timestamp is the batch's
 * max timestamp when the batch says LogAppendTime, as Kafka reads it. */
int gr_batch_check_records(const uint8_t *p, size_t len, size_t max_uncompressed,
                           const gr_batch_record_policy *policy, gr_batch_record_error_fn fn,
                           void *ctx);

/* Re-encodes one batch with another codec: the records section is
 * decompressed and compressed again with `to` at `level` (-1: the codec's
 * default), the codec bits change, the batch length and the CRC are
 * recomputed; every other header field and every record byte stay. The
 * input must be a whole batch with a valid header and CRC. Appends the new
 * batch to w. GR_OK, GR_ERR_MALFORMED (invalid input, a codec it cannot
 * decode within max_uncompressed) or GR_ERR_NOMEM; on failure nothing is
 * appended. */
int gr_batch_recompress(const uint8_t *p, size_t len, gr_codec to, int level,
                        size_t max_uncompressed, gr_writer *w);

/* ---- building ---- */

typedef struct {
    int64_t timestamp;
    int32_t offset_delta;
    gr_bytes key;
    gr_bytes value;
    int32_t header_count;
    const gr_bytes *header_keys;   /* header_count entries */
    const gr_bytes *header_values; /* header_count entries; len -1 for null */
} gr_record_spec;

typedef struct {
    int64_t base_offset;
    int32_t partition_leader_epoch;
    int16_t attributes; /* codec bits are taken from codec below */
    gr_codec codec;
    int64_t producer_id; /* -1 when not idempotent */
    int16_t producer_epoch;
    int32_t base_sequence;
} gr_batch_spec;

/* Builds a complete batch (header, CRC, records compressed with spec->codec)
 * and appends it to w. Timestamps: base = first record's, max = the
 * largest; last offset delta = the largest offset delta. Used by tests,
 * compaction and the broker when it recompresses. GR_OK or negative. */
int gr_batch_build(gr_writer *w, const gr_batch_spec *spec, const gr_record_spec *records,
                   int32_t count);

#endif
