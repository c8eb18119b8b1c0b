/*
 * test_batch.c - common/batch: a golden batch written by hand from the
 * format, round trips through the builder for every codec, each kind of
 * corruption a hostile producer can send, the in-place header rewrites, the
 * decompression bound, random mutations, and batches captured from a real
 * client (librdkafka via kcat) for every codec.
 *
 * Batches under test are copied into buffers of exactly their size, so the
 * sanitizer build catches any read past the end.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "common/compress.h"
#include "common/crc32c.h"
#include "tests/unit/suites.h"

#define B(s) ((gr_bytes){(const uint8_t *)(s), (int32_t)(sizeof(s) - 1)})
#define MAX_UNCOMPRESSED (16u << 20)

/* ---- helpers ---- */

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(q);
    if (n)
        memcpy(q, p, n);
    return q;
}

static void put_be(uint8_t *q, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        q[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *q, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | q[i];
    return v;
}

static void refresh_crc(uint8_t *p, size_t len)
{
    put_be(p + GR_BATCH_OFF_CRC, gr_crc32c(0, p + GR_BATCH_OFF_ATTRIBUTES, len - GR_BATCH_OFF_ATTRIBUTES), 4);
}

static bool bytes_eq(gr_bytes a, gr_bytes b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static gr_batch_result deep(const uint8_t *p, size_t len)
{
    return gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, NULL);
}

static gr_batch_result shallow(const uint8_t *p, size_t len)
{
    return gr_batch_validate(p, len, false, MAX_UNCOMPRESSED, NULL);
}

/* Assembles a batch by hand around a records section given as bytes (which
 * may be deliberately broken), with a correct length and CRC. */
typedef struct {
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int32_t record_count;
} hand_header;

static uint8_t *assemble(const hand_header *hh, const uint8_t *recs, size_t n, size_t *len)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_i64(&w, 0);
    gr_write_i32(&w, (int32_t)(GR_BATCH_HEADER_SIZE - GR_BATCH_LOG_OVERHEAD + n));
    gr_write_i32(&w, 0);
    gr_write_i8(&w, 2);
    gr_write_u32(&w, 0);
    gr_write_i16(&w, hh->attributes);
    gr_write_i32(&w, hh->last_offset_delta);
    gr_write_i64(&w, hh->base_timestamp);
    gr_write_i64(&w, hh->max_timestamp);
    gr_write_i64(&w, -1);
    gr_write_i16(&w, -1);
    gr_write_i32(&w, -1);
    gr_write_i32(&w, hh->record_count);
    gr_write_raw(&w, recs, n);
    ck_assert(gr_writer_ok(&w));
    refresh_crc(w.p, w.len);
    uint8_t *out = dup_exact(w.p, w.len);
    *len = w.len;
    gr_writer_free(&w);
    return out;
}

/* Builds with gr_batch_build and returns an exact-size copy. */
static uint8_t *build(gr_codec codec, int16_t attributes, const gr_record_spec *recs, int32_t n,
                      size_t *len)
{
    gr_batch_spec spec = {.base_offset = 0,
                          .partition_leader_epoch = 0,
                          .attributes = attributes,
                          .codec = codec,
                          .producer_id = -1,
                          .producer_epoch = -1,
                          .base_sequence = -1};
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_batch_build(&w, &spec, recs, n), GR_OK);
    uint8_t *out = dup_exact(w.p, w.len);
    *len = w.len;
    gr_writer_free(&w);
    return out;
}

/* Iterates to the end and returns the record count, or -1 - result on error. */
static int64_t count_records(const uint8_t *p, size_t len)
{
    gr_record_iter it;
    gr_batch_result res = gr_record_iter_init(&it, p, len, MAX_UNCOMPRESSED);
    if (res != GR_BATCH_OK) {
        gr_record_iter_free(&it);
        return -1 - (int64_t)res;
    }
    gr_record rec;
    int64_t n = 0;
    int rc;
    while ((rc = gr_record_iter_next(&it, &rec, &res)) == 1)
        n++;
    gr_record_iter_free(&it);
    return rc == 0 ? n : -1 - (int64_t)res;
}

/* ---- the golden batch, written byte by byte from the format ---- */

static const uint8_t golden[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* base offset 0 */
    0x00, 0x00, 0x00, 0x46,                         /* batch length 70 = 82 - 12 */
    0x00, 0x00, 0x00, 0x00,                         /* partition leader epoch 0 */
    0x02,                                           /* magic 2 */
    0x00, 0x21, 0xf7, 0x0e,                         /* CRC-32C of bytes 21..81 */
    0x00, 0x00,                                     /* attributes: none, CreateTime */
    0x00, 0x00, 0x00, 0x01,                         /* last offset delta 1 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* base timestamp 1700000000000 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, /* max timestamp 1700000000005 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producer id -1 */
    0xff, 0xff,                                     /* producer epoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* base sequence -1 */
    0x00, 0x00, 0x00, 0x02,                         /* record count 2 */
    /* record 0 (offset 61) */
    0x12,            /* length 9 (zig-zag 18) */
    0x00,            /* attributes */
    0x00,            /* timestamp delta 0 */
    0x00,            /* offset delta 0 */
    0x02, 'k',       /* key "k" */
    0x04, 'v', '1',  /* value "v1" */
    0x00,            /* no headers */
    /* record 1 (offset 71) */
    0x14,            /* length 10 */
    0x00,            /* attributes */
    0x0a,            /* timestamp delta 5 */
    0x02,            /* offset delta 1 */
    0x01,            /* key null (-1) */
    0x02, 'x',       /* value "x" */
    0x02,            /* one header */
    0x02, 'h',       /* header key "h" */
    0x01,            /* header value null */
};
#define GOLDEN_REC0 61
#define GOLDEN_REC1 71

START_TEST(test_golden_header)
{
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_parse_header(golden, sizeof golden, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.base_offset, 0);
    ck_assert_int_eq(h.batch_length, 70);
    ck_assert_int_eq(h.partition_leader_epoch, 0);
    ck_assert_int_eq(h.magic, 2);
    ck_assert_uint_eq(h.crc, 0x0021F70Eu);
    ck_assert_int_eq(h.attributes, 0);
    ck_assert_int_eq(h.last_offset_delta, 1);
    ck_assert_int_eq(h.base_timestamp, 1700000000000LL);
    ck_assert_int_eq(h.max_timestamp, 1700000000005LL);
    ck_assert_int_eq(h.producer_id, -1);
    ck_assert_int_eq(h.producer_epoch, -1);
    ck_assert_int_eq(h.base_sequence, -1);
    ck_assert_int_eq(h.record_count, 2);
    ck_assert_uint_eq(gr_batch_size(&h), sizeof golden);
    ck_assert_int_eq(gr_batch_last_offset(&h), 1);
    ck_assert_int_eq(gr_batch_codec(&h), GR_CODEC_NONE);

    uint8_t *p = dup_exact(golden, sizeof golden);
    memset(&h, 0, sizeof h);
    ck_assert_int_eq(gr_batch_validate(p, sizeof golden, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.record_count, 2);
    ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_OK);
    free(p);
}
END_TEST

START_TEST(test_golden_records)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    gr_record_iter it;
    gr_record rec;
    gr_batch_result err = GR_BATCH_OK;
    ck_assert_int_eq(gr_record_iter_init(&it, p, sizeof golden, MAX_UNCOMPRESSED), GR_BATCH_OK);

    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 1);
    ck_assert_int_eq(rec.timestamp_delta, 0);
    ck_assert_int_eq(rec.offset_delta, 0);
    ck_assert(bytes_eq(rec.key, B("k")));
    ck_assert(bytes_eq(rec.value, B("v1")));
    ck_assert_int_eq(rec.header_count, 0);
    ck_assert_uint_eq(gr_reader_remaining(&rec.headers), 0);

    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 1);
    ck_assert_int_eq(rec.timestamp_delta, 5);
    ck_assert_int_eq(rec.offset_delta, 1);
    ck_assert_int_eq(rec.key.len, -1);
    ck_assert(bytes_eq(rec.value, B("x")));
    ck_assert_int_eq(rec.header_count, 1);
    ck_assert_uint_eq(gr_reader_remaining(&rec.headers), 3);
    ck_assert_ptr_eq(rec.headers.p, p + GOLDEN_REC1 + 8);

    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 0);
    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 0);
    gr_record_iter_free(&it);
    gr_record_iter_free(&it); /* idempotent */
    free(p);
}
END_TEST

/* The builder, given the golden batch's contents, writes the golden bytes. */
START_TEST(test_golden_build)
{
    const gr_bytes hk[] = {B("h")}, hv[] = {GR_BYTES_NULL};
    const gr_record_spec recs[] = {
        {.timestamp = 1700000000000LL, .offset_delta = 0, .key = B("k"), .value = B("v1")},
        {.timestamp = 1700000000005LL,
         .offset_delta = 1,
         .key = GR_BYTES_NULL,
         .value = B("x"),
         .header_count = 1,
         .header_keys = hk,
         .header_values = hv},
    };
    size_t len;
    uint8_t *p = build(GR_CODEC_NONE, 0, recs, 2, &len);
    ck_assert_uint_eq(len, sizeof golden);
    ck_assert_mem_eq(p, golden, sizeof golden);

    /* Appending to a writer that already holds data leaves that data alone. */
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_raw(&w, "prefix", 6);
    gr_batch_spec spec = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    ck_assert_int_eq(gr_batch_build(&w, &spec, recs, 2), GR_OK);
    ck_assert_uint_eq(w.len, 6 + sizeof golden);
    ck_assert_mem_eq(w.p, "prefix", 6);
    ck_assert_mem_eq(w.p + 6, golden, sizeof golden);
    gr_writer_free(&w);
    free(p);
}
END_TEST

/* ---- round trips through the builder ---- */

static uint8_t big_value[3000];
static const gr_bytes rt_hkeys[] = {B("trace"), B("empty"), B("nil")};
static const gr_bytes rt_hvals[] = {B("abc"), B(""), GR_BYTES_NULL};

/* Keys and values of every shape: null, empty, short, large; timestamps out
 * of order; headers with null and empty values. */
static void round_trip_records(gr_record_spec *r)
{
    for (size_t i = 0; i < sizeof big_value; i++)
        big_value[i] = (uint8_t)("compressible "[i % 13]);
    memset(r, 0, 5 * sizeof *r);
    r[0] = (gr_record_spec){.timestamp = 1000, .offset_delta = 0, .key = B("key-0"), .value = B("value-0")};
    r[1] = (gr_record_spec){.timestamp = 990,
                            .offset_delta = 1,
                            .key = GR_BYTES_NULL,
                            .value = B("no key"),
                            .header_count = 3,
                            .header_keys = rt_hkeys,
                            .header_values = rt_hvals};
    r[2] = (gr_record_spec){.timestamp = 1500, .offset_delta = 2, .key = B("tomb"), .value = GR_BYTES_NULL};
    r[3] = (gr_record_spec){.timestamp = 1200,
                            .offset_delta = 3,
                            .key = B(""),
                            .value = {big_value, (int32_t)sizeof big_value},
                            .header_count = 1,
                            .header_keys = rt_hkeys,
                            .header_values = rt_hvals};
    r[4] = (gr_record_spec){.timestamp = 1000, .offset_delta = 4, .key = GR_BYTES_NULL, .value = GR_BYTES_NULL};
}

/* Reads the headers of rec and compares them with the spec's. */
static void check_headers(const gr_record *rec, const gr_record_spec *rs)
{
    ck_assert_int_eq(rec->header_count, rs->header_count);
    gr_reader r = rec->headers;
    for (int32_t i = 0; i < rs->header_count; i++) {
        int32_t kl, vl;
        const uint8_t *kp = NULL, *vp = NULL;
        ck_assert_int_eq(gr_read_varint(&r, &kl), GR_OK);
        ck_assert_int_eq(gr_read_raw(&r, (size_t)kl, &kp), GR_OK);
        ck_assert(bytes_eq((gr_bytes){kp, kl}, rs->header_keys[i]));
        ck_assert_int_eq(gr_read_varint(&r, &vl), GR_OK);
        if (vl >= 0)
            ck_assert_int_eq(gr_read_raw(&r, (size_t)vl, &vp), GR_OK);
        ck_assert(bytes_eq((gr_bytes){vp, vl}, rs->header_values[i]));
    }
    ck_assert_uint_eq(gr_reader_remaining(&r), 0);
}

START_TEST(test_round_trip)
{
    gr_codec codec = (gr_codec)_i;
    gr_record_spec recs[5];
    round_trip_records(recs);
    size_t len;
    uint8_t *p = build(codec, 0, recs, 5, &len);

    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(gr_batch_codec(&h), codec);
    ck_assert_int_eq(h.record_count, 5);
    ck_assert_int_eq(h.last_offset_delta, 4);
    ck_assert_int_eq(h.base_timestamp, 1000);
    ck_assert_int_eq(h.max_timestamp, 1500);
    if (codec != GR_CODEC_NONE)
        ck_assert_uint_lt(len, sizeof big_value); /* it really is compressed */

    gr_record_iter it;
    gr_record rec;
    gr_batch_result err;
    ck_assert_int_eq(gr_record_iter_init(&it, p, len, MAX_UNCOMPRESSED), GR_BATCH_OK);
    ck_assert((codec == GR_CODEC_NONE) == (it.owned == NULL));
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 1);
        ck_assert_int_eq(rec.offset_delta, i);
        ck_assert_int_eq(h.base_timestamp + rec.timestamp_delta, recs[i].timestamp);
        ck_assert(bytes_eq(rec.key, recs[i].key));
        ck_assert(bytes_eq(rec.value, recs[i].value));
        check_headers(&rec, &recs[i]);
    }
    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 0);
    gr_record_iter_free(&it);
    free(p);
}
END_TEST

/* Idempotent producer fields and transactional/control attributes survive;
 * a control batch (whose key is not a user key) validates. */
START_TEST(test_build_header_fields)
{
    const uint8_t ctrl_key[] = {0, 0, 0, 1};          /* version 0, type 1 (commit) */
    const uint8_t ctrl_val[] = {0, 0, 0, 0, 0, 5}; /* version 0, coordinator epoch 5 */
    gr_record_spec rec = {.timestamp = 42,
                          .key = {ctrl_key, sizeof ctrl_key},
                          .value = {ctrl_val, sizeof ctrl_val}};
    gr_batch_spec spec = {.base_offset = 77,
                          .partition_leader_epoch = 9,
                          .attributes = GR_BATCH_ATTR_TRANSACTIONAL | GR_BATCH_ATTR_CONTROL | 5,
                          .codec = GR_CODEC_NONE,
                          .producer_id = 123456789012LL,
                          .producer_epoch = 3,
                          .base_sequence = -1};
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_batch_build(&w, &spec, &rec, 1), GR_OK);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(w.p, w.len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.base_offset, 77);
    ck_assert_int_eq(h.partition_leader_epoch, 9);
    /* The codec bits come from spec.codec, not spec.attributes. */
    ck_assert_int_eq(h.attributes, GR_BATCH_ATTR_TRANSACTIONAL | GR_BATCH_ATTR_CONTROL);
    ck_assert_int_eq(h.producer_id, 123456789012LL);
    ck_assert_int_eq(h.producer_epoch, 3);
    ck_assert_int_eq(h.base_sequence, -1);
    ck_assert_int_eq(gr_batch_last_offset(&h), 77);
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_build_rejects)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_raw(&w, "x", 1);
    gr_batch_spec spec = {.codec = GR_CODEC_NONE, .producer_id = -1};
    gr_record_spec rec = {.timestamp = 1, .key = B("k"), .value = B("v")};
    ck_assert_int_lt(gr_batch_build(&w, &spec, &rec, -1), 0);
    ck_assert_int_lt(gr_batch_build(&w, &spec, NULL, 1), 0);
    spec.codec = (gr_codec)5;
    ck_assert_int_lt(gr_batch_build(&w, &spec, &rec, 1), 0);
    spec.codec = GR_CODEC_GZIP;
    const gr_bytes null_key[] = {GR_BYTES_NULL}, val[] = {B("v")};
    rec.header_count = 1;
    rec.header_keys = null_key; /* header keys cannot be null */
    rec.header_values = val;
    ck_assert_int_lt(gr_batch_build(&w, &spec, &rec, 1), 0);
    rec.header_count = 0;
    rec.offset_delta = -1;
    ck_assert_int_lt(gr_batch_build(&w, &spec, &rec, 1), 0);
    /* Nothing was appended by the failures. */
    ck_assert(gr_writer_ok(&w));
    ck_assert_uint_eq(w.len, 1);
    gr_writer_free(&w);
}
END_TEST

/* An empty batch (compaction keeps them for producer state) passes the
 * envelope check, but produce never accepts one. */
START_TEST(test_empty_batch)
{
    size_t len;
    uint8_t *p = build(GR_CODEC_NONE, 0, NULL, 0, &len);
    ck_assert_uint_eq(len, GR_BATCH_HEADER_SIZE);
    ck_assert_int_eq(shallow(p, len), GR_BATCH_OK);
    ck_assert_int_eq(deep(p, len), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(count_records(p, len), 0);
    free(p);
}
END_TEST

/* ---- envelope corruption ---- */

START_TEST(test_every_truncation)
{
    gr_record_spec recs[5];
    round_trip_records(recs);
    size_t glen;
    uint8_t *gz = build(GR_CODEC_GZIP, 0, recs, 5, &glen);
    const struct {
        const uint8_t *p;
        size_t len;
    } batches[] = {{golden, sizeof golden}, {gz, glen}};
    for (size_t b = 0; b < 2; b++) {
        for (size_t n = 0; n < batches[b].len; n++) {
            uint8_t *p = dup_exact(batches[b].p, n);
            gr_batch_header h;
            gr_record_iter it;
            ck_assert_int_eq(shallow(p, n), GR_BATCH_TRUNCATED);
            ck_assert_int_eq(deep(p, n), GR_BATCH_TRUNCATED);
            ck_assert_int_eq(gr_batch_parse_header(p, n, &h), GR_BATCH_TRUNCATED);
            ck_assert_int_eq(gr_record_iter_init(&it, p, n, MAX_UNCOMPRESSED), GR_BATCH_TRUNCATED);
            gr_record iter_rec;
            gr_batch_result err = GR_BATCH_OK;
            ck_assert_int_eq(gr_record_iter_next(&it, &iter_rec, &err), -1);
            ck_assert_int_eq(err, GR_BATCH_TRUNCATED);
            gr_record_iter_free(&it);
            free(p);
        }
    }
    ck_assert_int_eq(gr_batch_parse_header(NULL, 0, &(gr_batch_header){0}), GR_BATCH_TRUNCATED);
    free(gz);
}
END_TEST

START_TEST(test_crc_covers_attributes_to_end)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    for (size_t i = GR_BATCH_OFF_CRC; i < sizeof golden; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            p[i] ^= (uint8_t)(1u << bit);
            ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_BAD_CRC);
            ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_BAD_CRC);
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* The base offset and leader epoch are outside the CRC. */
    for (size_t i = 0; i < GR_BATCH_OFF_LENGTH; i++)
        p[i] ^= 0x5a;
    for (size_t i = GR_BATCH_OFF_LEADER_EPOCH; i < GR_BATCH_OFF_MAGIC; i++)
        p[i] ^= 0xa5;
    ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_OK);
    free(p);
}
END_TEST

START_TEST(test_bad_magic)
{
    for (int magic = 0; magic < 4; magic++) {
        if (magic == 2)
            continue;
        uint8_t *p = dup_exact(golden, sizeof golden);
        p[GR_BATCH_OFF_MAGIC] = (uint8_t)magic;
        gr_batch_header h;
        ck_assert_int_eq(gr_batch_parse_header(p, sizeof golden, &h), GR_BATCH_BAD_MAGIC);
        ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_BAD_MAGIC);
        ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_BAD_MAGIC);
        /* A legacy message shorter than a v2 header is still a magic error. */
        ck_assert_int_eq(shallow(p, 34), GR_BATCH_BAD_MAGIC);
        free(p);
    }
}
END_TEST

START_TEST(test_bad_length)
{
    static const int32_t lengths[] = {48, 0, -1, INT32_MIN};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        uint8_t *p = dup_exact(golden, sizeof golden);
        put_be(p + GR_BATCH_OFF_LENGTH, (uint32_t)lengths[i], 4);
        gr_batch_header h;
        ck_assert_int_eq(gr_batch_parse_header(p, sizeof golden, &h), GR_BATCH_BAD_LENGTH);
        ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_BAD_LENGTH);
        free(p);
    }
    /* A length beyond the bytes given is a truncation... */
    uint8_t *p = dup_exact(golden, sizeof golden);
    put_be(p + GR_BATCH_OFF_LENGTH, INT32_MAX, 4);
    ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_TRUNCATED);
    free(p);
    /* ...and bytes beyond the batch make it not one batch, though the header
     * alone parses (that is how a log is walked). */
    uint8_t two[2 * sizeof golden];
    memcpy(two, golden, sizeof golden);
    memcpy(two + sizeof golden, golden, sizeof golden);
    p = dup_exact(two, sizeof two);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_parse_header(p, sizeof two, &h), GR_BATCH_OK);
    ck_assert_uint_eq(gr_batch_size(&h), sizeof golden);
    ck_assert_int_eq(deep(p, sizeof two), GR_BATCH_BAD_LENGTH);
    ck_assert_int_eq(deep(p + sizeof golden, sizeof golden), GR_BATCH_OK);
    free(p);
}
END_TEST

START_TEST(test_bad_codec)
{
    for (int codec = 5; codec <= 7; codec++) {
        uint8_t *p = dup_exact(golden, sizeof golden);
        p[GR_BATCH_OFF_ATTRIBUTES + 1] |= (uint8_t)codec;
        refresh_crc(p, sizeof golden);
        ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_BAD_CODEC);
        ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_BAD_CODEC);
        ck_assert_int_eq(count_records(p, sizeof golden), -1 - GR_BATCH_BAD_CODEC);
        free(p);
    }
}
END_TEST

/* ---- counts ---- */

/* Sets count and last offset delta in a golden copy and refreshes the CRC. */
static gr_batch_result golden_with_counts(int32_t count, int32_t last_offset_delta, bool is_deep)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    put_be(p + 57, (uint32_t)count, 4);
    put_be(p + 23, (uint32_t)last_offset_delta, 4);
    refresh_crc(p, sizeof golden);
    gr_batch_result res = is_deep ? deep(p, sizeof golden) : shallow(p, sizeof golden);
    free(p);
    return res;
}

START_TEST(test_count_mismatch)
{
    /* Count disagreeing with last offset delta + 1, either way. */
    ck_assert_int_eq(golden_with_counts(3, 1, true), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(golden_with_counts(1, 1, true), GR_BATCH_BAD_COUNT);
    /* Agreeing with each other but not with the records: too few, too many. */
    ck_assert_int_eq(golden_with_counts(3, 2, true), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(golden_with_counts(1, 0, true), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(golden_with_counts(0, -1, true), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(golden_with_counts(-1, -2, true), GR_BATCH_BAD_COUNT);
    ck_assert_int_eq(golden_with_counts(INT32_MIN, 1, true), GR_BATCH_BAD_COUNT);
    /* Shallow validation does not look at counts. */
    ck_assert_int_eq(golden_with_counts(3, 1, false), GR_BATCH_OK);
    ck_assert_int_eq(golden_with_counts(1, 0, false), GR_BATCH_OK);
}
END_TEST

/* The iterator alone (which trusts no header rule) also finds the records
 * running out early or going on past the count. */
START_TEST(test_iter_count_mismatch)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    put_be(p + 57, 3, 4);
    ck_assert_int_eq(count_records(p, sizeof golden), -1 - GR_BATCH_BAD_COUNT);
    put_be(p + 57, 1, 4);
    ck_assert_int_eq(count_records(p, sizeof golden), -1 - GR_BATCH_BAD_COUNT);
    put_be(p + 57, (uint32_t)-1, 4);
    ck_assert_int_eq(count_records(p, sizeof golden), -1 - GR_BATCH_BAD_COUNT);
    free(p);
}
END_TEST

/* A count of 2^31-1 over three bytes of records fails at once, compressed
 * or not, without allocating for the count. */
START_TEST(test_count_huge)
{
    static const uint8_t three[] = {0x00, 0x00, 0x00};
    hand_header hh = {.last_offset_delta = INT32_MAX - 1, .record_count = INT32_MAX};
    size_t len;
    uint8_t *p = assemble(&hh, three, sizeof three, &len);
    ck_assert_int_eq(shallow(p, len), GR_BATCH_OK);
    ck_assert_int_eq(deep(p, len), GR_BATCH_BAD_COUNT);
    gr_record_iter it;
    gr_record rec;
    gr_batch_result err = GR_BATCH_OK;
    ck_assert_int_eq(gr_record_iter_init(&it, p, len, MAX_UNCOMPRESSED), GR_BATCH_OK);
    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), -1);
    ck_assert_int_eq(err, GR_BATCH_BAD_RECORD);
    gr_record_iter_free(&it);
    free(p);

    for (gr_codec c = GR_CODEC_GZIP; c <= GR_CODEC_ZSTD; c++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        ck_assert_int_eq(gr_compress(c, -1, three, sizeof three, &w), GR_OK);
        hh.attributes = (int16_t)c;
        p = assemble(&hh, w.p, w.len, &len);
        gr_writer_free(&w);
        /* Seven bytes a record at the least: that count cannot fit the bound. */
        ck_assert_int_eq(deep(p, len), GR_BATCH_DECOMPRESS);
        ck_assert_int_eq(count_records(p, len), -1 - GR_BATCH_BAD_RECORD);
        free(p);
    }
}
END_TEST

/* ---- malformed records ---- */

/* The golden batch with one byte of its records replaced (CRC refreshed). */
static gr_batch_result golden_with_byte(size_t at, uint8_t v)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    p[at] = v;
    refresh_crc(p, sizeof golden);
    gr_batch_result res = deep(p, sizeof golden);
    int64_t n = count_records(p, sizeof golden);
    ck_assert_int_eq(n, res == GR_BATCH_OK ? 2 : -1 - (int64_t)res);
    free(p);
    return res;
}

START_TEST(test_record_length)
{
    /* Longer than the bytes that remain. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0, 0x7e), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1, 0x16), GR_BATCH_BAD_RECORD);
    /* Within the batch but not the bytes the record uses: more, fewer. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0, 0x14), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0, 0x10), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0, 0x00), GR_BATCH_BAD_RECORD);
    /* Negative. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0, 0x01), GR_BATCH_BAD_RECORD);
}
END_TEST

START_TEST(test_record_fields)
{
    /* Key length -2, value length -2. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0 + 4, 0x03), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0 + 6, 0x03), GR_BATCH_BAD_RECORD);
    /* Key length running past the record. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0 + 4, 0x10), GR_BATCH_BAD_RECORD);
    /* Header count negative, too large, one too many. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 7, 0x01), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 7, 0x7e), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 7, 0x04), GR_BATCH_BAD_RECORD);
    /* Header key null or negative; header value length -2. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 8, 0x01), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 8, 0x03), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC1 + 10, 0x03), GR_BATCH_BAD_RECORD);
    /* Control: the unmodified batch is fine. */
    ck_assert_int_eq(golden_with_byte(GOLDEN_REC0 + 1, 0x00), GR_BATCH_OK);
}
END_TEST

/* A hand-made single record with a field encoded in too many bytes. */
START_TEST(test_overlong_varints)
{
    static const uint8_t long_len[] = {0x92, 0x80, 0x80, 0x80, 0x80, 0x00, /* 6-byte length */
                                       0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    static const uint8_t long_delta[] = {0x1a, 0x00, 0x00, /* offset delta in 6 bytes */
                                         0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                                         0x02, 'k', 0x02, 'v', 0x00};
    static const uint8_t long_ts[] = {0x24, 0x00, /* timestamp delta in 11 bytes */
                                      0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                                      0x00, 0x02, 'k', 0x02, 'v', 0x00};
    /* The same record encoded minimally, which must pass, as a control. */
    static const uint8_t ok[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    const struct {
        const uint8_t *p;
        size_t n;
        gr_batch_result want;
    } cases[] = {{long_len, sizeof long_len, GR_BATCH_BAD_RECORD},
                 {long_delta, sizeof long_delta, GR_BATCH_BAD_RECORD},
                 {long_ts, sizeof long_ts, GR_BATCH_BAD_RECORD},
                 {ok, sizeof ok, GR_BATCH_OK}};
    hand_header hh = {.last_offset_delta = 0, .record_count = 1, .base_timestamp = 5, .max_timestamp = 5};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *p = assemble(&hh, cases[i].p, cases[i].n, &len);
        ck_assert_int_eq(deep(p, len), cases[i].want);
        free(p);
    }
}
END_TEST

/* Single hand-made records that differ from a valid one in one rule only. */
START_TEST(test_record_single_rule)
{
    /* Length 9 over an 8-byte record and one byte of padding. */
    static const uint8_t padded[] = {0x12, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00, 0x00};
    /* A header with a null key, otherwise well formed. */
    static const uint8_t null_hkey[] = {0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x02, 'v'};
    /* Controls: the same without padding, and with an empty header key. */
    static const uint8_t exact[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    static const uint8_t empty_hkey[] = {0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x02, 'v'};
    const struct {
        const uint8_t *p;
        size_t n;
        gr_batch_result want;
    } cases[] = {{padded, sizeof padded, GR_BATCH_BAD_RECORD},
                 {null_hkey, sizeof null_hkey, GR_BATCH_BAD_RECORD},
                 {exact, sizeof exact, GR_BATCH_OK},
                 {empty_hkey, sizeof empty_hkey, GR_BATCH_OK}};
    hand_header hh = {.last_offset_delta = 0, .record_count = 1, .base_timestamp = 5, .max_timestamp = 5};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *p = assemble(&hh, cases[i].p, cases[i].n, &len);
        ck_assert_int_eq(deep(p, len), cases[i].want);
        ck_assert_int_eq(count_records(p, len), cases[i].want == GR_BATCH_OK ? 1 : -1 - (int64_t)cases[i].want);
        free(p);
    }
}
END_TEST

START_TEST(test_trailing_junk)
{
    static const uint8_t extra_record[] = {0x0e, 0x00, 0x00, 0x04, 0x01, 0x02, 'z', 0x00};
    static const uint8_t one_zero[] = {0x00};
    const struct {
        const uint8_t *p;
        size_t n;
    } junk[] = {{one_zero, 1}, {extra_record, sizeof extra_record}};
    hand_header hh = {.last_offset_delta = 1,
                      .record_count = 2,
                      .base_timestamp = 1700000000000LL,
                      .max_timestamp = 1700000000005LL};
    const uint8_t *recs = golden + GR_BATCH_HEADER_SIZE;
    size_t recs_len = sizeof golden - GR_BATCH_HEADER_SIZE;
    for (size_t j = 0; j < 2; j++) {
        uint8_t buf[64];
        memcpy(buf, recs, recs_len);
        memcpy(buf + recs_len, junk[j].p, junk[j].n);
        for (gr_codec c = GR_CODEC_NONE; c <= GR_CODEC_ZSTD; c++) {
            gr_writer w;
            gr_writer_init(&w, 0);
            if (c == GR_CODEC_NONE)
                gr_write_raw(&w, buf, recs_len + junk[j].n);
            else
                ck_assert_int_eq(gr_compress(c, -1, buf, recs_len + junk[j].n, &w), GR_OK);
            hh.attributes = (int16_t)c;
            size_t len;
            uint8_t *p = assemble(&hh, w.p, w.len, &len);
            gr_writer_free(&w);
            ck_assert_int_eq(deep(p, len), GR_BATCH_BAD_COUNT);
            ck_assert_int_eq(count_records(p, len), -1 - GR_BATCH_BAD_COUNT);
            free(p);
        }
    }
}
END_TEST

static gr_batch_result build_with_deltas(const int32_t *deltas, int32_t n)
{
    gr_record_spec recs[4];
    memset(recs, 0, sizeof recs);
    for (int32_t i = 0; i < n; i++)
        recs[i] = (gr_record_spec){.timestamp = 10 + i, .offset_delta = deltas[i], .value = B("v")};
    size_t len;
    uint8_t *p = build(GR_CODEC_NONE, 0, recs, n, &len);
    gr_batch_result res = deep(p, len);
    free(p);
    return res;
}

START_TEST(test_offset_deltas)
{
    ck_assert_int_eq(build_with_deltas((const int32_t[]){0, 1, 2}, 3), GR_BATCH_OK);
    ck_assert_int_eq(build_with_deltas((const int32_t[]){1, 0}, 2), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(build_with_deltas((const int32_t[]){0, 2, 1}, 3), GR_BATCH_BAD_RECORD);
    ck_assert_int_eq(build_with_deltas((const int32_t[]){0, 0, 2}, 3), GR_BATCH_BAD_RECORD);
    /* A gap, as compaction leaves: count and last offset delta disagree. */
    ck_assert_int_eq(build_with_deltas((const int32_t[]){0, 2}, 2), GR_BATCH_BAD_COUNT);
}
END_TEST

/* ---- timestamps ---- */

START_TEST(test_max_timestamp)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    for (int d = -1; d <= 1; d += 2) {
        put_be(p + GR_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(1700000000005LL + d), 8);
        refresh_crc(p, sizeof golden);
        ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_OK);
        ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_BAD_TIMESTAMP);
    }
    /* LogAppendTime batches carry the broker's time, not the records'. */
    p[GR_BATCH_OFF_ATTRIBUTES + 1] |= GR_BATCH_ATTR_LOG_APPEND_TIME;
    refresh_crc(p, sizeof golden);
    ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_OK);
    free(p);

    /* Negative deltas: the max is not the last record's. */
    gr_record_spec recs[3] = {{.timestamp = 100, .offset_delta = 0},
                              {.timestamp = 300, .offset_delta = 1},
                              {.timestamp = 50, .offset_delta = 2}};
    for (int i = 0; i < 3; i++)
        recs[i].key = recs[i].value = GR_BYTES_NULL;
    size_t len;
    p = build(GR_CODEC_NONE, 0, recs, 3, &len);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.base_timestamp, 100);
    ck_assert_int_eq(h.max_timestamp, 300);
    free(p);
}
END_TEST

/* ---- in-place rewrites ---- */

START_TEST(test_set_offset_and_epoch)
{
    uint8_t *p = dup_exact(golden, sizeof golden);
    gr_batch_set_base_offset(p, 1234567890123LL);
    gr_batch_set_leader_epoch(p, 77);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(p, sizeof golden, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.base_offset, 1234567890123LL);
    ck_assert_int_eq(h.partition_leader_epoch, 77);
    ck_assert_int_eq(gr_batch_last_offset(&h), 1234567890124LL);
    ck_assert_uint_eq(h.crc, 0x0021F70Eu);
    ck_assert_mem_eq(p + GR_BATCH_OFF_MAGIC, golden + GR_BATCH_OFF_MAGIC, sizeof golden - GR_BATCH_OFF_MAGIC);
    ck_assert_mem_eq(p + GR_BATCH_OFF_LENGTH, golden + GR_BATCH_OFF_LENGTH, 4);
    gr_batch_set_base_offset(p, -1);
    gr_batch_set_leader_epoch(p, -1);
    ck_assert_uint_eq(get_be(p, 8), UINT64_MAX);
    ck_assert_uint_eq(get_be(p + GR_BATCH_OFF_LEADER_EPOCH, 4), UINT32_MAX);
    ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_OK);
    free(p);
}
END_TEST

START_TEST(test_set_log_append_time)
{
    gr_codec codec = (gr_codec)_i;
    gr_record_spec recs[5];
    round_trip_records(recs);
    size_t len;
    uint8_t *p = build(codec, 0, recs, 5, &len);
    uint32_t old_crc = (uint32_t)get_be(p + GR_BATCH_OFF_CRC, 4);
    gr_batch_set_log_append_time(p, len, 1800000000000LL);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_uint_ne(h.crc, old_crc);
    ck_assert(h.attributes & GR_BATCH_ATTR_LOG_APPEND_TIME);
    ck_assert_int_eq(gr_batch_codec(&h), codec);
    ck_assert_int_eq(h.max_timestamp, 1800000000000LL);
    ck_assert_int_eq(h.base_timestamp, 1000);
    ck_assert_int_eq(count_records(p, len), 5);
    /* Doing it again (a retried append) is harmless. */
    gr_batch_set_log_append_time(p, len, 1800000000001LL);
    ck_assert_int_eq(gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.max_timestamp, 1800000000001LL);
    free(p);
}
END_TEST

/* ---- compression bounds ---- */

START_TEST(test_decompression_bound)
{
    gr_codec codec = (gr_codec)_i;
    static uint8_t zeros[1 << 20];
    gr_record_spec rec = {.timestamp = 1, .key = GR_BYTES_NULL, .value = {zeros, (int32_t)sizeof zeros}};
    size_t plain_len, len;
    uint8_t *plain = build(GR_CODEC_NONE, 0, &rec, 1, &plain_len);
    size_t records_size = plain_len - GR_BATCH_HEADER_SIZE;
    free(plain);
    uint8_t *p = build(codec, 0, &rec, 1, &len);
    ck_assert_uint_lt(len, sizeof zeros / 8);

    ck_assert_int_eq(gr_batch_validate(p, len, true, 64 << 10, NULL), GR_BATCH_DECOMPRESS);
    ck_assert_int_eq(gr_batch_validate(p, len, true, records_size - 1, NULL), GR_BATCH_DECOMPRESS);
    ck_assert_int_eq(gr_batch_validate(p, len, true, records_size, NULL), GR_BATCH_OK);
    /* Shallow validation does not decompress. */
    ck_assert_int_eq(gr_batch_validate(p, len, false, 1, NULL), GR_BATCH_OK);

    gr_record_iter it;
    ck_assert_int_eq(gr_record_iter_init(&it, p, len, 64 << 10), GR_BATCH_DECOMPRESS);
    ck_assert_ptr_null(it.owned);
    gr_record_iter_free(&it);
    free(p);
}
END_TEST

START_TEST(test_not_compressed_data)
{
    /* The golden records, labelled with each codec without being compressed. */
    for (gr_codec c = GR_CODEC_GZIP; c <= GR_CODEC_ZSTD; c++) {
        uint8_t *p = dup_exact(golden, sizeof golden);
        p[GR_BATCH_OFF_ATTRIBUTES + 1] |= (uint8_t)c;
        refresh_crc(p, sizeof golden);
        ck_assert_int_eq(shallow(p, sizeof golden), GR_BATCH_OK);
        ck_assert_int_eq(deep(p, sizeof golden), GR_BATCH_DECOMPRESS);
        free(p);
    }
}
END_TEST

/* ---- random mutations: never a crash, never a read out of bounds ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

START_TEST(test_random_mutations)
{
    gr_codec codec = (gr_codec)_i;
    gr_record_spec recs[5];
    round_trip_records(recs);
    size_t len;
    uint8_t *orig = build(codec, 0, recs, 5, &len);
    uint64_t seed = 0x1234567ull + (uint64_t)codec;
    for (int iter = 0; iter < 1500; iter++) {
        uint8_t *p = dup_exact(orig, len);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            /* Mostly the header and the first records, where the structure is. */
            size_t span = (rng_next(&seed) & 1) ? len - GR_BATCH_OFF_ATTRIBUTES : 120;
            if (span > len - GR_BATCH_OFF_ATTRIBUTES)
                span = len - GR_BATCH_OFF_ATTRIBUTES;
            size_t at = GR_BATCH_OFF_ATTRIBUTES + rng_next(&seed) % span;
            p[at] = (uint8_t)rng_next(&seed);
        }
        refresh_crc(p, len);
        gr_batch_result res = gr_batch_validate(p, len, true, 1 << 20, NULL);
        ck_assert_int_ge(res, GR_BATCH_OK);
        ck_assert_int_le(res, GR_BATCH_DECOMPRESS);
        (void)count_records(p, len);
        free(p);
    }
    free(orig);
}
END_TEST

START_TEST(test_result_strings)
{
    for (int r = GR_BATCH_OK; r <= GR_BATCH_DECOMPRESS; r++) {
        const char *s = gr_batch_result_str((gr_batch_result)r);
        ck_assert_ptr_nonnull(s);
        for (int q = GR_BATCH_OK; q < r; q++)
            ck_assert_str_ne(s, gr_batch_result_str((gr_batch_result)q));
    }
}
END_TEST

/* ---- batches written by real clients (see tests/data/batches/README.md) ---- */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        ck_abort_msg("missing captured batches %s: %s (run from the repository root)", path,
                     strerror(errno));
    gr_writer w;
    gr_writer_init(&w, 4096);
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        gr_write_raw(&w, chunk, n);
    ck_assert(!ferror(f));
    fclose(f);
    ck_assert(gr_writer_ok(&w));
    uint8_t *p = dup_exact(w.p, w.len);
    *len = w.len;
    gr_writer_free(&w);
    return p;
}

static bool bytes_is(gr_bytes b, const char *s)
{
    return s ? bytes_eq(b, (gr_bytes){(const uint8_t *)s, (int32_t)strlen(s)}) : b.len == -1;
}

/* Checks that rec's headers are exactly the n (key, value) pairs given. */
static void expect_headers(const gr_record *rec, int n, const char *const *kv)
{
    gr_bytes keys[4], values[4];
    for (int i = 0; i < n; i++) {
        keys[i] = (gr_bytes){(const uint8_t *)kv[2 * i], (int32_t)strlen(kv[2 * i])};
        values[i] = kv[2 * i + 1] ? (gr_bytes){(const uint8_t *)kv[2 * i + 1], (int32_t)strlen(kv[2 * i + 1])}
                                  : GR_BYTES_NULL;
    }
    gr_record_spec rs = {.header_count = n, .header_keys = keys, .header_values = values};
    check_headers(rec, &rs);
}

/* Checks record i of batch b against what the capture README describes. */
typedef void (*expect_fn)(int b, int i, const gr_record *rec);

static void expect_kcat(int b, int i, const gr_record *rec)
{
    char key[64], value[160];
    if (b == 0 && i == 200) {
        ck_assert(bytes_is(rec->key, ""));
        ck_assert(bytes_is(rec->value, "value-with-empty-key"));
    } else {
        snprintf(key, sizeof key, b == 0 ? "key-%d" : "small-%d", i);
        if (b == 0)
            snprintf(value, sizeof value, "value-%d %s%s%s", i, "lorem ipsum dolor sit amet ",
                     "lorem ipsum dolor sit amet ", "lorem ipsum dolor sit amet ");
        else
            snprintf(value, sizeof value, "tiny-%d", i);
        ck_assert_msg(bytes_is(rec->key, key), "batch %d record %d: key", b, i);
        ck_assert_msg(bytes_is(rec->value, value), "batch %d record %d: value", b, i);
    }
    static const char *const kv[] = {"hk", "hv"};
    expect_headers(rec, 1, kv);
}

static void expect_confluent(int b, int i, const gr_record *rec)
{
    char key[32], value[96];
    ck_assert_int_eq(b, 0);
    snprintf(key, sizeof key, "ck-%d", i);
    ck_assert(bytes_is(rec->key, key));
    if (i % 2 == 0) {
        snprintf(value, sizeof value, "cv-%d %s", i,
                 "ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ");
        ck_assert(bytes_is(rec->value, value));
    } else {
        ck_assert(bytes_is(rec->value, NULL));
    }
    static const char *const kv[] = {"h1", "x", "hnull", NULL};
    expect_headers(rec, 2, kv);
}

/* Validates one captured batch deeply and checks each record. */
static void check_captured_batch(const uint8_t *p, size_t len, gr_codec codec, int b, int32_t want,
                                 expect_fn expect)
{
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(p, len, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(gr_batch_codec(&h), codec);
    ck_assert_int_eq(h.record_count, want);
    gr_record_iter it;
    gr_record rec;
    gr_batch_result err;
    ck_assert_int_eq(gr_record_iter_init(&it, p, len, MAX_UNCOMPRESSED), GR_BATCH_OK);
    for (int32_t i = 0; i < want; i++) {
        ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 1);
        ck_assert_int_eq(rec.offset_delta, i);
        expect(b, i, &rec);
    }
    ck_assert_int_eq(gr_record_iter_next(&it, &rec, &err), 0);
    gr_record_iter_free(&it);
}

static void check_capture(const char *path, gr_codec codec, const int32_t *counts, int nbatches,
                          expect_fn expect)
{
    size_t len;
    uint8_t *file = read_file(path, &len);
    size_t at = 0;
    int b = 0;
    while (at < len) {
        gr_batch_header h;
        ck_assert_int_eq(gr_batch_parse_header(file + at, len - at, &h), GR_BATCH_OK);
        ck_assert_int_lt(b, nbatches);
        uint8_t *p = dup_exact(file + at, gr_batch_size(&h));
        check_captured_batch(p, gr_batch_size(&h), codec, b, counts[b], expect);
        free(p);
        at += gr_batch_size(&h);
        b++;
    }
    ck_assert_int_eq(b, nbatches);
    free(file);
}

START_TEST(test_kcat_batches)
{
    static const char *const files[] = {"tests/data/batches/none.bin", "tests/data/batches/gzip.bin",
                                        "tests/data/batches/snappy.bin", "tests/data/batches/lz4.bin",
                                        "tests/data/batches/zstd.bin"};
    static const int32_t counts[] = {201, 5};
    check_capture(files[_i], (gr_codec)_i, counts, 2, expect_kcat);
}
END_TEST

START_TEST(test_confluent_batches)
{
    static const int32_t counts[] = {10};
    check_capture("tests/data/batches/confluent-zstd.bin", GR_CODEC_ZSTD, counts, 1, expect_confluent);
}
END_TEST

/* A real batch survives what a leader does to it on append. */
START_TEST(test_kcat_batch_append_rewrites)
{
    size_t len;
    uint8_t *file = read_file("tests/data/batches/lz4.bin", &len);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_parse_header(file, len, &h), GR_BATCH_OK);
    size_t n = gr_batch_size(&h);
    uint8_t *p = dup_exact(file, n);
    gr_batch_set_base_offset(p, 1000);
    gr_batch_set_leader_epoch(p, 3);
    ck_assert_int_eq(deep(p, n), GR_BATCH_OK);
    gr_batch_set_log_append_time(p, n, 1900000000000LL);
    ck_assert_int_eq(gr_batch_validate(p, n, true, MAX_UNCOMPRESSED, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.max_timestamp, 1900000000000LL);
    ck_assert_int_eq(gr_batch_last_offset(&h), 1200);
    free(p);
    free(file);
}
END_TEST

/* ---- per-record policy ---- */

typedef struct {
    int n;
    int32_t index[8];
    gr_batch_record_problem problem[8];
    int64_t ts[8], offset[8];
} seen_errors;

static void note_error(void *ctx, int32_t index, gr_batch_record_problem problem, int64_t ts,
                       int64_t offset, const gr_record *rec)
{
    seen_errors *e = ctx;
    ck_assert_ptr_nonnull(rec);
    ck_assert_int_lt(e->n, 8);
    e->index[e->n] = index;
    e->problem[e->n] = problem;
    e->ts[e->n] = ts;
    e->offset[e->n++] = offset;
}

START_TEST(test_check_timestamps)
{
    gr_codec codec = (gr_codec)_i;
    gr_record_spec r[5];
    int64_t now = 1000000;
    const int64_t ts[5] = {now - 500, now - 2000, now + 400, now + 1000, -1};
    for (int i = 0; i < 5; i++)
        r[i] = (gr_record_spec){.timestamp = ts[i], .offset_delta = i, .key = B("k"), .value = B("v")};
    size_t len;
    uint8_t *b = build(codec, 0, r, 5, &len);
    gr_batch_set_base_offset(b, 10);
    gr_batch_record_policy pol = {.now_ms = now, .create_time = true, .before_max_ms = 1000,
                                  .after_max_ms = 500};
    seen_errors e = {0};
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, note_error, &e), 2);
    ck_assert_int_eq(e.n, 2);
    ck_assert_int_eq(e.index[0], 1);
    ck_assert_int_eq(e.problem[0], GR_BATCH_REC_TS_OUT_OF_RANGE);
    ck_assert_int_eq(e.ts[0], now - 2000);
    ck_assert_int_eq(e.offset[0], 11);
    ck_assert_int_eq(e.index[1], 3);
    ck_assert_int_eq(e.ts[1], now + 1000);
    ck_assert_int_eq(e.offset[1], 13);
    /* Kafka's defaults: no bound in the past, one hour ahead. */
    pol.before_max_ms = INT64_MAX;
    pol.after_max_ms = 3600000;
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, NULL, NULL), 0);
    pol.after_max_ms = 999;
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, NULL, NULL), 1);
    /* LogAppendTime topics do not look at the producer's timestamps. */
    pol.create_time = false;
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, NULL, NULL), 0);
    free(b);
}
END_TEST

START_TEST(test_check_keys_and_log_append_time)
{
    gr_record_spec r[3] = {
        {.timestamp = 5, .offset_delta = 0, .key = B("k"), .value = B("v")},
        {.timestamp = 5, .offset_delta = 1, .key = GR_BYTES_NULL, .value = B("v")},
        {.timestamp = 9000000, .offset_delta = 2, .key = GR_BYTES_NULL, .value = B("v")},
    };
    size_t len;
    uint8_t *b = build(GR_CODEC_NONE, 0, r, 3, &len);
    gr_batch_record_policy pol = {.now_ms = 10, .create_time = true, .before_max_ms = INT64_MAX,
                                  .after_max_ms = 100, .require_key = true};
    seen_errors e = {0};
    /* A missing key is the one problem reported for a record, as Kafka. */
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, note_error, &e), 2);
    ck_assert_int_eq(e.index[0], 1);
    ck_assert_int_eq(e.problem[0], GR_BATCH_REC_NO_KEY);
    ck_assert_int_eq(e.index[1], 2);
    ck_assert_int_eq(e.problem[1], GR_BATCH_REC_NO_KEY);
    free(b);

    /* A producer that sets LogAppendTime itself: refused on a
     * LogAppendTime topic; record timestamps read as the max timestamp. */
    b = build(GR_CODEC_NONE, GR_BATCH_ATTR_LOG_APPEND_TIME, r, 1, &len);
    pol = (gr_batch_record_policy){.now_ms = 10, .create_time = false};
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(gr_batch_check_records(b, len, MAX_UNCOMPRESSED, &pol, note_error, &e), 1);
    ck_assert_int_eq(e.problem[0], GR_BATCH_REC_LOG_APPEND_TIME);
    ck_assert_int_eq(e.ts[0], 5);
    /* Unreadable records: -1, the batch's validation says why. */
    ck_assert_int_eq(gr_batch_check_records(b, len - 1, MAX_UNCOMPRESSED, &pol, NULL, NULL), -1);
    free(b);
}
END_TEST

/* ---- re-encoding ---- */

/* The plain records section of a batch. */
static uint8_t *plain_records(const uint8_t *p, size_t len, size_t *n)
{
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_parse_header(p, len, &h), GR_BATCH_OK);
    uint8_t *out = NULL;
    ck_assert_int_eq(gr_decompress(gr_batch_codec(&h), p + GR_BATCH_HEADER_SIZE,
                                   len - GR_BATCH_HEADER_SIZE, MAX_UNCOMPRESSED, &out, n),
                     GR_OK);
    return out;
}

START_TEST(test_recompress_every_pair)
{
    gr_codec from = (gr_codec)_i;
    gr_record_spec r[5];
    round_trip_records(r);
    size_t len;
    uint8_t *b = build(from, 0, r, 5, &len);
    gr_batch_set_base_offset(b, 1234);
    gr_batch_set_leader_epoch(b, 7);
    size_t want_n;
    uint8_t *want = plain_records(b, len, &want_n);
    gr_batch_header h0;
    ck_assert_int_eq(deep(b, len), GR_BATCH_OK);
    ck_assert_int_eq(gr_batch_parse_header(b, len, &h0), GR_BATCH_OK);
    for (gr_codec to = GR_CODEC_NONE; to <= GR_CODEC_ZSTD; to++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_raw(&w, "xy", 2); /* appends after what is there */
        ck_assert_int_eq(gr_batch_recompress(b, len, to, -1, MAX_UNCOMPRESSED, &w), GR_OK);
        ck_assert_uint_gt(w.len, 2);
        size_t n = w.len - 2;
        uint8_t *out = dup_exact(w.p + 2, n);
        gr_writer_free(&w);
        gr_batch_header h;
        ck_assert_int_eq(deep(out, n), GR_BATCH_OK);
        ck_assert_int_eq(gr_batch_parse_header(out, n, &h), GR_BATCH_OK);
        ck_assert_int_eq(gr_batch_codec(&h), to);
        ck_assert_int_eq(h.base_offset, 1234);
        ck_assert_int_eq(h.partition_leader_epoch, 7);
        ck_assert_int_eq(h.attributes & ~GR_BATCH_ATTR_CODEC_MASK,
                         h0.attributes & ~GR_BATCH_ATTR_CODEC_MASK);
        ck_assert_int_eq(h.last_offset_delta, h0.last_offset_delta);
        ck_assert_int_eq(h.base_timestamp, h0.base_timestamp);
        ck_assert_int_eq(h.max_timestamp, h0.max_timestamp);
        ck_assert_int_eq(h.producer_id, h0.producer_id);
        ck_assert_int_eq(h.record_count, h0.record_count);
        size_t got_n;
        uint8_t *got = plain_records(out, n, &got_n);
        ck_assert_uint_eq(got_n, want_n);
        ck_assert_int_eq(memcmp(got, want, want_n), 0);
        ck_assert_int_eq(count_records(out, n), 5);
        if (to == from)
            ck_assert(n == len || from != GR_CODEC_NONE);
        free(got);
        free(out);
    }
    free(want);
    free(b);
}
END_TEST

START_TEST(test_recompress_refuses_corrupt)
{
    gr_record_spec r[5];
    round_trip_records(r);
    size_t len;
    uint8_t *b = build(GR_CODEC_GZIP, 0, r, 5, &len);
    gr_writer w;
    gr_writer_init(&w, 0);
    /* Truncated, bad CRC, bad target codec: nothing appended. */
    ck_assert_int_eq(gr_batch_recompress(b, len - 1, GR_CODEC_LZ4, -1, MAX_UNCOMPRESSED, &w),
                     GR_ERR_MALFORMED);
    b[len - 1] ^= 0x40;
    ck_assert_int_eq(gr_batch_recompress(b, len, GR_CODEC_LZ4, -1, MAX_UNCOMPRESSED, &w),
                     GR_ERR_MALFORMED);
    b[len - 1] ^= 0x40;
    ck_assert_int_eq(gr_batch_recompress(b, len, (gr_codec)5, -1, MAX_UNCOMPRESSED, &w),
                     GR_ERR_MALFORMED);
    /* Beyond the decompression bound. */
    ck_assert_int_eq(gr_batch_recompress(b, len, GR_CODEC_NONE, -1, 64, &w), GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 0);
    free(b);
    /* A valid CRC over records that are not gzip at all. */
    static const uint8_t junk[] = "not a gzip stream at all";
    hand_header hh = {.attributes = GR_CODEC_GZIP, .last_offset_delta = 0, .record_count = 1};
    b = assemble(&hh, junk, sizeof junk - 1, &len);
    ck_assert_int_eq(shallow(b, len), GR_BATCH_OK);
    ck_assert_int_eq(gr_batch_recompress(b, len, GR_CODEC_ZSTD, -1, MAX_UNCOMPRESSED, &w),
                     GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 0);
    gr_writer_free(&w);
    free(b);
}
END_TEST

Suite *batch_suite(void)
{
    Suite *s = suite_create("batch");

    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_golden_header);
    tcase_add_test(tc, test_golden_records);
    tcase_add_test(tc, test_golden_build);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_add_loop_test(tc, test_round_trip, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    tcase_add_test(tc, test_build_header_fields);
    tcase_add_test(tc, test_build_rejects);
    tcase_add_test(tc, test_empty_batch);
    suite_add_tcase(s, tc);

    tc = tcase_create("envelope");
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_crc_covers_attributes_to_end);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_bad_length);
    tcase_add_test(tc, test_bad_codec);
    tcase_add_test(tc, test_result_strings);
    suite_add_tcase(s, tc);

    tc = tcase_create("records");
    tcase_add_test(tc, test_count_mismatch);
    tcase_add_test(tc, test_iter_count_mismatch);
    tcase_add_test(tc, test_count_huge);
    tcase_add_test(tc, test_record_length);
    tcase_add_test(tc, test_record_fields);
    tcase_add_test(tc, test_overlong_varints);
    tcase_add_test(tc, test_record_single_rule);
    tcase_add_test(tc, test_trailing_junk);
    tcase_add_test(tc, test_offset_deltas);
    tcase_add_test(tc, test_max_timestamp);
    tcase_add_loop_test(tc, test_random_mutations, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("rewrite");
    tcase_add_test(tc, test_set_offset_and_epoch);
    tcase_add_loop_test(tc, test_set_log_append_time, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("compression");
    tcase_add_loop_test(tc, test_decompression_bound, GR_CODEC_GZIP, GR_CODEC_ZSTD + 1);
    tcase_add_test(tc, test_not_compressed_data);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_loop_test(tc, test_check_timestamps, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    tcase_add_test(tc, test_check_keys_and_log_append_time);
    suite_add_tcase(s, tc);

    tc = tcase_create("recompress");
    tcase_add_loop_test(tc, test_recompress_every_pair, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    tcase_add_test(tc, test_recompress_refuses_corrupt);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("clients");
    tcase_add_loop_test(tc, test_kcat_batches, GR_CODEC_NONE, GR_CODEC_ZSTD + 1);
    tcase_add_test(tc, test_confluent_batches);
    tcase_add_test(tc, test_kcat_batch_append_rewrites);
    suite_add_tcase(s, tc);
    return s;
}
