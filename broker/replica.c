/* replica.c - see replica.h. */
#include "broker/replica.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/checkpoint.h"
#include "common/cleaner.h"
#include "common/logtask.h"

#define SUB "replica"
/* How long shutdown waits for the requests still waiting on partitions. */
#define STOP_WAIT_MS 2000
#define PARTITION_METADATA "partition.metadata"
/* Kafka's name; one per partition directory here (see checkpoint.h). */
#define HW_CHECKPOINT "replication-offset-checkpoint"

typedef struct {
    char name[256];
    gr_uuid id;
    int32_t nparts;       /* partition ids are [0, nparts) */
    gr_partition **parts; /* NULL: no replica of it on this broker */
    gr_topic_settings settings; /* as of the sync that built the table */
} rtopic;

typedef struct {
    rtopic *topics;
    size_t n;
} table;

struct gr_replica_mgr {
    gr_broker *b;
    char dir[4096];
    gr_logtask *task;
    gr_cleaner *cleaner; /* compacts the logs whose cleanup.policy has compact */
    int64_t hw_interval_ms;   /* replica.high.watermark.checkpoint.interval.ms */
    pthread_rwlock_t lock; /* guards cur (the pointer, not the table) */
    table *cur;
    atomic_int waiting;
    atomic_bool stopping;
    _Atomic(gr_replica_wait_hook) hook;
    gr_replica_sync_hook sync_hook; /* main loop only */
    void *sync_ctx;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void uuid_hex(const gr_uuid *u, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", u->b[i]);
}

static bool uuid_eq(const gr_uuid *a, const gr_uuid *b) { return memcmp(a->b, b->b, 16) == 0; }

/* Removes the files of a partition directory (it has no subdirectories),
 * then the directory. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[4352];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0)
            GR_WARN(SUB, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0)
        GR_WARN(SUB, "cannot remove %s: %s", dir, strerror(errno));
}

/* Writes the high watermark checkpoint when the high watermark moved since
 * the last one (the log task's thread, or the thread closing the partition
 * once the log task has let it go). */
static void hw_checkpoint(gr_partition *p)
{
    int64_t hw = atomic_load(&p->hw);
    if (hw == p->hw_checkpointed)
        return;
    char path[4352];
    snprintf(path, sizeof path, "%s/" HW_CHECKPOINT, p->dir);
    if (gr_checkpoint_write_offset(path, p->topic, p->index, hw) != 0)
        GR_WARN(SUB, "%s-%d: cannot write %s: %s", p->topic, p->index, path, strerror(errno));
    else
        p->hw_checkpointed = hw;
}

/* The high watermark a replica starts with: its checkpoint, within the
 * log's offsets (a log cut by recovery may now end below it), else the log
 * start. */
static int64_t hw_restore(gr_partition *p)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/" HW_CHECKPOINT, p->dir);
    int64_t start = gr_log_start_offset(p->log), end = gr_log_end_offset(p->log), hw = start;
    int rc = gr_checkpoint_read_offset(path, p->topic, p->index, &hw);
    if (rc != GR_CHECKPOINT_OK) {
        if (rc != GR_CHECKPOINT_ABSENT)
            GR_WARN(SUB, "%s-%d: ignoring an unreadable %s", p->topic, p->index, path);
        hw = start;
    }
    p->hw_checkpointed = rc == GR_CHECKPOINT_OK ? hw : -1;
    return hw < start ? start : hw > end ? end : hw;
}

/* The log task's tick of p: the checkpoint every
 * replica.high.watermark.checkpoint.interval.ms, written off the main loop
 * (it is a synced file write). */
static void hw_tick(void *ctx, int64_t now_ms)
{
    gr_partition *p = ctx;
    if (now_ms - p->hw_checkpoint_ms < p->mgr->hw_interval_ms)
        return;
    p->hw_checkpoint_ms = now_ms;
    hw_checkpoint(p);
}

void gr_partition_unref(gr_partition *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    if (p->deleted) {
        /* Its files go: no clean close (which would write checkpoints). */
        gr_log_abandon(p->log);
        remove_dir(p->dir);
        GR_INFO(SUB, "deleted partition %s-%d", p->topic, p->index);
    } else {
        hw_checkpoint(p);
        gr_log_close(p->log, wall_ms());
    }
    free(p);
}

void gr_replica_set_sync_hook(gr_replica_mgr *m, gr_replica_sync_hook hook, void *ctx)
{
    if (m) {
        m->sync_hook = hook;
        m->sync_ctx = ctx;
    }
}

void gr_replica_set_wait_hook(gr_replica_mgr *m, gr_replica_wait_hook hook)
{
    if (m)
        atomic_store(&m->hook, hook);
}

static void notify(gr_partition *p)
{
    gr_replica_wait_hook hook = p->mgr ? atomic_load(&p->mgr->hook) : NULL;
    if (hook)
        hook(p);
}

/* True when this call moved the high watermark. */
static bool hw_advance(gr_partition *p, int64_t to)
{
    long long cur = atomic_load(&p->hw);
    while (cur < to)
        if (atomic_compare_exchange_weak(&p->hw, &cur, to))
            return true;
    return false;
}

int64_t gr_partition_appended(gr_partition *p)
{
    if (atomic_load(&p->isr_only_self) && atomic_load(&p->leader) &&
        hw_advance(p, gr_log_end_offset(p->log)))
        notify(p);
    return atomic_load(&p->hw);
}

static int64_t hw_for_retention(void *ctx)
{
    gr_partition *p = ctx;
    return atomic_load(&p->hw);
}

/* A directory left by an earlier topic of the same name (deleted while this
 * broker was down) holds data that is not this topic's: the topic id in
 * partition.metadata tells. Returns 0 when dir may be used for id. */
static int claim_dir(const char *dir, const gr_uuid *id)
{
    char path[4352], hex[33], line[128];
    uuid_hex(id, hex);
    snprintf(path, sizeof path, "%s/" PARTITION_METADATA, dir);
    FILE *f = fopen(path, "r");
    if (f) {
        bool same = false;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "topic_id: ", 10) == 0 && strncmp(line + 10, hex, 32) == 0)
                same = true;
        fclose(f);
        if (same)
            return 0;
        GR_WARN(SUB, "%s belongs to an earlier topic of the same name: removing it", dir);
        remove_dir(dir);
    }
    /* No partition.metadata: a new directory (or one whose creation was
     * cut short): claim it. */
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        GR_ERROR(SUB, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fprintf(f, "version: 0\ntopic_id: %s\n", hex) < 0 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        GR_ERROR(SUB, "cannot write %s: %s", tmp, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (rename(tmp, path) != 0) {
        GR_ERROR(SUB, "cannot rename %s: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

static gr_partition *open_partition(gr_replica_mgr *m, const rtopic *t, int32_t index)
{
    gr_partition *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->topic, sizeof p->topic, "%s", t->name);
    p->topic_id = t->id;
    p->mgr = m;
    p->index = index;
    int dn = snprintf(p->dir, sizeof p->dir, "%s/%s-%d", m->dir, t->name, index);
    if (dn < 0 || (size_t)dn >= sizeof p->dir) {
        GR_ERROR(SUB, "the directory of %s-%d would be too long a path", t->name, index);
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    atomic_init(&p->leader, false);
    atomic_init(&p->leader_epoch, -1);
    atomic_init(&p->isr_only_self, false);
    atomic_init(&p->isr_size, 0);
    atomic_init(&p->replicas, 0);
    atomic_init(&p->min_insync_replicas, t->settings.min_insync_replicas);
    atomic_init(&p->max_message_bytes, t->settings.max_message_bytes);
    atomic_init(&p->compression, t->settings.compression);
    atomic_init(&p->compression_level, t->settings.compression_level);
    atomic_init(&p->ts_before_max_ms, t->settings.ts_before_max_ms);
    atomic_init(&p->ts_after_max_ms, t->settings.ts_after_max_ms);
    atomic_init(&p->compact, t->settings.compact);
    atomic_init(&p->log_append_time, t->settings.log.log_append_time);
    memcpy(&p->settings, &t->settings, sizeof p->settings); /* padding too: see apply_settings */
    if (claim_dir(p->dir, &t->id) != 0) {
        free(p);
        return NULL;
    }
    int rc = gr_log_open(&p->log, m->dir, t->name, index, &t->settings.log, wall_ms());
    if (rc != GR_LOG_OK) {
        GR_ERROR(SUB, "cannot open the log of %s-%d: %s", t->name, index, gr_log_err_str(rc));
        free(p);
        return NULL;
    }
    /* A sole in-sync leader moves it on to the log end below. */
    atomic_init(&p->hw, hw_restore(p));
    if (gr_logtask_add(m->task, p->log, hw_for_retention, hw_tick, p) != 0)
        GR_WARN(SUB, "%s-%d: out of memory adding it to retention", t->name, index);
    if (t->settings.compact && gr_cleaner_add(m->cleaner, p->log, &t->settings.cleaner) != 0)
        GR_WARN(SUB, "%s-%d: out of memory adding it to the cleaner", t->name, index);
    GR_INFO(SUB, "opened partition %s-%d (log end offset %lld)", t->name, index,
            (long long)gr_log_end_offset(p->log));
    return p;
}

static gr_partition *table_find(const table *tb, const gr_uuid *id, int32_t index)
{
    if (!tb)
        return NULL;
    for (size_t i = 0; i < tb->n; i++) {
        const rtopic *t = &tb->topics[i];
        if (uuid_eq(&t->id, id))
            return index >= 0 && index < t->nparts ? t->parts[index] : NULL;
    }
    return NULL;
}

static bool table_holds(const table *tb, const gr_partition *p)
{
    return table_find(tb, &p->topic_id, p->index) == p;
}

/* Drops the table's references (not the partitions' removal: see sync). */
static void table_free(table *tb)
{
    if (!tb)
        return;
    for (size_t i = 0; i < tb->n; i++) {
        for (int32_t k = 0; k < tb->topics[i].nparts; k++)
            gr_partition_unref(tb->topics[i].parts[k]);
        free(tb->topics[i].parts);
    }
    free(tb->topics);
    free(tb);
}

static bool has_id(const gr_metadata_ids *ids, int32_t id)
{
    for (int32_t i = 0; i < ids->count; i++)
        if (ids->ids[i] == id)
            return true;
    return false;
}

/* A topic's settings changed (main loop): the produce path reads the
 * atomics, the log and the cleaner get their parts. */
static void apply_settings(gr_replica_mgr *m, gr_partition *p, const gr_topic_settings *s)
{
    if (memcmp(&p->settings, s, sizeof *s) == 0)
        return;
    bool retention = s->log.retention_ms != p->settings.log.retention_ms ||
                     s->log.retention_bytes != p->settings.log.retention_bytes;
    atomic_store(&p->max_message_bytes, s->max_message_bytes);
    atomic_store(&p->compression, s->compression);
    atomic_store(&p->compression_level, s->compression_level);
    atomic_store(&p->ts_before_max_ms, s->ts_before_max_ms);
    atomic_store(&p->ts_after_max_ms, s->ts_after_max_ms);
    atomic_store(&p->compact, s->compact);
    atomic_store(&p->log_append_time, s->log.log_append_time);
    bool min_isr = atomic_exchange(&p->min_insync_replicas, s->min_insync_replicas) !=
                   s->min_insync_replicas;
    gr_log_set_config(p->log, &s->log);
    if (!s->compact)
        gr_cleaner_remove(m->cleaner, p->log);
    else if (gr_cleaner_add(m->cleaner, p->log, &s->cleaner) != 0)
        GR_WARN(SUB, "%s-%d: out of memory adding it to the cleaner", p->topic, p->index);
    memcpy(&p->settings, s, sizeof *s); /* padding too: the next memcmp compares it */
    GR_INFO(SUB, "%s-%d: configuration changed (cleanup %s%s%s, retention.ms %lld, "
            "retention.bytes %lld, segment.bytes %lld, max.message.bytes %d)",
            p->topic, p->index, s->compact ? "compact" : "", s->compact && s->delete_ ? "," : "",
            s->delete_ ? "delete" : "", (long long)s->log.retention_ms,
            (long long)s->log.retention_bytes, (long long)s->log.segment_bytes,
            s->max_message_bytes);
    /* A shorter retention is worth applying now rather than at the next
     * periodic pass. */
    if (retention)
        gr_logtask_run_now(m->task);
    /* A waiting acks=all produce may now have too few in-sync replicas. */
    if (min_isr)
        notify(p);
}

/* Leadership and ISR from the image (main loop). */
static void apply_state(gr_partition *p, const gr_metadata_partition *mp, int32_t self)
{
    bool leader = mp->leader == self;
    bool only_self = mp->isr.count == 1 && mp->isr.ids[0] == self;
    bool changed =
        leader != atomic_load(&p->leader) || mp->leader_epoch != atomic_load(&p->leader_epoch);
    if (changed)
        GR_INFO(SUB, "%s-%d: %s at leader epoch %d", p->topic, p->index,
                leader ? "leader" : "follower", mp->leader_epoch);
    /* An ISR that shrank below min.insync.replicas (capped by the
     * replication factor) ends a waiting acks=all produce even when the
     * high watermark stays. */
    if (mp->isr.count != atomic_load(&p->isr_size) ||
        mp->replicas.count != atomic_load(&p->replicas))
        changed = true;
    atomic_store(&p->leader_epoch, mp->leader_epoch);
    atomic_store(&p->isr_size, mp->isr.count);
    atomic_store(&p->replicas, mp->replicas.count);
    atomic_store(&p->isr_only_self, only_self);
    if (leader && only_self && hw_advance(p, gr_log_end_offset(p->log)))
        changed = true;
    atomic_store(&p->leader, leader);
    if (changed)
        notify(p);
}

typedef struct {
    rtopic *t;
    const gr_metadata_partition *mp;
} to_open;

/*
 * In three steps, so that a directory is never used by two partitions at
 * once (a topic deleted and recreated under the same name between two
 * syncs, e.g. across a snapshot load):
 *   1 publish the new table with the partitions that stay (new ones absent:
 *     NOT_LEADER_OR_FOLLOWER for a moment);
 *   2 retire the partitions that went: out of retention, then closed and
 *     their files deleted once the last reader lets go;
 *   3 open the new partitions and publish each into its slot.
 */
void gr_replica_sync(gr_replica_mgr *m, const gr_metadata_image *img)
{
    int32_t self = m->b->node_id;
    table *old = m->cur;
    table *nt = calloc(1, sizeof *nt);
    size_t n = img ? gr_metadata_topic_count(img) : 0;
    to_open *opens = NULL;
    size_t nopens = 0, cap = 0;
    if (!nt || (n && !(nt->topics = calloc(n, sizeof *nt->topics))))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const gr_metadata_topic *mt = gr_metadata_topic_at(img, i);
        if (mt->name.len <= 0 || (size_t)mt->name.len >= sizeof nt->topics[0].name)
            continue;
        rtopic *t = &nt->topics[nt->n];
        memcpy(t->name, mt->name.ptr, (size_t)mt->name.len);
        t->name[mt->name.len] = 0;
        t->id = mt->id;
        int32_t nparts = 0;
        for (int32_t k = 0; k < mt->partition_count; k++)
            if (mt->partitions[k].id >= nparts)
                nparts = mt->partitions[k].id + 1;
        t->parts = calloc(nparts ? (size_t)nparts : 1, sizeof *t->parts);
        if (!t->parts)
            goto oom;
        t->nparts = nparts;
        nt->n++;
        gr_topic_settings_from_image(&t->settings, img, mt->name, self, m->b->config);
        for (int32_t k = 0; k < mt->partition_count; k++) {
            const gr_metadata_partition *mp = &mt->partitions[k];
            if (mp->id < 0 || !has_id(&mp->replicas, self))
                continue;
            gr_partition *p = table_find(old, &t->id, mp->id);
            if (p) {
                atomic_fetch_add(&p->refs, 1);
                apply_settings(m, p, &t->settings);
                apply_state(p, mp, self);
                t->parts[mp->id] = p;
                continue;
            }
            if (nopens == cap) {
                size_t nc = cap ? cap * 2 : 16;
                to_open *no = realloc(opens, nc * sizeof *no);
                if (!no)
                    goto oom;
                opens = no;
                cap = nc;
            }
            opens[nopens++] = (to_open){t, mp};
        }
    }

    pthread_rwlock_wrlock(&m->lock);
    m->cur = nt;
    pthread_rwlock_unlock(&m->lock);

    /* Every retired partition is marked and its waiting readers told; one
     * still referenced (a response being sent, a request between lookup and
     * answer, the group coordinator) is deleted by its last reader. The
     * main loop never waits for readers: a slow client must not hold up its
     * heartbeats. */
    for (size_t i = 0; old && i < old->n; i++) {
        for (int32_t k = 0; k < old->topics[i].nparts; k++) {
            gr_partition *p = old->topics[i].parts[k];
            if (!p || table_holds(nt, p))
                continue;
            gr_logtask_remove(m->task, p->log);
            gr_cleaner_remove(m->cleaner, p->log);
            atomic_store(&p->leader, false);
            p->deleted = true;
            notify(p); /* waiting readers find it gone and answer now */
        }
    }
    for (size_t i = 0; old && i < old->n; i++) {
        for (int32_t k = 0; k < old->topics[i].nparts; k++) {
            gr_partition *p = old->topics[i].parts[k];
            if (!p || !p->deleted || atomic_load(&p->refs) <= 1)
                continue;
            /* Still being read: move the directory out of the way (a topic
             * of the same name may be created at once) and delete it after
             * the last read. */
            char hex[33], moved[sizeof p->dir];
            uuid_hex(&p->topic_id, hex);
            int mn = snprintf(moved, sizeof moved, "%s.%s-delete", p->dir, hex);
            if (mn > 0 && (size_t)mn < sizeof moved && rename(p->dir, moved) == 0)
                memcpy(p->dir, moved, sizeof moved);
            GR_INFO(SUB, "%s-%d: removed while still being read; deleted after the last read",
                    p->topic, p->index);
        }
    }
    table_free(old); /* closes (and deletes) the retired ones not being read */

    for (size_t i = 0; i < nopens; i++) {
        gr_partition *p = open_partition(m, opens[i].t, opens[i].mp->id);
        if (!p)
            continue; /* logged; clients get NOT_LEADER_OR_FOLLOWER; retried next sync */
        apply_state(p, opens[i].mp, self);
        pthread_rwlock_wrlock(&m->lock);
        opens[i].t->parts[opens[i].mp->id] = p;
        pthread_rwlock_unlock(&m->lock);
    }
    free(opens);
    if (m->sync_hook)
        m->sync_hook(m->sync_ctx, img);
    return;
oom:
    GR_ERROR(SUB, "out of memory following the metadata: partitions unchanged");
    table_free(nt); /* holds only references to partitions of the old table */
    free(opens);
}

static gr_partition *lookup(gr_replica_mgr *m, const char *name, size_t name_len,
                            const gr_uuid *id, int32_t index, int16_t *err)
{
    gr_partition *p = NULL;
    *err = id ? GR_UNKNOWN_TOPIC_ID : GR_UNKNOWN_TOPIC_OR_PARTITION;
    pthread_rwlock_rdlock(&m->lock);
    const table *tb = m->cur;
    for (size_t i = 0; tb && i < tb->n; i++) {
        const rtopic *t = &tb->topics[i];
        bool match = id ? uuid_eq(&t->id, id)
                        : strlen(t->name) == name_len && memcmp(t->name, name, name_len) == 0;
        if (!match)
            continue;
        if (index < 0 || index >= t->nparts) {
            *err = GR_UNKNOWN_TOPIC_OR_PARTITION;
        } else if (!(p = t->parts[index])) {
            /* Known partition, but no replica here (or its log failed to
             * open): the client must look for the leader elsewhere. */
            *err = GR_NOT_LEADER_OR_FOLLOWER;
        } else {
            atomic_fetch_add(&p->refs, 1);
            *err = GR_NONE;
        }
        break;
    }
    pthread_rwlock_unlock(&m->lock);
    return p;
}

gr_partition *gr_replica_get(gr_replica_mgr *m, gr_str topic, int32_t index, int16_t *err)
{
    if (!m || topic.len < 0) {
        *err = GR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    return lookup(m, topic.ptr, (size_t)topic.len, NULL, index, err);
}

gr_partition *gr_replica_get_by_id(gr_replica_mgr *m, const gr_uuid *topic_id, int32_t index,
                                   int16_t *err)
{
    if (!m) {
        *err = GR_UNKNOWN_TOPIC_ID;
        return NULL;
    }
    return lookup(m, NULL, 0, topic_id, index, err);
}

gr_replica_mgr *gr_replica_new(gr_broker *b)
{
    gr_replica_mgr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->b = b;
    gr_broker_first_log_dir(b, m->dir, sizeof m->dir);
    gr_config *c = b->config;
    m->hw_interval_ms = gr_config_long(c, "replica.high.watermark.checkpoint.interval.ms");
    pthread_rwlock_init(&m->lock, NULL);
    m->task = gr_logtask_start(gr_config_long(c, "log.retention.check.interval.ms"), 1000);
    m->cleaner = m->task ? gr_cleaner_start(gr_config_long(c, "log.cleaner.backoff.ms")) : NULL;
    if (!m->cleaner) {
        GR_ERROR(SUB, "cannot start the log maintenance and cleaner threads");
        gr_logtask_stop(m->task);
        pthread_rwlock_destroy(&m->lock);
        free(m);
        return NULL;
    }
    return m;
}

void gr_replica_wait_begin(gr_replica_mgr *m) { atomic_fetch_add(&m->waiting, 1); }
void gr_replica_wait_end(gr_replica_mgr *m) { atomic_fetch_sub(&m->waiting, 1); }
bool gr_replica_stopping(gr_replica_mgr *m) { return atomic_load(&m->stopping); }

void gr_replica_stop(gr_replica_mgr *m)
{
    if (!m)
        return;
    atomic_store(&m->stopping, true);
    gr_replica_wait_hook hook = atomic_load(&m->hook);
    if (hook)
        hook(NULL);
    for (int w = 0; w < STOP_WAIT_MS && atomic_load(&m->waiting) > 0; w++)
        usleep(1000);
    if (atomic_load(&m->waiting) > 0)
        GR_WARN(SUB, "%d requests still waiting at shutdown", atomic_load(&m->waiting));
}

void gr_replica_free(gr_replica_mgr *m)
{
    if (!m)
        return;
    gr_logtask_stop(m->task);
    gr_cleaner_stop(m->cleaner);
    table_free(m->cur); /* the last references: every log is closed cleanly */
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

int gr_replica_list(gr_replica_mgr *m, gr_partition ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!m)
        return 0;
    pthread_rwlock_rdlock(&m->lock);
    const table *tb = m->cur;
    size_t count = 0;
    for (size_t i = 0; tb && i < tb->n; i++)
        for (int32_t k = 0; k < tb->topics[i].nparts; k++)
            count += tb->topics[i].parts[k] != NULL;
    gr_partition **ps = count ? malloc(count * sizeof *ps) : NULL;
    if (count && !ps) {
        pthread_rwlock_unlock(&m->lock);
        return -1;
    }
    for (size_t i = 0; tb && i < tb->n; i++)
        for (int32_t k = 0; k < tb->topics[i].nparts; k++) {
            gr_partition *p = tb->topics[i].parts[k];
            if (p) {
                atomic_fetch_add(&p->refs, 1);
                ps[(*n)++] = p;
            }
        }
    pthread_rwlock_unlock(&m->lock);
    *out = ps;
    return 0;
}

void gr_replica_list_free(gr_partition **ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gr_partition_unref(ps[i]);
    free(ps);
}
