/*
 * test_group.c - broker/group: the classic group coordinator's state
 * machine, driven with a fake clock and no sockets. Every call's effects
 * are handled as the shell does: records are "appended" (counted and kept)
 * and applied, then the replies are delivered (marked).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/coordinator.h"
#include "broker/group.h"
#include "common/errors.h"
#include "tests/unit/suites.h"

#define S(x) ((gr_str){(x), (int32_t)strlen(x)})

static int delivered_mark;
#define DELIVERED ((void *)&delivered_mark)

typedef struct {
    gr_gc *gc;
    gr_gc_config cfg;
    int64_t now;
    gr_arena arena; /* responses filled at once */
    size_t nrecords;      /* records of the last call */
    gr_offsets_rec_kind kinds[64];
    bool tombstones[64];
    gr_gc_reply *all[256]; /* every reply made, freed at the end */
    int nall;
    bool fail_next_append; /* the next call's records do not reach the log */
} H;

static H h;

static void rnd(void *ctx, uint8_t *buf, size_t n)
{
    static uint8_t c;
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        buf[i] = c++;
}

static void setup_cfg(int32_t max_size, int64_t check_interval)
{
    memset(&h, 0, sizeof h);
    gr_gc_config_defaults(&h.cfg);
    h.cfg.random = rnd;
    h.cfg.max_size = max_size;
    h.cfg.offsets_retention_ms = 100000;
    h.cfg.retention_check_interval_ms = check_interval;
    h.gc = gr_gc_new(&h.cfg);
    ck_assert_ptr_nonnull(h.gc);
    gr_arena_init(&h.arena);
    h.now = 1000000;
    gr_gc_load_done(h.gc, h.now);
}

static void setup(void)
{
    setup_cfg(INT32_MAX, 3600000);
}

static void teardown(void)
{
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_free(h.gc, GR_NOT_COORDINATOR, &out);
    gr_gc_out_free(&out);
    for (int i = 0; i < h.nall; i++) {
        gr_gc_reply_release(h.all[i]);
        free(h.all[i]);
    }
    gr_arena_free(&h.arena);
}

/* What the shell does after a call: append, apply, deliver. */
static void settle(gr_gc_out *out)
{
    if (h.fail_next_append) {
        /* As the shell: the replies go out (with the error), nothing is
         * applied, the core hears of it and what it does then is settled. */
        h.fail_next_append = false;
        for (gr_gc_reply *r = out->replies; r; r = r->next)
            r->waiter = DELIVERED;
        gr_gc_out_free(out);
        gr_gc_out next;
        gr_gc_out_init(&next);
        gr_gc_append_failed(h.gc, h.now, &next);
        settle(&next);
        return;
    }
    h.nrecords = out->nrecords;
    for (size_t i = 0; i < out->nrecords && i < 64; i++) {
        h.kinds[i] = out->records[i].kind;
        h.tombstones[i] = out->records[i].tombstone;
    }
    ck_assert(!out->failed);
    gr_gc_applied(h.gc, out);
    for (gr_gc_reply *r = out->replies; r; r = r->next) {
        ck_assert_ptr_ne(r->waiter, DELIVERED); /* exactly once */
        r->waiter = DELIVERED;
    }
    gr_gc_out_free(out);
}

static gr_gc_reply *new_reply(bool sync, int16_t version)
{
    gr_gc_reply *r = malloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    gr_gc_reply_init(r, sync, version, NULL);
    ck_assert_int_lt(h.nall, 256);
    h.all[h.nall++] = r;
    return r;
}

static bool done(const gr_gc_reply *r)
{
    return r->waiter == DELIVERED;
}

/* A member id from a reply, as a C string in the test arena. */
static const char *id_of(const gr_gc_reply *r)
{
    gr_str s = r->is_sync ? (gr_str){"", 0} : r->join.member_id;
    return gr_arena_strdup(&h.arena, s.ptr ? s.ptr : "", (size_t)(s.len > 0 ? s.len : 0));
}

typedef struct {
    const char *name;
    const char *meta;
} P;

static gr_gc_reply *join_full(const char *group, const char *member, const char *instance,
                              const char *ptype, const P *protos, int nprotos, int16_t version,
                              int32_t session, int32_t rebalance)
{
    gr_join_group_request req;
    gr_join_group_request_init(&req);
    gr_join_group_request_protocol p[GR_GC_MAX_PROTOCOLS + 1];
    for (int i = 0; i < nprotos; i++) {
        p[i].name = S(protos[i].name);
        p[i].metadata = (gr_bytes){(const uint8_t *)protos[i].meta, (int32_t)strlen(protos[i].meta)};
    }
    req.group_id = S(group);
    req.session_timeout_ms = session;
    req.rebalance_timeout_ms = rebalance;
    req.member_id = S(member);
    req.group_instance_id = instance ? S(instance) : GR_STR_NULL;
    req.protocol_type = S(ptype);
    req.protocols = p;
    req.protocols_count = nprotos;
    gr_gc_reply *r = new_reply(false, version);
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_join(h.gc, &req, "client", "/10.0.0.1", r, h.now, &out);
    settle(&out);
    return r;
}

static const P RANGE[] = {{"range", "m1"}};

static gr_gc_reply *join(const char *group, const char *member)
{
    return join_full(group, member, NULL, "consumer", RANGE, 1, 3, 10000, 20000);
}

static gr_gc_reply *sync_full(const char *group, const char *member, int32_t gen,
                              const char *instance, const char **assign_ids,
                              const char **assign, int n, int16_t version, const char *pname)
{
    gr_sync_group_request req;
    gr_sync_group_request_init(&req);
    gr_sync_group_request_assignment a[8];
    for (int i = 0; i < n; i++) {
        a[i].member_id = S(assign_ids[i]);
        a[i].assignment = (gr_bytes){(const uint8_t *)assign[i], (int32_t)strlen(assign[i])};
    }
    req.group_id = S(group);
    req.generation_id = gen;
    req.member_id = S(member);
    req.group_instance_id = instance ? S(instance) : GR_STR_NULL;
    req.protocol_name = pname ? S(pname) : GR_STR_NULL;
    req.assignments = a;
    req.assignments_count = n;
    gr_gc_reply *r = new_reply(true, version);
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_sync(h.gc, &req, r, h.now, &out);
    settle(&out);
    return r;
}

static gr_gc_reply *sync_(const char *group, const char *member, int32_t gen)
{
    return sync_full(group, member, gen, NULL, NULL, NULL, 0, 3, NULL);
}

static int16_t hb_full(const char *group, const char *member, int32_t gen, const char *instance)
{
    gr_heartbeat_request req;
    gr_heartbeat_request_init(&req);
    req.group_id = S(group);
    req.generation_id = gen;
    req.member_id = S(member);
    req.group_instance_id = instance ? S(instance) : GR_STR_NULL;
    gr_gc_out out;
    gr_gc_out_init(&out);
    int16_t e = gr_gc_heartbeat(h.gc, &req, h.now, &out);
    settle(&out);
    return e;
}

static int16_t hb(const char *group, const char *member, int32_t gen)
{
    return hb_full(group, member, gen, NULL);
}

static void tick_at(int64_t t)
{
    h.now = t;
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_tick(h.gc, h.now, &out);
    settle(&out);
}

/* Moves the clock to t, running every timer on the way at its deadline,
 * as the shell's timer does. */
static void tick_to(int64_t t)
{
    for (int64_t d; (d = gr_gc_next_deadline(h.gc)) <= t;)
        tick_at(d > h.now ? d : h.now);
    tick_at(t);
}

static const char *state(const char *group)
{
    return gr_gc_group_state(h.gc, S(group));
}

/* A one-member group "g" made Stable; returns the member id. */
static const char *stable_one(const char *group)
{
    gr_gc_reply *j = join(group, "");
    ck_assert(!done(j));
    tick_to(h.now + 3000);
    ck_assert(done(j));
    ck_assert_int_eq(j->join.error_code, GR_NONE);
    const char *id = id_of(j);
    const char *ids[] = {id};
    const char *as[] = {"A"};
    gr_gc_reply *s = sync_full(group, id, j->join.generation_id, NULL, ids, as, 1, 3, NULL);
    ck_assert(done(s));
    ck_assert_str_eq(state(group), "Stable");
    return id;
}

/* Two members A (leader) and B, Stable at generation 1. */
static void stable_two(const char *group, const char **a, const char **b)
{
    gr_gc_reply *ja = join(group, "");
    gr_gc_reply *jb = join(group, "");
    tick_to(h.now + 3000);
    tick_to(h.now + 3000);
    ck_assert(done(ja) && done(jb));
    *a = id_of(ja);
    *b = id_of(jb);
    gr_gc_reply *sb = sync_(group, *b, 1);
    const char *ids[] = {*a, *b};
    const char *as[] = {"PA", "PB"};
    gr_gc_reply *sa = sync_full(group, *a, 1, NULL, ids, as, 2, 3, NULL);
    ck_assert(done(sa) && done(sb));
    ck_assert_str_eq(state(group), "Stable");
}

/* ---- joining ---- */

START_TEST(member_id_required_then_initial_delay)
{
    gr_gc_reply *r = join_full("g", "", NULL, "consumer", RANGE, 1, 4, 10000, 20000);
    ck_assert(done(r));
    ck_assert_int_eq(r->join.error_code, GR_MEMBER_ID_REQUIRED);
    const char *id = id_of(r);
    ck_assert(strncmp(id, "client-", 7) == 0);
    ck_assert_int_eq((int)strlen(id), 7 + 36);
    ck_assert_str_eq(state("g"), "Empty");

    gr_gc_reply *j = join_full("g", id, NULL, "consumer", RANGE, 1, 4, 10000, 20000);
    ck_assert(!done(j));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    ck_assert_int_eq(gr_gc_next_deadline(h.gc), h.now + 3000);
    tick_to(h.now + 2999);
    ck_assert(!done(j));
    tick_to(h.now + 1);
    ck_assert(done(j));
    ck_assert_int_eq(j->join.error_code, GR_NONE);
    ck_assert_int_eq(j->join.generation_id, 1);
    ck_assert_str_eq(id_of(j), id);
    ck_assert_int_eq(j->join.leader.len, (int32_t)strlen(id));
    ck_assert_int_eq(j->join.members_count, 1);
    ck_assert_int_eq(j->join.members[0].metadata.len, 2);
    ck_assert_str_eq(state("g"), "CompletingRebalance");

    const char *ids[] = {id};
    const char *as[] = {"ASSIGN"};
    gr_gc_reply *s = sync_full("g", id, 1, NULL, ids, as, 1, 3, NULL);
    ck_assert(done(s));
    ck_assert_int_eq(s->sync.error_code, GR_NONE);
    ck_assert_int_eq(s->sync.assignment.len, 6);
    ck_assert(memcmp(s->sync.assignment.ptr, "ASSIGN", 6) == 0);
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_uint_eq(h.nrecords, 1); /* the group's metadata, persisted */
    ck_assert_int_eq(h.kinds[0], GR_OFFSETS_REC_GROUP);
    ck_assert(!h.tombstones[0]);
}
END_TEST

static gr_leave_group_response leave(const char *group, const char **members,
                                     const char **instances, int n, int16_t version);

/* A member id handed out with MEMBER_ID_REQUIRED is gone once it
 * expires (group g) or leaves (group h). */
START_TEST(unknown_pending_member_id_expires)
{
    for (int leaves = 0; leaves < 2; leaves++) {
        const char *g = leaves ? "h" : "g";
        gr_gc_reply *r = join_full(g, "", NULL, "consumer", RANGE, 1, 4, 10000, 20000);
        const char *id = id_of(r);
        if (leaves) {
            const char *m[] = {id};
            gr_leave_group_response l = leave(g, m, NULL, 1, 3);
            ck_assert_int_eq(l.members[0].error_code, GR_NONE);
        } else {
            tick_to(h.now + 10001); /* it never came back within its session */
        }
        gr_gc_reply *j = join_full(g, id, NULL, "consumer", RANGE, 1, 4, 10000, 20000);
        ck_assert(done(j));
        ck_assert_int_eq(j->join.error_code, GR_UNKNOWN_MEMBER_ID);
    }
}
END_TEST

START_TEST(initial_delay_extends_while_members_join)
{
    gr_gc_reply *a = join("g", "");
    tick_to(h.now + 1000);
    gr_gc_reply *b = join("g", "");
    tick_to(h.now + 2000); /* 3000 after the first join: a member was added, wait more */
    ck_assert(!done(a) && !done(b));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    tick_to(h.now + 3000);
    ck_assert(done(a) && done(b));
    ck_assert_int_eq(a->join.generation_id, 1);
    ck_assert_int_eq(b->join.generation_id, 1);
    /* The leader (first to join) sees every member; the follower none. */
    ck_assert_int_eq(a->join.members_count, 2);
    ck_assert_int_eq(b->join.members_count, 0);
    ck_assert_int_eq(a->join.leader.len, a->join.member_id.len);
    ck_assert(memcmp(a->join.leader.ptr, a->join.member_id.ptr, (size_t)a->join.leader.len) == 0);
    ck_assert(memcmp(b->join.leader.ptr, a->join.member_id.ptr, (size_t)b->join.leader.len) == 0);
}
END_TEST

START_TEST(initial_delay_bounded_by_rebalance_timeout)
{
    /* rebalance timeout 5000: 3000 then at most 2000 more, however many join */
    gr_gc_reply *a = join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 5000);
    for (int i = 0; i < 4; i++) {
        tick_to(h.now + 1000);
        join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 5000);
    }
    ck_assert(!done(a));
    tick_to(h.now + 1000); /* 5000 since the first */
    ck_assert(done(a));
    ck_assert_int_eq(a->join.members_count, 5);
}
END_TEST

START_TEST(followers_wait_for_leader_sync)
{
    const char *a, *b;
    gr_gc_reply *ja = join("g", "");
    gr_gc_reply *jb = join("g", "");
    tick_to(h.now + 6000);
    a = id_of(ja);
    b = id_of(jb);
    gr_gc_reply *sb = sync_("g", b, 1);
    ck_assert(!done(sb));
    ck_assert_int_eq(hb("g", b, 1), GR_NONE); /* alive while it waits */
    const char *ids[] = {a, b};
    const char *as[] = {"PA", "PB"};
    gr_gc_reply *sa = sync_full("g", a, 1, NULL, ids, as, 2, 3, NULL);
    ck_assert(done(sa) && done(sb));
    ck_assert(memcmp(sa->sync.assignment.ptr, "PA", 2) == 0);
    ck_assert(memcmp(sb->sync.assignment.ptr, "PB", 2) == 0);
    /* A later SyncGroup in Stable gets the same assignment. */
    gr_gc_reply *again = sync_("g", b, 1);
    ck_assert(done(again));
    ck_assert(memcmp(again->sync.assignment.ptr, "PB", 2) == 0);
}
END_TEST

START_TEST(stable_rejoin_same_protocols)
{
    const char *a, *b;
    stable_two("g", &a, &b);
    /* A follower rejoining with the same protocols just gets the generation. */
    gr_gc_reply *j = join("g", b);
    ck_assert(done(j));
    ck_assert_int_eq(j->join.error_code, GR_NONE);
    ck_assert_int_eq(j->join.generation_id, 1);
    ck_assert_str_eq(state("g"), "Stable");
    /* The leader rejoining starts a rebalance. */
    gr_gc_reply *jl = join("g", a);
    ck_assert(!done(jl));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    ck_assert_int_eq(hb("g", b, 1), GR_REBALANCE_IN_PROGRESS);
    gr_gc_reply *jb = join("g", b);
    ck_assert(done(jl) && done(jb)); /* everyone is in: no need to wait */
    ck_assert_int_eq(jl->join.generation_id, 2);
    ck_assert_str_eq(state("g"), "CompletingRebalance");
}
END_TEST

START_TEST(protocol_selection_by_votes)
{
    static const P pa[] = {{"range", "a"}, {"roundrobin", "a"}};
    static const P pb[] = {{"roundrobin", "b"}, {"range", "b"}};
    static const P pc[] = {{"roundrobin", "c"}, {"range", "c"}, {"sticky", "c"}};
    gr_gc_reply *a = join_full("g", "", NULL, "consumer", pa, 2, 3, 10000, 20000);
    join_full("g", "", NULL, "consumer", pb, 2, 3, 10000, 20000);
    join_full("g", "", NULL, "consumer", pc, 3, 3, 10000, 20000);
    tick_to(h.now + 6000);
    ck_assert(done(a));
    ck_assert_int_eq(a->join.protocol_name.len, 10);
    ck_assert(memcmp(a->join.protocol_name.ptr, "roundrobin", 10) == 0);
    /* A member that supports none of the group's protocols is refused. */
    static const P px[] = {{"sticky", "x"}};
    gr_gc_reply *x = join_full("g", "", NULL, "consumer", px, 1, 3, 10000, 20000);
    ck_assert(done(x));
    ck_assert_int_eq(x->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    /* As is one with another protocol type. */
    gr_gc_reply *y = join_full("g", "", NULL, "connect", pa, 1, 3, 10000, 20000);
    ck_assert_int_eq(y->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
}
END_TEST

START_TEST(join_bad_input)
{
    gr_gc_reply *r;
    r = join_full("g", "", NULL, "", RANGE, 1, 5, 10000, 20000);
    ck_assert(done(r));
    ck_assert_int_eq(r->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    r = join_full("g", "", NULL, "consumer", RANGE, 0, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    ck_assert_uint_eq(gr_gc_group_count(h.gc), 0); /* refused joins leave no group behind */
    r = join_full("", "", NULL, "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INVALID_GROUP_ID);
    r = join_full("g", "", NULL, "consumer", RANGE, 1, 5, 5999, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INVALID_SESSION_TIMEOUT);
    r = join_full("g", "", NULL, "consumer", RANGE, 1, 5, 1800001, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INVALID_SESSION_TIMEOUT);
    r = join_full("g", "nobody", NULL, "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(r->join.generation_id, -1);
    ck_assert_int_eq(r->join.protocol_name.len, 0); /* "" before v7, null after */
    r = join_full("g", "nobody", NULL, "consumer", RANGE, 1, 8, 10000, 20000);
    ck_assert_int_eq(r->join.protocol_name.len, -1);

    /* A stable group is unaffected by oversized metadata, an unknown member
     * id and empty protocols. */
    const char *a, *b;
    stable_two("g", &a, &b);
    char *big = malloc(1024 * 1024 + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 1024 * 1024 + 1);
    big[1024 * 1024 + 1] = '\0';
    P bp[] = {{"range", big}};
    r = join_full("g", "", NULL, "consumer", bp, 1, 5, 10000, 20000);
    free(big);
    ck_assert_int_eq(r->join.error_code, GR_UNKNOWN_SERVER_ERROR);
    r = join_full("g", "stranger", NULL, "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_UNKNOWN_MEMBER_ID);
    r = join_full("g", a, NULL, "consumer", RANGE, 0, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    P many[GR_GC_MAX_PROTOCOLS + 1]; /* past the cap on assignors */
    for (int i = 0; i <= GR_GC_MAX_PROTOCOLS; i++)
        many[i] = (P){"range", "m"};
    r = join_full("g", "", NULL, "consumer", many, GR_GC_MAX_PROTOCOLS + 1, 5, 10000, 20000);
    ck_assert_int_eq(r->join.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    ck_assert_int_eq(hb("g", b, 1), GR_NONE);
}
END_TEST

START_TEST(group_max_size)
{
    teardown();
    setup_cfg(1, 3600000);
    stable_one("g");
    gr_gc_reply *r = join("g", "");
    ck_assert(done(r));
    ck_assert_int_eq(r->join.error_code, GR_GROUP_MAX_SIZE_REACHED);
    ck_assert_str_eq(state("g"), "Stable");
}
END_TEST

/* An existing member refused for the group's size (the rebalance already
 * has group.max.size members waiting) is removed, as in Kafka, and told
 * with no member id. */
START_TEST(group_max_size_removes_refused_member)
{
    teardown();
    setup_cfg(2, 3600000);
    const char *a, *b;
    stable_two("g", &a, &b);
    gr_gc_reply *ja = join("g", a); /* the leader starts a rebalance */
    ck_assert(!done(ja));
    gr_gc_reply *jc = join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 20000);
    ck_assert(!done(jc)); /* one was waiting: room for a second */
    gr_gc_reply *jb = join("g", b);
    ck_assert(done(jb));
    ck_assert_int_eq(jb->join.error_code, GR_GROUP_MAX_SIZE_REACHED);
    ck_assert_int_eq(jb->join.member_id.len, 0);
    ck_assert_int_eq(hb("g", b, 1), GR_UNKNOWN_MEMBER_ID);
    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("g"), &h.arena, &d);
    ck_assert_int_eq(d.members_count, 2);
    tick_to(h.now + 20000);
    ck_assert(done(ja) && done(jc));
    ck_assert_int_eq(ja->join.generation_id, 2);
    ck_assert_int_eq(ja->join.members_count, 2);
}
END_TEST

/* ---- heartbeats and timeouts ---- */

START_TEST(heartbeat_errors)
{
    ck_assert_int_eq(hb("none", "m", 1), GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(hb("", "m", 1), GR_INVALID_GROUP_ID);
    const char *id = stable_one("g");
    ck_assert_int_eq(hb("g", id, 1), GR_NONE);
    ck_assert_int_eq(hb("g", id, 0), GR_ILLEGAL_GENERATION);
    ck_assert_int_eq(hb("g", id, 2), GR_ILLEGAL_GENERATION);
    ck_assert_int_eq(hb("g", "other", 1), GR_UNKNOWN_MEMBER_ID);
    gr_gc_set_loading(h.gc, true);
    ck_assert_int_eq(hb("g", id, 1), GR_COORDINATOR_LOAD_IN_PROGRESS);
    gr_gc_set_loading(h.gc, false);
}
END_TEST

START_TEST(session_timeout_removes_member)
{
    const char *a, *b;
    stable_two("g", &a, &b);
    for (int i = 0; i < 3; i++) { /* A keeps heartbeating, B goes silent */
        tick_to(h.now + 3000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    }
    ck_assert_str_eq(state("g"), "Stable");
    tick_to(h.now + 1001);
    ck_assert_str_eq(state("g"), "PreparingRebalance"); /* B expired after 10 s */
    ck_assert_int_eq(hb("g", a, 1), GR_REBALANCE_IN_PROGRESS);
    ck_assert_int_eq(hb("g", b, 1), GR_UNKNOWN_MEMBER_ID);
    gr_gc_reply *j = join("g", a);
    ck_assert(done(j)); /* the only member rejoined: complete at once */
    ck_assert_int_eq(j->join.generation_id, 2);
    ck_assert_int_eq(j->join.members_count, 1);
}
END_TEST

START_TEST(rebalance_timeout_drops_silent_members)
{
    const char *a, *b;
    stable_two("g", &a, &b);
    static const P two[] = {{"range", "m2"}}; /* new metadata: a rebalance */
    gr_gc_reply *j = join_full("g", b, NULL, "consumer", two, 1, 3, 10000, 20000);
    ck_assert(!done(j));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    for (int i = 0; i < 3; i++) { /* B's JoinGroup is outstanding: it stays alive */
        tick_to(h.now + 6000);
        ck_assert(!done(j));
        ck_assert_int_eq(hb("g", a, 1), GR_REBALANCE_IN_PROGRESS); /* A: alive, told to rejoin */
    }
    tick_to(h.now + 2000); /* 20 s: A never rejoined */
    ck_assert(done(j));
    ck_assert_int_eq(j->join.error_code, GR_NONE);
    ck_assert_int_eq(j->join.generation_id, 2);
    ck_assert_int_eq(j->join.members_count, 1); /* B is the leader now */
    ck_assert_int_eq(hb("g", a, 2), GR_UNKNOWN_MEMBER_ID);
}
END_TEST

START_TEST(sync_timeout_removes_member)
{
    gr_gc_reply *ja = join("g", "");
    gr_gc_reply *jb = join("g", "");
    tick_to(h.now + 6000);
    const char *a = id_of(ja), *b = id_of(jb);
    const char *ids[] = {a, b};
    const char *as[] = {"PA", "PB"};
    sync_full("g", a, 1, NULL, ids, as, 2, 3, NULL);
    ck_assert_str_eq(state("g"), "Stable");
    for (int i = 0; i < 6; i++) { /* both heartbeat; B never syncs */
        tick_to(h.now + 3000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
        ck_assert_int_eq(hb("g", b, 1), GR_NONE);
    }
    tick_to(h.now + 2000);
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    ck_assert_int_eq(hb("g", b, 1), GR_UNKNOWN_MEMBER_ID);
}
END_TEST

START_TEST(sync_errors)
{
    gr_gc_reply *r = sync_("none", "m", 1);
    ck_assert(done(r));
    ck_assert_int_eq(r->sync.error_code, GR_UNKNOWN_MEMBER_ID);
    const char *a, *b;
    stable_two("g", &a, &b);
    ck_assert_int_eq(sync_("g", a, 7)->sync.error_code, GR_ILLEGAL_GENERATION);
    ck_assert_int_eq(sync_("g", "x", 1)->sync.error_code, GR_UNKNOWN_MEMBER_ID);
    r = sync_full("g", a, 1, NULL, NULL, NULL, 0, 5, "roundrobin");
    ck_assert_int_eq(r->sync.error_code, GR_INCONSISTENT_GROUP_PROTOCOL);
    r = sync_full("g", a, 1, NULL, NULL, NULL, 0, 5, "range");
    ck_assert_int_eq(r->sync.error_code, GR_NONE);
    ck_assert_int_eq(r->sync.protocol_name.len, 5);
    join("g", a); /* the leader rejoins: PreparingRebalance */
    ck_assert_int_eq(sync_("g", b, 1)->sync.error_code, GR_REBALANCE_IN_PROGRESS);
}
END_TEST

/* A member arriving (group g) or the leader leaving (group h) before
 * the leader's assignment voids the generation being assigned. */
START_TEST(rebalance_voids_pending_sync)
{
    for (int leaves = 0; leaves < 2; leaves++) {
        const char *g = leaves ? "h" : "g";
        gr_gc_reply *ja = join(g, "");
        gr_gc_reply *jb = join(g, "");
        tick_to(h.now + 6000);
        gr_gc_reply *sb = sync_(g, id_of(jb), 1);
        ck_assert(!done(sb));
        gr_gc_reply *jc = NULL;
        if (leaves) {
            const char *m[] = {id_of(ja)};
            leave(g, m, NULL, 1, 3);
        } else {
            jc = join(g, "");
        }
        ck_assert(done(sb));
        ck_assert_int_eq(sb->sync.error_code, GR_REBALANCE_IN_PROGRESS);
        ck_assert_str_eq(state(g), "PreparingRebalance");
        if (!leaves)
            join(g, id_of(ja));
        gr_gc_reply *j = join(g, id_of(jb));
        ck_assert(done(j)); /* everyone left is in: the new generation at once */
        ck_assert_int_eq(j->join.generation_id, 2);
        if (leaves)
            ck_assert_int_eq(j->join.members_count, 1); /* B leads now */
        else
            ck_assert(done(jc));
    }
}
END_TEST

/* ---- leaving ---- */

static gr_leave_group_response leave(const char *group, const char **members,
                                     const char **instances, int n, int16_t version)
{
    gr_leave_group_request req;
    gr_leave_group_request_init(&req);
    gr_leave_group_request_member_identity ids[8];
    for (int i = 0; i < n; i++) {
        ids[i].member_id = S(members[i]);
        ids[i].group_instance_id = instances && instances[i] ? S(instances[i]) : GR_STR_NULL;
        ids[i].reason = GR_STR_NULL;
    }
    req.group_id = S(group);
    req.member_id = n ? S(members[0]) : S("");
    req.members = ids;
    req.members_count = n;
    gr_leave_group_response resp;
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_leave(h.gc, &req, version, h.now, &h.arena, &resp, &out);
    settle(&out);
    return resp;
}

START_TEST(leave_batched_and_single)
{
    const char *a, *b;
    stable_two("g", &a, &b);
    const char *m1[] = {a, "ghost"};
    gr_leave_group_response r = leave("g", m1, NULL, 2, 3);
    ck_assert_int_eq(r.error_code, GR_NONE);
    ck_assert_int_eq(r.members_count, 2);
    ck_assert_int_eq(r.members[0].error_code, GR_NONE);
    ck_assert_int_eq(r.members[1].error_code, GR_UNKNOWN_MEMBER_ID);
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    const char *m2[] = {"ghost"};
    r = leave("g", m2, NULL, 1, 0);
    ck_assert_int_eq(r.error_code, GR_UNKNOWN_MEMBER_ID); /* v0-2: one top-level error */
    const char *m3[] = {b};
    r = leave("g", m3, NULL, 1, 1);
    ck_assert_int_eq(r.error_code, GR_NONE);
    ck_assert_str_eq(state("g"), "Empty"); /* the last one left: generation 2, empty */
    ck_assert_uint_eq(h.nrecords, 1);
    r = leave("none", m3, NULL, 1, 4);
    ck_assert_int_eq(r.error_code, GR_NONE);
    ck_assert_int_eq(r.members[0].error_code, GR_UNKNOWN_MEMBER_ID);
}
END_TEST

START_TEST(leave_answers_waiting_join)
{
    const char *a, *b;
    stable_two("g", &a, &b);
    gr_gc_reply *j = join("g", a); /* leader rejoins, waits for B */
    ck_assert(!done(j));
    const char *m[] = {b};
    leave("g", m, NULL, 1, 3);
    ck_assert(done(j)); /* B's leaving completes the join */
    ck_assert_int_eq(j->join.generation_id, 2);
}
END_TEST

/* ---- static membership ---- */

START_TEST(static_member_rejoins_without_rebalance)
{
    gr_gc_reply *ja = join_full("g", "", "inst-a", "consumer", RANGE, 1, 5, 10000, 20000);
    gr_gc_reply *jb = join_full("g", "", NULL, "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert_int_eq(jb->join.error_code, GR_MEMBER_ID_REQUIRED); /* dynamic, v5 */
    ck_assert(!done(ja));                                        /* static: no round trip */
    jb = join_full("g", id_of(jb), NULL, "consumer", RANGE, 1, 5, 10000, 20000);
    tick_to(h.now + 6000);
    const char *a = id_of(ja), *b = id_of(jb);
    const char *ids[] = {a, b};
    const char *as[] = {"PA", "PB"};
    gr_gc_reply *sb = sync_full("g", b, 1, NULL, NULL, NULL, 0, 5, NULL);
    sync_full("g", a, 1, "inst-a", ids, as, 2, 5, NULL);
    ck_assert(done(sb));

    /* A restarts: same instance id, no member id, same protocols. */
    gr_gc_reply *j2 = join_full("g", "", "inst-a", "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert(done(j2));
    ck_assert_int_eq(j2->join.error_code, GR_NONE);
    ck_assert_int_eq(j2->join.generation_id, 1); /* no rebalance */
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_uint_eq(h.nrecords, 1); /* the new member id is persisted */
    const char *a2 = id_of(j2);
    ck_assert_str_ne(a2, a);
    /* Its assignment is kept; the old id is fenced; B never noticed. */
    gr_gc_reply *s2 = sync_full("g", a2, 1, "inst-a", NULL, NULL, 0, 5, NULL);
    ck_assert_int_eq(s2->sync.error_code, GR_NONE);
    ck_assert(memcmp(s2->sync.assignment.ptr, "PA", 2) == 0);
    ck_assert_int_eq(hb_full("g", a, 1, "inst-a"), GR_FENCED_INSTANCE_ID);
    ck_assert_int_eq(hb_full("g", a2, 1, "inst-a"), GR_NONE);
    ck_assert_int_eq(hb("g", b, 1), GR_NONE);
    gr_gc_reply *jold = join_full("g", a, "inst-a", "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert_int_eq(jold->join.error_code, GR_FENCED_INSTANCE_ID);

    /* Leaving by instance id. */
    const char *m[] = {""};
    const char *in[] = {"inst-a"};
    gr_leave_group_response r = leave("g", m, in, 1, 3);
    ck_assert_int_eq(r.members[0].error_code, GR_NONE);
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    r = leave("g", m, in, 1, 3);
    ck_assert_int_eq(r.members[0].error_code, GR_UNKNOWN_MEMBER_ID);
}
END_TEST

START_TEST(static_member_changed_protocols_rebalances)
{
    gr_gc_reply *ja = join_full("g", "", "i", "consumer", RANGE, 1, 5, 10000, 20000);
    tick_to(h.now + 3000);
    const char *a = id_of(ja);
    const char *ids[] = {a};
    const char *as[] = {"PA"};
    sync_full("g", a, 1, "i", ids, as, 1, 5, NULL);
    static const P other[] = {{"roundrobin", "x"}, {"range", "x"}};
    gr_gc_reply *j = join_full("g", "", "i", "consumer", other, 2, 5, 10000, 20000);
    ck_assert(done(j)); /* the only member is back: the new generation at once */
    ck_assert_int_eq(j->join.generation_id, 2);
    ck_assert(memcmp(j->join.protocol_name.ptr, "roundrobin", 10) == 0);
}
END_TEST

START_TEST(static_member_session_expiry)
{
    gr_gc_reply *ja = join_full("g", "", "i", "consumer", RANGE, 1, 5, 10000, 20000);
    tick_to(h.now + 3000);
    const char *a = id_of(ja);
    sync_full("g", a, 1, "i", NULL, NULL, 0, 5, NULL);
    tick_to(h.now + 10001);
    ck_assert_str_eq(state("g"), "Empty");
    ck_assert_int_eq(hb_full("g", a, 1, "i"), GR_UNKNOWN_MEMBER_ID);
}
END_TEST

/* ---- offsets ---- */

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *metadata;
} C;

static gr_offset_commit_response commit_s(gr_str group, const char *member, int32_t gen,
                                          const char *instance, const C *c, int n, int16_t version)
{
    gr_offset_commit_request req;
    gr_offset_commit_request_init(&req);
    gr_offset_commit_request_topic t[8];
    gr_offset_commit_request_partition p[8];
    for (int i = 0; i < n; i++) {
        t[i].name = S(c[i].topic);
        t[i].partitions = &p[i];
        t[i].partitions_count = 1;
        gr_offset_commit_request_partition_init(&p[i]);
        p[i].partition_index = c[i].partition;
        p[i].committed_offset = c[i].offset;
        p[i].committed_metadata = c[i].metadata ? S(c[i].metadata) : GR_STR_NULL;
    }
    req.group_id = group;
    req.generation_id_or_member_epoch = gen;
    req.member_id = S(member);
    req.group_instance_id = instance ? S(instance) : GR_STR_NULL;
    req.topics = t;
    req.topics_count = n;
    gr_offset_commit_response resp;
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_commit(h.gc, &req, version, h.now, &h.arena, &resp, &out);
    settle(&out);
    return resp;
}

static gr_offset_commit_response commit(const char *group, const char *member, int32_t gen,
                                        const char *instance, const C *c, int n, int16_t version)
{
    return commit_s(S(group), member, gen, instance, c, n, version);
}

static int16_t commit_err(const char *group, const char *member, int32_t gen, int16_t version)
{
    C c = {"t", 0, 5, NULL};
    gr_offset_commit_response r = commit(group, member, gen, NULL, &c, 1, version);
    ck_assert_int_eq(r.topics_count, 1);
    return r.topics[0].partitions[0].error_code;
}

/* The committed offset of (group, topic, partition) by OffsetFetch; -1: none. */
static int64_t fetched(const char *group, const char *topic, int32_t partition, gr_str *md)
{
    gr_offset_fetch_request_group req;
    gr_offset_fetch_request_group_init(&req);
    gr_offset_fetch_request_topics t;
    t.name = S(topic);
    t.partition_indexes = &partition;
    t.partition_indexes_count = 1;
    req.group_id = S(group);
    req.topics = &t;
    req.topics_count = 1;
    gr_offset_fetch_response_group resp;
    gr_gc_fetch(h.gc, &req, false, &h.arena, &resp);
    ck_assert_int_eq(resp.error_code, GR_NONE);
    ck_assert_int_eq(resp.topics_count, 1);
    ck_assert_int_eq(resp.topics[0].partitions_count, 1);
    ck_assert_int_eq(resp.topics[0].partitions[0].partition_index, partition);
    if (md)
        *md = resp.topics[0].partitions[0].metadata;
    return resp.topics[0].partitions[0].committed_offset;
}

START_TEST(admin_commit_and_fetch)
{
    ck_assert_int_eq(fetched("g", "t", 0, NULL), -1);
    C c[] = {{"t", 0, 42, "md"}, {"t", 1, 7, NULL}, {"u", 0, 1, ""}};
    gr_offset_commit_response r = commit("g", "", -1, NULL, c, 3, 8);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(r.topics[i].partitions[0].error_code, GR_NONE);
    ck_assert_uint_eq(h.nrecords, 3);
    ck_assert_str_eq(state("g"), "Empty");
    gr_str md;
    ck_assert_int_eq(fetched("g", "t", 0, &md), 42);
    ck_assert_int_eq(md.len, 2);
    ck_assert_int_eq(fetched("g", "t", 1, &md), 7);
    ck_assert_int_eq(md.len, 0); /* null metadata is stored as "" */
    ck_assert_int_eq(fetched("g", "t", 2, NULL), -1);

    /* All topics: two topics, three partitions. */
    gr_offset_fetch_request_group req;
    gr_offset_fetch_request_group_init(&req);
    req.group_id = S("g");
    gr_offset_fetch_response_group all;
    gr_gc_fetch(h.gc, &req, true, &h.arena, &all);
    ck_assert_int_eq(all.topics_count, 2);
    ck_assert_int_eq(all.topics[0].partitions_count + all.topics[1].partitions_count, 3);

    /* An overwrite; an oversized metadata fails only its own partition. */
    char big[4200];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    C c2[] = {{"t", 0, 43, NULL}, {"t", 1, 8, big}};
    r = commit("g", "", -1, NULL, c2, 2, 8);
    ck_assert_int_eq(r.topics[0].partitions[0].error_code, GR_NONE);
    ck_assert_int_eq(r.topics[1].partitions[0].error_code, GR_OFFSET_METADATA_TOO_LARGE);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 43);
    ck_assert_int_eq(fetched("g", "t", 1, NULL), 7);
}
END_TEST

START_TEST(commit_validation)
{
    ck_assert_int_eq(commit_err("none", "m", 3, 8), GR_ILLEGAL_GENERATION);
    ck_assert_int_eq(commit_err("none", "m", 3, 9), GR_GROUP_ID_NOT_FOUND);
    ck_assert_uint_eq(gr_gc_group_count(h.gc), 0);
    ck_assert_int_eq(commit_err("", "", -1, 8), GR_INVALID_GROUP_ID);
    const char *a, *b;
    stable_two("g", &a, &b);
    ck_assert_int_eq(commit_err("g", a, 1, 8), GR_NONE);
    ck_assert_int_eq(commit_err("g", a, 2, 8), GR_ILLEGAL_GENERATION);
    ck_assert_int_eq(commit_err("g", "x", 1, 8), GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(commit_err("g", "", -1, 8), GR_UNKNOWN_MEMBER_ID); /* not empty */
    C c = {"t", 0, 5, NULL};
    gr_offset_commit_response r = commit("g", a, 1, "nope", &c, 1, 8);
    ck_assert_int_eq(r.topics[0].partitions[0].error_code, GR_UNKNOWN_MEMBER_ID);
    /* During PreparingRebalance the old generation may still commit ... */
    join("g", a);
    ck_assert_int_eq(commit_err("g", b, 1, 8), GR_NONE);
    /* ... but not while the new assignment is being made. */
    join("g", b);
    ck_assert_str_eq(state("g"), "CompletingRebalance");
    ck_assert_int_eq(commit_err("g", b, 2, 8), GR_REBALANCE_IN_PROGRESS);
    gr_gc_set_loading(h.gc, true);
    ck_assert_int_eq(commit_err("g", b, 2, 8), GR_COORDINATOR_LOAD_IN_PROGRESS);
    gr_gc_set_loading(h.gc, false);
}
END_TEST

/* An admin commit of (g, t, 0) at `offset`, made but not yet appended:
 * its records are left in out. */
static void commit_pending(int64_t offset, int64_t retention_ms, int16_t version, gr_gc_out *out)
{
    gr_offset_commit_request req;
    gr_offset_commit_request_init(&req);
    gr_offset_commit_request_topic t;
    gr_offset_commit_request_partition p;
    gr_offset_commit_request_partition_init(&p);
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = GR_STR_NULL;
    t.name = S("t");
    t.partitions = &p;
    t.partitions_count = 1;
    req.group_id = S("g");
    req.generation_id_or_member_epoch = -1;
    req.member_id = S("");
    req.retention_time_ms = retention_ms;
    req.topics = &t;
    req.topics_count = 1;
    gr_offset_commit_response resp;
    gr_gc_out_init(out);
    gr_gc_commit(h.gc, &req, version, h.now, &h.arena, &resp, out);
    ck_assert_int_eq(resp.topics[0].partitions[0].error_code, GR_NONE);
    ck_assert_uint_eq(out->nrecords, 1);
}

START_TEST(commit_not_applied_before_append)
{
    gr_gc_out out;
    commit_pending(9, -1, 8, &out);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), -1); /* the append failed: nothing */
    gr_gc_out_free(&out);
}
END_TEST

START_TEST(delete_groups)
{
    gr_gc_out out;
    gr_gc_out_init(&out);
    ck_assert_int_eq(gr_gc_delete_group(h.gc, S("none"), h.now, &out), GR_GROUP_ID_NOT_FOUND);
    settle(&out);
    const char *a = stable_one("g");
    gr_gc_out_init(&out);
    ck_assert_int_eq(gr_gc_delete_group(h.gc, S("g"), h.now, &out), GR_NON_EMPTY_GROUP);
    settle(&out);
    ck_assert_int_eq(commit_err("g", a, 1, 8), GR_NONE);
    const char *m[] = {a};
    leave("g", m, NULL, 1, 3);
    ck_assert_str_eq(state("g"), "Empty");
    gr_gc_out_init(&out);
    ck_assert_int_eq(gr_gc_delete_group(h.gc, S("g"), h.now, &out), GR_NONE);
    settle(&out);
    ck_assert_uint_eq(h.nrecords, 2); /* the offset's tombstone and the group's */
    ck_assert(h.tombstones[0] && h.tombstones[1]);
    ck_assert_int_eq(h.kinds[1], GR_OFFSETS_REC_GROUP);
    ck_assert_str_eq(state("g"), "Dead");
    ck_assert_uint_eq(gr_gc_group_count(h.gc), 0);
}
END_TEST

/* ConsumerProtocolSubscription v0 subscribing to one topic "t". */
static const char SUB_T[] = "\x00\x00" "\x00\x00\x00\x01" "\x00\x01" "t" "\xff\xff\xff\xff";

/* Static member "i" of group "g", Stable, with the subscription meta;
 * *join_secs (if not NULL) gets how long completing the join took. */
static const char *stable_subscriber_with(const uint8_t *meta, int32_t len, double *join_secs)
{
    gr_gc_reply *j = new_reply(false, 5);
    gr_join_group_request jr;
    gr_join_group_request_init(&jr);
    gr_join_group_request_protocol pr = {S("range"), {meta, len}};
    jr.group_id = S("g");
    jr.session_timeout_ms = 10000;
    jr.rebalance_timeout_ms = 20000;
    jr.member_id = S("");
    jr.group_instance_id = S("i");
    jr.protocol_type = S("consumer");
    jr.protocols = &pr;
    jr.protocols_count = 1;
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_join(h.gc, &jr, "c", "h", j, h.now, &out);
    settle(&out);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tick_to(h.now + 3000); /* the join completes: the subscriptions are read */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (join_secs)
        *join_secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert(done(j));
    const char *a = id_of(j);
    sync_full("g", a, 1, "i", NULL, NULL, 0, 5, NULL);
    return a;
}

/* Static member "i" of group "g", Stable, subscribed to "t". */
static const char *stable_subscriber(void)
{
    return stable_subscriber_with((const uint8_t *)SUB_T, sizeof SUB_T - 1, NULL);
}

/* OffsetDelete of partition 0 of topics t0 and t1 in group. */
static void offset_delete2(const char *group, const char *t0, const char *t1,
                           gr_offset_delete_response *resp)
{
    gr_offset_delete_request req;
    gr_offset_delete_request_init(&req);
    gr_offset_delete_request_topic t[2];
    gr_offset_delete_request_partition p = {0};
    t[0].name = S(t0);
    t[1].name = S(t1);
    t[0].partitions = t[1].partitions = &p;
    t[0].partitions_count = t[1].partitions_count = 1;
    req.group_id = S(group);
    req.topics = t;
    req.topics_count = 2;
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_offset_delete(h.gc, &req, h.now, &h.arena, resp, &out);
    settle(&out);
}

START_TEST(offset_delete)
{
    const char *a = stable_subscriber();
    C c[] = {{"t", 0, 1, NULL}, {"u", 0, 2, NULL}};
    commit("g", a, 1, "i", c, 2, 8);

    gr_offset_delete_response resp;
    offset_delete2("g", "t", "u", &resp);
    ck_assert_int_eq(resp.error_code, GR_NONE);
    ck_assert_int_eq(resp.topics[0].partitions[0].error_code, GR_GROUP_SUBSCRIBED_TO_TOPIC);
    ck_assert_int_eq(resp.topics[1].partitions[0].error_code, GR_NONE);
    ck_assert_uint_eq(h.nrecords, 1);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 1);
    ck_assert_int_eq(fetched("g", "u", 0, NULL), -1);

    offset_delete2("none", "t", "u", &resp);
    ck_assert_int_eq(resp.error_code, GR_GROUP_ID_NOT_FOUND);
}
END_TEST

/* A consumer subscribing to many topics: the group's subscribed set (which
 * OffsetDelete and the expiry consult) is built in O(n log n), not by a
 * linear search per topic, which would hold the partition's lock for many
 * seconds for one member's half a megabyte of subscription. */
START_TEST(many_subscribed_topics)
{
    enum { N = 80000 };
    size_t len = 2 + 4 + (size_t)N * (2 + 5) + 4;
    uint8_t *meta = malloc(len), *q = meta;
    ck_assert_ptr_nonnull(meta);
    *q++ = 0, *q++ = 0;                   /* version 0 */
    *q++ = 0, *q++ = (uint8_t)(N >> 16), *q++ = (uint8_t)(N >> 8), *q++ = (uint8_t)N;
    for (int i = 0; i < N; i++) {         /* "t" + 4 base-32 digits, distinct */
        *q++ = 0, *q++ = 5, *q++ = 't';
        for (int d = 3; d >= 0; d--)
            *q++ = (uint8_t)('a' + ((i >> (5 * d)) & 31));
    }
    memset(q, 0xff, 4);                   /* no user data */
    double secs;
    const char *a = stable_subscriber_with(meta, (int32_t)len, &secs);
    free(meta);
    ck_assert_msg(secs < 1.0, "completing the join took %.2f s", secs);

    /* The last topic of the list is subscribed, a topic not in it is not. */
    char last[6] = {'t'};
    for (int d = 3; d >= 0; d--)
        last[4 - d] = (char)('a' + (((N - 1) >> (5 * d)) & 31));
    C c[] = {{last, 0, 1, NULL}, {"u", 0, 2, NULL}};
    commit("g", a, 1, "i", c, 2, 8);
    gr_offset_delete_response resp;
    offset_delete2("g", last, "u", &resp);
    ck_assert_int_eq(resp.topics[0].partitions[0].error_code, GR_GROUP_SUBSCRIBED_TO_TOPIC);
    ck_assert_int_eq(resp.topics[1].partitions[0].error_code, GR_NONE);
}
END_TEST

START_TEST(offsets_expire)
{
    teardown();
    setup_cfg(INT32_MAX, 1000); /* retention 100 s, checked every second */
    int64_t t0 = h.now;
    /* An offsets-only group: each offset expires on its own. */
    C c1 = {"t", 0, 1, NULL};
    commit("simple", "", -1, NULL, &c1, 1, 8);
    /* A consumer group, Stable: its offsets stay however old. */
    const char *a = stable_one("g");
    ck_assert_int_eq(commit_err("g", a, 1, 8), GR_NONE);
    for (int i = 0; i < 6; i++) {
        tick_to(h.now + 9000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    }
    C c2 = {"t", 1, 1, NULL};
    commit("simple", "", -1, NULL, &c2, 1, 8);
    while (h.now < t0 + 102000) {
        tick_to(h.now + 9000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    }
    ck_assert_int_eq(fetched("simple", "t", 0, NULL), -1);
    ck_assert_int_eq(fetched("simple", "t", 1, NULL), 1);
    while (h.now < t0 + 165000) {
        tick_to(h.now + 9000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    }
    ck_assert_int_eq(fetched("simple", "t", 1, NULL), -1);
    ck_assert_str_eq(state("simple"), "Dead"); /* no offsets left: removed */
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 5);
    /* Empty from now: the retention runs from the moment it became Empty. */
    const char *m[] = {a};
    leave("g", m, NULL, 1, 3);
    tick_to(h.now + 99000);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 5);
    tick_to(h.now + 2000);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), -1);
    ck_assert_str_eq(state("g"), "Dead");
}
END_TEST

START_TEST(unsubscribed_offsets_expire_in_stable_group)
{
    teardown();
    setup_cfg(INT32_MAX, 1000);
    /* A consumer group subscribed to "t" only, with offsets of "t" and "u". */
    const char *a = stable_subscriber();
    C c[] = {{"t", 0, 1, NULL}, {"u", 0, 2, NULL}};
    commit("g", a, 1, "i", c, 2, 8);
    while (h.now < 1000000 + 3000 + 100000 + 2000) {
        tick_to(h.now + 5000);
        ck_assert_int_eq(hb_full("g", a, 1, "i"), GR_NONE);
    }
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 1);  /* still subscribed: kept */
    ck_assert_int_eq(fetched("g", "u", 0, NULL), -1); /* nobody reads it: expired */
}
END_TEST

START_TEST(commit_retention_v2)
{
    teardown();
    setup_cfg(INT32_MAX, 1000);
    gr_gc_out out;
    commit_pending(11, 5000, 2, &out); /* v2-4 only: its own, shorter retention */
    ck_assert_int_eq(out.records[0].offset.expire_timestamp, h.now + 5000);
    settle(&out);
    tick_to(h.now + 4000);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), 11);
    tick_to(h.now + 2000);
    ck_assert_int_eq(fetched("g", "t", 0, NULL), -1);
}
END_TEST

START_TEST(retried_join_in_completing_rebalance)
{
    gr_gc_reply *ja = join("g", "");
    gr_gc_reply *jb = join("g", "");
    tick_to(h.now + 6000);
    ck_assert_str_eq(state("g"), "CompletingRebalance");
    /* A member whose JoinGroup answer was lost asks again: same answer. */
    gr_gc_reply *again = join("g", id_of(jb));
    ck_assert(done(again));
    ck_assert_int_eq(again->join.error_code, GR_NONE);
    ck_assert_int_eq(again->join.generation_id, jb->join.generation_id);
    ck_assert_str_eq(state("g"), "CompletingRebalance");
    /* The leader asking again still gets every member. */
    gr_gc_reply *lead = join("g", id_of(ja));
    ck_assert_int_eq(lead->join.members_count, 2);
}
END_TEST

/* ---- loading ---- */

START_TEST(replay_rebuilds_state)
{
    gr_gc_set_loading(h.gc, true);
    gr_gc_reply *r = join("g", "");
    ck_assert(done(r));
    ck_assert_int_eq(r->join.error_code, GR_COORDINATOR_LOAD_IN_PROGRESS);

    gr_group_metadata_member_metadata mm;
    gr_group_metadata_member_metadata_init(&mm);
    mm.member_id = S("m-1");
    mm.group_instance_id = GR_STR_NULL;
    mm.client_id = S("cid");
    mm.client_host = S("/1.2.3.4");
    mm.rebalance_timeout = 20000;
    mm.session_timeout = 10000;
    mm.subscription = (gr_bytes){(const uint8_t *)"sub", 3};
    mm.assignment = (gr_bytes){(const uint8_t *)"asg", 3};
    gr_offsets_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = GR_OFFSETS_REC_GROUP;
    rec.group = S("g");
    gr_group_metadata_value_init(&rec.value);
    rec.value.protocol_type = S("consumer");
    rec.value.generation = 4;
    rec.value.protocol = S("range");
    rec.value.leader = S("m-1");
    rec.value.current_state_timestamp = h.now - 10;
    rec.value.members = &mm;
    rec.value.members_count = 1;
    ck_assert(gr_gc_replay(h.gc, &rec));
    gr_offsets_record off;
    memset(&off, 0, sizeof off);
    off.kind = GR_OFFSETS_REC_OFFSET;
    off.group = S("g");
    off.topic = S("t");
    off.partition = 3;
    gr_offset_commit_value_init(&off.offset);
    off.offset.offset = 77;
    off.offset.metadata = S("");
    off.offset.commit_timestamp = h.now - 5;
    ck_assert(gr_gc_replay(h.gc, &off));
    off.partition = 4;
    ck_assert(gr_gc_replay(h.gc, &off));
    off.tombstone = true; /* deleted later in the log */
    ck_assert(gr_gc_replay(h.gc, &off));
    /* A group deleted in the log is gone. */
    rec.group = S("gone");
    ck_assert(gr_gc_replay(h.gc, &rec));
    rec.tombstone = true;
    ck_assert(gr_gc_replay(h.gc, &rec));
    gr_gc_set_loading(h.gc, false);
    gr_gc_load_done(h.gc, h.now);

    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_str_eq(state("gone"), "Dead");
    ck_assert_int_eq(fetched("g", "t", 3, NULL), 77);
    ck_assert_int_eq(fetched("g", "t", 4, NULL), -1);
    ck_assert_int_eq(hb("g", "m-1", 4), GR_NONE);
    gr_gc_reply *s = sync_("g", "m-1", 4);
    ck_assert_int_eq(s->sync.error_code, GR_NONE);
    ck_assert(memcmp(s->sync.assignment.ptr, "asg", 3) == 0);

    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("g"), &h.arena, &d);
    ck_assert_int_eq(d.error_code, GR_NONE);
    ck_assert(memcmp(d.group_state.ptr, "Stable", 6) == 0);
    ck_assert_int_eq(d.members_count, 1);
    ck_assert_int_eq(d.members[0].client_id.len, 3);
    ck_assert(memcmp(d.members[0].member_metadata.ptr, "sub", 3) == 0);
    ck_assert(memcmp(d.protocol_data.ptr, "range", 5) == 0);
    /* It expires like any member when it stays silent. */
    tick_to(h.now + 10001);
    ck_assert_str_eq(state("g"), "Empty");
}
END_TEST

/* ---- administration ---- */

START_TEST(describe_and_list)
{
    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("none"), &h.arena, &d);
    ck_assert_int_eq(d.error_code, GR_NONE);
    ck_assert(memcmp(d.group_state.ptr, "Dead", 4) == 0);
    stable_one("a");
    join("b", ""); /* PreparingRebalance */
    C c = {"t", 0, 1, NULL};
    commit("c", "", -1, NULL, &c, 1, 8); /* Empty */
    gr_list_groups_request req;
    gr_list_groups_request_init(&req);
    gr_list_groups_response_listed_group *gs = NULL;
    int32_t n = 0, cap = 0;
    ck_assert(gr_gc_list(h.gc, &req, &h.arena, &gs, &n, &cap));
    ck_assert_int_eq(n, 3);
    gr_str f[] = {S("stable"), S("Empty")};
    req.states_filter = f;
    req.states_filter_count = 2;
    n = 0;
    ck_assert(gr_gc_list(h.gc, &req, &h.arena, &gs, &n, &cap));
    ck_assert_int_eq(n, 2);
    gr_str ty[] = {S("consumer")};
    req.types_filter = ty;
    req.types_filter_count = 1;
    n = 0;
    ck_assert(gr_gc_list(h.gc, &req, &h.arena, &gs, &n, &cap));
    ck_assert_int_eq(n, 0); /* every group here is a classic one */
    gr_gc_describe(h.gc, S("b"), &h.arena, &d);
    ck_assert(memcmp(d.group_state.ptr, "PreparingRebalance", 18) == 0);
    ck_assert_int_eq(d.members_count, 1);
    ck_assert_int_eq(d.members[0].member_assignment.len, 0);
    ck_assert_int_eq(d.protocol_data.len, 0);
}
END_TEST

START_TEST(free_answers_waiters)
{
    gr_gc_reply *j = join("g", "");
    ck_assert(!done(j));
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_free(h.gc, GR_NOT_COORDINATOR, &out);
    h.gc = gr_gc_new(&h.cfg);
    ck_assert_ptr_eq(out.replies, j);
    ck_assert_int_eq(j->join.error_code, GR_NOT_COORDINATOR);
    gr_gc_out_free(&out);
}
END_TEST

/* The leader's assignment cannot be stored: the members hear of it (the
 * shell's error) and the group rebalances instead of staying Stable with
 * an assignment that is not in the log, as Kafka's coordinator does. */
START_TEST(failed_assignment_store_rebalances)
{
    gr_gc_reply *ja = join("g", "");
    gr_gc_reply *jb = join("g", "");
    tick_to(h.now + 6000);
    const char *a = id_of(ja), *b = id_of(jb);
    gr_gc_reply *sb = sync_("g", b, 1);
    ck_assert(!done(sb));
    const char *ids[] = {a, b};
    const char *as[] = {"PA", "PB"};
    h.fail_next_append = true;
    gr_gc_reply *sa = sync_full("g", a, 1, NULL, ids, as, 2, 3, NULL);
    ck_assert(done(sa) && done(sb));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    ck_assert_int_eq(hb("g", b, 1), GR_REBALANCE_IN_PROGRESS);
    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("g"), &h.arena, &d);
    ck_assert_int_eq(d.members_count, 2);
    ck_assert_int_eq(d.members[0].member_assignment.len, 0);
    ck_assert_int_eq(d.members[1].member_assignment.len, 0);

    /* Both rejoin: a new generation, whose stored assignment holds. */
    gr_gc_reply *ja2 = join("g", a);
    gr_gc_reply *jb2 = join("g", b);
    ck_assert(done(ja2) && done(jb2));
    ck_assert_int_eq(ja2->join.generation_id, 2);
    gr_gc_reply *sb2 = sync_("g", b, 2);
    gr_gc_reply *sa2 = sync_full("g", a, 2, NULL, ids, as, 2, 3, NULL);
    ck_assert(done(sa2) && done(sb2));
    ck_assert_int_eq(sb2->sync.error_code, GR_NONE);
    ck_assert(memcmp(sb2->sync.assignment.ptr, "PB", 2) == 0);
    ck_assert_str_eq(state("g"), "Stable");
    tick_to(h.now + 9000);
    ck_assert_str_eq(state("g"), "Stable");
}
END_TEST

/* KIP-394: a member that joined and never got its first generation (here
 * because the rebalance waits on a silent old member with a long
 * rebalance timeout) is removed after the new member join timeout, its
 * JoinGroup answered UNKNOWN_MEMBER_ID; the old member stays. */
START_TEST(new_member_join_timeout)
{
    ck_assert_int_eq(h.cfg.new_member_join_timeout_ms, 300000);
    gr_gc_reply *ja = join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 600000);
    tick_to(h.now + 3000);
    ck_assert(done(ja));
    const char *a = id_of(ja);
    const char *ids[] = {a};
    const char *as[] = {"PA"};
    ck_assert(done(sync_full("g", a, 1, NULL, ids, as, 1, 3, NULL)));
    int64_t t0 = h.now;
    gr_gc_reply *jb = join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 600000);
    ck_assert(!done(jb));
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    /* The old member heartbeats, never rejoins; the new one just waits. */
    while (h.now + 5000 < t0 + 300000) {
        tick_to(h.now + 5000);
        ck_assert_int_eq(hb("g", a, 1), GR_REBALANCE_IN_PROGRESS);
        ck_assert(!done(jb));
    }
    tick_to(t0 + 300000);
    ck_assert(done(jb));
    ck_assert_int_eq(jb->join.error_code, GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(hb("g", a, 1), GR_REBALANCE_IN_PROGRESS);
    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("g"), &h.arena, &d);
    ck_assert_int_eq(d.members_count, 1);

    /* A new member that gets its generation in time is an ordinary one
     * from then on: its session, not the join timeout, keeps it. */
    gr_gc_reply *jc = join_full("g", "", NULL, "consumer", RANGE, 1, 3, 10000, 600000);
    gr_gc_reply *ja2 = join_full("g", a, NULL, "consumer", RANGE, 1, 3, 10000, 600000);
    ck_assert(done(ja2) && done(jc));
    ck_assert_int_eq(jc->join.error_code, GR_NONE);
    const char *c = id_of(jc);
    ck_assert(!done(sync_("g", c, 2)));
    const char *ids2[] = {a, c};
    const char *as2[] = {"PA", "PC"};
    ck_assert(done(sync_full("g", a, 2, NULL, ids2, as2, 2, 3, NULL)));
    for (int i = 0; i < 70; i++) {
        tick_to(h.now + 5000);
        ck_assert_int_eq(hb("g", a, 2), GR_NONE);
        ck_assert_int_eq(hb("g", c, 2), GR_NONE);
    }
    ck_assert_str_eq(state("g"), "Stable");
}
END_TEST

/* Thousands of groups in one partition: each found by its id while the
 * table grows, each gone once deleted, and the others untouched. */
START_TEST(many_groups)
{
    enum { N = 5000 };
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "group-%d", i);
        C c = {"t", i % 7, 1000 + i, NULL};
        commit(name, "", -1, NULL, &c, 1, 8);
    }
    ck_assert_uint_eq(gr_gc_group_count(h.gc), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "group-%d", i);
        ck_assert_int_eq(fetched(name, "t", i % 7, NULL), 1000 + i);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof name, "group-%d", i);
        gr_gc_out out;
        gr_gc_out_init(&out);
        ck_assert_int_eq(gr_gc_delete_group(h.gc, S(name), h.now, &out), GR_NONE);
        settle(&out);
    }
    ck_assert_uint_eq(gr_gc_group_count(h.gc), N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "group-%d", i);
        ck_assert_int_eq(fetched(name, "t", i % 7, NULL), i % 2 ? 1000 + i : -1);
        ck_assert_str_eq(state(name), i % 2 ? "Empty" : "Dead");
    }
    gr_list_groups_request lr;
    gr_list_groups_request_init(&lr);
    gr_list_groups_response_listed_group *listed = NULL;
    int32_t count = 0, cap = 0;
    ck_assert(gr_gc_list(h.gc, &lr, &h.arena, &listed, &count, &cap));
    ck_assert_int_eq(count, N / 2);
}
END_TEST

/* Kafka's validateMember: a request naming an instance id that no static
 * member holds is UNKNOWN_MEMBER_ID, even from a real dynamic member id,
 * for JoinGroup, SyncGroup, Heartbeat, OffsetCommit and LeaveGroup alike;
 * the member itself is untouched. */
START_TEST(unknown_instance_id_is_unknown_member)
{
    const char *a = stable_one("g");
    gr_gc_reply *j = join_full("g", a, "no-such-instance", "consumer", RANGE, 1, 5, 10000, 20000);
    ck_assert(done(j));
    ck_assert_int_eq(j->join.error_code, GR_UNKNOWN_MEMBER_ID);
    gr_gc_reply *sy = sync_full("g", a, 1, "no-such-instance", NULL, NULL, 0, 3, NULL);
    ck_assert(done(sy));
    ck_assert_int_eq(sy->sync.error_code, GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(hb_full("g", a, 1, "no-such-instance"), GR_UNKNOWN_MEMBER_ID);
    C c = {"t", 0, 5, NULL};
    gr_offset_commit_response cr = commit("g", a, 1, "no-such-instance", &c, 1, 8);
    ck_assert_int_eq(cr.topics[0].partitions[0].error_code, GR_UNKNOWN_MEMBER_ID);
    const char *m[] = {a};
    const char *inst[] = {"no-such-instance"};
    gr_leave_group_response l = leave("g", m, inst, 1, 3);
    ck_assert_int_eq(l.members[0].error_code, GR_UNKNOWN_MEMBER_ID);
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_int_eq(hb("g", a, 1), GR_NONE);
}
END_TEST

/* In CompletingRebalance every member that has not sent SyncGroup by the
 * deadline is removed, not just the first (whose removal starts a
 * rebalance that would otherwise forgive the others); the one that synced
 * stays and is told to rejoin. */
START_TEST(sync_timeout_removes_every_unsynced_member)
{
    gr_gc_reply *ja = join("g", "");
    gr_gc_reply *jb = join("g", "");
    gr_gc_reply *jc = join("g", "");
    tick_to(h.now + 6000);
    ck_assert(done(ja) && done(jb) && done(jc));
    const char *a = id_of(ja), *b = id_of(jb), *c = id_of(jc);
    ck_assert_str_eq(state("g"), "CompletingRebalance");
    gr_gc_reply *sc = sync_("g", c, 1); /* the leader A and B never sync */
    ck_assert(!done(sc));
    for (int i = 0; i < 6; i++) {
        tick_to(h.now + 3000);
        ck_assert_int_eq(hb("g", a, 1), GR_NONE);
        ck_assert_int_eq(hb("g", b, 1), GR_NONE);
        ck_assert_int_eq(hb("g", c, 1), GR_NONE);
    }
    tick_to(h.now + 2000);
    ck_assert(done(sc));
    ck_assert_int_eq(sc->sync.error_code, GR_REBALANCE_IN_PROGRESS);
    ck_assert_str_eq(state("g"), "PreparingRebalance");
    ck_assert_int_eq(hb("g", a, 1), GR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(hb("g", b, 1), GR_UNKNOWN_MEMBER_ID);
    gr_describe_groups_response_described_group d;
    gr_gc_describe(h.gc, S("g"), &h.arena, &d);
    ck_assert_int_eq(d.members_count, 1);
    /* C rejoins alone and leads the next generation. */
    gr_gc_reply *jc2 = join("g", c);
    ck_assert(done(jc2));
    ck_assert_int_eq(jc2->join.generation_id, 2);
    ck_assert_int_eq(jc2->join.members_count, 1);
}
END_TEST

/* A group id with a NUL byte cannot be held (nor written back) as it
 * came: it is refused like an empty one, and no group is left behind. */
START_TEST(group_id_with_nul_refused)
{
    static const char id[] = {'a', '\0', 'b'};
    gr_str bad = {id, 3};
    gr_join_group_request req;
    gr_join_group_request_init(&req);
    gr_join_group_request_protocol p = {S("range"), {(const uint8_t *)"m", 1}};
    req.group_id = bad;
    req.session_timeout_ms = 10000;
    req.rebalance_timeout_ms = 10000;
    req.member_id = S("");
    req.protocol_type = S("consumer");
    req.protocols = &p;
    req.protocols_count = 1;
    gr_gc_reply *r = new_reply(false, 3);
    gr_gc_out out;
    gr_gc_out_init(&out);
    gr_gc_join(h.gc, &req, "client", "/h", r, h.now, &out);
    settle(&out);
    ck_assert(done(r));
    ck_assert_int_eq(r->join.error_code, GR_INVALID_GROUP_ID);

    C c = {"t", 0, 5, NULL};
    gr_offset_commit_response resp = commit_s(bad, "", -1, NULL, &c, 1, 8);
    ck_assert_uint_eq(h.nrecords, 0);
    ck_assert_int_eq(resp.topics[0].partitions[0].error_code, GR_INVALID_GROUP_ID);
    ck_assert_uint_eq(gr_gc_group_count(h.gc), 0);
}
END_TEST

/* The next deadline may be early (a heartbeat moved the one it was), never
 * late: ticking at it changes nothing, and after the tick it is exact. */
START_TEST(next_deadline_early_never_late)
{
    const char *a = stable_one("g");
    int64_t t0 = h.now;
    ck_assert_int_le(gr_gc_next_deadline(h.gc), t0 + 10000);
    tick_to(t0 + 5000);
    ck_assert_int_eq(hb("g", a, 1), GR_NONE); /* its session now ends at t0 + 15000 */
    int64_t d = gr_gc_next_deadline(h.gc);
    ck_assert_int_le(d, t0 + 15000);
    tick_at(d > h.now ? d : h.now);
    ck_assert_str_eq(state("g"), "Stable");
    ck_assert_int_eq(hb("g", a, 1), GR_NONE);
    tick_at(h.now);
    ck_assert_int_eq(gr_gc_next_deadline(h.gc), h.now + 10000);
}
END_TEST

/* The answers of a failed append of __consumer_offsets, as Kafka's group
 * coordinator gives them: too large is the committer's fault for offsets
 * (INVALID_COMMIT_OFFSET_SIZE) and the server's for a group's metadata. */
START_TEST(append_errors_mapped_as_kafka)
{
    static const struct {
        int16_t append, offsets, group;
    } cases[] = {
        {GR_RECORD_LIST_TOO_LARGE, GR_INVALID_COMMIT_OFFSET_SIZE, GR_UNKNOWN_SERVER_ERROR},
        {GR_MESSAGE_TOO_LARGE, GR_INVALID_COMMIT_OFFSET_SIZE, GR_UNKNOWN_SERVER_ERROR},
        {GR_INVALID_FETCH_SIZE, GR_INVALID_COMMIT_OFFSET_SIZE, GR_UNKNOWN_SERVER_ERROR},
        {GR_NOT_LEADER_OR_FOLLOWER, GR_NOT_COORDINATOR, GR_NOT_COORDINATOR},
        {GR_KAFKA_STORAGE_ERROR, GR_NOT_COORDINATOR, GR_NOT_COORDINATOR},
        {GR_UNKNOWN_TOPIC_OR_PARTITION, GR_COORDINATOR_NOT_AVAILABLE, GR_COORDINATOR_NOT_AVAILABLE},
        {GR_NOT_ENOUGH_REPLICAS, GR_COORDINATOR_NOT_AVAILABLE, GR_COORDINATOR_NOT_AVAILABLE},
        {GR_REQUEST_TIMED_OUT, GR_COORDINATOR_NOT_AVAILABLE, GR_COORDINATOR_NOT_AVAILABLE},
        {GR_UNKNOWN_SERVER_ERROR, GR_UNKNOWN_SERVER_ERROR, GR_UNKNOWN_SERVER_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(gr_coordinator_append_error(cases[i].append, false), cases[i].offsets);
        ck_assert_int_eq(gr_coordinator_append_error(cases[i].append, true), cases[i].group);
    }
}
END_TEST

Suite *group_suite(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, member_id_required_then_initial_delay);
    tcase_add_test(tc, unknown_pending_member_id_expires);
    tcase_add_test(tc, initial_delay_extends_while_members_join);
    tcase_add_test(tc, initial_delay_bounded_by_rebalance_timeout);
    tcase_add_test(tc, followers_wait_for_leader_sync);
    tcase_add_test(tc, stable_rejoin_same_protocols);
    tcase_add_test(tc, protocol_selection_by_votes);
    tcase_add_test(tc, join_bad_input);
    tcase_add_test(tc, group_max_size);
    tcase_add_test(tc, group_max_size_removes_refused_member);
    tcase_add_test(tc, heartbeat_errors);
    tcase_add_test(tc, session_timeout_removes_member);
    tcase_add_test(tc, rebalance_timeout_drops_silent_members);
    tcase_add_test(tc, sync_timeout_removes_member);
    tcase_add_test(tc, sync_errors);
    tcase_add_test(tc, rebalance_voids_pending_sync);
    tcase_add_test(tc, leave_batched_and_single);
    tcase_add_test(tc, leave_answers_waiting_join);
    tcase_add_test(tc, static_member_rejoins_without_rebalance);
    tcase_add_test(tc, static_member_changed_protocols_rebalances);
    tcase_add_test(tc, static_member_session_expiry);
    tcase_add_test(tc, admin_commit_and_fetch);
    tcase_add_test(tc, commit_validation);
    tcase_add_test(tc, commit_not_applied_before_append);
    tcase_add_test(tc, delete_groups);
    tcase_add_test(tc, offset_delete);
    tcase_add_test(tc, many_subscribed_topics);
    tcase_add_test(tc, offsets_expire);
    tcase_add_test(tc, unsubscribed_offsets_expire_in_stable_group);
    tcase_add_test(tc, commit_retention_v2);
    tcase_add_test(tc, retried_join_in_completing_rebalance);
    tcase_add_test(tc, replay_rebuilds_state);
    tcase_add_test(tc, describe_and_list);
    tcase_add_test(tc, free_answers_waiters);
    tcase_add_test(tc, append_errors_mapped_as_kafka);
    tcase_add_test(tc, failed_assignment_store_rebalances);
    tcase_add_test(tc, new_member_join_timeout);
    tcase_add_test(tc, many_groups);
    tcase_add_test(tc, unknown_instance_id_is_unknown_member);
    tcase_add_test(tc, sync_timeout_removes_every_unsynced_member);
    tcase_add_test(tc, group_id_with_nul_refused);
    tcase_add_test(tc, next_deadline_early_never_late);
    suite_add_tcase(s, tc);
    return s;
}
