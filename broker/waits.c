/* waits.c - see waits.h. */
#include "broker/waits.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/replica.h"
#include "common/logging.h"

/* How many of the most recently queued keys a notice looks through before
 * queueing its key again: duplicates only cost a cheap extra check. */
#define DEDUP_WINDOW 32

/* The purgatory of one network thread. Fields up to `mu` belong to the
 * owning thread; those after it are shared and guarded by mu. An entry is
 * reachable from other threads only through the registry, under reg_mu,
 * and is removed from it (under reg_mu) before the owner frees it. */
typedef struct wthread {
    struct wthread *next; /* registry link (reg_mu) */
    struct event_base *base;
    gr_purgatory *pg;
    struct event *timer; /* the earliest deadline */
    struct event *wake;  /* activated by other threads */
    int depth;           /* purgatory calls on the stack: free only at 0 */
    pthread_mutex_t mu;
    uint64_t *keys; /* queued notices */
    size_t nkeys, cap;
    bool all;       /* wake everything (shutdown, or a notice we could not queue) */
} wthread;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static wthread *reg;

int64_t gr_waits_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of base, or NULL. Only the owning thread adds or removes its
 * own entry, so the answer stays true for the caller on that thread. */
static wthread *find(struct event_base *base)
{
    pthread_mutex_lock(&reg_mu);
    wthread *e = reg;
    while (e && e->base != base)
        e = e->next;
    pthread_mutex_unlock(&reg_mu);
    return e;
}

static void destroy(wthread *e)
{
    if (e->timer)
        event_free(e->timer);
    if (e->wake)
        event_free(e->wake);
    if (e->pg)
        gr_purgatory_free(e->pg);
    pthread_mutex_destroy(&e->mu);
    free(e->keys);
    free(e);
}

/* After the purgatory was used at the top of the stack: frees the entry
 * when nothing waits, otherwise arms the timer at the earliest deadline. */
static void settle(wthread *e)
{
    if (e->depth > 0)
        return;
    if (gr_purgatory_watched(e->pg) == 0) {
        pthread_mutex_lock(&reg_mu);
        wthread **pp = &reg;
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        pthread_mutex_unlock(&reg_mu);
        destroy(e); /* no notice can reach it now; a pending wake goes with its event */
        return;
    }
    int64_t delay = gr_purgatory_next_deadline(e->pg) - gr_waits_now_ms();
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    if (evtimer_add(e->timer, &tv) != 0)
        GR_ERROR("waits", "cannot arm the long-poll timer: waiting requests end on the next notice");
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wthread *e = arg;
    e->depth++;
    gr_purgatory_expire(e->pg, gr_waits_now_ms());
    e->depth--;
    settle(e);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wthread *e = arg;
    pthread_mutex_lock(&e->mu);
    uint64_t *keys = e->keys;
    size_t n = e->nkeys;
    bool all = e->all;
    e->keys = NULL;
    e->nkeys = e->cap = 0;
    e->all = false;
    pthread_mutex_unlock(&e->mu);
    e->depth++;
    int64_t now = gr_waits_now_ms();
    for (size_t i = 0; i < n; i++)
        gr_purgatory_check(e->pg, keys[i], now);
    if (all)
        gr_purgatory_expire(e->pg, GR_PURGATORY_NO_DEADLINE);
    e->depth--;
    free(keys);
    settle(e);
}

static wthread *create(struct event_base *base)
{
    wthread *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->base = base;
    pthread_mutex_init(&e->mu, NULL);
    if (!(e->pg = gr_purgatory_new()) || !(e->timer = evtimer_new(base, timer_cb, e)) ||
        !(e->wake = event_new(base, -1, 0, wake_cb, e))) {
        destroy(e);
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    e->next = reg;
    reg = e;
    pthread_mutex_unlock(&reg_mu);
    return e;
}

int gr_waits_watch(struct event_base *base, gr_delayed_op *op, const uint64_t *keys,
                   size_t nkeys, int64_t deadline_ms)
{
    wthread *e = find(base);
    if (!e && !(e = create(base)))
        return GR_PURGATORY_ENOMEM;
    e->depth++;
    int rc = gr_purgatory_watch(e->pg, op, keys, nkeys, deadline_ms, gr_waits_now_ms());
    e->depth--;
    settle(e);
    return rc;
}

bool gr_waits_cancel(struct event_base *base, gr_delayed_op *op)
{
    wthread *e = find(base);
    if (!e)
        return false;
    e->depth++;
    bool cancelled = gr_purgatory_cancel(e->pg, op);
    e->depth--;
    settle(e);
    return cancelled;
}

/* Queues a notice on e (reg_mu held, so e is alive) and wakes its thread. */
static void post(wthread *e, const uint64_t *key)
{
    pthread_mutex_lock(&e->mu);
    if (!key) {
        e->all = true;
    } else if (!e->all) {
        bool queued = false;
        for (size_t i = e->nkeys; i > 0 && e->nkeys - i < DEDUP_WINDOW && !queued; i--)
            queued = e->keys[i - 1] == *key;
        if (!queued) {
            if (e->nkeys == e->cap) {
                size_t nc = e->cap ? e->cap * 2 : 8;
                uint64_t *nk = realloc(e->keys, nc * sizeof *nk);
                if (nk) {
                    e->keys = nk;
                    e->cap = nc;
                }
            }
            if (e->nkeys < e->cap)
                e->keys[e->nkeys++] = *key;
            else
                e->all = true; /* out of memory: answering early is safe, missing a wake-up is not */
        }
    }
    pthread_mutex_unlock(&e->mu);
    event_active(e->wake, EV_TIMEOUT, 0);
}

void gr_waits_notify(uint64_t key)
{
    pthread_mutex_lock(&reg_mu);
    for (wthread *e = reg; e; e = e->next)
        post(e, &key);
    pthread_mutex_unlock(&reg_mu);
}

void gr_waits_wake_all(void)
{
    pthread_mutex_lock(&reg_mu);
    for (wthread *e = reg; e; e = e->next)
        post(e, NULL);
    pthread_mutex_unlock(&reg_mu);
}

void gr_waits_partition_hook(const gr_partition *p)
{
    if (p)
        gr_waits_notify(gr_purgatory_key(&p->topic_id, p->index));
    else
        gr_waits_wake_all();
}

int gr_waits_park(struct event_base *base, gr_replica_mgr *m, gr_delayed_op *op,
                  const uint64_t *keys, size_t nkeys, int64_t deadline_ms)
{
    gr_replica_set_wait_hook(m, gr_waits_partition_hook);
    gr_replica_wait_begin(m);
    int rc = gr_waits_watch(base, op, keys, nkeys, deadline_ms);
    if (rc == GR_PURGATORY_ENOMEM) {
        gr_replica_wait_end(m);
        return rc;
    }
    /* A stop that began before the watch was seen may have missed it. */
    if (rc == GR_PURGATORY_WATCHING && gr_replica_stopping(m))
        gr_waits_wake_all();
    return rc;
}
