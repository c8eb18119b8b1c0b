/*
 * test_checkpoint.c - common/checkpoint: Kafka's text format byte for byte,
 * round trips, and that a leftover temp file is ignored and a torn or
 * malformed file is reported as corrupt, never half-read.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/checkpoint.h"
#include "tests/unit/suites.h"

static char dir[64];
static char path[128];
static char tmp[160];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/grckptXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/leader-epoch-checkpoint", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
}

static void teardown(void)
{
    unlink(path);
    unlink(tmp);
    rmdir(dir);
}

static void put(const char *p, const char *text)
{
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *p)
{
    static char buf[256];
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_pairs_kafka_format)
{
    gr_checkpoint_pair in[2] = {{3, 100}, {5, 200}};
    ck_assert_int_eq(gr_checkpoint_write_pairs(path, in, 2), 0);
    ck_assert_str_eq(get(path), "0\n2\n3 100\n5 200\n");
    ck_assert_int_eq(access(tmp, F_OK), -1);
    gr_checkpoint_pair *out;
    size_t n;
    ck_assert_int_eq(gr_checkpoint_read_pairs(path, &out, &n), GR_CHECKPOINT_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(out[1].a, 5);
    ck_assert_int_eq(out[1].b, 200);
    free(out);
    ck_assert_int_eq(gr_checkpoint_write_pairs(path, NULL, 0), 0);
    ck_assert_str_eq(get(path), "0\n0\n");
    ck_assert_int_eq(gr_checkpoint_read_pairs(path, &out, &n), GR_CHECKPOINT_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_offset_file)
{
    int64_t v = 0;
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "t", 0, &v), GR_CHECKPOINT_ABSENT);
    ck_assert_int_eq(gr_checkpoint_write_offset(path, "orders", 7, 123456789012LL), 0);
    ck_assert_str_eq(get(path), "0\n1\norders 7 123456789012\n");
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "orders", 7, &v), GR_CHECKPOINT_OK);
    ck_assert_int_eq(v, 123456789012LL);
    /* another partition's file is not ours */
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "orders", 8, &v), GR_CHECKPOINT_CORRUPT);
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "order", 7, &v), GR_CHECKPOINT_CORRUPT);
}
END_TEST

START_TEST(test_leftover_tmp_ignored)
{
    gr_checkpoint_pair in[1] = {{1, 10}};
    ck_assert_int_eq(gr_checkpoint_write_pairs(path, in, 1), 0);
    put(tmp, "0\n3\n1 10\n2 2"); /* a write interrupted before its rename */
    gr_checkpoint_pair *out;
    size_t n;
    ck_assert_int_eq(gr_checkpoint_read_pairs(path, &out, &n), GR_CHECKPOINT_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(out[0].b, 10);
    free(out);
    /* and the next write replaces it */
    ck_assert_int_eq(gr_checkpoint_write_pairs(path, in, 1), 0);
    ck_assert_int_eq(access(tmp, F_OK), -1);
}
END_TEST

START_TEST(test_torn_detected)
{
    static const char *const bad[] = {
        "",                    /* empty */
        "0\n2\n3 100\n5 20",   /* torn last line */
        "0\n2\n3 100\n",       /* fewer lines than the count */
        "0\n1\n3 100\n5 200\n", /* more lines than the count */
        "1\n1\n3 100\n",       /* unknown version */
        "0\n1\n3  100\n",      /* two spaces */
        "0\n1\n3 1x0\n",       /* not a number */
        "0\n1\n3\n",           /* missing field */
        "0\n99999999999\n",    /* absurd count */
        "0\n1\n3 99999999999999999999\n", /* overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(path, bad[i]);
        gr_checkpoint_pair *out = (void *)1;
        size_t n = 7;
        ck_assert_msg(gr_checkpoint_read_pairs(path, &out, &n) == GR_CHECKPOINT_CORRUPT, "case %zu", i);
        ck_assert_ptr_null(out);
        ck_assert_int_eq(n, 0);
    }
    int64_t v;
    put(path, "0\n1\nt 0 12");
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "t", 0, &v), GR_CHECKPOINT_CORRUPT);
    put(path, "0\n1\nt 0 -5\n");
    ck_assert_int_eq(gr_checkpoint_read_offset(path, "t", 0, &v), GR_CHECKPOINT_OK);
    ck_assert_int_eq(v, -5);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pairs_kafka_format);
    tcase_add_test(tc, test_offset_file);
    tcase_add_test(tc, test_leftover_tmp_ignored);
    tcase_add_test(tc, test_torn_detected);
    suite_add_tcase(s, tc);
    return s;
}
