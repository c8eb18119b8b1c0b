/*
 * test_logtask.c - common/logtask: the background thread that runs
 * retention and the logs' ticks. Real logs in a temporary directory, with
 * record timestamps set in the past relative to the wall clock, so that the
 * thread (which reads the real clock) finds them expired. Nothing here calls
 * gr_log_retention or gr_log_tick directly: every effect checked is the
 * thread's. Waits poll with a 5 s limit; intervals the test does not want
 * to fire are ten minutes long, and passes are asked for with run_now.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/checkpoint.h"
#include "common/log.h"
#include "common/logging.h"
#include "common/logtask.h"
#include "common/segment.h"
#include "tests/unit/suites.h"
#include "tests/unit/testenv.h"

#define LONG_MS 600000   /* an interval that never fires during a test */
#define WAIT_LIMIT_MS 5000
#define HOUR_MS 3600000LL

static char root[64];
static gr_logging_level saved_level;

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void setup(void)
{
    gr_test_mkdtemp(root, sizeof root, "logtask");
    /* the deletions are logged at INFO; keep the test output readable */
    saved_level = gr_logging_get_level();
    gr_logging_set_level(GR_LOGGING_WARN);
}

static void teardown(void)
{
    gr_test_rmtree(root);
    gr_logging_set_level(saved_level);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- logs ---- */

static gr_log_config test_cfg(void)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.segment_bytes = 1 << 20; /* rolls are explicit */
    c.index_interval_bytes = 256;
    return c;
}

static gr_log *open_log(int32_t partition, const gr_log_config *cfg)
{
    gr_log *log;
    ck_assert_int_eq(gr_log_open(&log, root, "t", partition, cfg, real_ms()), GR_LOG_OK);
    return log;
}

/* Appends one batch of n records of vsize bytes, all stamped ts. */
static void append(gr_log *log, int n, size_t vsize, int64_t ts)
{
    gr_record_spec rs[8];
    uint8_t val[512];
    ck_assert_int_le(n, 8);
    ck_assert_uint_le(vsize, sizeof val);
    memset(val, 'v', vsize);
    for (int i = 0; i < n; i++) {
        rs[i] = (gr_record_spec){.timestamp = ts, .offset_delta = i, .key = GR_BYTES_NULL,
                                 .value = (gr_bytes){val, (int32_t)vsize}};
    }
    gr_batch_spec spec = {.base_offset = 0, .partition_leader_epoch = -1, .codec = GR_CODEC_NONE,
                          .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    gr_writer w;
    gr_writer_init(&w, 128);
    ck_assert_int_eq(gr_batch_build(&w, &spec, rs, n), GR_OK);
    size_t len;
    uint8_t *b = gr_writer_take(&w, &len);
    ck_assert_ptr_nonnull(b);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, b, len, 0, 0, 0, real_ms(), &res), GR_LOG_OK);
    free(b);
}

/* One full segment of 8 offsets (4 batches of 2 records) stamped ts, then a
 * roll: segment k holds offsets [8k, 8k + 8). */
static void add_segment(gr_log *log, int64_t ts)
{
    for (int i = 0; i < 4; i++)
        append(log, 2, 400, ts);
    ck_assert_int_eq(gr_log_roll(log, real_ms()), GR_LOG_OK);
}

/* ---- waiting ---- */

typedef bool (*pred_fn)(void *arg);

static bool wait_for(pred_fn pred, void *arg)
{
    int64_t limit = mono_ms() + WAIT_LIMIT_MS;
    while (!pred(arg)) {
        if (mono_ms() > limit)
            return false;
        sleep_ms(5);
    }
    return true;
}

typedef struct {
    gr_log *log;
    int64_t offset;
} start_is;

static bool pred_start(void *arg)
{
    start_is *s = arg;
    return gr_log_start_offset(s->log) == s->offset;
}

typedef struct {
    gr_logtask *t;
    uint64_t passes;
} passes_reach;

static bool pred_passes(void *arg)
{
    passes_reach *p = arg;
    gr_logtask_stats st;
    gr_logtask_get_stats(p->t, &st);
    return st.passes >= p->passes;
}

/* Asks for a pass and waits until it has completed. With both intervals
 * long, only run_now starts retention passes, so the pass counted is one
 * that began after the request. */
static void pass_now(gr_logtask *t)
{
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    passes_reach p = {t, st.passes + 1};
    gr_logtask_run_now(t);
    ck_assert_msg(wait_for(pred_passes, &p), "no retention pass within %d ms", WAIT_LIMIT_MS);
}

static bool pred_missing(void *arg) { return !exists(arg); }

static bool pred_recovered(void *arg)
{
    gr_log *log = arg;
    return gr_log_recovery_point(log) == gr_log_end_offset(log);
}

/* ---- high watermark callbacks ---- */

typedef struct {
    _Atomic int64_t hw;
    atomic_int calls;
} hw_ctx;

/* Check's messages print the expression: keep the atomics out of them. */
static int load(atomic_int *a) { return atomic_load(a); }

static int64_t hw_of(void *arg)
{
    hw_ctx *h = arg;
    atomic_fetch_add(&h->calls, 1);
    return atomic_load(&h->hw);
}

/* A tick callback: counts its calls and keeps the last now_ms. */
typedef struct {
    atomic_int calls;
    _Atomic int64_t last_now;
} tick_ctx;

static void count_tick(void *arg, int64_t now_ms)
{
    tick_ctx *k = arg;
    atomic_store(&k->last_now, now_ms);
    atomic_fetch_add(&k->calls, 1);
}

static bool pred_ticked(void *arg) { return atomic_load(&((tick_ctx *)arg)->calls) >= 3; }

static bool pred_tick_passes(void *arg)
{
    passes_reach *p = arg;
    gr_logtask_stats st;
    gr_logtask_get_stats(p->t, &st);
    return st.ticks >= p->passes;
}

/* ---- tests ---- */

START_TEST(test_retention_ms_by_the_interval)
{
    gr_log_config c = test_cfg();
    c.retention_ms = HOUR_MS;
    gr_log *log = open_log(0, &c);
    int64_t now = real_ms();
    for (int k = 0; k < 3; k++)
        add_segment(log, now - 2 * HOUR_MS); /* expired */
    add_segment(log, now);                   /* fresh */
    ck_assert_int_eq(gr_log_segment_count(log), 5);

    /* the interval itself (not run_now) drives the pass */
    gr_logtask *t = gr_logtask_start(50, 20);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    start_is s = {log, 24};
    ck_assert_msg(wait_for(pred_start, &s), "log start offset %lld, expected 24",
                  (long long)gr_log_start_offset(log));
    /* later passes leave the fresh segment and the active one alone */
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    passes_reach p = {t, st.passes + 2};
    ck_assert(wait_for(pred_passes, &p));
    ck_assert_int_eq(gr_log_start_offset(log), 24);
    ck_assert_int_eq(gr_log_segment_count(log), 2);
    ck_assert_int_eq(gr_log_end_offset(log), 32);
    gr_logtask_get_stats(t, &st);
    ck_assert_uint_eq(st.segments_deleted, 3);
    ck_assert_uint_eq(st.errors, 0);

    /* the new log start offset is checkpointed */
    char path[256];
    snprintf(path, sizeof path, "%s/t-0/log-start-offset-checkpoint", root);
    int64_t v = -1;
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "t", 0, &v), GR_CHECKPOINT_OK);
    ck_assert_int_eq(v, 24);

    gr_logtask_remove(t, log);
    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_high_watermark_holds_retention)
{
    gr_log_config c = test_cfg();
    c.retention_ms = 0; /* everything inactive has expired */
    gr_log *log = open_log(0, &c);
    for (int k = 0; k < 4; k++)
        add_segment(log, real_ms() - HOUR_MS);
    ck_assert_int_eq(gr_log_segment_count(log), 5); /* [0,8) [8,16) [16,24) [24,32) [32,) */

    hw_ctx h;
    atomic_init(&h.hw, 8);
    atomic_init(&h.calls, 0);
    gr_logtask *t = gr_logtask_start(LONG_MS, LONG_MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, hw_of, NULL, &h), 0);

    pass_now(t);
    ck_assert_int_ge(load(&h.calls), 1);
    ck_assert_int_eq(gr_log_start_offset(log), 8); /* only [0,8) lies wholly below 8 */
    ck_assert_int_eq(gr_log_segment_count(log), 4);

    /* 20 is inside [16,24): that segment stays */
    atomic_store(&h.hw, 20);
    pass_now(t);
    ck_assert_int_eq(gr_log_start_offset(log), 16);

    /* the same again changes nothing */
    pass_now(t);
    ck_assert_int_eq(gr_log_start_offset(log), 16);
    ck_assert_int_eq(gr_log_segment_count(log), 3);

    /* re-adding replaces the callback; none means the log end offset */
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    int calls = load(&h.calls);
    pass_now(t);
    ck_assert_int_eq(load(&h.calls), calls);
    ck_assert_int_eq(gr_log_start_offset(log), 32);
    ck_assert_int_eq(gr_log_segment_count(log), 1); /* never the active segment */

    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    ck_assert_uint_eq(st.segments_deleted, 4);
    ck_assert_uint_eq(st.passes, 4);
    gr_logtask_stop(t); /* the log stays open and usable */
    append(log, 1, 10, real_ms());
    ck_assert_int_eq(gr_log_end_offset(log), 33);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_retention_bytes)
{
    gr_log_config c = test_cfg();
    c.retention_ms = -1;
    gr_log *log = open_log(0, &c);
    int64_t now = real_ms();
    for (int k = 0; k < 4; k++)
        add_segment(log, now); /* fresh: only the size can delete them */
    gr_log_segment_info info[8];
    ck_assert_uint_eq(gr_log_segments(log, info, 8), 5);
    ck_assert_uint_eq(info[0].size, info[3].size);

    gr_logtask *t = gr_logtask_start(LONG_MS, LONG_MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    pass_now(t);
    ck_assert_int_eq(gr_log_start_offset(log), 0); /* retention.bytes -1: no limit */

    /* a config change on the live log, then an immediate pass */
    c.retention_bytes = (int64_t)(2 * info[0].size);
    gr_log_set_config(log, &c);
    pass_now(t);
    ck_assert_int_eq(gr_log_start_offset(log), 16);
    ck_assert_uint_eq(gr_log_size_bytes(log), 2 * info[0].size);

    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_deleted_files_unlinked_by_tick)
{
    gr_log_config c = test_cfg();
    c.retention_ms = 0;
    c.file_delete_delay_ms = 400;
    gr_log *log = open_log(0, &c);
    add_segment(log, real_ms() - HOUR_MS);
    add_segment(log, real_ms() - HOUR_MS);
    char old_log[256], old_deleted[256], old_index_deleted[256];
    char pdir[128];
    snprintf(pdir, sizeof pdir, "%s/t-0", root);
    ck_assert(gr_segment_filename(old_log, sizeof old_log, pdir, 0, ".log"));
    ck_assert(gr_segment_filename(old_deleted, sizeof old_deleted, pdir, 0, ".log.deleted"));
    ck_assert(gr_segment_filename(old_index_deleted, sizeof old_index_deleted, pdir, 0,
                                  ".index.deleted"));
    ck_assert(exists(old_log));

    /* a reader holds the first segment across its deletion */
    gr_log_read_result r;
    ck_assert_int_eq(gr_log_read(log, 0, 1 << 20, INT64_MAX, &r), GR_LOG_OK);
    ck_assert_uint_gt(r.length, 0);

    gr_logtask *t = gr_logtask_start(LONG_MS, 20);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    int64_t asked = mono_ms();
    pass_now(t);
    ck_assert_int_eq(gr_log_start_offset(log), 16);
    /* renamed, waiting out file.delete.delay.ms (ticks run meanwhile) */
    ck_assert(!exists(old_log));
    ck_assert(exists(old_deleted));
    ck_assert(wait_for(pred_missing, old_deleted));
    ck_assert(!exists(old_index_deleted));
    ck_assert_int_ge(mono_ms() - asked, 380); /* not before the delay */
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    ck_assert_uint_gt(st.ticks, 0);

    /* the reader's descriptor still reads the unlinked file */
    uint8_t buf[64];
    ck_assert_int_eq(pread(r.fd, buf, sizeof buf, r.position), (ssize_t)sizeof buf);
    gr_log_read_release(&r);

    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_flush_by_tick)
{
    gr_log_config c = test_cfg();
    c.flush_interval_ms = 100;
    gr_log *log = open_log(0, &c);
    for (int i = 0; i < 3; i++)
        append(log, 2, 100, real_ms());
    ck_assert_int_eq(gr_log_end_offset(log), 6);
    ck_assert_int_eq(gr_log_recovery_point(log), 0); /* not flushed yet */

    gr_logtask *t = gr_logtask_start(LONG_MS, 20);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    ck_assert(wait_for(pred_recovered, log));
    ck_assert_int_eq(gr_log_recovery_point(log), 6);
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    ck_assert_uint_eq(st.passes, 0); /* ticks only: no retention pass */
    ck_assert_int_eq(gr_log_start_offset(log), 0);

    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

/* A callback that holds the pass on its log for a while. */
typedef struct {
    atomic_int entered;
    atomic_int returned;
} slow_ctx;

static int64_t slow_hw(void *arg)
{
    slow_ctx *s = arg;
    atomic_fetch_add(&s->entered, 1);
    sleep_ms(300);
    atomic_fetch_add(&s->returned, 1);
    return 0; /* nothing may go */
}

static bool pred_entered(void *arg)
{
    slow_ctx *s = arg;
    return atomic_load(&s->entered) > 0;
}

START_TEST(test_remove_waits_for_the_pass)
{
    gr_log_config c = test_cfg();
    c.retention_ms = 0;
    gr_log *a = open_log(0, &c);
    gr_log *b = open_log(1, &c);
    add_segment(a, real_ms() - HOUR_MS);
    add_segment(b, real_ms() - HOUR_MS);

    slow_ctx s;
    atomic_init(&s.entered, 0);
    atomic_init(&s.returned, 0);
    hw_ctx h;
    atomic_init(&h.hw, INT64_MAX);
    atomic_init(&h.calls, 0);
    gr_logtask *t = gr_logtask_start(LONG_MS, LONG_MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, a, slow_hw, NULL, &s), 0);
    ck_assert_int_eq(gr_logtask_add(t, b, hw_of, NULL, &h), 0);

    gr_logtask_run_now(t);
    ck_assert(wait_for(pred_entered, &s));
    int64_t t0 = mono_ms();
    gr_logtask_remove(t, a); /* the pass is inside a's work right now */
    ck_assert_int_eq(load(&s.returned), 1);
    ck_assert_int_ge(mono_ms() - t0, 100);
    ck_assert_int_eq(gr_log_close(a, real_ms()), GR_LOG_OK); /* at once: the task is done with it */

    /* the pass went on to b, and further passes see only b */
    pass_now(t);
    pass_now(t);
    ck_assert_int_eq(load(&s.entered), 1);
    ck_assert_int_ge(load(&h.calls), 2);
    ck_assert_int_eq(gr_log_start_offset(b), 8);

    gr_logtask_remove(t, b);
    gr_logtask_remove(t, b); /* unknown: ignored */
    ck_assert_int_eq(gr_log_close(b, real_ms()), GR_LOG_OK);
    pass_now(t); /* an empty list is fine */
    gr_logtask_stop(t);
}
END_TEST

/* Logs come and go while the thread ticks as fast as it can: every
 * remove-then-close must be safe (AddressSanitizer watches). */
START_TEST(test_add_remove_churn)
{
    gr_log_config c = test_cfg();
    gr_log *keep = open_log(99, &c);
    gr_logtask *t = gr_logtask_start(3, 1);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, keep, NULL, NULL, NULL), 0);
    for (int i = 0; i < 12; i++) {
        gr_log *logs[3];
        for (int j = 0; j < 3; j++) {
            logs[j] = open_log(j, &c);
            append(logs[j], 1, 10, real_ms());
            ck_assert_int_eq(gr_logtask_add(t, logs[j], NULL, NULL, NULL), 0);
        }
        sleep_ms(1);
        for (int j = 0; j < 3; j++) {
            gr_logtask_remove(t, logs[j]);
            ck_assert_int_eq(gr_log_close(logs[j], real_ms()), GR_LOG_OK);
        }
    }
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    ck_assert_uint_gt(st.ticks + st.passes, 0);
    ck_assert_uint_eq(st.errors, 0);
    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(keep, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_stop_is_prompt)
{
    gr_log_config c = test_cfg();
    gr_log *log = open_log(0, &c);
    gr_logtask *t = gr_logtask_start(LONG_MS, LONG_MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    sleep_ms(50); /* let the thread settle into its wait */
    int64_t t0 = mono_ms();
    gr_logtask_stop(t);
    ck_assert_int_lt(mono_ms() - t0, 1000);

    /* stop right after a start, and with a pass just asked for */
    t0 = mono_ms();
    t = gr_logtask_start(LONG_MS, LONG_MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, NULL, NULL), 0);
    gr_logtask_run_now(t);
    gr_logtask_stop(t);
    ck_assert_int_lt(mono_ms() - t0, 1000);
    gr_logtask_stop(NULL);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

START_TEST(test_tick_callback)
{
    gr_log_config c = test_cfg();
    gr_log *log = open_log(0, &c);
    tick_ctx k = {0};
    int64_t before = real_ms();
    gr_logtask *t = gr_logtask_start(HOUR_MS, 10);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(gr_logtask_add(t, log, NULL, count_tick, &k), 0);
    /* every tick pass calls it, with the wall clock */
    ck_assert(wait_for(pred_ticked, &k));
    ck_assert_int_ge(atomic_load(&k.last_now), before);
    /* after removal it is never called again */
    gr_logtask_remove(t, log);
    int calls = load(&k.calls);
    gr_logtask_stats st;
    gr_logtask_get_stats(t, &st);
    passes_reach p = {t, st.ticks + 3};
    ck_assert(wait_for(pred_tick_passes, &p));
    ck_assert_int_eq(load(&k.calls), calls);
    gr_logtask_stop(t);
    ck_assert_int_eq(gr_log_close(log, real_ms()), GR_LOG_OK);
}
END_TEST

Suite *logtask_suite(void)
{
    Suite *s = suite_create("logtask");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_retention_ms_by_the_interval);
    tcase_add_test(tc, test_high_watermark_holds_retention);
    tcase_add_test(tc, test_retention_bytes);
    tcase_add_test(tc, test_deleted_files_unlinked_by_tick);
    tcase_add_test(tc, test_flush_by_tick);
    tcase_add_test(tc, test_remove_waits_for_the_pass);
    tcase_add_test(tc, test_add_remove_churn);
    tcase_add_test(tc, test_stop_is_prompt);
    tcase_add_test(tc, test_tick_callback);
    suite_add_tcase(s, tc);
    return s;
}
