/*
 * fetch_session.c - the fetch session cache (see fetch_session.h).
 *
 * Layout. Sessions hang in a chained hash table by id. A session holds its
 * partitions in one array, in answer order. Topic names (sessions by name)
 * are shared, reference-counted strings: one request's partitions of a
 * topic share the copy made for the first of them, so a long name is never
 * copied once per partition.
 *
 * Changes are built aside and swapped in: an incremental fetch copies the
 * session's partitions into a new array (every name referenced once more),
 * applies the request there, and then either commits (the old array lets go
 * of its references) or drops the new one (the new array lets go of
 * its). A failed allocation therefore leaves the session untouched, and the
 * read-only view a long poll needs is the same code without the commit.
 *
 * Lookups inside one request go through a temporary open-addressing index
 * over the new array, so applying m changes to a session of n partitions
 * costs O(n + m), never O(n * m).
 *
 * Invariants (under the mutex): no two partitions of a session have the
 * same key; every live session's id is positive and unique; count <= slots;
 * a session's version changes whenever its partitions or their order do,
 * and versions are never reused (one counter for the cache).
 */
#include "broker/fetch_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

typedef struct {
    int32_t refs;
    int32_t len;
    char s[];
} name_t;

typedef struct {
    name_t *name; /* sessions by name; NULL by id */
    gr_uuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch;
    int64_t log_start_offset;
    int64_t sent_hw, sent_lso, sent_log_start; /* -1: resend */
    bool dead;                                 /* forgotten, while a change is built */
} entry;

typedef struct session {
    int32_t id;
    int32_t epoch; /* the epoch the next incremental fetch must carry */
    bool follower;
    bool by_id;
    int64_t created_ms, used_ms;
    uint64_t version;
    entry *parts;
    size_t n;
    struct session *next; /* hash chain */
} session;

struct gr_fetch_sessions {
    pthread_mutex_t mu;
    int32_t slots;
    int64_t eviction_ms;
    uint64_t rng;
    uint64_t versions;
    session **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

/* ---- names ---- */

static name_t *name_new(gr_str s)
{
    int32_t len = s.len > 0 ? s.len : 0;
    name_t *n = malloc(sizeof *n + (size_t)len);
    if (!n)
        return NULL;
    n->refs = 1;
    n->len = len;
    if (len)
        memcpy(n->s, s.ptr, (size_t)len);
    return n;
}

static void name_unref(name_t *n)
{
    if (n && --n->refs == 0)
        free(n);
}

static bool name_is(const name_t *n, gr_str s)
{
    int32_t len = s.len > 0 ? s.len : 0;
    return n->len == len && (len == 0 || memcmp(n->s, s.ptr, (size_t)len) == 0);
}

/* ---- keys ---- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(bool by_id, gr_str topic, const gr_uuid *id, int32_t partition)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint8_t *p = by_id ? id->b : (const uint8_t *)topic.ptr;
    size_t n = by_id ? sizeof id->b : (topic.len > 0 ? (size_t)topic.len : 0);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return mix(h ^ (uint32_t)partition);
}

static gr_str entry_topic(const entry *e)
{
    return e->name ? (gr_str){e->name->s, e->name->len} : (gr_str){"", 0};
}

static bool entry_is(const entry *e, bool by_id, const gr_fsess_part *p)
{
    if (e->partition != p->partition)
        return false;
    if (by_id)
        return memcmp(e->topic_id.b, p->topic_id.b, sizeof e->topic_id.b) == 0;
    return e->name && name_is(e->name, p->topic);
}

/* A temporary index over an array of entries: slot values are index + 1. */
typedef struct {
    size_t *slots;
    size_t mask;
} index_t;

static bool index_init(index_t *ix, size_t capacity)
{
    size_t n = 16;
    while (n < capacity * 2)
        n <<= 1;
    ix->slots = calloc(n, sizeof *ix->slots);
    ix->mask = n - 1;
    return ix->slots != NULL;
}

static uint64_t entry_hash(const entry *e, bool by_id)
{
    return key_hash(by_id, entry_topic(e), &e->topic_id, e->partition);
}

static void index_put(index_t *ix, const entry *parts, size_t i, bool by_id)
{
    size_t h = (size_t)entry_hash(&parts[i], by_id) & ix->mask;
    while (ix->slots[h])
        h = (h + 1) & ix->mask;
    ix->slots[h] = i + 1;
}

/* The index of the live entry with p's key, or -1. */
static ptrdiff_t index_find(const index_t *ix, const entry *parts, bool by_id,
                            const gr_fsess_part *p)
{
    size_t h = (size_t)key_hash(by_id, p->topic, &p->topic_id, p->partition) & ix->mask;
    for (; ix->slots[h]; h = (h + 1) & ix->mask) {
        const entry *e = &parts[ix->slots[h] - 1];
        if (!e->dead && entry_is(e, by_id, p))
            return (ptrdiff_t)(ix->slots[h] - 1);
    }
    return -1;
}

/* ---- building partition arrays ---- */

static void set_params(entry *e, const gr_fsess_part *p)
{
    e->fetch_offset = p->fetch_offset;
    e->max_bytes = p->max_bytes;
    e->current_leader_epoch = p->current_leader_epoch;
    e->last_fetched_epoch = p->last_fetched_epoch;
    e->log_start_offset = p->log_start_offset;
}

static void parts_release(entry *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        name_unref(parts[i].name);
    free(parts);
}

/* Appends p to parts[*n] (room is there), or updates the entry that has its
 * key. *last is the name the previous addition used: consecutive partitions
 * of one topic share it. False on allocation failure. */
static bool parts_put(entry *parts, size_t *n, index_t *ix, bool by_id, const gr_fsess_part *p,
                      name_t **last)
{
    ptrdiff_t at = index_find(ix, parts, by_id, p);
    if (at >= 0) {
        set_params(&parts[at], p);
        return true;
    }
    entry *e = &parts[*n];
    memset(e, 0, sizeof *e);
    if (by_id) {
        e->topic_id = p->topic_id;
    } else if (*last && name_is(*last, p->topic)) {
        e->name = *last;
        e->name->refs++;
    } else {
        if (!(e->name = name_new(p->topic)))
            return false;
        *last = e->name;
    }
    e->partition = p->partition;
    set_params(e, p);
    e->sent_hw = e->sent_lso = e->sent_log_start = -1;
    index_put(ix, parts, (*n)++, by_id);
    return true;
}

/* ---- the cache ---- */

static uint64_t rng_next(gr_fetch_sessions *c)
{
    /* xorshift64*: ids only need to be hard to guess in passing and
     * spread; they are checked for uniqueness. */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static session **bucket_of(gr_fetch_sessions *c, int32_t id)
{
    return &c->buckets[mix((uint32_t)id) & (c->nbuckets - 1)];
}

static session *lookup(gr_fetch_sessions *c, int32_t id)
{
    if (id <= 0)
        return NULL;
    for (session *s = *bucket_of(c, id); s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void session_free(session *s)
{
    parts_release(s->parts, s->n);
    free(s);
}

static void unlink_session(gr_fetch_sessions *c, session *s)
{
    for (session **pp = bucket_of(c, s->id); *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            c->count--;
            return;
        }
}

gr_fetch_sessions *gr_fsess_new(int32_t slots, int64_t eviction_ms, uint64_t seed)
{
    gr_fetch_sessions *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = slots > 0 ? slots : 0;
    c->eviction_ms = eviction_ms;
    c->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    /* Chains stay short up to the default 1000 slots; a huge slot count
     * does not buy a huge table before sessions exist. */
    c->nbuckets = 16;
    while (c->nbuckets < (size_t)c->slots && c->nbuckets < 4096)
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    return c;
}

void gr_fsess_free(gr_fetch_sessions *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i]) {
            session *s = c->buckets[i];
            c->buckets[i] = s->next;
            session_free(s);
        }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int32_t gr_fsess_next_epoch(int32_t epoch)
{
    return epoch >= INT32_MAX || epoch < 1 ? 1 : epoch + 1;
}

size_t gr_fsess_count(gr_fetch_sessions *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int64_t gr_fsess_size(gr_fetch_sessions *c, int32_t id)
{
    pthread_mutex_lock(&c->mu);
    session *s = lookup(c, id);
    int64_t n = s ? (int64_t)s->n : -1;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool gr_fsess_remove(gr_fetch_sessions *c, int32_t id)
{
    pthread_mutex_lock(&c->mu);
    session *s = lookup(c, id);
    if (s)
        unlink_session(c, s);
    pthread_mutex_unlock(&c->mu);
    if (s)
        session_free(s);
    return s != NULL;
}

/* Whether a is worth less than b: a consumer less than a follower, then
 * fewer partitions less than more. */
static bool worth_less(bool a_follower, size_t a_n, bool b_follower, size_t b_n)
{
    if (a_follower != b_follower)
        return !a_follower;
    return a_n < b_n;
}

/* Frees a slot for a newcomer (follower or not, of n partitions) by KIP-227's
 * rule (see fetch_session.h); returns the session to free, unlinked, or
 * NULL when none may go. */
static session *evict_for(gr_fetch_sessions *c, int64_t now_ms, bool follower, size_t n)
{
    session *lru = NULL, *cheapest = NULL;
    for (size_t b = 0; b < c->nbuckets; b++)
        for (session *s = c->buckets[b]; s; s = s->next) {
            if (!lru || s->used_ms < lru->used_ms || (s->used_ms == lru->used_ms && s->id < lru->id))
                lru = s;
            bool old = now_ms - s->created_ms > c->eviction_ms;
            if (!old && !(follower && !s->follower))
                continue;
            if (!cheapest || worth_less(s->follower, s->n, cheapest->follower, cheapest->n) ||
                (!worth_less(cheapest->follower, cheapest->n, s->follower, s->n) &&
                 s->id < cheapest->id))
                cheapest = s;
        }
    session *victim = NULL;
    if (lru && now_ms - lru->used_ms > c->eviction_ms)
        victim = lru;
    else if (cheapest && worth_less(cheapest->follower, cheapest->n, follower, n))
        victim = cheapest;
    if (victim)
        unlink_session(c, victim);
    return victim;
}

int32_t gr_fsess_create(gr_fetch_sessions *c, int64_t now_ms, bool follower, bool by_id,
                        const gr_fsess_part *parts, const gr_fsess_answer *answers, size_t n)
{
    if (c->slots == 0 || n == 0)
        return 0;
    /* Built outside the lock: only the insertion needs it. */
    session *s = calloc(1, sizeof *s);
    entry *arr = calloc(n, sizeof *arr);
    index_t ix = {0};
    if (!s || !arr || !index_init(&ix, n)) {
        free(s);
        free(arr);
        return 0;
    }
    size_t k = 0;
    name_t *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!parts_put(arr, &k, &ix, by_id, &parts[i], &last)) {
            free(ix.slots);
            parts_release(arr, k);
            free(s);
            return 0;
        }
        /* A partition named twice keeps its first place and last values. */
        entry *e = &arr[index_find(&ix, arr, by_id, &parts[i])];
        const gr_fsess_answer *a = &answers[i];
        e->sent_hw = a->error ? -1 : a->hw;
        e->sent_lso = a->error ? -1 : a->lso;
        e->sent_log_start = a->error ? -1 : a->log_start;
    }
    free(ix.slots);
    s->parts = arr;
    s->n = k;
    s->follower = follower;
    s->by_id = by_id;
    s->created_ms = s->used_ms = now_ms;
    s->epoch = 1;

    session *victim = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->count >= (size_t)c->slots && !(victim = evict_for(c, now_ms, follower, k))) {
        pthread_mutex_unlock(&c->mu);
        session_free(s);
        return 0;
    }
    int32_t id;
    do
        id = (int32_t)(rng_next(c) >> 33); /* 31 bits: 0 .. INT32_MAX */
    while (id == 0 || lookup(c, id));
    s->id = id;
    s->version = ++c->versions;
    session **b = bucket_of(c, id);
    s->next = *b;
    *b = s;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    if (victim)
        session_free(victim);
    return id;
}

/* Copies the live entries of parts[0..n) into out (arena), names too. */
static bool view_fill(const entry *parts, size_t n, size_t live, gr_arena *arena,
                      gr_fsess_view *out)
{
    out->parts = gr_arena_calloc(arena, live ? live : 1, sizeof *out->parts);
    if (!out->parts)
        return false;
    /* Names repeat along the array: one arena copy per run of a name. */
    const name_t *copied_from = NULL;
    gr_str copy = {"", 0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const entry *e = &parts[i];
        if (e->dead)
            continue;
        gr_fsess_part *p = &out->parts[k++];
        if (e->name && e->name != copied_from) {
            char *s = gr_arena_strdup(arena, e->name->s, (size_t)e->name->len);
            if (!s)
                return false;
            copy = (gr_str){s, e->name->len};
            copied_from = e->name;
        }
        p->topic = e->name ? copy : (gr_str){"", 0};
        p->topic_id = e->topic_id;
        p->partition = e->partition;
        p->fetch_offset = e->fetch_offset;
        p->max_bytes = e->max_bytes;
        p->current_leader_epoch = e->current_leader_epoch;
        p->last_fetched_epoch = e->last_fetched_epoch;
        p->log_start_offset = e->log_start_offset;
        p->prev_hw = e->sent_hw;
        p->prev_lso = e->sent_lso;
        p->prev_log_start = e->sent_log_start;
    }
    out->count = k;
    return true;
}

int16_t gr_fsess_incremental(gr_fetch_sessions *c, int32_t id, int32_t epoch, bool follower,
                             bool by_id, const gr_fsess_part *upd, size_t nupd,
                             const gr_fsess_part *forget, size_t nforget, int64_t now_ms,
                             bool apply, gr_arena *arena, gr_fsess_view *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    session *s = lookup(c, id);
    int16_t err = GR_NONE;
    if (!s || s->follower != follower)
        err = GR_FETCH_SESSION_ID_NOT_FOUND;
    else if (s->epoch != epoch)
        err = GR_INVALID_FETCH_SESSION_EPOCH;
    else if (s->by_id != by_id)
        err = GR_FETCH_SESSION_TOPIC_ID_ERROR;
    if (err != GR_NONE) {
        pthread_mutex_unlock(&c->mu);
        return err;
    }
    size_t cap = s->n + nupd;
    entry *arr = calloc(cap ? cap : 1, sizeof *arr);
    index_t ix = {0};
    if (!arr || !index_init(&ix, cap)) {
        free(arr);
        pthread_mutex_unlock(&c->mu);
        return GR_UNKNOWN_SERVER_ERROR;
    }
    size_t n = s->n;
    memcpy(arr, s->parts, n * sizeof *arr);
    for (size_t i = 0; i < n; i++) {
        if (arr[i].name)
            arr[i].name->refs++;
        index_put(&ix, arr, i, by_id);
    }
    bool ok = true;
    name_t *last = NULL;
    for (size_t i = 0; ok && i < nupd; i++)
        ok = parts_put(arr, &n, &ix, by_id, &upd[i], &last);
    size_t live = n;
    for (size_t i = 0; ok && i < nforget; i++) {
        ptrdiff_t at = index_find(&ix, arr, by_id, &forget[i]);
        if (at >= 0) {
            arr[at].dead = true;
            live--;
        }
    }
    free(ix.slots);
    if (!ok || !view_fill(arr, n, live, arena, out)) {
        parts_release(arr, n);
        pthread_mutex_unlock(&c->mu);
        memset(out, 0, sizeof *out);
        return GR_UNKNOWN_SERVER_ERROR;
    }
    if (!apply) {
        /* Under the lock: the names are shared with the session's array. */
        parts_release(arr, n);
        pthread_mutex_unlock(&c->mu);
        return GR_NONE;
    }
    /* Commit: the forgotten go, the rest keeps its order. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (arr[i].dead)
            name_unref(arr[i].name);
        else
            arr[k++] = arr[i];
    }
    entry *old = s->parts;
    size_t nold = s->n;
    if (k == 0) {
        /* Nothing left to fetch: as Kafka, the session ends. */
        unlink_session(c, s);
        pthread_mutex_unlock(&c->mu);
        parts_release(arr, 0);
        session_free(s);
        out->closed = true;
        return GR_NONE;
    }
    s->parts = arr;
    s->n = k;
    s->epoch = gr_fsess_next_epoch(s->epoch);
    s->used_ms = now_ms;
    s->version = ++c->versions;
    out->version = s->version;
    parts_release(old, nold); /* shares names with the new array: under the lock */
    pthread_mutex_unlock(&c->mu);
    return GR_NONE;
}

void gr_fsess_answered(gr_fetch_sessions *c, int32_t id, const gr_fsess_view *view,
                       const gr_fsess_answer *answers, bool *respond)
{
    for (size_t i = 0; i < view->count; i++) {
        const gr_fsess_part *p = &view->parts[i];
        const gr_fsess_answer *a = &answers[i];
        respond[i] = a->has_records || a->error != GR_NONE || a->hw != p->prev_hw ||
                     a->lso != p->prev_lso || a->log_start != p->prev_log_start;
    }
    pthread_mutex_lock(&c->mu);
    session *s = lookup(c, id);
    /* Another fetch of the session got in between (a client that does not
     * wait for its answers): that one's answer decides what is remembered. */
    if (!s || s->version != view->version || s->n != view->count) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!respond[i])
            continue;
        entry *e = &s->parts[i];
        bool err = answers[i].error != GR_NONE;
        e->sent_hw = err ? -1 : answers[i].hw;
        e->sent_lso = err ? -1 : answers[i].lso;
        e->sent_log_start = err ? -1 : answers[i].log_start;
    }
    /* Stable: the unanswered keep their order ahead of the answered. The
     * order is only fairness, so without memory for it it stays as it is. */
    entry *arr = malloc(s->n * sizeof *arr);
    if (arr) {
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++)
            if (!respond[i])
                arr[k++] = s->parts[i];
        for (size_t i = 0; i < s->n; i++)
            if (respond[i])
                arr[k++] = s->parts[i];
        free(s->parts);
        s->parts = arr;
        s->version = ++c->versions;
    }
    pthread_mutex_unlock(&c->mu);
}
