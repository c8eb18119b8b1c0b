/*
 * batch.c - record batches (magic 2): see batch.h for the layout.
 *
 * Three layers, each trusting only what the one below has checked:
 *
 *  1. The header (gr_batch_parse_header): 61 fixed bytes read through a
 *     gr_reader. It proves the header fits, magic is 2 and the batch length
 *     is at least the header and fits in the bytes given. Walking a log file
 *     needs no more.
 *  2. The envelope (gr_batch_validate, deep = false): the batch occupies
 *     exactly the bytes given, the CRC-32C over attributes..end matches, and
 *     the codec is one of the five Kafka defines. This is what recovery
 *     checks on every batch of a segment it has not seen closed cleanly.
 *  3. The records (deep = true, and gr_record_iter_*): the records section,
 *     decompressed if needed into a buffer bounded by max_uncompressed, is
 *     walked record by record with a gr_reader. This is what produce checks,
 *     following Kafka's producer-facing rules: record count >= 1 and equal
 *     to last offset delta + 1, record i carrying offset delta i, and for
 *     CreateTime batches the header's max timestamp equal to the largest
 *     record timestamp.
 *
 * Hostile input. Every length and count comes from the sender. Nothing is
 * allocated in proportion to a count: the iterator walks records one at a
 * time and fails at the first one that does not fit, so a record count of
 * 2^31-1 over three bytes of records costs one failed read. An uncompressed
 * batch whose count could not fit in its records even at the smallest
 * possible record size (7 bytes) is refused before any record is read, and
 * a compressed one whose count could not fit in max_uncompressed bytes is
 * refused (GR_BATCH_DECOMPRESS) before it is decompressed. The only
 * allocation is the decompressed records section, and gr_decompress enforces
 * max_uncompressed while streaming.
 *
 * A record must use exactly the bytes its length prefix claims: each record
 * is parsed through a sub-reader over that many bytes, which must be empty
 * at the end. After the last counted record the records section (or the
 * decompressed stream) must be empty too; bytes left over, or running out
 * before the count is reached, are GR_BATCH_BAD_COUNT.
 *
 * In-place rewrites (base offset, leader epoch) touch bytes before the CRC's
 * range and so leave it valid; LogAppendTime changes the attributes and the
 * max timestamp, which are inside it, so the CRC is recomputed.
 *
 * Building writes the header with placeholder length and CRC, appends the
 * records (compressed as one unit when a codec is set), then patches the
 * length and the CRC in place. On failure nothing is left appended.
 */
#include "common/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/compress.h"
#include "common/crc32c.h"

/* Batch length counts everything after the length field. */
#define BATCH_MIN_LENGTH (GR_BATCH_HEADER_SIZE - GR_BATCH_LOG_OVERHEAD)
/* Length, attributes, timestamp delta, offset delta, key length, value
 * length, header count: one byte each at the least. */
#define RECORD_MIN_SIZE 7
/* Header key length and value length: one byte each at the least. */
#define HEADER_MIN_SIZE 2

const char *gr_batch_result_str(gr_batch_result r)
{
    switch (r) {
    case GR_BATCH_OK: return "ok";
    case GR_BATCH_TRUNCATED: return "batch truncated";
    case GR_BATCH_BAD_LENGTH: return "bad batch length";
    case GR_BATCH_BAD_MAGIC: return "unsupported magic";
    case GR_BATCH_BAD_CRC: return "CRC mismatch";
    case GR_BATCH_BAD_CODEC: return "unknown compression codec";
    case GR_BATCH_BAD_COUNT: return "record count disagrees with records";
    case GR_BATCH_BAD_RECORD: return "malformed record";
    case GR_BATCH_BAD_TIMESTAMP: return "max timestamp disagrees with records";
    case GR_BATCH_DECOMPRESS: return "records do not decompress within bounds";
    }
    return "unknown batch result";
}

/* ---- header ---- */

/* The fields after magic, read once magic has been checked. */
static void read_header_tail(gr_reader *r, gr_batch_header *h)
{
    gr_read_u32(r, &h->crc);
    gr_read_i16(r, &h->attributes);
    gr_read_i32(r, &h->last_offset_delta);
    gr_read_i64(r, &h->base_timestamp);
    gr_read_i64(r, &h->max_timestamp);
    gr_read_i64(r, &h->producer_id);
    gr_read_i16(r, &h->producer_epoch);
    gr_read_i32(r, &h->base_sequence);
    gr_read_i32(r, &h->record_count);
}

gr_batch_result gr_batch_parse_header(const uint8_t *p, size_t len, gr_batch_header *h)
{
    gr_reader r;
    gr_reader_init(&r, p, len);
    memset(h, 0, sizeof *h);
    /* Magic sits at the same offset in every message format, so a legacy
     * message set is recognised as such even when shorter than our header. */
    gr_read_i64(&r, &h->base_offset);
    gr_read_i32(&r, &h->batch_length);
    gr_read_i32(&r, &h->partition_leader_epoch);
    gr_read_i8(&r, &h->magic);
    if (r.err)
        return GR_BATCH_TRUNCATED;
    if (h->magic != GR_BATCH_MAGIC)
        return GR_BATCH_BAD_MAGIC;
    if (h->batch_length < BATCH_MIN_LENGTH)
        return GR_BATCH_BAD_LENGTH;
    read_header_tail(&r, h);
    if (r.err || (size_t)h->batch_length > len - GR_BATCH_LOG_OVERHEAD)
        return GR_BATCH_TRUNCATED;
    return GR_BATCH_OK;
}

/* ---- records ---- */

/* A varint-length-prefixed byte string; length -1 is null. */
static void read_bytes(gr_reader *r, gr_bytes *out)
{
    int32_t n = -1;
    *out = GR_BYTES_NULL;
    if (gr_read_varint(r, &n))
        return;
    if (n < -1) {
        r->err = GR_ERR_MALFORMED;
        return;
    }
    if (n >= 0 && gr_read_raw(r, (size_t)n, &out->ptr) == GR_OK)
        out->len = n;
}

/* Walks count headers, checking they parse: key never null, value may be. */
static int skip_headers(gr_reader *r, int32_t count)
{
    if (count < 0 || (size_t)count > gr_reader_remaining(r) / HEADER_MIN_SIZE)
        return GR_ERR_MALFORMED;
    for (int32_t i = 0; i < count && !r->err; i++) {
        gr_bytes key, value;
        read_bytes(r, &key);
        if (!r->err && key.len < 0)
            r->err = GR_ERR_MALFORMED;
        read_bytes(r, &value);
    }
    return r->err;
}

/* Parses the fields of one record from b, which spans exactly its body. */
static int parse_record_body(gr_reader *b, gr_record *rec)
{
    gr_read_i8(b, &rec->attributes);
    gr_read_varlong(b, &rec->timestamp_delta);
    gr_read_varint(b, &rec->offset_delta);
    read_bytes(b, &rec->key);
    read_bytes(b, &rec->value);
    if (gr_read_varint(b, &rec->header_count))
        return b->err;
    size_t headers_at = b->pos;
    if (skip_headers(b, rec->header_count))
        return b->err ? b->err : GR_ERR_MALFORMED;
    gr_reader_init(&rec->headers, b->p + headers_at, b->pos - headers_at);
    /* The length prefix must account for every byte the record used. */
    return gr_reader_remaining(b) == 0 ? GR_OK : GR_ERR_MALFORMED;
}

static int parse_record(gr_reader *r, gr_record *rec)
{
    int32_t len;
    const uint8_t *body;
    if (gr_read_varint(r, &len))
        return r->err;
    if (len < 0 || gr_read_raw(r, (size_t)len, &body))
        return GR_ERR_MALFORMED;
    gr_reader b;
    gr_reader_init(&b, body, (size_t)len);
    return parse_record_body(&b, rec);
}

/* A failed iterator keeps its result, negated, in remaining. */
static int iter_fail(gr_record_iter *it, gr_batch_result res, gr_batch_result *err)
{
    it->remaining = -(int32_t)res;
    if (err)
        *err = res;
    return -1;
}

/* Points the iterator at the (decompressed) records section. */
static gr_batch_result iter_open_records(gr_record_iter *it, const uint8_t *batch,
                                         size_t max_uncompressed)
{
    const uint8_t *recs = batch + GR_BATCH_HEADER_SIZE;
    size_t n = gr_batch_size(&it->h) - GR_BATCH_HEADER_SIZE;
    gr_codec codec = gr_batch_codec(&it->h);
    if (codec > GR_CODEC_ZSTD)
        return GR_BATCH_BAD_CODEC;
    if (it->h.record_count < 0)
        return GR_BATCH_BAD_COUNT;
    if (codec != GR_CODEC_NONE) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        if (gr_decompress(codec, recs, n, max_uncompressed, &out, &out_len) != GR_OK)
            return GR_BATCH_DECOMPRESS;
        it->owned = out;
        recs = out;
        n = out_len;
    }
    gr_reader_init(&it->r, recs, n);
    it->remaining = it->h.record_count;
    return GR_BATCH_OK;
}

gr_batch_result gr_record_iter_init(gr_record_iter *it, const uint8_t *batch, size_t len,
                                    size_t max_uncompressed)
{
    memset(it, 0, sizeof *it);
    gr_batch_result res = gr_batch_parse_header(batch, len, &it->h);
    if (res == GR_BATCH_OK)
        res = iter_open_records(it, batch, max_uncompressed);
    if (res != GR_BATCH_OK)
        iter_fail(it, res, NULL);
    return res;
}

int gr_record_iter_next(gr_record_iter *it, gr_record *rec, gr_batch_result *err)
{
    if (it->remaining < 0) {
        if (err)
            *err = (gr_batch_result)-it->remaining;
        return -1;
    }
    if (it->remaining == 0) {
        if (gr_reader_remaining(&it->r) == 0)
            return 0;
        return iter_fail(it, GR_BATCH_BAD_COUNT, err); /* bytes after the last record */
    }
    if (gr_reader_remaining(&it->r) == 0)
        return iter_fail(it, GR_BATCH_BAD_COUNT, err); /* fewer records than counted */
    if (parse_record(&it->r, rec) != GR_OK)
        return iter_fail(it, GR_BATCH_BAD_RECORD, err);
    it->remaining--;
    return 1;
}

void gr_record_iter_free(gr_record_iter *it)
{
    free(it->owned);
    it->owned = NULL;
}

/* ---- validation ---- */

/* Kafka's producer rules on the count, and whether that many records could
 * fit at all, checked before anything is read or decompressed. */
static gr_batch_result check_count(const gr_batch_header *h, size_t max_uncompressed)
{
    if (h->record_count <= 0 || h->last_offset_delta != h->record_count - 1)
        return GR_BATCH_BAD_COUNT;
    size_t count = (size_t)h->record_count;
    if (gr_batch_codec(h) != GR_CODEC_NONE)
        return count > max_uncompressed / RECORD_MIN_SIZE ? GR_BATCH_DECOMPRESS : GR_BATCH_OK;
    size_t records_len = (size_t)h->batch_length - BATCH_MIN_LENGTH;
    return count > records_len / RECORD_MIN_SIZE ? GR_BATCH_BAD_COUNT : GR_BATCH_OK;
}

/* Timestamp arithmetic as Kafka does it: two's-complement wrap-around. */
static int64_t add_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t sub_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

static gr_batch_result check_records(gr_record_iter *it)
{
    const gr_batch_header *h = &it->h;
    int64_t max_ts = INT64_MIN;
    gr_batch_result res = GR_BATCH_OK;
    gr_record rec;
    int rc;
    for (int32_t i = 0; (rc = gr_record_iter_next(it, &rec, &res)) == 1; i++) {
        if (rec.offset_delta != i)
            return GR_BATCH_BAD_RECORD;
        int64_t ts = add_wrap(h->base_timestamp, rec.timestamp_delta);
        if (ts > max_ts)
            max_ts = ts;
    }
    if (rc < 0)
        return res;
    if (!(h->attributes & GR_BATCH_ATTR_LOG_APPEND_TIME) && h->max_timestamp != max_ts)
        return GR_BATCH_BAD_TIMESTAMP;
    return GR_BATCH_OK;
}

static gr_batch_result validate_records(const uint8_t *p, size_t len, size_t max_uncompressed,
                                        const gr_batch_header *h)
{
    gr_batch_result res = check_count(h, max_uncompressed);
    if (res != GR_BATCH_OK)
        return res;
    gr_record_iter it;
    res = gr_record_iter_init(&it, p, len, max_uncompressed);
    if (res == GR_BATCH_OK)
        res = check_records(&it);
    gr_record_iter_free(&it);
    return res;
}

gr_batch_result gr_batch_validate(const uint8_t *p, size_t len, bool deep, size_t max_uncompressed,
                                  gr_batch_header *h)
{
    gr_batch_header local;
    if (!h)
        h = &local;
    gr_batch_result res = gr_batch_parse_header(p, len, h);
    if (res != GR_BATCH_OK)
        return res;
    if (gr_batch_size(h) != len)
        return GR_BATCH_BAD_LENGTH; /* bytes beyond the batch: not one batch */
    uint32_t crc = gr_crc32c(0, p + GR_BATCH_OFF_ATTRIBUTES, len - GR_BATCH_OFF_ATTRIBUTES);
    if (crc != h->crc)
        return GR_BATCH_BAD_CRC;
    if (gr_batch_codec(h) > GR_CODEC_ZSTD)
        return GR_BATCH_BAD_CODEC;
    if (!deep)
        return GR_BATCH_OK;
    return validate_records(p, len, max_uncompressed, h);
}

/* ---- in-place rewrites ---- */

static void put_be(uint8_t *q, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        q[i] = (uint8_t)v;
        v >>= 8;
    }
}

void gr_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    put_be(p + GR_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset, 8);
}

void gr_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    put_be(p + GR_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch, 4);
}

void gr_batch_set_log_append_time(uint8_t *p, size_t len, int64_t timestamp)
{
    if (len < GR_BATCH_HEADER_SIZE)
        return;
    /* Attributes are big-endian; the flag lives in the low byte. */
    p[GR_BATCH_OFF_ATTRIBUTES + 1] |= GR_BATCH_ATTR_LOG_APPEND_TIME;
    put_be(p + GR_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)timestamp, 8);
    uint32_t crc = gr_crc32c(0, p + GR_BATCH_OFF_ATTRIBUTES, len - GR_BATCH_OFF_ATTRIBUTES);
    put_be(p + GR_BATCH_OFF_CRC, crc, 4);
}

/* ---- building ---- */

static size_t bytes_size(gr_bytes b)
{
    return b.len < 0 ? gr_varint_size(-1) : gr_varint_size(b.len) + (size_t)b.len;
}

/* The size of a record after its length prefix; 0 if the spec is invalid. */
static size_t record_body_size(const gr_record_spec *rs, int64_t ts_delta)
{
    if (rs->offset_delta < 0 || rs->header_count < 0)
        return 0;
    if (rs->header_count > 0 && (!rs->header_keys || !rs->header_values))
        return 0;
    size_t n = 1 + gr_varlong_size(ts_delta) + gr_varint_size(rs->offset_delta) +
               bytes_size(rs->key) + bytes_size(rs->value) + gr_varint_size(rs->header_count);
    for (int32_t i = 0; i < rs->header_count; i++) {
        if (rs->header_keys[i].len < 0)
            return 0;
        n += bytes_size(rs->header_keys[i]) + bytes_size(rs->header_values[i]);
    }
    return n;
}

static void write_bytes(gr_writer *w, gr_bytes b)
{
    gr_write_varint(w, b.len < 0 ? -1 : b.len);
    if (b.len > 0)
        gr_write_raw(w, b.ptr, (size_t)b.len);
}

static int write_record(gr_writer *w, const gr_record_spec *rs, int64_t base_timestamp)
{
    int64_t ts_delta = sub_wrap(rs->timestamp, base_timestamp);
    size_t body = record_body_size(rs, ts_delta);
    if (body == 0 || body > INT32_MAX)
        return GR_ERR_MALFORMED;
    gr_write_varint(w, (int32_t)body);
    gr_write_i8(w, 0); /* record attributes: unused */
    gr_write_varlong(w, ts_delta);
    gr_write_varint(w, rs->offset_delta);
    write_bytes(w, rs->key);
    write_bytes(w, rs->value);
    gr_write_varint(w, rs->header_count);
    for (int32_t i = 0; i < rs->header_count; i++) {
        write_bytes(w, rs->header_keys[i]);
        write_bytes(w, rs->header_values[i]);
    }
    return gr_writer_ok(w) ? GR_OK : w->err;
}

static int write_records(gr_writer *w, const gr_record_spec *records, int32_t count,
                         int64_t base_timestamp)
{
    for (int32_t i = 0; i < count; i++) {
        int rc = write_record(w, &records[i], base_timestamp);
        if (rc != GR_OK)
            return rc;
    }
    return GR_OK;
}

/* Records go straight after the header, or through a scratch writer and the
 * codec when compressed. */
static int write_records_section(gr_writer *w, gr_codec codec, const gr_record_spec *records,
                                 int32_t count, int64_t base_timestamp)
{
    if (codec == GR_CODEC_NONE)
        return write_records(w, records, count, base_timestamp);
    gr_writer plain;
    gr_writer_init(&plain, 0);
    int rc = write_records(&plain, records, count, base_timestamp);
    if (rc == GR_OK)
        rc = gr_compress(codec, -1, plain.p, plain.len, w);
    gr_writer_free(&plain);
    return rc;
}

typedef struct {
    int64_t base_timestamp, max_timestamp;
    int32_t last_offset_delta;
} batch_summary;

static void summarize(const gr_record_spec *records, int32_t count, batch_summary *s)
{
    /* An empty batch (only compaction makes them) has no timestamps. */
    s->base_timestamp = count > 0 ? records[0].timestamp : -1;
    s->max_timestamp = s->base_timestamp;
    s->last_offset_delta = 0;
    for (int32_t i = 0; i < count; i++) {
        if (records[i].timestamp > s->max_timestamp)
            s->max_timestamp = records[i].timestamp;
        if (records[i].offset_delta > s->last_offset_delta)
            s->last_offset_delta = records[i].offset_delta;
    }
}

static void write_header(gr_writer *w, const gr_batch_spec *spec, const batch_summary *s,
                         int32_t count)
{
    int16_t attributes = (int16_t)((spec->attributes & ~GR_BATCH_ATTR_CODEC_MASK) | spec->codec);
    gr_write_i64(w, spec->base_offset);
    gr_write_i32(w, 0); /* batch length, patched */
    gr_write_i32(w, spec->partition_leader_epoch);
    gr_write_i8(w, GR_BATCH_MAGIC);
    gr_write_u32(w, 0); /* CRC, patched */
    gr_write_i16(w, attributes);
    gr_write_i32(w, s->last_offset_delta);
    gr_write_i64(w, s->base_timestamp);
    gr_write_i64(w, s->max_timestamp);
    gr_write_i64(w, spec->producer_id);
    gr_write_i16(w, spec->producer_epoch);
    gr_write_i32(w, spec->base_sequence);
    gr_write_i32(w, count);
}

/* Fills in the batch length and the CRC of the batch that starts at start. */
static int finish_batch(gr_writer *w, size_t start)
{
    size_t total = w->len - start;
    if (total - GR_BATCH_LOG_OVERHEAD > INT32_MAX)
        return GR_ERR_MALFORMED;
    gr_write_i32_at(w, start + GR_BATCH_OFF_LENGTH, (int32_t)(total - GR_BATCH_LOG_OVERHEAD));
    uint8_t *attrs = w->p + start + GR_BATCH_OFF_ATTRIBUTES;
    uint32_t crc = gr_crc32c(0, attrs, total - GR_BATCH_OFF_ATTRIBUTES);
    gr_write_i32_at(w, start + GR_BATCH_OFF_CRC, (int32_t)crc);
    return GR_OK;
}

int gr_batch_build(gr_writer *w, const gr_batch_spec *spec, const gr_record_spec *records,
                   int32_t count)
{
    if (!gr_writer_ok(w))
        return w->err;
    if (count < 0 || (count > 0 && !records) || (unsigned)spec->codec > GR_CODEC_ZSTD)
        return GR_ERR_MALFORMED;
    batch_summary s;
    summarize(records, count, &s);
    size_t start = w->len;
    write_header(w, spec, &s, count);
    int rc = write_records_section(w, spec->codec, records, count, s.base_timestamp);
    if (rc == GR_OK && !gr_writer_ok(w))
        rc = w->err;
    if (rc == GR_OK)
        rc = finish_batch(w, start);
    if (rc != GR_OK && gr_writer_ok(w))
        w->len = start; /* leave nothing half-built behind */
    return rc;
}

/* ---- per-record policy ---- */

/* Kafka's check, in its wrapping long arithmetic:
 * now - ts > before || -(now - ts) > after. */
static bool ts_out_of_range(int64_t ts, const gr_batch_record_policy *pol)
{
    int64_t diff = sub_wrap(pol->now_ms, ts);
    return diff > pol->before_max_ms || sub_wrap(0, diff) > pol->after_max_ms;
}

int gr_batch_check_records(const uint8_t *p, size_t len, size_t max_uncompressed,
                           const gr_batch_record_policy *policy, gr_batch_record_error_fn fn,
                           void *ctx)
{
    gr_record_iter it;
    if (gr_record_iter_init(&it, p, len, max_uncompressed) != GR_BATCH_OK) {
        gr_record_iter_free(&it);
        return -1;
    }
    bool lat = it.h.attributes & GR_BATCH_ATTR_LOG_APPEND_TIME;
    int bad = 0, rc;
    gr_record rec;
    for (int32_t i = 0; (rc = gr_record_iter_next(&it, &rec, NULL)) == 1; i++) {
        int64_t ts = lat ? it.h.max_timestamp : add_wrap(it.h.base_timestamp, rec.timestamp_delta);
        int64_t offset = add_wrap(it.h.base_offset, rec.offset_delta);
        gr_batch_record_problem problem;
        if (policy->require_key && rec.key.len < 0)
            problem = GR_BATCH_REC_NO_KEY;
        else if (policy->create_time && ts != -1)
            if (ts_out_of_range(ts, policy))
                problem = GR_BATCH_REC_TS_OUT_OF_RANGE;
            else
                continue;
        else if (lat)
            problem = GR_BATCH_REC_LOG_APPEND_TIME;
        else
            continue;
        bad++;
        if (fn)
            fn(ctx, i, problem, ts, offset, &rec);
    }
    gr_record_iter_free(&it);
    return rc < 0 ? -1 : bad;
}

/* ---- re-encoding ---- */

int gr_batch_recompress(const uint8_t *p, size_t len, gr_codec to, int level,
                        size_t max_uncompressed, gr_writer *w)
{
    gr_batch_header h;
    if (!gr_writer_ok(w))
        return w->err;
    if ((unsigned)to > GR_CODEC_ZSTD ||
        gr_batch_validate(p, len, false, max_uncompressed, &h) != GR_BATCH_OK)
        return GR_ERR_MALFORMED;
    const uint8_t *recs = p + GR_BATCH_HEADER_SIZE;
    size_t nrecs = len - GR_BATCH_HEADER_SIZE;
    uint8_t *plain = NULL;
    if (gr_batch_codec(&h) != GR_CODEC_NONE) {
        int rc = gr_decompress(gr_batch_codec(&h), recs, nrecs, max_uncompressed, &plain, &nrecs);
        if (rc != GR_OK)
            return rc == GR_ERR_NOMEM ? GR_ERR_NOMEM : GR_ERR_MALFORMED;
        recs = plain;
    }
    size_t start = w->len;
    gr_write_raw(w, p, GR_BATCH_HEADER_SIZE);
    int rc = gr_writer_ok(w) ? GR_OK : w->err;
    if (rc == GR_OK) {
        uint8_t *attrs = w->p + start + GR_BATCH_OFF_ATTRIBUTES + 1; /* the low byte */
        *attrs = (uint8_t)((*attrs & ~GR_BATCH_ATTR_CODEC_MASK) | to);
        if (to == GR_CODEC_NONE)
            gr_write_raw(w, recs, nrecs);
        else
            rc = gr_compress(to, level, recs, nrecs, w);
    }
    if (rc == GR_OK && !gr_writer_ok(w))
        rc = w->err;
    if (rc == GR_OK)
        rc = finish_batch(w, start);
    if (rc != GR_OK && w->len > start)
        w->len = start;
    free(plain);
    return rc;
}
