/*
 * purgatory.c - delayed operations waiting for a key event or a deadline.
 *
 * Three structures, all owned here:
 *
 *   keys   open-addressing hash table (linear probing, backward-shift
 *          deletion, so no tombstones) from a 64-bit key to a separately
 *          allocated pkey entry. Entries do not move when the table is
 *          resized, so links may point at them. An entry lives exactly as
 *          long as its list is non-empty.
 *   lists  each pkey heads a doubly linked list of gr_pwatch links, in watch
 *          order. An op owns one array of links (one per distinct key), so
 *          removing an op from all its keys is O(keys) with no search.
 *   heap   binary min-heap of watched ops ordered by (deadline, seq); each op
 *          knows its index, so any op can be removed in O(log n).
 *
 * Invariants: an op is in the heap iff its state is WATCHING or TRYING; its
 * links are in their lists iff the same holds. Only finish() moves an op to
 * DONE, and it unlinks everything before calling on_complete, so the owner
 * may free the op there and nothing here touches it again.
 *
 * Re-entrant checks. gr_purgatory_check walks a list while the callbacks it
 * calls may add and remove links anywhere, including in that list. It walks
 * with two marker links of its own (op == NULL) on its stack: a cursor that
 * it moves past each link before asking that link's op, and an end marker
 * appended at the start, so ops added meanwhile (appended after it) are not
 * visited. Removals never remove another check's markers, so the cursor
 * stays valid, and a list holding markers is never empty, so its pkey is not
 * freed under the walk.
 */
#include "common/purgatory.h"

#include <assert.h>
#include <stdlib.h>

enum {
    OP_IDLE = 0,     /* initialised, cancelled, or forgotten by free */
    OP_WATCHING = 1, /* stored, waiting */
    OP_TRYING = 2,   /* its try_complete is running */
    OP_DONE = 3,     /* on_complete has been called */
};

typedef struct pkey pkey;

struct gr_pwatch {
    gr_delayed_op *op; /* NULL for a check's markers */
    gr_pwatch *prev;
    gr_pwatch *next;
    pkey *key;
};

struct pkey {
    uint64_t key;
    gr_pwatch *head;
    gr_pwatch *tail;
};

struct gr_purgatory {
    pkey **slots;      /* cap slots, NULL when empty; cap is 0 or a power of two */
    size_t cap;
    size_t nkeys;

    gr_delayed_op **heap;
    size_t heap_len;
    size_t heap_cap;

    size_t nwatches;
    uint64_t seq;
    unsigned depth;    /* callbacks running (for the re-entrancy asserts) */

    uint64_t completed;
    uint64_t expired;
    uint64_t cancelled;
};

#define MIN_SLOTS 16
#define MIN_HEAP 16

/* ---- lists ---- */

static void list_append(pkey *k, gr_pwatch *w)
{
    w->key = k;
    w->next = NULL;
    w->prev = k->tail;
    if (k->tail)
        k->tail->next = w;
    else
        k->head = w;
    k->tail = w;
}

static void list_push_front(pkey *k, gr_pwatch *w)
{
    w->key = k;
    w->prev = NULL;
    w->next = k->head;
    if (k->head)
        k->head->prev = w;
    else
        k->tail = w;
    k->head = w;
}

static void list_insert_after(pkey *k, gr_pwatch *at, gr_pwatch *w)
{
    w->key = k;
    w->prev = at;
    w->next = at->next;
    if (at->next)
        at->next->prev = w;
    else
        k->tail = w;
    at->next = w;
}

static void list_unlink(pkey *k, gr_pwatch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        k->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        k->tail = w->prev;
    w->prev = w->next = NULL;
}

/* ---- key table ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static pkey *key_find(const gr_purgatory *p, uint64_t key)
{
    if (p->cap == 0)
        return NULL;
    size_t mask = p->cap - 1;
    for (size_t i = mix(key) & mask; p->slots[i]; i = (i + 1) & mask)
        if (p->slots[i]->key == key)
            return p->slots[i];
    return NULL;
}

static void slot_put(pkey **slots, size_t cap, pkey *k)
{
    size_t mask = cap - 1;
    size_t i = mix(k->key) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = k;
}

static int key_rehash(gr_purgatory *p, size_t cap)
{
    pkey **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < p->cap; i++)
        if (p->slots[i])
            slot_put(slots, cap, p->slots[i]);
    free(p->slots);
    p->slots = slots;
    p->cap = cap;
    return 0;
}

static pkey *key_get(gr_purgatory *p, uint64_t key)
{
    pkey *k = key_find(p, key);
    if (k)
        return k;
    /* Load factor at most 1/2: probes stay short. */
    if ((p->nkeys + 1) * 2 > p->cap && key_rehash(p, p->cap ? p->cap * 2 : MIN_SLOTS) != 0)
        return NULL;
    k = malloc(sizeof *k);
    if (!k)
        return NULL;
    k->key = key;
    k->head = k->tail = NULL;
    slot_put(p->slots, p->cap, k);
    p->nkeys++;
    return k;
}

static void key_remove(gr_purgatory *p, pkey *k)
{
    size_t mask = p->cap - 1;
    size_t i = mix(k->key) & mask;
    while (p->slots[i] != k)
        i = (i + 1) & mask;
    p->slots[i] = NULL;
    /* Backward shift: pull later entries of the probe run into the hole when
     * the hole lies between their home slot and where they sit. */
    for (size_t j = (i + 1) & mask; p->slots[j]; j = (j + 1) & mask) {
        size_t home = mix(p->slots[j]->key) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            p->slots[i] = p->slots[j];
            p->slots[j] = NULL;
            i = j;
        }
    }
    free(k);
    p->nkeys--;
    /* Shrink when mostly empty; failing to shrink is harmless. */
    if (p->cap > MIN_SLOTS && p->nkeys * 8 < p->cap)
        (void)key_rehash(p, p->cap / 2);
}

/* ---- deadline heap ---- */

static bool before(const gr_delayed_op *a, const gr_delayed_op *b)
{
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_set(gr_purgatory *p, size_t i, gr_delayed_op *op)
{
    p->heap[i] = op;
    op->heap_pos = i;
}

static void sift_up(gr_purgatory *p, size_t i)
{
    gr_delayed_op *op = p->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(op, p->heap[parent]))
            break;
        heap_set(p, i, p->heap[parent]);
        i = parent;
    }
    heap_set(p, i, op);
}

static void sift_down(gr_purgatory *p, size_t i)
{
    gr_delayed_op *op = p->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= p->heap_len)
            break;
        if (c + 1 < p->heap_len && before(p->heap[c + 1], p->heap[c]))
            c++;
        if (!before(p->heap[c], op))
            break;
        heap_set(p, i, p->heap[c]);
        i = c;
    }
    heap_set(p, i, op);
}

static int heap_reserve(gr_purgatory *p)
{
    if (p->heap_len < p->heap_cap)
        return 0;
    size_t cap = p->heap_cap ? p->heap_cap * 2 : MIN_HEAP;
    gr_delayed_op **h = realloc(p->heap, cap * sizeof *h);
    if (!h)
        return -1;
    p->heap = h;
    p->heap_cap = cap;
    return 0;
}

static void heap_push(gr_purgatory *p, gr_delayed_op *op)
{
    heap_set(p, p->heap_len++, op);
    sift_up(p, op->heap_pos);
}

static void heap_remove(gr_purgatory *p, gr_delayed_op *op)
{
    size_t i = op->heap_pos;
    assert(i < p->heap_len && p->heap[i] == op);
    gr_delayed_op *last = p->heap[--p->heap_len];
    if (last != op) {
        heap_set(p, i, last);
        sift_down(p, i);
        sift_up(p, last->heap_pos);
    }
    if (p->heap_cap > 4 * MIN_HEAP && p->heap_len * 4 < p->heap_cap) {
        gr_delayed_op **h = realloc(p->heap, p->heap_cap / 2 * sizeof *h);
        if (h) {
            p->heap = h;
            p->heap_cap /= 2;
        }
    }
}

/* ---- ops ---- */

void gr_delayed_op_init(gr_delayed_op *op, gr_delayed_try_fn try_complete,
                        gr_delayed_done_fn on_complete)
{
    op->try_complete = try_complete;
    op->on_complete = on_complete;
    op->owner = NULL;
    op->watches = NULL;
    op->nwatches = 0;
    op->state = OP_IDLE;
    op->heap_pos = 0;
    op->deadline_ms = 0;
    op->seq = 0;
}

bool gr_delayed_op_pending(const gr_delayed_op *op)
{
    return op->state == OP_WATCHING || op->state == OP_TRYING;
}

/* Removes the op's links from their lists (freeing emptied keys) and frees
 * the link array. */
static void unlink_keys(gr_purgatory *p, gr_delayed_op *op)
{
    for (uint32_t i = 0; i < op->nwatches; i++) {
        gr_pwatch *w = &op->watches[i];
        pkey *k = w->key;
        list_unlink(k, w);
        if (!k->head)
            key_remove(p, k);
    }
    p->nwatches -= op->nwatches;
    free(op->watches);
    op->watches = NULL;
    op->nwatches = 0;
}

/* The one way to DONE: drop every reference, then call back. */
static void finish(gr_purgatory *p, gr_delayed_op *op, int64_t now, gr_delayed_cause cause)
{
    unlink_keys(p, op);
    heap_remove(p, op);
    op->state = OP_DONE;
    op->owner = NULL;
    if (cause == GR_DELAYED_EXPIRED)
        p->expired++;
    else
        p->completed++;
    p->depth++;
    op->on_complete(op, now, cause);
    p->depth--;
}

static bool ask(gr_purgatory *p, gr_delayed_op *op, int64_t now)
{
    op->state = OP_TRYING;
    p->depth++;
    bool ok = op->try_complete(op, now);
    p->depth--;
    assert(op->state == OP_TRYING);
    return ok;
}

/* ---- API ---- */

gr_purgatory *gr_purgatory_new(void)
{
    return calloc(1, sizeof(gr_purgatory));
}

void gr_purgatory_free(gr_purgatory *p)
{
    if (!p)
        return;
    assert(p->depth == 0);
    for (size_t i = 0; i < p->heap_len; i++) {
        gr_delayed_op *op = p->heap[i];
        free(op->watches);
        op->watches = NULL;
        op->nwatches = 0;
        op->owner = NULL;
        op->state = OP_IDLE;
    }
    for (size_t i = 0; i < p->cap; i++)
        free(p->slots[i]);
    free(p->slots);
    free(p->heap);
    free(p);
}

int gr_purgatory_watch(gr_purgatory *p, gr_delayed_op *op, const uint64_t *keys, size_t nkeys,
                       int64_t deadline_ms, int64_t now_ms)
{
    assert(op->try_complete && op->on_complete);
    assert(!gr_delayed_op_pending(op));
    assert(nkeys <= UINT32_MAX);

    op->owner = p;
    if (ask(p, op, now_ms)) {
        op->state = OP_DONE;
        op->owner = NULL;
        p->completed++;
        p->depth++;
        op->on_complete(op, now_ms, GR_DELAYED_COMPLETED);
        p->depth--;
        return GR_PURGATORY_DONE;
    }

    op->watches = NULL;
    op->nwatches = 0;
    if (nkeys > 0) {
        op->watches = calloc(nkeys, sizeof *op->watches);
        if (!op->watches)
            goto oom;
    }
    if (heap_reserve(p) != 0)
        goto oom;
    for (size_t i = 0; i < nkeys; i++) {
        pkey *k = key_get(p, keys[i]);
        if (!k)
            goto oom;
        /* This op's links are appended together and nothing else runs in
         * between, so a repeated key finds this op's link at its tail. */
        if (k->tail && k->tail->op == op)
            continue;
        gr_pwatch *w = &op->watches[op->nwatches++];
        w->op = op;
        list_append(k, w);
        p->nwatches++;
    }
    op->deadline_ms = deadline_ms;
    op->seq = p->seq++;
    heap_push(p, op);
    op->state = OP_WATCHING;
    return GR_PURGATORY_WATCHING;

oom:
    unlink_keys(p, op); /* also frees the links */
    op->owner = NULL;
    op->state = OP_IDLE;
    return GR_PURGATORY_ENOMEM;
}

size_t gr_purgatory_check(gr_purgatory *p, uint64_t key, int64_t now_ms)
{
    pkey *k = key_find(p, key);
    if (!k)
        return 0;
    gr_pwatch cursor = {0}, end = {0};
    list_push_front(k, &cursor);
    list_append(k, &end);
    size_t done = 0;
    for (;;) {
        gr_pwatch *w = cursor.next;
        while (w != &end && w->op == NULL) /* another check's markers */
            w = w->next;
        if (w == &end)
            break;
        list_unlink(k, &cursor);
        list_insert_after(k, w, &cursor);
        gr_delayed_op *op = w->op;
        if (op->state != OP_WATCHING) /* being asked further up the stack */
            continue;
        if (ask(p, op, now_ms)) {
            finish(p, op, now_ms, GR_DELAYED_COMPLETED);
            done++;
        } else {
            op->state = OP_WATCHING;
        }
    }
    list_unlink(k, &cursor);
    list_unlink(k, &end);
    if (!k->head)
        key_remove(p, k);
    return done;
}

size_t gr_purgatory_expire(gr_purgatory *p, int64_t now_ms)
{
    assert(p->depth == 0);
    size_t n = 0;
    while (p->heap_len > 0 && p->heap[0]->deadline_ms <= now_ms) {
        finish(p, p->heap[0], now_ms, GR_DELAYED_EXPIRED);
        n++;
    }
    return n;
}

int64_t gr_purgatory_next_deadline(const gr_purgatory *p)
{
    return p->heap_len > 0 ? p->heap[0]->deadline_ms : GR_PURGATORY_NO_DEADLINE;
}

bool gr_purgatory_cancel(gr_purgatory *p, gr_delayed_op *op)
{
    if (op->owner != p || !gr_delayed_op_pending(op))
        return false;
    assert(op->state != OP_TRYING);
    unlink_keys(p, op);
    heap_remove(p, op);
    op->owner = NULL;
    op->state = OP_IDLE;
    p->cancelled++;
    return true;
}

size_t gr_purgatory_watched(const gr_purgatory *p)
{
    return p->heap_len;
}

size_t gr_purgatory_keys(const gr_purgatory *p)
{
    return p->nkeys;
}

void gr_purgatory_get_stats(const gr_purgatory *p, gr_purgatory_stats *out)
{
    out->watched = p->heap_len;
    out->keys = p->nkeys;
    out->watches = p->nwatches;
    out->completed = p->completed;
    out->expired = p->expired;
    out->cancelled = p->cancelled;
}
