/*
 * test_index.c - common/index: the sparse offset and time indexes at their
 * edges (empty, before the first entry, exact hits, between entries, after
 * the last, full), persistence (trailing zeros of a preallocated file after
 * a crash), truncation and the structural check.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/index.h"
#include "tests/unit/suites.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/gridxXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/00000000000000001000.index", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static off_t file_size(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_size;
}

START_TEST(test_offset_lookup_edges)
{
    gr_index idx;
    gr_index_entry e;
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 800), 0);
    ck_assert_int_eq(file_size(path), 800);
    /* empty */
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1000, &e), -1);
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 5000, &e), -1);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1010, 100), 0);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1020, 200), 0);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1030, 300), 0);
    /* before the first entry */
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1009, &e), -1);
    /* exact hits */
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1010, &e), 0);
    ck_assert_int_eq(e.position, 100);
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1020, &e), 1);
    ck_assert_int_eq(e.offset, 1020);
    ck_assert_int_eq(e.position, 200);
    /* between */
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1029, &e), 1);
    /* after the last */
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 99999, &e), 2);
    ck_assert_int_eq(e.position, 300);
    /* not increasing: skipped */
    ck_assert_int_eq(gr_index_append_offset(&idx, 1030, 400), 1);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1040, 300), 1);
    /* relative offset must fit and position 0 is never an entry */
    ck_assert_int_eq(gr_index_append_offset(&idx, 999, 500), -1);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1000 + (1LL << 31), 500), -1);
    ck_assert_int_eq(idx.entries, 3);
    gr_index_close(&idx);
}
END_TEST

START_TEST(test_full_index)
{
    gr_index idx;
    gr_index_entry e;
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 3 * GR_INDEX_OFFSET_ENTRY + 5), 0);
    ck_assert_int_eq(gr_index_capacity(&idx), 3);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(gr_index_append_offset(&idx, 1000 + i, (uint32_t)i * 10), 0);
    ck_assert(gr_index_full(&idx));
    ck_assert_int_eq(gr_index_append_offset(&idx, 1004, 40), -1);
    ck_assert_int_eq(gr_index_lookup_offset(&idx, 1004, &e), 2);
    ck_assert_int_eq(e.offset, 1003);
    gr_index_close(&idx);
}
END_TEST

START_TEST(test_time_lookup)
{
    gr_index idx;
    gr_index_entry e;
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_TIME, 1000, 120), 0);
    ck_assert_int_eq(gr_index_lookup_time(&idx, 5, &e), -1);
    ck_assert_int_eq(gr_index_append_time(&idx, 100, 1005), 0);
    ck_assert_int_eq(gr_index_append_time(&idx, 200, 1010), 0);
    ck_assert_int_eq(gr_index_append_time(&idx, 150, 1020), 1); /* not increasing */
    /* strictly below: an entry equal to the target says nothing */
    ck_assert_int_eq(gr_index_lookup_time(&idx, 100, &e), -1);
    ck_assert_int_eq(gr_index_lookup_time(&idx, 101, &e), 0);
    ck_assert_int_eq(e.offset, 1005);
    ck_assert_int_eq(gr_index_lookup_time(&idx, 200, &e), 0);
    ck_assert_int_eq(gr_index_lookup_time(&idx, 1000000, &e), 1);
    ck_assert_int_eq(e.timestamp, 200);
    ck_assert_int_eq(e.offset, 1010);
    gr_index_close(&idx);
}
END_TEST

START_TEST(test_reopen_trims_preallocation)
{
    gr_index idx;
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 800), 0);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1001, 10), 0);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1002, 20), 0);
    gr_index_close(&idx); /* as a crash would leave it: preallocated, untrimmed */
    ck_assert_int_eq(file_size(path), 800);
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 0), 0);
    ck_assert_int_eq(idx.entries, 2);
    ck_assert(!idx.created);
    ck_assert_int_eq(file_size(path), 16);
    ck_assert_int_eq(gr_index_get(&idx, 1).position, 20);
    /* resize up and down keeps entries */
    ck_assert_int_eq(gr_index_resize(&idx, 400), 0);
    ck_assert_int_eq(file_size(path), 400);
    ck_assert_int_eq(gr_index_append_offset(&idx, 1003, 30), 0);
    ck_assert_int_eq(gr_index_resize(&idx, 0), 0);
    ck_assert_int_eq(file_size(path), 24);
    gr_index_close(&idx);
    /* a ragged file is flagged */
    FILE *f = fopen(path, "ab");
    fputc(1, f);
    fclose(f);
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 0), 0);
    ck_assert(idx.ragged);
    ck_assert_int_eq(idx.entries, 3);
    gr_index_close(&idx);
}
END_TEST

START_TEST(test_truncate_and_check)
{
    gr_index idx;
    ck_assert_int_eq(gr_index_open(&idx, path, GR_INDEX_OFFSET, 1000, 800), 0);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(gr_index_append_offset(&idx, 1000 + 10 * i, (uint32_t)i * 100), 0);
    ck_assert_ptr_null(gr_index_check(&idx, 1000, 2000, true));
    ck_assert_ptr_nonnull(gr_index_check(&idx, 500, 2000, true));  /* position beyond the log */
    ck_assert_ptr_nonnull(gr_index_check(&idx, 1000, 1040, false)); /* offset beyond the end */
    /* a corrupt middle entry: only the full check sees it */
    idx.map[2 * 8 + 6] = 0x7f;
    ck_assert_ptr_null(gr_index_check(&idx, 1u << 30, 2000, false));
    ck_assert_ptr_nonnull(gr_index_check(&idx, 1u << 30, 2000, true));
    gr_index_truncate_offset(&idx, 1030);
    ck_assert_int_eq(idx.entries, 2);
    ck_assert_ptr_null(gr_index_check(&idx, 1000, 2000, true));
    gr_index_reset(&idx);
    ck_assert_int_eq(idx.entries, 0);
    gr_index_close(&idx);
}
END_TEST

Suite *index_suite(void)
{
    Suite *s = suite_create("index");
    TCase *tc = tcase_create("index");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_offset_lookup_edges);
    tcase_add_test(tc, test_full_index);
    tcase_add_test(tc, test_time_lookup);
    tcase_add_test(tc, test_reopen_trims_preallocation);
    tcase_add_test(tc, test_truncate_and_check);
    suite_add_tcase(s, tc);
    return s;
}
