/*
 * test_raft.c - common/raft: targeted scenarios of the Raft core, driven by
 * hand over in-memory logs (tests/sim/memlog.h): elections, vote rules and
 * their persistence order, pre-vote, check-quorum, divergence, the high
 * watermark rules, observers and the snapshot path. The randomized
 * simulation (tests/sim) covers the interleavings.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/logging.h"
#include "common/raft.h"
#include "tests/sim/memlog.h"
#include "tests/unit/suites.h"

/* ---- a hand-driven cluster ---- */

#define MAXN 6
#define QCAP 4096

typedef struct {
    int id;
    gr_raft *r;
    memlog log;
    gr_raft_quorum_state qs; /* as persisted */
    int64_t hw;              /* from COMMIT effects */
    int installed;           /* SNAPSHOT_INSTALLED effects seen */
} unode;

typedef struct {
    int to;
    gr_raft_msg *m;
} qmsg;

typedef struct {
    int n; /* nodes 1..n */
    int nv;
    unode nodes[MAXN];
    qmsg q[QCAP];
    size_t qh, qt;
    int64_t now;
    bool cut[MAXN + 1][MAXN + 1]; /* cut[from][to] */
    bool autoflush;
    bool no_check_quorum;
} cluster;

static cluster C;

static gr_raft_config config_for(int id, int nv)
{
    gr_raft_config cfg;
    gr_raft_config_defaults(&cfg);
    cfg.node_id = id;
    for (int i = 0; i < nv; i++)
        cfg.voters[i] = i + 1;
    cfg.n_voters = (size_t)nv;
    cfg.seed = 1000u + (uint64_t)id;
    cfg.snapshot_chunk_bytes = 4;
    return cfg;
}

static unode *N(int id) { return &C.nodes[id - 1]; }

/* Carries out a node's effects: queue its messages, keep its persisted state. */
static void collect(unode *u)
{
    const gr_raft_effect *e;
    size_t n = gr_raft_effects(u->r, &e);
    for (size_t i = 0; i < n; i++) {
        switch (e[i].type) {
        case GR_RAFT_EFF_SEND:
            if (!C.cut[u->id][e[i].to]) {
                ck_assert_uint_lt(C.qt - C.qh, QCAP);
                gr_raft_msg *d = gr_raft_msg_dup(&e[i].msg);
                ck_assert_ptr_nonnull(d);
                C.q[C.qt++ % QCAP] = (qmsg){e[i].to, d};
            }
            break;
        case GR_RAFT_EFF_PERSIST: u->qs = e[i].state; break;
        case GR_RAFT_EFF_COMMIT:
            ck_assert_int_gt(e[i].high_watermark, u->hw);
            u->hw = e[i].high_watermark;
            break;
        case GR_RAFT_EFF_SNAPSHOT_INSTALLED: u->installed++; break;
        case GR_RAFT_EFF_ROLE: break;
        }
    }
    gr_raft_effects_clear(u->r);
}

static void flush_node(unode *u)
{
    if (u->log.durable_end < memlog_end(&u->log)) {
        memlog_flush(&u->log);
        ck_assert_int_eq(gr_raft_log_flushed(u->r, C.now, memlog_end(&u->log)), GR_RAFT_OK);
        collect(u);
    }
}

static void start_node(int id, gr_raft_snapshot_id snap)
{
    unode *u = N(id);
    gr_raft_config cfg = config_for(id, C.nv);
    cfg.check_quorum = !C.no_check_quorum;
    gr_raft_log_ops ops;
    memlog_ops(&u->log, &ops);
    u->r = gr_raft_create(&cfg, &ops, &u->qs, snap, C.now);
    ck_assert_ptr_nonnull(u->r);
    u->hw = gr_raft_high_watermark(u->r);
    collect(u);
}

static const gr_raft_snapshot_id NO_SNAP = {-1, -1};

/* n nodes, the first nv of them voters; logs empty (fill them before start). */
static void cluster_init(int n, int nv)
{
    gr_logging_set_level(getenv("RAFT_TEST_LOG") ? GR_LOGGING_INFO : GR_LOGGING_ERROR);
    memset(&C, 0, sizeof C);
    C.n = n;
    C.nv = nv;
    C.autoflush = true;
    for (int i = 1; i <= n; i++) {
        N(i)->id = i;
        memlog_init(&N(i)->log);
        N(i)->qs = (gr_raft_quorum_state){0, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    }
}

static void cluster_start(void)
{
    for (int i = 1; i <= C.n; i++)
        start_node(i, NO_SNAP);
}

static void cluster_free(void)
{
    while (C.qh < C.qt)
        gr_raft_msg_free(C.q[C.qh++ % QCAP].m);
    for (int i = 1; i <= C.n; i++) {
        gr_raft_destroy(N(i)->r);
        memlog_free(&N(i)->log);
    }
}

/* Delivers queued messages (and, with autoflush, flushes every log after
 * each step) until the network is quiet or max deliveries were made. */
static void pump_max(int max)
{
    for (int k = 0; k < max && C.qh < C.qt; k++) {
        qmsg q = C.q[C.qh++ % QCAP];
        if (!C.cut[q.m->from][q.to]) {
            unode *u = N(q.to);
            ck_assert_int_eq(gr_raft_receive(u->r, C.now, q.m), GR_RAFT_OK);
            collect(u);
        }
        gr_raft_msg_free(q.m);
        if (C.autoflush)
            for (int i = 1; i <= C.n; i++)
                flush_node(N(i));
    }
}

static void pump(void) { pump_max(100000); }

static void tick(int id, int64_t now)
{
    C.now = now;
    ck_assert_int_eq(gr_raft_tick(N(id)->r, now), GR_RAFT_OK);
    collect(N(id));
}

static void isolate(int id)
{
    for (int i = 1; i <= MAXN; i++)
        C.cut[id][i] = C.cut[i][id] = true;
}

/* Ticks node `id` past any election deadline and lets the election run. */
static void elect(int id, int64_t now)
{
    tick(id, now);
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(id)->r), GR_RAFT_LEADER);
}

/* Removes and returns the first queued message of a type to a node. */
static gr_raft_msg *take(int to, gr_raft_msg_type type)
{
    for (size_t i = C.qh; i < C.qt; i++) {
        qmsg *q = &C.q[i % QCAP];
        if (q->m && q->to == to && q->m->type == type) {
            gr_raft_msg *m = q->m;
            /* close the gap */
            for (size_t j = i; j > C.qh; j--)
                C.q[j % QCAP] = C.q[(j - 1) % QCAP];
            C.qh++;
            return m;
        }
    }
    return NULL;
}

static size_t queued(int to, gr_raft_msg_type type)
{
    size_t n = 0;
    for (size_t i = C.qh; i < C.qt; i++)
        n += C.q[i % QCAP].to == to && C.q[i % QCAP].m->type == type;
    return n;
}

static void drop_queue(void)
{
    while (C.qh < C.qt)
        gr_raft_msg_free(C.q[C.qh++ % QCAP].m);
}

static void append_epochs(int id, const int32_t *epochs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)i;
        ck_assert_int_eq(memlog_append_raw(&N(id)->log, epochs[i], &b, 1), 0);
    }
    memlog_flush(&N(id)->log);
}

/* ---- tests ---- */

START_TEST(test_single_node_elects_itself_and_commits)
{
    cluster_init(1, 1);
    cluster_start();
    unode *u = N(1);
    ck_assert_int_eq(gr_raft_get_role(u->r), GR_RAFT_UNATTACHED);
    tick(1, 500); /* before any election timeout */
    ck_assert_int_eq(gr_raft_get_role(u->r), GR_RAFT_UNATTACHED);
    tick(1, 2000);
    ck_assert_int_eq(gr_raft_get_role(u->r), GR_RAFT_LEADER);
    ck_assert_int_eq(gr_raft_epoch(u->r), 1);
    ck_assert_int_eq(u->qs.epoch, 1);
    ck_assert_int_eq(u->qs.voted_for, 1);
    ck_assert_int_eq(u->qs.leader_id, 1);
    /* The LeaderChange entry opens the epoch; it commits once flushed. */
    ck_assert_int_eq(memlog_end(&u->log), 1);
    ck_assert_int_eq(memlog_at(&u->log, 0)->type, GR_RAFT_ENTRY_LEADER_CHANGE);
    ck_assert_int_eq(u->hw, 0);
    flush_node(u);
    ck_assert_int_eq(u->hw, 1);

    gr_raft_entry es[2] = {{.len = 3, .data = (const uint8_t *)"abc"},
                           {.len = 2, .data = (const uint8_t *)"de"}};
    int64_t first = -1;
    ck_assert_int_eq(gr_raft_propose(u->r, 2001, es, 2, &first), GR_RAFT_OK);
    collect(u);
    ck_assert_int_eq(first, 1);
    ck_assert_int_eq(memlog_at(&u->log, 2)->epoch, 1);
    ck_assert_int_eq(u->hw, 1); /* not durable yet */
    flush_node(u);
    ck_assert_int_eq(u->hw, 3);
    ck_assert_int_eq(gr_raft_high_watermark(u->r), 3);
    cluster_free();
}
END_TEST

START_TEST(test_three_node_election)
{
    cluster_init(3, 3);
    cluster_start();
    tick(2, 1999); /* any election timeout is in [1000, 2000) */
    ck_assert_int_eq(gr_raft_get_role(N(2)->r), GR_RAFT_PROSPECTIVE);
    ck_assert_int_eq(gr_raft_epoch(N(2)->r), 0);
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(2)->r), GR_RAFT_LEADER);
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(gr_raft_epoch(N(i)->r), 1);
        ck_assert_int_eq(gr_raft_leader(N(i)->r), 2);
        ck_assert_int_eq(N(i)->qs.epoch, 1);
    }
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_FOLLOWER);
    ck_assert_int_eq(gr_raft_get_role(N(3)->r), GR_RAFT_FOLLOWER);
    /* The followers fetched the LeaderChange entry and learned it committed. */
    ck_assert_int_eq(N(2)->hw, 1);
    ck_assert_int_eq(memlog_end(&N(1)->log), 1);
    ck_assert_int_eq(memlog_end(&N(3)->log), 1);

    gr_raft_entry e = {.len = 1, .data = (const uint8_t *)"x"};
    int64_t off;
    ck_assert_int_eq(gr_raft_propose(N(1)->r, C.now, &e, 1, &off), GR_RAFT_ERR_NOT_LEADER);
    ck_assert_int_eq(gr_raft_propose(N(2)->r, C.now, &e, 1, &off), GR_RAFT_OK);
    collect(N(2));
    ck_assert_int_eq(off, 1);
    pump();
    ck_assert_int_eq(N(2)->hw, 2);
    ck_assert_int_eq(N(1)->hw, 2);
    ck_assert_int_eq(N(3)->hw, 2);
    cluster_free();
}
END_TEST

static gr_raft_msg vote_req(int from, int32_t epoch, int32_t last_epoch, int64_t last_offset,
                            bool pre)
{
    gr_raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = GR_RAFT_MSG_VOTE_REQ;
    m.from = from;
    m.epoch = epoch;
    m.leader_id = GR_RAFT_NO_NODE;
    m.pre_vote = pre;
    m.last_epoch = last_epoch;
    m.last_offset = last_offset;
    return m;
}

START_TEST(test_vote_refused_for_stale_log)
{
    cluster_init(3, 3);
    static const int32_t ep[] = {1, 1, 2};
    append_epochs(2, ep, 3);
    N(2)->qs = (gr_raft_quorum_state){2, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    cluster_start();
    unode *u = N(2);
    /* Shorter log in the same last epoch: refused. */
    gr_raft_msg m = vote_req(1, 3, 2, 2, false);
    ck_assert_int_eq(gr_raft_receive(u->r, 0, &m), GR_RAFT_OK);
    gr_raft_msg *resp = NULL;
    collect(u);
    resp = take(1, GR_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(resp);
    ck_assert(!resp->granted);
    ck_assert_int_eq(resp->epoch, 3); /* it did move to the candidate's epoch */
    gr_raft_msg_free(resp);
    ck_assert_int_eq(u->qs.epoch, 3);
    ck_assert_int_eq(u->qs.voted_for, GR_RAFT_NO_NODE);
    /* Older last epoch, longer log: refused too. */
    m = vote_req(1, 3, 1, 10, false);
    ck_assert_int_eq(gr_raft_receive(u->r, 0, &m), GR_RAFT_OK);
    collect(u);
    resp = take(1, GR_RAFT_MSG_VOTE_RESP);
    ck_assert(!resp->granted);
    gr_raft_msg_free(resp);
    /* As up to date: granted, once per epoch. */
    m = vote_req(3, 3, 2, 3, false);
    ck_assert_int_eq(gr_raft_receive(u->r, 0, &m), GR_RAFT_OK);
    collect(u);
    resp = take(3, GR_RAFT_MSG_VOTE_RESP);
    ck_assert(resp->granted);
    gr_raft_msg_free(resp);
    ck_assert_int_eq(u->qs.voted_for, 3);
    m = vote_req(1, 3, 5, 9, false); /* better log, but we voted in epoch 3 */
    ck_assert_int_eq(gr_raft_receive(u->r, 0, &m), GR_RAFT_OK);
    collect(u);
    resp = take(1, GR_RAFT_MSG_VOTE_RESP);
    ck_assert(!resp->granted);
    gr_raft_msg_free(resp);
    ck_assert_int_eq(u->qs.voted_for, 3);
    cluster_free();
}
END_TEST

START_TEST(test_vote_persisted_before_granted)
{
    cluster_init(3, 3);
    cluster_start();
    unode *u = N(3);
    gr_raft_msg m = vote_req(1, 1, 0, 0, false);
    ck_assert_int_eq(gr_raft_receive(u->r, 0, &m), GR_RAFT_OK);
    const gr_raft_effect *e;
    size_t n = gr_raft_effects(u->r, &e);
    long persist_at = -1, grant_at = -1;
    for (size_t i = 0; i < n; i++) {
        if (e[i].type == GR_RAFT_EFF_PERSIST && e[i].state.voted_for == 1 && e[i].state.epoch == 1)
            persist_at = (long)i;
        if (e[i].type == GR_RAFT_EFF_SEND && e[i].msg.type == GR_RAFT_MSG_VOTE_RESP &&
            e[i].msg.granted && e[i].to == 1)
            grant_at = (long)i;
    }
    ck_assert_int_ge(persist_at, 0);
    ck_assert_int_ge(grant_at, 0);
    ck_assert_int_lt(persist_at, grant_at);
    collect(u);
    cluster_free();

    /* A candidate persists its own vote before asking. */
    cluster_init(3, 3);
    cluster_start();
    tick(1, 1999);
    /* Pre-votes granted by both. */
    pump_max(2);
    gr_raft_msg *g = take(1, GR_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(g);
    ck_assert(g->pre_vote && g->granted);
    ck_assert_int_eq(gr_raft_receive(N(1)->r, C.now, g), GR_RAFT_OK);
    gr_raft_msg_free(g);
    n = gr_raft_effects(N(1)->r, &e);
    long self_vote = -1, first_req = -1;
    for (size_t i = 0; i < n; i++) {
        if (e[i].type == GR_RAFT_EFF_PERSIST && e[i].state.voted_for == 1 && self_vote < 0)
            self_vote = (long)i;
        if (e[i].type == GR_RAFT_EFF_SEND && e[i].msg.type == GR_RAFT_MSG_VOTE_REQ &&
            !e[i].msg.pre_vote && first_req < 0)
            first_req = (long)i;
    }
    ck_assert_int_ge(self_vote, 0);
    ck_assert_int_gt(first_req, self_vote);
    collect(N(1));
    cluster_free();
}
END_TEST

START_TEST(test_pre_vote_does_not_bump_epochs)
{
    cluster_init(3, 3);
    cluster_start();
    elect(1, 1999);
    ck_assert_int_eq(gr_raft_epoch(N(1)->r), 1);
    /* Node 3 is cut off; its elections never get past pre-vote. */
    isolate(3);
    for (int64_t t = 2000; t < 30000; t += 250) {
        tick(3, t);
        tick(1, t);
        tick(2, t);
        pump();
        if (t % 1000 == 0) /* node 2 keeps fetching, so the leader stays */
            ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    }
    ck_assert_int_eq(gr_raft_epoch(N(3)->r), 1);
    ck_assert_int_eq(N(3)->qs.epoch, 1);
    /* Healed: its pre-vote is refused (node 2 has a live leader) and the
     * leader's epoch survives; node 3 goes back to following. */
    memset(C.cut, 0, sizeof C.cut);
    for (int64_t t = 30000; t < 36000; t += 100) {
        tick(3, t);
        tick(1, t);
        tick(2, t);
        pump();
    }
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(gr_raft_epoch(N(i)->r), 1);
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    ck_assert_int_eq(gr_raft_get_role(N(3)->r), GR_RAFT_FOLLOWER);
    ck_assert_int_eq(gr_raft_leader(N(3)->r), 1);

    /* A follower refuses a pre-vote while its leader is alive. */
    gr_raft_msg m = vote_req(3, 1, 9, 99, true);
    ck_assert_int_eq(gr_raft_receive(N(2)->r, C.now, &m), GR_RAFT_OK);
    collect(N(2));
    gr_raft_msg *resp = take(3, GR_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(resp);
    ck_assert(resp->pre_vote && !resp->granted);
    ck_assert_int_eq(resp->leader_id, 1);
    gr_raft_msg_free(resp);
    ck_assert_int_eq(N(2)->qs.epoch, 1);
    cluster_free();
}
END_TEST

START_TEST(test_check_quorum_resignation)
{
    cluster_init(3, 3);
    cluster_start();
    elect(1, 1999);
    /* One follower left: still a majority with the leader. */
    isolate(3);
    for (int64_t t = 2000; t <= 8000; t += 100) {
        tick(1, t);
        tick(2, t);
        pump();
    }
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    /* Both gone: the leader resigns within the fetch timeout. */
    isolate(1);
    C.cut[1][2] = C.cut[1][3] = false; /* only its EndQuorumEpoch gets out */
    int64_t t = 8100;
    for (; t <= 8100 + 2100 && gr_raft_get_role(N(1)->r) == GR_RAFT_LEADER; t += 50)
        tick(1, t);
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_RESIGNED);
    ck_assert_int_le(t, 8100 + 2050);
    ck_assert_uint_eq(queued(2, GR_RAFT_MSG_END_EPOCH_REQ), 1);
    ck_assert_uint_eq(queued(3, GR_RAFT_MSG_END_EPOCH_REQ), 1);
    gr_raft_entry e = {.len = 1, .data = (const uint8_t *)"x"};
    ck_assert_int_eq(gr_raft_propose(N(1)->r, t, &e, 1, NULL), GR_RAFT_ERR_NOT_LEADER);
    /* The follower that hears it stands for election without waiting out
     * its fetch timeout, and a new leader is elected in the next epoch. */
    memset(C.cut, 0, sizeof C.cut);
    pump();
    int leader = 0;
    for (int64_t u = t; u < t + 6000 && !leader; u += 50) {
        for (int i = 1; i <= 3; i++)
            tick(i, u);
        pump();
        for (int i = 1; i <= 3; i++)
            if (gr_raft_get_role(N(i)->r) == GR_RAFT_LEADER)
                leader = i;
    }
    ck_assert_int_ne(leader, 0);
    ck_assert_int_ge(gr_raft_epoch(N(leader)->r), 2);
    cluster_free();
}
END_TEST

START_TEST(test_divergence_truncation_via_fetch)
{
    /* Node 1 has [e1 e1]; node 2 has [e1 e1 e2 e2] from a leader of epoch 2
     * that never committed them. Node 1 wins epoch 3 (votes of 1 and 3). */
    cluster_init(3, 3);
    static const int32_t a[] = {1, 1};
    static const int32_t b[] = {1, 1, 2, 2};
    append_epochs(1, a, 2);
    append_epochs(2, b, 4);
    N(1)->qs = (gr_raft_quorum_state){2, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    N(2)->qs = (gr_raft_quorum_state){2, 2, 2};
    N(3)->qs = (gr_raft_quorum_state){2, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    cluster_start();
    isolate(2);
    tick(1, 1999);
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    ck_assert_int_eq(gr_raft_epoch(N(1)->r), 3);
    ck_assert_int_eq(memlog_end(&N(1)->log), 3); /* [e1 e1 e3] */

    /* The leader answers node 2's fetch (offset 4, epoch 2) with epoch 1
     * ending at 2. */
    gr_raft_msg f;
    memset(&f, 0, sizeof f);
    f.type = GR_RAFT_MSG_FETCH_REQ;
    f.from = 2;
    f.epoch = 3;
    f.leader_id = 1;
    f.corr = 77;
    f.fetch_offset = 4;
    f.last_fetched_epoch = 2;
    memset(C.cut, 0, sizeof C.cut);
    ck_assert_int_eq(gr_raft_receive(N(1)->r, C.now, &f), GR_RAFT_OK);
    collect(N(1));
    gr_raft_msg *r = take(2, GR_RAFT_MSG_FETCH_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->error, GR_RAFT_E_NONE);
    ck_assert_int_eq(r->corr, 77);
    ck_assert_int_eq(r->diverging_epoch, 1);
    ck_assert_int_eq(r->diverging_end_offset, 2);
    ck_assert_uint_eq(r->n_entries, 0);
    gr_raft_msg_free(r);
    /* Same answer for an offset inside the leader's log. */
    f.fetch_offset = 3;
    ck_assert_int_eq(gr_raft_receive(N(1)->r, C.now, &f), GR_RAFT_OK);
    collect(N(1));
    r = take(2, GR_RAFT_MSG_FETCH_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->diverging_epoch, 1);
    ck_assert_int_eq(r->diverging_end_offset, 2);
    ck_assert_uint_eq(r->n_entries, 0);
    gr_raft_msg_free(r);
    gr_raft_replica_info rows[3]; /* a diverging fetch acknowledges nothing */
    ck_assert_uint_eq(gr_raft_describe(N(1)->r, rows, 3), 3);
    ck_assert_int_eq(rows[1].node_id, 2);
    ck_assert_int_eq(rows[1].end_offset, -1);

    /* Node 2 learns of the leader, fetches, truncates and catches up. */
    drop_queue();
    for (int64_t t = 2000; t < 6000; t += 50) {
        for (int i = 1; i <= 3; i++)
            tick(i, t);
        pump();
    }
    ck_assert_int_eq(gr_raft_get_role(N(2)->r), GR_RAFT_FOLLOWER);
    ck_assert_int_eq(memlog_end(&N(2)->log), 3);
    ck_assert_int_eq(memlog_at(&N(2)->log, 2)->epoch, 3);
    ck_assert_int_eq(memlog_at(&N(2)->log, 1)->epoch, 1);
    ck_assert_int_eq(N(1)->hw, 3);
    ck_assert_int_eq(N(2)->hw, 3);
    cluster_free();
}
END_TEST

static gr_raft_msg fetch_req(int from, int32_t epoch, int64_t off, int32_t lfe, uint64_t corr)
{
    gr_raft_msg f;
    memset(&f, 0, sizeof f);
    f.type = GR_RAFT_MSG_FETCH_REQ;
    f.from = from;
    f.epoch = epoch;
    f.leader_id = 1;
    f.corr = corr;
    f.fetch_offset = off;
    f.last_fetched_epoch = lfe;
    return f;
}

START_TEST(test_hw_needs_majority_and_current_epoch)
{
    /* Node 1 holds [e1 e1] from epoch 1, not known to be committed. */
    cluster_init(3, 3);
    static const int32_t a[] = {1, 1};
    append_epochs(1, a, 2);
    N(1)->qs = (gr_raft_quorum_state){1, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    N(2)->qs = (gr_raft_quorum_state){1, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    N(3)->qs = (gr_raft_quorum_state){1, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    cluster_start();
    C.autoflush = false;
    tick(1, 1999);
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    drop_queue();
    unode *l = N(1);
    /* Node 2 has the epoch-1 entries (offset 2): on a majority, but not of
     * this epoch, so nothing commits (Raft 5.4.2). */
    gr_raft_msg f = fetch_req(2, 2, 2, 1, 1);
    ck_assert_int_eq(gr_raft_receive(l->r, C.now, &f), GR_RAFT_OK);
    collect(l);
    ck_assert_int_eq(l->hw, 0);
    drop_queue();
    /* The leader's LeaderChange (offset 2) is durable on the leader only. */
    flush_node(l);
    ck_assert_int_eq(l->hw, 0);
    /* Node 3 reports 3 as well: a majority holds an epoch-2 entry, and with
     * it everything before commits. */
    f = fetch_req(3, 2, 3, 2, 2);
    ck_assert_int_eq(gr_raft_receive(l->r, C.now, &f), GR_RAFT_OK);
    collect(l);
    ck_assert_int_eq(l->hw, 3);
    drop_queue();
    /* New entries: the leader alone does not commit them; one follower more does. */
    gr_raft_entry e[2] = {{.len = 1, .data = (const uint8_t *)"a"},
                          {.len = 1, .data = (const uint8_t *)"b"}};
    ck_assert_int_eq(gr_raft_propose(l->r, C.now, e, 2, NULL), GR_RAFT_OK);
    collect(l);
    flush_node(l);
    ck_assert_int_eq(l->hw, 3);
    f = fetch_req(2, 2, 4, 2, 3);
    ck_assert_int_eq(gr_raft_receive(l->r, C.now, &f), GR_RAFT_OK);
    collect(l);
    ck_assert_int_eq(l->hw, 4);
    /* A lower report never moves it back. */
    f = fetch_req(2, 2, 3, 2, 4);
    ck_assert_int_eq(gr_raft_receive(l->r, C.now, &f), GR_RAFT_OK);
    collect(l);
    ck_assert_int_eq(gr_raft_high_watermark(l->r), 4);
    cluster_free();
}
END_TEST

START_TEST(test_observer_fetches_without_affecting_hw)
{
    cluster_init(4, 3); /* node 4 is an observer */
    C.no_check_quorum = true; /* the leader must outlive its silent voters */
    cluster_start();
    ck_assert_int_eq(gr_raft_get_role(N(4)->r), GR_RAFT_OBSERVER);
    isolate(2);
    isolate(3);
    tick(1, 1999); /* node 1 cannot win alone */
    pump();
    ck_assert_int_ne(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    memset(C.cut, 0, sizeof C.cut);
    elect(1, 4000);
    drop_queue();
    /* Only the observer fetches from now on. */
    isolate(2);
    isolate(3);
    gr_raft_entry e = {.len = 1, .data = (const uint8_t *)"o"};
    ck_assert_int_eq(gr_raft_propose(N(1)->r, C.now, &e, 1, NULL), GR_RAFT_OK);
    collect(N(1));
    int64_t hw_before = N(1)->hw;
    /* The observer looks for the leader through the voters, then fetches. */
    for (int64_t t = 4000; t < 12000; t += 25) {
        tick(1, t);
        tick(4, t);
        pump();
    }
    ck_assert_int_eq(gr_raft_leader(N(4)->r), 1);
    ck_assert_int_eq(memlog_end(&N(4)->log), memlog_end(&N(1)->log));
    ck_assert_int_eq(N(1)->hw, hw_before);
    gr_raft_replica_info rows[8];
    size_t nrows = gr_raft_describe(N(1)->r, rows, 8);
    ck_assert_uint_eq(nrows, 4);
    ck_assert(!rows[3].voter);
    ck_assert_int_eq(rows[3].node_id, 4);
    ck_assert_int_eq(rows[3].end_offset, memlog_end(&N(1)->log));
    /* Node 2 comes back and fetches: now the entry commits, and the
     * observer learns the new high watermark. */
    C.cut[1][2] = C.cut[2][1] = false; /* node 3 stays away */
    for (int64_t t = 12000; t < 20000; t += 25) {
        tick(2, t);
        tick(4, t);
        tick(1, t);
        pump();
    }
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    ck_assert_int_eq(N(1)->hw, memlog_end(&N(1)->log));
    ck_assert_int_eq(N(4)->hw, N(1)->hw);
    ck_assert_int_eq(gr_raft_get_role(N(4)->r), GR_RAFT_OBSERVER);
    cluster_free();
}
END_TEST

START_TEST(test_snapshot_for_follower_behind_log_start)
{
    /* Node 1 has a snapshot of [0, 5) (epoch 1), and entries 5..6; the
     * others start empty. */
    cluster_init(3, 3);
    static const int32_t a[] = {1, 1, 1, 1, 1, 1, 1};
    append_epochs(1, a, 7);
    static const uint8_t content[] = "0123456789";
    ck_assert_int_eq(memlog_take_snapshot(&N(1)->log, 5, content, 10), 0);
    N(1)->qs = (gr_raft_quorum_state){1, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    start_node(1, N(1)->log.snap);
    start_node(2, NO_SNAP);
    start_node(3, NO_SNAP);
    ck_assert_int_eq(gr_raft_high_watermark(N(1)->r), 5);
    isolate(3);
    tick(1, 1999);
    /* Node 2 votes for node 1 (its log is longer), becomes follower, fetches
     * from 0, is told of snapshot 5/e1, pulls it in 4-byte chunks. */
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    unode *f = N(2);
    ck_assert_int_eq(f->installed, 1);
    ck_assert_int_eq(f->log.snap.end_offset, 5);
    ck_assert_int_eq(f->log.snap.epoch, 1);
    ck_assert_uint_eq(f->log.snap_len, 10);
    ck_assert_mem_eq(f->log.snap_data, content, 10);
    ck_assert_int_eq(f->log.start, 5);
    ck_assert_int_eq(gr_raft_latest_snapshot(f->r).end_offset, 5);
    /* ... then fetched the rest of the log from 5. */
    ck_assert_int_eq(memlog_end(&f->log), memlog_end(&N(1)->log));
    ck_assert_int_eq(f->hw, memlog_end(&N(1)->log));

    /* A chunk for another snapshot id is refused by the leader. */
    gr_raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = GR_RAFT_MSG_FETCH_SNAPSHOT_REQ;
    m.from = 2;
    m.epoch = gr_raft_epoch(N(1)->r);
    m.corr = 5;
    m.snapshot_id = (gr_raft_snapshot_id){4, 1};
    m.position = 0;
    ck_assert_int_eq(gr_raft_receive(N(1)->r, C.now, &m), GR_RAFT_OK);
    collect(N(1));
    gr_raft_msg *r = take(2, GR_RAFT_MSG_FETCH_SNAPSHOT_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->error, GR_RAFT_E_SNAPSHOT_NOT_FOUND);
    gr_raft_msg_free(r);
    cluster_free();
}
END_TEST

START_TEST(test_restart_keeps_vote_and_resigns_leadership)
{
    cluster_init(3, 3);
    /* Voted for 3 in epoch 4: after a restart it still may not vote for 2. */
    N(1)->qs = (gr_raft_quorum_state){4, 3, GR_RAFT_NO_NODE};
    /* Was the leader of epoch 4: restarts resigned, never leader of 4 again. */
    N(2)->qs = (gr_raft_quorum_state){4, 2, 2};
    cluster_start();
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_UNATTACHED);
    ck_assert_int_eq(gr_raft_get_role(N(2)->r), GR_RAFT_RESIGNED);
    gr_raft_msg m = vote_req(2, 4, 0, 0, false);
    ck_assert_int_eq(gr_raft_receive(N(1)->r, 0, &m), GR_RAFT_OK);
    collect(N(1));
    gr_raft_msg *r = take(2, GR_RAFT_MSG_VOTE_RESP);
    ck_assert(!r->granted);
    gr_raft_msg_free(r);
    drop_queue();
    /* Its next election is in epoch 5. */
    tick(2, 1999);
    pump();
    ck_assert_int_eq(gr_raft_get_role(N(2)->r), GR_RAFT_LEADER);
    ck_assert_int_eq(gr_raft_epoch(N(2)->r), 5);
    cluster_free();
}
END_TEST

START_TEST(test_log_epoch_newer_than_state_file)
{
    /* The log holds an epoch-3 entry but the state file says epoch 1 (the
     * state write was lost): the node starts in epoch 3. */
    cluster_init(1, 1);
    static const int32_t a[] = {1, 3};
    append_epochs(1, a, 2);
    N(1)->qs = (gr_raft_quorum_state){1, 1, 1};
    cluster_start();
    ck_assert_int_eq(gr_raft_epoch(N(1)->r), 3);
    ck_assert_int_eq(N(1)->qs.epoch, 3);
    tick(1, 1999);
    ck_assert_int_eq(gr_raft_get_role(N(1)->r), GR_RAFT_LEADER);
    ck_assert_int_eq(gr_raft_epoch(N(1)->r), 4);
    cluster_free();
}
END_TEST

START_TEST(test_bad_config_and_msg_copy)
{
    gr_raft_config cfg = config_for(1, 3);
    cfg.voters[1] = 1; /* duplicate voter */
    memlog l;
    memlog_init(&l);
    gr_raft_log_ops ops;
    memlog_ops(&l, &ops);
    ck_assert_ptr_null(gr_raft_create(&cfg, &ops, NULL, NO_SNAP, 0));
    cfg = config_for(1, 0);
    ck_assert_ptr_null(gr_raft_create(&cfg, &ops, NULL, NO_SNAP, 0));
    memlog_free(&l);

    gr_raft_entry es[2] = {{.offset = 7, .epoch = 2, .len = 3, .data = (const uint8_t *)"abc"},
                           {.offset = 8, .epoch = 2, .len = 0, .data = NULL}};
    gr_raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = GR_RAFT_MSG_FETCH_RESP;
    m.entries = es;
    m.n_entries = 2;
    m.bytes = (uint8_t *)"xyz";
    m.n_bytes = 3;
    gr_raft_msg *d = gr_raft_msg_dup(&m);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_ne(d->entries, es);
    ck_assert_int_eq(d->entries[1].offset, 8);
    ck_assert_mem_eq(d->entries[0].data, "abc", 3);
    ck_assert_mem_eq(d->bytes, "xyz", 3);
    gr_raft_msg_free(d);
}
END_TEST

Suite *raft_suite(void)
{
    Suite *s = suite_create("raft");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_single_node_elects_itself_and_commits);
    tcase_add_test(tc, test_three_node_election);
    tcase_add_test(tc, test_vote_refused_for_stale_log);
    tcase_add_test(tc, test_vote_persisted_before_granted);
    tcase_add_test(tc, test_pre_vote_does_not_bump_epochs);
    tcase_add_test(tc, test_check_quorum_resignation);
    tcase_add_test(tc, test_divergence_truncation_via_fetch);
    tcase_add_test(tc, test_hw_needs_majority_and_current_epoch);
    tcase_add_test(tc, test_observer_fetches_without_affecting_hw);
    tcase_add_test(tc, test_snapshot_for_follower_behind_log_start);
    tcase_add_test(tc, test_restart_keeps_vote_and_resigns_leadership);
    tcase_add_test(tc, test_log_epoch_newer_than_state_file);
    tcase_add_test(tc, test_bad_config_and_msg_copy);
    suite_add_tcase(s, tc);
    return s;
}
