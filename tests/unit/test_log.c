/*
 * test_log.c - common/log (with segment.c underneath): append and offset
 * assignment, read bounds, rolls, retention, delete-records, truncation,
 * timestamp lookups, the leader epoch cache, recovery after clean and
 * unclean shutdowns, and the cleaner's segment replacement with a crash
 * simulated after every step.
 *
 * Every test works in its own temporary directory. Batches are built with
 * gr_batch_build; each record's value is derived from its offset, so any
 * read can be checked byte for byte (check_range). Time is passed in, so
 * nothing here sleeps. stderr is captured to a temporary file so that tests
 * can assert what was logged.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/checkpoint.h"
#include "common/log.h"
#include "common/logging.h"
#include "common/segment.h"
#include "tests/unit/suites.h"
#include "tests/unit/testenv.h"

#define T0 1700000000000LL /* a plausible wall clock, in ms */

static char root[64];
static char pdir[128]; /* root/t-0 */

static void setup(void)
{
    gr_test_mkdtemp(root, sizeof root, "log");
    snprintf(pdir, sizeof pdir, "%s/t-0", root);
    gr_test_capture_stderr();
    gr_logging_set_level(GR_LOGGING_INFO);
}

static void teardown(void)
{
    gr_test_rmtree(root);
    gr_test_release_stderr();
}

/* ---- batches whose content is a function of the offsets ---- */

static void value_for(int64_t offset, uint8_t *v, size_t n)
{
    uint64_t x = (uint64_t)offset * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (uint8_t)x;
    }
}

/* A batch of n records of vsize bytes for offsets base.., timestamps ts,
 * ts+1, ... The value of each record depends on its offset. */
static uint8_t *make_batch(int64_t base, int n, size_t vsize, int64_t ts, int32_t epoch, size_t *len)
{
    gr_record_spec *rs = calloc((size_t)n, sizeof *rs);
    uint8_t *vals = malloc((size_t)n * vsize + 1);
    ck_assert_ptr_nonnull(rs);
    ck_assert_ptr_nonnull(vals);
    for (int i = 0; i < n; i++) {
        value_for(base + i, vals + (size_t)i * vsize, vsize);
        rs[i].timestamp = ts + i;
        rs[i].offset_delta = i;
        rs[i].key = GR_BYTES_NULL;
        rs[i].value = (gr_bytes){vals + (size_t)i * vsize, (int32_t)vsize};
    }
    gr_batch_spec spec = {.base_offset = base, .partition_leader_epoch = epoch, .codec = GR_CODEC_NONE,
                          .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    gr_writer w;
    gr_writer_init(&w, 128);
    ck_assert_int_eq(gr_batch_build(&w, &spec, rs, n), GR_OK);
    free(rs);
    free(vals);
    return gr_writer_take(&w, len);
}

/* Leader append of one batch; returns its first offset. */
static int64_t append(gr_log *log, int n, size_t vsize, int64_t ts, int32_t epoch, int64_t now)
{
    size_t len;
    /* built for the offsets it will get, so that its values match them */
    uint8_t *b = make_batch(gr_log_end_offset(log), n, vsize, ts, -1, &len);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, b, len, epoch, 0, 0, now, &res), GR_LOG_OK);
    ck_assert_int_eq(res.last_offset - res.first_offset, n - 1);
    free(b);
    return res.first_offset;
}

/* Checks that [pos, pos+len) of fd is whole, valid batches whose records
 * carry the values of their offsets. Returns the number of batches and sets
 * *next to the offset after the last. */
static int64_t offsets_seen; /* offsets in the batches of the last check_bytes */

static int check_bytes(const uint8_t *p, size_t len, int64_t *first, int64_t *next)
{
    int batches = 0;
    offsets_seen = 0;
    for (size_t at = 0; at < len; batches++) {
        gr_batch_header h;
        ck_assert_int_eq(gr_batch_parse_header(p + at, len - at, &h), GR_BATCH_OK);
        ck_assert_int_eq(gr_batch_validate(p + at, gr_batch_size(&h), true, 1 << 20, &h), GR_BATCH_OK);
        if (batches == 0 && first)
            *first = h.base_offset;
        gr_record_iter it;
        ck_assert_int_eq(gr_record_iter_init(&it, p + at, gr_batch_size(&h), 1 << 20), GR_BATCH_OK);
        gr_record r;
        gr_batch_result err;
        while (gr_record_iter_next(&it, &r, &err) == 1) {
            uint8_t want[4096];
            ck_assert_int_le(r.value.len, (int)sizeof want);
            value_for(h.base_offset + r.offset_delta, want, (size_t)r.value.len);
            ck_assert_msg(memcmp(want, r.value.ptr, (size_t)r.value.len) == 0,
                          "payload of offset %" PRId64 " differs", h.base_offset + r.offset_delta);
        }
        gr_record_iter_free(&it);
        offsets_seen += (int64_t)h.last_offset_delta + 1;
        if (next)
            *next = gr_batch_last_offset(&h) + 1;
        at += gr_batch_size(&h);
    }
    return batches;
}

static int check_range(const gr_log_read_result *r, int64_t *first, int64_t *next)
{
    uint8_t *buf = malloc(r->length + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(r->fd, buf, r->length, r->position), (ssize_t)r->length);
    int n = check_bytes(buf, r->length, first, next);
    free(buf);
    return n;
}

/* Reads the whole log from the start, checking every batch; returns the
 * number of offsets present (gaps excluded) and checks it ends at the log
 * end offset. */
static int64_t read_all(gr_log *log)
{
    int64_t off = gr_log_start_offset(log), records = 0;
    for (;;) {
        gr_log_read_result r;
        ck_assert_int_eq(gr_log_read(log, off, 1 << 20, INT64_MAX, &r), GR_LOG_OK);
        if (r.length == 0) {
            gr_log_read_release(&r);
            break;
        }
        int64_t first, next;
        check_range(&r, &first, &next);
        /* from the batch holding off, or the next one after a gap */
        records += offsets_seen - (first < off ? off - first : 0);
        off = next;
        gr_log_read_release(&r);
    }
    ck_assert_int_eq(off, gr_log_end_offset(log));
    return records;
}

static gr_log *open_log(const gr_log_config *cfg, int64_t now)
{
    gr_log *log;
    ck_assert_int_eq(gr_log_open(&log, root, "t", 0, cfg, now), GR_LOG_OK);
    return log;
}

static void seg_path(char *buf, size_t cap, int64_t base, const char *ext)
{
    ck_assert(gr_segment_filename(buf, cap, pdir, base, ext));
}

static off_t fsize(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return -1;
    return st.st_size;
}

static bool exists(const char *p) { return access(p, F_OK) == 0; }

/* Every entry of every .index file points at a batch of the .log whose base
 * offset is the entry's offset. Returns the number of entries checked. */
static int check_indexes(void)
{
    DIR *d = opendir(pdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int checked = 0;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 26 || strcmp(de->d_name + 20, ".index") != 0)
            continue;
        int64_t base = strtoll(de->d_name, NULL, 10);
        char ip[256], lp[256];
        seg_path(ip, sizeof ip, base, ".index");
        seg_path(lp, sizeof lp, base, ".log");
        gr_index idx;
        ck_assert_int_eq(gr_index_open(&idx, ip, GR_INDEX_OFFSET, base, 0), 0);
        int fd = open(lp, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        for (uint32_t i = 0; i < idx.entries; i++) {
            gr_index_entry e = gr_index_get(&idx, i);
            uint8_t h[GR_BATCH_HEADER_SIZE];
            ck_assert_int_eq(pread(fd, h, sizeof h, e.position), (ssize_t)sizeof h);
            gr_batch_header bh;
            ck_assert_int_eq(gr_batch_parse_header(h, 1u << 30, &bh), GR_BATCH_OK);
            ck_assert_int_eq(bh.base_offset, e.offset);
            checked++;
        }
        close(fd);
        gr_index_close(&idx);
    }
    closedir(d);
    return checked;
}

static gr_log_config small_cfg(void)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.segment_bytes = 4096;
    c.index_interval_bytes = 256;
    c.file_delete_delay_ms = 1000;
    return c;
}

/* ---- append and read ---- */

START_TEST(test_defaults)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    ck_assert_int_eq(c.segment_bytes, 1073741824LL);
    ck_assert_int_eq(c.segment_ms, 604800000LL);
    ck_assert_int_eq(c.segment_index_bytes, 10485760LL);
    ck_assert_int_eq(c.index_interval_bytes, 4096);
    ck_assert_int_eq(c.flush_interval_messages, INT64_MAX);
    ck_assert_int_eq(c.flush_interval_ms, INT64_MAX);
    ck_assert_int_eq(c.retention_ms, 604800000LL);
    ck_assert_int_eq(c.retention_bytes, -1);
    ck_assert_int_eq(c.file_delete_delay_ms, 60000);
    ck_assert(!c.log_append_time);
}
END_TEST

START_TEST(test_append_assigns_offsets)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(append(log, 5, 100, T0 + i, 1, T0), i * 5);
    ck_assert_int_eq(gr_log_end_offset(log), 50);
    /* several batches in one append */
    size_t l1, l2;
    uint8_t *b1 = make_batch(50, 3, 10, T0, -1, &l1), *b2 = make_batch(53, 2, 10, T0, -1, &l2);
    gr_batch_set_base_offset(b1, 0); /* as a producer sends them */
    gr_batch_set_base_offset(b2, 0);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, both, l1 + l2, 2, GR_LOG_APPEND_DEEP, 1 << 20, T0, &res), GR_LOG_OK);
    ck_assert_int_eq(res.first_offset, 50);
    ck_assert_int_eq(res.last_offset, 54);
    /* the buffer was rewritten in place: offsets and epoch */
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(both + l1, l2, false, 0, &h), GR_BATCH_OK);
    ck_assert_int_eq(h.base_offset, 53);
    ck_assert_int_eq(h.partition_leader_epoch, 2);
    free(b1);
    free(b2);
    free(both);
    ck_assert_int_eq(read_all(log), 55);
    ck_assert_int_eq(gr_log_close(log, T0), GR_LOG_OK);
    /* and it all comes back */
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 55);
    ck_assert_int_eq(read_all(log), 55);
    ck_assert_int_eq(append(log, 1, 10, T0, 2, T0), 55);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_invalid_batch_refused)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    append(log, 2, 10, T0, 0, T0);
    size_t l1, l2;
    uint8_t *b1 = make_batch(0, 3, 10, T0, -1, &l1), *b2 = make_batch(0, 2, 10, T0, -1, &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    both[l1 + l2 - 1] ^= 0x40; /* second batch's CRC no longer matches */
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, both, l1 + l2, 0, 0, 0, T0, &res), GR_LOG_ERR_CORRUPT);
    ck_assert_int_eq(res.batch_result, GR_BATCH_BAD_CRC);
    ck_assert_int_eq(res.bad_batch, 1);
    ck_assert_int_eq(gr_log_end_offset(log), 2); /* nothing of it was written */
    /* a torn one */
    ck_assert_int_eq(gr_log_append(log, b1, l1 - 1, 0, 0, 0, T0, &res), GR_LOG_ERR_CORRUPT);
    ck_assert_int_eq(res.batch_result, GR_BATCH_TRUNCATED);
    /* an empty one */
    ck_assert_int_eq(gr_log_append(log, b1, 0, 0, 0, 0, T0, &res), GR_LOG_ERR_INVALID);
    free(b1);
    free(b2);
    free(both);
    ck_assert_int_eq(read_all(log), 2);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_log_append_time)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.log_append_time = true;
    gr_log *log = open_log(&c, T0);
    size_t len;
    uint8_t *b = make_batch(0, 3, 10, 1000, -1, &len);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, b, len, 0, 0, 0, T0 + 5, &res), GR_LOG_OK);
    ck_assert_int_eq(res.log_append_time, T0 + 5);
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 0, 1 << 20, INT64_MAX, &r), GR_LOG_OK);
    uint8_t *buf = malloc(r.length);
    ck_assert_int_eq(pread(r.fd, buf, r.length, r.position), (ssize_t)r.length);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(buf, r.length, false, 0, &h), GR_BATCH_OK); /* CRC recomputed */
    ck_assert(h.attributes & GR_BATCH_ATTR_LOG_APPEND_TIME);
    ck_assert_int_eq(h.max_timestamp, T0 + 5);
    free(buf);
    free(b);
    gr_log_read_release(&r);
    int64_t off, ts;
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, T0, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(ts, T0 + 5);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_read_bounds)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 10; i++)
        append(log, 10, 100, T0, 0, T0); /* batches of 10 records, offsets 10*i.. */
    gr_log_read_result r;
    int64_t first, next;
    /* a byte limit smaller than the first batch still returns it whole */
    ck_assert_int_eq(gr_log_read(log, 0, 1, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(check_range(&r, &first, &next), 1);
    ck_assert_int_eq(first, 0);
    ck_assert_int_eq(next, 10);
    size_t one = r.length;
    gr_log_read_release(&r);
    /* 2.5 batches of room: two whole batches */
    ck_assert_int_eq(gr_log_read(log, 0, one * 5 / 2, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(r.length, 2 * one);
    gr_log_read_release(&r);
    /* an offset in the middle of a batch returns that batch */
    ck_assert_int_eq(gr_log_read(log, 37, 1, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(r.first_offset, 30);
    ck_assert_int_eq(r.position, 3 * (int64_t)one);
    gr_log_read_release(&r);
    /* max_offset: no batch whose base offset >= 40 */
    ck_assert_int_eq(gr_log_read(log, 0, 1 << 20, 40, &r), GR_LOG_OK);
    ck_assert_int_eq(check_range(&r, &first, &next), 4);
    ck_assert_int_eq(next, 40);
    gr_log_read_release(&r);
    ck_assert_int_eq(gr_log_read(log, 40, 1 << 20, 40, &r), GR_LOG_OK);
    ck_assert_int_eq(r.length, 0);
    gr_log_read_release(&r);
    /* at the end: nothing; beyond or below: out of range */
    ck_assert_int_eq(gr_log_read(log, 100, 1 << 20, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(r.length, 0);
    ck_assert_int_eq(gr_log_read(log, 101, 1 << 20, INT64_MAX, &r), GR_LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(gr_log_read(log, -1, 1 << 20, INT64_MAX, &r), GR_LOG_ERR_OUT_OF_RANGE);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_read_every_offset_through_index)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 64 * 1024;
    c.index_interval_bytes = 300;
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 200; i++)
        append(log, 1 + i % 4, 50, T0, 0, T0);
    int64_t leo = gr_log_end_offset(log);
    for (int64_t o = 0; o < leo; o++) {
        gr_log_read_result r;
        ck_assert_int_eq(gr_log_read(log, o, 1, INT64_MAX, &r), GR_LOG_OK);
        int64_t first, next;
        ck_assert_int_eq(check_range(&r, &first, &next), 1);
        ck_assert_int_le(first, o);
        ck_assert_int_gt(next, o);
        gr_log_read_release(&r);
    }
    gr_log_close(log, T0);
    ck_assert_int_gt(check_indexes(), 10);
}
END_TEST

/* ---- rolls ---- */

START_TEST(test_roll_by_size)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 40; i++)
        append(log, 2, 200, T0, 0, T0); /* ~500 bytes per batch */
    size_t n = gr_log_segment_count(log);
    ck_assert_int_ge(n, 4);
    gr_log_segment_info info[64];
    ck_assert_int_eq(gr_log_segments(log, info, 64), n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_le(info[i].size, 4096);
        ck_assert(info[i].active == (i + 1 == n));
        if (i > 0)
            ck_assert_int_eq(info[i].base_offset, info[i - 1].next_offset);
        char p[256];
        seg_path(p, sizeof p, info[i].base_offset, ".log");
        ck_assert_int_eq(fsize(p), (off_t)info[i].size);
        if (i + 1 < n) { /* inactive indexes are trimmed to their entries */
            seg_path(p, sizeof p, info[i].base_offset, ".index");
            ck_assert_int_eq(fsize(p) % 8, 0);
            ck_assert_int_lt(fsize(p), 4096);
        }
    }
    /* a roll fsyncs and moves the recovery point to the new segment */
    ck_assert_int_eq(gr_log_recovery_point(log), info[n - 1].base_offset);
    ck_assert(gr_test_logged("rolled segment"));
    ck_assert_int_eq(read_all(log), 80);
    gr_log_close(log, T0);
    ck_assert_int_gt(check_indexes(), 0);
}
END_TEST

START_TEST(test_roll_by_time)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.segment_ms = 1000;
    gr_log *log = open_log(&c, T0);
    append(log, 1, 10, T0, 0, T0);
    append(log, 1, 10, T0 + 900, 0, T0);
    ck_assert_int_eq(gr_log_segment_count(log), 1);
    append(log, 1, 10, T0 + 1001, 0, T0); /* 1001 ms after the segment's first batch */
    ck_assert_int_eq(gr_log_segment_count(log), 2);
    ck_assert(gr_test_logged("segment.ms"));
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_roll_by_full_index)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.segment_index_bytes = 6 * 12; /* 6 time entries, 9 offset entries */
    c.index_interval_bytes = 0;     /* an entry for every batch but the first */
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 20; i++)
        append(log, 1, 10, T0 + i, 0, T0);
    ck_assert_int_ge(gr_log_segment_count(log), 3);
    ck_assert(gr_test_logged("segment.index.bytes"));
    ck_assert_int_eq(read_all(log), 20);
    gr_log_close(log, T0);
    ck_assert_int_gt(check_indexes(), 0);
}
END_TEST

START_TEST(test_roll_request_and_empty)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK); /* empty: nothing to do */
    ck_assert_int_eq(gr_log_segment_count(log), 1);
    append(log, 3, 10, T0, 0, T0);
    ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_segment_count(log), 2);
    char p[256];
    seg_path(p, sizeof p, 3, ".log");
    ck_assert(exists(p));
    seg_path(p, sizeof p, 3, ".index");
    ck_assert_int_eq(fsize(p), 10485760); /* the active index is preallocated */
    gr_log_close(log, T0);
    ck_assert_int_eq(fsize(p), 0); /* and trimmed on close */
}
END_TEST

/* ---- retention, delete records ---- */

/* Segments of 4 batches each; batch i has timestamp T0 + 1000 * i. */
static gr_log *retention_log(gr_log_config *c, int batches)
{
    gr_log *log = open_log(c, T0);
    for (int i = 0; i < batches; i++) {
        append(log, 2, 400, T0 + 1000LL * i, 0, T0);
        if (i % 4 == 3)
            ck_assert_int_eq(gr_log_roll(log, T0), GR_LOG_OK);
    }
    return log;
}

START_TEST(test_retention_by_time)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.retention_ms = 10000;
    gr_log *log = retention_log(&c, 16); /* 4 full segments + an empty active one */
    ck_assert_int_eq(gr_log_segment_count(log), 5);
    int deleted = -1;
    /* segment k's max timestamp is T0 + 1000 * (4k + 3) + 1 */
    int64_t now = T0 + 7001 + 10000;
    ck_assert_int_eq(gr_log_retention(log, now, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 1); /* segment 8 is not strictly older than 10 s yet */
    ck_assert_int_eq(gr_log_start_offset(log), 8);
    now++;
    ck_assert_int_eq(gr_log_retention(log, now, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(gr_log_start_offset(log), 16);
    ck_assert(gr_test_logged("retention.ms"));
    char p[256], q[256];
    seg_path(p, sizeof p, 8, ".log.deleted");
    ck_assert(exists(p)); /* renamed, still there during file.delete.delay.ms */
    seg_path(q, sizeof q, 8, ".log");
    ck_assert(!exists(q));
    /* the log start offset is checkpointed */
    snprintf(q, sizeof q, "%s/log-start-offset-checkpoint", pdir);
    int64_t v;
    ck_assert_int_eq(gr_checkpoint_read_offset(q, "t", 0, &v), GR_CHECKPOINT_OK);
    ck_assert_int_eq(v, 16);
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 15, 100, INT64_MAX, &r), GR_LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(gr_log_tick(log, now + 999), GR_LOG_OK);
    ck_assert(exists(p));
    ck_assert_int_eq(gr_log_tick(log, now + 1000), GR_LOG_OK);
    ck_assert(!exists(p));
    /* everything expired: all but the active segment go */
    ck_assert_int_eq(gr_log_retention(log, T0 + 1000000, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 2);
    ck_assert_int_eq(gr_log_segment_count(log), 1);
    ck_assert_int_eq(gr_log_start_offset(log), 32);
    ck_assert_int_eq(gr_log_end_offset(log), 32);
    gr_log_close(log, T0 + 1000000);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_start_offset(log), 32);
    ck_assert_int_eq(append(log, 1, 10, T0, 0, T0), 32);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_retention_never_active)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.retention_ms = 0;
    c.retention_bytes = 0;
    gr_log *log = open_log(&c, T0);
    append(log, 5, 100, T0, 0, T0);
    int deleted = -1;
    ck_assert_int_eq(gr_log_retention(log, T0 + 1000000, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 0);
    ck_assert_int_eq(read_all(log), 5);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_retention_by_size_and_hw)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.retention_ms = -1;
    gr_log *log = retention_log(&c, 16);
    gr_log_segment_info info[8];
    ck_assert_int_eq(gr_log_segments(log, info, 8), 5);
    c.retention_bytes = (int64_t)(info[0].size * 2 + 10);
    gr_log_set_config(log, &c); /* applies to the live log */
    int deleted;
    /* the high watermark protects segments not wholly below it */
    ck_assert_int_eq(gr_log_retention(log, T0, 8, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(gr_log_start_offset(log), 8);
    /* Kafka's rule: a segment goes only if the log stays >= retention.bytes
     * without it (3 segments of s bytes, 2s + 10 allowed: none goes) */
    ck_assert_int_eq(gr_log_retention(log, T0, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 0);
    c.retention_bytes = (int64_t)(info[0].size * 2);
    gr_log_set_config(log, &c);
    ck_assert_int_eq(gr_log_retention(log, T0, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(gr_log_start_offset(log), 16);
    ck_assert_int_eq(gr_log_size_bytes(log), (uint64_t)c.retention_bytes);
    ck_assert(gr_test_logged("retention.bytes"));
    ck_assert_int_eq(read_all(log), 16);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_delete_records)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    gr_log *log = retention_log(&c, 16);
    ck_assert_int_eq(gr_log_delete_records(log, 33, T0), GR_LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(gr_log_delete_records(log, 21, T0), GR_LOG_OK); /* inside segment 16 */
    ck_assert_int_eq(gr_log_start_offset(log), 21);
    ck_assert_int_eq(gr_log_segment_count(log), 3); /* 0 and 8 gone, 16 stays */
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 20, 100, INT64_MAX, &r), GR_LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(gr_log_read(log, 21, 1, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(r.first_offset, 20); /* the batch holding 21 */
    gr_log_read_release(&r);
    int64_t off, ts;
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, GR_LOG_TS_EARLIEST, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 21);
    /* a lower offset changes nothing */
    ck_assert_int_eq(gr_log_delete_records(log, 5, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_start_offset(log), 21);
    gr_log_abandon(log); /* even after a crash, the start offset holds */
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_start_offset(log), 21);
    ck_assert_int_eq(gr_log_end_offset(log), 32);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_read_survives_deletion)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.retention_ms = 1;
    c.file_delete_delay_ms = 0; /* unlinked at once */
    gr_log *log = retention_log(&c, 8);
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 0, 1 << 20, INT64_MAX, &r), GR_LOG_OK);
    int deleted;
    ck_assert_int_eq(gr_log_retention(log, T0 + 1000000, INT64_MAX, &deleted), GR_LOG_OK);
    ck_assert_int_eq(deleted, 2);
    char p[256];
    seg_path(p, sizeof p, 0, ".log.deleted");
    ck_assert(!exists(p));
    int64_t first, next;
    ck_assert_int_eq(check_range(&r, &first, &next), 4); /* still readable */
    ck_assert_int_eq(next, 8);
    gr_log_read_release(&r);
    gr_log_close(log, T0);
}
END_TEST

/* ---- truncation and leader epochs ---- */

START_TEST(test_truncate_middle_of_segment)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.index_interval_bytes = 0;
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 10; i++)
        append(log, 2, 100, T0, i < 5 ? 1 : 2, T0);
    ck_assert_int_eq(gr_log_latest_epoch(log), 2);
    ck_assert_int_eq(gr_log_truncate_to(log, 12, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_end_offset(log), 12);
    ck_assert_int_eq(gr_log_latest_epoch(log), 2);
    /* inside a batch: the whole batch goes */
    ck_assert_int_eq(gr_log_truncate_to(log, 9, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_end_offset(log), 8);
    ck_assert_int_eq(gr_log_latest_epoch(log), 1); /* epoch 2 started at 10 */
    ck_assert_int_eq(read_all(log), 8);
    ck_assert_int_eq(append(log, 1, 100, T0, 3, T0), 8);
    gr_log_epoch_entry e[4];
    ck_assert_int_eq(gr_log_epochs(log, e, 4), 2);
    ck_assert_int_eq(e[1].epoch, 3);
    ck_assert_int_eq(e[1].start_offset, 8);
    gr_log_close(log, T0);
    ck_assert_int_eq(check_indexes(), 4); /* entries 1..4, none past the cut */
}
END_TEST

START_TEST(test_truncate_segment_boundary)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    gr_log *log = retention_log(&c, 12); /* segments 0, 8, 16, active 24 */
    ck_assert_int_eq(gr_log_segment_count(log), 4);
    ck_assert_int_eq(gr_log_truncate_to(log, 16, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_end_offset(log), 16);
    ck_assert_int_eq(gr_log_segment_count(log), 2); /* 16 went; 8 is active again */
    char p[256];
    seg_path(p, sizeof p, 8, ".index");
    ck_assert_int_eq(fsize(p), 10485760);
    ck_assert_int_le(gr_log_recovery_point(log), 16);
    ck_assert_int_eq(append(log, 1, 10, T0, 0, T0), 16);
    ck_assert_int_eq(read_all(log), 17);
    gr_log_abandon(log);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 17);
    ck_assert_int_eq(read_all(log), 17);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_truncate_to_zero)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 20; i++)
        append(log, 2, 300, T0, 4, T0);
    ck_assert_int_gt(gr_log_segment_count(log), 1);
    ck_assert_int_eq(gr_log_truncate_to(log, 0, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_end_offset(log), 0);
    ck_assert_int_eq(gr_log_segment_count(log), 1);
    ck_assert_int_eq(gr_log_latest_epoch(log), -1);
    ck_assert_int_eq(gr_log_recovery_point(log), 0);
    ck_assert_int_eq(append(log, 1, 10, T0, 5, T0), 0);
    gr_log_close(log, T0);
    log = open_log(&c, T0);
    ck_assert_int_eq(read_all(log), 1);
    ck_assert_int_eq(gr_log_latest_epoch(log), 5);
    gr_log_close(log, T0);
}
END_TEST

/* A replica installing a snapshot restarts its log, empty, past its end. */
START_TEST(test_reset_beyond_end)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 5; i++)
        append(log, 2, 300, T0, 4, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 10);
    ck_assert_int_eq(gr_log_reset(log, 100, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_start_offset(log), 100);
    ck_assert_int_eq(gr_log_end_offset(log), 100);
    ck_assert_int_eq(gr_log_segment_count(log), 1);
    ck_assert_int_eq(gr_log_latest_epoch(log), -1);
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 5, 1000, INT64_MAX, &r), GR_LOG_ERR_OUT_OF_RANGE);
    size_t len;
    uint8_t *b = make_batch(100, 3, 20, T0, 9, &len);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append_replica(log, b, len, T0, &res), GR_LOG_OK);
    free(b);
    gr_log_close(log, T0);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_start_offset(log), 100);
    ck_assert_int_eq(gr_log_end_offset(log), 103);
    ck_assert_int_eq(read_all(log), 3);
    ck_assert_int_eq(gr_log_latest_epoch(log), 9);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_epoch_cache)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 3; i++)
        append(log, 10, 10, T0, 1, T0);  /* 0-29 */
    append(log, 10, 10, T0, 3, T0);      /* 30-39 */
    append(log, 10, 10, T0, 5, T0);      /* 40-49 */
    append(log, 10, 10, T0, 4, T0);      /* an older epoch: ignored */
    int32_t ep;
    int64_t end;
    gr_log_epoch_end_offset(log, 1, &ep, &end);
    ck_assert_int_eq(ep, 1);
    ck_assert_int_eq(end, 30);
    gr_log_epoch_end_offset(log, 2, &ep, &end); /* unknown, between: the floor epoch */
    ck_assert_int_eq(ep, 1);
    ck_assert_int_eq(end, 30);
    gr_log_epoch_end_offset(log, 3, &ep, &end);
    ck_assert_int_eq(ep, 3);
    ck_assert_int_eq(end, 40);
    gr_log_epoch_end_offset(log, 5, &ep, &end); /* the latest: the log end */
    ck_assert_int_eq(ep, 5);
    ck_assert_int_eq(end, 60);
    gr_log_epoch_end_offset(log, 0, &ep, &end); /* older than all */
    ck_assert_int_eq(ep, 0);
    ck_assert_int_eq(end, 0);
    gr_log_epoch_end_offset(log, 9, &ep, &end); /* newer than all */
    ck_assert_int_eq(ep, -1);
    ck_assert_int_eq(end, -1);
    char p[256];
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", pdir);
    FILE *f = fopen(p, "r");
    char text[128] = {0};
    ck_assert_int_gt(fread(text, 1, sizeof text - 1, f), 0);
    fclose(f);
    ck_assert_str_eq(text, "0\n3\n1 0\n3 30\n5 40\n");
    size_t n = 0;
    gr_log_epoch_entry *copy = gr_log_epochs_copy(log, 1, &n); /* with room for one more */
    ck_assert_ptr_nonnull(copy);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(copy[2].epoch, 5);
    ck_assert_int_eq(copy[2].start_offset, 40);
    copy[3] = (gr_log_epoch_entry){7, 60}; /* the extra slot is usable */
    gr_log_epochs_end_offset(copy, 4, 5, 60, &ep, &end);
    ck_assert_int_eq(ep, 5);
    ck_assert_int_eq(end, 60);
    free(copy);
    /* truncation removes the epochs starting at or after the new end */
    ck_assert_int_eq(gr_log_truncate_to(log, 40, T0), GR_LOG_OK);
    gr_log_epoch_entry e[8];
    ck_assert_int_eq(gr_log_epochs(log, e, 8), 2);
    ck_assert_int_eq(e[1].epoch, 3);
    gr_log_epoch_end_offset(log, 3, &ep, &end);
    ck_assert_int_eq(end, 40);
    gr_log_close(log, T0);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_epochs(log, e, 8), 2);
    ck_assert_int_eq(e[0].epoch, 1);
    ck_assert_int_eq(e[1].start_offset, 30);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_replica_append)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    size_t l1, l2, l3;
    uint8_t *b1 = make_batch(0, 5, 20, T0, 7, &l1);
    uint8_t *b2 = make_batch(10, 5, 20, T0, 8, &l2); /* a gap, as compaction leaves */
    uint8_t *b3 = make_batch(12, 5, 20, T0, 8, &l3);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append_replica(log, b1, l1, T0, &res), GR_LOG_OK);
    ck_assert_int_eq(gr_log_append_replica(log, b2, l2, T0, &res), GR_LOG_OK);
    ck_assert_int_eq(res.first_offset, 10);
    ck_assert_int_eq(gr_log_end_offset(log), 15);
    ck_assert_int_eq(gr_log_append_replica(log, b3, l3, T0, &res), GR_LOG_ERR_BAD_OFFSET);
    ck_assert_int_eq(gr_log_end_offset(log), 15);
    gr_log_epoch_entry e[4];
    ck_assert_int_eq(gr_log_epochs(log, e, 4), 2);
    ck_assert_int_eq(e[0].epoch, 7);
    ck_assert_int_eq(e[1].epoch, 8);
    ck_assert_int_eq(e[1].start_offset, 10);
    /* reads across the gap */
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 6, 1, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_int_eq(r.first_offset, 10);
    gr_log_read_release(&r);
    ck_assert_int_eq(read_all(log), 10); /* offsets 0-4 and 10-14: 5-9 are a gap */
    free(b1);
    free(b2);
    free(b3);
    gr_log_close(log, T0);
}
END_TEST

/* ---- timestamps ---- */

START_TEST(test_timestamp_lookup)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    /* batch i: 4 records with timestamps T0 + 10 i .. +3; two out-of-order */
    for (int i = 0; i < 40; i++)
        append(log, 4, 100, T0 + 10 * i, 0, T0);
    append(log, 2, 100, T0 + 5, 0, T0); /* offsets 160, 161: old timestamps */
    ck_assert_int_gt(gr_log_segment_count(log), 2);
    int64_t off, ts;
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, T0 + 123, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 12 * 4 + 3);
    ck_assert_int_eq(ts, T0 + 123);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, T0 + 125, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 13 * 4); /* the first record at or after */
    ck_assert_int_eq(ts, T0 + 130);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, 0, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, T0 + 394, &off, &ts), 1); /* beyond all */
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, GR_LOG_TS_LATEST, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 162);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, GR_LOG_TS_EARLIEST, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, GR_LOG_TS_MAX_TIMESTAMP, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 159);
    ck_assert_int_eq(ts, T0 + 393);
    /* the same answers after a clean reopen (max timestamps come from the time index) */
    gr_log_close(log, T0);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, T0 + 125, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 52);
    ck_assert_int_eq(gr_log_offset_for_timestamp(log, GR_LOG_TS_MAX_TIMESTAMP, &off, &ts), GR_LOG_OK);
    ck_assert_int_eq(off, 159);
    gr_log_close(log, T0);
}
END_TEST

/* ---- flush and recovery ---- */

START_TEST(test_flush_policy)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.flush_interval_messages = 10;
    gr_log *log = open_log(&c, T0);
    append(log, 6, 10, T0, 0, T0);
    ck_assert_int_eq(gr_log_recovery_point(log), 0);
    append(log, 6, 10, T0, 0, T0);
    ck_assert_int_eq(gr_log_recovery_point(log), 12);
    char p[256];
    snprintf(p, sizeof p, "%s/recovery-point-offset-checkpoint", pdir);
    int64_t v;
    ck_assert_int_eq(gr_checkpoint_read_offset(p, "t", 0, &v), GR_CHECKPOINT_OK);
    ck_assert_int_eq(v, 12);
    c.flush_interval_messages = INT64_MAX;
    c.flush_interval_ms = 500;
    gr_log_set_config(log, &c);
    append(log, 1, 10, T0 + 100, 0, T0 + 100);
    ck_assert_int_eq(gr_log_tick(log, T0 + 400), GR_LOG_OK);
    ck_assert_int_eq(gr_log_recovery_point(log), 12);
    ck_assert_int_eq(gr_log_tick(log, T0 + 500), GR_LOG_OK);
    ck_assert_int_eq(gr_log_recovery_point(log), 13);
    gr_log_close(log, T0);
}
END_TEST

/* Flips one byte in the middle of the batch at `pos` of a segment file. */
static void corrupt_at(int64_t base, const char *ext, off_t pos)
{
    char p[256];
    seg_path(p, sizeof p, base, ext);
    int fd = open(p, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, pos), 1);
    b ^= 0xff;
    ck_assert_int_eq(pwrite(fd, &b, 1, pos), 1);
    close(fd);
}

START_TEST(test_clean_shutdown_skips_scan)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 10; i++)
        append(log, 2, 100, T0, 0, T0);
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 10, 1, INT64_MAX, &r), GR_LOG_OK);
    off_t bad = r.position + (off_t)r.length - 10; /* inside batch 5's records */
    gr_log_read_release(&r);
    gr_log_close(log, T0);
    char marker[256];
    snprintf(marker, sizeof marker, "%s/.clean-shutdown", pdir);
    ck_assert(exists(marker));
    corrupt_at(0, ".log", bad);
    /* clean: no scan, so the damage goes unnoticed (the log trusts the marker) */
    log = open_log(&c, T0);
    ck_assert(!exists(marker)); /* from now on a crash is unclean */
    ck_assert_int_eq(gr_log_end_offset(log), 20);
    ck_assert(!gr_test_logged("cutting"));
    gr_log_abandon(log);
    /* unclean, recovery point 0: every batch is checked and the log cut at batch 5 */
    char rp[256];
    snprintf(rp, sizeof rp, "%s/recovery-point-offset-checkpoint", pdir);
    ck_assert_int_eq(gr_checkpoint_write_offset(rp, "t", 0, 0), 0);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 10);
    ck_assert(gr_test_logged("cutting"));
    ck_assert_int_eq(read_all(log), 10);
    gr_log_close(log, T0);
}
END_TEST

START_TEST(test_torn_tail_cut)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 30; i++)
        append(log, 2, 200, T0, 0, T0);
    ck_assert_int_eq(gr_log_flush(log, T0), GR_LOG_OK);
    for (int i = 0; i < 3; i++)
        append(log, 2, 200, T0, 0, T0);
    gr_log_segment_info info[32];
    size_t n = gr_log_segments(log, info, 32);
    int64_t active = info[n - 1].base_offset;
    gr_log_abandon(log); /* crash */
    /* a torn write: half a batch at the tail */
    size_t len;
    uint8_t *b = make_batch(66, 2, 200, T0, 0, &len);
    char p[256];
    seg_path(p, sizeof p, active, ".log");
    int fd = open(p, O_WRONLY | O_APPEND);
    ck_assert_int_eq(write(fd, b, len / 2), (ssize_t)(len / 2));
    close(fd);
    free(b);
    log = open_log(&c, T0);
    ck_assert_int_eq(gr_log_end_offset(log), 66);
    ck_assert(gr_test_logged("torn batch"));
    ck_assert_int_eq(read_all(log), 66);
    ck_assert_int_eq(append(log, 1, 10, T0, 0, T0), 66);
    gr_log_close(log, T0);
    ck_assert_int_gt(check_indexes(), 0);
}
END_TEST

START_TEST(test_corrupt_index_rebuilt)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.index_interval_bytes = 0;
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 20; i++)
        append(log, 1, 100, T0, 0, T0);
    gr_log_roll(log, T0);
    for (int i = 0; i < 5; i++)
        append(log, 1, 100, T0, 0, T0);
    gr_log_close(log, T0);
    char p[256];
    seg_path(p, sizeof p, 0, ".index");
    ck_assert_int_eq(fsize(p), 19 * 8);
    /* a plausible but wrong entry in the middle: positions still increase */
    corrupt_at(0, ".index", 8 * 9 + 7);
    /* after a clean shutdown the cheap check misses it; the first lookup
     * that uses it notices and rebuilds */
    log = open_log(&c, T0);
    for (int64_t o = 0; o < 25; o++) {
        gr_log_read_result r;
        ck_assert_int_eq(gr_log_read(log, o, 1, INT64_MAX, &r), GR_LOG_OK);
        ck_assert_int_eq(r.first_offset, o);
        check_range(&r, NULL, NULL);
        gr_log_read_release(&r);
    }
    ck_assert(gr_test_logged("does not match the log"));
    gr_log_close(log, T0);
    ck_assert_int_eq(check_indexes(), 19 + 4);
    /* after a crash every index entry is checked on open; a missing index is rebuilt */
    corrupt_at(0, ".index", 8 * 5 + 2);
    seg_path(p, sizeof p, 20, ".index");
    unlink(p);
    seg_path(p, sizeof p, 20, ".timeindex");
    unlink(p);
    snprintf(p, sizeof p, "%s/.clean-shutdown", pdir);
    unlink(p);
    log = open_log(&c, T0);
    ck_assert(gr_test_logged("entries not increasing") || gr_test_logged("outside"));
    gr_log_close(log, T0);
    ck_assert_int_eq(check_indexes(), 19 + 4);
}
END_TEST

START_TEST(test_leftovers_and_torn_checkpoints)
{
    gr_log_config c = small_cfg();
    gr_log *log = open_log(&c, T0);
    for (int i = 0; i < 20; i++)
        append(log, 2, 200, T0, 1, T0);
    gr_log_close(log, T0);
    char p[256];
    /* an interrupted checkpoint write, a stale deleted segment */
    snprintf(p, sizeof p, "%s/recovery-point-offset-checkpoint.tmp", pdir);
    FILE *f = fopen(p, "w");
    fputs("0\n1\nt 0 99", f);
    fclose(f);
    char d[256];
    seg_path(d, sizeof d, 12345, ".log.deleted");
    f = fopen(d, "w");
    fclose(f);
    log = open_log(&c, T0);
    ck_assert(!exists(p));
    ck_assert(!exists(d));
    ck_assert_int_eq(gr_log_end_offset(log), 40);
    gr_log_close(log, T0);
    /* a torn recovery point: treated as unclean, everything checked */
    snprintf(p, sizeof p, "%s/recovery-point-offset-checkpoint", pdir);
    f = fopen(p, "w");
    fputs("0\n1\nt 0 4", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", pdir);
    f = fopen(p, "w");
    fputs("0\n2\n1 0\n", f);
    fclose(f);
    log = open_log(&c, T0);
    ck_assert(gr_test_logged("recovery-point-offset-checkpoint is corrupt"));
    ck_assert(gr_test_logged("leader-epoch-checkpoint is corrupt"));
    ck_assert(gr_test_logged("unclean shutdown"));
    ck_assert_int_eq(read_all(log), 40);
    ck_assert_int_eq(gr_log_latest_epoch(log), -1);
    gr_log_close(log, T0);
}
END_TEST

/* ---- the cleaner's replace primitive ---- */

/* Copies every other batch of the segments [first, last] into one cleaned
 * segment, as a compaction would. Returns the records kept. */
static gr_segment *clean_copy(gr_log *log, int64_t first, int64_t last_base, int64_t *kept)
{
    gr_segment *seg = gr_log_cleaned_create(log, first, T0);
    ck_assert_ptr_nonnull(seg);
    gr_log_segment_info info[32];
    size_t n = gr_log_segments(log, info, 32);
    *kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (info[i].base_offset < first || info[i].base_offset > last_base)
            continue;
        gr_log_read_result r;
        ck_assert_int_eq(gr_log_read_segment(log, info[i].base_offset, &r), GR_LOG_OK);
        uint8_t *buf = malloc(r.length + 1);
        ck_assert_int_eq(pread(r.fd, buf, r.length, r.position), (ssize_t)r.length);
        int k = 0;
        for (size_t at = 0; at < r.length; k++) {
            gr_batch_header h;
            ck_assert_int_eq(gr_batch_parse_header(buf + at, r.length - at, &h), GR_BATCH_OK);
            if (k % 2 == 0) {
                ck_assert_int_eq(gr_log_cleaned_append(log, seg, buf + at, gr_batch_size(&h)), GR_LOG_OK);
                *kept += h.last_offset_delta + 1;
            }
            at += gr_batch_size(&h);
        }
        free(buf);
        gr_log_read_release(&r);
    }
    return seg;
}

/* No transit files remain in the partition directory. */
static void assert_no_transit_files(void)
{
    DIR *d = opendir(pdir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        ck_assert_msg(!strstr(de->d_name, ".swap") && !strstr(de->d_name, ".cleaned") &&
                          !strstr(de->d_name, "manifest"),
                      "left over: %s", de->d_name);
    }
    closedir(d);
}

START_TEST(test_replace_segments)
{
    gr_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    gr_log *log = retention_log(&c, 16); /* 0, 8, 16, 24, active 32 */
    int64_t kept;
    gr_segment *seg = clean_copy(log, 8, 16, &kept);
    ck_assert_int_eq(kept, 8);
    /* a run that includes the active segment is refused */
    gr_segment *bad = gr_log_cleaned_create(log, 24, T0);
    ck_assert_int_eq(gr_log_replace_segments(log, 24, 32, &bad, 1, T0), GR_LOG_ERR_INVALID);
    ck_assert_int_eq(gr_log_replace_segments(log, 8, 16, &seg, 1, T0), GR_LOG_OK);
    ck_assert_int_eq(gr_log_segment_count(log), 4);
    ck_assert_int_eq(read_all(log), 32 - 8);
    assert_no_transit_files();
    gr_log_close(log, T0);
    log = open_log(&c, T0);
    ck_assert_int_eq(read_all(log), 32 - 8);
    gr_log_close(log, T0);
    ck_assert_int_gt(check_indexes(), 0);
}
END_TEST

/* The replacement of segments 8 and 16 by one cleaned segment, stopped after
 * each step as if the process had died there. */
START_TEST(test_replace_crash_at_each_step)
{
    for (int steps = 0; steps <= 5; steps++) {
        gr_log_config c = small_cfg();
        c.segment_bytes = 1 << 20;
        gr_test_rmtree(root);
        ck_assert_int_eq(mkdir(root, 0700), 0);
        gr_log *log = retention_log(&c, 16);
        int64_t kept;
        gr_segment *seg = clean_copy(log, 8, 16, &kept);
        if (steps == 0) {
            gr_log_abandon(log); /* died while the cleaner was writing */
            gr_segment_unref(seg);
        } else {
            ck_assert_int_eq(gr_log_replace_segments_steps(log, 8, 16, &seg, 1, T0, steps), GR_LOG_OK);
            gr_log_abandon(log);
        }
        log = open_log(&c, T0);
        int64_t records = read_all(log);
        /* before the manifest: the old segments; from it on: the new ones */
        ck_assert_msg(records == (steps >= 2 ? 32 - 8 : 32), "steps %d: %" PRId64 " records", steps,
                      records);
        ck_assert_int_eq(gr_log_end_offset(log), 32);
        ck_assert_int_eq(gr_log_segment_count(log), steps >= 2 ? 4 : 5);
        assert_no_transit_files();
        ck_assert_int_eq(append(log, 1, 10, T0, 0, T0), 32);
        gr_log_close(log, T0);
        ck_assert_int_gt(check_indexes(), 0);
    }
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("append_read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_append_assigns_offsets);
    tcase_add_test(tc, test_invalid_batch_refused);
    tcase_add_test(tc, test_log_append_time);
    tcase_add_test(tc, test_read_bounds);
    tcase_add_test(tc, test_read_every_offset_through_index);
    tcase_add_test(tc, test_replica_append);
    tcase_add_test(tc, test_reset_beyond_end);
    tcase_add_test(tc, test_timestamp_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("roll_retention");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roll_by_size);
    tcase_add_test(tc, test_roll_by_time);
    tcase_add_test(tc, test_roll_by_full_index);
    tcase_add_test(tc, test_roll_request_and_empty);
    tcase_add_test(tc, test_retention_by_time);
    tcase_add_test(tc, test_retention_never_active);
    tcase_add_test(tc, test_retention_by_size_and_hw);
    tcase_add_test(tc, test_delete_records);
    tcase_add_test(tc, test_read_survives_deletion);
    suite_add_tcase(s, tc);

    tc = tcase_create("truncate_epochs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_truncate_middle_of_segment);
    tcase_add_test(tc, test_truncate_segment_boundary);
    tcase_add_test(tc, test_truncate_to_zero);
    tcase_add_test(tc, test_epoch_cache);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_flush_policy);
    tcase_add_test(tc, test_clean_shutdown_skips_scan);
    tcase_add_test(tc, test_torn_tail_cut);
    tcase_add_test(tc, test_corrupt_index_rebuilt);
    tcase_add_test(tc, test_leftovers_and_torn_checkpoints);
    tcase_add_test(tc, test_replace_segments);
    tcase_add_test(tc, test_replace_crash_at_each_step);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
