/*
 * coordinator.c - the group coordinator's shell (see coordinator.h).
 *
 * Invariants:
 *   - slot->gc != NULL exactly while this broker leads the slot's partition
 *     (as of the last sync), and slot->p then holds a reference to it.
 *   - slot->token changes at every gain and loss; a background load
 *     installs its result only if the token is still the one it started
 *     with, so a load overtaken by a leadership change is thrown away.
 *   - Replies are delivered only after the slot's lock is released, and
 *     only after the records of the same call were appended.
 */
#include "broker/coordinator.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/offsets_log.h"
#include "broker/offsets_topic.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

#define SUB "coordinator"

struct gr_coord_slot {
    pthread_mutex_t mu;
    gr_coordinator *c;
    int32_t index;
    gr_gc *gc;       /* NULL: not the coordinator of this partition */
    gr_partition *p; /* a reference while gc is set */
    int32_t epoch;   /* the leader epoch gc was loaded at */
    uint64_t token;
    struct event *timer; /* the groups' timers; while a load failed, its retry */
    bool load_failed;    /* the timer retries the load */
    int32_t load_backoff_ms;
};

/* A failed load is retried after a backoff doubling from the least to the
 * most: a transient read error must not leave the partition's groups
 * answering COORDINATOR_LOAD_IN_PROGRESS until its leadership changes,
 * and a lasting one must not spin. */
#define LOAD_BACKOFF_MIN_MS 100
#define LOAD_BACKOFF_MAX_MS 10000

struct gr_coordinator {
    gr_broker *b;
    struct event_base *base;
    gr_gc_config cfg;
    _Atomic(gr_coord_slot *) slots; /* published once, with nslots */
    atomic_int nslots;
    atomic_int loads;   /* background loads running */
    atomic_int waiting; /* JoinGroup/SyncGroup answers not yet completed */
    bool stopped;
};

/* How long shutdown waits for the answers it handed to the network
 * threads to complete there. */
#define STOP_WAIT_MS 5000

/* What a JoinGroup or SyncGroup waits with: where to answer. */
typedef struct {
    gr_gc_reply reply;
    gr_request *req;
    struct event_base *base;
    gr_coordinator *c; /* counts it in waiting; NULL without a coordinator */
} waiter;

int64_t gr_coordinator_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_bytes(void *ctx, uint8_t *buf, size_t n)
{
    (void)ctx;
    if (getrandom(buf, n, 0) == (ssize_t)n)
        return;
    /* No entropy source: member ids need only be unique, not secret. */
    static _Thread_local unsigned int seed;
    if (!seed)
        seed = (unsigned int)gr_coordinator_now_ms() ^ (unsigned int)(uintptr_t)&seed;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rand_r(&seed);
}

/* ---- answers ---- */

static void complete_reply(gr_gc_reply *r)
{
    waiter *w = r->waiter;
    gr_request *req = w->req;
    int rc = r->is_sync ? gr_sync_group_response_encode(&r->sync, r->version, &req->out)
                        : gr_join_group_response_encode(&r->join, r->version, &req->out);
    gr_coordinator *c = w->c;
    gr_gc_reply_release(r);
    gr_request_complete(req, rc == GR_OK ? GR_HANDLED : GR_CLOSE); /* frees w */
    if (c)
        atomic_fetch_sub(&c->waiting, 1);
}

static void complete_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    complete_reply(arg);
}

static void deliver(gr_gc_reply *list, gr_request *self)
{
    static const struct timeval now = {0, 0};
    for (gr_gc_reply *r = list, *next; r; r = next) {
        next = r->next;
        waiter *w = r->waiter;
        if (w->req == self) {
            complete_reply(r);
        } else if (!w->base || event_base_once(w->base, -1, EV_TIMEOUT, complete_cb, r, &now) != 0) {
            /* Cannot reach its thread: the client times out and retries. */
            GR_ERROR(SUB, "cannot hand a group answer to %s's thread", w->req->peer);
            if (w->c)
                atomic_fetch_sub(&w->c->waiting, 1); /* nothing to wait for at shutdown */
        }
    }
}

gr_gc_reply *gr_coordinator_waiter(gr_request *req, bool is_sync)
{
    waiter *w = gr_arena_calloc(&req->arena, 1, sizeof *w);
    if (!w)
        return NULL;
    w->req = req;
    w->base = gr_request_base(req);
    w->c = ((gr_broker *)req->ctx)->coordinator;
    if (w->c)
        atomic_fetch_add(&w->c->waiting, 1);
    gr_gc_reply_init(&w->reply, is_sync, req->api_version, w);
    return &w->reply;
}

void gr_coordinator_fail(gr_gc_reply *r, int16_t err, gr_str member_id)
{
    gr_join_group_response_init(&r->join);
    gr_sync_group_response_init(&r->sync);
    r->join.error_code = r->sync.error_code = err;
    r->join.generation_id = -1;
    r->join.member_id = member_id.len >= 0 ? member_id : (gr_str){"", 0};
    r->join.leader = (gr_str){"", 0};
    r->join.protocol_name = r->version >= 7 ? GR_STR_NULL : (gr_str){"", 0};
    r->sync.assignment = (gr_bytes){(const uint8_t *)"", 0};
    complete_reply(r);
}

const char *gr_coordinator_client_host(gr_request *req)
{
    const char *peer = req->peer ? req->peer : "";
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    char *h = gr_arena_alloc(&req->arena, n + 2);
    if (!h)
        return "";
    h[0] = '/';
    memcpy(h + 1, peer, n);
    h[n + 1] = '\0';
    return h;
}

const char *gr_coordinator_client_id(gr_request *req)
{
    gr_str id = req->header.client_id;
    char *c = gr_arena_strdup(&req->arena, id.len > 0 ? id.ptr : "", id.len > 0 ? (size_t)id.len : 0);
    return c ? c : "";
}

int gr_coordinator_malformed(gr_request *req, const char *api, int rc)
{
    GR_WARN("api", "malformed %s v%d body from %s: %s", api, req->api_version, req->peer,
            gr_err_str(rc));
    return GR_CLOSE;
}

/* ---- slots ---- */

static void arm(gr_coord_slot *s)
{
    if (!s->gc || !s->timer || s->load_failed) /* the timer waits to retry the load */
        return;
    int64_t d = gr_gc_next_deadline(s->gc);
    if (d == GR_GC_NO_DEADLINE) {
        evtimer_del(s->timer);
        return;
    }
    int64_t delay = d - gr_coordinator_now_ms();
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    if (evtimer_add(s->timer, &tv) != 0)
        GR_ERROR(SUB, "__consumer_offsets-%d: cannot arm the group timer", s->index);
}

/* Kafka's mapping of the append errors of a group's metadata record, as
 * its group coordinator answers the members of that group. */
static int16_t map_group_append_error(int16_t err)
{
    switch (err) {
    case GR_UNKNOWN_TOPIC_OR_PARTITION:
    case GR_NOT_ENOUGH_REPLICAS:
    case GR_REQUEST_TIMED_OUT:
        return GR_COORDINATOR_NOT_AVAILABLE;
    case GR_NOT_LEADER_OR_FOLLOWER:
    case GR_KAFKA_STORAGE_ERROR:
        return GR_NOT_COORDINATOR;
    case GR_MESSAGE_TOO_LARGE:
    case GR_RECORD_LIST_TOO_LARGE:
    case GR_INVALID_FETCH_SIZE:
        return GR_UNKNOWN_SERVER_ERROR;
    default:
        return err;
    }
}

int16_t gr_coordinator_append_error(int16_t err, bool group_metadata)
{
    if (group_metadata)
        return map_group_append_error(err);
    /* Offsets (OffsetCommit, OffsetDelete, DeleteGroups): records too large
     * for the log are the committer's to fix, not the server's. */
    switch (err) {
    case GR_MESSAGE_TOO_LARGE:
    case GR_RECORD_LIST_TOO_LARGE:
    case GR_INVALID_FETCH_SIZE:
        return GR_INVALID_COMMIT_OFFSET_SIZE;
    default:
        return map_group_append_error(err);
    }
}

/* Appends out's records (slot locked) and applies them; on failure the
 * replies carry the error mapped for a group's members. Returns the
 * append's own error. */
static int16_t append_out(gr_coord_slot *s, gr_gc_out *out)
{
    if (out->nrecords == 0 && !out->failed)
        return GR_NONE;
    int16_t err;
    if (out->failed) {
        err = GR_UNKNOWN_SERVER_ERROR;
    } else if (out->split) {
        size_t done = 0;
        err = gr_offsets_append_split(s->p, out->records, out->nrecords, gr_coordinator_now_ms(),
                                      &done);
        if (err != GR_NONE && done > 0) {
            /* What is in the log is applied; the rest fails as a whole. */
            gr_gc_out head = *out;
            head.nrecords = done;
            gr_gc_applied(s->gc, &head);
        }
    } else {
        err = gr_offsets_append(s->p, out->records, out->nrecords, gr_coordinator_now_ms(), NULL);
    }
    if (err == GR_NONE) {
        gr_gc_applied(s->gc, out);
        return GR_NONE;
    }
    GR_WARN(SUB, "__consumer_offsets-%d: cannot append %zu records: %s", s->index, out->nrecords,
            gr_kafka_error_name(err));
    int16_t gerr = map_group_append_error(err);
    for (gr_gc_reply *r = out->replies; r; r = r->next) {
        if (r->is_sync) {
            r->sync.error_code = gerr;
            r->sync.assignment = (gr_bytes){(const uint8_t *)"", 0};
        } else {
            r->join.error_code = gerr;
            r->join.members_count = 0;
        }
    }
    return err;
}

/* Persists out (slot locked). When that fails, a group whose assignment
 * was lost rebalances; what that produces is appended once more (a second
 * failure only answers its replies with the error) and its replies join
 * out's. Returns the first append's error. */
static int16_t persist(gr_coord_slot *s, gr_gc_out *out)
{
    int16_t err = append_out(s, out);
    if (err == GR_NONE)
        return GR_NONE;
    gr_gc_out next;
    gr_gc_out_init(&next);
    gr_gc_append_failed(s->gc, gr_coordinator_now_ms(), &next);
    append_out(s, &next);
    if (next.replies) {
        *out->replies_tail = next.replies;
        out->replies_tail = next.replies_tail;
    }
    gr_gc_out_free(&next);
    return err;
}

gr_coord_slot *gr_coordinator_lock(gr_request *req, gr_str group, gr_gc **gc, int16_t *err)
{
    gr_coordinator *c = ((gr_broker *)req->ctx)->coordinator;
    int n = c ? atomic_load(&c->nslots) : 0;
    gr_coord_slot *slots = c ? atomic_load(&c->slots) : NULL;
    if (!slots || n <= 0) {
        *err = GR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    int32_t i = gr_coordinator_partition(group.ptr ? group.ptr : "", group.len > 0 ? (size_t)group.len : 0, n);
    gr_coord_slot *s = &slots[i];
    pthread_mutex_lock(&s->mu);
    if (!s->gc) {
        pthread_mutex_unlock(&s->mu);
        *err = GR_NOT_COORDINATOR;
        return NULL;
    }
    *gc = s->gc;
    return s;
}

int16_t gr_coordinator_unlock(gr_coord_slot *s, gr_gc_out *out, gr_request *self)
{
    int16_t err = persist(s, out);
    arm(s);
    pthread_mutex_unlock(&s->mu);
    deliver(out->replies, self);
    gr_gc_out_free(out);
    return err == GR_NONE ? GR_NONE : gr_coordinator_append_error(err, false);
}

void gr_coordinator_each(gr_coordinator *c, void (*fn)(void *ctx, gr_gc *gc), void *ctx,
                         bool *loading)
{
    int n = c ? atomic_load(&c->nslots) : 0;
    gr_coord_slot *slots = c ? atomic_load(&c->slots) : NULL;
    *loading = false;
    for (int i = 0; slots && i < n; i++) {
        gr_coord_slot *s = &slots[i];
        pthread_mutex_lock(&s->mu);
        if (s->gc && gr_gc_loading(s->gc))
            *loading = true;
        else if (s->gc)
            fn(ctx, s->gc);
        pthread_mutex_unlock(&s->mu);
    }
}

static void start_load(gr_coord_slot *s);
static void retry_load_later(gr_coord_slot *s, const char *why);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_coord_slot *s = arg;
    gr_gc_out out;
    gr_gc_out_init(&out);
    pthread_mutex_lock(&s->mu);
    if (!s->gc) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (s->load_failed) {
        s->load_failed = false;
        start_load(s);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    gr_gc_tick(s->gc, gr_coordinator_now_ms(), &out);
    gr_coordinator_unlock(s, &out, NULL);
}

/* ---- leadership ---- */

typedef struct {
    gr_coord_slot *s;
    uint64_t token;
    gr_partition *p; /* a reference of its own */
} load_job;

static void load_visit(void *ctx, const gr_offsets_record *rec, int64_t offset)
{
    gr_gc *gc = ctx;
    if (!gr_gc_replay(gc, rec))
        GR_ERROR(SUB, "out of memory loading the record at offset %lld", (long long)offset);
}

static void *load_main(void *arg)
{
    load_job *j = arg;
    gr_coord_slot *s = j->s;
    gr_coordinator *c = s->c;
    int64_t t0 = gr_coordinator_now_ms();
    gr_gc *gc = gr_gc_new(&c->cfg);
    int rc = -1;
    if (gc) {
        gr_gc_set_loading(gc, true);
        rc = gr_offsets_load(j->p->log, gr_log_end_offset(j->p->log), load_visit, gc);
        gr_gc_set_loading(gc, false);
    }
    gr_gc_out out;
    gr_gc_out_init(&out);
    pthread_mutex_lock(&s->mu);
    bool current = s->token == j->token && s->gc;
    if (current && gc && rc == 0) {
        gr_gc_free(s->gc, GR_NOT_COORDINATOR, &out); /* the placeholder: nobody waits on it */
        s->gc = gc;
        gr_gc_load_done(gc, gr_coordinator_now_ms());
        GR_INFO(SUB, "__consumer_offsets-%d: loaded %zu groups in %lld ms", s->index,
                gr_gc_group_count(gc), (long long)(gr_coordinator_now_ms() - t0));
        arm(s);
        gc = NULL;
    } else if (current) {
        retry_load_later(s, gc ? gr_log_err_str(rc) : "out of memory");
    }
    pthread_mutex_unlock(&s->mu);
    deliver(out.replies, NULL);
    gr_gc_out_free(&out);
    if (gc) {
        gr_gc_out_init(&out);
        gr_gc_free(gc, GR_NOT_COORDINATOR, &out);
        gr_gc_out_free(&out);
    }
    gr_partition_unref(j->p);
    free(j);
    atomic_fetch_sub(&c->loads, 1);
    return NULL;
}

/* Main loop, slot locked: stop coordinating the slot's groups. The
 * replies to send go into out. */
static void drop_locked(gr_coord_slot *s, gr_gc_out *out)
{
    if (!s->gc)
        return;
    GR_INFO(SUB, "__consumer_offsets-%d: no longer the coordinator of its groups", s->index);
    gr_gc_free(s->gc, GR_NOT_COORDINATOR, out);
    s->gc = NULL;
    s->token++;
    s->load_failed = false;
    if (s->timer)
        evtimer_del(s->timer);
    gr_partition_unref(s->p);
    s->p = NULL;
}

/* Slot locked: the load of the slot's partition failed; the timer starts
 * another after the backoff. */
static void retry_load_later(gr_coord_slot *s, const char *why)
{
    int32_t delay = s->load_backoff_ms;
    GR_ERROR(SUB, "__consumer_offsets-%d: cannot load its groups (%s): retrying in %d ms",
             s->index, why, delay);
    s->load_backoff_ms = delay < LOAD_BACKOFF_MAX_MS / 2 ? delay * 2 : LOAD_BACKOFF_MAX_MS;
    s->load_failed = true;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    if (!s->timer || evtimer_add(s->timer, &tv) != 0)
        GR_ERROR(SUB, "__consumer_offsets-%d: cannot arm the load retry: its groups stay "
                 "unavailable until its leadership changes", s->index);
}

/* Slot locked, s->gc the loading placeholder: loads the partition's groups
 * in the background under a new token (a result for an older one is
 * thrown away). */
static void start_load(gr_coord_slot *s)
{
    gr_coordinator *c = s->c;
    load_job *j = malloc(sizeof *j);
    if (!j) {
        retry_load_later(s, "out of memory");
        return;
    }
    s->token++;
    atomic_fetch_add(&s->p->refs, 1);
    *j = (load_job){s, s->token, s->p};
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&c->loads, 1);
    if (pthread_create(&t, &attr, load_main, j) != 0) {
        atomic_fetch_sub(&c->loads, 1);
        gr_partition_unref(s->p);
        free(j);
        retry_load_later(s, "no thread");
    }
    pthread_attr_destroy(&attr);
}

/* Main loop, slot locked: become the coordinator, loading in the background. */
static void gain_locked(gr_coord_slot *s, gr_partition *p, int32_t epoch)
{
    gr_gc *placeholder = gr_gc_new(&s->c->cfg);
    if (!placeholder) {
        GR_ERROR(SUB, "__consumer_offsets-%d: out of memory becoming its coordinator", s->index);
        gr_partition_unref(p);
        return;
    }
    gr_gc_set_loading(placeholder, true);
    s->gc = placeholder;
    s->p = p;
    s->epoch = epoch;
    s->load_failed = false;
    s->load_backoff_ms = LOAD_BACKOFF_MIN_MS;
    GR_INFO(SUB, "__consumer_offsets-%d: coordinator at leader epoch %d, loading", s->index, epoch);
    start_load(s);
}

static bool create_slots(gr_coordinator *c, int32_t n)
{
    gr_coord_slot *slots = calloc((size_t)n, sizeof *slots);
    if (!slots)
        return false;
    for (int32_t i = 0; i < n; i++) {
        pthread_mutex_init(&slots[i].mu, NULL);
        slots[i].c = c;
        slots[i].index = i;
        slots[i].timer = evtimer_new(c->base, timer_cb, &slots[i]);
        if (!slots[i].timer)
            GR_ERROR(SUB, "__consumer_offsets-%d: no timer: its groups never time out", i);
    }
    atomic_store(&c->nslots, n);
    atomic_store(&c->slots, slots);
    return true;
}

static void on_sync(void *ctx, const gr_metadata_image *img)
{
    gr_coordinator *c = ctx;
    if (c->stopped)
        return;
    const gr_metadata_topic *t =
        img ? gr_metadata_topic_by_name(img, (gr_str){GR_OFFSETS_TOPIC, sizeof GR_OFFSETS_TOPIC - 1})
            : NULL;
    if (t && !atomic_load(&c->slots)) {
        int32_t n = 0;
        for (int32_t k = 0; k < t->partition_count; k++)
            if (t->partitions[k].id >= n)
                n = t->partitions[k].id + 1;
        if (n > 0 && !create_slots(c, n))
            GR_ERROR(SUB, "out of memory coordinating groups");
    }
    int n = atomic_load(&c->nslots);
    gr_coord_slot *slots = atomic_load(&c->slots);
    if (t && n > 0 && t->partition_count != n)
        GR_WARN(SUB, "__consumer_offsets has %d partitions, coordinating the first %d",
                t->partition_count, n);
    for (int i = 0; slots && i < n; i++) {
        gr_coord_slot *s = &slots[i];
        const gr_metadata_partition *mp = t ? gr_metadata_partition_get(t, i) : NULL;
        bool lead = mp && mp->leader == c->b->node_id;
        gr_gc_out out;
        gr_gc_out_init(&out);
        pthread_mutex_lock(&s->mu);
        if (s->gc && (!lead || mp->leader_epoch != s->epoch))
            drop_locked(s, &out);
        if (lead && !s->gc) {
            int16_t err;
            gr_partition *p = gr_replica_get(c->b->replicas,
                                             (gr_str){GR_OFFSETS_TOPIC, sizeof GR_OFFSETS_TOPIC - 1},
                                             i, &err);
            if (p)
                gain_locked(s, p, mp->leader_epoch);
            else
                GR_WARN(SUB, "__consumer_offsets-%d: led here but not open: %s", i,
                        gr_kafka_error_name(err));
        }
        pthread_mutex_unlock(&s->mu);
        deliver(out.replies, NULL);
        gr_gc_out_free(&out);
    }
}

/* ---- life ---- */

gr_coordinator *gr_coordinator_new(gr_broker *b, struct event_base *base)
{
    gr_coordinator *c = calloc(1, sizeof *c);
    if (!c) {
        GR_ERROR(SUB, "out of memory");
        return NULL;
    }
    c->b = b;
    c->base = base;
    gr_gc_config_defaults(&c->cfg);
    gr_config *cf = b->config;
    c->cfg.min_session_timeout_ms = gr_config_int(cf, "group.min.session.timeout.ms");
    c->cfg.max_session_timeout_ms = gr_config_int(cf, "group.max.session.timeout.ms");
    c->cfg.initial_rebalance_delay_ms = gr_config_int(cf, "group.initial.rebalance.delay.ms");
    c->cfg.max_size = gr_config_int(cf, "group.max.size");
    c->cfg.offset_metadata_max_bytes = gr_config_int(cf, "offset.metadata.max.bytes");
    c->cfg.offsets_retention_ms = (int64_t)gr_config_int(cf, "offsets.retention.minutes") * 60000;
    /* Deadlines are now + interval: a century is as good as never and
     * cannot overflow. */
    int64_t check = gr_config_long(cf, "offsets.retention.check.interval.ms");
    const int64_t century_ms = 100LL * 365 * 24 * 3600 * 1000;
    c->cfg.retention_check_interval_ms = check > century_ms ? century_ms : check;
    /* A group's metadata must fit one batch of __consumer_offsets. */
    c->cfg.max_member_metadata_bytes = gr_config_int(cf, "message.max.bytes") / 2;
    c->cfg.random = random_bytes;
    gr_replica_set_sync_hook(b->replicas, on_sync, c);
    return c;
}

void gr_coordinator_stop(gr_coordinator *c)
{
    if (!c)
        return;
    c->stopped = true;
    gr_replica_set_sync_hook(c->b->replicas, NULL, NULL);
    int n = atomic_load(&c->nslots);
    gr_coord_slot *slots = atomic_load(&c->slots);
    for (int i = 0; slots && i < n; i++) {
        gr_gc_out out;
        gr_gc_out_init(&out);
        pthread_mutex_lock(&slots[i].mu);
        drop_locked(&slots[i], &out);
        pthread_mutex_unlock(&slots[i].mu);
        deliver(out.replies, NULL);
        gr_gc_out_free(&out);
    }
    /* The answers just handed out complete on their connections' threads,
     * which must still be running when they do: a request left pending
     * when they stop would never be answered nor freed. */
    for (int w = 0; w < STOP_WAIT_MS && atomic_load(&c->waiting) > 0; w++)
        usleep(1000);
    if (atomic_load(&c->waiting) > 0)
        GR_WARN(SUB, "%d group answers still pending at shutdown", atomic_load(&c->waiting));
}

void gr_coordinator_free(gr_coordinator *c)
{
    if (!c)
        return;
    if (!c->stopped)
        gr_coordinator_stop(c);
    /* Loads in flight finish (and throw their result away) first. */
    while (atomic_load(&c->loads) > 0)
        usleep(1000);
    int n = atomic_load(&c->nslots);
    gr_coord_slot *slots = atomic_load(&c->slots);
    for (int i = 0; slots && i < n; i++) {
        if (slots[i].timer)
            event_free(slots[i].timer);
        pthread_mutex_destroy(&slots[i].mu);
    }
    free(slots);
    free(c);
}
