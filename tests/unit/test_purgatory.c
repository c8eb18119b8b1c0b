/*
 * test_purgatory.c - common/purgatory: completion at watch time, by a check
 * on any one key (and then never again by another), expiry in deadline order
 * with ties first-in first-out, cancel, re-entrant calls from callbacks, and
 * a randomised run of 100,000 ops over 1,000 keys against a brute-force
 * model that predicts every completion, its cause and its order.
 */
#include <check.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/purgatory.h"
#include "tests/unit/suites.h"

/* ---- a small owner used by the directed tests ---- */

typedef struct top top;
struct top {
    gr_delayed_op op;
    int id;
    bool ready;
    int tries;
    int completions;
    gr_delayed_cause cause;
    int64_t done_at;
    /* Optional re-entrant actions. */
    void (*on_try)(top *t);
    void (*on_done)(top *t);
    bool free_on_done;
};

static gr_purgatory *P;
static int done_log[64];
static size_t done_n;

static top *of(gr_delayed_op *op)
{
    return (top *)((char *)op - offsetof(top, op));
}

static bool t_try(gr_delayed_op *op, int64_t now)
{
    (void)now;
    top *t = of(op);
    t->tries++;
    if (t->on_try)
        t->on_try(t);
    return t->ready;
}

static void t_done(gr_delayed_op *op, int64_t now, gr_delayed_cause cause)
{
    top *t = of(op);
    ck_assert(!gr_delayed_op_pending(op));
    t->completions++;
    t->cause = cause;
    t->done_at = now;
    if (done_n < sizeof done_log / sizeof done_log[0])
        done_log[done_n++] = t->id;
    if (t->on_done)
        t->on_done(t);
    if (t->free_on_done)
        free(t);
}

static void top_init(top *t, int id, bool ready)
{
    memset(t, 0, sizeof *t);
    t->id = id;
    t->ready = ready;
    gr_delayed_op_init(&t->op, t_try, t_done);
}

static void setup(void)
{
    P = gr_purgatory_new();
    ck_assert_ptr_nonnull(P);
    done_n = 0;
}

static void teardown(void)
{
    gr_purgatory_free(P);
    P = NULL;
}

START_TEST(test_complete_at_watch)
{
    top a;
    top_init(&a, 1, true);
    uint64_t keys[] = {7, 8};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, keys, 2, 100, 0), GR_PURGATORY_DONE);
    ck_assert_int_eq(a.tries, 1);
    ck_assert_int_eq(a.completions, 1);
    ck_assert_int_eq(a.cause, GR_DELAYED_COMPLETED);
    ck_assert_uint_eq(gr_purgatory_watched(P), 0);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
    ck_assert(gr_purgatory_next_deadline(P) == GR_PURGATORY_NO_DEADLINE);
    /* Never stored: neither a check nor the deadline reaches it. */
    ck_assert_uint_eq(gr_purgatory_check(P, 7, 1), 0);
    ck_assert_uint_eq(gr_purgatory_expire(P, 1000), 0);
    ck_assert_int_eq(a.tries, 1);
    ck_assert_int_eq(a.completions, 1);
}
END_TEST

START_TEST(test_check_completes_once_across_keys)
{
    top a, b;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    uint64_t ka[] = {1, 2, 3};
    uint64_t kb[] = {3, 4};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, ka, 3, 100, 0), GR_PURGATORY_WATCHING);
    ck_assert_int_eq(gr_purgatory_watch(P, &b.op, kb, 2, 100, 0), GR_PURGATORY_WATCHING);
    ck_assert(gr_delayed_op_pending(&a.op));
    gr_purgatory_stats st;
    gr_purgatory_get_stats(P, &st);
    ck_assert_uint_eq(st.watched, 2);
    ck_assert_uint_eq(st.keys, 4);
    ck_assert_uint_eq(st.watches, 5);

    /* Not ready: asked, stays. A key nobody watches asks nobody. */
    ck_assert_uint_eq(gr_purgatory_check(P, 2, 1), 0);
    ck_assert_int_eq(a.tries, 2);
    ck_assert_int_eq(b.tries, 1);
    ck_assert_uint_eq(gr_purgatory_check(P, 99, 1), 0);
    ck_assert_int_eq(a.tries, 2);

    /* Ready: a check on one key completes it and removes it from the others. */
    a.ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, 2, 5), 1);
    ck_assert_int_eq(a.completions, 1);
    ck_assert_int_eq(a.cause, GR_DELAYED_COMPLETED);
    ck_assert_int_eq(a.done_at, 5);
    ck_assert(!gr_delayed_op_pending(&a.op));
    int tries = a.tries;
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 6), 0);
    ck_assert_uint_eq(gr_purgatory_check(P, 3, 6), 0);
    ck_assert_int_eq(a.tries, tries);
    ck_assert_int_eq(b.tries, 2); /* key 3 still asks b */
    gr_purgatory_get_stats(P, &st);
    ck_assert_uint_eq(st.watched, 1);
    ck_assert_uint_eq(st.keys, 2); /* 3 and 4 */
    ck_assert_uint_eq(st.watches, 2);
    ck_assert_uint_eq(st.completed, 1);
    /* And its deadline no longer fires. */
    ck_assert_uint_eq(gr_purgatory_expire(P, 100), 1);
    ck_assert_int_eq(a.completions, 1);
    ck_assert_int_eq(b.completions, 1);
    ck_assert_int_eq(b.cause, GR_DELAYED_EXPIRED);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
}
END_TEST

START_TEST(test_expire_order_and_next_deadline)
{
    top t[6];
    int64_t deadlines[] = {30, 10, 20, 10, 20, 40};
    uint64_t key = 5;
    for (int i = 0; i < 6; i++) {
        top_init(&t[i], i, false);
        ck_assert_int_eq(gr_purgatory_watch(P, &t[i].op, &key, 1, deadlines[i], 0),
                         GR_PURGATORY_WATCHING);
    }
    ck_assert_int_eq(gr_purgatory_next_deadline(P), 10);
    ck_assert_uint_eq(gr_purgatory_expire(P, 9), 0);
    ck_assert_uint_eq(gr_purgatory_expire(P, 15), 2);
    ck_assert_int_eq(done_log[0], 1); /* equal deadlines: watch order */
    ck_assert_int_eq(done_log[1], 3);
    ck_assert_int_eq(t[1].done_at, 15);
    ck_assert_int_eq(gr_purgatory_next_deadline(P), 20);

    /* Completing the earliest by a check moves next_deadline on. */
    t[2].ready = true;
    t[4].ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, key, 16), 2);
    ck_assert_int_eq(done_log[2], 2);
    ck_assert_int_eq(done_log[3], 4);
    ck_assert_int_eq(gr_purgatory_next_deadline(P), 30);
    ck_assert_uint_eq(gr_purgatory_expire(P, 100), 2);
    ck_assert_int_eq(done_log[4], 0);
    ck_assert_int_eq(done_log[5], 5);
    ck_assert(gr_purgatory_next_deadline(P) == GR_PURGATORY_NO_DEADLINE);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(t[i].completions, 1);
    ck_assert_int_eq(t[0].cause, GR_DELAYED_EXPIRED);
    ck_assert_int_eq(t[2].cause, GR_DELAYED_COMPLETED);
}
END_TEST

START_TEST(test_cancel)
{
    top a, b;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    uint64_t keys[] = {1, 2};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, keys, 2, 10, 0), GR_PURGATORY_WATCHING);
    ck_assert_int_eq(gr_purgatory_watch(P, &b.op, keys, 1, 20, 0), GR_PURGATORY_WATCHING);
    ck_assert(gr_purgatory_cancel(P, &a.op));
    ck_assert(!gr_delayed_op_pending(&a.op));
    ck_assert(!gr_purgatory_cancel(P, &a.op)); /* not pending any more */
    ck_assert_uint_eq(gr_purgatory_watched(P), 1);
    ck_assert_uint_eq(gr_purgatory_keys(P), 1);
    ck_assert_int_eq(gr_purgatory_next_deadline(P), 20);
    a.ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 1), 0);
    ck_assert_uint_eq(gr_purgatory_check(P, 2, 1), 0);
    ck_assert_uint_eq(gr_purgatory_expire(P, 15), 0);
    ck_assert_int_eq(a.tries, 1);
    ck_assert_int_eq(a.completions, 0);

    /* A cancelled op can be watched again; a pending op is not another purgatory's. */
    a.ready = false;
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, keys, 2, 30, 0), GR_PURGATORY_WATCHING);
    gr_purgatory *q = gr_purgatory_new();
    ck_assert_ptr_nonnull(q);
    ck_assert(!gr_purgatory_cancel(q, &a.op));
    gr_purgatory_free(q);
    a.ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, 2, 1), 1);
    ck_assert_int_eq(a.completions, 1);
    gr_purgatory_stats st;
    gr_purgatory_get_stats(P, &st);
    ck_assert_uint_eq(st.cancelled, 1);
    ck_assert_uint_eq(st.completed, 1);
    ck_assert_uint_eq(st.watched, 1);
    ck_assert(gr_purgatory_cancel(P, &b.op)); /* b lives on this stack */
}
END_TEST

START_TEST(test_duplicate_keys_count_once)
{
    top a;
    top_init(&a, 1, false);
    uint64_t keys[] = {5, 6, 5, 5, 6, 0, UINT64_MAX};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, keys, 7, 10, 0), GR_PURGATORY_WATCHING);
    gr_purgatory_stats st;
    gr_purgatory_get_stats(P, &st);
    ck_assert_uint_eq(st.keys, 4);
    ck_assert_uint_eq(st.watches, 4);
    ck_assert_uint_eq(gr_purgatory_check(P, 5, 1), 0);
    ck_assert_int_eq(a.tries, 2);
    ck_assert_uint_eq(gr_purgatory_check(P, UINT64_MAX, 1), 0);
    ck_assert_int_eq(a.tries, 3);
    a.ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, 0, 1), 1);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
}
END_TEST

START_TEST(test_no_keys_waits_for_deadline)
{
    top a;
    top_init(&a, 1, false);
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, NULL, 0, 10, 0), GR_PURGATORY_WATCHING);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
    ck_assert_uint_eq(gr_purgatory_expire(P, 10), 1);
    ck_assert_int_eq(a.cause, GR_DELAYED_EXPIRED);
}
END_TEST

/* ---- re-entrancy ---- */

static top *R[8];

/* a's try_complete checks key 2 (b's) and then its own other key 3: b
 * completes from inside a's question; a, being asked, is skipped by the
 * nested check on its own key, so it is never asked twice at once. */
static void try_checks_others(top *t)
{
    (void)t;
    ck_assert_uint_eq(gr_purgatory_check(P, 2, 1), 1);
    ck_assert_uint_eq(gr_purgatory_check(P, 3, 1), 0);
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 1), 0); /* the key being walked */
}

START_TEST(test_reentrant_check_from_try)
{
    top a, b;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    R[0] = &a;
    uint64_t ka[] = {1, 3};
    uint64_t kb[] = {2};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, ka, 2, 10, 0), GR_PURGATORY_WATCHING);
    ck_assert_int_eq(gr_purgatory_watch(P, &b.op, kb, 1, 10, 0), GR_PURGATORY_WATCHING);
    a.on_try = try_checks_others;
    a.ready = true;
    b.ready = true;
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 1), 1);
    ck_assert_int_eq(a.tries, 2);
    ck_assert_int_eq(a.completions, 1);
    ck_assert_int_eq(b.completions, 1);
    ck_assert_int_eq(done_log[0], 2); /* b first: it completed inside a's question */
    ck_assert_int_eq(done_log[1], 1);
    ck_assert_uint_eq(gr_purgatory_watched(P), 0);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
}
END_TEST

/* Completing an op frees it and the op after it in the same list, cancels
 * one, and watches a new op on the same key: the walk goes on safely, the
 * cancelled op is not asked, and the new op is not visited by this check. */
static void done_reshapes_list(top *t)
{
    (void)t;
    ck_assert(gr_purgatory_cancel(P, &R[1]->op));
    free(R[1]);
    ck_assert(gr_purgatory_cancel(P, &R[2]->op));
    top *n = malloc(sizeof *n);
    ck_assert_ptr_nonnull(n);
    top_init(n, 9, false);
    n->free_on_done = true;
    R[4] = n;
    uint64_t k = 1;
    ck_assert_int_eq(gr_purgatory_watch(P, &n->op, &k, 1, 50, 2), GR_PURGATORY_WATCHING);
    n->ready = true; /* ready now, but this check must not visit it */
}

START_TEST(test_reentrant_from_on_complete)
{
    uint64_t k = 1;
    for (int i = 0; i < 4; i++) {
        R[i] = malloc(sizeof(top));
        ck_assert_ptr_nonnull(R[i]);
        top_init(R[i], i, false);
        ck_assert_int_eq(gr_purgatory_watch(P, &R[i]->op, &k, 1, 50, 0), GR_PURGATORY_WATCHING);
    }
    R[0]->ready = true;
    R[0]->on_done = done_reshapes_list;
    R[0]->free_on_done = true;
    R[3]->ready = true;
    R[3]->free_on_done = true;
    top *r2 = R[2];
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 2), 2); /* R0 and R3 */
    ck_assert_uint_eq(done_n, 2);
    ck_assert_int_eq(done_log[0], 0);
    ck_assert_int_eq(done_log[1], 3);
    ck_assert_int_eq(r2->tries, 1); /* only at watch time */
    ck_assert_int_eq(r2->completions, 0);
    free(r2);
    ck_assert_uint_eq(gr_purgatory_watched(P), 1);
    ck_assert_uint_eq(gr_purgatory_check(P, 1, 3), 1); /* the op watched meanwhile */
    ck_assert_int_eq(done_log[2], 9);
    ck_assert_uint_eq(gr_purgatory_keys(P), 0);
}
END_TEST

static void try_expires(top *t)
{
    (void)t;
    gr_purgatory_expire(P, 100);
}

/* The two tests below expect an assertion to abort the (forked) test: its
 * message would read like a failure in the run's output, so it is muted. */
static void mute_stderr(void)
{
    if (!freopen("/dev/null", "w", stderr))
        return;
}

START_TEST(test_expire_from_callback_aborts)
{
    mute_stderr();
    top a;
    top_init(&a, 1, false);
    uint64_t k = 1;
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, &k, 1, 10, 0), GR_PURGATORY_WATCHING);
    a.on_try = try_expires;
    gr_purgatory_check(P, 1, 1);
}
END_TEST

static void try_cancels_self(top *t)
{
    gr_purgatory_cancel(P, &t->op);
}

START_TEST(test_cancel_self_from_try_aborts)
{
    mute_stderr();
    top a;
    top_init(&a, 1, false);
    uint64_t k = 1;
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, &k, 1, 10, 0), GR_PURGATORY_WATCHING);
    a.on_try = try_cancels_self;
    gr_purgatory_check(P, 1, 1);
}
END_TEST

START_TEST(test_free_forgets_pending)
{
    top a;
    top_init(&a, 1, false);
    uint64_t keys[] = {1, 2, 3};
    ck_assert_int_eq(gr_purgatory_watch(P, &a.op, keys, 3, 10, 0), GR_PURGATORY_WATCHING);
    gr_purgatory_free(P);
    P = NULL;
    ck_assert(!gr_delayed_op_pending(&a.op));
    ck_assert_int_eq(a.completions, 0);
}
END_TEST

START_TEST(test_key_helper)
{
    gr_uuid id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(i * 37 + 11);
    gr_uuid other = id;
    other.b[15] ^= 1;
    /* Partitions of one topic never share a key. */
    uint64_t seen[256];
    for (int p = 0; p < 256; p++) {
        seen[p] = gr_purgatory_key(&id, p);
        for (int q = 0; q < p; q++)
            ck_assert(seen[q] != seen[p]);
        ck_assert(gr_purgatory_key(&other, p) != seen[p]);
    }
    ck_assert(gr_purgatory_key(&id, 3) == gr_purgatory_key(&id, 3));
}
END_TEST

/* ---- randomised run against a model ---- */

/* Check records every passing ck_assert, which would dominate this test's
 * run time; MUST only reports failures. */
#define MUST(c)                                                                   \
    do {                                                                          \
        if (!(c))                                                                 \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);                    \
    } while (0)

#define M_OPS 100000
#define M_KEYS 1000
#define M_MAXK 8

enum { M_UNBORN, M_LIVE, M_DONE, M_CANCELLED };

typedef struct {
    gr_delayed_op op;
    int id;
    int nk;                 /* distinct keys */
    int kidx[M_MAXK];
    uint32_t base[M_MAXK];  /* event counts on its keys when watched */
    uint32_t need;          /* events on its keys needed to complete */
    int64_t deadline;
    int state;              /* the model's view */
    int calls;              /* on_complete calls */
    gr_delayed_cause cause;
} mop;

typedef struct {
    int id;
    int cause;
} mlog;

static mop *mops;
static uint32_t ver[M_KEYS];
static uint64_t mkey[M_KEYS];
static mlog *real_log, *model_log;
static size_t real_n, model_n;
static int *live;           /* ids the model holds pending (unordered) */
static size_t nlive;
static int *kv[M_KEYS];     /* per key: ids watched on it, in watch order (lazily pruned) */
static size_t kn[M_KEYS], kcap[M_KEYS];
static long m_tries;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static mop *mof(gr_delayed_op *op)
{
    return (mop *)((char *)op - offsetof(mop, op));
}

static bool m_ready(const mop *m)
{
    uint32_t got = 0;
    for (int i = 0; i < m->nk; i++)
        got += ver[m->kidx[i]] - m->base[i];
    return got >= m->need;
}

static bool m_try(gr_delayed_op *op, int64_t now)
{
    (void)now;
    mop *m = mof(op);
    MUST(m->state == M_LIVE);
    m_tries++;
    return m_ready(m);
}

static void m_done(gr_delayed_op *op, int64_t now, gr_delayed_cause cause)
{
    mop *m = mof(op);
    MUST(m->state == M_LIVE);
    MUST(m->calls == 0);
    m->calls++;
    m->cause = cause;
    if (cause == GR_DELAYED_EXPIRED)
        MUST(m->deadline <= now);
    real_log[real_n++] = (mlog){m->id, cause};
}

static void m_expect(mop *m, int cause)
{
    m->state = cause == GR_DELAYED_EXPIRED || cause == GR_DELAYED_COMPLETED ? M_DONE : M_CANCELLED;
    model_log[model_n++] = (mlog){m->id, cause};
}

static void kv_add(int k, int id)
{
    if (kn[k] == kcap[k]) {
        kcap[k] = kcap[k] ? kcap[k] * 2 : 8;
        kv[k] = realloc(kv[k], kcap[k] * sizeof *kv[k]);
        MUST(kv[k] != NULL);
    }
    kv[k][kn[k]++] = id;
}

static void live_remove(size_t i)
{
    live[i] = live[--nlive];
}

static int by_deadline_id(const void *a, const void *b)
{
    const mop *x = &mops[*(const int *)a], *y = &mops[*(const int *)b];
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->id - y->id;
}

static void compare_logs(void)
{
    MUST(real_n == model_n);
    for (size_t i = 0; i < real_n; i++) {
        MUST(real_log[i].id == model_log[i].id);
        MUST(real_log[i].cause == model_log[i].cause);
    }
    real_n = model_n = 0;
}

static void compare_state(void)
{
    static int per_key[M_KEYS];
    memset(per_key, 0, sizeof per_key);
    size_t keys = 0, watches = 0;
    int64_t next = GR_PURGATORY_NO_DEADLINE;
    for (size_t i = 0; i < nlive; i++) {
        mop *m = &mops[live[i]];
        if (m->deadline < next)
            next = m->deadline;
        for (int k = 0; k < m->nk; k++) {
            watches++;
            if (per_key[m->kidx[k]]++ == 0)
                keys++;
        }
    }
    gr_purgatory_stats st;
    gr_purgatory_get_stats(P, &st);
    MUST(st.watched == nlive);
    MUST(st.keys == keys);
    MUST(st.watches == watches);
    MUST(gr_purgatory_next_deadline(P) == next);
}

START_TEST(test_random_against_model)
{
    mops = calloc(M_OPS, sizeof *mops);
    real_log = calloc(M_OPS, sizeof *real_log);
    model_log = calloc(M_OPS, sizeof *model_log);
    live = calloc(M_OPS, sizeof *live);
    int *pick = calloc(M_OPS, sizeof *pick);
    MUST(mops && real_log && model_log && live && pick);
    memset(ver, 0, sizeof ver);
    for (int k = 0; k < M_KEYS; k++)
        mkey[k] = rnd();
    mkey[0] = 0;
    mkey[1] = UINT64_MAX;
    real_n = model_n = nlive = 0;

    int64_t now = 0;
    int next_id = 0;
    long steps = 0, by_check = 0, by_expiry = 0, at_watch = 0, cancels = 0;
    while (next_id < M_OPS) {
        uint64_t r = rnd() % 100;
        if (r < 45) {
            /* watch */
            mop *m = &mops[next_id];
            m->id = next_id++;
            gr_delayed_op_init(&m->op, m_try, m_done);
            uint64_t keys[M_MAXK];
            size_t n = 1 + rnd() % M_MAXK;
            m->nk = 0;
            for (size_t i = 0; i < n; i++) {
                int k = (int)(rnd() % M_KEYS);
                if (rnd() % 8 == 0 && i > 0)
                    k = m->kidx[0]; /* some repeated keys */
                keys[i] = mkey[k];
                bool dup = false;
                for (int j = 0; j < m->nk; j++)
                    dup |= m->kidx[j] == k;
                if (!dup) {
                    m->base[m->nk] = ver[k];
                    m->kidx[m->nk++] = k;
                }
            }
            uint64_t w = rnd() % 10;
            m->need = w == 0 ? 0 : w < 7 ? (uint32_t)(1 + rnd() % 3) : 1000000;
            m->deadline = now + 1 + (int64_t)(rnd() % 2000);
            m->state = M_LIVE;
            int rc = gr_purgatory_watch(P, &m->op, keys, n, m->deadline, now);
            if (m->need == 0) {
                MUST(rc == GR_PURGATORY_DONE);
                m_expect(m, GR_DELAYED_COMPLETED);
                at_watch++;
            } else {
                MUST(rc == GR_PURGATORY_WATCHING);
                live[nlive++] = m->id;
                for (int j = 0; j < m->nk; j++)
                    kv_add(m->kidx[j], m->id);
            }
        } else if (r < 85) {
            /* an event on one key */
            int k = (int)(rnd() % M_KEYS);
            ver[k]++;
            m_tries = 0;
            size_t got = gr_purgatory_check(P, mkey[k], now);
            size_t np = 0;
            for (size_t i = 0; i < kn[k]; i++)
                if (mops[kv[k][i]].state == M_LIVE)
                    pick[np++] = kv[k][i];
            if (np > 0) /* already in watch order */
                memcpy(kv[k], pick, np * sizeof *pick);
            kn[k] = np;
            MUST(m_tries == (long)np); /* exactly its watchers, once each */
            size_t want = 0;
            for (size_t i = 0; i < np; i++)
                if (m_ready(&mops[pick[i]])) {
                    m_expect(&mops[pick[i]], GR_DELAYED_COMPLETED);
                    want++;
                }
            for (size_t i = 0; want > 0 && i < nlive;)
                if (mops[live[i]].state != M_LIVE)
                    live_remove(i);
                else
                    i++;
            MUST(got == want);
            by_check += (long)want;
        } else if (r < 90) {
            /* the owner gives up on a random op, pending or not */
            if (next_id > 0) {
                int id = nlive > 0 && rnd() % 2 ? live[rnd() % nlive] : (int)(rnd() % (uint64_t)next_id);
                mop *m = &mops[id];
                bool was = m->state == M_LIVE;
                MUST(gr_purgatory_cancel(P, &m->op) == was);
                if (was) {
                    m->state = M_CANCELLED;
                    for (size_t i = 0; i < nlive; i++)
                        if (live[i] == m->id) {
                            live_remove(i);
                            break;
                        }
                    cancels++;
                }
            }
        } else {
            /* time passes */
            now += (int64_t)(rnd() % 20);
            size_t got = gr_purgatory_expire(P, now);
            size_t np = 0;
            for (size_t i = 0; i < nlive;)
                if (mops[live[i]].deadline <= now) {
                    pick[np++] = live[i];
                    live_remove(i);
                } else {
                    i++;
                }
            qsort(pick, np, sizeof *pick, by_deadline_id);
            for (size_t i = 0; i < np; i++)
                m_expect(&mops[pick[i]], GR_DELAYED_EXPIRED);
            MUST(got == np);
            by_expiry += (long)np;
        }
        compare_logs();
        if (++steps % 997 == 0)
            compare_state();
    }
    compare_state();
    /* Drain: everything left expires, earliest first. */
    size_t left = nlive;
    qsort(live, nlive, sizeof *live, by_deadline_id);
    MUST(gr_purgatory_expire(P, INT64_MAX) == left);
    for (size_t i = 0; i < nlive; i++)
        m_expect(&mops[live[i]], GR_DELAYED_EXPIRED);
    by_expiry += (long)left;
    nlive = 0;
    compare_logs();
    compare_state();
    MUST(gr_purgatory_keys(P) == 0);

    gr_purgatory_stats st;
    gr_purgatory_get_stats(P, &st);
    MUST(st.completed == (uint64_t)(at_watch + by_check));
    MUST(st.expired == (uint64_t)by_expiry);
    MUST(st.cancelled == (uint64_t)cancels);
    for (int i = 0; i < M_OPS; i++) {
        mop *m = &mops[i];
        MUST(m->calls == (m->state == M_CANCELLED ? 0 : 1));
        MUST(!gr_delayed_op_pending(&m->op));
    }
    /* Every cause actually happened, in quantity. */
    MUST(at_watch > 1000);
    MUST(by_check > 1000);
    MUST(by_expiry > 1000);
    MUST(cancels > 1000);
    for (int k = 0; k < M_KEYS; k++) {
        free(kv[k]);
        kv[k] = NULL;
        kn[k] = kcap[k] = 0;
    }
    free(pick);
    free(live);
    free(model_log);
    free(real_log);
    free(mops);
}
END_TEST

Suite *purgatory_suite(void)
{
    Suite *s = suite_create("purgatory");
    TCase *tc = tcase_create("purgatory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_complete_at_watch);
    tcase_add_test(tc, test_check_completes_once_across_keys);
    tcase_add_test(tc, test_expire_order_and_next_deadline);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_duplicate_keys_count_once);
    tcase_add_test(tc, test_no_keys_waits_for_deadline);
    tcase_add_test(tc, test_reentrant_check_from_try);
    tcase_add_test(tc, test_reentrant_from_on_complete);
    tcase_add_test_raise_signal(tc, test_expire_from_callback_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_cancel_self_from_try_aborts, SIGABRT);
    tcase_add_test(tc, test_free_forgets_pending);
    tcase_add_test(tc, test_key_helper);
    tcase_add_test(tc, test_random_against_model);
    suite_add_tcase(s, tc);
    return s;
}
