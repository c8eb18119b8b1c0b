/*
 * raft_sim.c - deterministic simulation of the Raft quorum (common/raft.h).
 *
 * One seed fixes everything: the cluster (1, 3 or 5 voters, 0-2 observers),
 * the network's behaviour (loss, duplication, delay, reordering), the
 * chaos (partitions, one-way link cuts, crash-restarts, crashes in the
 * middle of carrying out a node's effects), proposals, flush timing and
 * snapshots. Time is virtual: an event queue ordered by (time, sequence)
 * drives the nodes, so a seed replays exactly.
 *
 * A crashed node keeps only what was durable: the log below its flushed
 * offset, the last persisted quorum state and its snapshot. It restarts
 * from them with a fresh core.
 *
 * Checked as they happen (every effect and every log mutation):
 *   - election safety: at most one leader per epoch, ever (a node that
 *     restarts may not lead the same epoch again either);
 *   - votes: the persisted vote never changes within an epoch, epochs never
 *     go back, and a granted Vote (or a candidate's Vote request) leaves
 *     only after the vote is persisted;
 *   - log matching: every (offset, epoch) names one entry with one
 *     predecessor epoch across all nodes and all time, which by induction
 *     makes logs sharing an (offset, epoch) identical below it;
 *   - committed entries never change: every high-watermark advance on any
 *     node is checked against (or recorded into) one global committed log;
 *     no node truncates below its high watermark, nor (in an epoch at or
 *     after the one that committed it) a committed entry;
 *   - a leader commits only what is durable on a majority of voters;
 *   - leader completeness: a new leader holds every entry committed in an
 *     earlier epoch;
 *   - the high watermark rises on every advance and, after a restart,
 *     starts at the node's snapshot (its only durable commit knowledge);
 *   - snapshots: every node's snapshot at offset X has the same content,
 *     derived from the committed entries below X, including those fetched
 *     chunk by chunk from a leader;
 *   - liveness: once the chaos stops (network healed, nodes restarted, no
 *     loss), a leader commits a new proposal and every node catches up
 *     within 30 s of simulated time.
 *
 * Usage: raft-sim [--seed N] [--seeds COUNT] [--jobs J] [--soak] [--verbose]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/raft.h"
#include "tests/sim/memlog.h"

#define MAXN 8
#define LIVENESS_MS 30000
#define MAX_EVENTS 2000000

/* ---- random numbers ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t g_rng;
static uint64_t rnd(void) { return splitmix(&g_rng); }
static int64_t rnd_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static bool chance(int per_mille) { return (int)(rnd() % 1000) < per_mille; }

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    h ^= 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t entry_hash(const memlog_entry *e)
{
    uint64_t h = hash_bytes((uint64_t)e->type * 31 + e->len, e->data, e->len);
    return h ? h : 1;
}

/* ---- the world ---- */

enum {
    EV_DELIVER,
    EV_TICK,
    EV_FLUSH,
    EV_CHAOS,
    EV_PROPOSE,
    EV_SNAPSHOT,
    EV_RESTART,
    EV_HEAL,
    EV_LIVE
};

typedef struct {
    int64_t t;
    uint64_t seq;
    int type;
    int node; /* target */
    int from;
    int inc; /* the target's incarnation when scheduled (ticks, flushes) */
    gr_raft_msg *msg;
    int64_t a;
    uint64_t b;
} event;

typedef struct {
    int id; /* node id; nodes[i].id == i + 1 */
    bool voter;
    bool up;
    int inc;
    gr_raft *r;
    memlog log;
    gr_raft_quorum_state qs; /* durable */
    int64_t tick_at;
    bool flush_pending;
    int64_t hw; /* this incarnation's high watermark as reported */
    gr_raft_role role;
    int32_t epoch;
} node;

typedef struct {
    bool set;
    int32_t epoch;
    int32_t commit_epoch; /* the epoch in which a node first saw it committed */
    uint64_t hash;
} committed_entry;

typedef struct {
    int64_t off;
    int32_t epoch;
    int32_t prev;
    uint64_t hash;
    bool used;
} match_slot;

typedef struct {
    int64_t off;
    uint64_t hash;
} snap_rec;

static struct {
    uint64_t seed;
    bool verbose;
    int64_t now;
    uint64_t seq;
    int nv, nn;
    node nodes[MAXN];
    bool cut[MAXN][MAXN];
    uint64_t part_gen;

    /* network and chaos, per seed */
    int loss, dup, slow; /* per mille */
    int delay_max;
    int crash_w, part_w, oneway_w, midcrash; /* chaos weights; mid-effects crash per mille */
    int64_t chaos_end;
    gr_raft_config cfg;

    event *heap;
    size_t n_heap, cap_heap;

    /* checks */
    struct {
        int32_t node;
        int inc;
    } *leader_of;
    size_t n_leader_of;
    committed_entry *committed;
    size_t cap_committed;
    int64_t committed_len;
    match_slot *match;
    size_t cap_match, n_match;
    snap_rec *snaps;
    size_t n_snaps, cap_snaps;

    /* liveness */
    bool healed;
    int64_t heal_at;
    int marker_node, marker_epoch, marker_k;
    int64_t marker_offset; /* -1 until a marker commits */
    bool done;

    uint64_t proposals;
    uint64_t events;
    bool failed;
    char why[512];
} W;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
    if (!W.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "[%7" PRId64 "] ", W.now);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (W.failed)
        return;
    W.failed = true;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(W.why, sizeof W.why, "t=%" PRId64 " ms: ", W.now);
    vsnprintf(W.why + n, sizeof W.why - (size_t)n, fmt, ap);
    va_end(ap);
    trace("FAIL %s", W.why);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

/* ---- event queue: a binary heap on (t, seq) ---- */

static bool ev_less(const event *a, const event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void schedule(event ev)
{
    if (W.n_heap == W.cap_heap) {
        W.cap_heap = W.cap_heap ? W.cap_heap * 2 : 1024;
        W.heap = xrealloc(W.heap, W.cap_heap * sizeof *W.heap);
    }
    ev.seq = W.seq++;
    size_t i = W.n_heap++;
    while (i > 0 && ev_less(&ev, &W.heap[(i - 1) / 2])) {
        W.heap[i] = W.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    W.heap[i] = ev;
}

static event pop_event(void)
{
    event top = W.heap[0], last = W.heap[--W.n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= W.n_heap)
            break;
        if (c + 1 < W.n_heap && ev_less(&W.heap[c + 1], &W.heap[c]))
            c++;
        if (!ev_less(&W.heap[c], &last))
            break;
        W.heap[i] = W.heap[c];
        i = c;
    }
    if (W.n_heap)
        W.heap[i] = last;
    return top;
}

static void at(int64_t t, int type, int node)
{
    schedule((event){.t = t, .type = type, .node = node});
}

/* ---- global records ---- */

static committed_entry *committed_at(int64_t off)
{
    if ((size_t)off >= W.cap_committed) {
        size_t cap = W.cap_committed ? W.cap_committed : 1024;
        while (cap <= (size_t)off)
            cap *= 2;
        W.committed = xrealloc(W.committed, cap * sizeof *W.committed);
        memset(W.committed + W.cap_committed, 0, (cap - W.cap_committed) * sizeof *W.committed);
        W.cap_committed = cap;
    }
    return &W.committed[off];
}

static match_slot *match_find(int64_t off, int32_t epoch, bool insert)
{
    if (insert && (W.n_match + 1) * 2 > W.cap_match) {
        size_t old = W.cap_match;
        match_slot *o = W.match;
        W.cap_match = old ? old * 2 : 4096;
        W.match = calloc(W.cap_match, sizeof *W.match);
        if (!W.match)
            exit(2);
        W.n_match = 0;
        for (size_t i = 0; i < old; i++)
            if (o[i].used) {
                match_slot *s = match_find(o[i].off, o[i].epoch, true);
                *s = o[i];
                W.n_match++;
            }
        free(o);
    }
    if (!W.cap_match)
        return NULL;
    uint64_t h =
        ((uint64_t)off * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)epoch * 0xbf58476d1ce4e5b9ull);
    for (size_t i = h & (W.cap_match - 1);; i = (i + 1) & (W.cap_match - 1)) {
        match_slot *s = &W.match[i];
        if (s->used && s->off == off && s->epoch == epoch)
            return s;
        if (!s->used)
            return insert ? s : NULL;
    }
}

static snap_rec *snap_find(int64_t off)
{
    for (size_t i = 0; i < W.n_snaps; i++)
        if (W.snaps[i].off == off)
            return &W.snaps[i];
    return NULL;
}

static void snap_record(node *n, int64_t off, uint64_t h)
{
    snap_rec *s = snap_find(off);
    if (s) {
        if (s->hash != h)
            fail("n%d: snapshot at %" PRId64 " has content %016" PRIx64 ", another has %016" PRIx64,
                 n->id, off, h, s->hash);
        return;
    }
    if (W.n_snaps == W.cap_snaps) {
        W.cap_snaps = W.cap_snaps ? W.cap_snaps * 2 : 16;
        W.snaps = xrealloc(W.snaps, W.cap_snaps * sizeof *W.snaps);
    }
    W.snaps[W.n_snaps++] = (snap_rec){off, h};
}

/* Snapshot bytes: the content hash, then filler derived from it. */
static size_t snap_bytes(uint64_t h, uint8_t *out, size_t max)
{
    uint64_t s = h;
    size_t len = 8 + (size_t)(h % 200);
    if (len > max)
        len = max;
    for (size_t i = 0; i < 8 && i < len; i++)
        out[i] = (uint8_t)(h >> (8 * i));
    for (size_t i = 8; i < len; i++)
        out[i] = (uint8_t)splitmix(&s);
    return len;
}

/* The content hash a node's durable snapshot carries (0: none). */
static uint64_t snap_hash_of(const memlog *l)
{
    uint64_t h = 0;
    if (l->snap.end_offset >= 0 && l->snap_len >= 8)
        for (int i = 0; i < 8; i++)
            h |= (uint64_t)l->snap_data[i] << (8 * i);
    return h;
}

/* ---- log hooks ---- */

static int on_appended(void *ctx, memlog *l, int64_t off)
{
    node *n = ctx;
    const memlog_entry *e = memlog_at(l, off);
    int32_t prev = memlog_prev_epoch(l, off);
    if (e->epoch < prev)
        fail("n%d: entry %" PRId64 " has epoch %d below its predecessor's %d", n->id, off, e->epoch,
             prev);
    uint64_t h = entry_hash(e);
    match_slot *s = match_find(off, e->epoch, false);
    if (s) {
        if (s->hash != h || s->prev != prev)
            fail("log matching: n%d has a different entry at offset %" PRId64 " epoch %d "
                 "(prev epoch %d vs %d)",
                 n->id, off, e->epoch, prev, s->prev);
        return 0;
    }
    s = match_find(off, e->epoch, true);
    *s = (match_slot){.off = off, .epoch = e->epoch, .prev = prev, .hash = h, .used = true};
    W.n_match++;
    return 0;
}

static void on_truncating(void *ctx, memlog *l, int64_t off)
{
    node *n = ctx;
    if (n->r && off < gr_raft_high_watermark(n->r))
        fail("n%d truncates to %" PRId64 " below its high watermark %" PRId64, n->id, off,
             gr_raft_high_watermark(n->r));
    for (int64_t o = off; o < memlog_end(l) && o < W.committed_len; o++) {
        committed_entry *c = committed_at(o);
        const memlog_entry *e = memlog_at(l, o);
        /* A node still following a stale leader may lose an entry that a
         * newer epoch committed (it is not part of that majority); but the
         * leader of an epoch at or after the commit holds the entry, so a
         * node in such an epoch must never cut it. */
        if (c->set && c->epoch == e->epoch && c->hash == entry_hash(e) && n->r &&
            c->commit_epoch <= gr_raft_epoch(n->r))
            fail("n%d in epoch %d truncates entry %" PRId64 " committed in epoch %d", n->id,
                 gr_raft_epoch(n->r), o, c->commit_epoch);
    }
}

/* ---- nodes ---- */

static void node_start(node *n)
{
    gr_raft_config cfg = W.cfg;
    cfg.node_id = n->id;
    cfg.seed = rnd();
    gr_raft_log_ops ops;
    memlog_ops(&n->log, &ops);
    n->inc++;
    n->r = gr_raft_create(&cfg, &ops, &n->qs, n->log.snap, W.now);
    if (!n->r) {
        fail("n%d: gr_raft_create failed", n->id);
        return;
    }
    n->up = true;
    n->tick_at = INT64_MAX;
    n->flush_pending = false;
    n->hw = gr_raft_high_watermark(n->r);
    int64_t want = n->log.snap.end_offset < 0 ? 0 : n->log.snap.end_offset;
    if (n->hw != want)
        fail("n%d restarts with high watermark %" PRId64 ", its snapshot ends at %" PRId64, n->id,
             n->hw, want);
    n->role = gr_raft_get_role(n->r);
    n->epoch = gr_raft_epoch(n->r);
}

static void node_crash(node *n)
{
    trace("n%d CRASH (log %" PRId64 "..%" PRId64 ", durable to %" PRId64 ")", n->id, n->log.start,
          memlog_end(&n->log), n->log.durable_end);
    gr_raft_destroy(n->r);
    n->r = NULL;
    n->up = false;
    memlog_crash(&n->log);
}

static const char *msg_str(const gr_raft_msg *m, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%s e%d ldr%d corr%" PRIu64, gr_raft_msg_type_name(m->type),
                     m->epoch, m->leader_id, m->corr % 100000);
    if (m->error)
        k += snprintf(buf + k, cap - (size_t)k, " err%d", m->error);
    switch (m->type) {
    case GR_RAFT_MSG_VOTE_REQ:
        snprintf(buf + k, cap - (size_t)k, "%s last=%" PRId64 "/e%d", m->pre_vote ? " pre" : "",
                 m->last_offset, m->last_epoch);
        break;
    case GR_RAFT_MSG_VOTE_RESP:
        snprintf(buf + k, cap - (size_t)k, "%s %s", m->pre_vote ? " pre" : "",
                 m->granted ? "granted" : "refused");
        break;
    case GR_RAFT_MSG_FETCH_REQ:
        snprintf(buf + k, cap - (size_t)k, " off=%" PRId64 "/e%d", m->fetch_offset,
                 m->last_fetched_epoch);
        break;
    case GR_RAFT_MSG_FETCH_RESP:
        snprintf(buf + k, cap - (size_t)k,
                 " off=%" PRId64 " n=%zu hw=%" PRId64 " div=%d/%" PRId64 " snap=%" PRId64,
                 m->fetch_offset, m->n_entries, m->high_watermark, m->diverging_epoch,
                 m->diverging_end_offset, m->snapshot_id.end_offset);
        break;
    case GR_RAFT_MSG_FETCH_SNAPSHOT_REQ:
    case GR_RAFT_MSG_FETCH_SNAPSHOT_RESP:
        snprintf(buf + k, cap - (size_t)k,
                 " snap=%" PRId64 "/e%d pos=%" PRId64 " n=%zu size=%" PRId64,
                 m->snapshot_id.end_offset, m->snapshot_id.epoch, m->position, m->n_bytes, m->size);
        break;
    default: break;
    }
    return buf;
}

static void net_send(node *from, int to, const gr_raft_msg *m)
{
    if (to < 1 || to > W.nn) {
        fail("n%d sends to unknown node %d", from->id, to);
        return;
    }
    if (W.cut[from->id - 1][to - 1] || chance(W.loss))
        return;
    int copies = chance(W.dup) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        gr_raft_msg *d = gr_raft_msg_dup(m);
        if (!d)
            exit(2);
        int64_t delay = rnd_range(1, W.delay_max);
        if (chance(W.slow))
            delay += rnd_range(100, 1000);
        schedule((event){.t = W.now + delay, .type = EV_DELIVER, .node = to, .from = from->id,
                         .msg = d});
    }
}

static int majority(void) { return W.nv / 2 + 1; }

/* A leader's high watermark X: entries below X must be durable on a majority. */
static void check_durable_majority(node *ldr, int64_t x)
{
    const memlog_entry *le = memlog_at(&ldr->log, x - 1);
    int cnt = 0;
    for (int i = 0; i < W.nv; i++) {
        memlog *l = &W.nodes[i].log;
        if (x - 1 < l->start)
            cnt++; /* inside its (durable) snapshot */
        else if (x <= l->durable_end && le && memlog_at(l, x - 1)->epoch == le->epoch)
            cnt++;
    }
    if (cnt < majority())
        fail("n%d commits to %" PRId64 " but only %d voters have it durably", ldr->id, x, cnt);
}

static void on_commit(node *n, int64_t hw)
{
    if (hw <= n->hw)
        fail("n%d high watermark goes from %" PRId64 " to %" PRId64, n->id, n->hw, hw);
    if (hw > memlog_end(&n->log))
        fail("n%d high watermark %" PRId64 " beyond its log end %" PRId64, n->id, hw,
             memlog_end(&n->log));
    int64_t from = n->hw > n->log.start ? n->hw : n->log.start;
    for (int64_t o = from; o < hw && o < memlog_end(&n->log); o++) {
        const memlog_entry *e = memlog_at(&n->log, o);
        committed_entry *c = committed_at(o);
        uint64_t h = entry_hash(e);
        if (c->set) {
            if (c->epoch != e->epoch || c->hash != h)
                fail("committed entry %" PRId64 " differs on n%d (epoch %d vs %d)", o, n->id,
                     e->epoch, c->epoch);
        } else {
            *c = (committed_entry){true, e->epoch, n->epoch, h};
            if (o + 1 > W.committed_len)
                W.committed_len = o + 1;
            if (e->type == GR_RAFT_ENTRY_DATA && e->len >= 4 && memcmp(e->data, "LIVE", 4) == 0 &&
                W.marker_offset < 0) {
                W.marker_offset = o;
                trace("liveness marker committed at %" PRId64, o);
            }
        }
    }
    if (n->role == GR_RAFT_LEADER)
        check_durable_majority(n, hw);
    trace("n%d commit hw %" PRId64 " -> %" PRId64, n->id, n->hw, hw);
    n->hw = hw;
}

static void on_leader(node *n)
{
    int32_t e = n->epoch;
    if ((size_t)e >= W.n_leader_of) {
        size_t cap = W.n_leader_of ? W.n_leader_of : 64;
        while (cap <= (size_t)e)
            cap *= 2;
        W.leader_of = xrealloc(W.leader_of, cap * sizeof *W.leader_of);
        for (size_t i = W.n_leader_of; i < cap; i++)
            W.leader_of[i].node = -1;
        W.n_leader_of = cap;
    }
    if (W.leader_of[e].node >= 0 && (W.leader_of[e].node != n->id || W.leader_of[e].inc != n->inc))
        fail("two leaders in epoch %d: n%d and n%d", e, W.leader_of[e].node, n->id);
    W.leader_of[e].node = n->id;
    W.leader_of[e].inc = n->inc;
    /* Leader completeness: whatever was committed in an earlier epoch. (A
     * late election in an epoch below the commit's may still succeed; that
     * leader is fenced before it can commit anything.) */
    for (int64_t o = n->log.start; o < W.committed_len; o++) {
        committed_entry *c = committed_at(o);
        if (!c->set || c->commit_epoch >= e)
            continue;
        const memlog_entry *le = memlog_at(&n->log, o);
        if (!le || le->epoch != c->epoch || entry_hash(le) != c->hash)
            fail("leader completeness: n%d leads epoch %d without committed entry %" PRId64, n->id,
                 e, o);
    }
}

static void on_installed(node *n, gr_raft_snapshot_id id)
{
    memlog *l = &n->log;
    if (l->snap.end_offset != id.end_offset || l->snap_len < 8) {
        fail("n%d: installed snapshot %" PRId64 " is not what the log holds", n->id, id.end_offset);
        return;
    }
    uint64_t h = snap_hash_of(l);
    uint8_t want[256];
    size_t len = snap_bytes(h, want, sizeof want);
    snap_rec *s = snap_find(id.end_offset);
    if (len != l->snap_len || memcmp(want, l->snap_data, len) != 0 || !s || s->hash != h)
        fail("n%d: fetched snapshot %" PRId64 " has wrong content", n->id, id.end_offset);
    trace("n%d installed snapshot %" PRId64 "/e%d", n->id, id.end_offset, id.epoch);
}

static void schedule_timers(node *n)
{
    if (!n->up)
        return;
    if (!n->flush_pending && n->log.durable_end < memlog_end(&n->log)) {
        n->flush_pending = true;
        schedule((event){.t = W.now + rnd_range(0, 30), .type = EV_FLUSH, .node = n->id,
                         .inc = n->inc, .a = memlog_end(&n->log), .b = n->log.trunc_gen});
    }
    int64_t d = gr_raft_next_deadline(n->r);
    if (d < W.now)
        d = W.now;
    if (d < n->tick_at) {
        n->tick_at = d;
        schedule((event){.t = d, .type = EV_TICK, .node = n->id, .inc = n->inc});
    }
}

/* Carries out the effects in order; a crash may cut the sequence short. */
static void drain(node *n, int rc)
{
    if (rc != GR_RAFT_OK && rc != GR_RAFT_ERR_NOT_LEADER) {
        fail("n%d: call failed: %s", n->id, gr_raft_err_str(rc));
        return;
    }
    const gr_raft_effect *eff;
    size_t cnt = gr_raft_effects(n->r, &eff);
    size_t crash_at = cnt;
    if (!W.healed && cnt > 1 && chance(W.midcrash))
        crash_at = (size_t)rnd_range(0, (int64_t)cnt - 1);
    char buf[256];
    for (size_t i = 0; i < crash_at && !W.failed; i++) {
        const gr_raft_effect *e = &eff[i];
        switch (e->type) {
        case GR_RAFT_EFF_SEND:
            if (e->msg.type == GR_RAFT_MSG_VOTE_RESP && e->msg.granted && !e->msg.pre_vote &&
                (n->qs.epoch != e->msg.epoch || n->qs.voted_for != e->to))
                fail("n%d grants its vote to n%d in epoch %d before persisting it", n->id, e->to,
                     e->msg.epoch);
            if (e->msg.type == GR_RAFT_MSG_VOTE_REQ && !e->msg.pre_vote &&
                (n->qs.epoch != e->msg.epoch || n->qs.voted_for != n->id))
                fail("n%d asks for votes in epoch %d before persisting its own", n->id,
                     e->msg.epoch);
            if (W.verbose)
                trace("n%d -> n%d %s", n->id, e->to, msg_str(&e->msg, buf, sizeof buf));
            net_send(n, e->to, &e->msg);
            break;
        case GR_RAFT_EFF_PERSIST:
            if (e->state.epoch < n->qs.epoch)
                fail("n%d persists epoch %d after %d", n->id, e->state.epoch, n->qs.epoch);
            if (e->state.epoch == n->qs.epoch && n->qs.voted_for >= 0 &&
                e->state.voted_for != n->qs.voted_for)
                fail("n%d changes its vote in epoch %d from %d to %d", n->id, n->qs.epoch,
                     n->qs.voted_for, e->state.voted_for);
            n->qs = e->state;
            break;
        case GR_RAFT_EFF_ROLE:
            n->role = e->role;
            n->epoch = e->epoch;
            trace("n%d is %s in epoch %d (leader %d)", n->id, gr_raft_role_name(e->role), e->epoch,
                  e->leader_id);
            if (e->role == GR_RAFT_LEADER)
                on_leader(n);
            break;
        case GR_RAFT_EFF_COMMIT: on_commit(n, e->high_watermark); break;
        case GR_RAFT_EFF_SNAPSHOT_INSTALLED: on_installed(n, e->snapshot); break;
        }
    }
    gr_raft_effects_clear(n->r);
    if (crash_at < cnt) {
        trace("n%d crashes after %zu of %zu effects", n->id, crash_at, cnt);
        node_crash(n);
        at(W.now + rnd_range(100, 3000), EV_RESTART, n->id);
        return;
    }
    schedule_timers(n);
}

/* ---- events ---- */

static void ev_deliver(event *ev)
{
    node *n = &W.nodes[ev->node - 1];
    if (!n->up || W.cut[ev->from - 1][ev->node - 1]) {
        gr_raft_msg_free(ev->msg);
        return;
    }
    if (W.verbose) {
        char buf[256];
        trace("n%d <- n%d %s", n->id, ev->from, msg_str(ev->msg, buf, sizeof buf));
    }
    int rc = gr_raft_receive(n->r, W.now, ev->msg);
    gr_raft_msg_free(ev->msg);
    drain(n, rc);
}

static void ev_tick(event *ev)
{
    node *n = &W.nodes[ev->node - 1];
    if (!n->up || ev->inc != n->inc || ev->t != n->tick_at)
        return;
    n->tick_at = INT64_MAX;
    drain(n, gr_raft_tick(n->r, W.now));
}

static void ev_flush(event *ev)
{
    node *n = &W.nodes[ev->node - 1];
    if (!n->up || ev->inc != n->inc)
        return;
    n->flush_pending = false;
    /* A flush that started before a truncation covers nothing after it. */
    if (ev->b == n->log.trunc_gen && ev->a > n->log.durable_end) {
        int64_t upto = ev->a < memlog_end(&n->log) ? ev->a : memlog_end(&n->log);
        if (upto > n->log.durable_end) {
            n->log.durable_end = upto;
            drain(n, gr_raft_log_flushed(n->r, W.now, upto));
            return;
        }
    }
    schedule_timers(n);
}

static void ev_restart(event *ev)
{
    node *n = &W.nodes[ev->node - 1];
    if (n->up)
        return;
    trace("n%d RESTART (epoch %d, voted %d, leader %d, log %" PRId64 "..%" PRId64 ")", n->id,
          n->qs.epoch, n->qs.voted_for, n->qs.leader_id, n->log.start, memlog_end(&n->log));
    node_start(n);
    if (n->up)
        drain(n, GR_RAFT_OK);
}

static void heal_all(void)
{
    memset(W.cut, 0, sizeof W.cut);
    W.part_gen++;
}

static void ev_chaos(void)
{
    if (W.healed)
        return;
    int total = W.crash_w + W.part_w + W.oneway_w + 10;
    int pick = (int)(rnd() % (uint64_t)total);
    if (pick < W.crash_w) {
        node *n = &W.nodes[rnd() % (uint64_t)W.nn];
        if (n->up) {
            node_crash(n);
            at(W.now + rnd_range(100, 4000), EV_RESTART, n->id);
        }
    } else if ((pick -= W.crash_w) < W.part_w) {
        heal_all();
        unsigned side = (unsigned)rnd();
        for (int a = 0; a < W.nn; a++)
            for (int b = 0; b < W.nn; b++)
                W.cut[a][b] = ((side >> a) & 1) != ((side >> b) & 1);
        trace("PARTITION sides %#x", side & ((1u << W.nn) - 1));
        schedule((event){.t = W.now + rnd_range(300, 6000), .type = EV_HEAL, .b = W.part_gen});
    } else if ((pick -= W.part_w) < W.oneway_w) {
        int a = (int)(rnd() % (uint64_t)W.nn), b = (int)(rnd() % (uint64_t)W.nn);
        if (a != b) {
            W.cut[a][b] = true;
            trace("CUT n%d -> n%d", a + 1, b + 1);
            schedule((event){.t = W.now + rnd_range(300, 6000), .type = EV_HEAL, .b = W.part_gen});
        }
    }
    at(W.now + rnd_range(100, 1000), EV_CHAOS, 0);
}

static void propose_at(node *n, bool marker)
{
    uint8_t data[48];
    int len;
    if (marker)
        len = snprintf((char *)data, sizeof data, "LIVE-%d", ++W.marker_k);
    else
        len = snprintf((char *)data, sizeof data, "p%" PRIu64 "-%" PRIx64, ++W.proposals, rnd());
    size_t cnt = marker ? 1 : (size_t)rnd_range(1, 3);
    gr_raft_entry es[3];
    for (size_t i = 0; i < cnt; i++) {
        data[0] = marker ? 'L' : (uint8_t)('p' + i);
        es[i] = (gr_raft_entry){.type = GR_RAFT_ENTRY_DATA, .len = (uint32_t)len, .data = data};
    }
    int64_t first = -1;
    int rc = gr_raft_propose(n->r, W.now, es, cnt, &first);
    bool leader = n->role == GR_RAFT_LEADER;
    if (leader != (rc == GR_RAFT_OK))
        fail("n%d (%s) propose returned %s", n->id, gr_raft_role_name(n->role),
             gr_raft_err_str(rc));
    if (rc == GR_RAFT_OK)
        trace("n%d proposes %zu at %" PRId64 "%s", n->id, cnt, first, marker ? " (marker)" : "");
    drain(n, rc);
}

static void ev_propose(void)
{
    if (W.healed)
        return; /* from now on only the liveness marker */
    for (int i = 0; i < W.nn; i++) {
        node *n = &W.nodes[i];
        if (n->up && (n->role == GR_RAFT_LEADER ? chance(700) : chance(30)))
            propose_at(n, false);
        if (W.failed)
            return;
    }
    at(W.now + rnd_range(5, 100), EV_PROPOSE, 0);
}

static void ev_snapshot(void)
{
    node *n = &W.nodes[rnd() % (uint64_t)W.nn];
    memlog *l = &n->log;
    if (n->up && n->hw > l->start) {
        int64_t s = rnd_range(l->start + 1, n->hw);
        uint64_t h = snap_hash_of(l);
        for (int64_t o = l->start; o < s; o++) {
            uint64_t eh = entry_hash(memlog_at(l, o));
            h = hash_bytes(h, &eh, sizeof eh);
        }
        snap_record(n, s, h);
        uint8_t bytes[256];
        size_t len = snap_bytes(h, bytes, sizeof bytes);
        if (memlog_take_snapshot(l, s, bytes, len) != 0) {
            fail("n%d: taking a snapshot at %" PRId64 " failed", n->id, s);
            return;
        }
        trace("n%d snapshot at %" PRId64 "/e%d, log now starts there", n->id, s, l->snap.epoch);
        drain(n, gr_raft_snapshot_taken(n->r, W.now, l->snap));
    }
    at(W.now + rnd_range(300, 3000), EV_SNAPSHOT, 0);
}

static void ev_live(void)
{
    if (!W.healed) { /* the chaos ends: heal everything and watch */
        W.healed = true;
        W.heal_at = W.now;
        W.loss = W.dup = W.slow = 0;
        heal_all();
        trace("HEAL: network healed, no more loss or crashes");
        for (int i = 0; i < W.nn; i++)
            if (!W.nodes[i].up) {
                node_start(&W.nodes[i]);
                if (W.nodes[i].up)
                    drain(&W.nodes[i], GR_RAFT_OK);
            }
    }
    if (W.marker_offset < 0) {
        for (int i = 0; i < W.nn; i++) {
            node *n = &W.nodes[i];
            if (n->up && n->role == GR_RAFT_LEADER &&
                (W.marker_node != n->id || W.marker_epoch != n->epoch)) {
                W.marker_node = n->id;
                W.marker_epoch = n->epoch;
                propose_at(n, true);
            }
        }
    } else {
        bool all = true;
        for (int i = 0; i < W.nn; i++)
            all &= W.nodes[i].up && W.nodes[i].hw > W.marker_offset;
        if (all) {
            W.done = true;
            return;
        }
    }
    if (W.now - W.heal_at > LIVENESS_MS) {
        if (W.marker_offset < 0)
            fail("liveness: no new proposal committed within %d s after healing",
                 LIVENESS_MS / 1000);
        else {
            char st[256];
            int k = 0;
            for (int i = 0; i < W.nn && k < (int)sizeof st - 40; i++)
                k += snprintf(st + k, sizeof st - (size_t)k, " n%d:%s/hw%" PRId64, W.nodes[i].id,
                              W.nodes[i].up ? gr_raft_role_name(W.nodes[i].role) : "down",
                              W.nodes[i].hw);
            fail("liveness: not every node caught up to the marker at %" PRId64 " within %d s:%s",
                 W.marker_offset, LIVENESS_MS / 1000, st);
        }
        return;
    }
    at(W.now + 100, EV_LIVE, 0);
}

/* ---- one seed ---- */

static void world_free(void)
{
    for (size_t i = 0; i < W.n_heap; i++)
        gr_raft_msg_free(W.heap[i].msg);
    for (int i = 0; i < W.nn; i++) {
        gr_raft_destroy(W.nodes[i].r);
        memlog_free(&W.nodes[i].log);
    }
    free(W.heap);
    free(W.leader_of);
    free(W.committed);
    free(W.match);
    free(W.snaps);
}

/* Runs one seed; true if every check passed. */
static bool run_seed(uint64_t seed, bool verbose, uint64_t *events)
{
    memset(&W, 0, sizeof W);
    W.seed = seed;
    W.verbose = verbose;
    g_rng = seed * 0x2545f4914f6cdd1dull + 0x1234567;
    (void)rnd();
    int p = (int)(rnd() % 100);
    W.nv = p < 10 ? 1 : p < 60 ? 3 : 5;
    int q = (int)(rnd() % 100);
    W.nn = W.nv + (q < 60 ? 0 : q < 90 ? 1 : 2);
    W.loss = (int)rnd_range(0, 200);
    W.dup = (int)rnd_range(0, 80);
    W.slow = (int)rnd_range(0, 40);
    W.delay_max = (int)rnd_range(1, 30);
    W.crash_w = (int)rnd_range(0, 20);
    W.part_w = (int)rnd_range(0, 20);
    W.oneway_w = (int)rnd_range(0, 10);
    W.midcrash = (int)rnd_range(0, 10);
    W.chaos_end = rnd_range(20000, 120000);
    W.marker_offset = -1;
    W.marker_node = -1;

    gr_raft_config_defaults(&W.cfg);
    for (int i = 0; i < W.nv; i++)
        W.cfg.voters[i] = i + 1;
    W.cfg.n_voters = (size_t)W.nv;
    /* Kafka's timeouts, or all of them scaled down so that elections race
     * the slow messages more often. */
    int32_t et = chance(500) ? 1000 : 300;
    W.cfg.election_timeout_ms = et;
    W.cfg.fetch_timeout_ms = 2 * et;
    W.cfg.fetch_max_wait_ms = et / 2;
    W.cfg.request_timeout_ms = et / 2 * (int32_t)rnd_range(1, 4);
    W.cfg.fetch_max_bytes = (size_t)rnd_range(256, 4096);
    W.cfg.snapshot_chunk_bytes = (size_t)rnd_range(16, 128);

    trace("seed %" PRIu64 ": %d voters, %d observers, loss %d/1000, dup %d/1000, slow %d/1000, "
          "delay <= %d ms, chaos until %" PRId64 " ms (crash %d, partition %d, cut %d, "
          "mid-effects crash %d/1000), election timeout %d ms, request timeout %d ms",
          seed, W.nv, W.nn - W.nv, W.loss, W.dup, W.slow, W.delay_max, W.chaos_end, W.crash_w,
          W.part_w, W.oneway_w, W.midcrash, W.cfg.election_timeout_ms, W.cfg.request_timeout_ms);

    for (int i = 0; i < W.nn; i++) {
        node *n = &W.nodes[i];
        n->id = i + 1;
        n->voter = i < W.nv;
        memlog_init(&n->log);
        n->log.hooks =
            (memlog_hooks){.ctx = n, .appended = on_appended, .truncating = on_truncating};
        n->qs = (gr_raft_quorum_state){0, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
        node_start(n);
        if (n->up)
            drain(n, GR_RAFT_OK);
    }
    at(rnd_range(100, 1000), EV_CHAOS, 0);
    at(rnd_range(100, 500), EV_PROPOSE, 0);
    at(rnd_range(500, 3000), EV_SNAPSHOT, 0);
    at(W.chaos_end, EV_LIVE, 0);

    while (W.n_heap && !W.failed && !W.done) {
        event ev = pop_event();
        W.now = ev.t;
        if (++W.events > MAX_EVENTS) {
            fail("over %d events: livelock?", MAX_EVENTS);
            gr_raft_msg_free(ev.msg);
            break;
        }
        switch (ev.type) {
        case EV_DELIVER: ev_deliver(&ev); break;
        case EV_TICK: ev_tick(&ev); break;
        case EV_FLUSH: ev_flush(&ev); break;
        case EV_CHAOS: ev_chaos(); break;
        case EV_PROPOSE: ev_propose(); break;
        case EV_SNAPSHOT: ev_snapshot(); break;
        case EV_RESTART: ev_restart(&ev); break;
        case EV_HEAL:
            if (ev.b == W.part_gen && !W.healed) {
                heal_all();
                trace("partition healed");
            }
            break;
        case EV_LIVE: ev_live(); break;
        }
    }
    if (!W.failed && !W.done)
        fail("the simulation ran out of events");
    *events = W.events;
    bool ok = !W.failed;
    if (!ok)
        fprintf(stderr,
                "raft-sim: seed %" PRIu64 " FAILED: %s\n  replay: build/raft-sim --seed %" PRIu64
                " --verbose\n",
                seed, W.why, seed);
    else if (verbose)
        trace("seed %" PRIu64 " passed: %" PRIu64 " events, committed up to %" PRId64, seed,
              W.events, W.committed_len);
    world_free();
    return ok;
}

/* ---- main ---- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    uint64_t seeds, events, failures;
} tally;

/* Runs seeds start, start+stride, ... (count of them, or forever if soak). */
static tally run_range(uint64_t start, uint64_t count, uint64_t stride, bool soak,
                       bool stop_on_fail)
{
    tally t = {0, 0, 0};
    double t0 = mono_s(), last = t0;
    for (uint64_t i = 0; soak || i < count; i++) {
        uint64_t ev = 0;
        if (!run_seed(start + i * stride, false, &ev)) {
            t.failures++;
            if (stop_on_fail)
                break;
        }
        t.seeds++;
        t.events += ev;
        if (soak && mono_s() - last > 30) {
            last = mono_s();
            fprintf(stderr,
                    "raft-sim: %" PRIu64 " seeds (every %" PRIu64 " from %" PRIu64
                    "), %.0f seeds/s\n",
                    t.seeds, stride, start, (double)t.seeds / (last - t0));
        }
    }
    return t;
}

static void usage(void)
{
    fprintf(stderr, "usage: raft-sim [--seed N | --start N --seeds COUNT] [--jobs J] [--soak] "
                    "[--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, start = 1, count = 1000;
    bool one = false, soak = false, verbose = false;
    int jobs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v) {
            seed = strtoull(v, NULL, 10);
            one = true;
            i++;
        } else if (!strcmp(a, "--start") && v) {
            start = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--seeds") && v) {
            count = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--jobs") && v) {
            jobs = atoi(v);
            i++;
        } else if (!strcmp(a, "--soak")) {
            soak = true;
        } else if (!strcmp(a, "--verbose")) {
            verbose = true;
        } else {
            usage();
        }
    }
    if (jobs < 1 || jobs > 64)
        usage();
    gr_logging_set_level(verbose ? GR_LOGGING_INFO : (gr_logging_level)(GR_LOGGING_ERROR + 1));

    if (one) {
        uint64_t ev;
        bool ok = run_seed(seed, verbose, &ev);
        printf("raft-sim: seed %" PRIu64 " %s (%" PRIu64 " events)\n", seed, ok ? "ok" : "FAILED",
               ev);
        return ok ? 0 : 1;
    }
    if (soak) {
        start = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() << 20;
        fprintf(stderr, "raft-sim: soak from seed %" PRIu64 " until stopped\n", start);
    }

    double t0 = mono_s();
    tally total = {0, 0, 0};
    if (jobs == 1) {
        total = run_range(start, count, 1, soak, soak);
    } else {
        int fds[64];
        pid_t pids[64];
        for (int j = 0; j < jobs; j++) {
            int p[2];
            if (pipe(p) != 0) {
                perror("pipe");
                return 2;
            }
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 2;
            }
            if (pid == 0) {
                close(p[0]);
                uint64_t mine = count / (uint64_t)jobs + ((uint64_t)j < count % (uint64_t)jobs);
                tally t = run_range(start + (uint64_t)j, mine, (uint64_t)jobs, soak, soak);
                ssize_t w = write(p[1], &t, sizeof t);
                _exit(w == (ssize_t)sizeof t ? 0 : 2);
            }
            close(p[1]);
            fds[j] = p[0];
            pids[j] = pid;
        }
        if (soak) { /* until one child finds a failing seed (or is stopped) */
            int st = 0;
            pid_t done = wait(&st);
            for (int j = 0; j < jobs; j++)
                if (pids[j] != done)
                    kill(pids[j], SIGTERM);
        }
        for (int j = 0; j < jobs; j++) {
            tally t;
            ssize_t n;
            do
                n = read(fds[j], &t, sizeof t);
            while (n < 0 && errno == EINTR);
            if (n == (ssize_t)sizeof t) {
                total.seeds += t.seeds;
                total.events += t.events;
                total.failures += t.failures;
            } else if (!soak) { /* a soak's other children were stopped */
                total.failures++;
            }
            close(fds[j]);
            int st;
            waitpid(pids[j], &st, 0);
        }
    }
    double dt = mono_s() - t0;
    printf("raft-sim: %" PRIu64 " seeds from %" PRIu64 ", %" PRIu64
           " failed; %.1f s, %.0f seeds/s, "
           "%.0f events/seed\n",
           total.seeds, start, total.failures, dt, dt > 0 ? (double)total.seeds / dt : 0.0,
           total.seeds ? (double)total.events / (double)total.seeds : 0.0);
    return total.failures ? 1 : 0;
}
