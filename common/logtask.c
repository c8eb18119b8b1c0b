/*
 * logtask.c - the thread behind logtask.h.
 *
 * The task keeps a list of entries (log, high watermark callback). A pass
 * walks the list and works on one log at a time without holding the task's
 * mutex, so that add, remove and the callbacks never wait for a disk
 * operation on another log. The entry being worked on is marked busy:
 *
 *   - remove waits on `idle` while its entry is busy, and only unlinks and
 *     frees an entry that is not, so the log it names stays open for the
 *     whole of the work on it;
 *   - the walk reads the busy entry's `next` only after retaking the mutex,
 *     and the busy entry cannot have been freed meanwhile, so the walk
 *     always follows the list as it is now: entries removed during the pass
 *     are skipped, entries added (at the tail) are visited.
 *
 * Scheduling is on CLOCK_MONOTONIC with one condition variable (`wake`)
 * that stop and run_now signal; nothing sleeps, so stop is prompt. A pass
 * also checks `stop` between logs.
 */
#include "common/logtask.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "common/logging.h"

#define SUB "logtask"

typedef struct lt_entry {
    gr_log *log;
    gr_logtask_hw_fn hw;
    gr_logtask_tick_fn tick;
    void *ctx;
    bool busy; /* the thread is working on this log, without the mutex */
    struct lt_entry *next;
} lt_entry;

struct gr_logtask {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread waits on it (CLOCK_MONOTONIC) */
    pthread_cond_t idle; /* an entry stopped being busy (remove waits on it) */
    pthread_t thread;
    int64_t retention_interval_ms;
    int64_t tick_interval_ms;
    bool stop;
    bool run_requested;
    lt_entry *entries;
    gr_logtask_stats stats;
};

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One pass over every log: retention (when asked) then the tick. Called
 * and returns with t->mu held; releases it around the work on each log. */
static void run_pass(gr_logtask *t, bool retention)
{
    int64_t started = clock_ms(CLOCK_MONOTONIC);
    uint64_t deleted_total = 0, errors = 0;
    size_t nlogs = 0;
    lt_entry *e = t->entries;
    while (e && !t->stop) {
        e->busy = true;
        gr_log *log = e->log;
        gr_logtask_hw_fn hw = e->hw;
        gr_logtask_tick_fn tick = e->tick;
        void *ctx = e->ctx;
        pthread_mutex_unlock(&t->mu);

        int64_t now = clock_ms(CLOCK_REALTIME);
        int deleted = 0;
        int rc_ret = GR_LOG_OK;
        if (retention) {
            int64_t max_offset = hw ? hw(ctx) : gr_log_end_offset(log);
            rc_ret = gr_log_retention(log, now, max_offset, &deleted);
        }
        int rc_tick = gr_log_tick(log, now);
        if (tick)
            tick(ctx, now);

        pthread_mutex_lock(&t->mu);
        e->busy = false;
        pthread_cond_broadcast(&t->idle);
        nlogs++;
        if (rc_ret == GR_LOG_OK && deleted > 0)
            deleted_total += (uint64_t)deleted;
        if (rc_ret != GR_LOG_OK)
            errors++;
        if (rc_tick != GR_LOG_OK)
            errors++;
        if (rc_ret != GR_LOG_OK || rc_tick != GR_LOG_OK)
            GR_DEBUG(SUB, "%s: retention %s, tick %s", gr_log_name(log), gr_log_err_str(rc_ret),
                     gr_log_err_str(rc_tick));
        e = e->next; /* e is still listed: only remove unlinks, never a busy entry */
    }
    t->stats.segments_deleted += deleted_total;
    t->stats.errors += errors;
    if (t->stop)
        return; /* an interrupted pass does not count */
    if (retention) {
        t->stats.passes++;
        GR_DEBUG(SUB, "retention pass: %zu logs, %" PRIu64 " segments deleted, %" PRIu64
                      " errors, %" PRId64 " ms",
                 nlogs, deleted_total, errors, clock_ms(CLOCK_MONOTONIC) - started);
    } else {
        t->stats.ticks++;
    }
}

static void *task_main(void *arg)
{
    gr_logtask *t = arg;
    pthread_mutex_lock(&t->mu);
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    int64_t next_retention = now + t->retention_interval_ms;
    int64_t next_tick = now + t->tick_interval_ms;
    while (!t->stop) {
        now = clock_ms(CLOCK_MONOTONIC);
        bool retention = t->run_requested || now >= next_retention;
        if (retention || now >= next_tick) {
            if (retention) {
                /* cleared before the pass: a request made during it gets
                 * a pass of its own */
                t->run_requested = false;
                next_retention = now + t->retention_interval_ms;
            }
            next_tick = now + t->tick_interval_ms;
            run_pass(t, retention);
            continue;
        }
        int64_t deadline = next_retention < next_tick ? next_retention : next_tick;
        struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
        pthread_cond_timedwait(&t->wake, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

gr_logtask *gr_logtask_start(int64_t retention_check_interval_ms, int64_t tick_interval_ms)
{
    gr_logtask *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->retention_interval_ms = retention_check_interval_ms > 0 ? retention_check_interval_ms : 1;
    t->tick_interval_ms = tick_interval_ms > 0 ? tick_interval_ms : 1;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        free(t);
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool mu_ok = pthread_mutex_init(&t->mu, NULL) == 0;
    bool wake_ok = mu_ok && pthread_cond_init(&t->wake, &ca) == 0;
    bool idle_ok = wake_ok && pthread_cond_init(&t->idle, NULL) == 0;
    pthread_condattr_destroy(&ca);
    if (!idle_ok || pthread_create(&t->thread, NULL, task_main, t) != 0) {
        GR_ERROR(SUB, "cannot start the log maintenance thread");
        if (idle_ok)
            pthread_cond_destroy(&t->idle);
        if (wake_ok)
            pthread_cond_destroy(&t->wake);
        if (mu_ok)
            pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    GR_INFO(SUB, "log maintenance started: retention check every %" PRId64 " ms, tick every %" PRId64
                 " ms",
            t->retention_interval_ms, t->tick_interval_ms);
    return t;
}

void gr_logtask_stop(gr_logtask *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    while (t->entries) {
        lt_entry *e = t->entries;
        t->entries = e->next;
        free(e);
    }
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int gr_logtask_add(gr_logtask *t, gr_log *log, gr_logtask_hw_fn hw, gr_logtask_tick_fn tick,
                   void *ctx)
{
    pthread_mutex_lock(&t->mu);
    lt_entry **pp = &t->entries;
    while (*pp && (*pp)->log != log)
        pp = &(*pp)->next;
    lt_entry *e = *pp;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&t->mu);
            GR_ERROR(SUB, "%s: out of memory adding the log", gr_log_name(log));
            return -1;
        }
        e->log = log;
        *pp = e; /* at the tail, so that a pass in progress reaches it too */
    }
    /* A pass already working on this log keeps the callbacks it read. */
    e->hw = hw;
    e->tick = tick;
    e->ctx = ctx;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void gr_logtask_remove(gr_logtask *t, gr_log *log)
{
    pthread_mutex_lock(&t->mu);
    for (;;) {
        lt_entry **pp = &t->entries;
        while (*pp && (*pp)->log != log)
            pp = &(*pp)->next;
        lt_entry *e = *pp;
        if (!e)
            break;
        if (e->busy) {
            /* being worked on: look again once that is over (the list
             * may change meanwhile) */
            pthread_cond_wait(&t->idle, &t->mu);
            continue;
        }
        *pp = e->next;
        free(e);
        break;
    }
    pthread_mutex_unlock(&t->mu);
}

void gr_logtask_run_now(gr_logtask *t)
{
    pthread_mutex_lock(&t->mu);
    t->run_requested = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
}

void gr_logtask_get_stats(gr_logtask *t, gr_logtask_stats *out)
{
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    pthread_mutex_unlock(&t->mu);
}
