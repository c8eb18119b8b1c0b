/* raft.c - see raft.h. */
#include "common/raft.h"

#include <stdlib.h>
#include <string.h>

#include "common/logging.h"

#define SUB "raft"
#define NEVER INT64_MAX
#define READ_BATCH 256 /* entries per Fetch response at most */

typedef struct {
    int32_t id;
    bool voter;
    int64_t end_offset;    /* last matching fetch_offset in this epoch; -1 unknown */
    int64_t last_fetch_ms; /* -1 never */
    int64_t hw_sent;       /* high watermark last told to this replica */
    bool begin_acked;      /* fetched from us or answered BeginQuorumEpoch */
    int64_t begin_sent_ms;
    bool parked; /* a Fetch waiting for entries or a newer high watermark */
    uint64_t parked_corr;
    int64_t parked_offset;
    int64_t parked_deadline;
} replica;

struct gr_raft {
    gr_raft_config cfg;
    gr_raft_log_ops ops;
    uint64_t rng;
    int64_t now;
    int self; /* index in cfg.voters; -1 for an observer */
    int majority;

    gr_raft_role role;
    int32_t epoch;
    int32_t voted_for;
    int32_t leader_id;
    gr_raft_snapshot_id snapshot;
    int64_t hw;
    int64_t flushed;

    gr_raft_effect *eff;
    size_t n_eff, cap_eff;

    /* unattached, prospective, candidate, resigned */
    int64_t election_deadline;
    uint32_t granted, rejected; /* voter index bitmasks of this round */
    int64_t vote_resend_at;

    /* follower, observer */
    int64_t fetch_deadline;      /* no successful fetch by then: the leader is gone */
    int64_t last_leader_contact; /* for refusing pre-votes; INT64_MIN none */
    uint64_t next_corr;
    bool inflight;
    uint64_t inflight_corr;
    int64_t inflight_sent;
    int64_t inflight_offset;
    int32_t fetch_target; /* observer without a leader: the voter asked */
    int64_t next_fetch_at;
    bool snap_fetching;
    gr_raft_snapshot_id snap_id;
    int64_t snap_pos;

    /* leader */
    int64_t epoch_start;
    replica reps[GR_RAFT_MAX_VOTERS]; /* by voter index (self unused) */
    replica *obs;
    size_t n_obs, cap_obs;
};

/* ---- small helpers ---- */

const char *gr_raft_err_str(int err)
{
    switch (err) {
    case GR_RAFT_OK: return "ok";
    case GR_RAFT_ERR_NOT_LEADER: return "not the leader";
    case GR_RAFT_ERR_NOMEM: return "out of memory";
    case GR_RAFT_ERR_IO: return "log I/O error";
    case GR_RAFT_ERR_INVALID: return "invalid argument";
    }
    return "unknown error";
}

const char *gr_raft_role_name(gr_raft_role role)
{
    static const char *const names[] = {"unattached", "prospective", "candidate", "leader",
                                        "resigned",   "follower",    "observer"};
    return (unsigned)role < sizeof names / sizeof names[0] ? names[role] : "?";
}

const char *gr_raft_msg_type_name(gr_raft_msg_type t)
{
    static const char *const names[] = {
        "Vote",          "VoteResponse",  "BeginQuorumEpoch", "BeginQuorumEpochResponse",
        "EndQuorumEpoch", "EndQuorumEpochResponse", "Fetch", "FetchResponse",
        "FetchSnapshot", "FetchSnapshotResponse"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

void gr_raft_config_defaults(gr_raft_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->node_id = -1;
    cfg->election_timeout_ms = 1000;
    cfg->fetch_timeout_ms = 2000;
    cfg->request_timeout_ms = 2000;
    cfg->retry_backoff_ms = 20;
    cfg->fetch_max_wait_ms = 500;
    cfg->fetch_max_bytes = 8u << 20;
    cfg->snapshot_chunk_bytes = 1u << 20;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
}

/* splitmix64: small, good enough for timeouts, and fully determined by the seed. */
static uint64_t rnd(gr_raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t election_timeout(gr_raft *r)
{
    int64_t t = r->cfg.election_timeout_ms;
    return t + (int64_t)(rnd(r) % (uint64_t)t);
}

static int voter_index(const gr_raft *r, int32_t id)
{
    for (size_t i = 0; i < r->cfg.n_voters; i++)
        if (r->cfg.voters[i] == id)
            return (int)i;
    return -1;
}

static int popcount32(uint32_t x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- the log, through the shell's interface ---- */

static int64_t log_start(gr_raft *r) { return r->ops.start_offset(r->ops.ctx); }
static int64_t log_end(gr_raft *r) { return r->ops.end_offset(r->ops.ctx); }

/* Epoch of the last entry: in the log, else the snapshot's, else 0. */
static int32_t last_epoch(gr_raft *r)
{
    int64_t end = log_end(r);
    if (end > log_start(r))
        return r->ops.epoch_at(r->ops.ctx, end - 1);
    if (r->snapshot.end_offset >= 0 && r->snapshot.end_offset == end)
        return r->snapshot.epoch;
    return 0;
}

/* OffsetForLeaderEpoch over the log and, below it, the snapshot. */
static void end_for_epoch(gr_raft *r, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    int32_t e = -1;
    int64_t x = -1;
    r->ops.epoch_end_offset(r->ops.ctx, epoch, &e, &x);
    if (e < 0 && r->snapshot.end_offset > 0 && epoch >= r->snapshot.epoch) {
        /* Every entry in the log is newer than `epoch`: the snapshot's epoch
         * is the largest one not above it, and it ends where the snapshot does. */
        e = r->snapshot.epoch;
        x = r->snapshot.end_offset;
    }
    *out_epoch = e;
    *out_end = x;
}

/* ---- effects ---- */

/* Makes room for `n` more effects, so that pushes during one input cannot
 * fail half-way through a state change. */
static int reserve(gr_raft *r, size_t n)
{
    if (r->cap_eff - r->n_eff >= n)
        return 0;
    size_t cap = r->cap_eff ? r->cap_eff : 16;
    while (cap - r->n_eff < n)
        cap *= 2;
    gr_raft_effect *e = realloc(r->eff, cap * sizeof *e);
    if (!e)
        return -1;
    r->eff = e;
    r->cap_eff = cap;
    return 0;
}

/* Enough for any single input: a few transitions plus a message or two to
 * every voter and observer. */
static int reserve_for_input(gr_raft *r)
{
    return reserve(r, 24 + 3 * (r->cfg.n_voters + r->n_obs));
}

static gr_raft_effect *push(gr_raft *r, gr_raft_effect_type type)
{
    if (r->n_eff == r->cap_eff && reserve(r, 8) != 0) {
        GR_ERROR(SUB, "node %d epoch %d: effect queue full, out of memory", r->cfg.node_id,
                 r->epoch);
        return NULL;
    }
    gr_raft_effect *e = &r->eff[r->n_eff++];
    memset(e, 0, sizeof *e);
    e->type = type;
    return e;
}

static void persist(gr_raft *r)
{
    gr_raft_effect *e = push(r, GR_RAFT_EFF_PERSIST);
    if (!e)
        abort(); /* unreachable: reserve_for_input made room; never skip a persist */
    e->state.epoch = r->epoch;
    e->state.voted_for = r->voted_for;
    e->state.leader_id = r->leader_id;
}

static void set_role(gr_raft *r, gr_raft_role role)
{
    gr_raft_role old = r->role;
    r->role = role;
    GR_INFO(SUB, "node %d epoch %d: %s -> %s (leader %d, voted for %d)", r->cfg.node_id, r->epoch,
            gr_raft_role_name(old), gr_raft_role_name(role), r->leader_id, r->voted_for);
    gr_raft_effect *e = push(r, GR_RAFT_EFF_ROLE);
    if (e) {
        e->role = role;
        e->epoch = r->epoch;
        e->leader_id = r->leader_id;
    }
}

static void set_hw(gr_raft *r, int64_t hw)
{
    if (hw <= r->hw)
        return;
    r->hw = hw;
    gr_raft_effect *e = push(r, GR_RAFT_EFF_COMMIT);
    if (e)
        e->high_watermark = hw;
}

/* A message to `to` with the common fields set; NULL if it cannot be queued
 * (treated as a lost message). */
static gr_raft_msg *send(gr_raft *r, int32_t to, gr_raft_msg_type type)
{
    gr_raft_effect *e = push(r, GR_RAFT_EFF_SEND);
    if (!e)
        return NULL;
    e->to = to;
    gr_raft_msg *m = &e->msg;
    m->type = type;
    m->from = r->cfg.node_id;
    m->epoch = r->epoch;
    /* A resigned leader no longer names itself: nobody should follow it. */
    m->leader_id = r->role == GR_RAFT_RESIGNED ? GR_RAFT_NO_NODE : r->leader_id;
    m->fetch_offset = -1;
    m->high_watermark = -1;
    m->diverging_epoch = -1;
    m->diverging_end_offset = -1;
    m->snapshot_id.end_offset = -1;
    m->snapshot_id.epoch = -1;
    m->position = -1;
    m->size = -1;
    return m;
}

/* ---- messages ---- */

/* One block: the entries array, then their data, then the snapshot bytes. */
static bool msg_fill(gr_raft_msg *m, const gr_raft_entry *entries, size_t n, const uint8_t *bytes,
                     size_t n_bytes)
{
    size_t total = n * sizeof(gr_raft_entry);
    for (size_t i = 0; i < n; i++) {
        if (total > SIZE_MAX - entries[i].len)
            return false;
        total += entries[i].len;
    }
    if (total > SIZE_MAX - n_bytes)
        return false;
    total += n_bytes;
    m->owned = NULL;
    m->entries = NULL;
    m->bytes = NULL;
    m->n_entries = 0;
    m->n_bytes = 0;
    if (total == 0)
        return true;
    uint8_t *block = malloc(total);
    if (!block)
        return false;
    gr_raft_entry *out = (gr_raft_entry *)(void *)block;
    uint8_t *p = block + n * sizeof(gr_raft_entry);
    for (size_t i = 0; i < n; i++) {
        out[i] = entries[i];
        if (entries[i].len)
            memcpy(p, entries[i].data, entries[i].len);
        out[i].data = p;
        p += entries[i].len;
    }
    if (n_bytes)
        memcpy(p, bytes, n_bytes);
    m->owned = block;
    m->entries = n ? out : NULL;
    m->n_entries = n;
    m->bytes = n_bytes ? p : NULL;
    m->n_bytes = n_bytes;
    return true;
}

gr_raft_msg *gr_raft_msg_dup(const gr_raft_msg *m)
{
    gr_raft_msg *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    *c = *m;
    if (!msg_fill(c, m->entries, m->n_entries, m->bytes, m->n_bytes)) {
        free(c);
        return NULL;
    }
    return c;
}

void gr_raft_msg_free(gr_raft_msg *m)
{
    if (!m)
        return;
    free(m->owned);
    free(m);
}

size_t gr_raft_effects(const gr_raft *r, const gr_raft_effect **out)
{
    *out = r->eff;
    return r->n_eff;
}

void gr_raft_effects_clear(gr_raft *r)
{
    for (size_t i = 0; i < r->n_eff; i++)
        if (r->eff[i].type == GR_RAFT_EFF_SEND)
            free(r->eff[i].msg.owned);
    r->n_eff = 0;
}

/* ---- role transitions ---- */

static void leave_leader(gr_raft *r)
{
    for (size_t i = 0; i < r->cfg.n_voters; i++)
        r->reps[i].parked = false;
    r->n_obs = 0;
}

static void reset_fetch(gr_raft *r)
{
    r->inflight = false;
    r->snap_fetching = false;
    r->next_fetch_at = r->now;
    r->fetch_target = GR_RAFT_NO_NODE;
}

static void become_unattached(gr_raft *r, int32_t epoch)
{
    if (epoch > r->epoch) {
        r->epoch = epoch;
        r->voted_for = GR_RAFT_NO_NODE;
    }
    r->leader_id = GR_RAFT_NO_NODE;
    leave_leader(r);
    reset_fetch(r);
    r->last_leader_contact = INT64_MIN;
    r->election_deadline = r->now + election_timeout(r);
    r->fetch_deadline = r->now + r->cfg.fetch_timeout_ms;
    persist(r);
    set_role(r, r->self >= 0 ? GR_RAFT_UNATTACHED : GR_RAFT_OBSERVER);
}

static void become_follower(gr_raft *r, int32_t epoch, int32_t leader)
{
    if (epoch > r->epoch) {
        r->epoch = epoch;
        r->voted_for = GR_RAFT_NO_NODE;
    }
    r->leader_id = leader;
    leave_leader(r);
    reset_fetch(r);
    r->last_leader_contact = INT64_MIN;
    r->fetch_deadline = r->now + r->cfg.fetch_timeout_ms;
    persist(r);
    set_role(r, r->self >= 0 ? GR_RAFT_FOLLOWER : GR_RAFT_OBSERVER);
}

static void send_vote_requests(gr_raft *r, bool pre_vote)
{
    int64_t end = log_end(r);
    int32_t le = last_epoch(r);
    for (size_t i = 0; i < r->cfg.n_voters; i++) {
        if ((int)i == r->self || ((r->granted | r->rejected) >> i & 1))
            continue;
        gr_raft_msg *m = send(r, r->cfg.voters[i], GR_RAFT_MSG_VOTE_REQ);
        if (!m)
            continue;
        m->pre_vote = pre_vote;
        m->last_epoch = le;
        m->last_offset = end;
    }
    r->vote_resend_at = r->now + r->cfg.request_timeout_ms;
}

static int become_leader(gr_raft *r);

static int become_candidate(gr_raft *r)
{
    r->epoch++;
    r->voted_for = r->cfg.node_id;
    r->leader_id = GR_RAFT_NO_NODE;
    leave_leader(r);
    reset_fetch(r);
    r->granted = 1u << r->self;
    r->rejected = 0;
    r->election_deadline = r->now + election_timeout(r);
    persist(r); /* the self-vote is durable before any Vote request leaves */
    set_role(r, GR_RAFT_CANDIDATE);
    if (popcount32(r->granted) >= r->majority)
        return become_leader(r);
    send_vote_requests(r, false);
    return GR_RAFT_OK;
}

static int become_prospective(gr_raft *r)
{
    if (!r->cfg.pre_vote)
        return become_candidate(r);
    if (r->leader_id == r->cfg.node_id)
        r->leader_id = GR_RAFT_NO_NODE; /* from resigned: we are nobody's leader */
    reset_fetch(r);
    r->granted = 1u << r->self;
    r->rejected = 0;
    r->election_deadline = r->now + election_timeout(r);
    set_role(r, GR_RAFT_PROSPECTIVE);
    if (popcount32(r->granted) >= r->majority)
        return become_candidate(r);
    send_vote_requests(r, true);
    return GR_RAFT_OK;
}

static void send_begin(gr_raft *r, size_t i)
{
    gr_raft_msg *m = send(r, r->cfg.voters[i], GR_RAFT_MSG_BEGIN_EPOCH_REQ);
    (void)m;
    r->reps[i].begin_sent_ms = r->now;
}

static int become_leader(gr_raft *r)
{
    r->leader_id = r->cfg.node_id;
    reset_fetch(r);
    r->n_obs = 0;
    for (size_t i = 0; i < r->cfg.n_voters; i++) {
        replica *p = &r->reps[i];
        memset(p, 0, sizeof *p);
        p->id = r->cfg.voters[i];
        p->voter = true;
        p->end_offset = -1;
        p->last_fetch_ms = r->now; /* check-quorum grace: a full fetch timeout */
        p->hw_sent = -1;
    }
    persist(r);
    set_role(r, GR_RAFT_LEADER);

    /* The LeaderChange entry opens the epoch: the high watermark can only
     * move once an entry of this epoch is on a majority. */
    r->epoch_start = log_end(r);
    uint8_t body[4] = {(uint8_t)(r->cfg.node_id >> 24), (uint8_t)(r->cfg.node_id >> 16),
                       (uint8_t)(r->cfg.node_id >> 8), (uint8_t)r->cfg.node_id};
    gr_raft_entry e = {.offset = r->epoch_start,
                       .epoch = r->epoch,
                       .type = GR_RAFT_ENTRY_LEADER_CHANGE,
                       .len = sizeof body,
                       .data = body};
    if (r->ops.append(r->ops.ctx, &e, 1) != 0) {
        GR_ERROR(SUB, "node %d epoch %d: appending the LeaderChange entry failed", r->cfg.node_id,
                 r->epoch);
        return GR_RAFT_ERR_IO;
    }
    for (size_t i = 0; i < r->cfg.n_voters; i++)
        if ((int)i != r->self)
            send_begin(r, i);
    return GR_RAFT_OK;
}

static void resign(gr_raft *r)
{
    leave_leader(r);
    r->election_deadline = r->now + election_timeout(r);
    set_role(r, GR_RAFT_RESIGNED);
    GR_WARN(SUB, "node %d epoch %d: resigned, no fetch from a majority of voters in %d ms",
            r->cfg.node_id, r->epoch, r->cfg.fetch_timeout_ms);
    for (size_t i = 0; i < r->cfg.n_voters; i++)
        if ((int)i != r->self) {
            gr_raft_msg *m = send(r, r->cfg.voters[i], GR_RAFT_MSG_END_EPOCH_REQ);
            if (m)
                m->leader_id = r->cfg.node_id; /* whose epoch ends */
        }
}

/* ---- leader ---- */

static replica *find_replica(gr_raft *r, int32_t id, bool add)
{
    int vi = voter_index(r, id);
    if (vi >= 0)
        return vi == r->self ? NULL : &r->reps[vi];
    for (size_t i = 0; i < r->n_obs; i++)
        if (r->obs[i].id == id)
            return &r->obs[i];
    if (!add)
        return NULL;
    if (r->n_obs == r->cap_obs) {
        size_t cap = r->cap_obs ? r->cap_obs * 2 : 4;
        replica *o = realloc(r->obs, cap * sizeof *o);
        if (!o)
            return NULL; /* served, but not tracked */
        r->obs = o;
        r->cap_obs = cap;
    }
    replica *p = &r->obs[r->n_obs++];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->end_offset = -1;
    p->last_fetch_ms = -1;
    p->hw_sent = -1;
    return p;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void complete_parked(gr_raft *r, bool expired_only);

/* The largest offset on a majority of voters, if it is in this epoch. */
static void leader_update_hw(gr_raft *r)
{
    int64_t offs[GR_RAFT_MAX_VOTERS];
    size_t n = r->cfg.n_voters;
    for (size_t i = 0; i < n; i++)
        offs[i] = (int)i == r->self ? r->flushed : r->reps[i].end_offset;
    qsort(offs, n, sizeof offs[0], cmp_desc);
    int64_t cand = offs[r->majority - 1];
    if (cand > r->hw && cand > r->epoch_start) {
        set_hw(r, cand);
        complete_parked(r, false);
    }
}

/* Fetch response with entries from `offset` (or none) and the high watermark. */
static void reply_fetch(gr_raft *r, replica *p, int32_t to, uint64_t corr, int64_t offset)
{
    gr_raft_msg *m = send(r, to, GR_RAFT_MSG_FETCH_RESP);
    if (!m)
        return;
    m->corr = corr;
    m->fetch_offset = offset;
    m->high_watermark = r->hw;
    if (p)
        p->hw_sent = r->hw;
    if (offset < log_end(r)) {
        gr_raft_entry tmp[READ_BATCH];
        size_t n = 0;
        if (r->ops.read(r->ops.ctx, offset, r->cfg.fetch_max_bytes, tmp, READ_BATCH, &n) != 0) {
            GR_ERROR(SUB, "node %d epoch %d: reading the log at %lld failed", r->cfg.node_id,
                     r->epoch, (long long)offset);
            n = 0;
        }
        if (!msg_fill(m, tmp, n, NULL, 0)) {
            GR_WARN(SUB, "node %d epoch %d: out of memory for a fetch response to %d",
                    r->cfg.node_id, r->epoch, to);
            r->n_eff--; /* dropped: the replica will fetch again */
        }
    }
}

static void complete_parked(gr_raft *r, bool expired_only)
{
    int64_t end = log_end(r);
    for (size_t k = 0; k < r->cfg.n_voters + r->n_obs; k++) {
        replica *p = k < r->cfg.n_voters ? &r->reps[k] : &r->obs[k - r->cfg.n_voters];
        if (!p->parked)
            continue;
        bool ready = p->parked_offset < end || r->hw > p->hw_sent;
        if (expired_only ? r->now >= p->parked_deadline : ready) {
            p->parked = false;
            reply_fetch(r, p, p->id, p->parked_corr, p->parked_offset);
        }
    }
}

enum { FETCH_VALID, FETCH_DIVERGING, FETCH_SNAPSHOT };

/* Kafka's validation of (fetch_offset, last_fetched_epoch) against the log. */
static int validate_fetch(gr_raft *r, int64_t off, int32_t lfe, int32_t *de, int64_t *dx)
{
    int64_t start = log_start(r);
    if (off == 0 && lfe == 0)
        return start > 0 ? FETCH_SNAPSHOT : FETCH_VALID;
    if (off < start)
        return FETCH_SNAPSHOT;
    int32_t e;
    int64_t x;
    end_for_epoch(r, lfe, &e, &x);
    if (e < 0) {
        if (start > 0)
            return FETCH_SNAPSHOT;
        *de = 0; /* nothing in common: start over */
        *dx = 0;
        return FETCH_DIVERGING;
    }
    if (e != lfe || x < off) {
        if (x < start)
            return FETCH_SNAPSHOT;
        *de = e;
        *dx = x;
        return FETCH_DIVERGING;
    }
    return FETCH_VALID;
}

static void leader_on_fetch(gr_raft *r, const gr_raft_msg *m)
{
    replica *p = find_replica(r, m->from, true);
    if (m->epoch != r->epoch) { /* higher epochs were taken first: an older one */
        gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_FETCH_RESP);
        if (o) {
            o->corr = m->corr;
            o->error = GR_RAFT_E_FENCED_LEADER_EPOCH;
        }
        return;
    }
    if (p) {
        p->parked = false; /* a newer fetch replaces a parked one */
        p->last_fetch_ms = r->now;
        p->begin_acked = true;
    }
    int32_t de = -1;
    int64_t dx = -1;
    int v = validate_fetch(r, m->fetch_offset, m->last_fetched_epoch, &de, &dx);
    if (v != FETCH_VALID) {
        gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_FETCH_RESP);
        if (!o)
            return;
        o->corr = m->corr;
        o->fetch_offset = m->fetch_offset;
        o->high_watermark = r->hw;
        if (v == FETCH_SNAPSHOT) {
            o->snapshot_id = r->snapshot;
        } else {
            o->diverging_epoch = de;
            o->diverging_end_offset = dx;
        }
        return;
    }
    if (p) {
        p->end_offset = m->fetch_offset;
        if (p->voter)
            leader_update_hw(r);
    }
    if (p && m->fetch_offset >= log_end(r) && r->hw <= p->hw_sent && r->cfg.fetch_max_wait_ms > 0) {
        p->parked = true;
        p->parked_corr = m->corr;
        p->parked_offset = m->fetch_offset;
        p->parked_deadline = r->now + r->cfg.fetch_max_wait_ms;
        return;
    }
    reply_fetch(r, p, m->from, m->corr, m->fetch_offset);
}

static void leader_on_fetch_snapshot(gr_raft *r, const gr_raft_msg *m)
{
    gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_FETCH_SNAPSHOT_RESP);
    if (!o)
        return;
    o->corr = m->corr;
    o->snapshot_id = m->snapshot_id;
    o->position = m->position;
    if (m->epoch != r->epoch) {
        o->error = GR_RAFT_E_FENCED_LEADER_EPOCH;
        return;
    }
    replica *p = find_replica(r, m->from, true);
    if (p) {
        p->last_fetch_ms = r->now;
        p->begin_acked = true;
    }
    size_t max = r->cfg.snapshot_chunk_bytes;
    uint8_t *buf = malloc(max ? max : 1);
    if (!buf) {
        r->n_eff--; /* lost; the replica asks again */
        return;
    }
    size_t len = 0;
    int64_t size = -1;
    int rc = m->position < 0 ? 1
                             : r->ops.snapshot_read(r->ops.ctx, m->snapshot_id, m->position, buf,
                                                    max, &len, &size);
    if (rc != 0) {
        free(buf);
        o->error = GR_RAFT_E_SNAPSHOT_NOT_FOUND;
        return;
    }
    if (m->position > size) {
        free(buf);
        o->error = GR_RAFT_E_POSITION_OUT_OF_RANGE;
        return;
    }
    o->owned = buf;
    o->bytes = buf;
    o->n_bytes = len;
    o->size = size;
}

/* ---- follower and observer ---- */

static bool fetching_role(const gr_raft *r)
{
    return r->role == GR_RAFT_FOLLOWER || r->role == GR_RAFT_OBSERVER;
}

/* Sends the next Fetch (or FetchSnapshot) when none is in flight and the
 * log is durable to its end: the fetch offset acknowledges what it covers. */
static void maybe_fetch(gr_raft *r)
{
    if (!fetching_role(r) || r->inflight || r->now < r->next_fetch_at)
        return;
    int64_t end = log_end(r);
    if (!r->snap_fetching && r->flushed < end)
        return;
    int32_t to = r->leader_id;
    if (to < 0) {
        if (r->role != GR_RAFT_OBSERVER)
            return;
        if (r->fetch_target < 0) /* look for the leader through a random voter */
            r->fetch_target = r->cfg.voters[rnd(r) % r->cfg.n_voters];
        to = r->fetch_target;
    }
    gr_raft_msg *m;
    if (r->snap_fetching) {
        m = send(r, to, GR_RAFT_MSG_FETCH_SNAPSHOT_REQ);
        if (!m)
            return;
        m->snapshot_id = r->snap_id;
        m->position = r->snap_pos;
    } else {
        m = send(r, to, GR_RAFT_MSG_FETCH_REQ);
        if (!m)
            return;
        m->fetch_offset = end;
        m->last_fetched_epoch = last_epoch(r);
    }
    m->corr = ++r->next_corr;
    r->inflight = true;
    r->inflight_corr = m->corr;
    r->inflight_sent = r->now;
    r->inflight_offset = end;
}

static void fetch_backoff(gr_raft *r) { r->next_fetch_at = r->now + r->cfg.retry_backoff_ms; }

static void leader_contact(gr_raft *r)
{
    r->last_leader_contact = r->now;
    r->fetch_deadline = r->now + r->cfg.fetch_timeout_ms;
}

/* Our leader resigned: stand for election soon, without waiting out the
 * fetch timeout (KRaft waits a backoff; a random one spreads candidates). */
static void leader_gone(gr_raft *r)
{
    r->last_leader_contact = INT64_MIN;
    int64_t t = r->now + (int64_t)(rnd(r) % (uint64_t)(r->cfg.election_timeout_ms / 2 + 1));
    r->fetch_deadline = min64(r->fetch_deadline, t);
}

static bool entries_ok(const gr_raft_msg *m, int64_t end)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].offset != end + (int64_t)i || m->entries[i].epoch > m->epoch ||
            m->entries[i].epoch < 1 || (i > 0 && m->entries[i].epoch < m->entries[i - 1].epoch))
            return false;
    return true;
}

static int follower_truncate(gr_raft *r, int32_t de, int64_t dx)
{
    int64_t start = log_start(r), end = log_end(r), t;
    if (de <= 0) {
        t = min64(dx, end);
    } else {
        int32_t le;
        int64_t lx;
        end_for_epoch(r, de, &le, &lx);
        if (le == de)
            t = min64(lx, dx);
        else if (le >= 0)
            t = lx;
        else
            t = start;
    }
    t = max64(t, start);
    if (t >= end) {
        fetch_backoff(r); /* no progress possible: do not spin */
        return GR_RAFT_OK;
    }
    if (t < r->hw)
        GR_ERROR(SUB, "node %d epoch %d: truncating to %lld below the high watermark %lld",
                 r->cfg.node_id, r->epoch, (long long)t, (long long)r->hw);
    GR_INFO(SUB,
            "node %d epoch %d: log diverges from leader %d at epoch %d, truncating %lld -> %lld",
            r->cfg.node_id, r->epoch, r->leader_id, de, (long long)end, (long long)t);
    if (r->ops.truncate(r->ops.ctx, t) != 0)
        return GR_RAFT_ERR_IO;
    r->flushed = min64(r->flushed, t);
    return GR_RAFT_OK;
}

static int on_fetch_resp(gr_raft *r, const gr_raft_msg *m)
{
    if (!fetching_role(r) || !r->inflight || m->corr != r->inflight_corr || r->snap_fetching)
        return GR_RAFT_OK;
    r->inflight = false;
    /* An error, or an answer from an older epoch (a newer one would have
     * moved us to it already): try again shortly. */
    if (m->error != GR_RAFT_E_NONE || m->epoch != r->epoch) {
        if (r->role == GR_RAFT_OBSERVER && (r->leader_id < 0 || m->from == r->leader_id)) {
            /* The voter asked (or the leader we followed) cannot serve us:
             * ask another voter, which names the current leader. */
            r->leader_id = GR_RAFT_NO_NODE;
            r->fetch_target = GR_RAFT_NO_NODE;
        }
        if (r->role == GR_RAFT_FOLLOWER && m->from == r->leader_id && m->epoch == r->epoch &&
            m->error == GR_RAFT_E_NOT_LEADER)
            leader_gone(r); /* it resigned and its EndQuorumEpoch was lost */
        fetch_backoff(r);
        return GR_RAFT_OK;
    }
    if (m->from != r->leader_id)
        return GR_RAFT_OK;
    leader_contact(r);
    if (m->snapshot_id.end_offset >= 0) {
        GR_INFO(SUB, "node %d epoch %d: fetch offset %lld is below leader %d's log start, "
                     "fetching snapshot %lld-%d",
                r->cfg.node_id, r->epoch, (long long)r->inflight_offset, r->leader_id,
                (long long)m->snapshot_id.end_offset, m->snapshot_id.epoch);
        r->snap_fetching = true;
        r->snap_id = m->snapshot_id;
        r->snap_pos = 0;
        return GR_RAFT_OK;
    }
    if (m->diverging_epoch >= 0)
        return follower_truncate(r, m->diverging_epoch, m->diverging_end_offset);
    int64_t end = log_end(r);
    if (m->fetch_offset != r->inflight_offset || end != r->inflight_offset || !entries_ok(m, end))
        return GR_RAFT_OK; /* not for this log state */
    if (m->n_entries > 0 && r->ops.append(r->ops.ctx, m->entries, m->n_entries) != 0) {
        GR_ERROR(SUB, "node %d epoch %d: appending fetched entries failed", r->cfg.node_id,
                 r->epoch);
        return GR_RAFT_ERR_IO;
    }
    /* The log now equals the leader's up to its end, so the leader's high
     * watermark holds for the part we have. */
    set_hw(r, min64(m->high_watermark, log_end(r)));
    return GR_RAFT_OK;
}

static int on_fetch_snapshot_resp(gr_raft *r, const gr_raft_msg *m)
{
    if (!fetching_role(r) || !r->inflight || m->corr != r->inflight_corr ||
        m->epoch != r->epoch || !r->snap_fetching)
        return GR_RAFT_OK;
    r->inflight = false;
    if (m->error != GR_RAFT_E_NONE) {
        if (m->error == GR_RAFT_E_SNAPSHOT_NOT_FOUND || m->error == GR_RAFT_E_POSITION_OUT_OF_RANGE)
            r->snap_fetching = false; /* the leader moved on: Fetch tells the new id */
        fetch_backoff(r);
        return GR_RAFT_OK;
    }
    if (m->from != r->leader_id || m->snapshot_id.end_offset != r->snap_id.end_offset ||
        m->snapshot_id.epoch != r->snap_id.epoch || m->position != r->snap_pos || m->size < 0)
        return GR_RAFT_OK;
    leader_contact(r);
    if (m->n_bytes > 0) {
        if (r->ops.snapshot_write(r->ops.ctx, r->snap_id, r->snap_pos, m->bytes, m->n_bytes) != 0)
            return GR_RAFT_ERR_IO;
        r->snap_pos += (int64_t)m->n_bytes;
    }
    if (r->snap_pos < m->size) {
        if (m->n_bytes == 0)
            fetch_backoff(r);
        return GR_RAFT_OK;
    }
    if (r->ops.snapshot_install(r->ops.ctx, r->snap_id) != 0)
        return GR_RAFT_ERR_IO;
    r->snapshot = r->snap_id;
    r->snap_fetching = false;
    r->flushed = r->snap_id.end_offset;
    GR_INFO(SUB, "node %d epoch %d: installed snapshot %lld-%d from leader %d", r->cfg.node_id,
            r->epoch, (long long)r->snap_id.end_offset, r->snap_id.epoch, r->leader_id);
    gr_raft_effect *e = push(r, GR_RAFT_EFF_SNAPSHOT_INSTALLED);
    if (e)
        e->snapshot = r->snap_id;
    set_hw(r, r->snap_id.end_offset);
    return GR_RAFT_OK;
}

/* ---- votes ---- */

static void on_vote_req(gr_raft *r, const gr_raft_msg *m)
{
    bool grant = false;
    int16_t err = GR_RAFT_E_NONE;
    if (r->self < 0 || voter_index(r, m->from) < 0) {
        err = GR_RAFT_E_INCONSISTENT_VOTER;
    } else if (m->epoch < r->epoch) {
        err = GR_RAFT_E_FENCED_LEADER_EPOCH;
    } else {
        int32_t le = last_epoch(r);
        bool log_ok =
            m->last_epoch > le || (m->last_epoch == le && m->last_offset >= log_end(r));
        if (m->pre_vote) {
            /* Would we vote in the next epoch? Not while a leader is alive. */
            bool live_leader =
                r->role == GR_RAFT_LEADER ||
                (r->leader_id >= 0 && r->role != GR_RAFT_RESIGNED &&
                 r->last_leader_contact != INT64_MIN &&
                 r->now - r->last_leader_contact < r->cfg.fetch_timeout_ms);
            grant = log_ok && !live_leader;
        } else if (r->leader_id < 0 &&
                   (r->voted_for == GR_RAFT_NO_NODE || r->voted_for == m->from) && log_ok &&
                   r->role != GR_RAFT_LEADER && r->role != GR_RAFT_RESIGNED) {
            grant = true;
            if (r->voted_for != m->from) {
                r->voted_for = m->from;
                persist(r); /* before the response that grants it */
                r->election_deadline = r->now + election_timeout(r);
                if (r->role != GR_RAFT_UNATTACHED)
                    set_role(r, GR_RAFT_UNATTACHED);
                else
                    GR_INFO(SUB, "node %d epoch %d: voted for %d", r->cfg.node_id, r->epoch,
                            m->from);
            }
        }
    }
    gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_VOTE_RESP);
    if (!o)
        return;
    o->corr = m->corr;
    o->error = err;
    o->pre_vote = m->pre_vote;
    o->granted = grant;
}

static int on_vote_resp(gr_raft *r, const gr_raft_msg *m)
{
    int vi = voter_index(r, m->from);
    if (vi < 0 || m->epoch != r->epoch)
        return GR_RAFT_OK;
    bool counts = (m->pre_vote && r->role == GR_RAFT_PROSPECTIVE) ||
                  (!m->pre_vote && r->role == GR_RAFT_CANDIDATE);
    if (!counts)
        return GR_RAFT_OK;
    if (m->granted)
        r->granted |= 1u << vi;
    else
        r->rejected |= 1u << vi;
    if (popcount32(r->granted) >= r->majority)
        return r->role == GR_RAFT_PROSPECTIVE ? become_candidate(r) : become_leader(r);
    if (r->role == GR_RAFT_PROSPECTIVE && popcount32(r->rejected) >= r->majority &&
        r->leader_id >= 0 && r->leader_id != r->cfg.node_id) {
        /* The quorum still has our leader: go back to following it. */
        become_follower(r, r->epoch, r->leader_id);
    }
    return GR_RAFT_OK;
}

/* ---- epochs ---- */

/* The leader a message names for its epoch, if any. */
static int32_t leader_hint(const gr_raft_msg *m)
{
    switch (m->type) {
    case GR_RAFT_MSG_BEGIN_EPOCH_REQ: return m->from;
    case GR_RAFT_MSG_END_EPOCH_REQ: return GR_RAFT_NO_NODE; /* that leader is leaving */
    case GR_RAFT_MSG_FETCH_RESP:
    case GR_RAFT_MSG_FETCH_SNAPSHOT_RESP:
        return m->error == GR_RAFT_E_NONE ? m->from : m->leader_id;
    default: return m->leader_id;
    }
}

/* Moves to a newer epoch, or learns the current epoch's leader. */
static void observe_epoch(gr_raft *r, const gr_raft_msg *m)
{
    int32_t hint = leader_hint(m);
    if (hint == r->cfg.node_id)
        hint = GR_RAFT_NO_NODE;
    if (m->epoch > r->epoch) {
        if (hint >= 0)
            become_follower(r, m->epoch, hint);
        else
            become_unattached(r, m->epoch);
    } else if (m->epoch == r->epoch && hint >= 0 && r->leader_id < 0) {
        if (r->role == GR_RAFT_UNATTACHED || r->role == GR_RAFT_PROSPECTIVE ||
            r->role == GR_RAFT_CANDIDATE || r->role == GR_RAFT_OBSERVER)
            become_follower(r, r->epoch, hint);
    }
}

/* ---- inputs ---- */

static void advance_clock(gr_raft *r, int64_t now_ms)
{
    if (now_ms > r->now)
        r->now = now_ms;
}

int gr_raft_receive(gr_raft *r, int64_t now_ms, const gr_raft_msg *m)
{
    if (!m || m->from == r->cfg.node_id)
        return GR_RAFT_ERR_INVALID;
    if (reserve_for_input(r) != 0)
        return GR_RAFT_ERR_NOMEM;
    advance_clock(r, now_ms);
    observe_epoch(r, m);
    int rc = GR_RAFT_OK;
    switch (m->type) {
    case GR_RAFT_MSG_VOTE_REQ: on_vote_req(r, m); break;
    case GR_RAFT_MSG_VOTE_RESP: rc = on_vote_resp(r, m); break;
    case GR_RAFT_MSG_BEGIN_EPOCH_REQ:
        if (m->epoch == r->epoch && r->leader_id == m->from && r->role == GR_RAFT_PROSPECTIVE)
            become_follower(r, r->epoch, m->from);
        if (m->epoch == r->epoch && r->leader_id == m->from && fetching_role(r))
            leader_contact(r);
        {
            gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_BEGIN_EPOCH_RESP);
            if (o)
                o->corr = m->corr;
        }
        break;
    case GR_RAFT_MSG_BEGIN_EPOCH_RESP:
        if (r->role == GR_RAFT_LEADER && m->epoch == r->epoch) {
            replica *p = find_replica(r, m->from, false);
            if (p)
                p->begin_acked = true;
        }
        break;
    case GR_RAFT_MSG_END_EPOCH_REQ:
        if (m->epoch == r->epoch && r->role == GR_RAFT_FOLLOWER && r->leader_id == m->from)
            leader_gone(r);
        {
            gr_raft_msg *o = send(r, m->from, GR_RAFT_MSG_END_EPOCH_RESP);
            if (o)
                o->corr = m->corr;
        }
        break;
    case GR_RAFT_MSG_END_EPOCH_RESP: break;
    case GR_RAFT_MSG_FETCH_REQ:
    case GR_RAFT_MSG_FETCH_SNAPSHOT_REQ:
        if (r->role == GR_RAFT_LEADER) {
            if (m->type == GR_RAFT_MSG_FETCH_REQ)
                leader_on_fetch(r, m);
            else
                leader_on_fetch_snapshot(r, m);
        } else {
            gr_raft_msg *o =
                send(r, m->from,
                     m->type == GR_RAFT_MSG_FETCH_REQ ? GR_RAFT_MSG_FETCH_RESP
                                                      : GR_RAFT_MSG_FETCH_SNAPSHOT_RESP);
            if (o) {
                o->corr = m->corr;
                o->error = m->epoch < r->epoch ? GR_RAFT_E_FENCED_LEADER_EPOCH
                                               : GR_RAFT_E_NOT_LEADER;
            }
        }
        break;
    case GR_RAFT_MSG_FETCH_RESP: rc = on_fetch_resp(r, m); break;
    case GR_RAFT_MSG_FETCH_SNAPSHOT_RESP: rc = on_fetch_snapshot_resp(r, m); break;
    default: return GR_RAFT_ERR_INVALID;
    }
    if (rc == GR_RAFT_OK)
        maybe_fetch(r);
    return rc;
}

/* When the leader loses its fetch majority, given the voters' last fetches. */
static int64_t check_quorum_deadline(const gr_raft *r)
{
    if (!r->cfg.check_quorum || r->majority <= 1)
        return NEVER;
    int64_t last[GR_RAFT_MAX_VOTERS];
    size_t n = 0;
    for (size_t i = 0; i < r->cfg.n_voters; i++)
        if ((int)i != r->self)
            last[n++] = r->reps[i].last_fetch_ms;
    qsort(last, n, sizeof last[0], cmp_desc);
    /* The leader plus the (majority - 1) most recent fetchers. */
    return last[r->majority - 2] + r->cfg.fetch_timeout_ms;
}

int gr_raft_tick(gr_raft *r, int64_t now_ms)
{
    if (reserve_for_input(r) != 0)
        return GR_RAFT_ERR_NOMEM;
    advance_clock(r, now_ms);
    switch (r->role) {
    case GR_RAFT_UNATTACHED:
    case GR_RAFT_RESIGNED:
        if (r->now >= r->election_deadline)
            return become_prospective(r);
        break;
    case GR_RAFT_PROSPECTIVE:
    case GR_RAFT_CANDIDATE:
        if (r->now >= r->election_deadline) {
            if (r->role == GR_RAFT_PROSPECTIVE && r->leader_id >= 0 &&
                r->leader_id != r->cfg.node_id) {
                become_follower(r, r->epoch, r->leader_id);
                break;
            }
            return become_prospective(r);
        }
        if (r->now >= r->vote_resend_at)
            send_vote_requests(r, r->role == GR_RAFT_PROSPECTIVE);
        break;
    case GR_RAFT_LEADER:
        if (r->now >= check_quorum_deadline(r)) {
            resign(r);
            break;
        }
        complete_parked(r, true);
        for (size_t i = 0; i < r->cfg.n_voters; i++)
            if ((int)i != r->self && !r->reps[i].begin_acked &&
                r->now >= r->reps[i].begin_sent_ms + r->cfg.request_timeout_ms)
                send_begin(r, i);
        break;
    case GR_RAFT_FOLLOWER:
    case GR_RAFT_OBSERVER:
        if (r->now >= r->fetch_deadline) {
            if (r->role == GR_RAFT_FOLLOWER)
                return become_prospective(r);
            /* An observer forgets the silent leader and asks the voters. */
            r->leader_id = GR_RAFT_NO_NODE;
            reset_fetch(r);
            r->fetch_deadline = r->now + r->cfg.fetch_timeout_ms;
        }
        if (r->inflight &&
            r->now >= r->inflight_sent + r->cfg.fetch_max_wait_ms + r->cfg.request_timeout_ms) {
            r->inflight = false; /* lost: ask again */
            if (r->leader_id < 0)
                r->fetch_target = GR_RAFT_NO_NODE;
        }
        maybe_fetch(r);
        break;
    }
    return GR_RAFT_OK;
}

int64_t gr_raft_next_deadline(const gr_raft *r)
{
    switch (r->role) {
    case GR_RAFT_UNATTACHED:
    case GR_RAFT_RESIGNED: return r->election_deadline;
    case GR_RAFT_PROSPECTIVE:
    case GR_RAFT_CANDIDATE: return min64(r->election_deadline, r->vote_resend_at);
    case GR_RAFT_LEADER: {
        int64_t t = check_quorum_deadline(r);
        for (size_t k = 0; k < r->cfg.n_voters + r->n_obs; k++) {
            const replica *p = k < r->cfg.n_voters ? &r->reps[k] : &r->obs[k - r->cfg.n_voters];
            if (p->parked)
                t = min64(t, p->parked_deadline);
            if (k < r->cfg.n_voters && (int)k != r->self && !p->begin_acked)
                t = min64(t, p->begin_sent_ms + r->cfg.request_timeout_ms);
        }
        return t;
    }
    case GR_RAFT_FOLLOWER:
    case GR_RAFT_OBSERVER: {
        int64_t t = r->fetch_deadline;
        if (r->inflight)
            t = min64(t, r->inflight_sent + r->cfg.fetch_max_wait_ms + r->cfg.request_timeout_ms);
        else if (r->next_fetch_at > r->now)
            t = min64(t, r->next_fetch_at);
        return t;
    }
    }
    return NEVER;
}

int gr_raft_propose(gr_raft *r, int64_t now_ms, const gr_raft_entry *entries, size_t n,
                    int64_t *first_offset)
{
    if (r->role != GR_RAFT_LEADER)
        return GR_RAFT_ERR_NOT_LEADER;
    if (n == 0 || !entries)
        return GR_RAFT_ERR_INVALID;
    if (reserve_for_input(r) != 0)
        return GR_RAFT_ERR_NOMEM;
    advance_clock(r, now_ms);
    gr_raft_entry *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return GR_RAFT_ERR_NOMEM;
    int64_t end = log_end(r);
    for (size_t i = 0; i < n; i++) {
        tmp[i] = entries[i];
        tmp[i].offset = end + (int64_t)i;
        tmp[i].epoch = r->epoch;
    }
    int rc = r->ops.append(r->ops.ctx, tmp, n);
    free(tmp);
    if (rc != 0) {
        GR_ERROR(SUB, "node %d epoch %d: appending %zu proposed entries failed", r->cfg.node_id,
                 r->epoch, n);
        return GR_RAFT_ERR_IO;
    }
    if (first_offset)
        *first_offset = end;
    complete_parked(r, false);
    return GR_RAFT_OK;
}

int gr_raft_log_flushed(gr_raft *r, int64_t now_ms, int64_t offset)
{
    if (reserve_for_input(r) != 0)
        return GR_RAFT_ERR_NOMEM;
    advance_clock(r, now_ms);
    offset = min64(offset, log_end(r));
    if (offset > r->flushed)
        r->flushed = offset;
    if (r->role == GR_RAFT_LEADER)
        leader_update_hw(r);
    maybe_fetch(r);
    return GR_RAFT_OK;
}

int gr_raft_snapshot_taken(gr_raft *r, int64_t now_ms, gr_raft_snapshot_id id)
{
    if (id.end_offset < 0 || id.end_offset > r->hw)
        return GR_RAFT_ERR_INVALID;
    if (reserve_for_input(r) != 0)
        return GR_RAFT_ERR_NOMEM;
    advance_clock(r, now_ms);
    if (id.end_offset > r->snapshot.end_offset)
        r->snapshot = id;
    /* The snapshot is durable, so is everything it covers: a follower may
     * take one above its flushed offset (its high watermark can be). */
    if (id.end_offset > r->flushed && id.end_offset <= log_end(r)) {
        r->flushed = id.end_offset;
        if (r->role == GR_RAFT_LEADER)
            leader_update_hw(r);
        maybe_fetch(r);
    }
    return GR_RAFT_OK;
}

/* ---- creation and queries ---- */

gr_raft *gr_raft_create(const gr_raft_config *cfg, const gr_raft_log_ops *ops,
                        const gr_raft_quorum_state *persisted, gr_raft_snapshot_id snapshot,
                        int64_t now_ms)
{
    if (!cfg || !ops || cfg->node_id < 0 || cfg->n_voters < 1 ||
        cfg->n_voters > GR_RAFT_MAX_VOTERS || cfg->election_timeout_ms < 1 ||
        cfg->fetch_timeout_ms < 1 || cfg->request_timeout_ms < 1 || cfg->retry_backoff_ms < 0 ||
        cfg->fetch_max_wait_ms < 0 || cfg->snapshot_chunk_bytes < 1)
        return NULL;
    for (size_t i = 0; i < cfg->n_voters; i++)
        for (size_t j = i + 1; j < cfg->n_voters; j++)
            if (cfg->voters[i] == cfg->voters[j] || cfg->voters[i] < 0)
                return NULL;
    gr_raft *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->ops = *ops;
    r->rng = cfg->seed;
    r->now = now_ms;
    r->self = voter_index(r, cfg->node_id);
    r->majority = (int)cfg->n_voters / 2 + 1;
    r->epoch = persisted ? persisted->epoch : 0;
    r->voted_for = persisted ? persisted->voted_for : GR_RAFT_NO_NODE;
    r->leader_id = persisted ? persisted->leader_id : GR_RAFT_NO_NODE;
    r->snapshot = snapshot.end_offset >= 0 ? snapshot : (gr_raft_snapshot_id){-1, -1};
    r->hw = max64(0, r->snapshot.end_offset);
    r->flushed = log_end(r); /* the shell recovers the log to what was durable */
    r->last_leader_contact = INT64_MIN;
    r->fetch_target = GR_RAFT_NO_NODE;
    r->next_corr = cfg->seed * 0x9e3779b97f4a7c15ull; /* distinct across restarts */
    r->role = r->self >= 0 ? GR_RAFT_UNATTACHED : GR_RAFT_OBSERVER;
    if (reserve_for_input(r) != 0) {
        free(r);
        return NULL;
    }
    int32_t le = last_epoch(r);
    bool stale = le > r->epoch; /* the log saw an epoch the state file did not */
    if (stale) {
        r->epoch = le;
        r->voted_for = GR_RAFT_NO_NODE;
        r->leader_id = GR_RAFT_NO_NODE;
    }
    if (r->self < 0) {
        r->fetch_deadline = r->now + cfg->fetch_timeout_ms;
        if (stale)
            persist(r);
        set_role(r, GR_RAFT_OBSERVER);
    } else if (r->leader_id == cfg->node_id) {
        /* We led this epoch before the restart; the in-memory state of that
         * leadership is gone, so we may not lead it again. */
        r->election_deadline = r->now + election_timeout(r);
        set_role(r, GR_RAFT_RESIGNED);
    } else if (r->leader_id >= 0) {
        r->fetch_deadline = r->now + cfg->fetch_timeout_ms;
        set_role(r, GR_RAFT_FOLLOWER);
    } else {
        r->election_deadline = r->now + election_timeout(r);
        if (stale)
            persist(r);
        set_role(r, GR_RAFT_UNATTACHED);
    }
    return r;
}

void gr_raft_destroy(gr_raft *r)
{
    if (!r)
        return;
    gr_raft_effects_clear(r);
    free(r->eff);
    free(r->obs);
    free(r);
}

gr_raft_role gr_raft_get_role(const gr_raft *r) { return r->role; }
int32_t gr_raft_epoch(const gr_raft *r) { return r->epoch; }
int32_t gr_raft_leader(const gr_raft *r)
{
    return r->role == GR_RAFT_RESIGNED ? GR_RAFT_NO_NODE : r->leader_id;
}
int64_t gr_raft_high_watermark(const gr_raft *r) { return r->hw; }
int64_t gr_raft_flushed_offset(const gr_raft *r) { return r->flushed; }
gr_raft_snapshot_id gr_raft_latest_snapshot(const gr_raft *r) { return r->snapshot; }

size_t gr_raft_describe(const gr_raft *r, gr_raft_replica_info *out, size_t max)
{
    if (r->role != GR_RAFT_LEADER)
        return 0;
    size_t n = 0;
    for (size_t k = 0; k < r->cfg.n_voters + r->n_obs && n < max; k++) {
        const replica *p = k < r->cfg.n_voters ? &r->reps[k] : &r->obs[k - r->cfg.n_voters];
        gr_raft_replica_info *o = &out[n++];
        o->node_id = k < r->cfg.n_voters ? r->cfg.voters[k] : p->id;
        o->voter = k < r->cfg.n_voters;
        if ((int)k == r->self) {
            o->end_offset = r->flushed;
            o->last_fetch_ms = r->now;
        } else {
            o->end_offset = p->end_offset;
            o->last_fetch_ms = p->last_fetch_ms;
        }
    }
    return n;
}
