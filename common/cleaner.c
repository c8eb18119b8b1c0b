/*
 * cleaner.c - log compaction, after Kafka's LogCleaner, simplified where
 * that costs nothing a client can see.
 *
 * A pass over one log (gr_cleaner_clean):
 *
 *  1. Plan. The cleanable range is the run of inactive segments from the
 *     first one up to (not including) the active segment or, when
 *     min.compaction.lag.ms > 0, the first segment at or after the first
 *     dirty offset whose max timestamp is newer than now - lag. The first
 *     dirty offset comes from cleaner-offset-checkpoint (the log start
 *     offset when there is none, or when it is out of range). Segments that
 *     end at or before it are the clean part; the rest of the range is
 *     dirty. dirty ratio = dirty bytes / cleanable bytes; the pass runs when
 *     it exceeds min.cleanable.dirty.ratio (strictly, as Kafka compares), or
 *     when max.compaction.lag.ms forces it: the first batch of the first
 *     dirty segment is older than now - max lag.
 *
 *  2. Key map. The dirty section is read and every keyed record's key is
 *     mapped to its latest offset. Keys are stored whole (no hash
 *     collisions can make two keys one); keys plus table are bounded by
 *     log.cleaner.dedupe.buffer.size. When the map fills, it stops at the
 *     batch that did not fit and the pass cleans only below that batch's
 *     base offset (the next pass continues from there), as Kafka does. The
 *     first batch of a pass is always taken whole, so every pass makes
 *     progress even with a tiny buffer. Control batches add no keys.
 *
 *  3. Rewrite. Every cleanable segment below the map's end is rewritten, in
 *     groups of consecutive segments whose total size fits segment.bytes
 *     (and whose offsets fit one segment's 2^31 range), like Kafka's
 *     groupSegmentsBySize, so segments emptied by compaction merge. Per
 *     record: kept if it lies at or past the map's end, or has no key
 *     (Kafka refuses keyless records on compacted topics at produce; if
 *     any exist they are kept), or its offset is at least the map's offset
 *     for its key (or the key is not in the map); then a tombstone (null
 *     value) is dropped if its segment's max timestamp is older than
 *     now - delete.retention.ms. Control batches are kept as they are.
 *       A batch whose records are all kept is copied byte for byte. One that
 *     lost some is rebuilt with gr_batch_build: same base offset, partition
 *     leader epoch, attributes and codec (compressed batches are
 *     recompressed with their own codec), producer id, epoch and base
 *     sequence, and each kept record's offset delta, timestamp, key, value
 *     and headers. The rebuilt header keeps the original last offset delta
 *     (so the batch's last offset and its producer's last sequence, base
 *     sequence + last offset delta, are unchanged: Kafka keeps them the
 *     same way for the empty batches below) and, for LogAppendTime, the
 *     original max timestamp; base and max timestamp otherwise follow the
 *     kept records, as Kafka's rebuilt batches do.
 *       A batch left with no records is dropped, unless it is the last
 *     batch of its producer id in the whole log: then it stays as an empty
 *     batch (record count 0, header only, codec none, last offset delta
 *     and both timestamps from the original), exactly what Kafka writes, so
 *     that producer state rebuilt from the log still knows the producer's
 *     epoch and last sequence. Keeping its last record instead would be
 *     wrong: that record may be a value superseded by a tombstone, and once
 *     the tombstone expires the stale value would come back as the key's
 *     latest. Empty batches pass the checks recovery and followers make
 *     (header and CRC). The last batch of each producer is found by a walk
 *     of every batch header in the log (the log keeps no producer state
 *     yet); a batch appended meanwhile can only make that answer
 *     conservative.
 *       Offsets never change, so compaction leaves gaps. A group whose only
 *     segment came out byte for byte identical is not swapped. Each group
 *     goes into a new segment (gr_log_cleaned_create/append) that
 *     gr_log_replace_segments swaps in crash-safely: after a crash the log
 *     holds either the old run or the new one.
 *
 *  4. Checkpoint. After every group is swapped, the map's end is written to
 *     cleaner-offset-checkpoint. A crash before that only makes the next
 *     pass redo work: cleaning is idempotent.
 *
 * Tombstone horizon: Kafka measures delete.retention.ms from when the
 * tombstone's segment was last cleaned (the file's modification time, or in
 * newer versions a delete horizon stamped into the batch). Gregor uses the
 * segment's largest record timestamp, which is known without touching the
 * file system and is stable across copies of the log on other replicas.
 *
 * Transactions: Gregor has no transaction coordinator yet, so no aborted
 * records exist; transactional batches are compacted like others and
 * control batches are kept. When transactions arrive, aborted records must
 * be dropped (and kept out of the key map) using the log's aborted
 * transaction index, and cleaning must stop at the last stable offset.
 *
 * Concurrency: the pass holds no lock of its own on the log. It reads
 * inactive segments through references (gr_log_read_segment), which the
 * log hands out under its mutex briefly; appends go to the active segment,
 * which the cleaner never touches; only gr_log_replace_segments takes the
 * log's mutex for the swap itself. Reads of old segments in flight keep
 * their descriptors until released.
 *
 * The thread (gr_cleaner) keeps a list of logs. Each round it measures every
 * log's dirty ratio, cleans the dirtiest one that qualifies, and when none
 * does sleeps log.cleaner.backoff.ms on a condition variable that stop and
 * add signal. A pass in progress checks an abort flag between batches, so
 * stop and remove never wait for a whole pass.
 */
#include "common/cleaner.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/checkpoint.h"
#include "common/crc32c.h"
#include "common/logging.h"
#include "common/segment.h"

#define SUB "cleaner"
#define READ_CHUNK (1u << 20)  /* bytes read from a segment at a time */
#define WRITE_CHUNK (1u << 20) /* cleaned bytes gathered before one append */
#define MAP_MIN_SLOTS 16
#define HDR_OFF_LAST_OFFSET_DELTA 23
#define HDR_OFF_BASE_TIMESTAMP 27

void gr_cleaner_config_defaults(gr_cleaner_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->min_cleanable_dirty_ratio = 0.5;
    cfg->min_compaction_lag_ms = 0;
    cfg->max_compaction_lag_ms = INT64_MAX;
    cfg->delete_retention_ms = 86400000;
    cfg->dedupe_buffer_bytes = (size_t)128 << 20;
    cfg->max_uncompressed = GR_SEGMENT_MAX_UNCOMPRESSED;
    cfg->segment_bytes = (int64_t)1 << 30;
    cfg->delete_too = false;
}

/* now - d without overflow (timestamps compare against it). */
static int64_t sub_sat(int64_t now, int64_t d)
{
    if (d < 0)
        return now;
    if (now < 0 ? now < INT64_MIN + d : false)
        return INT64_MIN;
    return now - d;
}

static int64_t add_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

static void put_be(uint8_t *q, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        q[i] = (uint8_t)v;
}

/* ---- the log's segments ---- */

/* A snapshot of the segment list (malloc'd into *out). */
static int snapshot_segments(gr_log *log, gr_log_segment_info **out, size_t *n)
{
    size_t cap = 16;
    for (;;) {
        gr_log_segment_info *segs = malloc(cap * sizeof *segs);
        if (!segs)
            return GR_LOG_ERR_NOMEM;
        size_t have = gr_log_segments(log, segs, cap);
        if (have <= cap) {
            *out = segs;
            *n = have;
            return GR_LOG_OK;
        }
        free(segs);
        cap = have + 8; /* the log may grow meanwhile: try again */
    }
}

/* ---- the checkpoint ---- */

typedef struct {
    char path[4096];
    char topic[256];
    int32_t partition;
} ckpt_loc;

/* The partition directory is the directory of any of its segments (the
 * segment's stem is "<dir>/<base offset>"); the topic and partition come
 * from the log's name "topic-partition". */
static int checkpoint_locate(gr_log *log, int64_t any_base, ckpt_loc *loc)
{
    const char *name = gr_log_name(log);
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) >= sizeof loc->topic)
        return GR_LOG_ERR_INVALID;
    memcpy(loc->topic, name, (size_t)(dash - name));
    loc->topic[dash - name] = '\0';
    char *end;
    long p = strtol(dash + 1, &end, 10);
    if (*end || p < 0 || p > INT32_MAX)
        return GR_LOG_ERR_INVALID;
    loc->partition = (int32_t)p;

    gr_log_read_result rr;
    int rc = gr_log_read_segment(log, any_base, &rr);
    if (rc != GR_LOG_OK)
        return rc;
    const char *stem = rr.seg ? rr.seg->stem : NULL;
    const char *slash = stem ? strrchr(stem, '/') : NULL;
    int w;
    if (slash)
        w = snprintf(loc->path, sizeof loc->path, "%.*s/%s", (int)(slash - stem), stem,
                     GR_CLEANER_CHECKPOINT_FILE);
    else
        w = snprintf(loc->path, sizeof loc->path, "%s", GR_CLEANER_CHECKPOINT_FILE);
    gr_log_read_release(&rr);
    return w > 0 && (size_t)w < sizeof loc->path ? GR_LOG_OK : GR_LOG_ERR_INVALID;
}

/* The checkpointed first dirty offset, or -1 when there is none usable. */
static int64_t checkpoint_read(gr_log *log, const ckpt_loc *loc)
{
    int64_t off = -1;
    int rc = gr_checkpoint_read_offset(loc->path, loc->topic, loc->partition, &off);
    if (rc == GR_CHECKPOINT_OK)
        return off;
    if (rc != GR_CHECKPOINT_ABSENT)
        GR_WARN(SUB, "%s: unreadable %s (%s), cleaning from the log start", gr_log_name(log),
                GR_CLEANER_CHECKPOINT_FILE, rc == GR_CHECKPOINT_CORRUPT ? "corrupt" : "I/O error");
    return -1;
}

/* ---- reading a segment batch by batch ---- */

typedef struct {
    gr_log_read_result rr;
    uint8_t *buf;
    size_t cap, len, pos; /* buf[pos, len) holds file bytes from offset `at` */
    uint64_t at;          /* segment-relative offset of buf[pos] */
    uint64_t filled;      /* segment-relative offset of buf[len] */
    bool open;
} seg_reader;

static int reader_open(gr_log *log, int64_t base, seg_reader *sr, uint8_t **buf, size_t *cap)
{
    memset(sr, 0, sizeof *sr);
    int rc = gr_log_read_segment(log, base, &sr->rr);
    if (rc != GR_LOG_OK)
        return rc;
    sr->open = true;
    sr->buf = *buf; /* the caller's scratch buffer, grown here and handed back */
    sr->cap = *cap;
    return GR_LOG_OK;
}

static void reader_close(seg_reader *sr, uint8_t **buf, size_t *cap)
{
    if (sr->open)
        gr_log_read_release(&sr->rr);
    sr->open = false;
    *buf = sr->buf;
    *cap = sr->cap;
}

/* Makes n bytes available at buf + pos. */
static int reader_ensure(seg_reader *sr, size_t n)
{
    if (sr->len - sr->pos >= n)
        return GR_LOG_OK;
    if (sr->pos > 0) {
        memmove(sr->buf, sr->buf + sr->pos, sr->len - sr->pos);
        sr->len -= sr->pos;
        sr->pos = 0;
    }
    if (sr->cap < n || sr->cap < READ_CHUNK) {
        size_t ncap = n > READ_CHUNK ? n : READ_CHUNK;
        uint8_t *nb = realloc(sr->buf, ncap);
        if (!nb)
            return GR_LOG_ERR_NOMEM;
        sr->buf = nb;
        sr->cap = ncap;
    }
    while (sr->len < n) {
        uint64_t left = sr->rr.length - sr->filled;
        size_t want = sr->cap - sr->len;
        if (want > left)
            want = (size_t)left;
        if (want == 0)
            return GR_LOG_ERR_CORRUPT; /* the segment ends inside a batch */
        ssize_t got = pread(sr->rr.fd, sr->buf + sr->len, want,
                            (off_t)(sr->rr.position + (int64_t)sr->filled));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            GR_ERROR(SUB, "read of segment failed: %s", got < 0 ? strerror(errno) : "short file");
            return GR_LOG_ERR_IO;
        }
        sr->len += (size_t)got;
        sr->filled += (uint64_t)got;
    }
    return GR_LOG_OK;
}

/* 1 with the next batch (validated: header and CRC), 0 at the end, or a
 * negative gr_log_err. The batch stays valid until the next call. */
static int reader_next(seg_reader *sr, const uint8_t **batch, size_t *len, gr_batch_header *h)
{
    if (sr->at >= sr->rr.length)
        return 0;
    uint64_t left = sr->rr.length - sr->at;
    if (left < GR_BATCH_HEADER_SIZE)
        return GR_LOG_ERR_CORRUPT;
    int rc = reader_ensure(sr, GR_BATCH_HEADER_SIZE);
    if (rc != GR_LOG_OK)
        return rc;
    const uint8_t *p = sr->buf + sr->pos;
    int32_t blen = (int32_t)((uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 |
                             (uint32_t)p[11]);
    if (blen < GR_BATCH_HEADER_SIZE - GR_BATCH_LOG_OVERHEAD ||
        (uint64_t)blen + GR_BATCH_LOG_OVERHEAD > left)
        return GR_LOG_ERR_CORRUPT;
    size_t size = (size_t)blen + GR_BATCH_LOG_OVERHEAD;
    rc = reader_ensure(sr, size);
    if (rc != GR_LOG_OK)
        return rc;
    p = sr->buf + sr->pos;
    gr_batch_result br = gr_batch_validate(p, size, false, 0, h);
    if (br != GR_BATCH_OK) {
        GR_ERROR(SUB, "invalid batch at segment position %" PRIu64 ": %s", sr->at,
                 gr_batch_result_str(br));
        return GR_LOG_ERR_CORRUPT;
    }
    *batch = p;
    *len = size;
    sr->pos += size;
    sr->at += size;
    return 1;
}

/* The header of the first batch of a segment: 0, 1 when empty, or < 0. */
static int first_header(gr_log *log, int64_t base, gr_batch_header *h)
{
    gr_log_read_result rr;
    int rc = gr_log_read_segment(log, base, &rr);
    if (rc != GR_LOG_OK)
        return rc;
    uint8_t hdr[GR_BATCH_HEADER_SIZE];
    int out = 1;
    if (rr.length >= GR_BATCH_HEADER_SIZE) {
        ssize_t got = pread(rr.fd, hdr, sizeof hdr, (off_t)rr.position);
        if (got != (ssize_t)sizeof hdr)
            out = GR_LOG_ERR_IO;
        else {
            /* Only the header's fields are wanted: give it room for its length. */
            gr_batch_result br = gr_batch_parse_header(hdr, sizeof hdr, h);
            out = (br == GR_BATCH_OK || br == GR_BATCH_TRUNCATED) && h->magic == GR_BATCH_MAGIC
                      ? 0
                      : GR_LOG_ERR_CORRUPT;
        }
    }
    gr_log_read_release(&rr);
    return out;
}

/* ---- the key map: exact key -> latest offset, within a byte budget ---- */

typedef struct {
    uint64_t hash;
    int64_t offset;
    size_t key_pos;
    int32_t key_len; /* -1: empty slot */
} kslot;

typedef struct {
    kslot *slots;
    size_t nslots; /* a power of two, or 0 */
    size_t count;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    size_t budget;
} keymap;

enum { MAP_OK = 0, MAP_FULL = 1 };

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void map_free(keymap *m)
{
    free(m->slots);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static size_t map_bytes(size_t nslots, size_t keys_cap)
{
    return nslots * sizeof(kslot) + keys_cap;
}

static kslot *map_find(const keymap *m, uint64_t h, const uint8_t *key, int32_t len)
{
    if (m->nslots == 0)
        return NULL;
    size_t mask = m->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        kslot *s = &m->slots[i];
        if (s->key_len < 0)
            return s; /* the empty slot where it would go */
        if (s->hash == h && s->key_len == len &&
            (len == 0 || memcmp(m->keys + s->key_pos, key, (size_t)len) == 0))
            return s;
    }
}

static int map_grow_table(keymap *m, bool over)
{
    size_t n = m->nslots ? m->nslots * 2 : MAP_MIN_SLOTS;
    if (!over && map_bytes(n, m->keys_cap) > m->budget)
        return MAP_FULL;
    kslot *slots = malloc(n * sizeof *slots);
    if (!slots)
        return GR_LOG_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        slots[i].key_len = -1;
    for (size_t i = 0; i < m->nslots; i++) {
        kslot *s = &m->slots[i];
        if (s->key_len < 0)
            continue;
        size_t j = (size_t)s->hash & (n - 1);
        while (slots[j].key_len >= 0)
            j = (j + 1) & (n - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return MAP_OK;
}

static int map_reserve_keys(keymap *m, size_t more, bool over)
{
    size_t need = m->keys_len + more;
    if (need <= m->keys_cap)
        return MAP_OK;
    size_t cap = m->keys_cap ? m->keys_cap * 2 : 256;
    if (cap < need)
        cap = need;
    size_t table = map_bytes(m->nslots, 0);
    if (table + cap > m->budget) {
        /* Grow to what the budget allows, if that is enough. */
        if (!over && (table + need > m->budget))
            return MAP_FULL;
        if (table + need <= m->budget)
            cap = m->budget - table;
        else
            cap = need;
    }
    uint8_t *k = realloc(m->keys, cap ? cap : 1);
    if (!k)
        return GR_LOG_ERR_NOMEM;
    m->keys = k;
    m->keys_cap = cap;
    return MAP_OK;
}

/* Maps key -> offset. over: ignore the budget (the first batch of a pass). */
static int map_put(keymap *m, const uint8_t *key, int32_t len, int64_t offset, bool over)
{
    uint64_t h = hash_bytes(key, (size_t)len);
    kslot *s = map_find(m, h, key, len);
    if (s && s->key_len >= 0) {
        if (offset > s->offset)
            s->offset = offset;
        return MAP_OK;
    }
    if ((m->count + 1) * 4 > m->nslots * 3) {
        int rc = map_grow_table(m, over);
        if (rc != MAP_OK)
            return rc;
    }
    int rc = map_reserve_keys(m, (size_t)len, over);
    if (rc != MAP_OK)
        return rc;
    s = map_find(m, h, key, len);
    if (len > 0)
        memcpy(m->keys + m->keys_len, key, (size_t)len);
    s->hash = h;
    s->offset = offset;
    s->key_pos = m->keys_len;
    s->key_len = len;
    m->keys_len += (size_t)len;
    m->count++;
    return MAP_OK;
}

/* The latest offset of key, or -1 when it is not in the map. */
static int64_t map_get(const keymap *m, const uint8_t *key, int32_t len)
{
    kslot *s = map_find(m, hash_bytes(key, (size_t)len), key, len);
    return s && s->key_len >= 0 ? s->offset : -1;
}

/* ---- producers: id -> base offset of its last batch in the log ---- */

typedef struct {
    int64_t pid; /* -1: empty */
    int64_t last_base;
} pslot;

typedef struct {
    pslot *slots;
    size_t nslots, count;
} pidmap;

static pslot *pid_find(const pidmap *pm, int64_t pid)
{
    if (pm->nslots == 0)
        return NULL;
    size_t mask = pm->nslots - 1;
    size_t i = (size_t)(((uint64_t)pid * 0x9e3779b97f4a7c15ull) >> 17) & mask;
    for (;; i = (i + 1) & mask)
        if (pm->slots[i].pid == pid || pm->slots[i].pid < 0)
            return &pm->slots[i];
}

static int pid_put(pidmap *pm, int64_t pid, int64_t base)
{
    if ((pm->count + 1) * 2 > pm->nslots) {
        size_t n = pm->nslots ? pm->nslots * 2 : 64;
        pidmap grown = {malloc(n * sizeof(pslot)), n, 0};
        if (!grown.slots)
            return GR_LOG_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            grown.slots[i].pid = -1;
        for (size_t i = 0; i < pm->nslots; i++)
            if (pm->slots[i].pid >= 0) {
                *pid_find(&grown, pm->slots[i].pid) = pm->slots[i];
                grown.count++;
            }
        free(pm->slots);
        *pm = grown;
    }
    pslot *s = pid_find(pm, pid);
    if (s->pid < 0) {
        s->pid = pid;
        pm->count++;
    }
    s->last_base = base;
    return GR_LOG_OK;
}

static bool pid_is_last(const pidmap *pm, int64_t pid, int64_t base)
{
    pslot *s = pid_find(pm, pid);
    return s && s->pid == pid && s->last_base == base;
}

/* Walks the batch headers of every segment, recording each producer's last
 * batch. Only headers are read. */
static int scan_producers(gr_log *log, const gr_log_segment_info *segs, size_t n, pidmap *pm)
{
    for (size_t i = 0; i < n; i++) {
        gr_log_read_result rr;
        int rc = gr_log_read_segment(log, segs[i].base_offset, &rr);
        if (rc != GR_LOG_OK)
            return rc;
        uint64_t at = 0;
        while (rc == GR_LOG_OK && at + GR_BATCH_HEADER_SIZE <= rr.length) {
            uint8_t hdr[GR_BATCH_HEADER_SIZE];
            gr_batch_header h;
            ssize_t got = pread(rr.fd, hdr, sizeof hdr, (off_t)(rr.position + (int64_t)at));
            if (got != (ssize_t)sizeof hdr) {
                rc = GR_LOG_ERR_IO;
                break;
            }
            gr_batch_result br = gr_batch_parse_header(hdr, sizeof hdr, &h);
            if ((br != GR_BATCH_OK && br != GR_BATCH_TRUNCATED) || h.magic != GR_BATCH_MAGIC ||
                h.batch_length < GR_BATCH_HEADER_SIZE - GR_BATCH_LOG_OVERHEAD) {
                rc = GR_LOG_ERR_CORRUPT;
                break;
            }
            if (h.producer_id >= 0)
                rc = pid_put(pm, h.producer_id, h.base_offset);
            at += gr_batch_size(&h);
        }
        gr_log_read_release(&rr);
        if (rc != GR_LOG_OK)
            return rc;
    }
    return GR_LOG_OK;
}

/* ---- the plan ---- */

typedef struct {
    gr_log_segment_info *segs;
    size_t n;
    size_t n_cleanable; /* segs[0, n_cleanable) are the cleanable range */
    int64_t first_dirty;
    int64_t end;        /* first offset past the cleanable range */
    uint64_t clean_bytes, dirty_bytes;
    double ratio;
    bool forced;
    bool go;
    ckpt_loc loc;
} plan;

static void plan_free(plan *p)
{
    free(p->segs);
    p->segs = NULL;
}

static int make_plan(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms, plan *p)
{
    memset(p, 0, sizeof *p);
    int rc = snapshot_segments(log, &p->segs, &p->n);
    if (rc != GR_LOG_OK)
        return rc;
    if (p->n < 2 || p->segs[0].active)
        return GR_LOG_OK; /* only the active segment: nothing cleanable */
    rc = checkpoint_locate(log, p->segs[0].base_offset, &p->loc);
    if (rc != GR_LOG_OK)
        return rc;

    int64_t log_start = gr_log_start_offset(log);
    int64_t log_end = gr_log_end_offset(log);
    int64_t first_dirty = checkpoint_read(log, &p->loc);
    if (first_dirty < log_start || first_dirty > log_end)
        first_dirty = log_start; /* none yet, or out of range after truncation */
    p->first_dirty = first_dirty;

    int64_t lag_horizon = sub_sat(now_ms, cfg->min_compaction_lag_ms);
    size_t i = 0;
    for (; i < p->n && !p->segs[i].active; i++) {
        const gr_log_segment_info *s = &p->segs[i];
        if (cfg->min_compaction_lag_ms > 0 && s->next_offset > first_dirty &&
            s->max_timestamp > lag_horizon)
            break;
    }
    p->n_cleanable = i;
    if (i == 0 || i >= p->n)
        return GR_LOG_OK;
    p->end = p->segs[i].base_offset;

    size_t first_dirty_seg = p->n_cleanable;
    for (size_t k = 0; k < p->n_cleanable; k++) {
        if (p->segs[k].next_offset <= first_dirty) {
            p->clean_bytes += p->segs[k].size;
        } else {
            p->dirty_bytes += p->segs[k].size;
            if (first_dirty_seg == p->n_cleanable)
                first_dirty_seg = k;
        }
    }
    uint64_t total = p->clean_bytes + p->dirty_bytes;
    p->ratio = total ? (double)p->dirty_bytes / (double)total : 0.0;
    if (p->dirty_bytes == 0)
        return GR_LOG_OK;

    if (cfg->max_compaction_lag_ms < INT64_MAX) {
        gr_batch_header h;
        rc = first_header(log, p->segs[first_dirty_seg].base_offset, &h);
        if (rc < 0)
            return rc;
        if (rc == 0 && h.max_timestamp >= 0 &&
            h.max_timestamp < sub_sat(now_ms, cfg->max_compaction_lag_ms))
            p->forced = true;
    }
    p->go = p->ratio > cfg->min_cleanable_dirty_ratio || p->forced;
    return GR_LOG_OK;
}

int gr_cleaner_dirty_ratio(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                           double *ratio, bool *cleanable)
{
    plan p;
    int rc = make_plan(log, cfg, now_ms, &p);
    if (ratio)
        *ratio = rc == GR_LOG_OK ? p.ratio : 0.0;
    if (cleanable)
        *cleanable = rc == GR_LOG_OK && p.go;
    plan_free(&p);
    return rc;
}

/* ---- one pass ---- */

typedef struct {
    gr_log *log;
    const gr_cleaner_config *cfg;
    int64_t now_ms;
    gr_cleaner_stats *st;
    const atomic_bool *abort;
    plan p;
    keymap map;
    pidmap pids;
    int64_t map_end; /* records at or past it are kept whatever their key */
    uint8_t *rbuf;   /* segment read buffer, reused */
    size_t rbuf_cap;
    gr_writer out;   /* cleaned batches not yet appended */
    /* Scratch for rebuilding one batch. */
    gr_record_spec *specs;
    size_t specs_cap;
    gr_bytes *hdrs; /* header keys and values, two per header */
    size_t hdrs_len, hdrs_cap;
    size_t *spec_hdr; /* index into hdrs of each spec's first header */
    size_t spec_hdr_cap;
} pass;

static bool aborted(const pass *ps) { return ps->abort && atomic_load(ps->abort); }

/* Builds the key map over the dirty section; sets map_end. */
static int build_map(pass *ps)
{
    plan *p = &ps->p;
    bool first = true;
    int64_t end = p->end;
    int rc = GR_LOG_OK;
    for (size_t i = 0; i < p->n_cleanable && rc == GR_LOG_OK; i++) {
        if (p->segs[i].next_offset <= p->first_dirty)
            continue;
        seg_reader sr;
        rc = reader_open(ps->log, p->segs[i].base_offset, &sr, &ps->rbuf, &ps->rbuf_cap);
        if (rc != GR_LOG_OK)
            break;
        const uint8_t *b;
        size_t len;
        gr_batch_header h;
        int more = 0;
        bool full = false;
        while (!full && (more = reader_next(&sr, &b, &len, &h)) == 1) {
            ps->st->bytes_read += len;
            if (aborted(ps)) {
                rc = GR_CLEANER_NOTHING;
                break;
            }
            if (gr_batch_last_offset(&h) < p->first_dirty || (h.attributes & GR_BATCH_ATTR_CONTROL))
                continue;
            gr_record_iter it;
            gr_batch_result br = gr_record_iter_init(&it, b, len, ps->cfg->max_uncompressed);
            gr_record rec;
            while (br == GR_BATCH_OK && gr_record_iter_next(&it, &rec, &br) == 1) {
                int64_t off = h.base_offset + rec.offset_delta;
                if (off < p->first_dirty || rec.key.len < 0)
                    continue;
                int m = map_put(&ps->map, rec.key.ptr, rec.key.len, off, first);
                if (m == MAP_FULL) {
                    /* Clean below this batch; the next pass starts at it. */
                    end = h.base_offset;
                    full = true;
                    break;
                }
                if (m != MAP_OK) {
                    rc = m;
                    break;
                }
            }
            gr_record_iter_free(&it);
            if (br != GR_BATCH_OK) {
                GR_ERROR(SUB, "%s: batch at offset %" PRId64 " does not iterate: %s",
                         gr_log_name(ps->log), h.base_offset, gr_batch_result_str(br));
                rc = GR_LOG_ERR_CORRUPT;
            }
            if (rc != GR_LOG_OK)
                break;
            if (!full)
                first = false;
        }
        if (rc == GR_LOG_OK && !full && more < 0)
            rc = more;
        reader_close(&sr, &ps->rbuf, &ps->rbuf_cap);
        if (full)
            break;
    }
    ps->map_end = end;
    return rc;
}

/* Keeps the original last offset delta (and, for LogAppendTime, the max
 * timestamp; for an empty batch both timestamps) of a rebuilt batch, then
 * recomputes its CRC. */
static void fix_header(uint8_t *q, size_t len, const gr_batch_header *orig, bool empty)
{
    put_be(q + HDR_OFF_LAST_OFFSET_DELTA, (uint32_t)orig->last_offset_delta, 4);
    if (empty)
        put_be(q + HDR_OFF_BASE_TIMESTAMP, (uint64_t)orig->max_timestamp, 8);
    if (empty || (orig->attributes & GR_BATCH_ATTR_LOG_APPEND_TIME))
        put_be(q + GR_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)orig->max_timestamp, 8);
    uint32_t crc = gr_crc32c(0, q + GR_BATCH_OFF_ATTRIBUTES, len - GR_BATCH_OFF_ATTRIBUTES);
    put_be(q + GR_BATCH_OFF_CRC, crc, 4);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return GR_LOG_OK;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return GR_LOG_ERR_NOMEM;
    *p = q;
    *cap = n;
    return GR_LOG_OK;
}

/* Adds a kept record to the rebuild scratch. */
static int keep_record(pass *ps, size_t idx, const gr_batch_header *h, const gr_record *rec)
{
    if (grow((void **)&ps->specs, &ps->specs_cap, idx + 1, sizeof *ps->specs) ||
        grow((void **)&ps->spec_hdr, &ps->spec_hdr_cap, idx + 1, sizeof *ps->spec_hdr))
        return GR_LOG_ERR_NOMEM;
    gr_record_spec *s = &ps->specs[idx];
    s->timestamp = add_wrap(h->base_timestamp, rec->timestamp_delta);
    s->offset_delta = rec->offset_delta;
    s->key = rec->key;
    s->value = rec->value;
    s->header_count = rec->header_count;
    s->header_keys = s->header_values = NULL;
    ps->spec_hdr[idx] = ps->hdrs_len;
    if (rec->header_count > 0) {
        if (grow((void **)&ps->hdrs, &ps->hdrs_cap, ps->hdrs_len + 2 * (size_t)rec->header_count,
                 sizeof *ps->hdrs))
            return GR_LOG_ERR_NOMEM;
        gr_reader r = rec->headers;
        for (int32_t i = 0; i < rec->header_count; i++) {
            gr_bytes kv[2];
            for (int j = 0; j < 2; j++) {
                int32_t n = -1;
                const uint8_t *ptr = NULL;
                gr_read_varint(&r, &n);
                if (n >= 0)
                    gr_read_raw(&r, (size_t)n, &ptr);
                kv[j] = n >= 0 ? (gr_bytes){ptr, n} : GR_BYTES_NULL;
            }
            if (r.err)
                return GR_LOG_ERR_CORRUPT; /* the iterator checked them: cannot happen */
            ps->hdrs[ps->hdrs_len + (size_t)i] = kv[0];
            ps->hdrs[ps->hdrs_len + (size_t)rec->header_count + (size_t)i] = kv[1];
        }
        ps->hdrs_len += 2 * (size_t)rec->header_count;
    }
    return GR_LOG_OK;
}

static int flush_out(pass *ps, struct gr_segment *seg)
{
    if (!gr_writer_ok(&ps->out))
        return GR_LOG_ERR_NOMEM;
    if (ps->out.len == 0)
        return GR_LOG_OK;
    int rc = gr_log_cleaned_append(ps->log, seg, ps->out.p, ps->out.len);
    if (rc == GR_LOG_OK)
        ps->st->bytes_written += ps->out.len;
    ps->out.len = 0;
    return rc;
}

/* Cleans one batch into ps->out. *verbatim is cleared unless it was copied. */
static int clean_batch(pass *ps, const uint8_t *b, size_t len, const gr_batch_header *h,
                       bool drop_tombstones, bool *verbatim)
{
    if (h->attributes & GR_BATCH_ATTR_CONTROL) {
        ps->st->records_read += (uint64_t)(h->record_count > 0 ? h->record_count : 0);
        ps->st->records_kept += (uint64_t)(h->record_count > 0 ? h->record_count : 0);
        gr_write_raw(&ps->out, b, len);
        return GR_LOG_OK;
    }
    gr_record_iter it;
    gr_batch_result br = gr_record_iter_init(&it, b, len, ps->cfg->max_uncompressed);
    gr_record rec;
    size_t total = 0, kept = 0;
    uint64_t dropped_tombstones = 0;
    int rc = GR_LOG_OK;
    ps->hdrs_len = 0;
    while (br == GR_BATCH_OK && gr_record_iter_next(&it, &rec, &br) == 1) {
        total++;
        int64_t off = h->base_offset + rec.offset_delta;
        bool keep = true;
        if (off < ps->map_end && rec.key.len >= 0) {
            int64_t latest = map_get(&ps->map, rec.key.ptr, rec.key.len);
            if (latest > off)
                keep = false; /* superseded by a later record with the same key */
            else if (rec.value.len < 0 && drop_tombstones) {
                keep = false;
                dropped_tombstones++;
            }
        }
        if (keep) {
            rc = keep_record(ps, kept, h, &rec);
            if (rc != GR_LOG_OK)
                break;
            kept++;
        }
    }
    if (br != GR_BATCH_OK) {
        GR_ERROR(SUB, "%s: batch at offset %" PRId64 " does not iterate: %s",
                 gr_log_name(ps->log), h->base_offset, gr_batch_result_str(br));
        rc = GR_LOG_ERR_CORRUPT;
    }
    if (rc == GR_LOG_OK) {
        ps->st->records_read += total;
        ps->st->records_kept += kept;
        ps->st->tombstones_dropped += dropped_tombstones;
        if (kept == total) {
            gr_write_raw(&ps->out, b, len);
        } else {
            *verbatim = false;
            bool empty = kept == 0;
            if (empty && !(h->producer_id >= 0 && pid_is_last(&ps->pids, h->producer_id,
                                                               h->base_offset))) {
                /* Nothing left and no producer state to keep: dropped. */
            } else {
                for (size_t i = 0; i < kept; i++) {
                    if (ps->specs[i].header_count > 0) {
                        ps->specs[i].header_keys = &ps->hdrs[ps->spec_hdr[i]];
                        ps->specs[i].header_values =
                            &ps->hdrs[ps->spec_hdr[i] + (size_t)ps->specs[i].header_count];
                    }
                }
                gr_batch_spec spec = {
                    .base_offset = h->base_offset,
                    .partition_leader_epoch = h->partition_leader_epoch,
                    .attributes = empty ? (int16_t)(h->attributes & ~GR_BATCH_ATTR_CODEC_MASK)
                                        : h->attributes,
                    .codec = empty ? GR_CODEC_NONE : gr_batch_codec(h),
                    .producer_id = h->producer_id,
                    .producer_epoch = h->producer_epoch,
                    .base_sequence = h->base_sequence,
                };
                size_t start = ps->out.len;
                int b_rc = gr_batch_build(&ps->out, &spec, ps->specs, (int32_t)kept);
                if (b_rc != GR_OK) {
                    GR_ERROR(SUB, "%s: rebuilding the batch at offset %" PRId64 " failed: %s",
                             gr_log_name(ps->log), h->base_offset, gr_err_str(b_rc));
                    rc = b_rc == GR_ERR_NOMEM ? GR_LOG_ERR_NOMEM : GR_LOG_ERR_CORRUPT;
                } else {
                    fix_header(ps->out.p + start, ps->out.len - start, h, empty);
                    if (empty)
                        ps->st->batches_emptied++;
                    else
                        ps->st->batches_rebuilt++;
                }
            }
        }
    }
    gr_record_iter_free(&it);
    if (rc == GR_LOG_OK && !gr_writer_ok(&ps->out))
        rc = GR_LOG_ERR_NOMEM;
    return rc;
}

/* Rewrites segment k into seg. */
static int clean_segment(pass *ps, size_t k, struct gr_segment *seg, bool *verbatim)
{
    const gr_log_segment_info *si = &ps->p.segs[k];
    bool drop_tombstones = si->max_timestamp < sub_sat(ps->now_ms, ps->cfg->delete_retention_ms);
    seg_reader sr;
    int rc = reader_open(ps->log, si->base_offset, &sr, &ps->rbuf, &ps->rbuf_cap);
    if (rc != GR_LOG_OK)
        return rc;
    const uint8_t *b;
    size_t len;
    gr_batch_header h;
    int more = 0;
    while ((more = reader_next(&sr, &b, &len, &h)) == 1) {
        ps->st->bytes_read += len;
        if (aborted(ps)) {
            rc = GR_CLEANER_NOTHING;
            break;
        }
        rc = clean_batch(ps, b, len, &h, drop_tombstones, verbatim);
        if (rc == GR_LOG_OK && ps->out.len >= WRITE_CHUNK)
            rc = flush_out(ps, seg);
        if (rc != GR_LOG_OK)
            break;
    }
    if (rc == GR_LOG_OK && more < 0)
        rc = more;
    reader_close(&sr, &ps->rbuf, &ps->rbuf_cap);
    if (rc == GR_LOG_OK)
        rc = flush_out(ps, seg);
    ps->out.len = 0;
    return rc;
}

/* Rewrites segs[first, last] into one segment and swaps it in. */
static int clean_group(pass *ps, size_t first, size_t last, int steps)
{
    const gr_log_segment_info *segs = ps->p.segs;
    struct gr_segment *seg = gr_log_cleaned_create(ps->log, segs[first].base_offset, ps->now_ms);
    if (!seg)
        return GR_LOG_ERR_IO;
    bool verbatim = first == last;
    int rc = GR_LOG_OK;
    for (size_t k = first; k <= last && rc == GR_LOG_OK; k++)
        rc = clean_segment(ps, k, seg, &verbatim);
    if (rc != GR_LOG_OK || (verbatim && steps == 0)) {
        /* Failed, aborted, or nothing changed: the old segment stays. */
        gr_log_cleaned_discard(ps->log, seg);
        return rc;
    }
    if (steps > 0)
        return gr_log_replace_segments_steps(ps->log, segs[first].base_offset,
                                             segs[last].base_offset, &seg, 1, ps->now_ms, steps);
    return gr_log_replace_segments(ps->log, segs[first].base_offset, segs[last].base_offset, &seg,
                                   1, ps->now_ms);
}

static void pass_free(pass *ps)
{
    plan_free(&ps->p);
    map_free(&ps->map);
    free(ps->pids.slots);
    free(ps->rbuf);
    gr_writer_free(&ps->out);
    free(ps->specs);
    free(ps->spec_hdr);
    free(ps->hdrs);
}

static int clean_log(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                     gr_cleaner_stats *stats, int steps, const atomic_bool *abort)
{
    gr_cleaner_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!log || !cfg)
        return GR_LOG_ERR_INVALID;

    pass ps;
    memset(&ps, 0, sizeof ps);
    ps.log = log;
    ps.cfg = cfg;
    ps.now_ms = now_ms;
    ps.st = stats;
    ps.abort = abort;
    ps.map.budget = cfg->dedupe_buffer_bytes;
    gr_writer_init(&ps.out, 0);

    int rc = make_plan(log, cfg, now_ms, &ps.p);
    stats->segments_before = ps.p.n;
    stats->dirty_ratio = ps.p.ratio;
    stats->first_dirty_offset = ps.p.first_dirty;
    stats->end_offset = ps.p.first_dirty;
    if (rc != GR_LOG_OK || !ps.p.go) {
        stats->segments_after = ps.p.n;
        pass_free(&ps);
        return rc != GR_LOG_OK ? rc : GR_CLEANER_NOTHING;
    }

    rc = build_map(&ps);
    if (rc == GR_LOG_OK)
        rc = scan_producers(log, ps.p.segs, ps.p.n, &ps.pids);

    /* The segments to rewrite: every cleanable one that starts below the
     * map's end. Grouped while the sizes fit segment.bytes and the offsets
     * fit one segment. */
    int64_t limit = cfg->segment_bytes > 0 && cfg->segment_bytes < INT32_MAX ? cfg->segment_bytes
                                                                             : INT32_MAX;
    size_t n_rewrite = 0;
    while (n_rewrite < ps.p.n_cleanable && ps.p.segs[n_rewrite].base_offset < ps.map_end)
        n_rewrite++;
    bool crashed = false;
    for (size_t i = 0; rc == GR_LOG_OK && i < n_rewrite;) {
        size_t j = i;
        uint64_t size = ps.p.segs[i].size;
        while (j + 1 < n_rewrite && size + ps.p.segs[j + 1].size <= (uint64_t)limit &&
               ps.p.segs[j + 1].next_offset - 1 - ps.p.segs[i].base_offset <= INT32_MAX) {
            j++;
            size += ps.p.segs[j].size;
        }
        rc = clean_group(&ps, i, j, steps);
        if (steps > 0) {
            crashed = true; /* the log must now be abandoned */
            break;
        }
        i = j + 1;
    }

    if (rc == GR_LOG_OK && !crashed) {
        int w = gr_checkpoint_write_offset(ps.p.loc.path, ps.p.loc.topic, ps.p.loc.partition,
                                           ps.map_end);
        if (w != 0) {
            GR_ERROR(SUB, "%s: writing %s failed", gr_log_name(log), GR_CLEANER_CHECKPOINT_FILE);
            rc = GR_LOG_ERR_IO;
        } else {
            stats->end_offset = ps.map_end;
        }
    }
    stats->segments_after = crashed ? 0 : gr_log_segment_count(log);
    if (rc == GR_LOG_OK && !crashed)
        GR_INFO(SUB,
                "%s: cleaned [%" PRId64 ", %" PRId64 ") dirty ratio %.2f: %" PRIu64
                " of %" PRIu64 " records kept, %" PRIu64 " tombstones dropped, %" PRIu64
                " -> %" PRIu64 " bytes, %zu -> %zu segments",
                gr_log_name(log), stats->first_dirty_offset, stats->end_offset,
                stats->dirty_ratio, stats->records_kept, stats->records_read,
                stats->tombstones_dropped, stats->bytes_read, stats->bytes_written,
                stats->segments_before, stats->segments_after);
    else if (rc < 0)
        GR_WARN(SUB, "%s: cleaning failed: %s", gr_log_name(log), gr_log_err_str(rc));
    pass_free(&ps);
    return rc;
}

int gr_cleaner_clean(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                     gr_cleaner_stats *stats)
{
    return clean_log(log, cfg, now_ms, stats, 0, NULL);
}

int gr_cleaner_clean_steps(gr_log *log, const gr_cleaner_config *cfg, int64_t now_ms,
                           gr_cleaner_stats *stats, int steps)
{
    return clean_log(log, cfg, now_ms, stats, steps > 0 ? steps : 0, NULL);
}

/* ---- the thread ---- */

typedef struct cl_entry {
    gr_log *log;
    gr_cleaner_config cfg;
    bool busy;
    int64_t retry_at_ms; /* after a failure, left alone until then */
    struct cl_entry *next;
} cl_entry;

struct gr_cleaner {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread sleeps on it (CLOCK_MONOTONIC) */
    pthread_cond_t idle; /* a pass ended (gr_cleaner_remove waits on it) */
    pthread_t thread;
    int64_t backoff_ms;
    bool stop;
    atomic_bool abort_pass;
    cl_entry *entries;
    gr_cleaner_stats total;
    uint64_t passes;
};

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_stats(gr_cleaner_stats *t, const gr_cleaner_stats *s)
{
    t->dirty_ratio = s->dirty_ratio;
    t->first_dirty_offset = s->first_dirty_offset;
    t->end_offset = s->end_offset;
    t->bytes_read += s->bytes_read;
    t->bytes_written += s->bytes_written;
    t->records_read += s->records_read;
    t->records_kept += s->records_kept;
    t->tombstones_dropped += s->tombstones_dropped;
    t->batches_rebuilt += s->batches_rebuilt;
    t->batches_emptied += s->batches_emptied;
    t->segments_before += s->segments_before;
    t->segments_after += s->segments_after;
}

static void *cleaner_main(void *arg)
{
    gr_cleaner *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = clock_ms(CLOCK_REALTIME);
        cl_entry *best = NULL;
        double best_ratio = -1.0;
        /* Measuring under the mutex keeps every listed log open meanwhile
         * (remove takes the mutex); it costs a segment list and one small
         * file read per log. */
        for (cl_entry *e = c->entries; e; e = e->next) {
            if (now < e->retry_at_ms)
                continue;
            double ratio;
            bool go;
            if (gr_cleaner_dirty_ratio(e->log, &e->cfg, now, &ratio, &go) == GR_LOG_OK && go &&
                ratio > best_ratio) {
                best = e;
                best_ratio = ratio;
            }
        }
        if (best) {
            gr_cleaner_config cfg = best->cfg;
            gr_log *log = best->log;
            best->busy = true;
            atomic_store(&c->abort_pass, false);
            pthread_mutex_unlock(&c->mu);
            gr_cleaner_stats st;
            int rc = clean_log(log, &cfg, now, &st, 0, &c->abort_pass);
            pthread_mutex_lock(&c->mu);
            best->busy = false;
            pthread_cond_broadcast(&c->idle);
            if (rc < 0) {
                best->retry_at_ms = now + c->backoff_ms;
            } else if (rc == GR_CLEANER_CLEANED) {
                add_stats(&c->total, &st);
                c->passes++;
                continue; /* more may be dirty: look again at once */
            }
        }
        if (c->stop)
            break;
        int64_t deadline = clock_ms(CLOCK_MONOTONIC) + c->backoff_ms;
        struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
        pthread_cond_timedwait(&c->wake, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

gr_cleaner *gr_cleaner_start(int64_t backoff_ms)
{
    gr_cleaner *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->backoff_ms = backoff_ms > 0 ? backoff_ms : 1;
    atomic_init(&c->abort_pass, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&c->mu, NULL) == 0;
    ok = ok && pthread_cond_init(&c->wake, &ca) == 0;
    ok = ok && pthread_cond_init(&c->idle, NULL) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok || pthread_create(&c->thread, NULL, cleaner_main, c) != 0) {
        GR_ERROR(SUB, "cannot start the cleaner thread");
        free(c);
        return NULL;
    }
    GR_INFO(SUB, "cleaner started, backoff %" PRId64 " ms", c->backoff_ms);
    return c;
}

void gr_cleaner_stop(gr_cleaner *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    atomic_store(&c->abort_pass, true);
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    while (c->entries) {
        cl_entry *e = c->entries;
        c->entries = e->next;
        free(e);
    }
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int gr_cleaner_add(gr_cleaner *c, gr_log *log, const gr_cleaner_config *cfg)
{
    pthread_mutex_lock(&c->mu);
    cl_entry *e = c->entries;
    while (e && e->log != log)
        e = e->next;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&c->mu);
            return -1;
        }
        e->log = log;
        e->next = c->entries;
        c->entries = e;
    }
    e->cfg = *cfg;
    e->retry_at_ms = 0;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void gr_cleaner_remove(gr_cleaner *c, gr_log *log)
{
    pthread_mutex_lock(&c->mu);
    for (;;) {
        cl_entry **pp = &c->entries;
        while (*pp && (*pp)->log != log)
            pp = &(*pp)->next;
        if (!*pp)
            break;
        cl_entry *e = *pp;
        if (e->busy) {
            /* Being cleaned: stop that pass early and look again once it
             * has ended (the list may change meanwhile). */
            atomic_store(&c->abort_pass, true);
            pthread_cond_wait(&c->idle, &c->mu);
            continue;
        }
        *pp = e->next;
        free(e);
        break;
    }
    pthread_mutex_unlock(&c->mu);
}

void gr_cleaner_totals(gr_cleaner *c, gr_cleaner_stats *total, uint64_t *passes)
{
    pthread_mutex_lock(&c->mu);
    if (total)
        *total = c->total;
    if (passes)
        *passes = c->passes;
    pthread_mutex_unlock(&c->mu);
}
