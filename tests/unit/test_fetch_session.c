/*
 * test_fetch_session.c - broker/fetch_session: sessions made from full
 * fetches, incremental fetches (epochs, unknown ids, kinds of fetcher,
 * naming by name or id), adds, updates and forgets, what an answer must
 * carry, the answer order, a read-only view that changes nothing, the
 * cache bound with KIP-227's eviction rule, and many threads at once.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/fetch_session.h"
#include "common/errors.h"
#include "tests/unit/suites.h"

#define EVICT_MS 1000

static gr_fsess_part part(const char *topic, int32_t index, int64_t offset)
{
    gr_fsess_part p;
    memset(&p, 0, sizeof p);
    p.topic = gr_str_from(topic);
    p.partition = index;
    p.fetch_offset = offset;
    p.max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    p.log_start_offset = -1;
    p.prev_hw = p.prev_lso = p.prev_log_start = -1;
    return p;
}

static gr_fsess_part part_id(uint8_t id, int32_t index, int64_t offset)
{
    gr_fsess_part p = part("", index, offset);
    p.topic = (gr_str){"", 0};
    p.topic_id.b[0] = id;
    p.topic_id.b[15] = (uint8_t)(id * 7);
    return p;
}

static gr_fsess_answer ans(int64_t hw)
{
    return (gr_fsess_answer){.error = GR_NONE, .hw = hw, .lso = hw, .log_start = 0};
}

/* A session of n partitions of topic "t" (hw 10 each) made at now. */
static int32_t make(gr_fetch_sessions *c, int64_t now, bool follower, size_t n)
{
    gr_fsess_part parts[64];
    gr_fsess_answer answers[64];
    ck_assert_uint_le(n, 64);
    for (size_t i = 0; i < n; i++) {
        parts[i] = part("t", (int32_t)i, 0);
        answers[i] = ans(10);
    }
    return gr_fsess_create(c, now, follower, false, parts, answers, n);
}

/* An incremental fetch of id at epoch changing nothing, applied at now. */
static int16_t touch(gr_fetch_sessions *c, int32_t id, int32_t epoch, bool follower, int64_t now)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    int16_t err = gr_fsess_incremental(c, id, epoch, follower, false, NULL, 0, NULL, 0, now, true,
                                       &a, &v);
    gr_arena_free(&a);
    return err;
}

START_TEST(test_create_then_incremental)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 1);
    gr_fsess_part parts[] = {part("a", 0, 5), part("a", 1, 7), part("b", 0, 0)};
    gr_fsess_answer answers[] = {ans(10), ans(7), ans(3)};
    int32_t id = gr_fsess_create(c, 0, false, false, parts, answers, 3);
    ck_assert_int_gt(id, 0);
    ck_assert_uint_eq(gr_fsess_count(c), 1);
    ck_assert_int_eq(gr_fsess_size(c, id), 3);

    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    /* The first incremental fetch carries epoch 1. */
    ck_assert_int_eq(gr_fsess_incremental(c, id, 0, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_INVALID_FETCH_SESSION_EPOCH);
    ck_assert_int_eq(gr_fsess_incremental(c, id, 2, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_INVALID_FETCH_SESSION_EPOCH);
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_NONE);
    ck_assert(!v.closed);
    ck_assert_uint_eq(v.count, 3);
    ck_assert(gr_str_eq(v.parts[0].topic, "a") && v.parts[0].partition == 0);
    ck_assert_int_eq(v.parts[0].fetch_offset, 5);
    ck_assert_int_eq(v.parts[0].prev_hw, 10);
    ck_assert(gr_str_eq(v.parts[2].topic, "b") && v.parts[2].partition == 0);
    ck_assert_int_eq(v.parts[2].prev_hw, 3);

    /* a-0 unchanged, a-1 got records, b-0's high watermark moved. */
    gr_fsess_answer now[] = {ans(10), ans(9), ans(4)};
    now[1].has_records = true;
    bool respond[3];
    gr_fsess_answered(c, id, &v, now, respond);
    ck_assert(!respond[0] && respond[1] && respond[2]);

    /* Epoch 1 is used up; 2 is next. The answered went to the back, and
     * what was sent is remembered: nothing changed, nothing to say. */
    ck_assert_int_eq(touch(c, id, 1, false, 2), GR_INVALID_FETCH_SESSION_EPOCH);
    ck_assert_int_eq(gr_fsess_incremental(c, id, 2, false, false, NULL, 0, NULL, 0, 2, true, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 3);
    ck_assert(gr_str_eq(v.parts[0].topic, "a") && v.parts[0].partition == 0);
    ck_assert(gr_str_eq(v.parts[1].topic, "a") && v.parts[1].partition == 1);
    ck_assert(gr_str_eq(v.parts[2].topic, "b"));
    gr_fsess_answer same[] = {ans(10), ans(9), ans(4)};
    gr_fsess_answered(c, id, &v, same, respond);
    ck_assert(!respond[0] && !respond[1] && !respond[2]);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_must_respond_rules)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 2);
    gr_fsess_part parts[5];
    gr_fsess_answer answers[5];
    for (int i = 0; i < 5; i++) {
        parts[i] = part("t", i, 0);
        answers[i] = ans(10);
    }
    int32_t id = gr_fsess_create(c, 0, false, false, parts, answers, 5);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_NONE);
    gr_fsess_answer now[5] = {ans(10), ans(10), ans(10), ans(10), ans(10)};
    now[1].lso = 8;                       /* last stable offset moved */
    now[2].log_start = 4;                 /* retention moved the log start */
    now[3].error = GR_NOT_LEADER_OR_FOLLOWER; /* errors are always said */
    now[4].has_records = true;            /* so are records */
    bool respond[5];
    gr_fsess_answered(c, id, &v, now, respond);
    ck_assert(!respond[0] && respond[1] && respond[2] && respond[3] && respond[4]);
    /* After an error the partition is said again even when back as before. */
    ck_assert_int_eq(gr_fsess_incremental(c, id, 2, false, false, NULL, 0, NULL, 0, 2, true, &a, &v),
                     GR_NONE);
    for (size_t i = 0; i < v.count; i++)
        if (v.parts[i].partition == 3)
            ck_assert_int_eq(v.parts[i].prev_hw, -1);
    gr_fsess_answer back[5];
    for (size_t i = 0; i < v.count; i++) {
        back[i] = ans(10);
        back[i].lso = v.parts[i].partition == 1 ? 8 : 10;
        back[i].log_start = v.parts[i].partition == 2 ? 4 : 0;
    }
    gr_fsess_answered(c, id, &v, back, respond);
    for (size_t i = 0; i < v.count; i++)
        ck_assert_msg(respond[i] == (v.parts[i].partition == 3), "partition %d",
                      v.parts[i].partition);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_add_update_forget)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 3);
    gr_fsess_part parts[] = {part("a", 0, 0), part("a", 1, 0)};
    gr_fsess_answer answers[] = {ans(1), ans(1)};
    int32_t id = gr_fsess_create(c, 0, false, false, parts, answers, 2);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    /* a-1 moves to offset 1, b-3 joins; a-0 is forgotten. */
    gr_fsess_part upd[] = {part("a", 1, 1), part("b", 3, 0)};
    gr_fsess_part forget[] = {part("a", 0, 0), part("zz", 9, 0)};
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, upd, 2, forget, 2, 1, true, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 2);
    ck_assert(gr_str_eq(v.parts[0].topic, "a") && v.parts[0].partition == 1);
    ck_assert_int_eq(v.parts[0].fetch_offset, 1);
    ck_assert_int_eq(v.parts[0].prev_hw, 1); /* an update keeps what was sent */
    ck_assert(gr_str_eq(v.parts[1].topic, "b") && v.parts[1].partition == 3);
    ck_assert_int_eq(v.parts[1].prev_hw, -1); /* new: the next answer carries it */
    ck_assert_int_eq(gr_fsess_size(c, id), 2);
    /* Forgetting the rest ends the session. */
    gr_fsess_part all[] = {part("a", 1, 0), part("b", 3, 0)};
    ck_assert_int_eq(gr_fsess_incremental(c, id, 2, false, false, NULL, 0, all, 2, 2, true, &a, &v),
                     GR_NONE);
    ck_assert(v.closed);
    ck_assert_uint_eq(v.count, 0);
    ck_assert_uint_eq(gr_fsess_count(c), 0);
    ck_assert_int_eq(touch(c, id, 3, false, 3), GR_FETCH_SESSION_ID_NOT_FOUND);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_view_without_apply_changes_nothing)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 4);
    int32_t id = make(c, 0, false, 2);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    gr_fsess_part upd[] = {part("u", 0, 0)};
    gr_fsess_part forget[] = {part("t", 0, 0), part("t", 1, 0)};
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, upd, 1, forget, 2, 5, false, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 1);
    ck_assert(gr_str_eq(v.parts[0].topic, "u"));
    ck_assert(!v.closed);
    /* Still two partitions at epoch 1. */
    ck_assert_int_eq(gr_fsess_size(c, id), 2);
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, NULL, 0, forget, 2, 5, false, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 0);
    ck_assert_uint_eq(gr_fsess_count(c), 1);
    ck_assert_int_eq(touch(c, id, 1, false, 6), GR_NONE);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_errors_and_kinds)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 5);
    int32_t consumer = make(c, 0, false, 1);
    int32_t follower = make(c, 0, true, 1);
    ck_assert_int_gt(consumer, 0);
    ck_assert_int_gt(follower, 0);
    ck_assert_int_ne(consumer, follower);
    ck_assert_int_eq(touch(c, 0, 1, false, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    ck_assert_int_eq(touch(c, -5, 1, false, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    int32_t other = consumer == INT32_MAX ? 1 : consumer + 1;
    if (other == follower)
        other = other == INT32_MAX ? 2 : other + 1;
    ck_assert_int_eq(touch(c, other, 1, false, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    /* A session belongs to its kind of fetcher. */
    ck_assert_int_eq(touch(c, consumer, 1, true, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    ck_assert_int_eq(touch(c, follower, 1, false, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    /* Named by name, continued by id. */
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    ck_assert_int_eq(gr_fsess_incremental(c, consumer, 1, false, true, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_FETCH_SESSION_TOPIC_ID_ERROR);
    /* None of that used an epoch. */
    ck_assert_int_eq(touch(c, consumer, 1, false, 1), GR_NONE);
    ck_assert_int_eq(touch(c, follower, 1, true, 1), GR_NONE);
    /* Closing. */
    ck_assert(gr_fsess_remove(c, consumer));
    ck_assert(!gr_fsess_remove(c, consumer));
    ck_assert_int_eq(touch(c, consumer, 2, false, 1), GR_FETCH_SESSION_ID_NOT_FOUND);
    ck_assert_uint_eq(gr_fsess_count(c), 1);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_by_topic_id)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 6);
    gr_fsess_part parts[] = {part_id(1, 0, 0), part_id(2, 0, 0)};
    gr_fsess_answer answers[] = {ans(1), ans(1)};
    int32_t id = gr_fsess_create(c, 0, false, true, parts, answers, 2);
    ck_assert_int_gt(id, 0);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_FETCH_SESSION_TOPIC_ID_ERROR);
    gr_fsess_part upd[] = {part_id(3, 4, 9), part_id(1, 0, 5)};
    gr_fsess_part forget[] = {part_id(2, 0, 0)};
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, true, upd, 2, forget, 1, 1, true, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 2);
    ck_assert_int_eq(v.parts[0].topic_id.b[0], 1);
    ck_assert_int_eq(v.parts[0].fetch_offset, 5);
    ck_assert_int_eq(v.parts[1].topic_id.b[0], 3);
    ck_assert_int_eq(v.parts[1].partition, 4);
    ck_assert_int_eq(v.parts[1].fetch_offset, 9);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_duplicates_collapse)
{
    gr_fetch_sessions *c = gr_fsess_new(10, EVICT_MS, 7);
    gr_fsess_part parts[] = {part("a", 0, 1), part("b", 0, 0), part("a", 0, 4)};
    gr_fsess_answer answers[] = {ans(5), ans(5), ans(6)};
    int32_t id = gr_fsess_create(c, 0, false, false, parts, answers, 3);
    ck_assert_int_eq(gr_fsess_size(c, id), 2);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    gr_fsess_part upd[] = {part("b", 0, 2), part("b", 0, 3), part("c", 1, 0), part("c", 1, 1)};
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, upd, 4, NULL, 0, 1, true, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 3);
    ck_assert(gr_str_eq(v.parts[0].topic, "a"));
    ck_assert_int_eq(v.parts[0].fetch_offset, 4); /* first place, last values */
    ck_assert_int_eq(v.parts[0].prev_hw, 6);
    ck_assert_int_eq(v.parts[1].fetch_offset, 3);
    ck_assert(gr_str_eq(v.parts[2].topic, "c"));
    ck_assert_int_eq(v.parts[2].fetch_offset, 1);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_epoch_wraps)
{
    ck_assert_int_eq(gr_fsess_next_epoch(1), 2);
    ck_assert_int_eq(gr_fsess_next_epoch(INT32_MAX - 1), INT32_MAX);
    ck_assert_int_eq(gr_fsess_next_epoch(INT32_MAX), 1);
}
END_TEST

START_TEST(test_no_slots)
{
    gr_fetch_sessions *c = gr_fsess_new(0, EVICT_MS, 8);
    ck_assert_int_eq(make(c, 0, false, 1), 0);
    ck_assert_int_eq(make(c, 0, true, 1), 0);
    ck_assert_uint_eq(gr_fsess_count(c), 0);
    gr_fsess_free(c);
}
END_TEST

/* Full, with every session young and none stale: nobody gets in unless a
 * follower displaces a consumer. */
START_TEST(test_young_sessions_kept)
{
    gr_fetch_sessions *c = gr_fsess_new(2, EVICT_MS, 9);
    int32_t small = make(c, 0, false, 1);
    int32_t big = make(c, 0, false, 3);
    ck_assert(small > 0 && big > 0);
    ck_assert_int_eq(make(c, 10, false, 50), 0); /* a bigger consumer waits its turn */
    ck_assert_uint_eq(gr_fsess_count(c), 2);
    /* A follower takes the least valuable consumer slot. */
    int32_t f = make(c, 10, true, 1);
    ck_assert_int_gt(f, 0);
    ck_assert_int_eq(gr_fsess_size(c, small), -1);
    ck_assert_int_eq(gr_fsess_size(c, big), 3);
    /* Another follower: the remaining consumer goes. */
    int32_t f2 = make(c, 10, true, 1);
    ck_assert_int_gt(f2, 0);
    ck_assert_int_eq(gr_fsess_size(c, big), -1);
    /* Two young followers: nobody gets in, not even a bigger follower. */
    ck_assert_int_eq(make(c, 20, true, 60), 0);
    ck_assert_int_eq(gr_fsess_size(c, f), 1);
    ck_assert_int_eq(gr_fsess_size(c, f2), 1);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_stale_session_evicted)
{
    gr_fetch_sessions *c = gr_fsess_new(2, EVICT_MS, 10);
    int32_t a = make(c, 0, true, 10);
    int32_t b = make(c, 0, true, 10);
    /* a is used at 600, b not since 0. */
    ck_assert_int_eq(touch(c, a, 1, true, 600), GR_NONE);
    ck_assert_int_eq(make(c, EVICT_MS, false, 1), 0); /* b idle exactly EVICT_MS: not stale */
    int32_t n = make(c, EVICT_MS + 1, false, 1);      /* now stale: even a small consumer gets in */
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(gr_fsess_size(c, b), -1);
    ck_assert_int_eq(gr_fsess_size(c, a), 10);
    gr_fsess_free(c);
}
END_TEST

/* Sessions older than the eviction time, though in use, give way to a more
 * valuable newcomer: more partitions, or a follower. */
START_TEST(test_old_sessions_yield_to_bigger)
{
    gr_fetch_sessions *c = gr_fsess_new(2, EVICT_MS, 11);
    int32_t a = make(c, 0, false, 2);
    int32_t b = make(c, 0, false, 4);
    int64_t t = EVICT_MS + 100;
    ck_assert_int_eq(touch(c, a, 1, false, t), GR_NONE);
    ck_assert_int_eq(touch(c, b, 1, false, t), GR_NONE);
    ck_assert_int_eq(make(c, t + 1, false, 2), 0); /* a tie keeps the old one */
    int32_t n = make(c, t + 1, false, 3);          /* worth more than a, not b */
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(gr_fsess_size(c, a), -1);
    ck_assert_int_eq(gr_fsess_size(c, b), 4);
    /* n is young, b old: a consumer of 5 displaces b, not n. */
    int32_t m = make(c, t + 2, false, 5);
    ck_assert_int_gt(m, 0);
    ck_assert_int_eq(gr_fsess_size(c, b), -1);
    ck_assert_int_eq(gr_fsess_size(c, n), 3);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_ids_unique)
{
    gr_fetch_sessions *c = gr_fsess_new(500, EVICT_MS, 12);
    int32_t ids[500];
    for (int i = 0; i < 500; i++) {
        ids[i] = make(c, 0, false, 1);
        ck_assert_int_gt(ids[i], 0);
        for (int k = 0; k < i; k++)
            ck_assert_int_ne(ids[i], ids[k]);
    }
    ck_assert_uint_eq(gr_fsess_count(c), 500);
    ck_assert_int_eq(make(c, 0, false, 1), 0);
    gr_fsess_free(c);
}
END_TEST

START_TEST(test_long_names_shared)
{
    /* 2,000 partitions of one topic with a 32 KB name: the name is held
     * once per run, not per partition (ASan would flag a leak or misuse;
     * the arena copy is checked for content). */
    static gr_fsess_part parts[2000];
    static gr_fsess_answer answers[2000];
    static char name[32768];
    memset(name, 'n', sizeof name - 1);
    for (int i = 0; i < 2000; i++) {
        parts[i] = part(name, i, 0);
        answers[i] = ans(0);
    }
    gr_fetch_sessions *c = gr_fsess_new(1, EVICT_MS, 13);
    int32_t id = gr_fsess_create(c, 0, false, false, parts, answers, 2000);
    ck_assert_int_gt(id, 0);
    gr_arena a;
    gr_arena_init(&a);
    gr_fsess_view v;
    ck_assert_int_eq(gr_fsess_incremental(c, id, 1, false, false, NULL, 0, NULL, 0, 1, true, &a, &v),
                     GR_NONE);
    ck_assert_uint_eq(v.count, 2000);
    ck_assert_int_eq(v.parts[1999].topic.len, (int32_t)sizeof name - 1);
    ck_assert(v.parts[0].topic.ptr == v.parts[1999].topic.ptr);
    ck_assert(memcmp(v.parts[1999].topic.ptr, name, sizeof name - 1) == 0);
    gr_arena_free(&a);
    gr_fsess_free(c);
}
END_TEST

/* Several threads make, continue and close sessions at once in a small
 * cache; every continuation of one's own live session succeeds unless it
 * was evicted, and the count never passes the bound. */
typedef struct {
    gr_fetch_sessions *c;
    int seed;
    int ok, evicted;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    gr_arena a;
    gr_arena_init(&a);
    for (int round = 0; round < 300; round++) {
        bool follower = (round + w->seed) % 3 == 0;
        int32_t id = make(w->c, round, follower, (size_t)(1 + (round * 7 + w->seed) % 9));
        if (id == 0)
            continue;
        int32_t epoch = 1;
        for (int k = 0; k < 5; k++) {
            gr_fsess_view v;
            gr_fsess_part upd[] = {part("x", k, k)};
            int16_t err = gr_fsess_incremental(w->c, id, epoch, follower, false, upd, 1, NULL, 0,
                                               round, true, &a, &v);
            if (err == GR_FETCH_SESSION_ID_NOT_FOUND) {
                w->evicted++;
                break;
            }
            ck_assert_int_eq(err, GR_NONE);
            gr_fsess_answer answers[16];
            bool respond[16];
            ck_assert_uint_le(v.count, 16);
            for (size_t i = 0; i < v.count; i++)
                answers[i] = ans(round);
            gr_fsess_answered(w->c, id, &v, answers, respond);
            epoch = gr_fsess_next_epoch(epoch);
            w->ok++;
        }
        ck_assert_uint_le(gr_fsess_count(w->c), 8);
        if (round % 2)
            gr_fsess_remove(w->c, id);
    }
    gr_arena_free(&a);
    return NULL;
}

START_TEST(test_threads)
{
    gr_fetch_sessions *c = gr_fsess_new(8, 50, 14);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.c = c, .seed = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    ck_assert_int_gt(ok, 0);
    ck_assert_uint_le(gr_fsess_count(c), 8);
    gr_fsess_free(c);
}
END_TEST

Suite *fetch_session_suite(void)
{
    Suite *s = suite_create("fetch_session");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_create_then_incremental);
    tcase_add_test(tc, test_must_respond_rules);
    tcase_add_test(tc, test_add_update_forget);
    tcase_add_test(tc, test_view_without_apply_changes_nothing);
    tcase_add_test(tc, test_errors_and_kinds);
    tcase_add_test(tc, test_by_topic_id);
    tcase_add_test(tc, test_duplicates_collapse);
    tcase_add_test(tc, test_epoch_wraps);
    tcase_add_test(tc, test_no_slots);
    tcase_add_test(tc, test_young_sessions_kept);
    tcase_add_test(tc, test_stale_session_evicted);
    tcase_add_test(tc, test_old_sessions_yield_to_bigger);
    tcase_add_test(tc, test_ids_unique);
    tcase_add_test(tc, test_long_names_shared);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}
