/*
 * test_cleaner.c - common/cleaner: compaction of a real partition log
 * (common/log) checked against a model of what must survive, every codec,
 * producer metadata and empty batches, the dirty ratio and compaction lag
 * gates, a dedupe buffer too small for the keys, a crash after every step
 * of the segment swap, and the cleaner thread.
 *
 * Every test works in its own temporary directory. Each appended record is
 * also written down in a model (offset, key, value, timestamp); what a pass
 * must keep is computed from the model and the log's segment list with the
 * rule the cleaner documents, and the whole log is read back and compared
 * record by record. Time is passed in, so nothing sleeps but the thread
 * test.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/cleaner.h"
#include "common/log.h"
#include "common/logging.h"
#include "tests/unit/suites.h"
#include "tests/unit/testenv.h"

#define T0 1700000000000LL /* a plausible wall clock, in ms */
#define DAY 86400000LL
#define MAXU (16u << 20)

static char root[64];

static void setup(void)
{
    gr_test_mkdtemp(root, sizeof root, "clean");
    gr_test_capture_stderr();
}

static void teardown(void)
{
    gr_test_rmtree(root);
    gr_test_release_stderr();
}

/* ---- the model ---- */

#define SMAX 48

typedef struct {
    int64_t off;
    int64_t ts;
    int klen, vlen; /* -1: null */
    char key[SMAX], val[SMAX];
    int32_t hcount;
    char hkey[SMAX], hval[SMAX]; /* the first header, when any */
} rec;

typedef struct {
    rec *r;
    size_t n, cap;
} recs;

static void recs_add(recs *m, const rec *r)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->r = realloc(m->r, m->cap * sizeof *m->r);
        ck_assert_ptr_nonnull(m->r);
    }
    m->r[m->n++] = *r;
}

static void recs_free(recs *m)
{
    free(m->r);
    memset(m, 0, sizeof *m);
}

static bool rec_eq(const rec *a, const rec *b)
{
    return a->off == b->off && a->ts == b->ts && a->klen == b->klen && a->vlen == b->vlen &&
           (a->klen <= 0 || memcmp(a->key, b->key, (size_t)a->klen) == 0) &&
           (a->vlen <= 0 || memcmp(a->val, b->val, (size_t)a->vlen) == 0) &&
           a->hcount == b->hcount && strcmp(a->hkey, b->hkey) == 0 && strcmp(a->hval, b->hval) == 0;
}

static bool recs_eq(const recs *a, const recs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!rec_eq(&a->r[i], &b->r[i]))
            return false;
    return true;
}

static void assert_recs_eq(const recs *got, const recs *want)
{
    for (size_t i = 0; i < got->n && i < want->n; i++)
        ck_assert_msg(rec_eq(&got->r[i], &want->r[i]),
                      "record %zu: got offset %" PRId64 " key %.*s, want offset %" PRId64
                      " key %.*s",
                      i, got->r[i].off, got->r[i].klen > 0 ? got->r[i].klen : 0, got->r[i].key,
                      want->r[i].off, want->r[i].klen > 0 ? want->r[i].klen : 0, want->r[i].key);
    ck_assert_uint_eq(got->n, want->n);
}

/* ---- the log ---- */

static gr_log *open_log(const char *topic, int64_t now)
{
    gr_log_config cfg;
    gr_log_config_defaults(&cfg);
    gr_log *log = NULL;
    ck_assert_int_eq(gr_log_open(&log, root, topic, 0, &cfg, now), GR_LOG_OK);
    return log;
}

typedef struct {
    const char *key; /* NULL: null key */
    const char *val; /* NULL: tombstone */
    const char *hkey, *hval; /* one header when hkey is set */
} kv;

typedef struct {
    gr_codec codec;
    int64_t pid;
    int16_t epoch;
    int32_t seq;
} prod;

static const prod NO_PROD = {GR_CODEC_NONE, -1, -1, -1};

static gr_bytes str_bytes(const char *s)
{
    return s ? (gr_bytes){(const uint8_t *)s, (int32_t)strlen(s)} : GR_BYTES_NULL;
}

/* Appends one batch of the records kv[0..n) with timestamps ts, ts+1, ...
 * and notes them in the model (may be NULL). Returns the first offset. */
static int64_t append_kv(gr_log *log, recs *model, prod p, const kv *kvs, int n, int64_t ts,
                         int64_t now)
{
    gr_record_spec rs[64];
    gr_bytes hk[64], hv[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++) {
        rs[i] = (gr_record_spec){.timestamp = ts + i, .offset_delta = i,
                                 .key = str_bytes(kvs[i].key), .value = str_bytes(kvs[i].val)};
        if (kvs[i].hkey) {
            hk[i] = str_bytes(kvs[i].hkey);
            hv[i] = str_bytes(kvs[i].hval);
            rs[i].header_count = 1;
            rs[i].header_keys = &hk[i];
            rs[i].header_values = &hv[i];
        }
    }
    gr_batch_spec spec = {.base_offset = 0, .partition_leader_epoch = -1, .codec = p.codec,
                          .producer_id = p.pid, .producer_epoch = p.epoch,
                          .base_sequence = p.seq};
    gr_writer w;
    gr_writer_init(&w, 256);
    ck_assert_int_eq(gr_batch_build(&w, &spec, rs, n), GR_OK);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, w.p, w.len, 3, GR_LOG_APPEND_DEEP, MAXU, now, &res),
                     GR_LOG_OK);
    gr_writer_free(&w);
    for (int i = 0; model && i < n; i++) {
        rec r = {.off = res.first_offset + i, .ts = ts + i, .klen = -1, .vlen = -1};
        if (kvs[i].key)
            r.klen = snprintf(r.key, SMAX, "%s", kvs[i].key);
        if (kvs[i].val)
            r.vlen = snprintf(r.val, SMAX, "%s", kvs[i].val);
        if (kvs[i].hkey) {
            r.hcount = 1;
            snprintf(r.hkey, SMAX, "%s", kvs[i].hkey);
            snprintf(r.hval, SMAX, "%s", kvs[i].hval);
        }
        recs_add(model, &r);
    }
    return res.first_offset;
}

/* A batch as read back: header and bytes. */
typedef struct {
    gr_batch_header h;
    uint8_t *bytes;
    size_t len;
} rbatch;

typedef struct {
    rbatch *b;
    size_t n, cap;
} rbatches;

static void rbatches_free(rbatches *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        free(bs->b[i].bytes);
    free(bs->b);
    memset(bs, 0, sizeof *bs);
}

static void decode_batch(const uint8_t *p, size_t len, recs *out)
{
    gr_record_iter it;
    ck_assert_int_eq(gr_record_iter_init(&it, p, len, MAXU), GR_BATCH_OK);
    gr_record r;
    gr_batch_result err = GR_BATCH_OK;
    int rc;
    while ((rc = gr_record_iter_next(&it, &r, &err)) == 1) {
        rec x = {.off = it.h.base_offset + r.offset_delta,
                 .ts = it.h.base_timestamp + r.timestamp_delta,
                 .klen = r.key.len, .vlen = r.value.len, .hcount = r.header_count};
        ck_assert_int_lt(r.key.len, SMAX);
        ck_assert_int_lt(r.value.len, SMAX);
        if (r.key.len > 0)
            memcpy(x.key, r.key.ptr, (size_t)r.key.len);
        if (r.value.len > 0)
            memcpy(x.val, r.value.ptr, (size_t)r.value.len);
        if (r.header_count > 0) {
            gr_reader hr = r.headers;
            int32_t kl, vl;
            const uint8_t *kp, *vp;
            ck_assert_int_eq(gr_read_varint(&hr, &kl), GR_OK);
            ck_assert_int_eq(gr_read_raw(&hr, (size_t)kl, &kp), GR_OK);
            ck_assert_int_eq(gr_read_varint(&hr, &vl), GR_OK);
            ck_assert_int_eq(gr_read_raw(&hr, (size_t)vl, &vp), GR_OK);
            snprintf(x.hkey, SMAX, "%.*s", kl, kp);
            snprintf(x.hval, SMAX, "%.*s", vl, vp);
        }
        recs_add(out, &x);
    }
    ck_assert_int_eq(rc, 0);
    gr_record_iter_free(&it);
}

/* Reads the whole log through gr_log_read: every record (and every batch
 * when bs is not NULL), in offset order. Checks offsets increase. */
static void read_all(gr_log *log, recs *out, rbatches *bs)
{
    int64_t off = gr_log_start_offset(log), last = -1;
    int64_t end = gr_log_end_offset(log);
    while (off < end) {
        gr_log_read_result rr;
        ck_assert_int_eq(gr_log_read(log, off, 1 << 20, INT64_MAX, &rr), GR_LOG_OK);
        if (rr.length == 0) {
            gr_log_read_release(&rr);
            break;
        }
        size_t total = rr.length;
        uint8_t *buf = malloc(total);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(pread(rr.fd, buf, total, rr.position), (ssize_t)total);
        gr_log_read_release(&rr);
        size_t pos = 0;
        while (pos < total) {
            gr_batch_header h;
            ck_assert_int_eq(gr_batch_parse_header(buf + pos, total - pos, &h), GR_BATCH_OK);
            size_t len = gr_batch_size(&h);
            ck_assert_int_eq(gr_batch_validate(buf + pos, len, false, 0, NULL), GR_BATCH_OK);
            ck_assert_int_gt(h.base_offset, last);
            last = gr_batch_last_offset(&h);
            if (bs) {
                if (bs->n == bs->cap) {
                    bs->cap = bs->cap ? bs->cap * 2 : 16;
                    bs->b = realloc(bs->b, bs->cap * sizeof *bs->b);
                    ck_assert_ptr_nonnull(bs->b);
                }
                rbatch *rb = &bs->b[bs->n++];
                rb->h = h;
                rb->len = len;
                rb->bytes = malloc(len);
                ck_assert_ptr_nonnull(rb->bytes);
                memcpy(rb->bytes, buf + pos, len);
            }
            decode_batch(buf + pos, len, out);
            pos += len;
        }
        free(buf);
        ck_assert_int_ge(last + 1, off + 1);
        off = last + 1;
    }
}

static size_t segments(gr_log *log, gr_log_segment_info *out, size_t max)
{
    size_t n = gr_log_segments(log, out, max);
    ck_assert_uint_le(n, max);
    return n;
}

/* What a full pass must keep of the content `cur` given the segment list:
 * the rule cleaner.c documents, applied to records (first dirty = log start,
 * min.compaction.lag.ms 0, an unbounded key map). */
static void expect_clean(const recs *cur, const gr_log_segment_info *segs, size_t nsegs,
                         int64_t now, int64_t delete_retention, recs *out)
{
    int64_t end = segs[nsegs - 1].base_offset; /* the active segment's */
    for (size_t i = 0; i < cur->n; i++) {
        const rec *r = &cur->r[i];
        bool keep = true;
        if (r->off < end && r->klen >= 0) {
            for (size_t j = i + 1; j < cur->n && keep; j++)
                if (cur->r[j].off < end && cur->r[j].klen == r->klen &&
                    memcmp(cur->r[j].key, r->key, (size_t)r->klen) == 0)
                    keep = false;
            if (keep && r->vlen < 0) {
                size_t s = 0;
                while (s + 1 < nsegs && segs[s + 1].base_offset <= r->off)
                    s++;
                if (segs[s].max_timestamp < now - delete_retention)
                    keep = false;
            }
        }
        if (keep)
            recs_add(out, r);
    }
}

static gr_cleaner_config test_cfg(void)
{
    gr_cleaner_config cfg;
    gr_cleaner_config_defaults(&cfg);
    cfg.min_cleanable_dirty_ratio = 0.0;
    cfg.max_uncompressed = MAXU;
    return cfg;
}

/* Copies the bytes of a segment. */
static uint8_t *segment_bytes(gr_log *log, int64_t base, size_t *len)
{
    gr_log_read_result rr;
    ck_assert_int_eq(gr_log_read_segment(log, base, &rr), GR_LOG_OK);
    size_t n = rr.length;
    uint8_t *b = malloc(n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pread(rr.fd, b, n, rr.position), (ssize_t)n);
    *len = n;
    gr_log_read_release(&rr);
    return b;
}

/* Keys k0..k9 updated over five rolled segments, a tombstone for k3 in the
 * fourth, and k0 and k1 again in the active segment. */
static void fill_updates(gr_log *log, recs *model, int64_t ts0)
{
    char keys[10][24], vals[10][32];
    for (int round = 0; round < 5; round++) {
        kv kvs[10];
        for (int i = 0; i < 10; i++) {
            snprintf(keys[i], sizeof keys[i], "k%d", i);
            snprintf(vals[i], sizeof vals[i], "v%d-%d", round, i);
            kvs[i] = (kv){keys[i], vals[i], NULL, NULL};
        }
        if (round == 3)
            kvs[3].val = NULL; /* delete k3 */
        if (round == 4) {
            /* k3 stays deleted: round 4 skips it */
            kvs[3] = kvs[9];
            kvs[9] = (kv){NULL, "keyless", NULL, NULL};
        }
        /* two batches per round */
        append_kv(log, model, NO_PROD, kvs, 5, ts0 + round * 1000, T0);
        append_kv(log, model, NO_PROD, kvs + 5, 5, ts0 + round * 1000 + 5, T0);
        ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    }
    kv active[2] = {{"k0", "active-0", NULL, NULL}, {"k1", "active-1", "h", "x"}};
    append_kv(log, model, NO_PROD, active, 2, ts0 + 9000, T0);
}

/* ---- tests ---- */

START_TEST(test_latest_per_key)
{
    gr_log *log = open_log("upd", T0);
    recs model = {0};
    fill_updates(log, &model, T0);

    gr_log_segment_info segs[16];
    size_t n = segments(log, segs, 16);
    ck_assert_uint_eq(n, 6);
    int64_t leo = gr_log_end_offset(log);
    size_t active_len;
    uint8_t *active = segment_bytes(log, segs[n - 1].base_offset, &active_len);

    /* Young tombstone: kept. */
    gr_cleaner_config cfg = test_cfg();
    int64_t now = T0 + 10000;
    recs want = {0};
    expect_clean(&model, segs, n, now, cfg.delete_retention_ms, &want);
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, now, &st), GR_CLEANER_CLEANED);
    recs got = {0};
    read_all(log, &got, NULL);
    assert_recs_eq(&got, &want);
    /* latest value per key, the tombstone for k3 and the keyless record */
    bool saw_tombstone = false;
    for (size_t i = 0; i < got.n; i++)
        if (got.r[i].klen == 2 && memcmp(got.r[i].key, "k3", 2) == 0) {
            ck_assert_int_eq(got.r[i].vlen, -1);
            saw_tombstone = true;
        }
    ck_assert(saw_tombstone);
    ck_assert_uint_eq(st.records_read, 50);
    ck_assert_uint_eq(st.records_kept, want.n - 2);
    ck_assert_uint_eq(st.tombstones_dropped, 0);
    ck_assert_uint_eq(st.segments_before, 6);
    ck_assert_uint_lt(st.segments_after, 6); /* merged: everything fits one segment */
    ck_assert_int_eq(st.end_offset, segs[n - 1].base_offset);
    ck_assert_uint_lt(st.bytes_written, st.bytes_read);

    /* the active segment is untouched, the log end too */
    ck_assert_int_eq(gr_log_end_offset(log), leo);
    gr_log_segment_info after[16];
    size_t n2 = segments(log, after, 16);
    ck_assert(after[n2 - 1].active);
    ck_assert_int_eq(after[n2 - 1].base_offset, segs[n - 1].base_offset);
    size_t active2_len;
    uint8_t *active2 = segment_bytes(log, after[n2 - 1].base_offset, &active2_len);
    ck_assert_uint_eq(active2_len, active_len);
    ck_assert_mem_eq(active2, active, active_len);
    free(active);
    free(active2);

    /* the checkpoint, in Kafka's format */
    char path[256], text[128];
    snprintf(path, sizeof path, "%s/upd-0/%s", root, GR_CLEANER_CHECKPOINT_FILE);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t tl = fread(text, 1, sizeof text - 1, f);
    text[tl] = '\0';
    fclose(f);
    char expect_text[128];
    snprintf(expect_text, sizeof expect_text, "0\n1\nupd 0 %" PRId64 "\n", st.end_offset);
    ck_assert_str_eq(text, expect_text);

    /* Nothing dirty: a second pass does nothing. */
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, now, &st), GR_CLEANER_NOTHING);

    /* Appends continue at the same log end offset. */
    kv more[1] = {{"k2", "late", NULL, NULL}};
    ck_assert_int_eq(append_kv(log, &got, NO_PROD, more, 1, T0 + 20000, T0), leo);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);

    /* A day later, with new dirty data: the tombstone goes. */
    now = T0 + 2 * DAY;
    n = segments(log, segs, 16);
    recs want2 = {0};
    expect_clean(&got, segs, n, now, cfg.delete_retention_ms, &want2);
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, now, &st), GR_CLEANER_CLEANED);
    ck_assert_uint_eq(st.tombstones_dropped, 1);
    recs got2 = {0};
    read_all(log, &got2, NULL);
    assert_recs_eq(&got2, &want2);
    for (size_t i = 0; i < got2.n; i++)
        ck_assert(!(got2.r[i].klen == 2 && memcmp(got2.r[i].key, "k3", 2) == 0));

    /* and it all survives a reopen */
    ck_assert_int_eq(gr_log_close(log, now), GR_LOG_OK);
    log = open_log("upd", now);
    recs got3 = {0};
    read_all(log, &got3, NULL);
    assert_recs_eq(&got3, &want2);
    ck_assert_int_eq(gr_log_close(log, now), GR_LOG_OK);
    recs_free(&model);
    recs_free(&want);
    recs_free(&got);
    recs_free(&want2);
    recs_free(&got2);
    recs_free(&got3);
}
END_TEST

static const gr_codec codecs[] = {GR_CODEC_NONE, GR_CODEC_GZIP, GR_CODEC_SNAPPY, GR_CODEC_LZ4,
                                  GR_CODEC_ZSTD};

START_TEST(test_codecs)
{
    gr_codec codec = codecs[_i];
    char topic[32];
    snprintf(topic, sizeof topic, "codec%d", (int)codec);
    gr_log *log = open_log(topic, T0);
    recs model = {0};
    prod p = {codec, -1, -1, -1};
    kv a[6] = {{"a", "a1", NULL, NULL}, {"b", "b1", "trace", "t1"}, {"c", "c1", NULL, NULL},
               {"a", "a2", "trace", "t2"}, {"b", "b2", NULL, NULL}, {"d", "d1", NULL, NULL}};
    kv b[2] = {{"x", "x1", NULL, NULL}, {"y", "y1", "trace", "t3"}};
    kv c[1] = {{"d", "d2", NULL, NULL}};
    append_kv(log, &model, p, a, 6, T0, T0);
    append_kv(log, &model, p, b, 2, T0 + 10, T0);
    append_kv(log, &model, p, c, 1, T0 + 20, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    append_kv(log, &model, p, c, 1, T0 + 30, T0); /* active: d again, untouched */

    rbatches before = {0};
    recs tmp = {0};
    read_all(log, &tmp, &before);
    ck_assert_uint_eq(before.n, 4);

    gr_log_segment_info segs[8];
    size_t n = segments(log, segs, 8);
    recs want = {0};
    gr_cleaner_config cfg = test_cfg();
    expect_clean(&model, segs, n, T0, cfg.delete_retention_ms, &want);
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, &st), GR_CLEANER_CLEANED);
    ck_assert_uint_eq(st.batches_rebuilt, 1);

    rbatches after = {0};
    recs got = {0};
    read_all(log, &got, &after);
    assert_recs_eq(&got, &want);
    ck_assert_uint_eq(after.n, 4);
    /* batch 0 rebuilt: c1, a2, b2, d1 kept at their offsets, same codec */
    const gr_batch_header *h0 = &after.b[0].h;
    ck_assert_int_eq(h0->base_offset, before.b[0].h.base_offset);
    ck_assert_int_eq(h0->attributes, before.b[0].h.attributes);
    ck_assert_int_eq(gr_batch_codec(h0), codec);
    ck_assert_int_eq(h0->record_count, 3); /* a1, b1 superseded; d1 by d2 */
    ck_assert_int_eq(h0->last_offset_delta, before.b[0].h.last_offset_delta);
    ck_assert_int_eq(h0->partition_leader_epoch, before.b[0].h.partition_leader_epoch);
    recs dec = {0};
    decode_batch(after.b[0].bytes, after.b[0].len, &dec);
    ck_assert_uint_eq(dec.n, 3);
    ck_assert_int_eq(dec.r[0].off, h0->base_offset + 2);
    ck_assert_int_eq(dec.r[1].off, h0->base_offset + 3);
    ck_assert_str_eq(dec.r[1].hval, "t2");
    ck_assert_int_eq(dec.r[2].off, h0->base_offset + 4);
    /* batches kept whole are byte-identical (no recompression) */
    for (size_t i = 1; i < 4; i++) {
        ck_assert_uint_eq(after.b[i].len, before.b[i].len);
        ck_assert_mem_eq(after.b[i].bytes, before.b[i].bytes, before.b[i].len);
    }
    rbatches_free(&before);
    rbatches_free(&after);
    recs_free(&model);
    recs_free(&tmp);
    recs_free(&want);
    recs_free(&got);
    recs_free(&dec);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
}
END_TEST

START_TEST(test_producer_metadata)
{
    gr_log *log = open_log("prod", T0);
    recs model = {0};
    prod p1 = {GR_CODEC_LZ4, 1234, 7, 100};
    prod p2 = {GR_CODEC_NONE, 55, 2, 0};
    prod p3a = {GR_CODEC_ZSTD, 77, 1, 0};
    prod p3b = {GR_CODEC_ZSTD, 77, 1, 2};
    prod p4 = {GR_CODEC_NONE, 88, 0, 0};
    kv r1[3] = {{"a", "1", NULL, NULL}, {"b", "1", NULL, NULL}, {"a", "2", NULL, NULL}};
    kv r2[2] = {{"z", "1", NULL, NULL}, {"y", "1", NULL, NULL}};
    kv r3[2] = {{"q", "1", NULL, NULL}, {"r", "1", NULL, NULL}};
    kv r4[5] = {{"z", "2", NULL, NULL}, {"y", "2", NULL, NULL}, {"q", "2", NULL, NULL},
                {"r", "2", NULL, NULL}, {"b", "2", NULL, NULL}};
    append_kv(log, &model, p1, r1, 3, T0, T0);  /* rebuilt: a1 goes */
    append_kv(log, &model, p2, r2, 2, T0, T0);  /* emptied, last of pid 55: kept empty */
    append_kv(log, &model, p3a, r3, 2, T0, T0); /* emptied, not last of 77: dropped */
    append_kv(log, &model, p3b, r3, 2, T0, T0); /* emptied, last of 77: kept empty */
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    append_kv(log, &model, p4, r4, 5, T0, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    kv act[1] = {{"w", "1", NULL, NULL}};
    append_kv(log, &model, NO_PROD, act, 1, T0, T0);

    rbatches before = {0};
    recs tmp = {0};
    read_all(log, &tmp, &before);
    ck_assert_uint_eq(before.n, 6);

    gr_cleaner_config cfg = test_cfg();
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, &st), GR_CLEANER_CLEANED);
    ck_assert_uint_eq(st.batches_rebuilt, 1); /* p1's */
    ck_assert_uint_eq(st.batches_emptied, 2);

    rbatches after = {0};
    recs got = {0};
    read_all(log, &got, &after);
    ck_assert_uint_eq(after.n, 5);
    /* p1: rebuilt, producer id, epoch, base sequence and last offset kept */
    const gr_batch_header *h = &after.b[0].h;
    ck_assert_int_eq(h->producer_id, 1234);
    ck_assert_int_eq(h->producer_epoch, 7);
    ck_assert_int_eq(h->base_sequence, 100);
    ck_assert_int_eq(h->base_offset, before.b[0].h.base_offset);
    ck_assert_int_eq(h->last_offset_delta, 2);
    ck_assert_int_eq(h->record_count, 1); /* a2 only: b1 is superseded by p4's b2 */
    ck_assert_int_eq(gr_batch_codec(h), GR_CODEC_LZ4);
    /* p2: empty but present */
    h = &after.b[1].h;
    ck_assert_int_eq(h->producer_id, 55);
    ck_assert_int_eq(h->producer_epoch, 2);
    ck_assert_int_eq(h->base_sequence, 0);
    ck_assert_int_eq(h->record_count, 0);
    ck_assert_int_eq(h->last_offset_delta, 1);
    ck_assert_int_eq(h->max_timestamp, before.b[1].h.max_timestamp);
    ck_assert_int_eq(gr_batch_codec(h), GR_CODEC_NONE);
    /* p3: the first batch dropped, the last one empty */
    h = &after.b[2].h;
    ck_assert_int_eq(h->producer_id, 77);
    ck_assert_int_eq(h->base_offset, before.b[3].h.base_offset);
    ck_assert_int_eq(h->base_sequence, 2);
    ck_assert_int_eq(h->record_count, 0);
    ck_assert_int_eq(h->last_offset_delta, 1);
    /* p4 whole */
    ck_assert_uint_eq(after.b[3].len, before.b[4].len);
    ck_assert_mem_eq(after.b[3].bytes, before.b[4].bytes, before.b[4].len);

    /* empty batches survive recovery after a crash */
    gr_log_abandon(log);
    log = open_log("prod", T0);
    recs got2 = {0};
    rbatches after2 = {0};
    read_all(log, &got2, &after2);
    assert_recs_eq(&got2, &got);
    ck_assert_uint_eq(after2.n, 5);
    ck_assert_int_eq(after2.b[1].h.record_count, 0);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
    rbatches_free(&before);
    rbatches_free(&after);
    rbatches_free(&after2);
    recs_free(&model);
    recs_free(&tmp);
    recs_free(&got);
    recs_free(&got2);
}
END_TEST

START_TEST(test_dirty_ratio)
{
    gr_log *log = open_log("ratio", T0);
    recs model = {0};
    fill_updates(log, &model, T0);
    gr_cleaner_config cfg;
    gr_cleaner_config_defaults(&cfg);
    cfg.max_uncompressed = MAXU;
    /* all dirty: ratio 1 > 0.5 */
    double ratio;
    bool go;
    ck_assert_int_eq(gr_cleaner_dirty_ratio(log, &cfg, T0, &ratio, &go), GR_LOG_OK);
    ck_assert(ratio == 1.0);
    ck_assert(go);
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, &st), GR_CLEANER_CLEANED);

    /* A little new data against a threshold it does not reach: nothing
     * happens. The ratio is the dirty segment's share of the cleanable ones. */
    kv one[1] = {{"k5", "new", NULL, NULL}};
    append_kv(log, &model, NO_PROD, one, 1, T0 + 9500, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    gr_log_segment_info segs[16];
    size_t n = segments(log, segs, 16);
    uint64_t total = 0;
    for (size_t i = 0; i + 1 < n; i++)
        total += segs[i].size;
    double want_ratio = (double)segs[n - 2].size / (double)total;
    recs before = {0};
    read_all(log, &before, NULL);
    cfg.min_cleanable_dirty_ratio = 0.9;
    ck_assert_int_eq(gr_cleaner_dirty_ratio(log, &cfg, T0, &ratio, &go), GR_LOG_OK);
    ck_assert(ratio == want_ratio);
    ck_assert(ratio > 0.0 && ratio < 0.9);
    ck_assert(!go);
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, &st), GR_CLEANER_NOTHING);
    ck_assert_uint_eq(st.bytes_written, 0);
    ck_assert(st.dirty_ratio == ratio);
    recs after = {0};
    read_all(log, &after, NULL);
    assert_recs_eq(&after, &before);
    gr_log_segment_info segs2[16];
    ck_assert_uint_eq(segments(log, segs2, 16), n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(segs2[i].base_offset, segs[i].base_offset);
        ck_assert_uint_eq(segs2[i].size, segs[i].size);
    }
    /* at the threshold itself it still waits (Kafka compares strictly) */
    cfg.min_cleanable_dirty_ratio = ratio;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, &st), GR_CLEANER_NOTHING);
    cfg.min_cleanable_dirty_ratio = 0.9;

    /* max.compaction.lag.ms forces it once the dirty data is old enough */
    cfg.max_compaction_lag_ms = 60000;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0 + 1000, &st), GR_CLEANER_NOTHING);
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0 + 120000, &st), GR_CLEANER_CLEANED);
    recs_free(&model);
    recs_free(&before);
    recs_free(&after);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
}
END_TEST

START_TEST(test_min_compaction_lag)
{
    gr_log *log = open_log("lag", T0);
    recs model = {0};
    fill_updates(log, &model, T0); /* rounds at T0 + 0, 1000, ..., 4000 */
    gr_log_segment_info segs[16];
    size_t n = segments(log, segs, 16);
    ck_assert_uint_eq(n, 6);
    gr_cleaner_config cfg = test_cfg();
    cfg.min_compaction_lag_ms = 10000;
    /* now - lag falls between rounds 1 and 2: only segments 0 and 1 qualify */
    int64_t now = T0 + 10000 + 1500;
    size_t len2;
    uint8_t *seg2 = segment_bytes(log, segs[2].base_offset, &len2);
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, now, &st), GR_CLEANER_CLEANED);
    ck_assert_int_eq(st.end_offset, segs[2].base_offset);
    ck_assert_uint_eq(st.records_read, 20);
    /* Nothing superseded within rounds 0 and 1 alone... except round 0 by
     * round 1: each key's round-0 value goes. */
    ck_assert_uint_eq(st.records_kept, 10);
    gr_log_segment_info after[16];
    size_t n2 = segments(log, after, 16);
    ck_assert_uint_eq(n2, 5); /* 0 and 1 merged */
    for (size_t i = 2; i < n; i++) {
        ck_assert_int_eq(after[i - 1].base_offset, segs[i].base_offset);
        ck_assert_uint_eq(after[i - 1].size, segs[i].size);
    }
    size_t len2b;
    uint8_t *seg2b = segment_bytes(log, segs[2].base_offset, &len2b);
    ck_assert_uint_eq(len2b, len2);
    ck_assert_mem_eq(seg2b, seg2, len2);
    free(seg2);
    free(seg2b);
    recs_free(&model);
    ck_assert_int_eq(gr_log_close(log, now), GR_LOG_OK);
}
END_TEST

START_TEST(test_segment_groups)
{
    gr_log *log = open_log("groups", T0);
    recs model = {0};
    fill_updates(log, &model, T0);
    gr_log_segment_info segs[16];
    size_t n = segments(log, segs, 16);
    ck_assert_uint_eq(n, 6);
    /* segment.bytes too small for any two segments: one group each, and
     * segment 0 (round 0, all superseded by round 1) comes out empty */
    gr_cleaner_config cfg = test_cfg();
    uint64_t biggest = 0;
    for (size_t i = 0; i + 1 < n; i++)
        biggest = segs[i].size > biggest ? segs[i].size : biggest;
    cfg.segment_bytes = (int64_t)biggest;
    recs want = {0};
    expect_clean(&model, segs, n, T0, cfg.delete_retention_ms, &want);
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, NULL), GR_CLEANER_CLEANED);
    gr_log_segment_info after[16];
    ck_assert_uint_eq(segments(log, after, 16), n);
    ck_assert_uint_eq(after[0].size, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(after[i].base_offset, segs[i].base_offset);
    recs got = {0};
    read_all(log, &got, NULL);
    assert_recs_eq(&got, &want);
    ck_assert_int_eq(gr_log_start_offset(log), 0);

    /* recovery copes with the empty segment */
    gr_log_abandon(log);
    log = open_log("groups", T0);
    recs got2 = {0};
    read_all(log, &got2, NULL);
    assert_recs_eq(&got2, &want);

    /* with the default segment.bytes the next pass merges them all */
    kv one[1] = {{"k7", "again", NULL, NULL}};
    append_kv(log, &got2, NO_PROD, one, 1, T0 + 9500, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    n = segments(log, segs, 16);
    recs want3 = {0};
    expect_clean(&got2, segs, n, T0, cfg.delete_retention_ms, &want3);
    cfg.segment_bytes = (int64_t)1 << 30;
    ck_assert_int_eq(gr_cleaner_clean(log, &cfg, T0, NULL), GR_CLEANER_CLEANED);
    ck_assert_uint_eq(gr_log_segment_count(log), 2);
    recs got3 = {0};
    read_all(log, &got3, NULL);
    assert_recs_eq(&got3, &want3);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
    recs_free(&model);
    recs_free(&want);
    recs_free(&got);
    recs_free(&got2);
    recs_free(&want3);
    recs_free(&got3);
}
END_TEST

/* Many keys in many segments; two logs with the same content. */
static void fill_many(gr_log *log, recs *model)
{
    char keys[10][24], vals[10][24];
    for (int round = 0; round < 3; round++) {
        for (int b = 0; b < 30; b++) {
            kv kvs[10];
            for (int i = 0; i < 10; i++) {
                int k = (b * 10 + i + round * 37) % 300;
                snprintf(keys[i], sizeof keys[i], "key-%04d", k);
                snprintf(vals[i], sizeof vals[i], "r%d", round);
                kvs[i] = (kv){keys[i], vals[i], NULL, NULL};
            }
            append_kv(log, model, NO_PROD, kvs, 10, T0 + round * 100 + b, T0);
            if (b % 10 == 9)
                ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
        }
    }
    kv last[1] = {{"key-0001", "active", NULL, NULL}};
    append_kv(log, model, NO_PROD, last, 1, T0 + 1000, T0);
}

START_TEST(test_small_dedupe_buffer)
{
    gr_log *big = open_log("big", T0), *small = open_log("small", T0);
    recs model = {0}, model2 = {0};
    fill_many(big, &model);
    fill_many(small, &model2);
    ck_assert(recs_eq(&model, &model2));

    gr_cleaner_config cfg = test_cfg();
    gr_cleaner_stats st;
    ck_assert_int_eq(gr_cleaner_clean(big, &cfg, T0, &st), GR_CLEANER_CLEANED);
    recs want = {0};
    read_all(big, &want, NULL);
    ck_assert_uint_eq(want.n, 301); /* 300 keys + the active record */

    /* 300 keys of 8 bytes do not fit 16 KiB of table (32 bytes a slot, 3/4 full at most) + keys */
    cfg.dedupe_buffer_bytes = 16384;
    int passes = 0, rc;
    int64_t prev_end = -1;
    while ((rc = gr_cleaner_clean(small, &cfg, T0, &st)) == GR_CLEANER_CLEANED) {
        ck_assert_int_gt(st.end_offset, prev_end); /* progress every pass */
        prev_end = st.end_offset;
        ck_assert_int_lt(++passes, 100);
    }
    ck_assert_int_eq(rc, GR_CLEANER_NOTHING);
    ck_assert_int_gt(passes, 1);
    recs got = {0};
    read_all(small, &got, NULL);
    assert_recs_eq(&got, &want);

    /* A buffer too small even for one batch still progresses, a batch a
     * pass (on a smaller log: every pass swaps segments with fsyncs). */
    gr_log *ref = open_log("ref", T0), *tiny = open_log("tiny", T0);
    recs model3 = {0}, model4 = {0};
    fill_updates(ref, &model3, T0);
    fill_updates(tiny, &model4, T0);
    cfg.dedupe_buffer_bytes = 1;
    passes = 0;
    while ((rc = gr_cleaner_clean(tiny, &cfg, T0, &st)) == GR_CLEANER_CLEANED) {
        ck_assert_int_lt(++passes, 20);
        gr_log_tick(tiny, T0 + DAY); /* unlink the replaced segments */
    }
    ck_assert_int_eq(rc, GR_CLEANER_NOTHING);
    ck_assert_int_eq(passes, 10); /* one per batch */
    cfg.dedupe_buffer_bytes = (size_t)1 << 20;
    ck_assert_int_eq(gr_cleaner_clean(ref, &cfg, T0, &st), GR_CLEANER_CLEANED);
    recs got3 = {0}, want3 = {0};
    read_all(tiny, &got3, NULL);
    read_all(ref, &want3, NULL);
    assert_recs_eq(&got3, &want3);
    ck_assert_int_eq(gr_log_close(ref, T0), GR_LOG_OK);
    recs_free(&model4);
    recs_free(&want3);

    ck_assert_int_eq(gr_log_close(big, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_close(small, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_close(tiny, T0), GR_LOG_OK);
    recs_free(&model);
    recs_free(&model2);
    recs_free(&model3);
    recs_free(&want);
    recs_free(&got);
    recs_free(&got3);
}
END_TEST

START_TEST(test_crash_during_swap)
{
    int steps = _i;
    gr_log *ref = open_log("ref", T0), *log = open_log("crash", T0);
    recs model = {0}, model2 = {0};
    fill_updates(ref, &model, T0);
    fill_updates(log, &model2, T0);
    gr_cleaner_config cfg = test_cfg();
    int64_t now = T0 + 2 * DAY; /* the tombstone goes too */

    recs before = {0}, after = {0};
    read_all(log, &before, NULL);
    ck_assert(recs_eq(&before, &model2));
    ck_assert_int_eq(gr_cleaner_clean(ref, &cfg, now, NULL), GR_CLEANER_CLEANED);
    read_all(ref, &after, NULL);
    ck_assert(!recs_eq(&before, &after));

    ck_assert_int_eq(gr_cleaner_clean_steps(log, &cfg, now, NULL, steps), GR_CLEANER_CLEANED);
    gr_log_abandon(log);
    log = open_log("crash", now);
    recs got = {0};
    read_all(log, &got, NULL);
    bool is_before = recs_eq(&got, &before), is_after = recs_eq(&got, &after);
    ck_assert_msg(is_before || is_after, "after a crash at step %d the log is neither", steps);
    /* the manifest is the commit point */
    ck_assert(steps >= 2 ? is_after : is_before);
    ck_assert_int_eq(gr_log_end_offset(log), gr_log_end_offset(ref));

    /* and a full pass then completes */
    int rc = gr_cleaner_clean(log, &cfg, now, NULL);
    ck_assert(rc == GR_CLEANER_CLEANED || rc == GR_CLEANER_NOTHING);
    recs got2 = {0};
    read_all(log, &got2, NULL);
    assert_recs_eq(&got2, &after);
    ck_assert_int_eq(gr_log_close(log, now), GR_LOG_OK);
    ck_assert_int_eq(gr_log_close(ref, now), GR_LOG_OK);
    recs_free(&model);
    recs_free(&model2);
    recs_free(&before);
    recs_free(&after);
    recs_free(&got);
    recs_free(&got2);
}
END_TEST

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_thread)
{
    gr_log *log = open_log("thr", T0);
    recs model = {0};
    fill_updates(log, &model, T0);
    gr_log *idle = open_log("idle", T0); /* nothing to clean: never picked */

    gr_cleaner *c = gr_cleaner_start(20);
    ck_assert_ptr_nonnull(c);
    gr_cleaner_config cfg;
    gr_cleaner_config_defaults(&cfg);
    ck_assert_int_eq(gr_cleaner_add(c, idle, &cfg), 0);
    ck_assert_int_eq(gr_cleaner_add(c, log, &cfg), 0);
    uint64_t passes = 0;
    gr_cleaner_stats total;
    int64_t deadline = mono_ms() + 10000;
    while (passes == 0 && mono_ms() < deadline) {
        usleep(5000);
        gr_cleaner_totals(c, &total, &passes);
    }
    ck_assert_uint_eq(passes, 1);
    ck_assert_uint_eq(total.records_read, 50);
    ck_assert_uint_lt(gr_log_segment_count(log), 6);
    /* real time is years past the records: the tombstone went */
    ck_assert_uint_eq(total.tombstones_dropped, 1);

    gr_cleaner_remove(c, log);
    gr_cleaner_remove(c, log); /* not there: a no-op */
    int64_t t = mono_ms();
    gr_cleaner_stop(c);
    ck_assert_int_lt(mono_ms() - t, 1000);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_close(idle, T0), GR_LOG_OK);
    recs_free(&model);
}
END_TEST

START_TEST(test_thread_stop_is_prompt)
{
    /* A long backoff must not delay stop. */
    gr_cleaner *c = gr_cleaner_start(15000);
    ck_assert_ptr_nonnull(c);
    usleep(20000);
    int64_t t = mono_ms();
    gr_cleaner_stop(c);
    ck_assert_int_lt(mono_ms() - t, 1000);
}
END_TEST

Suite *cleaner_suite(void)
{
    Suite *s = suite_create("cleaner");
    TCase *tc = tcase_create("cleaner");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_latest_per_key);
    tcase_add_loop_test(tc, test_codecs, 0, (int)(sizeof codecs / sizeof codecs[0]));
    tcase_add_test(tc, test_producer_metadata);
    tcase_add_test(tc, test_dirty_ratio);
    tcase_add_test(tc, test_min_compaction_lag);
    tcase_add_test(tc, test_segment_groups);
    tcase_add_test(tc, test_small_dedupe_buffer);
    tcase_add_loop_test(tc, test_crash_during_swap, 1, 5);
    tcase_add_test(tc, test_thread);
    tcase_add_test(tc, test_thread_stop_is_prompt);
    suite_add_tcase(s, tc);
    return s;
}
