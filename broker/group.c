/*
 * group.c - the classic group coordinator's state machine (see group.h).
 *
 * Groups live in a chained hash table keyed by group id (every request
 * looks one up, and a partition of __consumer_offsets may hold thousands)
 * and, for the timers and listings that visit them all, in a doubly linked
 * list. Members live in a list per group and committed offsets in an array
 * per group; those lookups are linear, a group having tens of members and
 * partitions.
 *
 * Invariants kept here:
 *   - g->leader names a member of g, or is NULL when g has no members.
 *   - A member has a join_waiter only while g is PreparingRebalance (or
 *     just before the join completes in the same call), and a sync_waiter
 *     only while g is CompletingRebalance.
 *   - Outside PreparingRebalance join_deadline is GR_GC_NO_DEADLINE.
 *   - Every group is in gc->groups and in exactly one bucket, the one its
 *     id hashes to; nbuckets is a power of two.
 */
#include "broker/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/logging.h"

typedef enum { ST_EMPTY, ST_PREPARING, ST_COMPLETING, ST_STABLE, ST_DEAD } gstate;

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

typedef struct {
    char *name;
    uint8_t *meta;
    int32_t len;
} proto;

typedef struct member {
    struct member *next;
    char *id;
    char *instance_id; /* NULL: a dynamic member */
    char *client_id, *host;
    int32_t session_ms, rebalance_ms;
    proto *protos;
    int32_t nprotos;
    uint8_t *assignment;
    int32_t assignment_len;
    gr_gc_reply *join_waiter, *sync_waiter;
    bool pending_sync; /* joined this generation, has not sent SyncGroup yet */
    /* Joined and still waiting for its first generation (Kafka's isNew):
     * it cannot heartbeat yet, and a client that gave up on its JoinGroup
     * would otherwise stay a member for as long as the rebalance lasts, so
     * hb_deadline is then the new member join timeout (KIP-394). */
    bool is_new;
    int64_t hb_deadline;
} member;

typedef struct {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    char *metadata;
    int64_t commit_ts, expire_ts;
} offset;

typedef struct group {
    struct group *next, **pprev; /* gc->groups; pprev points at what points here */
    struct group *hnext;         /* the bucket's chain */
    char *id;
    gstate state;
    int32_t generation;
    char *protocol_type; /* NULL: never had members (offsets only) */
    char *protocol;      /* the selected protocol; NULL outside a generation */
    char *leader;
    int64_t state_ts;    /* when the current state began; -1 unknown */
    member *members;
    int32_t nmembers;
    member *pending;     /* ids handed out with MEMBER_ID_REQUIRED (id, hb_deadline only) */
    int32_t npending;
    int64_t join_deadline;
    bool initial_delay, new_member_added;
    int32_t delay_remaining;
    int64_t sync_deadline;
    offset *offsets;
    size_t noffsets, offcap;
    char **subscribed; /* topics of the consumer protocol's members */
    int32_t nsubscribed;
    bool subscribed_known;
    /* The leader's assignment is in memory (Stable) but its record not yet
     * in the log: if the append fails the group rebalances. */
    bool assignment_unstored;
} group;

struct gr_gc {
    gr_gc_config cfg;
    /* At or before every deadline of the groups below: each deadline set
     * lowers it, gr_gc_tick makes it exact again. The shell re-arms its
     * timer after every call, and walking every group and member for the
     * exact next deadline each time would cost each request as much as
     * the partition has members. A timer firing early only ticks. */
    int64_t next_due;
    group *groups;
    size_t ngroups;
    group **buckets;
    size_t nbuckets;
    bool loading;
    int64_t next_expiry; /* GR_GC_NO_DEADLINE until loaded */
};

/* ---- small helpers ---- */

static bool str_eq(gr_str s, const char *c)
{
    if (s.len < 0 || !c)
        return s.len < 0 && !c;
    return strlen(c) == (size_t)s.len && memcmp(s.ptr, c, (size_t)s.len) == 0;
}

static bool str_empty(gr_str s)
{
    return s.len <= 0;
}

/* A group id the state here can hold: not empty (Kafka's
 * INVALID_GROUP_ID) and without a NUL byte, since groups are kept and
 * written back under their id as a C string; one with a NUL would be a
 * new group at every request that no tombstone could ever remove. */
static bool valid_group_id(gr_str s)
{
    return s.len > 0 && !memchr(s.ptr, 0, (size_t)s.len);
}

/* A heap copy of s; *out NULL for a null s. false on allocation failure. */
static bool dup_str(gr_str s, char **out)
{
    *out = NULL;
    if (s.len < 0)
        return true;
    char *c = malloc((size_t)s.len + 1);
    if (!c)
        return false;
    if (s.len)
        memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = '\0';
    *out = c;
    return true;
}

static char *dup_c(const char *s)
{
    return s ? strdup(s) : NULL;
}

static gr_str cstr(const char *s)
{
    return s ? (gr_str){s, (int32_t)strlen(s)} : GR_STR_NULL;
}

/* Copies into a; on failure sets *oom and gives an empty string. */
static gr_str astr(gr_arena *a, const char *s, bool *oom)
{
    if (!s)
        return GR_STR_NULL;
    size_t n = strlen(s);
    char *c = gr_arena_strdup(a, s, n);
    if (!c) {
        *oom = true;
        return (gr_str){"", 0};
    }
    return (gr_str){c, (int32_t)n};
}

static gr_str astr_s(gr_arena *a, gr_str s, bool *oom)
{
    if (s.len < 0)
        return GR_STR_NULL;
    char *c = gr_arena_strdup(a, s.ptr ? s.ptr : "", (size_t)s.len);
    if (!c) {
        *oom = true;
        return (gr_str){"", 0};
    }
    return (gr_str){c, s.len};
}

static gr_bytes abytes(gr_arena *a, const uint8_t *p, int32_t len, bool *oom)
{
    if (len <= 0)
        return (gr_bytes){(const uint8_t *)"", 0};
    uint8_t *c = gr_arena_alloc(a, (size_t)len);
    if (!c) {
        *oom = true;
        return (gr_bytes){(const uint8_t *)"", 0};
    }
    memcpy(c, p, (size_t)len);
    return (gr_bytes){c, len};
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Sets a deadline, keeping gc->next_due at or before it. */
static void due(gr_gc *gc, int64_t *deadline, int64_t at)
{
    *deadline = at;
    if (at < gc->next_due)
        gc->next_due = at;
}

/* ---- configuration, replies, effects ---- */

void gr_gc_config_defaults(gr_gc_config *c)
{
    memset(c, 0, sizeof *c);
    c->min_session_timeout_ms = 6000;
    c->max_session_timeout_ms = 1800000;
    c->initial_rebalance_delay_ms = 3000;
    c->max_size = INT32_MAX;
    c->offset_metadata_max_bytes = 4096;
    c->offsets_retention_ms = 10080LL * 60 * 1000;
    c->retention_check_interval_ms = 600000;
    c->max_member_metadata_bytes = 1024 * 1024;
    c->new_member_join_timeout_ms = 300000;
}

void gr_gc_reply_init(gr_gc_reply *r, bool is_sync, int16_t version, void *waiter)
{
    memset(r, 0, sizeof *r);
    r->is_sync = is_sync;
    r->version = version;
    r->waiter = waiter;
    gr_arena_init(&r->arena);
    gr_join_group_response_init(&r->join);
    gr_sync_group_response_init(&r->sync);
}

void gr_gc_reply_release(gr_gc_reply *r)
{
    gr_arena_free(&r->arena);
}

void gr_gc_out_init(gr_gc_out *o)
{
    memset(o, 0, sizeof *o);
    o->replies_tail = &o->replies;
    gr_arena_init(&o->arena);
}

void gr_gc_out_free(gr_gc_out *o)
{
    free(o->records);
    gr_arena_free(&o->arena);
    o->records = NULL;
    o->nrecords = o->cap = 0;
}

static void emit(gr_gc_out *o, gr_gc_reply *r)
{
    r->next = NULL;
    *o->replies_tail = r;
    o->replies_tail = &r->next;
}

static gr_offsets_record *new_record(gr_gc_out *o)
{
    if (o->nrecords == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        gr_offsets_record *n = realloc(o->records, nc * sizeof *n);
        if (!n) {
            o->failed = true;
            return NULL;
        }
        o->records = n;
        o->cap = nc;
    }
    gr_offsets_record *r = &o->records[o->nrecords++];
    memset(r, 0, sizeof *r);
    return r;
}

/* ---- members ---- */

static void free_protos(proto *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].meta);
    }
    free(p);
}

static void free_member(member *m)
{
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->host);
    free_protos(m->protos, m->nprotos);
    free(m->assignment);
    free(m);
}

/* Heap copies of a JoinGroup's protocols. */
static bool copy_protos(const gr_join_group_request *req, proto **out, int32_t *n)
{
    proto *p = calloc(req->protocols_count > 0 ? (size_t)req->protocols_count : 1, sizeof *p);
    if (!p)
        return false;
    for (int32_t i = 0; i < req->protocols_count; i++) {
        const gr_join_group_request_protocol *rp = &req->protocols[i];
        if (!dup_str(rp->name, &p[i].name) || (rp->name.len < 0 && !(p[i].name = strdup("")))) {
            free_protos(p, i + 1);
            return false;
        }
        if (rp->metadata.len > 0) {
            if (!(p[i].meta = malloc((size_t)rp->metadata.len))) {
                free_protos(p, i + 1);
                return false;
            }
            memcpy(p[i].meta, rp->metadata.ptr, (size_t)rp->metadata.len);
            p[i].len = rp->metadata.len;
        }
    }
    *out = p;
    *n = req->protocols_count;
    return true;
}

static const proto *member_proto(const member *m, const char *name)
{
    if (!name)
        return NULL;
    for (int32_t i = 0; i < m->nprotos; i++)
        if (strcmp(m->protos[i].name, name) == 0)
            return &m->protos[i];
    return NULL;
}

/* Same protocols, in the same order, with the same metadata. */
static bool member_matches(const member *m, const gr_join_group_request *req)
{
    if (m->nprotos != req->protocols_count)
        return false;
    for (int32_t i = 0; i < m->nprotos; i++) {
        const gr_join_group_request_protocol *rp = &req->protocols[i];
        int32_t len = rp->metadata.len < 0 ? 0 : rp->metadata.len;
        if (!str_eq(rp->name, m->protos[i].name) || len != m->protos[i].len ||
            (len && memcmp(rp->metadata.ptr, m->protos[i].meta, (size_t)len) != 0))
            return false;
    }
    return true;
}

/* The member of list (members or pending) with that id. */
static member *find_in(member *list, gr_str id)
{
    for (member *m = list; m; m = m->next)
        if (str_eq(id, m->id))
            return m;
    return NULL;
}

static member *find_member(group *g, gr_str id) { return find_in(g->members, id); }

static member *find_member_c(group *g, const char *id)
{
    return id ? find_member(g, cstr(id)) : NULL;
}

static member *find_static(group *g, gr_str instance)
{
    if (instance.len < 0)
        return NULL;
    for (member *m = g->members; m; m = m->next)
        if (m->instance_id && str_eq(instance, m->instance_id))
            return m;
    return NULL;
}

static member *find_pending(group *g, gr_str id) { return find_in(g->pending, id); }

static void unlink_member(member **list, member *m)
{
    for (member **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

/* Kafka's validateMember: with an instance id, the static member holding
 * it must be this member id (none: UNKNOWN_MEMBER_ID, another:
 * FENCED_INSTANCE_ID); without one, the member id must be a member. Sets
 * *out to the member on success. */
static int16_t validate_member(group *g, gr_str member_id, gr_str instance, member **out)
{
    member *m;
    if (instance.len >= 0) {
        if (!(m = find_static(g, instance)))
            return GR_UNKNOWN_MEMBER_ID;
        if (!str_eq(member_id, m->id))
            return GR_FENCED_INSTANCE_ID;
    } else if (!(m = find_member(g, member_id))) {
        return GR_UNKNOWN_MEMBER_ID;
    }
    if (out)
        *out = m;
    return GR_NONE;
}

static bool is_leader(const group *g, const member *m)
{
    return g->leader && strcmp(g->leader, m->id) == 0;
}

static int32_t rebalance_timeout(const group *g)
{
    int32_t t = 0;
    for (member *m = g->members; m; m = m->next)
        if (m->rebalance_ms > t)
            t = m->rebalance_ms;
    return t;
}

/* ---- groups ---- */

#define MIN_BUCKETS 16

/* FNV-1a: group ids are short strings chosen by clients; chains stay short
 * as long as the table grows with the groups. */
static size_t bucket_of(const gr_gc *gc, const char *id, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ULL;
    return (size_t)h & (gc->nbuckets - 1);
}

static group *find_group(gr_gc *gc, gr_str id)
{
    if (id.len < 0)
        return NULL;
    for (group *g = gc->buckets[bucket_of(gc, id.ptr, (size_t)id.len)]; g; g = g->hnext)
        if (str_eq(id, g->id))
            return g;
    return NULL;
}

/* Doubles the table once there are more groups than buckets. Without the
 * memory the table keeps its size: lookups get slower, never wrong. */
static void maybe_grow(gr_gc *gc)
{
    if (gc->ngroups <= gc->nbuckets || gc->nbuckets > SIZE_MAX / 2 / sizeof(group *))
        return;
    group **old = gc->buckets;
    size_t nold = gc->nbuckets;
    group **nb = calloc(nold * 2, sizeof *nb);
    if (!nb)
        return;
    gc->buckets = nb;
    gc->nbuckets = nold * 2;
    for (size_t i = 0; i < nold; i++)
        for (group *g = old[i], *n; g; g = n) {
            n = g->hnext;
            size_t b = bucket_of(gc, g->id, strlen(g->id));
            g->hnext = nb[b];
            nb[b] = g;
        }
    free(old);
}

static void transition(group *g, gstate s, int64_t now)
{
    g->state = s;
    g->state_ts = now;
}

static group *new_group(gr_gc *gc, gr_str id, int64_t now)
{
    group *g = calloc(1, sizeof *g);
    if (!g || !dup_str(id, &g->id) || !g->id) {
        free(g);
        return NULL;
    }
    g->state = ST_EMPTY;
    g->state_ts = now;
    g->join_deadline = g->sync_deadline = GR_GC_NO_DEADLINE;
    g->next = gc->groups;
    if (g->next)
        g->next->pprev = &g->next;
    g->pprev = &gc->groups;
    gc->groups = g;
    size_t b = bucket_of(gc, g->id, strlen(g->id));
    g->hnext = gc->buckets[b];
    gc->buckets[b] = g;
    gc->ngroups++;
    maybe_grow(gc);
    return g;
}

static void free_subscribed(group *g)
{
    for (int32_t i = 0; i < g->nsubscribed; i++)
        free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->nsubscribed = 0;
    g->subscribed_known = false;
}

static void free_offset(offset *o)
{
    free(o->topic);
    free(o->metadata);
}

static void free_group(group *g)
{
    for (member *m = g->members, *n; m; m = n) {
        n = m->next;
        free_member(m);
    }
    for (member *m = g->pending, *n; m; m = n) {
        n = m->next;
        free_member(m);
    }
    for (size_t i = 0; i < g->noffsets; i++)
        free_offset(&g->offsets[i]);
    free(g->offsets);
    free_subscribed(g);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

static void remove_group(gr_gc *gc, group *g)
{
    for (group **pp = &gc->buckets[bucket_of(gc, g->id, strlen(g->id))]; *pp; pp = &(*pp)->hnext)
        if (*pp == g) {
            *pp = g->hnext;
            break;
        }
    *g->pprev = g->next;
    if (g->next)
        g->next->pprev = g->pprev;
    gc->ngroups--;
    free_group(g);
}

/* A group created by a request that then failed leaves no trace. */
static void drop_if_unused(gr_gc *gc, group *g)
{
    if (g->state == ST_EMPTY && g->generation == 0 && !g->members && !g->pending &&
        g->noffsets == 0 && !g->protocol_type)
        remove_group(gc, g);
}

static offset *find_offset(group *g, const char *topic, size_t tlen, int32_t partition)
{
    for (size_t i = 0; i < g->noffsets; i++) {
        offset *o = &g->offsets[i];
        if (o->partition == partition && strlen(o->topic) == tlen &&
            memcmp(o->topic, topic, tlen) == 0)
            return o;
    }
    return NULL;
}

static void delete_offset(group *g, offset *o)
{
    free_offset(o);
    *o = g->offsets[--g->noffsets];
}

/* ---- replies ---- */

static void join_fill(gr_gc_reply *r, int16_t err, const group *g, const char *member_id,
                      bool with_members, bool skip_assignment)
{
    bool oom = false;
    gr_join_group_response *j = &r->join;
    gr_join_group_response_init(j);
    j->error_code = err;
    j->member_id = astr(&r->arena, member_id ? member_id : "", &oom);
    if (err != GR_NONE || !g) {
        j->generation_id = -1;
        j->protocol_type = GR_STR_NULL;
        j->protocol_name = r->version >= 7 ? GR_STR_NULL : (gr_str){"", 0};
        j->leader = (gr_str){"", 0};
        return;
    }
    j->generation_id = g->generation;
    j->protocol_type = astr(&r->arena, g->protocol_type, &oom);
    j->protocol_name = astr(&r->arena, g->protocol ? g->protocol : "", &oom);
    if (r->version >= 7 && !g->protocol)
        j->protocol_name = GR_STR_NULL;
    j->leader = astr(&r->arena, g->leader ? g->leader : "", &oom);
    j->skip_assignment = skip_assignment;
    if (with_members && g->nmembers > 0) {
        j->members = gr_arena_calloc(&r->arena, (size_t)g->nmembers, sizeof *j->members);
        if (!j->members) {
            oom = true;
        } else {
            int32_t k = 0;
            for (member *m = g->members; m; m = m->next, k++) {
                gr_join_group_response_member *jm = &j->members[k];
                const proto *p = member_proto(m, g->protocol);
                jm->member_id = astr(&r->arena, m->id, &oom);
                jm->group_instance_id = astr(&r->arena, m->instance_id, &oom);
                jm->metadata = p ? abytes(&r->arena, p->meta, p->len, &oom)
                                 : (gr_bytes){(const uint8_t *)"", 0};
            }
            j->members_count = k;
        }
    }
    if (oom) {
        /* The member learns of the failure and rejoins; nothing half-built goes out. */
        gr_join_group_response_init(j);
        j->error_code = GR_UNKNOWN_SERVER_ERROR;
        j->generation_id = -1;
        j->member_id = (gr_str){"", 0};
        j->protocol_name = r->version >= 7 ? GR_STR_NULL : (gr_str){"", 0};
        j->leader = (gr_str){"", 0};
    }
}

static void join_reply(gr_gc_out *o, gr_gc_reply *r, int16_t err, const group *g,
                       const char *member_id, bool with_members, bool skip)
{
    join_fill(r, err, g, member_id, with_members, skip);
    emit(o, r);
}

static void join_error(gr_gc_out *o, gr_gc_reply *r, int16_t err, const char *member_id)
{
    join_reply(o, r, err, NULL, member_id, false, false);
}

static void join_error_s(gr_gc_out *o, gr_gc_reply *r, int16_t err, gr_str member_id)
{
    char buf[256];
    int32_t n = member_id.len > 0 ? member_id.len : 0;
    if (n > (int32_t)sizeof buf - 1)
        n = (int32_t)sizeof buf - 1;
    if (n)
        memcpy(buf, member_id.ptr, (size_t)n);
    buf[n] = '\0';
    join_error(o, r, err, buf);
}

static void sync_reply(gr_gc_out *o, gr_gc_reply *r, int16_t err, const group *g,
                       const member *m)
{
    bool oom = false;
    gr_sync_group_response *s = &r->sync;
    gr_sync_group_response_init(s);
    s->error_code = err;
    s->assignment = (gr_bytes){(const uint8_t *)"", 0};
    if (err == GR_NONE && g && m) {
        s->protocol_type = astr(&r->arena, g->protocol_type, &oom);
        s->protocol_name = astr(&r->arena, g->protocol, &oom);
        s->assignment = abytes(&r->arena, m->assignment, m->assignment_len, &oom);
        if (oom) {
            gr_sync_group_response_init(s);
            s->error_code = GR_UNKNOWN_SERVER_ERROR;
            s->assignment = (gr_bytes){(const uint8_t *)"", 0};
        }
    }
    emit(o, r);
}

/* ---- persistence of a group ---- */

/* The group's metadata record, as Kafka writes after a rebalance. */
static void store_group(group *g, gr_gc_out *o)
{
    gr_offsets_record *rec = new_record(o);
    if (!rec)
        return;
    bool oom = false;
    rec->kind = GR_OFFSETS_REC_GROUP;
    rec->group = astr(&o->arena, g->id, &oom);
    gr_group_metadata_value *v = &rec->value;
    gr_group_metadata_value_init(v);
    v->protocol_type = astr(&o->arena, g->protocol_type ? g->protocol_type : "", &oom);
    v->generation = g->generation;
    v->protocol = astr(&o->arena, g->protocol, &oom);
    v->leader = astr(&o->arena, g->leader, &oom);
    v->current_state_timestamp = g->state_ts;
    if (g->nmembers > 0) {
        v->members = gr_arena_calloc(&o->arena, (size_t)g->nmembers, sizeof *v->members);
        if (!v->members) {
            oom = true;
        } else {
            int32_t k = 0;
            for (member *m = g->members; m; m = m->next, k++) {
                gr_group_metadata_member_metadata *mm = &v->members[k];
                gr_group_metadata_member_metadata_init(mm);
                const proto *p = member_proto(m, g->protocol);
                mm->member_id = astr(&o->arena, m->id, &oom);
                mm->group_instance_id = astr(&o->arena, m->instance_id, &oom);
                mm->client_id = astr(&o->arena, m->client_id, &oom);
                mm->client_host = astr(&o->arena, m->host, &oom);
                mm->rebalance_timeout = m->rebalance_ms;
                mm->session_timeout = m->session_ms;
                mm->subscription = p ? abytes(&o->arena, p->meta, p->len, &oom)
                                     : (gr_bytes){(const uint8_t *)"", 0};
                mm->assignment = abytes(&o->arena, m->assignment, m->assignment_len, &oom);
            }
            v->members_count = k;
        }
    }
    if (oom)
        o->failed = true;
}

static void tombstone_offset(group *g, const offset *off, gr_gc_out *o)
{
    gr_offsets_record *rec = new_record(o);
    if (!rec)
        return;
    bool oom = false;
    rec->kind = GR_OFFSETS_REC_OFFSET;
    rec->tombstone = true;
    rec->group = astr(&o->arena, g->id, &oom);
    rec->topic = astr(&o->arena, off->topic, &oom);
    rec->partition = off->partition;
    if (oom)
        o->failed = true;
}

static void tombstone_group(group *g, gr_gc_out *o)
{
    gr_offsets_record *rec = new_record(o);
    if (!rec)
        return;
    bool oom = false;
    rec->kind = GR_OFFSETS_REC_GROUP;
    rec->tombstone = true;
    rec->group = astr(&o->arena, g->id, &oom);
    if (oom)
        o->failed = true;
}

/* ---- the rebalance ---- */

/* True when every member offers protocol name. */
static bool common_protocol(group *g, const char *name)
{
    for (member *m = g->members; m; m = m->next)
        if (!member_proto(m, name))
            return false;
    return true;
}

/* The protocol every member supports with the most votes, each member
 * voting for the first common one in its own order; ties go to the
 * earlier one in the leader's (else the first member's) order. NULL when
 * none is common. O(members x protocols^2), protocols being capped at
 * GR_GC_MAX_PROTOCOLS per member. */
static const char *select_protocol(group *g)
{
    member *first = find_member_c(g, g->leader);
    if (!first)
        first = g->members;
    if (!first || first->nprotos <= 0)
        return NULL;
    int32_t votes[GR_GC_MAX_PROTOCOLS] = {0};
    bool common[GR_GC_MAX_PROTOCOLS];
    int32_t n = first->nprotos < GR_GC_MAX_PROTOCOLS ? first->nprotos : GR_GC_MAX_PROTOCOLS;
    for (int32_t i = 0; i < n; i++)
        common[i] = common_protocol(g, first->protos[i].name);
    for (member *m = g->members; m; m = m->next) {
        bool voted = false;
        for (int32_t k = 0; k < m->nprotos && !voted; k++)
            for (int32_t i = 0; i < n && !voted; i++)
                if (common[i] && strcmp(m->protos[k].name, first->protos[i].name) == 0) {
                    votes[i]++;
                    voted = true;
                }
    }
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++)
        if (common[i] && (best < 0 || votes[i] > votes[best]))
            best = i;
    return best >= 0 ? first->protos[best].name : NULL;
}

/* Kafka's supportsProtocols: an empty group takes any non-empty protocol
 * type and list; otherwise the type must match and one of the protocols
 * must be supported by every member. */
static bool supports_protocols(group *g, const gr_join_group_request *req)
{
    if (str_empty(req->protocol_type) || req->protocols_count <= 0)
        return false;
    if (g->nmembers == 0)
        return true;
    if (!str_eq(req->protocol_type, g->protocol_type))
        return false;
    for (int32_t i = 0; i < req->protocols_count; i++) {
        bool all = true;
        for (member *m = g->members; m && all; m = m->next) {
            bool has = false;
            for (int32_t k = 0; k < m->nprotos && !has; k++)
                has = str_eq(req->protocols[i].name, m->protos[k].name);
            all = has;
        }
        if (all)
            return true;
    }
    return false;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A topic (gr_str key) against a subscribed name, in strcmp's order. */
static int cmp_topic(const void *key, const void *elem)
{
    const gr_str *t = key;
    const char *c = *(char *const *)elem;
    size_t cl = strlen(c), tl = t->len > 0 ? (size_t)t->len : 0;
    int r = memcmp(t->ptr ? t->ptr : "", c, tl < cl ? tl : cl);
    if (r)
        return r;
    return tl < cl ? -1 : tl > cl;
}

/* The topics the members of a "consumer" group subscribe to (for
 * OffsetDelete and the expiry); unknown when a subscription does not
 * decode. Sorted without duplicates: a member may name hundreds of
 * thousands of topics, and this runs under the partition's lock. */
static void compute_subscribed(group *g)
{
    free_subscribed(g);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0 || !g->protocol)
        return;
    gr_arena a;
    gr_arena_init(&a);
    bool ok = true;
    int32_t cap = 0;
    for (member *m = g->members; m && ok; m = m->next) {
        const proto *p = member_proto(m, g->protocol);
        if (!p || p->len < 2) {
            ok = false;
            break;
        }
        gr_reader r;
        gr_reader_init(&r, p->meta, (size_t)p->len);
        int16_t version;
        gr_consumer_protocol_subscription sub;
        if (gr_read_i16(&r, &version) != GR_OK || version < 0) {
            ok = false;
            break;
        }
        /* Later versions than we know keep the fields we read (Kafka
         * reads them with its latest schema the same way). */
        if (gr_consumer_protocol_subscription_decode(&sub, &r, version > 3 ? 3 : version, &a) !=
            GR_OK) {
            ok = false;
            break;
        }
        for (int32_t i = 0; i < sub.topics_count && ok; i++) {
            if (g->nsubscribed == cap) {
                int32_t nc = cap ? (cap > INT32_MAX / 2 ? INT32_MAX : cap * 2) : 16;
                char **n = nc > cap ? realloc(g->subscribed, (size_t)nc * sizeof *n) : NULL;
                if (!n) {
                    ok = false;
                    break;
                }
                g->subscribed = n;
                cap = nc;
            }
            if (!dup_str(sub.topics[i], &g->subscribed[g->nsubscribed]) ||
                !g->subscribed[g->nsubscribed])
                ok = false;
            else
                g->nsubscribed++;
        }
        gr_arena_free(&a); /* one member's decoded subscription at a time */
        gr_arena_init(&a);
    }
    gr_arena_free(&a);
    if (!ok) {
        free_subscribed(g);
        return;
    }
    if (g->nsubscribed > 1) {
        qsort(g->subscribed, (size_t)g->nsubscribed, sizeof *g->subscribed, cmp_name);
        int32_t k = 1;
        for (int32_t i = 1; i < g->nsubscribed; i++) {
            if (strcmp(g->subscribed[i], g->subscribed[k - 1]) == 0)
                free(g->subscribed[i]);
            else
                g->subscribed[k++] = g->subscribed[i];
        }
        g->nsubscribed = k;
    }
    g->subscribed_known = true;
}

static bool subscribed_to(group *g, gr_str topic)
{
    if (!g->subscribed_known)
        return true; /* as Kafka: when in doubt the group may be reading it */
    if (topic.len < 0 || (topic.len > 0 && memchr(topic.ptr, 0, (size_t)topic.len)))
        return false; /* no subscribed name is null or holds a NUL */
    return g->nsubscribed > 0 && bsearch(&topic, g->subscribed, (size_t)g->nsubscribed,
                                         sizeof *g->subscribed, cmp_topic) != NULL;
}

static void complete_join(gr_gc *gc, group *g, int64_t now, gr_gc_out *o);

static bool all_joined(group *g)
{
    if (g->npending > 0)
        return false;
    for (member *m = g->members; m; m = m->next)
        if (!m->join_waiter)
            return false;
    return true;
}

static void maybe_complete_join(gr_gc *gc, group *g, int64_t now, gr_gc_out *o)
{
    if (g->state == ST_PREPARING && !g->initial_delay && all_joined(g))
        complete_join(gc, g, now, o);
}

static void prepare_rebalance(gr_gc *gc, group *g, int64_t now, gr_gc_out *o)
{
    if (g->state == ST_COMPLETING) {
        /* The assignment being made is void: tell the members who wait for it. */
        for (member *m = g->members; m; m = m->next) {
            free(m->assignment);
            m->assignment = NULL;
            m->assignment_len = 0;
            m->pending_sync = false;
            if (m->sync_waiter) {
                gr_gc_reply *r = m->sync_waiter;
                m->sync_waiter = NULL;
                sync_reply(o, r, GR_REBALANCE_IN_PROGRESS, NULL, NULL);
            }
        }
        g->sync_deadline = GR_GC_NO_DEADLINE;
    }
    if (g->state == ST_EMPTY) {
        /* Wait for more of the first members before the first assignment. */
        int32_t delay = gc->cfg.initial_rebalance_delay_ms;
        int32_t rt = rebalance_timeout(g);
        g->initial_delay = true;
        g->new_member_added = false;
        g->delay_remaining = rt - delay > 0 ? rt - delay : 0;
        due(gc, &g->join_deadline, now + delay);
    } else {
        g->initial_delay = false;
        due(gc, &g->join_deadline, now + rebalance_timeout(g));
    }
    transition(g, ST_PREPARING, now);
    maybe_complete_join(gc, g, now, o);
}

static void maybe_prepare_rebalance(gr_gc *gc, group *g, int64_t now, gr_gc_out *o)
{
    if (g->state == ST_STABLE || g->state == ST_COMPLETING || g->state == ST_EMPTY)
        prepare_rebalance(gc, g, now, o);
}

/* Takes m (a full member) out of g, answering what it waits on with
 * UNKNOWN_MEMBER_ID and handing the leadership to the first member left
 * (Kafka's ClassicGroup.remove); the group does not react. */
static void detach_member(group *g, member *m, gr_gc_out *o)
{
    if (m->join_waiter)
        join_error(o, m->join_waiter, GR_UNKNOWN_MEMBER_ID, "");
    if (m->sync_waiter)
        sync_reply(o, m->sync_waiter, GR_UNKNOWN_MEMBER_ID, NULL, NULL);
    unlink_member(&g->members, m);
    g->nmembers--;
    if (is_leader(g, m)) {
        free(g->leader);
        g->leader = g->members ? dup_c(g->members->id) : NULL;
        if (g->members && !g->leader)
            GR_ERROR("group", "group %s: out of memory electing a leader", g->id);
    }
    free_member(m);
}

/* Removes m (a full member) and lets the group react, as Kafka's
 * removeMemberAndUpdateGroup. */
static void remove_member(gr_gc *gc, group *g, member *m, int64_t now, gr_gc_out *o)
{
    detach_member(g, m, o);
    switch (g->state) {
    case ST_STABLE:
    case ST_COMPLETING:
        prepare_rebalance(gc, g, now, o);
        break;
    case ST_PREPARING:
        maybe_complete_join(gc, g, now, o);
        break;
    default:
        break;
    }
}

static void remove_pending(group *g, member *p)
{
    unlink_member(&g->pending, p);
    g->npending--;
    free_member(p);
}

/* Picks a leader among the members that rejoined; false when none did. */
static bool elect_joined_leader(group *g)
{
    member *l = find_member_c(g, g->leader);
    if (l && l->join_waiter)
        return true;
    for (member *m = g->members; m; m = m->next)
        if (m->join_waiter) {
            char *id = strdup(m->id);
            if (!id)
                return false;
            free(g->leader);
            g->leader = id;
            return true;
        }
    return false;
}

static void complete_join(gr_gc *gc, group *g, int64_t now, gr_gc_out *o)
{
    (void)gc;
    /* Dynamic members that did not rejoin in time are out; static ones
     * stay until their session expires, as in Kafka. */
    for (member *m = g->members, *n; m; m = n) {
        n = m->next;
        if (!m->join_waiter && !m->instance_id)
            detach_member(g, m, o);
    }
    if (g->nmembers > 0 && !elect_joined_leader(g)) {
        /* Nobody rejoined: wait another rebalance timeout for the session
         * timeouts to clear the silent members. */
        g->initial_delay = false;
        due(gc, &g->join_deadline, now + rebalance_timeout(g));
        return;
    }
    g->join_deadline = GR_GC_NO_DEADLINE;
    g->initial_delay = false;
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    if (g->nmembers == 0) {
        free(g->leader);
        g->leader = NULL;
        free_subscribed(g);
        transition(g, ST_EMPTY, now);
        store_group(g, o);
        return;
    }
    const char *sel = select_protocol(g);
    g->protocol = dup_c(sel);
    if (sel && !g->protocol)
        GR_ERROR("group", "group %s: out of memory selecting a protocol", g->id);
    compute_subscribed(g);
    transition(g, ST_COMPLETING, now);
    for (member *m = g->members; m; m = m->next) {
        m->pending_sync = true;
        if (m->join_waiter) {
            gr_gc_reply *r = m->join_waiter;
            m->join_waiter = NULL;
            bool leader = is_leader(g, m);
            join_reply(o, r, GR_NONE, g, m->id, leader, false);
            m->is_new = false;
            due(gc, &m->hb_deadline, now + m->session_ms);
        }
    }
    due(gc, &g->sync_deadline, now + rebalance_timeout(g));
}

/* ---- JoinGroup ---- */

static member *new_member_from(const gr_join_group_request *req, const char *id,
                               const char *client_id, const char *host, int32_t rebalance_ms)
{
    member *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->session_ms = req->session_timeout_ms;
    m->rebalance_ms = rebalance_ms;
    if (!(m->id = strdup(id)) || !(m->client_id = strdup(client_id ? client_id : "")) ||
        !(m->host = strdup(host ? host : "")) ||
        !dup_str(req->group_instance_id, &m->instance_id) ||
        !copy_protos(req, &m->protos, &m->nprotos)) {
        free_member(m);
        return NULL;
    }
    return m;
}

static void add_member_and_rebalance(gr_gc *gc, group *g, const gr_join_group_request *req,
                                     const char *id, const char *client_id, const char *host,
                                     int32_t rebalance_ms, gr_gc_reply *r, int64_t now,
                                     gr_gc_out *o)
{
    member *m = new_member_from(req, id, client_id, host, rebalance_ms);
    char *pt = NULL;
    if (!m || (g->nmembers == 0 && !dup_str(req->protocol_type, &pt)) ||
        (!g->leader && !(g->leader = strdup(id)))) {
        if (m)
            free_member(m);
        free(pt);
        join_error(o, r, GR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    if (g->nmembers == 0) {
        free(g->protocol_type);
        g->protocol_type = pt;
    }
    /* Members keep their joining order: the first is the leader's heir. */
    member **tail = &g->members;
    while (*tail)
        tail = &(*tail)->next;
    *tail = m;
    g->nmembers++;
    m->join_waiter = r;
    m->is_new = true;
    due(gc, &m->hb_deadline, now + gc->cfg.new_member_join_timeout_ms);
    if (g->state == ST_PREPARING && g->initial_delay)
        g->new_member_added = true;
    if (g->state == ST_PREPARING)
        maybe_complete_join(gc, g, now, o);
    else
        maybe_prepare_rebalance(gc, g, now, o);
}

/* New protocols and timeouts for a known member, which now waits to join. */
static bool update_member(group *g, member *m, const gr_join_group_request *req,
                          int32_t rebalance_ms, gr_gc_reply *r, gr_gc_out *o)
{
    proto *p;
    int32_t n;
    if (!copy_protos(req, &p, &n))
        return false;
    free_protos(m->protos, m->nprotos);
    m->protos = p;
    m->nprotos = n;
    m->session_ms = req->session_timeout_ms;
    m->rebalance_ms = rebalance_ms;
    if (m->join_waiter && m->join_waiter != r) /* an older JoinGroup of the same member */
        join_error(o, m->join_waiter, GR_REBALANCE_IN_PROGRESS, m->id);
    m->join_waiter = r;
    (void)g;
    return true;
}

static void update_member_and_rebalance(gr_gc *gc, group *g, member *m,
                                        const gr_join_group_request *req, int32_t rebalance_ms,
                                        gr_gc_reply *r, int64_t now, gr_gc_out *o)
{
    if (!update_member(g, m, req, rebalance_ms, r, o)) {
        join_error(o, r, GR_UNKNOWN_SERVER_ERROR, m->id);
        return;
    }
    if (!m->is_new) /* a new member keeps its join timeout, as in Kafka */
        due(gc, &m->hb_deadline, now + m->session_ms);
    if (g->state == ST_PREPARING)
        maybe_complete_join(gc, g, now, o);
    else
        maybe_prepare_rebalance(gc, g, now, o);
}

/* A static member rejoining with no member id: it takes over the old
 * member's place (and assignment) under a new id; the old id is fenced. */
static void static_member_rejoin(gr_gc *gc, group *g, member *old, const char *new_id,
                                 const gr_join_group_request *req, int32_t rebalance_ms,
                                 gr_gc_reply *r, int64_t now, gr_gc_out *o)
{
    char *id = strdup(new_id);
    char *leader = is_leader(g, old) ? strdup(new_id) : NULL;
    if (!id || (is_leader(g, old) && !leader)) {
        free(id);
        free(leader);
        join_error(o, r, GR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    if (old->join_waiter) {
        gr_gc_reply *w = old->join_waiter;
        old->join_waiter = NULL;
        join_error(o, w, GR_FENCED_INSTANCE_ID, old->id);
    }
    if (old->sync_waiter) {
        gr_gc_reply *w = old->sync_waiter;
        old->sync_waiter = NULL;
        sync_reply(o, w, GR_FENCED_INSTANCE_ID, NULL, NULL);
    }
    free(old->id);
    old->id = id;
    if (leader) {
        free(g->leader);
        g->leader = leader;
    }
    due(gc, &old->hb_deadline, now + req->session_timeout_ms);
    if (!update_member(g, old, req, rebalance_ms, r, o)) {
        old->join_waiter = NULL;
        join_error(o, r, GR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    switch (g->state) {
    case ST_STABLE: {
        const char *sel = select_protocol(g);
        if (sel && g->protocol && strcmp(sel, g->protocol) == 0) {
            /* Same protocol: no rebalance, the assignment stays; persist the
             * new member id and answer at once. */
            old->join_waiter = NULL;
            store_group(g, o);
            bool lead = is_leader(g, old);
            join_reply(o, r, GR_NONE, g, old->id, lead, lead);
        } else {
            prepare_rebalance(gc, g, now, o);
        }
        break;
    }
    case ST_COMPLETING:
        prepare_rebalance(gc, g, now, o);
        break;
    case ST_PREPARING:
        maybe_complete_join(gc, g, now, o);
        break;
    default:
        break;
    }
}

/* Kafka's acceptJoiningMember (group.max.size). */
static bool accept_joining(gr_gc *gc, group *g, gr_str member_id)
{
    int32_t max = gc->cfg.max_size;
    member *m = str_empty(member_id) ? NULL : find_member(g, member_id);
    switch (g->state) {
    case ST_PREPARING: {
        if (m && m->join_waiter)
            return true;
        int32_t waiting = 0;
        for (member *x = g->members; x; x = x->next)
            waiting += x->join_waiter != NULL;
        return waiting < max;
    }
    case ST_COMPLETING:
    case ST_STABLE:
        return m != NULL || g->nmembers < max;
    default:
        return true;
    }
}

static void make_member_id(gr_gc *gc, const char *client_id, char *out, size_t len)
{
    uint8_t u[16] = {0};
    if (gc->cfg.random)
        gc->cfg.random(gc->cfg.random_ctx, u, sizeof u);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* a version 4 UUID, as Java's randomUUID */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, len,
             "%.200s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             client_id ? client_id : "", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
             u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

void gr_gc_join(gr_gc *gc, const gr_join_group_request *req, const char *client_id,
                const char *client_host, gr_gc_reply *r, int64_t now, gr_gc_out *o)
{
    if (gc->loading) {
        join_error_s(o, r, GR_COORDINATOR_LOAD_IN_PROGRESS, req->member_id);
        return;
    }
    if (!valid_group_id(req->group_id)) {
        join_error_s(o, r, GR_INVALID_GROUP_ID, req->member_id);
        return;
    }
    if (req->session_timeout_ms < gc->cfg.min_session_timeout_ms ||
        req->session_timeout_ms > gc->cfg.max_session_timeout_ms) {
        join_error_s(o, r, GR_INVALID_SESSION_TIMEOUT, req->member_id);
        return;
    }
    if (req->protocols_count > GR_GC_MAX_PROTOCOLS) {
        join_error_s(o, r, GR_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
        return;
    }
    int64_t meta = 0;
    for (int32_t i = 0; i < req->protocols_count; i++)
        meta += req->protocols[i].metadata.len > 0 ? req->protocols[i].metadata.len : 0;
    if (meta > gc->cfg.max_member_metadata_bytes) {
        GR_WARN("group", "JoinGroup of %.*s: %lld bytes of protocol metadata (most %d)",
                (int)req->group_id.len, req->group_id.ptr, (long long)meta,
                gc->cfg.max_member_metadata_bytes);
        join_error_s(o, r, GR_UNKNOWN_SERVER_ERROR, req->member_id);
        return;
    }
    /* v0 has no rebalance timeout: the session timeout serves as both. */
    int32_t rebalance_ms = req->rebalance_timeout_ms >= 0 ? req->rebalance_timeout_ms
                                                           : req->session_timeout_ms;
    bool unknown = str_empty(req->member_id);
    group *g = find_group(gc, req->group_id);
    if (!g) {
        if (!unknown) {
            join_error_s(o, r, GR_UNKNOWN_MEMBER_ID, req->member_id);
            return;
        }
        if (!(g = new_group(gc, req->group_id, now))) {
            join_error(o, r, GR_UNKNOWN_SERVER_ERROR, "");
            return;
        }
    }
    int16_t err = GR_NONE;
    if (g->state == ST_DEAD)
        err = GR_COORDINATOR_NOT_AVAILABLE;
    else if (!accept_joining(gc, g, req->member_id))
        err = GR_GROUP_MAX_SIZE_REACHED;
    else if (!supports_protocols(g, req))
        err = GR_INCONSISTENT_GROUP_PROTOCOL;
    if (err == GR_GROUP_MAX_SIZE_REACHED && !unknown) {
        /* As Kafka: a member refused for the group's size is no longer
         * one (it may rejoin as a new member when there is room). */
        member *x = find_member(g, req->member_id);
        member *p = x ? NULL : find_pending(g, req->member_id);
        if (x)
            detach_member(g, x, o);
        else if (p)
            remove_pending(g, p);
    }
    if (err != GR_NONE) {
        join_error_s(o, r, err, err == GR_GROUP_MAX_SIZE_REACHED ? GR_STR_NULL : req->member_id);
        drop_if_unused(gc, g);
        return;
    }
    if (unknown) {
        char id[300];
        make_member_id(gc, client_id, id, sizeof id);
        member *old = find_static(g, req->group_instance_id);
        if (old) {
            static_member_rejoin(gc, g, old, id, req, rebalance_ms, r, now, o);
        } else if (req->group_instance_id.len < 0 && r->version >= 4) {
            /* The member must come back with this id: only then is it one. */
            member *p = calloc(1, sizeof *p);
            if (!p || !(p->id = strdup(id))) {
                free(p);
                join_error(o, r, GR_UNKNOWN_SERVER_ERROR, "");
                drop_if_unused(gc, g);
                return;
            }
            p->session_ms = req->session_timeout_ms;
            due(gc, &p->hb_deadline, now + req->session_timeout_ms);
            p->next = g->pending;
            g->pending = p;
            g->npending++;
            join_error(o, r, GR_MEMBER_ID_REQUIRED, id);
        } else {
            add_member_and_rebalance(gc, g, req, id, client_id, client_host, rebalance_ms, r,
                                     now, o);
            drop_if_unused(gc, g);
        }
        return;
    }
    member *p = find_pending(g, req->member_id);
    if (p) {
        char id[300];
        snprintf(id, sizeof id, "%s", p->id);
        remove_pending(g, p);
        add_member_and_rebalance(gc, g, req, id, client_id, client_host, rebalance_ms, r, now,
                                 o);
        return;
    }
    member *m = NULL;
    err = validate_member(g, req->member_id, req->group_instance_id, &m);
    if (err != GR_NONE) {
        join_error_s(o, r, err, req->member_id);
        return;
    }
    switch (g->state) {
    case ST_PREPARING:
        update_member_and_rebalance(gc, g, m, req, rebalance_ms, r, now, o);
        break;
    case ST_COMPLETING:
        if (member_matches(m, req)) /* a retried JoinGroup: the same answer again */
            join_reply(o, r, GR_NONE, g, m->id, is_leader(g, m), false);
        else
            update_member_and_rebalance(gc, g, m, req, rebalance_ms, r, now, o);
        break;
    case ST_STABLE:
        if (is_leader(g, m) || !member_matches(m, req)) {
            update_member_and_rebalance(gc, g, m, req, rebalance_ms, r, now, o);
        } else {
            due(gc, &m->hb_deadline, now + m->session_ms);
            join_reply(o, r, GR_NONE, g, m->id, false, false);
        }
        break;
    default:
        join_error_s(o, r, GR_UNKNOWN_MEMBER_ID, req->member_id);
        break;
    }
}

/* ---- SyncGroup ---- */

static void finish_sync_deadline(group *g)
{
    for (member *m = g->members; m; m = m->next)
        if (m->pending_sync)
            return;
    g->sync_deadline = GR_GC_NO_DEADLINE;
}

void gr_gc_sync(gr_gc *gc, const gr_sync_group_request *req, gr_gc_reply *r, int64_t now,
                gr_gc_out *o)
{
    if (gc->loading) {
        sync_reply(o, r, GR_COORDINATOR_LOAD_IN_PROGRESS, NULL, NULL);
        return;
    }
    if (!valid_group_id(req->group_id)) {
        sync_reply(o, r, GR_INVALID_GROUP_ID, NULL, NULL);
        return;
    }
    group *g = find_group(gc, req->group_id);
    int16_t err = GR_NONE;
    member *m = NULL;
    if (!g)
        err = GR_UNKNOWN_MEMBER_ID;
    else if (g->state == ST_DEAD)
        err = GR_COORDINATOR_NOT_AVAILABLE;
    else if ((err = validate_member(g, req->member_id, req->group_instance_id, &m)) != GR_NONE)
        ;
    else if (req->generation_id != g->generation)
        err = GR_ILLEGAL_GENERATION;
    else if ((req->protocol_type.len >= 0 && !str_eq(req->protocol_type, g->protocol_type)) ||
             (req->protocol_name.len >= 0 && !str_eq(req->protocol_name, g->protocol)))
        err = GR_INCONSISTENT_GROUP_PROTOCOL;
    else if (g->state == ST_EMPTY)
        err = GR_UNKNOWN_MEMBER_ID;
    else if (g->state == ST_PREPARING)
        err = GR_REBALANCE_IN_PROGRESS;
    if (err != GR_NONE) {
        sync_reply(o, r, err, NULL, NULL);
        return;
    }
    due(gc, &m->hb_deadline, now + m->session_ms);
    m->pending_sync = false;
    finish_sync_deadline(g);
    if (g->state == ST_STABLE) {
        sync_reply(o, r, GR_NONE, g, m);
        return;
    }
    /* CompletingRebalance */
    if (m->sync_waiter)
        sync_reply(o, m->sync_waiter, GR_REBALANCE_IN_PROGRESS, NULL, NULL);
    m->sync_waiter = r;
    if (!is_leader(g, m))
        return;
    /* The leader's assignment: every member gets its part (none: empty). */
    for (member *x = g->members; x; x = x->next) {
        const gr_sync_group_request_assignment *a = NULL;
        for (int32_t i = 0; i < req->assignments_count && !a; i++)
            if (str_eq(req->assignments[i].member_id, x->id))
                a = &req->assignments[i];
        free(x->assignment);
        x->assignment = NULL;
        x->assignment_len = 0;
        if (a && a->assignment.len > 0) {
            x->assignment = malloc((size_t)a->assignment.len);
            if (x->assignment) {
                memcpy(x->assignment, a->assignment.ptr, (size_t)a->assignment.len);
                x->assignment_len = a->assignment.len;
            } else {
                o->failed = true; /* answered as a failed store: the group rebalances */
            }
        }
    }
    transition(g, ST_STABLE, now);
    store_group(g, o);
    g->assignment_unstored = true;
    for (member *x = g->members; x; x = x->next)
        if (x->sync_waiter) {
            gr_gc_reply *w = x->sync_waiter;
            x->sync_waiter = NULL;
            sync_reply(o, w, GR_NONE, g, x);
        }
}

/* ---- Heartbeat ---- */

int16_t gr_gc_heartbeat(gr_gc *gc, const gr_heartbeat_request *req, int64_t now, gr_gc_out *o)
{
    (void)o;
    if (gc->loading)
        return GR_COORDINATOR_LOAD_IN_PROGRESS;
    if (!valid_group_id(req->group_id))
        return GR_INVALID_GROUP_ID;
    group *g = find_group(gc, req->group_id);
    if (!g)
        return GR_UNKNOWN_MEMBER_ID;
    if (g->state == ST_DEAD)
        return GR_COORDINATOR_NOT_AVAILABLE;
    member *m = NULL;
    int16_t err = validate_member(g, req->member_id, req->group_instance_id, &m);
    if (err != GR_NONE)
        return err;
    if (req->generation_id != g->generation)
        return GR_ILLEGAL_GENERATION;
    switch (g->state) {
    case ST_EMPTY:
        return GR_UNKNOWN_MEMBER_ID;
    case ST_PREPARING:
        due(gc, &m->hb_deadline, now + m->session_ms);
        return GR_REBALANCE_IN_PROGRESS;
    default: /* CompletingRebalance, Stable: alive */
        due(gc, &m->hb_deadline, now + m->session_ms);
        return GR_NONE;
    }
}

/* ---- LeaveGroup ---- */

static int16_t leave_one(gr_gc *gc, group *g, gr_str member_id, gr_str instance, int64_t now,
                         gr_gc_out *o)
{
    member *m = NULL;
    member *p = instance.len < 0 ? find_pending(g, member_id) : NULL;
    if (p) { /* a pending member is never a static one */
        remove_pending(g, p);
        maybe_complete_join(gc, g, now, o);
        return GR_NONE;
    }
    if (str_empty(member_id) && instance.len >= 0) {
        /* A static member may leave by its instance id alone (KIP-345). */
        if (!(m = find_static(g, instance)))
            return GR_UNKNOWN_MEMBER_ID;
    } else {
        int16_t err = validate_member(g, member_id, instance, &m);
        if (err != GR_NONE)
            return err;
    }
    remove_member(gc, g, m, now, o);
    return GR_NONE;
}

void gr_gc_leave(gr_gc *gc, const gr_leave_group_request *req, int16_t version, int64_t now,
                 gr_arena *a, gr_leave_group_response *resp, gr_gc_out *o)
{
    gr_leave_group_response_init(resp);
    /* v0-2 name one member; v3+ a list. One shape here. */
    gr_leave_group_request_member_identity one = {req->member_id, GR_STR_NULL, GR_STR_NULL};
    const gr_leave_group_request_member_identity *ids = version >= 3 ? req->members : &one;
    int32_t n = version >= 3 ? req->members_count : 1;
    if (n < 0)
        n = 0;
    if (gc->loading) {
        resp->error_code = GR_COORDINATOR_LOAD_IN_PROGRESS;
        return;
    }
    if (!valid_group_id(req->group_id)) {
        resp->error_code = GR_INVALID_GROUP_ID;
        return;
    }
    group *g = find_group(gc, req->group_id);
    if (g && g->state == ST_DEAD) {
        resp->error_code = GR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    gr_leave_group_response_member_response *mr =
        gr_arena_calloc(a, n ? (size_t)n : 1, sizeof *mr);
    if (!mr) {
        resp->error_code = GR_UNKNOWN_SERVER_ERROR;
        return;
    }
    int16_t first = GR_NONE;
    for (int32_t i = 0; i < n; i++) {
        mr[i].member_id = ids[i].member_id;
        mr[i].group_instance_id = ids[i].group_instance_id;
        mr[i].error_code = g ? leave_one(gc, g, ids[i].member_id, ids[i].group_instance_id, now, o)
                             : GR_UNKNOWN_MEMBER_ID;
        if (first == GR_NONE)
            first = mr[i].error_code;
    }
    if (version >= 3) {
        resp->members = mr;
        resp->members_count = n;
    } else {
        resp->error_code = first;
    }
}

/* ---- offsets ---- */

/* Kafka 4.0's ClassicGroup.validateOffsetCommit. */
static int16_t validate_commit(group *g, gr_str member_id, gr_str instance, int32_t generation)
{
    if (g->state == ST_DEAD)
        return GR_COORDINATOR_NOT_AVAILABLE;
    if (generation < 0 && g->state == ST_EMPTY)
        return GR_NONE; /* an admin client, or a consumer outside group management */
    if (generation >= 0 || !str_empty(member_id) || instance.len >= 0) {
        int16_t err = validate_member(g, member_id, instance, NULL);
        if (err != GR_NONE)
            return err;
        if (generation != g->generation)
            return GR_ILLEGAL_GENERATION;
    } else if (g->state != ST_EMPTY) {
        return GR_UNKNOWN_MEMBER_ID;
    }
    if (g->state == ST_COMPLETING)
        return GR_REBALANCE_IN_PROGRESS;
    return GR_NONE;
}

bool gr_gc_commit_answer(const gr_offset_commit_request *req, gr_arena *a,
                         gr_offset_commit_response *resp, int16_t err)
{
    gr_offset_commit_response_init(resp);
    int32_t nt = req->topics_count > 0 ? req->topics_count : 0;
    resp->topics = gr_arena_calloc(a, nt ? (size_t)nt : 1, sizeof *resp->topics);
    if (!resp->topics)
        return false;
    resp->topics_count = nt;
    bool ok = true;
    for (int32_t i = 0; i < nt; i++) {
        const gr_offset_commit_request_topic *t = &req->topics[i];
        gr_offset_commit_response_topic *rt = &resp->topics[i];
        int32_t np = t->partitions_count > 0 ? t->partitions_count : 0;
        rt->name = t->name;
        rt->partitions = gr_arena_calloc(a, np ? (size_t)np : 1, sizeof *rt->partitions);
        if (!rt->partitions) {
            ok = false;
            rt->partitions_count = 0;
            continue;
        }
        rt->partitions_count = np;
        for (int32_t k = 0; k < np; k++) {
            rt->partitions[k].partition_index = t->partitions[k].partition_index;
            rt->partitions[k].error_code = err;
        }
    }
    return ok;
}

void gr_gc_commit(gr_gc *gc, const gr_offset_commit_request *req, int16_t version, int64_t now,
                  gr_arena *a, gr_offset_commit_response *resp, gr_gc_out *o)
{
    if (!gr_gc_commit_answer(req, a, resp, GR_NONE))
        o->failed = true;
    int32_t nt = resp->topics_count;
    int16_t err = GR_NONE;
    group *g = NULL;
    if (gc->loading) {
        err = GR_COORDINATOR_LOAD_IN_PROGRESS;
    } else if (!valid_group_id(req->group_id)) {
        err = GR_INVALID_GROUP_ID;
    } else if (!(g = find_group(gc, req->group_id))) {
        if (req->generation_id_or_member_epoch < 0) {
            /* A group that only stores offsets comes into being. */
            if (!(g = new_group(gc, req->group_id, now)))
                err = GR_UNKNOWN_SERVER_ERROR;
        } else {
            err = version >= 9 ? GR_GROUP_ID_NOT_FOUND : GR_ILLEGAL_GENERATION;
        }
    } else {
        err = validate_commit(g, req->member_id, req->group_instance_id,
                              req->generation_id_or_member_epoch);
    }
    if (err == GR_NONE && g) {
        member *m = find_member(g, req->member_id);
        if (m)
            due(gc, &m->hb_deadline, now + m->session_ms);
    }
    for (int32_t i = 0; i < nt; i++) {
        const gr_offset_commit_request_topic *t = &req->topics[i];
        gr_offset_commit_response_topic *rt = &resp->topics[i];
        for (int32_t k = 0; k < rt->partitions_count; k++) {
            const gr_offset_commit_request_partition *p = &t->partitions[k];
            if (err != GR_NONE) {
                rt->partitions[k].error_code = err;
                continue;
            }
            if (p->committed_metadata.len > gc->cfg.offset_metadata_max_bytes) {
                rt->partitions[k].error_code = GR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            gr_offsets_record *rec = new_record(o);
            if (!rec) {
                rt->partitions[k].error_code = GR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            bool oom = false;
            rec->kind = GR_OFFSETS_REC_OFFSET;
            rec->group = astr_s(&o->arena, req->group_id, &oom);
            rec->topic = astr_s(&o->arena, t->name.len < 0 ? (gr_str){"", 0} : t->name, &oom);
            rec->partition = p->partition_index;
            gr_offset_commit_value_init(&rec->offset);
            rec->offset.offset = p->committed_offset;
            rec->offset.leader_epoch = p->committed_leader_epoch;
            rec->offset.metadata = astr_s(&o->arena,
                                          p->committed_metadata.len < 0 ? (gr_str){"", 0}
                                                                        : p->committed_metadata,
                                          &oom);
            rec->offset.commit_timestamp = now;
            /* v2-4 may ask for their own retention; later versions cannot. */
            rec->offset.expire_timestamp =
                req->retention_time_ms >= 0 && version <= 4 ? now + req->retention_time_ms : -1;
            if (oom) {
                o->nrecords--;
                rt->partitions[k].error_code = GR_UNKNOWN_SERVER_ERROR;
            }
        }
    }
    if (g && err != GR_NONE)
        drop_if_unused(gc, g);
}

/* Applies one committed offset (or its tombstone) to g. */
static bool apply_offset(group *g, const gr_offsets_record *rec)
{
    gr_str t = rec->topic.len < 0 ? (gr_str){"", 0} : rec->topic;
    offset *o = find_offset(g, t.ptr ? t.ptr : "", (size_t)t.len, rec->partition);
    if (rec->tombstone) {
        if (o)
            delete_offset(g, o);
        return true;
    }
    char *md;
    if (!dup_str(rec->offset.metadata.len < 0 ? (gr_str){"", 0} : rec->offset.metadata, &md))
        return false;
    if (!o) {
        if (g->noffsets == g->offcap) {
            size_t nc = g->offcap ? g->offcap * 2 : 8;
            offset *n = realloc(g->offsets, nc * sizeof *n);
            if (!n) {
                free(md);
                return false;
            }
            g->offsets = n;
            g->offcap = nc;
        }
        o = &g->offsets[g->noffsets];
        memset(o, 0, sizeof *o);
        if (!dup_str(t, &o->topic)) {
            free(md);
            return false;
        }
        g->noffsets++;
        o->partition = rec->partition;
    }
    free(o->metadata);
    o->metadata = md;
    o->offset = rec->offset.offset;
    o->epoch = rec->offset.leader_epoch;
    o->commit_ts = rec->offset.commit_timestamp;
    o->expire_ts = rec->offset.expire_timestamp;
    return true;
}

static bool apply_record(gr_gc *gc, const gr_offsets_record *rec, bool live)
{
    if (!valid_group_id(rec->group))
        return true; /* no request could have written it: skipped */
    group *g = find_group(gc, rec->group);
    if (rec->kind == GR_OFFSETS_REC_OFFSET) {
        if (!g) {
            if (rec->tombstone)
                return true;
            if (!(g = new_group(gc, rec->group, rec->offset.commit_timestamp)))
                return false;
        }
        return apply_offset(g, rec);
    }
    if (rec->tombstone) {
        if (g)
            remove_group(gc, g);
        return true;
    }
    if (live) {
        if (g)
            g->assignment_unstored = false; /* now it is in the log */
        return true; /* the group's own state: already in memory */
    }
    /* Loading a group's metadata: the group as it was after its last
     * rebalance. Its offsets, read before or after, are kept. */
    const gr_group_metadata_value *v = &rec->value;
    if (!g && !(g = new_group(gc, rec->group, v->current_state_timestamp)))
        return false;
    for (member *m = g->members, *n; m; m = n) {
        n = m->next;
        free_member(m);
    }
    g->members = NULL;
    g->nmembers = 0;
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    g->protocol = g->leader = NULL;
    bool ok = dup_str(v->protocol_type, &g->protocol_type) && dup_str(v->protocol, &g->protocol) &&
              dup_str(v->leader, &g->leader);
    if (g->protocol_type && !*g->protocol_type) {
        free(g->protocol_type);
        g->protocol_type = NULL;
    }
    g->generation = v->generation;
    g->state_ts = v->current_state_timestamp;
    member **tail = &g->members;
    for (int32_t i = 0; ok && i < v->members_count; i++) {
        const gr_group_metadata_member_metadata *mm = &v->members[i];
        member *m = calloc(1, sizeof *m);
        if (!m) {
            ok = false;
            break;
        }
        *tail = m;
        tail = &m->next;
        g->nmembers++;
        m->session_ms = mm->session_timeout;
        m->rebalance_ms = mm->rebalance_timeout >= 0 ? mm->rebalance_timeout : mm->session_timeout;
        ok = dup_str(mm->member_id, &m->id) && m->id &&
             dup_str(mm->group_instance_id, &m->instance_id) &&
             dup_str(mm->client_id, &m->client_id) && dup_str(mm->client_host, &m->host) &&
             (m->protos = calloc(1, sizeof *m->protos)) != NULL &&
             (m->protos[0].name = strdup(g->protocol ? g->protocol : "")) != NULL;
        if (!ok)
            break;
        m->nprotos = 1;
        if (mm->subscription.len > 0) {
            if (!(m->protos[0].meta = malloc((size_t)mm->subscription.len))) {
                ok = false;
                break;
            }
            memcpy(m->protos[0].meta, mm->subscription.ptr, (size_t)mm->subscription.len);
            m->protos[0].len = mm->subscription.len;
        }
        if (mm->assignment.len > 0) {
            if (!(m->assignment = malloc((size_t)mm->assignment.len))) {
                ok = false;
                break;
            }
            memcpy(m->assignment, mm->assignment.ptr, (size_t)mm->assignment.len);
            m->assignment_len = mm->assignment.len;
        }
    }
    if (ok && g->leader && !find_member_c(g, g->leader)) {
        free(g->leader);
        g->leader = g->members ? strdup(g->members->id) : NULL;
    }
    g->state = g->nmembers > 0 ? ST_STABLE : ST_EMPTY;
    compute_subscribed(g);
    return ok;
}

bool gr_gc_replay(gr_gc *gc, const gr_offsets_record *rec)
{
    return apply_record(gc, rec, false);
}

void gr_gc_applied(gr_gc *gc, const gr_gc_out *o)
{
    for (size_t i = 0; i < o->nrecords; i++)
        if (!apply_record(gc, &o->records[i], true))
            GR_ERROR("group", "out of memory applying a record of group %.*s",
                     (int)o->records[i].group.len, o->records[i].group.ptr);
}

void gr_gc_append_failed(gr_gc *gc, int64_t now, gr_gc_out *o)
{
    for (group *g = gc->groups; g; g = g->next) {
        if (!g->assignment_unstored)
            continue;
        g->assignment_unstored = false;
        if (g->state != ST_STABLE)
            continue;
        GR_WARN("group", "group %s: its assignment of generation %d could not be stored: "
                "rebalancing", g->id, g->generation);
        /* Kafka's resetAndPropagateAssignmentError: the members' answers
         * already carry the error; the assignment no one has is void. */
        for (member *m = g->members; m; m = m->next) {
            free(m->assignment);
            m->assignment = NULL;
            m->assignment_len = 0;
        }
        prepare_rebalance(gc, g, now, o);
    }
}

void gr_gc_load_done(gr_gc *gc, int64_t now)
{
    for (group *g = gc->groups; g; g = g->next)
        for (member *m = g->members; m; m = m->next)
            due(gc, &m->hb_deadline, now + m->session_ms);
    due(gc, &gc->next_expiry, now + gc->cfg.retention_check_interval_ms);
}

void gr_gc_fetch(gr_gc *gc, const gr_offset_fetch_request_group *req, bool all_topics,
                 gr_arena *a, gr_offset_fetch_response_group *resp)
{
    gr_offset_fetch_response_group_init(resp);
    resp->group_id = req->group_id;
    if (gc->loading) {
        resp->error_code = GR_COORDINATOR_LOAD_IN_PROGRESS;
        return;
    }
    group *g = find_group(gc, req->group_id);
    bool oom = false;
    if (all_topics) {
        if (!g || g->noffsets == 0)
            return;
        /* One entry per topic, partitions in the order they were committed. */
        gr_offset_fetch_response_topics *ts =
            gr_arena_calloc(a, g->noffsets, sizeof *ts);
        int32_t *counts = gr_arena_calloc(a, g->noffsets, sizeof *counts);
        if (!ts || !counts) {
            resp->error_code = GR_UNKNOWN_SERVER_ERROR;
            return;
        }
        int32_t nt = 0;
        size_t *topic_of = gr_arena_calloc(a, g->noffsets, sizeof *topic_of);
        if (!topic_of) {
            resp->error_code = GR_UNKNOWN_SERVER_ERROR;
            return;
        }
        for (size_t i = 0; i < g->noffsets; i++) {
            int32_t k;
            for (k = 0; k < nt; k++)
                if (strcmp(g->offsets[topic_of[k]].topic, g->offsets[i].topic) == 0)
                    break;
            if (k == nt)
                topic_of[nt++] = i;
            counts[k]++;
        }
        for (int32_t k = 0; k < nt; k++) {
            ts[k].name = astr(a, g->offsets[topic_of[k]].topic, &oom);
            ts[k].partitions = gr_arena_calloc(a, (size_t)counts[k], sizeof *ts[k].partitions);
            if (!ts[k].partitions) {
                resp->error_code = GR_UNKNOWN_SERVER_ERROR;
                return;
            }
        }
        for (size_t i = 0; i < g->noffsets; i++) {
            const offset *off = &g->offsets[i];
            int32_t k;
            for (k = 0; k < nt; k++)
                if (strcmp(g->offsets[topic_of[k]].topic, off->topic) == 0)
                    break;
            gr_offset_fetch_response_partitions *p = &ts[k].partitions[ts[k].partitions_count++];
            p->partition_index = off->partition;
            p->committed_offset = off->offset;
            p->committed_leader_epoch = off->epoch;
            p->metadata = astr(a, off->metadata ? off->metadata : "", &oom);
        }
        resp->topics = ts;
        resp->topics_count = nt;
    } else {
        int32_t nt = req->topics_count > 0 ? req->topics_count : 0;
        gr_offset_fetch_response_topics *ts = gr_arena_calloc(a, nt ? (size_t)nt : 1, sizeof *ts);
        if (!ts) {
            resp->error_code = GR_UNKNOWN_SERVER_ERROR;
            return;
        }
        for (int32_t i = 0; i < nt; i++) {
            const gr_offset_fetch_request_topics *t = &req->topics[i];
            int32_t np = t->partition_indexes_count > 0 ? t->partition_indexes_count : 0;
            ts[i].name = t->name;
            ts[i].partitions = gr_arena_calloc(a, np ? (size_t)np : 1, sizeof *ts[i].partitions);
            if (!ts[i].partitions) {
                resp->error_code = GR_UNKNOWN_SERVER_ERROR;
                return;
            }
            ts[i].partitions_count = np;
            for (int32_t k = 0; k < np; k++) {
                gr_offset_fetch_response_partitions *p = &ts[i].partitions[k];
                p->partition_index = t->partition_indexes[k];
                const offset *off =
                    g && t->name.len >= 0
                        ? find_offset(g, t->name.ptr ? t->name.ptr : "", (size_t)t->name.len,
                                      t->partition_indexes[k])
                        : NULL;
                p->committed_offset = off ? off->offset : -1;
                p->committed_leader_epoch = off ? off->epoch : -1;
                p->metadata = astr(a, off && off->metadata ? off->metadata : "", &oom);
            }
        }
        resp->topics = ts;
        resp->topics_count = nt;
    }
    if (oom) {
        resp->topics_count = 0;
        resp->error_code = GR_UNKNOWN_SERVER_ERROR;
    }
}

void gr_gc_offset_delete(gr_gc *gc, const gr_offset_delete_request *req, int64_t now,
                         gr_arena *a, gr_offset_delete_response *resp, gr_gc_out *o)
{
    (void)now;
    gr_offset_delete_response_init(resp);
    group *g = NULL;
    if (gc->loading)
        resp->error_code = GR_COORDINATOR_LOAD_IN_PROGRESS;
    else if (!(g = find_group(gc, req->group_id)) || g->state == ST_DEAD)
        resp->error_code = GR_GROUP_ID_NOT_FOUND;
    else if (g->state != ST_EMPTY &&
             (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0))
        resp->error_code = GR_NON_EMPTY_GROUP;
    if (resp->error_code != GR_NONE)
        return;
    int32_t nt = req->topics_count > 0 ? req->topics_count : 0;
    resp->topics = gr_arena_calloc(a, nt ? (size_t)nt : 1, sizeof *resp->topics);
    if (!resp->topics) {
        resp->error_code = GR_UNKNOWN_SERVER_ERROR;
        return;
    }
    resp->topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const gr_offset_delete_request_topic *t = &req->topics[i];
        gr_offset_delete_response_topic *rt = &resp->topics[i];
        int32_t np = t->partitions_count > 0 ? t->partitions_count : 0;
        rt->name = t->name;
        rt->partitions = gr_arena_calloc(a, np ? (size_t)np : 1, sizeof *rt->partitions);
        if (!rt->partitions) {
            resp->error_code = GR_UNKNOWN_SERVER_ERROR;
            resp->topics_count = 0;
            return;
        }
        rt->partitions_count = np;
        bool subscribed = g->state != ST_EMPTY && subscribed_to(g, t->name);
        for (int32_t k = 0; k < np; k++) {
            rt->partitions[k].partition_index = t->partitions[k].partition_index;
            if (subscribed) {
                rt->partitions[k].error_code = GR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            const offset *off =
                t->name.len >= 0 ? find_offset(g, t->name.ptr ? t->name.ptr : "",
                                               (size_t)t->name.len, t->partitions[k].partition_index)
                                 : NULL;
            if (off)
                tombstone_offset(g, off, o);
        }
    }
}

/* ---- administration ---- */

void gr_gc_describe(gr_gc *gc, gr_str id, gr_arena *a,
                    gr_describe_groups_response_described_group *out)
{
    gr_describe_groups_response_described_group_init(out);
    out->group_id = id;
    out->protocol_type = (gr_str){"", 0};
    out->protocol_data = (gr_str){"", 0};
    out->group_state = cstr(state_names[ST_DEAD]);
    if (gc->loading) {
        out->error_code = GR_COORDINATOR_LOAD_IN_PROGRESS;
        return;
    }
    group *g = find_group(gc, id);
    if (!g)
        return; /* Kafka (v0-5): an unknown group is described as Dead */
    bool oom = false;
    bool stable = g->state == ST_STABLE;
    out->group_state = cstr(state_names[g->state]);
    out->protocol_type = astr(a, g->protocol_type ? g->protocol_type : "", &oom);
    out->protocol_data = astr(a, stable && g->protocol ? g->protocol : "", &oom);
    if (g->nmembers > 0) {
        out->members = gr_arena_calloc(a, (size_t)g->nmembers, sizeof *out->members);
        if (!out->members) {
            out->error_code = GR_UNKNOWN_SERVER_ERROR;
            return;
        }
        int32_t k = 0;
        for (member *m = g->members; m; m = m->next, k++) {
            gr_describe_groups_response_described_group_member *dm = &out->members[k];
            const proto *p = stable ? member_proto(m, g->protocol) : NULL;
            dm->member_id = astr(a, m->id, &oom);
            dm->group_instance_id = astr(a, m->instance_id, &oom);
            dm->client_id = astr(a, m->client_id, &oom);
            dm->client_host = astr(a, m->host, &oom);
            dm->member_metadata = p ? abytes(a, p->meta, p->len, &oom)
                                    : (gr_bytes){(const uint8_t *)"", 0};
            dm->member_assignment = stable ? abytes(a, m->assignment, m->assignment_len, &oom)
                                           : (gr_bytes){(const uint8_t *)"", 0};
        }
        out->members_count = k;
    }
    if (oom) {
        out->members_count = 0;
        out->error_code = GR_UNKNOWN_SERVER_ERROR;
    }
}

static bool in_filter(const gr_str *f, int32_t n, const char *v)
{
    if (n <= 0)
        return true;
    for (int32_t i = 0; i < n; i++)
        if (f[i].len >= 0 && strlen(v) == (size_t)f[i].len &&
            strncasecmp(f[i].ptr, v, (size_t)f[i].len) == 0)
            return true;
    return false;
}

bool gr_gc_list(gr_gc *gc, const gr_list_groups_request *req, gr_arena *a,
                gr_list_groups_response_listed_group **groups, int32_t *count, int32_t *cap)
{
    for (group *g = gc->groups; g; g = g->next) {
        if (g->state == ST_DEAD || !in_filter(req->states_filter, req->states_filter_count,
                                               state_names[g->state]) ||
            !in_filter(req->types_filter, req->types_filter_count, "classic"))
            continue;
        if (*count == *cap) {
            int32_t nc = *cap ? *cap * 2 : 16;
            gr_list_groups_response_listed_group *n = gr_arena_calloc(a, (size_t)nc, sizeof *n);
            if (!n)
                return false;
            if (*count)
                memcpy(n, *groups, (size_t)*count * sizeof *n);
            *groups = n;
            *cap = nc;
        }
        bool oom = false;
        gr_list_groups_response_listed_group *lg = &(*groups)[(*count)++];
        lg->group_id = astr(a, g->id, &oom);
        lg->protocol_type = astr(a, g->protocol_type ? g->protocol_type : "", &oom);
        lg->group_state = cstr(state_names[g->state]);
        lg->group_type = cstr("classic");
        if (oom)
            return false;
    }
    return true;
}

int16_t gr_gc_delete_group(gr_gc *gc, gr_str id, int64_t now, gr_gc_out *o)
{
    (void)now;
    if (gc->loading)
        return GR_COORDINATOR_LOAD_IN_PROGRESS;
    group *g = find_group(gc, id);
    if (!g || g->state == ST_DEAD)
        return GR_GROUP_ID_NOT_FOUND;
    if (g->state != ST_EMPTY)
        return GR_NON_EMPTY_GROUP;
    size_t before = o->nrecords;
    for (size_t i = 0; i < g->noffsets; i++)
        tombstone_offset(g, &g->offsets[i], o);
    tombstone_group(g, o);
    if (o->failed) {
        o->nrecords = before;
        return GR_UNKNOWN_SERVER_ERROR;
    }
    return GR_NONE;
}

/* ---- time ---- */

/* Kafka 4.0's offset expiry: the offsets of an Empty group expire once
 * the retention has passed since it became Empty (or since the commit,
 * when that time is unknown); those of a Stable "consumer" group whose
 * subscriptions are known expire, for topics no member subscribes to any
 * more, once the retention has passed since the commit; a group that never
 * had members (offsets only) expires each offset on its own. An explicit
 * expire timestamp (OffsetCommit v2-4) wins. A group left Empty with no
 * offsets goes. */
static void expire_offsets(gr_gc *gc, int64_t now, gr_gc_out *o)
{
    for (group *g = gc->groups; g; g = g->next) {
        bool empty = g->state == ST_EMPTY;
        bool unsubscribed = g->state == ST_STABLE && g->protocol_type &&
                            strcmp(g->protocol_type, "consumer") == 0 && g->subscribed_known;
        if (g->protocol_type && !empty && !unsubscribed)
            continue;
        size_t expired = 0;
        for (size_t i = 0; i < g->noffsets; i++) {
            const offset *off = &g->offsets[i];
            if (unsubscribed && subscribed_to(g, cstr(off->topic)))
                continue;
            int64_t base = g->protocol_type && empty && g->state_ts >= 0 ? g->state_ts
                                                                          : off->commit_ts;
            bool due = off->expire_ts >= 0 ? now >= off->expire_ts
                                           : now - base >= gc->cfg.offsets_retention_ms;
            if (due) {
                tombstone_offset(g, off, o);
                expired++;
            }
        }
        if (empty && expired == g->noffsets && !g->members && !g->pending) {
            GR_INFO("group", "group %s: %zu offsets expired, the group is removed", g->id, expired);
            tombstone_group(g, o);
        } else if (expired) {
            GR_INFO("group", "group %s: %zu offsets expired", g->id, expired);
        }
    }
}

static void on_join_deadline(gr_gc *gc, group *g, int64_t now, gr_gc_out *o)
{
    if (g->initial_delay && g->new_member_added && g->delay_remaining > 0) {
        /* Members are still arriving: wait a little longer, within the
         * rebalance timeout. */
        int32_t d = gc->cfg.initial_rebalance_delay_ms;
        int32_t delay = d < g->delay_remaining ? d : g->delay_remaining;
        g->new_member_added = false;
        g->delay_remaining = g->delay_remaining - d > 0 ? g->delay_remaining - d : 0;
        due(gc, &g->join_deadline, now + delay);
        return;
    }
    g->initial_delay = false;
    complete_join(gc, g, now, o);
}

/* The exact next deadline: every group and member. */
static int64_t exact_deadline(const gr_gc *gc)
{
    int64_t d = gc->next_expiry;
    for (group *g = gc->groups; g; g = g->next) {
        if (g->state == ST_PREPARING)
            d = min64(d, g->join_deadline);
        d = min64(d, g->sync_deadline);
        for (member *m = g->members; m; m = m->next)
            d = min64(d, m->hb_deadline);
        for (member *m = g->pending; m; m = m->next)
            d = min64(d, m->hb_deadline);
    }
    return d;
}

void gr_gc_tick(gr_gc *gc, int64_t now, gr_gc_out *o)
{
    if (gc->loading)
        return;
    o->split = true;
    for (group *g = gc->groups, *gn; g; g = gn) {
        gn = g->next;
        for (member *p = g->pending, *pn; p; p = pn) {
            pn = p->next;
            if (p->hb_deadline <= now) {
                remove_pending(g, p);
                maybe_complete_join(gc, g, now, o);
            }
        }
        if (g->state == ST_PREPARING && g->join_deadline <= now)
            on_join_deadline(gc, g, now, o);
        if (g->sync_deadline <= now) {
            /* Members that never sent SyncGroup for this generation are
             * gone, all of them, then the group rebalances once (Kafka's
             * expirePendingSync). */
            g->sync_deadline = GR_GC_NO_DEADLINE;
            bool removed = false;
            for (member *m = g->members, *n; m; m = n) {
                n = m->next;
                if (m->pending_sync && (g->state == ST_COMPLETING || g->state == ST_STABLE)) {
                    GR_INFO("group", "group %s: member %s did not sync in time", g->id, m->id);
                    detach_member(g, m, o);
                    removed = true;
                }
            }
            if (removed)
                prepare_rebalance(gc, g, now, o);
        }
        bool removed = true;
        while (removed) {
            removed = false;
            for (member *m = g->members; m; m = m->next) {
                if (m->hb_deadline > now)
                    continue;
                if ((m->join_waiter || m->sync_waiter) && !m->is_new) {
                    /* Waiting on us, not silent: alive. */
                    due(gc, &m->hb_deadline, now + m->session_ms);
                    continue;
                }
                GR_INFO("group", "group %s: member %s %s", g->id, m->id,
                        m->is_new ? "did not complete its join in time" : "session expired");
                remove_member(gc, g, m, now, o);
                removed = true;
                break;
            }
        }
    }
    if (gc->next_expiry <= now) {
        expire_offsets(gc, now, o);
        due(gc, &gc->next_expiry, now + gc->cfg.retention_check_interval_ms);
    }
    gc->next_due = exact_deadline(gc);
}

int64_t gr_gc_next_deadline(const gr_gc *gc)
{
    return gc->loading ? GR_GC_NO_DEADLINE : gc->next_due;
}

/* ---- life ---- */

gr_gc *gr_gc_new(const gr_gc_config *cfg)
{
    gr_gc *gc = calloc(1, sizeof *gc);
    if (!gc || !(gc->buckets = calloc(MIN_BUCKETS, sizeof *gc->buckets))) {
        free(gc);
        return NULL;
    }
    gc->nbuckets = MIN_BUCKETS;
    gc->cfg = *cfg;
    gc->next_expiry = gc->next_due = GR_GC_NO_DEADLINE;
    return gc;
}

void gr_gc_free(gr_gc *gc, int16_t err, gr_gc_out *o)
{
    if (!gc)
        return;
    for (group *g = gc->groups, *gn; g; g = gn) {
        gn = g->next;
        for (member *m = g->members; m; m = m->next) {
            if (m->join_waiter)
                join_error(o, m->join_waiter, err, m->id);
            if (m->sync_waiter)
                sync_reply(o, m->sync_waiter, err, NULL, NULL);
        }
        free_group(g);
    }
    free(gc->buckets);
    free(gc);
}

void gr_gc_set_loading(gr_gc *gc, bool loading)
{
    gc->loading = loading;
}

bool gr_gc_loading(const gr_gc *gc)
{
    return gc->loading;
}

const char *gr_gc_group_state(const gr_gc *gc, gr_str id)
{
    group *g = find_group((gr_gc *)gc, id);
    return state_names[g ? g->state : ST_DEAD];
}

size_t gr_gc_group_count(const gr_gc *gc)
{
    return gc->ngroups;
}
