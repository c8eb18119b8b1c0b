/*
 * test_log_apis.c - the decisions of the broker's log APIs that do not need
 * a partition (broker/api_delete_records.c, api_offset_for_leader_epoch.c)
 * and the epoch cache answer they share with the log
 * (gr_log_epochs_end_offset): DeleteRecords' target offset and its
 * cleanup.policy check (its internal topics are test_offsets_topic's),
 * Kafka's current-leader-epoch check, LeaderEpochFileCache.endOffsetFor
 * over a cache, with and without a new leader's epoch that has no records
 * yet, and when an acks=all produce of a partition may answer
 * (broker/api_produce.c).
 */
#include <check.h>
#include <string.h>

#include "broker/api.h"
#include "common/errors.h"
#include "tests/unit/suites.h"

START_TEST(delete_records_target)
{
    int64_t t = -7;
    ck_assert_int_eq(gr_api_delete_records_target(-1, 42, &t), GR_NONE); /* -1: the HW */
    ck_assert_int_eq(t, 42);
    ck_assert_int_eq(gr_api_delete_records_target(0, 42, &t), GR_NONE);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(gr_api_delete_records_target(17, 42, &t), GR_NONE);
    ck_assert_int_eq(t, 17);
    ck_assert_int_eq(gr_api_delete_records_target(42, 42, &t), GR_NONE);
    ck_assert_int_eq(t, 42);
    ck_assert_int_eq(gr_api_delete_records_target(43, 42, &t), GR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(gr_api_delete_records_target(-2, 42, &t), GR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(gr_api_delete_records_target(INT64_MIN, 42, &t), GR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(gr_api_delete_records_target(-1, 0, &t), GR_NONE); /* empty partition */
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(gr_api_delete_records_target(1, 0, &t), GR_OFFSET_OUT_OF_RANGE);
}
END_TEST

static bool deletes(const char *v)
{
    return gr_api_cleanup_policy_deletes((gr_str){v, v ? (int32_t)strlen(v) : -1});
}

START_TEST(cleanup_policy)
{
    ck_assert(deletes("delete"));
    ck_assert(deletes("compact,delete"));
    ck_assert(deletes(" compact , delete "));
    ck_assert(deletes("delete,compact"));
    ck_assert(deletes(NULL)); /* unset: Kafka's default is delete */
    ck_assert(deletes(""));
    ck_assert(!deletes("compact"));
    ck_assert(!deletes("compact,"));
    ck_assert(!deletes("deleted"));
    ck_assert(!deletes("xdelete"));
    ck_assert(!deletes("del,ete"));
}
END_TEST

START_TEST(current_leader_epoch_check)
{
    ck_assert_int_eq(gr_api_leader_epoch_check(-1, 5), GR_NONE); /* no check */
    ck_assert_int_eq(gr_api_leader_epoch_check(5, 5), GR_NONE);
    ck_assert_int_eq(gr_api_leader_epoch_check(4, 5), GR_FENCED_LEADER_EPOCH);
    ck_assert_int_eq(gr_api_leader_epoch_check(0, 5), GR_FENCED_LEADER_EPOCH);
    ck_assert_int_eq(gr_api_leader_epoch_check(-2, 5), GR_FENCED_LEADER_EPOCH);
    ck_assert_int_eq(gr_api_leader_epoch_check(6, 5), GR_UNKNOWN_LEADER_EPOCH);
}
END_TEST

/* The cache 1@0, 3@30, 5@40 of a log ending at 60. */
static const gr_log_epoch_entry CACHE[] = {{1, 0}, {3, 30}, {5, 40}};
#define LEO 60

static void expect_cache(int32_t requested, int32_t epoch, int64_t end)
{
    int32_t e = -9;
    int64_t o = -9;
    gr_log_epochs_end_offset(CACHE, 3, requested, LEO, &e, &o);
    ck_assert_msg(e == epoch && o == end, "epoch %d: got (%d, %lld), want (%d, %lld)", requested,
                  e, (long long)o, epoch, (long long)end);
}

START_TEST(end_offset_for_cache)
{
    expect_cache(1, 1, 30);   /* the start of the next epoch */
    expect_cache(2, 1, 30);   /* unknown, between two: the floor epoch */
    expect_cache(3, 3, 40);
    expect_cache(4, 3, 40);
    expect_cache(5, 5, LEO);  /* the latest: the log end */
    expect_cache(0, 0, 0);    /* older than all: the first start, the epoch asked */
    expect_cache(6, -1, -1);  /* newer than all */
    expect_cache(-1, -1, -1); /* undefined */
    int32_t e = -9;
    int64_t o = -9;
    gr_log_epochs_end_offset(CACHE, 0, 1, LEO, &e, &o); /* an empty cache knows nothing */
    ck_assert_int_eq(e, -1);
    ck_assert_int_eq(o, -1);
}
END_TEST

static void expect_leader(const gr_log_epoch_entry *cache, size_t n, int32_t leader_epoch,
                          int64_t leo, int32_t requested, int32_t epoch, int64_t end)
{
    gr_log_epoch_entry copy[8];
    memcpy(copy, cache, n * sizeof *copy);
    int32_t e = -9;
    int64_t o = -9;
    gr_api_leader_end_offset_for(copy, n, leader_epoch, requested, leo, &e, &o);
    ck_assert_msg(e == epoch && o == end,
                  "leader %d, epoch %d: got (%d, %lld), want (%d, %lld)", leader_epoch,
                  requested, e, (long long)o, epoch, (long long)end);
}

START_TEST(end_offset_for_new_leader)
{
    /* Leader at 7 with no records yet in 7: as if 7@60 were cached. */
    expect_leader(CACHE, 3, 7, LEO, 7, 7, LEO);
    expect_leader(CACHE, 3, 7, LEO, 6, 5, LEO); /* 5 ended where 7 began */
    expect_leader(CACHE, 3, 7, LEO, 5, 5, LEO);
    expect_leader(CACHE, 3, 7, LEO, 3, 3, 40);
    expect_leader(CACHE, 3, 7, LEO, 8, -1, -1);
    /* A leader whose epoch is cached already: the cache's own answers. */
    expect_leader(CACHE, 3, 5, LEO, 5, 5, LEO);
    expect_leader(CACHE, 3, 5, LEO, 6, -1, -1);
    expect_leader(CACHE, 3, 5, LEO, 2, 1, 30);
    /* An empty cache (no records yet) under leader epoch 2, log end 10. */
    expect_leader(CACHE, 0, 2, 10, 2, 2, 10);
    expect_leader(CACHE, 0, 2, 10, 1, 1, 10);
    expect_leader(CACHE, 0, 2, 10, 3, -1, -1);
    expect_leader(CACHE, 0, -1, 10, 0, -1, -1); /* no epoch at all */
}
END_TEST

/* acks=all records appended at epoch 5 up to offset 9 (required 10). */
static bool acked(bool leader, int32_t epoch, int64_t hw, int32_t isr, int32_t min_isr,
                  int16_t *err)
{
    *err = -99;
    return gr_api_produce_acked(leader, epoch, 5, hw, 10, isr, min_isr, err);
}

START_TEST(produce_acks_all)
{
    int16_t err;
    /* Covered by the high watermark with enough in-sync replicas. */
    ck_assert(acked(true, 5, 10, 1, 1, &err));
    ck_assert_int_eq(err, GR_NONE);
    ck_assert(acked(true, 5, 11, 2, 2, &err));
    ck_assert_int_eq(err, GR_NONE);
    /* Not yet covered: waits, the error untouched. */
    ck_assert(!acked(true, 5, 9, 2, 1, &err));
    ck_assert_int_eq(err, -99);
    ck_assert(!acked(true, 5, 0, 3, 2, &err));
    /* Leadership lost, or another epoch: the records may be truncated. */
    ck_assert(acked(false, 5, 10, 1, 1, &err));
    ck_assert_int_eq(err, GR_NOT_LEADER_OR_FOLLOWER);
    ck_assert(acked(true, 6, 10, 1, 1, &err));
    ck_assert_int_eq(err, GR_NOT_LEADER_OR_FOLLOWER);
    ck_assert(acked(true, 4, 3, 2, 1, &err));
    ck_assert_int_eq(err, GR_NOT_LEADER_OR_FOLLOWER);
    /* An ISR below min.insync.replicas, covered or not. */
    ck_assert(acked(true, 5, 10, 1, 2, &err));
    ck_assert_int_eq(err, GR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    ck_assert(acked(true, 5, 9, 2, 3, &err));
    ck_assert_int_eq(err, GR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
}
END_TEST

START_TEST(produce_effective_min_isr)
{
    ck_assert_int_eq(gr_api_effective_min_isr(1, 3), 1);
    ck_assert_int_eq(gr_api_effective_min_isr(2, 3), 2);
    ck_assert_int_eq(gr_api_effective_min_isr(3, 3), 3);
    /* More than there are replicas: all of them. */
    ck_assert_int_eq(gr_api_effective_min_isr(2, 1), 1);
    ck_assert_int_eq(gr_api_effective_min_isr(5, 3), 3);
    /* Replicas not known yet: no cap. */
    ck_assert_int_eq(gr_api_effective_min_isr(2, 0), 2);
}
END_TEST

Suite *log_apis_suite(void)
{
    Suite *s = suite_create("log_apis");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, delete_records_target);
    tcase_add_test(tc, cleanup_policy);
    tcase_add_test(tc, current_leader_epoch_check);
    tcase_add_test(tc, end_offset_for_cache);
    tcase_add_test(tc, end_offset_for_new_leader);
    tcase_add_test(tc, produce_acks_all);
    tcase_add_test(tc, produce_effective_min_isr);
    suite_add_tcase(s, tc);
    return s;
}
