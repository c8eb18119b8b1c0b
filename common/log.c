/*
 * log.c - see log.h.
 *
 * State, all under log->mu:
 *   segs[0..nsegs)     segments sorted by base offset, never empty; the last
 *                      is the active one. segs[i]->next_offset <=
 *                      segs[i+1]->base_offset.
 *   log_start_offset   segs[0]->base_offset <= log_start_offset <= log end
 *                      offset (the active segment's next offset).
 *   recovery_point     every offset below it is fsynced (log and indexes);
 *                      checkpointed after each flush and roll. Every
 *                      inactive segment is below it (a roll fsyncs).
 *   epochs[]           leader epoch cache, epochs and start offsets strictly
 *                      increasing, every start offset below the log end
 *                      offset; mirrored in leader-epoch-checkpoint.
 *   pending[]          *.deleted files waiting for file.delete.delay.ms.
 *
 * Order of durable steps, chosen so that a crash between any two leaves a
 * state the next open understands:
 *   roll:        fsync the old segment, create the new one, fsync the
 *                directory, checkpoint the recovery point.
 *   retention:   checkpoint the new log start offset, then rename segments
 *                to *.deleted (a crash in between leaves segments below the
 *                log start offset, which the next retention removes).
 *   clean close: flush, trim, checkpoint, then create the marker; the
 *                marker is removed (and the directory fsynced) on open,
 *                before anything is appended.
 *   replace:     see gr_log_replace_segments and recover_swap().
 */
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/metaprops.h"
#include "common/segment.h"

#define SUB "log"
#define PATH_CAP 4200

#define CLEAN_SHUTDOWN_FILE ".clean-shutdown"
#define RECOVERY_POINT_FILE "recovery-point-offset-checkpoint"
#define LOG_START_FILE "log-start-offset-checkpoint"
#define EPOCH_FILE "leader-epoch-checkpoint"
#define SWAP_MANIFEST_FILE "cleaner-swap-manifest"

#define SFX_CLEANED ".cleaned"
#define SFX_SWAP ".swap"
#define SFX_DELETED ".deleted"

/* Roles in the swap manifest's entries "role base". */
#define SWAP_OLD 0
#define SWAP_NEW 1

typedef struct {
    char *stem; /* "<dir>/<20 digits>": the three files are stem.{log,index,timeindex}.deleted */
    int64_t due_ms;
} pending_delete;

struct gr_log {
    pthread_mutex_t mu;
    char *dir;   /* the partition directory */
    char *name;  /* "topic-partition" */
    char *topic;
    int32_t partition;
    gr_log_config cfg;

    gr_segment **segs;
    size_t nsegs, segs_cap;

    int64_t log_start_offset;
    int64_t recovery_point;
    int64_t unflushed_messages;
    int64_t last_flush_ms;

    gr_log_epoch_entry *epochs;
    size_t nepochs, epochs_cap;

    pending_delete *pending;
    size_t npending, pending_cap;
};

const char *gr_log_err_str(int err)
{
    switch (err) {
    case GR_LOG_OK: return "ok";
    case GR_LOG_ERR_IO: return "storage error";
    case GR_LOG_ERR_NOMEM: return "out of memory";
    case GR_LOG_ERR_CORRUPT: return "corrupt batch";
    case GR_LOG_ERR_OUT_OF_RANGE: return "offset out of range";
    case GR_LOG_ERR_TOO_LARGE: return "records larger than a segment";
    case GR_LOG_ERR_BAD_OFFSET: return "offsets not increasing from the log end";
    case GR_LOG_ERR_INVALID: return "invalid argument";
    default: return "unknown log error";
    }
}

void gr_log_config_defaults(gr_log_config *cfg)
{
    cfg->segment_bytes = 1LL << 30;
    cfg->segment_ms = 168LL * 3600 * 1000;
    cfg->segment_index_bytes = 10LL << 20;
    cfg->index_interval_bytes = 4096;
    cfg->flush_interval_messages = INT64_MAX;
    cfg->flush_interval_ms = INT64_MAX;
    cfg->retention_ms = 168LL * 3600 * 1000;
    cfg->retention_bytes = -1;
    cfg->file_delete_delay_ms = 60000;
    cfg->log_append_time = false;
}

/* Values the code relies on: segments below 2 GiB (32-bit positions),
 * indexes with room for a few entries. */
static void sanitize(gr_log_config *c)
{
    if (c->segment_bytes < GR_BATCH_HEADER_SIZE || c->segment_bytes > INT32_MAX)
        c->segment_bytes = c->segment_bytes < GR_BATCH_HEADER_SIZE ? GR_BATCH_HEADER_SIZE : INT32_MAX;
    if (c->segment_index_bytes < 4 * GR_INDEX_TIME_ENTRY)
        c->segment_index_bytes = 4 * GR_INDEX_TIME_ENTRY;
    if (c->segment_index_bytes > INT32_MAX)
        c->segment_index_bytes = INT32_MAX;
    if (c->index_interval_bytes < 0)
        c->index_interval_bytes = 0;
    if (c->segment_ms < 0)
        c->segment_ms = INT64_MAX;
    if (c->flush_interval_messages < 1)
        c->flush_interval_messages = 1;
    if (c->file_delete_delay_ms < 0)
        c->file_delete_delay_ms = 0;
}

/* ---- small helpers ---- */

static gr_segment *active(const gr_log *log) { return log->segs[log->nsegs - 1]; }
static int64_t end_offset(const gr_log *log) { return active(log)->next_offset; }

static bool dir_path(const gr_log *log, char *buf, const char *file)
{
    int n = snprintf(buf, PATH_CAP, "%s/%s", log->dir, file);
    return n > 0 && n < PATH_CAP;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The last segment whose base offset <= offset, or 0 if offset is below all. */
static size_t floor_segment(const gr_log *log, int64_t offset)
{
    size_t lo = 0, hi = log->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int find_segment(const gr_log *log, int64_t base)
{
    size_t i = floor_segment(log, base);
    return log->segs[i]->base_offset == base ? (int)i : -1;
}

static int push_segment(gr_log *log, gr_segment *seg)
{
    if (log->nsegs == log->segs_cap) {
        size_t cap = log->segs_cap ? log->segs_cap * 2 : 8;
        gr_segment **n = realloc(log->segs, cap * sizeof *n);
        if (!n)
            return -1;
        log->segs = n;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = seg;
    return 0;
}

static int write_offset_checkpoint(gr_log *log, const char *file, int64_t offset)
{
    char path[PATH_CAP];
    if (!dir_path(log, path, file) ||
        gr_checkpoint_write_offset(path, log->topic, log->partition, offset) != 0) {
        GR_ERROR(SUB, "%s: cannot write %s: %s", log->name, file, strerror(errno));
        return -1;
    }
    return 0;
}

static int checkpoint_recovery_point(gr_log *log)
{
    return write_offset_checkpoint(log, RECOVERY_POINT_FILE, log->recovery_point);
}

static int checkpoint_log_start(gr_log *log)
{
    return write_offset_checkpoint(log, LOG_START_FILE, log->log_start_offset);
}

/* ---- leader epoch cache ---- */

static int checkpoint_epochs(gr_log *log)
{
    char path[PATH_CAP];
    gr_checkpoint_pair *pairs = NULL;
    if (log->nepochs > 0) {
        pairs = calloc(log->nepochs, sizeof *pairs);
        if (!pairs) {
            GR_ERROR(SUB, "%s: out of memory writing %s", log->name, EPOCH_FILE);
            return -1;
        }
    }
    for (size_t i = 0; i < log->nepochs; i++)
        pairs[i] = (gr_checkpoint_pair){log->epochs[i].epoch, log->epochs[i].start_offset};
    int rc = 0;
    if (!dir_path(log, path, EPOCH_FILE) || gr_checkpoint_write_pairs(path, pairs, log->nepochs) != 0) {
        GR_ERROR(SUB, "%s: cannot write %s: %s", log->name, EPOCH_FILE, strerror(errno));
        rc = -1;
    }
    free(pairs);
    return rc;
}

/* Drops entries with start offset >= offset. True if any went. */
static bool epochs_truncate_end(gr_log *log, int64_t offset)
{
    size_t n = log->nepochs;
    while (log->nepochs > 0 && log->epochs[log->nepochs - 1].start_offset >= offset)
        log->nepochs--;
    return n != log->nepochs;
}

/* Entries wholly below offset go; the one straddling it starts at offset. */
static bool epochs_truncate_start(gr_log *log, int64_t offset)
{
    size_t keep_from = 0;
    while (keep_from + 1 < log->nepochs && log->epochs[keep_from + 1].start_offset <= offset)
        keep_from++;
    bool changed = keep_from > 0;
    if (keep_from > 0) {
        memmove(log->epochs, log->epochs + keep_from, (log->nepochs - keep_from) * sizeof *log->epochs);
        log->nepochs -= keep_from;
    }
    if (log->nepochs > 0 && log->epochs[0].start_offset < offset) {
        log->epochs[0].start_offset = offset;
        changed = true;
    }
    return changed;
}

/* Caller holds the mutex. */
static int epoch_assign(gr_log *log, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0)
        return 0;
    if (log->nepochs > 0) {
        gr_log_epoch_entry *last = &log->epochs[log->nepochs - 1];
        if (epoch == last->epoch)
            return 0;
        if (epoch < last->epoch) {
            GR_WARN(SUB, "%s: ignoring leader epoch %" PRId32 " at offset %" PRId64
                         ": older than the latest epoch %" PRId32,
                    log->name, epoch, start_offset, last->epoch);
            return 0;
        }
    }
    epochs_truncate_end(log, start_offset);
    if (log->nepochs == log->epochs_cap) {
        size_t cap = log->epochs_cap ? log->epochs_cap * 2 : 8;
        gr_log_epoch_entry *n = realloc(log->epochs, cap * sizeof *n);
        if (!n)
            return -1;
        log->epochs = n;
        log->epochs_cap = cap;
    }
    log->epochs[log->nepochs++] = (gr_log_epoch_entry){epoch, start_offset};
    GR_INFO(SUB, "%s: leader epoch %" PRId32 " starts at offset %" PRId64, log->name, epoch,
            start_offset);
    return checkpoint_epochs(log);
}

int gr_log_epoch_assign(gr_log *log, int32_t epoch, int64_t start_offset)
{
    pthread_mutex_lock(&log->mu);
    int rc = epoch_assign(log, epoch, start_offset) == 0 ? GR_LOG_OK : GR_LOG_ERR_IO;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int32_t gr_log_latest_epoch(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    int32_t e = log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1;
    pthread_mutex_unlock(&log->mu);
    return e;
}

void gr_log_epochs_end_offset(const gr_log_epoch_entry *epochs, size_t n, int32_t epoch,
                              int64_t log_end, int32_t *out_epoch, int64_t *out_end)
{
    *out_epoch = -1;
    *out_end = -1;
    if (epoch < 0 || n == 0)
        return;
    if (epoch == epochs[n - 1].epoch) {
        *out_epoch = epoch;
        *out_end = log_end;
        return;
    }
    size_t higher = 0;
    while (higher < n && epochs[higher].epoch <= epoch)
        higher++;
    if (higher < n) {
        /* Older than every known epoch: the first one's start, under the
         * epoch asked for, so that a follower truncates somewhere. */
        *out_end = epochs[higher].start_offset;
        *out_epoch = higher == 0 ? epoch : epochs[higher - 1].epoch;
    }
}

void gr_log_epoch_end_offset(gr_log *log, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    pthread_mutex_lock(&log->mu);
    gr_log_epochs_end_offset(log->epochs, log->nepochs, epoch, end_offset(log), out_epoch,
                             out_end);
    pthread_mutex_unlock(&log->mu);
}

size_t gr_log_epochs(gr_log *log, gr_log_epoch_entry *out, size_t max)
{
    pthread_mutex_lock(&log->mu);
    size_t n = log->nepochs;
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = log->epochs[i];
    pthread_mutex_unlock(&log->mu);
    return n;
}

gr_log_epoch_entry *gr_log_epochs_copy(gr_log *log, size_t extra, size_t *n)
{
    pthread_mutex_lock(&log->mu);
    size_t count = log->nepochs;
    gr_log_epoch_entry *e = NULL;
    if (extra <= SIZE_MAX / sizeof *e - count - 1)
        e = malloc((count + extra + 1) * sizeof *e);
    if (e && count)
        memcpy(e, log->epochs, count * sizeof *e);
    pthread_mutex_unlock(&log->mu);
    *n = e ? count : 0;
    return e;
}

/* ---- deletion ---- */

static void unlink_deleted(const char *stem)
{
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s%s%s", stem, exts[i], SFX_DELETED);
        if (unlink(path) != 0 && errno != ENOENT)
            GR_WARN(SUB, "cannot delete %s: %s", path, strerror(errno));
    }
}

/* Renames the segment to *.deleted and schedules the unlink; drops the log's
 * reference (readers may hold more). The caller removes it from segs[]. */
static int retire_segment(gr_log *log, gr_segment *seg, int64_t now_ms)
{
    if (gr_segment_rename(seg, SFX_DELETED) != 0) {
        GR_ERROR(SUB, "%s: cannot rename segment %" PRId64 " for deletion: %s", log->name,
                 seg->base_offset, strerror(errno));
        return -1;
    }
    char *stem = strdup(seg->stem);
    if (stem && log->npending == log->pending_cap) {
        size_t cap = log->pending_cap ? log->pending_cap * 2 : 8;
        pending_delete *n = realloc(log->pending, cap * sizeof *n);
        if (n) {
            log->pending = n;
            log->pending_cap = cap;
        }
    }
    if (!stem || log->npending == log->pending_cap || log->cfg.file_delete_delay_ms == 0) {
        /* Cannot remember it (or no delay wanted): unlink now; open readers
         * keep their descriptors. */
        unlink_deleted(seg->stem);
        free(stem);
    } else {
        log->pending[log->npending++] = (pending_delete){stem, now_ms + log->cfg.file_delete_delay_ms};
    }
    gr_segment_unref(seg);
    return 0;
}

/* Retires segs[0..k). Returns how many were retired. */
static size_t retire_oldest(gr_log *log, size_t k, int64_t now_ms, const char *why)
{
    size_t done = 0;
    while (done < k) {
        gr_segment *seg = log->segs[done];
        int64_t base = seg->base_offset, next = seg->next_offset;
        uint64_t size = seg->size;
        if (retire_segment(log, seg, now_ms) != 0)
            break;
        GR_INFO(SUB, "%s: deleting segment %" PRId64 " (offsets %" PRId64 "-%" PRId64 ", %" PRIu64
                     " bytes): %s",
                log->name, base, base, next - 1, size, why);
        done++;
    }
    memmove(log->segs, log->segs + done, (log->nsegs - done) * sizeof *log->segs);
    log->nsegs -= done;
    return done;
}

static void run_pending(gr_log *log, int64_t now_ms, bool all)
{
    size_t w = 0;
    for (size_t i = 0; i < log->npending; i++) {
        if (all || log->pending[i].due_ms <= now_ms) {
            unlink_deleted(log->pending[i].stem);
            free(log->pending[i].stem);
        } else {
            log->pending[w++] = log->pending[i];
        }
    }
    log->npending = w;
}

/* ---- open ---- */

/* Parses "<20 digits><ext>" exactly. */
static bool parse_segment_name(const char *name, const char *ext, int64_t *base)
{
    if (strlen(name) != 20 + strlen(ext) || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - (name[i] - '0')) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool in_list(const int64_t *v, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Completes a committed swap (a manifest exists) or discards an
 * uncommitted one. *forced and *nforced get the bases whose indexes must be
 * rebuilt (the swapped-in segments). See gr_log_replace_segments. */
static int recover_swap(gr_log *log, int64_t **forced, size_t *nforced)
{
    char path[PATH_CAP], from[PATH_CAP], to[PATH_CAP];
    static const char *const exts[] = {".index", ".timeindex", ".log"};
    *forced = NULL;
    *nforced = 0;
    if (!dir_path(log, path, SWAP_MANIFEST_FILE))
        return -1;
    gr_checkpoint_pair *pairs;
    size_t n;
    int rc = gr_checkpoint_read_pairs(path, &pairs, &n);
    if (rc == GR_CHECKPOINT_CORRUPT || rc == GR_CHECKPOINT_IO) {
        GR_ERROR(SUB, "%s: %s is unreadable: cannot tell whether a segment swap committed",
                 log->name, SWAP_MANIFEST_FILE);
        return -1;
    }
    if (rc == GR_CHECKPOINT_OK) {
        int64_t *news = calloc(n ? n : 1, sizeof *news);
        if (!news) {
            free(pairs);
            return -1;
        }
        size_t nn = 0;
        for (size_t i = 0; i < n; i++)
            if (pairs[i].a == SWAP_NEW)
                news[nn++] = pairs[i].b;
        for (size_t i = 0; i < n; i++) {
            if (pairs[i].a != SWAP_OLD)
                continue;
            int64_t b = pairs[i].b;
            char logp[PATH_CAP], swp[PATH_CAP];
            gr_segment_filename(logp, sizeof logp, log->dir, b, ".log");
            gr_segment_filename(swp, sizeof swp, log->dir, b, ".log" SFX_SWAP);
            /* An old segment still under its name is old unless the new one
             * with the same base was already renamed over it. */
            if (file_exists(logp) && (!in_list(news, nn, b) || file_exists(swp))) {
                for (int e = 0; e < 3; e++) {
                    gr_segment_filename(from, sizeof from, log->dir, b, exts[e]);
                    if (unlink(from) != 0 && errno != ENOENT)
                        GR_WARN(SUB, "%s: cannot delete %s: %s", log->name, from, strerror(errno));
                }
            }
        }
        for (size_t i = 0; i < nn; i++) {
            for (int e = 0; e < 3; e++) {
                char ext[32];
                snprintf(ext, sizeof ext, "%s%s", exts[e], SFX_SWAP);
                if (!gr_segment_filename(to, sizeof to, log->dir, news[i], exts[e]) ||
                    !gr_segment_filename(from, sizeof from, log->dir, news[i], ext))
                    continue;
                if (rename(from, to) != 0 && errno != ENOENT) {
                    GR_ERROR(SUB, "%s: cannot rename %s: %s", log->name, from, strerror(errno));
                    free(news);
                    free(pairs);
                    return -1;
                }
            }
        }
        free(pairs);
        if (fsync_dir(log->dir) != 0 || unlink(path) != 0 || fsync_dir(log->dir) != 0) {
            free(news);
            return -1;
        }
        GR_INFO(SUB, "%s: completed an interrupted segment swap (%zu new segments)", log->name, nn);
        *forced = news;
        *nforced = nn;
    }
    return 0;
}

typedef struct {
    int64_t *bases;
    size_t n, cap;
} base_list;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Removes leftovers (temp files, *.deleted, uncommitted swaps, indexes
 * without a log) and lists the segments' base offsets, sorted. */
static int scan_dir(gr_log *log, base_list *bl)
{
    DIR *d = opendir(log->dir);
    if (!d)
        return -1;
    struct dirent *de;
    char path[PATH_CAP];
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        int64_t base;
        if (ends_with(f, ".tmp") || ends_with(f, SFX_DELETED) || ends_with(f, SFX_CLEANED) ||
            ends_with(f, SFX_SWAP)) {
            if (dir_path(log, path, f) && unlink(path) == 0)
                GR_INFO(SUB, "%s: removed leftover file %s", log->name, f);
        } else if (parse_segment_name(f, ".log", &base)) {
            if (bl->n == bl->cap) {
                size_t cap = bl->cap ? bl->cap * 2 : 16;
                int64_t *nb = realloc(bl->bases, cap * sizeof *nb);
                if (!nb) {
                    closedir(d);
                    errno = ENOMEM;
                    return -1;
                }
                bl->bases = nb;
                bl->cap = cap;
            }
            bl->bases[bl->n++] = base;
        }
    }
    closedir(d);
    if (bl->n > 1)
        qsort(bl->bases, bl->n, sizeof *bl->bases, cmp_i64);
    /* Indexes whose log is gone (a deletion cut short) */
    d = opendir(log->dir);
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        if ((parse_segment_name(de->d_name, ".index", &base) ||
             parse_segment_name(de->d_name, ".timeindex", &base)) &&
            !bsearch(&base, bl->bases, bl->n, sizeof *bl->bases, cmp_i64)) {
            if (dir_path(log, path, de->d_name) && unlink(path) == 0)
                GR_INFO(SUB, "%s: removed orphan index %s", log->name, de->d_name);
        }
    }
    closedir(d);
    return 0;
}

static int read_offset_checkpoint(gr_log *log, const char *file, int64_t *v)
{
    char path[PATH_CAP];
    if (!dir_path(log, path, file))
        return GR_CHECKPOINT_IO;
    int rc = gr_checkpoint_read_offset(path, log->topic, log->partition, v);
    if (rc == GR_CHECKPOINT_CORRUPT)
        GR_WARN(SUB, "%s: %s is corrupt: ignoring it", log->name, file);
    return rc;
}

static void load_epochs(gr_log *log)
{
    char path[PATH_CAP];
    gr_checkpoint_pair *pairs = NULL;
    size_t n = 0;
    if (!dir_path(log, path, EPOCH_FILE))
        return;
    int rc = gr_checkpoint_read_pairs(path, &pairs, &n);
    if (rc == GR_CHECKPOINT_CORRUPT || rc == GR_CHECKPOINT_IO) {
        GR_WARN(SUB, "%s: %s is %s: starting with an empty leader epoch cache", log->name, EPOCH_FILE,
                rc == GR_CHECKPOINT_CORRUPT ? "corrupt" : "unreadable");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].a < 0 || pairs[i].a > INT32_MAX || pairs[i].b < 0 ||
            (log->nepochs > 0 && (pairs[i].a <= log->epochs[log->nepochs - 1].epoch ||
                                  pairs[i].b < log->epochs[log->nepochs - 1].start_offset))) {
            GR_WARN(SUB, "%s: %s has entries out of order: ignoring it", log->name, EPOCH_FILE);
            log->nepochs = 0;
            break;
        }
        if (log->nepochs == log->epochs_cap) {
            size_t cap = log->epochs_cap ? log->epochs_cap * 2 : 8;
            gr_log_epoch_entry *ne = realloc(log->epochs, cap * sizeof *ne);
            if (!ne) {
                log->nepochs = 0;
                break;
            }
            log->epochs = ne;
            log->epochs_cap = cap;
        }
        log->epochs[log->nepochs++] = (gr_log_epoch_entry){(int32_t)pairs[i].a, pairs[i].b};
    }
    free(pairs);
}

static void free_log(gr_log *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        gr_segment_unref(log->segs[i]);
    for (size_t i = 0; i < log->npending; i++)
        free(log->pending[i].stem);
    free(log->pending);
    free(log->segs);
    free(log->epochs);
    free(log->dir);
    free(log->name);
    free(log->topic);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0) {
        char parent[PATH_CAP];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *slash = '\0';
        return fsync_dir(slash ? parent : ".");
    }
    return errno == EEXIST ? 0 : -1;
}

/* Loads every segment. Recovers those that may hold offsets at or above the
 * recovery point when the shutdown was not clean. */
static int load_segments(gr_log *log, const base_list *bl, bool clean, const int64_t *forced,
                         size_t nforced, int64_t now_ms)
{
    size_t ibytes = (size_t)log->cfg.segment_index_bytes;
    for (size_t i = 0; i < bl->n; i++) {
        int64_t base = bl->bases[i];
        bool last = i + 1 == bl->n;
        int64_t upper = last ? INT64_MAX : bl->bases[i + 1];
        gr_segment_open_mode mode = clean ? GR_SEGMENT_TRUST : GR_SEGMENT_CHECK;
        if ((!clean && upper > log->recovery_point) || in_list(forced, nforced, base))
            mode = GR_SEGMENT_RECOVER;
        gr_segment_recovery rec;
        gr_segment *seg = gr_segment_open(log->dir, log->name, base, "", last ? ibytes : 0,
                                          log->cfg.index_interval_bytes, mode, now_ms, &rec);
        if (!seg) {
            GR_ERROR(SUB, "%s: cannot open segment %" PRId64 ": %s", log->name, base, strerror(errno));
            return -1;
        }
        if (log->nsegs > 0 && seg->base_offset < active(log)->next_offset) {
            GR_ERROR(SUB, "%s: segment %" PRId64 " overlaps the previous one (which ends at %" PRId64
                          ")",
                     log->name, base, active(log)->next_offset);
            gr_segment_unref(seg);
            errno = EINVAL;
            return -1;
        }
        if (push_segment(log, seg) != 0) {
            gr_segment_unref(seg);
            errno = ENOMEM;
            return -1;
        }
        if (rec.truncated_bytes > 0 && !last) {
            /* Kafka's rule: what follows a corrupt segment cannot be trusted
             * to be contiguous with it. */
            GR_WARN(SUB, "%s: deleting %zu segments after the corruption in segment %" PRId64,
                    log->name, bl->n - i - 1, base);
            for (size_t j = i + 1; j < bl->n; j++) {
                char path[PATH_CAP];
                static const char *const exts[] = {".log", ".index", ".timeindex"};
                for (int e = 0; e < 3; e++)
                    if (gr_segment_filename(path, sizeof path, log->dir, bl->bases[j], exts[e]))
                        unlink(path);
            }
            break;
        }
    }
    return 0;
}

int gr_log_open(gr_log **out, const char *dir, const char *topic, int32_t partition,
                const gr_log_config *cfg, int64_t now_ms)
{
    *out = NULL;
    gr_log *log = calloc(1, sizeof *log);
    if (!log)
        return GR_LOG_ERR_NOMEM;
    pthread_mutex_init(&log->mu, NULL);
    log->cfg = *cfg;
    sanitize(&log->cfg);
    log->partition = partition;
    log->topic = strdup(topic);
    size_t cap = strlen(dir) + strlen(topic) + 16;
    log->dir = malloc(cap);
    log->name = malloc(strlen(topic) + 16);
    if (!log->topic || !log->dir || !log->name) {
        free_log(log);
        return GR_LOG_ERR_NOMEM;
    }
    snprintf(log->dir, cap, "%s/%s-%" PRId32, dir, topic, partition);
    snprintf(log->name, strlen(topic) + 16, "%s-%" PRId32, topic, partition);
    log->last_flush_ms = now_ms;

    base_list bl = {0};
    int64_t *forced = NULL;
    size_t nforced = 0;
    char path[PATH_CAP];
    int rc = GR_LOG_ERR_IO;
    if (make_dir(log->dir) != 0) {
        GR_ERROR(SUB, "%s: cannot create %s: %s", log->name, log->dir, strerror(errno));
        goto fail;
    }
    if (recover_swap(log, &forced, &nforced) != 0 || scan_dir(log, &bl) != 0) {
        GR_ERROR(SUB, "%s: cannot scan %s: %s", log->name, log->dir, strerror(errno));
        goto fail;
    }

    bool clean = dir_path(log, path, CLEAN_SHUTDOWN_FILE) && file_exists(path);
    if (read_offset_checkpoint(log, RECOVERY_POINT_FILE, &log->recovery_point) != GR_CHECKPOINT_OK) {
        log->recovery_point = 0;
        clean = false; /* without a recovery point, trust nothing */
    }
    int64_t lso = -1;
    if (read_offset_checkpoint(log, LOG_START_FILE, &lso) != GR_CHECKPOINT_OK)
        lso = -1;
    load_epochs(log);

    if (load_segments(log, &bl, clean, forced, nforced, now_ms) != 0)
        goto fail;
    if (log->nsegs == 0) {
        int64_t base = lso > 0 ? lso : 0;
        gr_segment *seg = gr_segment_create(log->dir, log->name, base, "",
                                            (size_t)log->cfg.segment_index_bytes,
                                            log->cfg.index_interval_bytes, now_ms);
        if (!seg || push_segment(log, seg) != 0) {
            GR_ERROR(SUB, "%s: cannot create segment %" PRId64 ": %s", log->name, base,
                     strerror(errno));
            gr_segment_unref(seg);
            goto fail;
        }
    }
    if (active(log)->index_max_bytes == 0 &&
        gr_segment_activate(active(log), (size_t)log->cfg.segment_index_bytes) != 0) {
        GR_ERROR(SUB, "%s: cannot size the active indexes: %s", log->name, strerror(errno));
        goto fail;
    }

    int64_t leo = end_offset(log);
    if (lso < log->segs[0]->base_offset)
        lso = log->segs[0]->base_offset;
    if (lso > leo) {
        GR_WARN(SUB, "%s: log start offset %" PRId64 " beyond the log end offset %" PRId64
                     " after recovery: using the log end offset",
                log->name, lso, leo);
        lso = leo;
    }
    log->log_start_offset = lso;
    if (!clean) {
        /* What recovery validated (and maybe cut) is made durable, so the
         * recovery point can move to the end. */
        for (size_t i = 0; i < log->nsegs; i++) {
            if (gr_segment_flush(log->segs[i]) != 0) {
                GR_ERROR(SUB, "%s: fsync failed after recovery: %s", log->name, strerror(errno));
                goto fail;
            }
        }
    }
    if (fsync_dir(log->dir) != 0)
        goto fail;
    log->recovery_point = leo;
    bool ep_changed = epochs_truncate_end(log, leo);
    ep_changed |= epochs_truncate_start(log, lso);
    if (checkpoint_recovery_point(log) != 0 || checkpoint_log_start(log) != 0 ||
        (ep_changed && checkpoint_epochs(log) != 0))
        goto fail;
    /* Only now may the marker go: from here on a crash is unclean. */
    if (dir_path(log, path, CLEAN_SHUTDOWN_FILE) && unlink(path) == 0 && fsync_dir(log->dir) != 0)
        goto fail;
    GR_INFO(SUB, "%s: opened after %s shutdown: %zu segments, offsets %" PRId64 "-%" PRId64
                 ", latest leader epoch %" PRId32,
            log->name, clean ? "a clean" : "an unclean", log->nsegs, lso, leo,
            log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1);
    free(bl.bases);
    free(forced);
    *out = log;
    return GR_LOG_OK;
fail:
    free(bl.bases);
    free(forced);
    free_log(log);
    return rc;
}

/* ---- flush, roll, close ---- */

static int flush_locked(gr_log *log, int64_t now_ms)
{
    for (size_t i = 0; i < log->nsegs; i++) {
        if (gr_segment_flush(log->segs[i]) != 0) {
            GR_ERROR(SUB, "%s: fsync of segment %" PRId64 " failed: %s", log->name,
                     log->segs[i]->base_offset, strerror(errno));
            return GR_LOG_ERR_IO;
        }
    }
    log->unflushed_messages = 0;
    log->last_flush_ms = now_ms;
    int64_t leo = end_offset(log);
    if (log->recovery_point != leo) {
        log->recovery_point = leo;
        if (checkpoint_recovery_point(log) != 0)
            return GR_LOG_ERR_IO;
    }
    return GR_LOG_OK;
}

int gr_log_flush(gr_log *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int rc = flush_locked(log, now_ms);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Starts a new active segment at base (>= the log end offset). */
static int roll_locked(gr_log *log, int64_t base, int64_t now_ms, const char *why)
{
    gr_segment *old = active(log);
    size_t ibytes = (size_t)log->cfg.segment_index_bytes;
    if (old->size == 0) {
        if (base == old->base_offset)
            return GR_LOG_OK;
        /* An empty active segment cannot hold offsets this far: replace it. */
        gr_segment *seg = gr_segment_create(log->dir, log->name, base, "", ibytes,
                                            log->cfg.index_interval_bytes, now_ms);
        if (!seg) {
            GR_ERROR(SUB, "%s: cannot create segment %" PRId64 ": %s", log->name, base, strerror(errno));
            return GR_LOG_ERR_IO;
        }
        log->segs[log->nsegs - 1] = seg;
        static const char *const exts[] = {".log", ".index", ".timeindex"};
        for (int e = 0; e < 3; e++) {
            char path[PATH_CAP];
            snprintf(path, sizeof path, "%s%s", old->stem, exts[e]);
            unlink(path);
        }
        gr_segment_unref(old);
        return fsync_dir(log->dir) == 0 ? GR_LOG_OK : GR_LOG_ERR_IO;
    }
    if (gr_segment_seal(old) != 0) {
        GR_ERROR(SUB, "%s: cannot seal segment %" PRId64 ": %s", log->name, old->base_offset,
                 strerror(errno));
        gr_segment_activate(old, ibytes);
        return GR_LOG_ERR_IO;
    }
    gr_segment *seg = gr_segment_create(log->dir, log->name, base, "", ibytes,
                                        log->cfg.index_interval_bytes, now_ms);
    if (!seg || push_segment(log, seg) != 0) {
        GR_ERROR(SUB, "%s: cannot create segment %" PRId64 ": %s", log->name, base,
                 seg ? "out of memory" : strerror(errno));
        gr_segment_unref(seg);
        gr_segment_activate(old, ibytes);
        return GR_LOG_ERR_IO;
    }
    if (fsync_dir(log->dir) != 0) {
        GR_ERROR(SUB, "%s: cannot fsync %s: %s", log->name, log->dir, strerror(errno));
        return GR_LOG_ERR_IO;
    }
    GR_INFO(SUB, "%s: rolled segment %" PRId64 " (%" PRIu64 " bytes, offsets up to %" PRId64
                 ") for %s; new segment %" PRId64,
            log->name, old->base_offset, old->size, old->next_offset - 1, why, base);
    /* Everything before the new segment is fsynced (earlier segments were at
     * their rolls), unless an older segment is still dirty. */
    int64_t rp = old->next_offset;
    for (size_t i = 0; i + 1 < log->nsegs; i++)
        if (log->segs[i]->dirty && log->segs[i]->base_offset < rp)
            rp = log->segs[i]->base_offset;
    if (rp > log->recovery_point) {
        log->recovery_point = rp;
        if (checkpoint_recovery_point(log) != 0)
            return GR_LOG_ERR_IO;
    }
    return GR_LOG_OK;
}

int gr_log_roll(gr_log *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int rc = roll_locked(log, end_offset(log), now_ms, "request");
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_tick(gr_log *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int rc = GR_LOG_OK;
    if (log->unflushed_messages > 0 && log->cfg.flush_interval_ms != INT64_MAX &&
        now_ms - log->last_flush_ms >= log->cfg.flush_interval_ms)
        rc = flush_locked(log, now_ms);
    run_pending(log, now_ms, false);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_close(gr_log *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int rc = flush_locked(log, now_ms);
    if (rc == GR_LOG_OK && gr_segment_seal(active(log)) != 0) {
        GR_ERROR(SUB, "%s: cannot trim the active segment: %s", log->name, strerror(errno));
        rc = GR_LOG_ERR_IO;
    }
    char path[PATH_CAP];
    if (rc == GR_LOG_OK &&
        (!dir_path(log, path, CLEAN_SHUTDOWN_FILE) || gr_write_file_atomic(path, "", 0) != 0)) {
        GR_ERROR(SUB, "%s: cannot write the clean shutdown marker: %s", log->name, strerror(errno));
        rc = GR_LOG_ERR_IO;
    }
    run_pending(log, now_ms, true);
    if (rc == GR_LOG_OK)
        GR_INFO(SUB, "%s: closed cleanly at offset %" PRId64, log->name, end_offset(log));
    pthread_mutex_unlock(&log->mu);
    free_log(log);
    return rc;
}

void gr_log_abandon(gr_log *log) { free_log(log); }

void gr_log_set_config(gr_log *log, const gr_log_config *cfg)
{
    pthread_mutex_lock(&log->mu);
    gr_log_config c = *cfg;
    sanitize(&c);
    bool index_changed = c.segment_index_bytes != log->cfg.segment_index_bytes;
    log->cfg = c;
    for (size_t i = 0; i < log->nsegs; i++)
        log->segs[i]->index_interval = c.index_interval_bytes;
    /* The active segment's preallocation follows at once unless it already
     * holds more entries than the new size allows; then the roll rule sees
     * a full index and rolls. */
    if (index_changed && gr_segment_activate(active(log), (size_t)c.segment_index_bytes) != 0)
        GR_WARN(SUB, "%s: cannot resize the active indexes: %s", log->name, strerror(errno));
    pthread_mutex_unlock(&log->mu);
}

/* ---- append ---- */

typedef struct {
    int64_t first, last, max_ts, messages;
} batch_walk;

/* Validates every batch in buf. Leader mode (next < 0): any offsets.
 * Replica mode: offsets increasing from next. */
static int walk_batches(gr_log *log, const uint8_t *buf, size_t len, bool deep,
                        size_t max_uncompressed, int64_t next, batch_walk *w,
                        gr_log_append_result *res)
{
    w->first = -1;
    w->last = -1;
    w->max_ts = -1;
    w->messages = 0;
    int32_t i = 0;
    for (size_t at = 0; at < len; i++) {
        gr_batch_header h;
        gr_batch_result br = gr_batch_parse_header(buf + at, len - at, &h);
        if (br == GR_BATCH_OK)
            br = gr_batch_validate(buf + at, gr_batch_size(&h), deep, max_uncompressed, &h);
        if (br == GR_BATCH_OK && h.last_offset_delta < 0)
            br = GR_BATCH_BAD_COUNT; /* offsets would run backwards */
        if (br != GR_BATCH_OK) {
            res->batch_result = br;
            res->bad_batch = i;
            GR_WARN(SUB, "%s: refusing batch %" PRId32 " of an append: %s", log->name, i,
                    gr_batch_result_str(br));
            return GR_LOG_ERR_CORRUPT;
        }
        if (next >= 0) {
            if (h.base_offset < next) {
                res->bad_batch = i;
                GR_WARN(SUB, "%s: replicated batch at offset %" PRId64 " below the expected %" PRId64,
                        log->name, h.base_offset, next);
                return GR_LOG_ERR_BAD_OFFSET;
            }
            next = gr_batch_last_offset(&h) + 1;
        }
        if (w->first < 0)
            w->first = h.base_offset;
        w->last = gr_batch_last_offset(&h);
        if (h.max_timestamp > w->max_ts)
            w->max_ts = h.max_timestamp;
        w->messages += (int64_t)h.last_offset_delta + 1;
        at += gr_batch_size(&h);
    }
    if (w->first < 0)
        return GR_LOG_ERR_INVALID;
    return GR_LOG_OK;
}

/* Rolls if needed, writes, counts towards the flush policy. */
static int write_locked(gr_log *log, const uint8_t *buf, size_t len, const batch_walk *w,
                        int64_t now_ms)
{
    if ((int64_t)len > log->cfg.segment_bytes)
        return GR_LOG_ERR_TOO_LARGE;
    const char *why = gr_segment_should_roll(active(log), len, w->last, w->max_ts,
                                             log->cfg.segment_bytes, log->cfg.segment_ms, now_ms);
    if (why) {
        int rc = roll_locked(log, w->first, now_ms, why);
        if (rc != GR_LOG_OK)
            return rc;
    }
    if (gr_segment_append(active(log), buf, len) != 0) {
        GR_ERROR(SUB, "%s: append of %zu bytes at offset %" PRId64 " failed: %s", log->name, len,
                 w->first, strerror(errno));
        return GR_LOG_ERR_IO;
    }
    log->unflushed_messages += w->messages;
    if (log->unflushed_messages >= log->cfg.flush_interval_messages)
        return flush_locked(log, now_ms);
    return GR_LOG_OK;
}

static void init_result(gr_log_append_result *res)
{
    res->first_offset = -1;
    res->last_offset = -1;
    res->log_append_time = -1;
    res->max_timestamp = -1;
    res->batch_result = GR_BATCH_OK;
    res->bad_batch = -1;
}

int gr_log_append(gr_log *log, uint8_t *batches, size_t len, int32_t leader_epoch, unsigned flags,
                  size_t max_uncompressed, int64_t now_ms, gr_log_append_result *res)
{
    init_result(res);
    batch_walk w;
    /* Validation needs no lock: the buffer is the caller's and walk_batches
     * reads nothing of the log but its name. */
    int rc = walk_batches(log, batches, len, flags & GR_LOG_APPEND_DEEP, max_uncompressed, -1, &w, res);
    if (rc != GR_LOG_OK)
        return rc;
    pthread_mutex_lock(&log->mu);
    int64_t offset = end_offset(log);
    bool lat = log->cfg.log_append_time;
    for (size_t at = 0; at < len;) {
        gr_batch_header h;
        gr_batch_parse_header(batches + at, len - at, &h);
        size_t sz = gr_batch_size(&h);
        gr_batch_set_base_offset(batches + at, offset);
        gr_batch_set_leader_epoch(batches + at, leader_epoch);
        if (lat)
            gr_batch_set_log_append_time(batches + at, sz, now_ms);
        offset += (int64_t)h.last_offset_delta + 1;
        at += sz;
    }
    w.first = end_offset(log);
    w.last = offset - 1;
    if (lat)
        w.max_ts = now_ms;
    rc = write_locked(log, batches, len, &w, now_ms);
    if (rc == GR_LOG_OK && epoch_assign(log, leader_epoch, w.first) != 0)
        rc = GR_LOG_ERR_IO;
    if (rc == GR_LOG_OK) {
        res->first_offset = w.first;
        res->last_offset = w.last;
        res->log_append_time = lat ? now_ms : -1;
        res->max_timestamp = w.max_ts;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_append_replica(gr_log *log, const uint8_t *batches, size_t len, int64_t now_ms,
                          gr_log_append_result *res)
{
    init_result(res);
    pthread_mutex_lock(&log->mu);
    batch_walk w;
    int rc = walk_batches(log, batches, len, false, 0, end_offset(log), &w, res);
    if (rc == GR_LOG_OK)
        rc = write_locked(log, batches, len, &w, now_ms);
    for (size_t at = 0; rc == GR_LOG_OK && at < len;) {
        gr_batch_header h;
        gr_batch_parse_header(batches + at, len - at, &h);
        if (h.partition_leader_epoch >= 0 &&
            (log->nepochs == 0 || h.partition_leader_epoch > log->epochs[log->nepochs - 1].epoch) &&
            epoch_assign(log, h.partition_leader_epoch, h.base_offset) != 0)
            rc = GR_LOG_ERR_IO;
        at += gr_batch_size(&h);
    }
    if (rc == GR_LOG_OK) {
        res->first_offset = w.first;
        res->last_offset = w.last;
        res->max_timestamp = w.max_ts;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* ---- read ---- */

int gr_log_read(gr_log *log, int64_t offset, size_t max_bytes, int64_t max_offset,
                gr_log_read_result *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->first_offset = -1;
    pthread_mutex_lock(&log->mu);
    int rc = GR_LOG_OK;
    int64_t leo = end_offset(log);
    if (offset < log->log_start_offset || offset > leo) {
        rc = GR_LOG_ERR_OUT_OF_RANGE;
        goto out;
    }
    if (offset == leo || offset >= max_offset)
        goto out;
    for (size_t i = floor_segment(log, offset); i < log->nsegs; i++) {
        gr_segment *seg = log->segs[i];
        uint64_t pos, len;
        gr_batch_header h;
        int r = gr_segment_find(seg, offset, &pos, &h);
        if (r < 0) {
            rc = GR_LOG_ERR_IO;
            goto out;
        }
        if (r > 0)
            continue; /* a gap: the next segment holds the next offsets */
        if (h.base_offset >= max_offset)
            goto out;
        if (gr_segment_range(seg, pos, max_bytes, max_offset, &len) != 0) {
            rc = GR_LOG_ERR_IO;
            goto out;
        }
        out->seg = gr_segment_ref(seg);
        out->fd = seg->fd;
        out->position = (int64_t)pos;
        out->length = (size_t)len;
        out->first_offset = h.base_offset;
        break;
    }
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

void gr_log_read_release(gr_log_read_result *r)
{
    if (r->seg)
        gr_segment_unref(r->seg);
    r->seg = NULL;
    r->fd = -1;
    r->length = 0;
}

/* ---- queries ---- */

int64_t gr_log_start_offset(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t v = log->log_start_offset;
    pthread_mutex_unlock(&log->mu);
    return v;
}

int64_t gr_log_end_offset(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t v = end_offset(log);
    pthread_mutex_unlock(&log->mu);
    return v;
}

int64_t gr_log_recovery_point(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t v = log->recovery_point;
    pthread_mutex_unlock(&log->mu);
    return v;
}

uint64_t gr_log_size_bytes(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t v = 0;
    for (size_t i = 0; i < log->nsegs; i++)
        v += log->segs[i]->size;
    pthread_mutex_unlock(&log->mu);
    return v;
}

size_t gr_log_segment_count(gr_log *log)
{
    pthread_mutex_lock(&log->mu);
    size_t v = log->nsegs;
    pthread_mutex_unlock(&log->mu);
    return v;
}

const char *gr_log_name(const gr_log *log) { return log->name; }

int gr_log_offset_for_timestamp(gr_log *log, int64_t ts, int64_t *offset, int64_t *timestamp)
{
    pthread_mutex_lock(&log->mu);
    int rc = 1;
    *offset = -1;
    *timestamp = -1;
    if (ts == GR_LOG_TS_EARLIEST) {
        *offset = log->log_start_offset;
        rc = GR_LOG_OK;
    } else if (ts == GR_LOG_TS_LATEST) {
        *offset = end_offset(log);
        rc = GR_LOG_OK;
    } else if (ts == GR_LOG_TS_MAX_TIMESTAMP) {
        gr_segment *best = NULL;
        for (size_t i = 0; i < log->nsegs; i++)
            if (log->segs[i]->size > 0 && (!best || log->segs[i]->max_timestamp > best->max_timestamp))
                best = log->segs[i];
        if (best) {
            int r = gr_segment_find_max_timestamp(best, offset, timestamp);
            rc = r < 0 ? GR_LOG_ERR_IO : r;
        }
    } else if (ts >= 0) {
        for (size_t i = floor_segment(log, log->log_start_offset); i < log->nsegs; i++) {
            int r = gr_segment_find_timestamp(log->segs[i], ts, log->log_start_offset, offset,
                                              timestamp);
            if (r <= 0) {
                rc = r < 0 ? GR_LOG_ERR_IO : GR_LOG_OK;
                break;
            }
        }
    } else {
        rc = GR_LOG_ERR_INVALID;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* ---- retention, delete records, truncation ---- */

/* Sets the log start offset (checkpointed first), then retires the
 * inactive segments wholly below it. */
static int advance_log_start(gr_log *log, int64_t lso, int64_t now_ms, const char *why)
{
    if (lso > log->log_start_offset) {
        log->log_start_offset = lso;
        if (checkpoint_log_start(log) != 0)
            return GR_LOG_ERR_IO;
        if (epochs_truncate_start(log, lso) && checkpoint_epochs(log) != 0)
            return GR_LOG_ERR_IO;
    }
    size_t k = 0;
    while (k + 1 < log->nsegs && log->segs[k + 1]->base_offset <= log->log_start_offset)
        k++;
    if (k > 0 && retire_oldest(log, k, now_ms, why) != k)
        return GR_LOG_ERR_IO;
    return GR_LOG_OK;
}

int gr_log_retention(gr_log *log, int64_t now_ms, int64_t max_offset, int *deleted)
{
    pthread_mutex_lock(&log->mu);
    size_t k = 0;
    const char *why = NULL;
    /* Candidates: inactive, and wholly below max_offset. */
    size_t limit = 0;
    while (limit + 1 < log->nsegs && log->segs[limit + 1]->base_offset <= max_offset)
        limit++;
    if (log->cfg.retention_ms >= 0) {
        while (k < limit && now_ms - log->segs[k]->max_timestamp > log->cfg.retention_ms)
            k++;
        if (k > 0)
            why = "retention.ms";
    }
    if (log->cfg.retention_bytes >= 0) {
        int64_t size = 0;
        for (size_t i = k; i < log->nsegs; i++)
            size += (int64_t)log->segs[i]->size;
        int64_t diff = size - log->cfg.retention_bytes;
        size_t k0 = k;
        while (k < limit && diff - (int64_t)log->segs[k]->size >= 0) {
            diff -= (int64_t)log->segs[k]->size;
            k++;
        }
        if (k > k0)
            why = why ? "retention.ms and retention.bytes" : "retention.bytes";
    }
    int rc = GR_LOG_OK;
    if (k > 0) {
        int64_t lso = log->segs[k]->base_offset;
        rc = advance_log_start(log, lso, now_ms, why);
    }
    if (deleted)
        *deleted = (int)k;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_delete_records(gr_log *log, int64_t offset, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int rc = GR_LOG_OK;
    if (offset < 0 || offset > end_offset(log))
        rc = GR_LOG_ERR_OUT_OF_RANGE;
    else if (offset > log->log_start_offset) {
        GR_INFO(SUB, "%s: log start offset %" PRId64 " -> %" PRId64 " (delete records)", log->name,
                log->log_start_offset, offset);
        rc = advance_log_start(log, offset, now_ms, "delete records");
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Removes every offset >= offset; with `reset`, removes everything and
 * restarts the log empty at offset (which may lie beyond the end). */
static int truncate_locked(gr_log *log, int64_t offset, int64_t now_ms, bool reset)
{
    int rc = GR_LOG_OK;
    int64_t leo = end_offset(log);
    if (offset >= leo && !reset)
        goto out;
    GR_INFO(SUB, "%s: %s offset %" PRId64 " (log end offset %" PRId64 ")", log->name,
            reset ? "restarting empty at" : "truncating to", offset, leo);
    /* k: the first segment that goes entirely. */
    size_t k = log->nsegs;
    while (k > 0 && log->segs[k - 1]->base_offset >= offset)
        k--;
    bool full = reset || offset < log->log_start_offset || k == 0;
    if (full)
        k = 0;
    /* Retire from the end so that the survivors stay a prefix. */
    while (log->nsegs > k) {
        gr_segment *seg = log->segs[log->nsegs - 1];
        if (retire_segment(log, seg, now_ms) != 0) {
            rc = GR_LOG_ERR_IO;
            goto out;
        }
        log->nsegs--;
    }
    size_t ibytes = (size_t)log->cfg.segment_index_bytes;
    if (log->nsegs == 0) {
        gr_segment *seg = gr_segment_create(log->dir, log->name, offset, "", ibytes,
                                            log->cfg.index_interval_bytes, now_ms);
        if (!seg || push_segment(log, seg) != 0) {
            GR_ERROR(SUB, "%s: cannot create segment %" PRId64 ": %s", log->name, offset,
                     strerror(errno));
            gr_segment_unref(seg);
            rc = GR_LOG_ERR_IO; /* the log is unusable: the caller takes it offline */
            goto out;
        }
        log->log_start_offset = offset;
        if (checkpoint_log_start(log) != 0)
            rc = GR_LOG_ERR_IO;
    } else {
        gr_segment *seg = active(log);
        if (gr_segment_truncate_to(seg, offset) != 0 ||
            (seg->index_max_bytes == 0 && gr_segment_activate(seg, ibytes) != 0)) {
            GR_ERROR(SUB, "%s: truncation of segment %" PRId64 " failed: %s", log->name,
                     seg->base_offset, strerror(errno));
            rc = GR_LOG_ERR_IO;
            goto out;
        }
    }
    if (fsync_dir(log->dir) != 0)
        rc = GR_LOG_ERR_IO;
    leo = end_offset(log);
    if (log->recovery_point > leo) {
        log->recovery_point = leo;
        if (checkpoint_recovery_point(log) != 0)
            rc = GR_LOG_ERR_IO;
    }
    if (full) {
        log->nepochs = 0;
        if (checkpoint_epochs(log) != 0)
            rc = GR_LOG_ERR_IO;
    } else if (epochs_truncate_end(log, leo) && checkpoint_epochs(log) != 0) {
        rc = GR_LOG_ERR_IO;
    }
out:
    return rc;
}

int gr_log_truncate_to(gr_log *log, int64_t offset, int64_t now_ms)
{
    if (offset < 0)
        return GR_LOG_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    int rc = truncate_locked(log, offset, now_ms, false);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_reset(gr_log *log, int64_t offset, int64_t now_ms)
{
    if (offset < 0)
        return GR_LOG_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    int rc = truncate_locked(log, offset, now_ms, true);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* ---- the cleaner's interface ---- */

size_t gr_log_segments(gr_log *log, gr_log_segment_info *out, size_t max)
{
    pthread_mutex_lock(&log->mu);
    size_t n = log->nsegs;
    for (size_t i = 0; i < n && i < max; i++) {
        gr_segment *s = log->segs[i];
        out[i] = (gr_log_segment_info){s->base_offset, s->next_offset, s->size, s->max_timestamp,
                                       i + 1 == n};
    }
    pthread_mutex_unlock(&log->mu);
    return n;
}

int gr_log_read_segment(gr_log *log, int64_t base_offset, gr_log_read_result *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->first_offset = -1;
    pthread_mutex_lock(&log->mu);
    int i = find_segment(log, base_offset);
    int rc = GR_LOG_ERR_INVALID;
    if (i >= 0) {
        gr_segment *seg = log->segs[i];
        out->seg = gr_segment_ref(seg);
        out->fd = seg->fd;
        out->position = 0;
        out->length = (size_t)seg->size;
        out->first_offset = seg->base_offset;
        rc = GR_LOG_OK;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

gr_segment *gr_log_cleaned_create(gr_log *log, int64_t base_offset, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    size_t ibytes = (size_t)log->cfg.segment_index_bytes;
    int32_t interval = log->cfg.index_interval_bytes;
    pthread_mutex_unlock(&log->mu);
    gr_segment *seg = gr_segment_create(log->dir, log->name, base_offset, SFX_CLEANED, ibytes,
                                        interval, now_ms);
    if (!seg)
        GR_ERROR(SUB, "%s: cannot create cleaned segment %" PRId64 ": %s", log->name, base_offset,
                 strerror(errno));
    return seg;
}

int gr_log_cleaned_append(gr_log *log, gr_segment *seg, const uint8_t *batches, size_t len)
{
    if (gr_segment_append(seg, batches, len) != 0) {
        GR_ERROR(SUB, "%s: append to cleaned segment %" PRId64 " failed: %s", log->name,
                 seg->base_offset, strerror(errno));
        return errno == EINVAL ? GR_LOG_ERR_BAD_OFFSET : GR_LOG_ERR_IO;
    }
    return GR_LOG_OK;
}

static void discard_files(gr_segment *seg)
{
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    for (int e = 0; e < 3; e++) {
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s%s%s", seg->stem, exts[e], seg->suffix);
        unlink(path);
    }
}

void gr_log_cleaned_discard(gr_log *log, gr_segment *seg)
{
    (void)log;
    if (!seg)
        return;
    discard_files(seg);
    gr_segment_unref(seg);
}

int gr_log_replace_segments_steps(gr_log *log, int64_t old_first, int64_t old_last,
                                  gr_segment **news, size_t n_new, int64_t now_ms, int steps)
{
    pthread_mutex_lock(&log->mu);
    int rc = GR_LOG_ERR_INVALID;
    gr_checkpoint_pair *pairs = NULL;
    int i0 = find_segment(log, old_first), i1 = find_segment(log, old_last);
    size_t n_old = i0 >= 0 && i1 >= i0 ? (size_t)(i1 - i0 + 1) : 0;
    /* The run must be inactive; the new segments ascending, inside the
     * run's offsets and in the .cleaned state. */
    bool ok = n_old > 0 && (size_t)i1 + 1 < log->nsegs;
    for (size_t j = 0; ok && j < n_new; j++) {
        gr_segment *s = news[j];
        ok = strcmp(s->suffix, SFX_CLEANED) == 0 && s->base_offset >= old_first &&
             (j == 0 || s->base_offset >= news[j - 1]->next_offset) &&
             s->next_offset <= log->segs[i1 + 1]->base_offset;
    }
    if (!ok) {
        GR_ERROR(SUB, "%s: refusing a segment replacement of %" PRId64 "-%" PRId64
                      ": not a valid run or replacement",
                 log->name, old_first, old_last);
        goto discard;
    }
    char manifest[PATH_CAP];
    if (!dir_path(log, manifest, SWAP_MANIFEST_FILE))
        goto discard;
    rc = GR_LOG_ERR_IO;
    /* 1: the new segments are durable and renamed *.swap. */
    for (size_t j = 0; j < n_new; j++) {
        if (gr_segment_seal(news[j]) != 0 || gr_segment_rename(news[j], SFX_SWAP) != 0) {
            GR_ERROR(SUB, "%s: cannot prepare cleaned segment %" PRId64 ": %s", log->name,
                     news[j]->base_offset, strerror(errno));
            goto discard;
        }
    }
    if (fsync_dir(log->dir) != 0)
        goto discard;
    if (steps <= 1)
        goto crash;
    /* 2: commit. */
    pairs = calloc(n_old + n_new, sizeof *pairs);
    if (!pairs) {
        rc = GR_LOG_ERR_NOMEM;
        goto discard;
    }
    for (size_t j = 0; j < n_old; j++)
        pairs[j] = (gr_checkpoint_pair){SWAP_OLD, log->segs[(size_t)i0 + j]->base_offset};
    for (size_t j = 0; j < n_new; j++)
        pairs[n_old + j] = (gr_checkpoint_pair){SWAP_NEW, news[j]->base_offset};
    if (gr_checkpoint_write_pairs(manifest, pairs, n_old + n_new) != 0) {
        GR_ERROR(SUB, "%s: cannot write %s: %s", log->name, SWAP_MANIFEST_FILE, strerror(errno));
        goto discard;
    }
    if (steps <= 2)
        goto crash;
    /* 3: from here on the swap is committed; failures leave it for the next
     * open to complete, and the log refuses further work on disk errors. */
    for (size_t j = 0; j < n_old; j++) {
        gr_segment *s = log->segs[(size_t)i0 + j];
        if (retire_segment(log, s, now_ms) != 0)
            goto committed_failure;
        log->segs[(size_t)i0 + j] = NULL;
    }
    if (steps <= 3)
        goto crash;
    /* 4 */
    for (size_t j = 0; j < n_new; j++)
        if (gr_segment_rename(news[j], "") != 0)
            goto committed_failure;
    if (fsync_dir(log->dir) != 0)
        goto committed_failure;
    if (steps <= 4)
        goto crash;
    /* 5 */
    if (unlink(manifest) != 0 || fsync_dir(log->dir) != 0)
        goto committed_failure;
    /* The in-memory list: segs[i0..i1] -> news. */
    size_t n = log->nsegs - n_old + n_new;
    if (n > log->segs_cap) {
        gr_segment **ns = realloc(log->segs, n * sizeof *ns);
        if (!ns)
            goto committed_failure;
        log->segs = ns;
        log->segs_cap = n;
    }
    memmove(log->segs + i0 + n_new, log->segs + i1 + 1, (log->nsegs - (size_t)i1 - 1) * sizeof *log->segs);
    memcpy(log->segs + i0, news, n_new * sizeof *news);
    log->nsegs = n;
    if (log->log_start_offset < log->segs[0]->base_offset && i0 == 0) {
        /* The cleaner emptied the head: nothing below the new first segment. */
        log->log_start_offset = log->segs[0]->base_offset;
        checkpoint_log_start(log);
    }
    GR_INFO(SUB, "%s: replaced %zu segments (%" PRId64 "-%" PRId64 ") with %zu cleaned ones",
            log->name, n_old, old_first, old_last, n_new);
    free(pairs);
    pthread_mutex_unlock(&log->mu);
    return GR_LOG_OK;

committed_failure:
    GR_ERROR(SUB, "%s: segment swap committed but not completed (%s): reopen the log to finish it",
             log->name, strerror(errno));
    /* Leave the in-memory list unchanged but drop retired entries' slots. */
    {
        size_t w = 0;
        for (size_t j = 0; j < log->nsegs; j++)
            if (log->segs[j])
                log->segs[w++] = log->segs[j];
        log->nsegs = w;
    }
    for (size_t j = 0; j < n_new; j++)
        gr_segment_unref(news[j]);
    free(pairs);
    pthread_mutex_unlock(&log->mu);
    return GR_LOG_ERR_IO;
crash:
    /* As if the process died here: memory goes, files stay. */
    for (size_t j = 0; j < n_new; j++)
        gr_segment_unref(news[j]);
    free(pairs);
    pthread_mutex_unlock(&log->mu);
    return GR_LOG_OK;
discard:
    for (size_t j = 0; j < n_new; j++)
        gr_log_cleaned_discard(log, news[j]);
    free(pairs);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int gr_log_replace_segments(gr_log *log, int64_t old_first, int64_t old_last, gr_segment **news,
                            size_t n_new, int64_t now_ms)
{
    return gr_log_replace_segments_steps(log, old_first, old_last, news, n_new, now_ms, 5);
}
