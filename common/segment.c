/*
 * segment.c - see segment.h.
 *
 * Walking a segment: batches are found by reading their 61-byte headers with
 * pread(2) and hopping by the batch length. Recovery, which must read every
 * byte to check CRCs, goes through a scanner with a 1 MiB window instead, so
 * a whole segment is validated with large sequential reads. The window is
 * the only heap buffer holding segment data, and only during recovery.
 *
 * Indexing rule (Kafka's): after a batch is appended at position pos, if
 * more than index_interval bytes were appended since the last entry, the
 * batch gets an offset index entry (base offset -> pos) and the time index
 * an entry (largest timestamp so far -> base offset). The batch at position
 * 0 is never indexed, as the segment start is the implicit first entry.
 */
#include "common/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"

#define SUB "log"
#define SCAN_WINDOW (1u << 20)
#define REL_MAX ((int64_t)INT32_MAX)

bool gr_segment_filename(char *buf, size_t cap, const char *dir, int64_t base, const char *ext)
{
    int n = snprintf(buf, cap, "%s/%020" PRId64 "%s", dir, base, ext);
    return n > 0 && (size_t)n < cap;
}

static bool seg_path(const gr_segment *seg, char *buf, size_t cap, const char *ext,
                     const char *suffix)
{
    int n = snprintf(buf, cap, "%s%s%s", seg->stem, ext, suffix);
    return n > 0 && (size_t)n < cap;
}

/* ---- reading headers ---- */

static int pread_full(int fd, void *buf, size_t n, uint64_t pos)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO; /* shorter than its size says: someone cut the file */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        pos += (uint64_t)r;
    }
    return 0;
}

/* Reads and parses the header of the batch at pos, which must lie whole
 * below limit. 0, or -1 (errno EIO for a malformed or overlong batch). */
static int read_header(const gr_segment *seg, uint64_t pos, uint64_t limit, gr_batch_header *h)
{
    uint8_t buf[GR_BATCH_HEADER_SIZE];
    if (pos >= limit || limit - pos < GR_BATCH_HEADER_SIZE) {
        errno = EIO;
        return -1;
    }
    if (pread_full(seg->fd, buf, sizeof buf, pos) != 0)
        return -1;
    if (gr_batch_parse_header(buf, (size_t)(limit - pos), h) != GR_BATCH_OK) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Reads the whole batch at pos into a heap buffer (timestamp lookups only). */
static uint8_t *read_batch(const gr_segment *seg, uint64_t pos, const gr_batch_header *h)
{
    size_t n = gr_batch_size(h);
    uint8_t *buf = malloc(n);
    if (!buf)
        return NULL;
    if (pread_full(seg->fd, buf, n, pos) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- the recovery scanner ---- */

typedef struct {
    int fd;
    uint64_t end;   /* file size */
    uint64_t start; /* file position of buf[0] */
    size_t len;     /* valid bytes in buf */
    size_t cap;
    uint8_t *buf;
} scanner;

/* Makes [at, at + n) available; *p points at it. 0, 1 if the file ends
 * first, -1 on error. */
static int scan_get(scanner *s, uint64_t at, size_t n, const uint8_t **p)
{
    if (at > s->end || s->end - at < n)
        return 1;
    if (at >= s->start && at + n <= s->start + s->len) {
        *p = s->buf + (at - s->start);
        return 0;
    }
    size_t want = n > SCAN_WINDOW ? n : SCAN_WINDOW;
    if (want > s->end - at)
        want = (size_t)(s->end - at);
    if (want > s->cap) {
        uint8_t *nb = realloc(s->buf, want);
        if (!nb)
            return -1;
        s->buf = nb;
        s->cap = want;
    }
    if (pread_full(s->fd, s->buf, want, at) != 0)
        return -1;
    s->start = at;
    s->len = want;
    *p = s->buf;
    return 0;
}

/* ---- state ---- */

static void reset_state(gr_segment *seg)
{
    seg->size = 0;
    seg->next_offset = seg->base_offset;
    seg->last_batch_base = -1;
    seg->max_timestamp = -1;
    seg->first_timestamp = -1;
    seg->bytes_since_index = 0;
}

/* Accounts for a batch appended at pos: state and index entries. */
static void account_batch(gr_segment *seg, uint64_t pos, const gr_batch_header *h)
{
    int32_t index_interval = seg->index_interval;
    if (seg->last_batch_base < 0)
        seg->first_timestamp = h->max_timestamp;
    if (h->max_timestamp > seg->max_timestamp)
        seg->max_timestamp = h->max_timestamp;
    if (pos > 0 && seg->bytes_since_index > (uint32_t)(index_interval < 0 ? 0 : index_interval)) {
        /* A full index only makes the index sparser; the log rolls on it. */
        if (gr_index_append_offset(&seg->oidx, h->base_offset, (uint32_t)pos) >= 0)
            seg->bytes_since_index = 0;
        gr_index_append_time(&seg->tidx, seg->max_timestamp, h->base_offset);
    }
    size_t sz = gr_batch_size(h);
    seg->bytes_since_index = seg->bytes_since_index > UINT32_MAX - sz ? UINT32_MAX
                                                                       : seg->bytes_since_index + (uint32_t)sz;
    seg->last_batch_base = h->base_offset;
    seg->next_offset = gr_batch_last_offset(h) + 1;
    seg->size = pos + sz;
}

/* Rebuilds the in-memory state from the indexes and a header walk from the
 * last offset index entry to the end of the file. Returns NULL, or why the
 * walk failed (the caller then recovers the segment). */
static const char *load_tail(gr_segment *seg, uint64_t file_size)
{
    gr_index_entry last;
    uint64_t pos = 0;
    reset_state(seg);
    if (gr_index_last(&seg->oidx, &last)) {
        pos = last.position;
        seg->next_offset = last.offset;
    }
    gr_index_entry tl;
    if (gr_index_last(&seg->tidx, &tl))
        seg->max_timestamp = tl.timestamp;
    if (file_size > 0) {
        gr_batch_header h;
        if (read_header(seg, 0, file_size, &h) != 0)
            return "unreadable first batch";
        if (h.base_offset < seg->base_offset)
            return "first batch below the segment's base offset";
        seg->first_timestamp = h.max_timestamp;
    }
    bool first = true;
    uint64_t walk_from = pos;
    while (pos < file_size) {
        gr_batch_header h;
        if (read_header(seg, pos, file_size, &h) != 0)
            return "malformed batch header in the tail";
        if (first && pos > 0 && h.base_offset != seg->next_offset)
            return "offset index entry does not match its batch";
        if ((!first && h.base_offset < seg->next_offset) || h.last_offset_delta < 0)
            return "offsets not increasing";
        if (gr_batch_last_offset(&h) - seg->base_offset > REL_MAX)
            return "offset beyond the segment's range";
        first = false;
        if (h.max_timestamp > seg->max_timestamp)
            seg->max_timestamp = h.max_timestamp;
        seg->last_batch_base = h.base_offset;
        seg->next_offset = gr_batch_last_offset(&h) + 1;
        pos += gr_batch_size(&h);
    }
    seg->size = pos;
    seg->bytes_since_index = (uint32_t)(pos - walk_from);
    if (seg->last_batch_base < 0 && file_size > 0)
        return "no batch found";
    return NULL;
}

/* ---- life cycle ---- */

static gr_segment *alloc_segment(const char *dir, const char *name, int64_t base, const char *suffix,
                                 size_t index_max_bytes, int32_t index_interval, int64_t now_ms)
{
    gr_segment *seg = calloc(1, sizeof *seg);
    if (!seg)
        return NULL;
    char stem[4096];
    if (!gr_segment_filename(stem, sizeof stem, dir, base, "") ||
        strlen(suffix) >= GR_SEGMENT_SUFFIX_MAX) {
        free(seg);
        errno = ENAMETOOLONG;
        return NULL;
    }
    seg->stem = strdup(stem);
    seg->name = strdup(name);
    if (!seg->stem || !seg->name) {
        free(seg->stem);
        free(seg->name);
        free(seg);
        errno = ENOMEM;
        return NULL;
    }
    snprintf(seg->suffix, sizeof seg->suffix, "%s", suffix);
    seg->base_offset = base;
    seg->fd = -1;
    seg->oidx.fd = -1;
    seg->tidx.fd = -1;
    seg->created_ms = now_ms;
    seg->index_max_bytes = index_max_bytes;
    seg->index_interval = index_interval;
    atomic_init(&seg->refs, 1);
    reset_state(seg);
    return seg;
}

static void free_segment(gr_segment *seg)
{
    if (seg->fd >= 0)
        close(seg->fd);
    if (seg->oidx.path)
        gr_index_close(&seg->oidx);
    if (seg->tidx.path)
        gr_index_close(&seg->tidx);
    free(seg->stem);
    free(seg->name);
    free(seg);
}

/* Opens the three files; trunc empties them. */
static int open_files(gr_segment *seg, bool trunc, size_t index_max_bytes)
{
    char path[4200];
    if (!seg_path(seg, path, sizeof path, ".log", seg->suffix)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    seg->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
    if (seg->fd < 0)
        return -1;
    const char *exts[2] = {".index", ".timeindex"};
    gr_index *idx[2] = {&seg->oidx, &seg->tidx};
    for (int i = 0; i < 2; i++) {
        if (!seg_path(seg, path, sizeof path, exts[i], seg->suffix)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (trunc && unlink(path) != 0 && errno != ENOENT)
            return -1;
        if (gr_index_open(idx[i], path, i == 0 ? GR_INDEX_OFFSET : GR_INDEX_TIME, seg->base_offset,
                          index_max_bytes) != 0)
            return -1;
    }
    return 0;
}

gr_segment *gr_segment_create(const char *dir, const char *name, int64_t base, const char *suffix,
                              size_t index_max_bytes, int32_t index_interval, int64_t now_ms)
{
    gr_segment *seg = alloc_segment(dir, name, base, suffix, index_max_bytes, index_interval, now_ms);
    if (!seg)
        return NULL;
    if (open_files(seg, true, index_max_bytes) != 0) {
        int saved = errno;
        free_segment(seg);
        errno = saved;
        return NULL;
    }
    return seg;
}

gr_segment *gr_segment_open(const char *dir, const char *name, int64_t base, const char *suffix,
                            size_t index_max_bytes, int32_t index_interval,
                            gr_segment_open_mode mode, int64_t now_ms, gr_segment_recovery *rec)
{
    memset(rec, 0, sizeof *rec);
    gr_segment *seg = alloc_segment(dir, name, base, suffix, index_max_bytes, index_interval, now_ms);
    if (!seg)
        return NULL;
    if (open_files(seg, false, index_max_bytes) != 0)
        goto fail;
    struct stat st;
    if (fstat(seg->fd, &st) != 0)
        goto fail;
    bool recover = mode == GR_SEGMENT_RECOVER;
    if (!recover) {
        bool full = mode == GR_SEGMENT_CHECK;
        const char *why = NULL;
        if (st.st_size > 0 && (seg->oidx.created || seg->tidx.created))
            why = "missing index";
        else if (seg->oidx.ragged || seg->tidx.ragged)
            why = "index size not a whole number of entries";
        if (!why)
            why = gr_index_check(&seg->oidx, (uint64_t)st.st_size, INT64_MAX, full);
        if (!why)
            why = load_tail(seg, (uint64_t)st.st_size);
        if (!why)
            why = gr_index_check(&seg->oidx, seg->size, seg->next_offset, full);
        if (!why)
            why = gr_index_check(&seg->tidx, seg->size, seg->next_offset, full);
        if (why) {
            GR_WARN(SUB, "%s: segment %" PRId64 " inconsistent (%s): recovering it", name, base, why);
            recover = true;
        }
    }
    if (recover && gr_segment_recover(seg, rec) != 0)
        goto fail;
    return seg;
fail:;
    int saved = errno;
    free_segment(seg);
    errno = saved;
    return NULL;
}

gr_segment *gr_segment_ref(gr_segment *seg)
{
    atomic_fetch_add(&seg->refs, 1);
    return seg;
}

void gr_segment_unref(gr_segment *seg)
{
    if (seg && atomic_fetch_sub(&seg->refs, 1) == 1)
        free_segment(seg);
}

/* ---- recovery ---- */

int gr_segment_recover(gr_segment *seg, gr_segment_recovery *rec)
{
    memset(rec, 0, sizeof *rec);
    struct stat st;
    if (fstat(seg->fd, &st) != 0)
        return -1;
    uint64_t file_size = (uint64_t)st.st_size;
    gr_index_reset(&seg->oidx);
    gr_index_reset(&seg->tidx);
    reset_state(seg);
    /* Room for every entry the rebuild can make; trimmed again below when
     * the segment is inactive. */
    uint64_t need = file_size / ((uint64_t)(seg->index_interval > 0 ? seg->index_interval : 0) + 1) + 2;
    size_t room = seg->index_max_bytes;
    if (need * GR_INDEX_TIME_ENTRY > room)
        room = need * GR_INDEX_TIME_ENTRY > (uint64_t)INT32_MAX ? (size_t)INT32_MAX
                                                                : (size_t)(need * GR_INDEX_TIME_ENTRY);
    if (gr_index_resize(&seg->oidx, room) != 0 || gr_index_resize(&seg->tidx, room) != 0)
        return -1;
    scanner s = {.fd = seg->fd, .end = file_size};
    uint64_t pos = 0;
    const char *why = NULL;
    while (pos < file_size) {
        const uint8_t *p;
        gr_batch_header h;
        int r = scan_get(&s, pos, GR_BATCH_HEADER_SIZE, &p);
        if (r < 0)
            goto io;
        if (r > 0) {
            why = "torn batch header";
            break;
        }
        gr_batch_result br = gr_batch_parse_header(p, (size_t)(file_size - pos), &h);
        if (br == GR_BATCH_TRUNCATED) {
            why = "torn batch";
            break;
        }
        if (br != GR_BATCH_OK) {
            why = gr_batch_result_str(br);
            break;
        }
        size_t sz = gr_batch_size(&h);
        if (pos + sz > (uint64_t)INT32_MAX + 1) {
            why = "batch beyond 2 GiB";
            break;
        }
        r = scan_get(&s, pos, sz, &p);
        if (r < 0)
            goto io;
        if (r > 0) {
            why = "torn batch";
            break;
        }
        br = gr_batch_validate(p, sz, false, 0, &h);
        if (br != GR_BATCH_OK) {
            why = gr_batch_result_str(br);
            break;
        }
        if (h.base_offset < seg->next_offset || h.last_offset_delta < 0) {
            why = "offsets not increasing";
            break;
        }
        if (gr_batch_last_offset(&h) - seg->base_offset > REL_MAX) {
            why = "offset beyond the segment's range";
            break;
        }
        account_batch(seg, pos, &h);
        rec->batches++;
        pos += sz;
    }
    free(s.buf);
    s.buf = NULL;
    if (pos < file_size) {
        rec->truncated_bytes = file_size - pos;
        rec->reason = why;
        GR_WARN(SUB, "%s: segment %" PRId64 ": cutting %" PRIu64 " bytes at position %" PRIu64
                     " (%s), log end offset of the segment %" PRId64,
                seg->name, seg->base_offset, rec->truncated_bytes, pos, why, seg->next_offset);
        if (ftruncate(seg->fd, (off_t)pos) != 0)
            return -1;
    }
    seg->size = pos;
    seg->dirty = true;
    if (seg->index_max_bytes == 0 &&
        (gr_index_resize(&seg->oidx, 0) != 0 || gr_index_resize(&seg->tidx, 0) != 0))
        return -1;
    return 0;
io:
    free(s.buf);
    GR_ERROR(SUB, "%s: segment %" PRId64 ": read failed during recovery: %s", seg->name,
             seg->base_offset, strerror(errno));
    return -1;
}

int gr_segment_rebuild_indexes(gr_segment *seg)
{
    gr_segment_recovery rec;
    uint64_t before = seg->size;
    if (gr_segment_recover(seg, &rec) != 0)
        return -1;
    if (seg->size != before) {
        /* The log itself was bad below size: report, the data is gone. */
        GR_ERROR(SUB, "%s: segment %" PRId64 " was corrupt below its end while rebuilding indexes",
                 seg->name, seg->base_offset);
    }
    return 0;
}

/* ---- append ---- */

int gr_segment_append(gr_segment *seg, const uint8_t *data, size_t len)
{
    /* Check the batches' framing and offsets before writing anything. */
    int64_t next = seg->next_offset;
    for (size_t at = 0; at < len;) {
        gr_batch_header h;
        if (gr_batch_parse_header(data + at, len - at, &h) != GR_BATCH_OK || h.base_offset < next ||
            h.last_offset_delta < 0 ||
            gr_batch_last_offset(&h) - seg->base_offset > REL_MAX) {
            errno = EINVAL;
            return -1;
        }
        next = gr_batch_last_offset(&h) + 1;
        at += gr_batch_size(&h);
    }
    if (len == 0)
        return 0;
    if (seg->size + len > (uint64_t)INT32_MAX + 1) {
        errno = EFBIG;
        return -1;
    }
    uint64_t pos = seg->size;
    for (size_t done = 0; done < len;) {
        ssize_t w = pwrite(seg->fd, data + done, len - done, (off_t)(pos + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            if (ftruncate(seg->fd, (off_t)seg->size) != 0)
                GR_ERROR(SUB, "%s: segment %" PRId64 ": cannot cut a failed write: %s", seg->name,
                         seg->base_offset, strerror(errno));
            errno = saved;
            return -1;
        }
        done += (size_t)w;
    }
    for (size_t at = 0; at < len;) {
        gr_batch_header h;
        gr_batch_parse_header(data + at, len - at, &h);
        account_batch(seg, pos + at, &h);
        at += gr_batch_size(&h);
    }
    seg->dirty = true;
    return 0;
}

/* ---- lookups ---- */

/* Index entry verified against the log, or the segment start. */
static int start_position(gr_segment *seg, int64_t target, uint64_t *pos)
{
    gr_index_entry e;
    *pos = 0;
    if (gr_index_lookup_offset(&seg->oidx, target, &e) < 0)
        return 0;
    gr_batch_header h;
    if (e.position < seg->size && read_header(seg, e.position, seg->size, &h) == 0 &&
        h.base_offset == e.offset) {
        *pos = e.position;
        return 0;
    }
    GR_WARN(SUB, "%s: segment %" PRId64 ": offset index entry %" PRId64 "->%" PRIu32
                 " does not match the log: rebuilding the indexes",
            seg->name, seg->base_offset, e.offset, e.position);
    return gr_segment_rebuild_indexes(seg);
}

int gr_segment_find(gr_segment *seg, int64_t target, uint64_t *pos, gr_batch_header *h)
{
    if (target >= seg->next_offset)
        return 1;
    uint64_t p;
    if (start_position(seg, target, &p) != 0)
        return -1;
    while (p < seg->size) {
        if (read_header(seg, p, seg->size, h) != 0) {
            GR_ERROR(SUB, "%s: segment %" PRId64 ": unreadable batch at position %" PRIu64 ": %s",
                     seg->name, seg->base_offset, p, strerror(errno));
            return -1;
        }
        if (gr_batch_last_offset(h) >= target) {
            *pos = p;
            return 0;
        }
        p += gr_batch_size(h);
    }
    return 1;
}

int gr_segment_range(gr_segment *seg, uint64_t pos, size_t max_bytes, int64_t max_offset,
                     uint64_t *len)
{
    uint64_t n = 0;
    while (pos + n < seg->size) {
        gr_batch_header h;
        if (read_header(seg, pos + n, seg->size, &h) != 0) {
            GR_ERROR(SUB, "%s: segment %" PRId64 ": unreadable batch at position %" PRIu64,
                     seg->name, seg->base_offset, pos + n);
            return -1;
        }
        uint64_t sz = gr_batch_size(&h);
        if (h.base_offset >= max_offset || (n > 0 && n + sz > max_bytes))
            break;
        n += sz;
        if (n >= max_bytes)
            break;
    }
    *len = n;
    return 0;
}

/* Timestamp of a record as ListOffsets sees it. */
static int64_t record_ts(const gr_batch_header *h, const gr_record *r)
{
    if (h->attributes & GR_BATCH_ATTR_LOG_APPEND_TIME)
        return h->max_timestamp;
    return h->base_timestamp + r->timestamp_delta;
}

/* The first record of the batch at pos with timestamp >= ts (exact: ==
 * when want_equal). Falls back to the batch's base offset and max timestamp
 * if the records cannot be iterated. */
static void first_record_at(gr_segment *seg, uint64_t pos, const gr_batch_header *h, int64_t ts,
                            bool want_equal, int64_t min_offset, int64_t *offset, int64_t *timestamp)
{
    *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
    *timestamp = h->max_timestamp;
    if (h->attributes & GR_BATCH_ATTR_LOG_APPEND_TIME)
        return;
    uint8_t *buf = read_batch(seg, pos, h);
    if (!buf)
        return;
    gr_record_iter it;
    if (gr_record_iter_init(&it, buf, gr_batch_size(h), GR_SEGMENT_MAX_UNCOMPRESSED) == GR_BATCH_OK) {
        gr_record r;
        gr_batch_result err;
        while (gr_record_iter_next(&it, &r, &err) == 1) {
            int64_t t = record_ts(h, &r);
            if (h->base_offset + r.offset_delta < min_offset)
                continue;
            if (want_equal ? t == ts : t >= ts) {
                *offset = h->base_offset + r.offset_delta;
                *timestamp = t;
                break;
            }
        }
        gr_record_iter_free(&it);
    }
    free(buf);
}

int gr_segment_find_timestamp(gr_segment *seg, int64_t ts, int64_t min_offset, int64_t *offset,
                              int64_t *timestamp)
{
    if (seg->size == 0 || seg->max_timestamp < ts)
        return 1;
    /* Every record up to the time index entry's batch is older than ts. */
    gr_index_entry e;
    int64_t from = seg->base_offset;
    if (gr_index_lookup_time(&seg->tidx, ts, &e) >= 0)
        from = e.offset;
    if (from < min_offset)
        from = min_offset;
    uint64_t pos;
    gr_batch_header h;
    int r = gr_segment_find(seg, from, &pos, &h);
    if (r != 0)
        return r;
    while (pos < seg->size) {
        if (read_header(seg, pos, seg->size, &h) != 0)
            return -1;
        if (h.max_timestamp >= ts && gr_batch_last_offset(&h) >= min_offset) {
            first_record_at(seg, pos, &h, ts, false, min_offset, offset, timestamp);
            return 0;
        }
        pos += gr_batch_size(&h);
    }
    return 1;
}

int gr_segment_find_max_timestamp(gr_segment *seg, int64_t *offset, int64_t *timestamp)
{
    if (seg->size == 0)
        return 1;
    for (uint64_t pos = 0; pos < seg->size;) {
        gr_batch_header h;
        if (read_header(seg, pos, seg->size, &h) != 0)
            return -1;
        if (h.max_timestamp == seg->max_timestamp) {
            first_record_at(seg, pos, &h, h.max_timestamp, true, INT64_MIN, offset, timestamp);
            return 0;
        }
        pos += gr_batch_size(&h);
    }
    return 1;
}

/* ---- truncation, flush, roll ---- */

int gr_segment_truncate_to(gr_segment *seg, int64_t offset)
{
    uint64_t pos;
    gr_batch_header h;
    int r = gr_segment_find(seg, offset, &pos, &h);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (ftruncate(seg->fd, (off_t)pos) != 0)
        return -1;
    gr_index_truncate_offset(&seg->oidx, h.base_offset);
    gr_index_truncate_offset(&seg->tidx, h.base_offset);
    const char *why = load_tail(seg, pos);
    if (why) { /* the prefix was verified once; this means the disk changed under us */
        GR_ERROR(SUB, "%s: segment %" PRId64 " inconsistent after truncation (%s)", seg->name,
                 seg->base_offset, why);
        gr_segment_recovery rec;
        if (gr_segment_recover(seg, &rec) != 0)
            return -1;
    }
    seg->dirty = true;
    return 0;
}

int gr_segment_flush(gr_segment *seg)
{
    if (!seg->dirty)
        return 0;
    if (fsync(seg->fd) != 0 || gr_index_sync(&seg->oidx) != 0 || gr_index_sync(&seg->tidx) != 0)
        return -1;
    seg->dirty = false;
    return 0;
}

int gr_segment_seal(gr_segment *seg)
{
    if (seg->last_batch_base >= 0) {
        /* The final time index entry records the segment's max timestamp,
         * which is what retention and the next open read. Skip-full: the
         * trim below happens anyway; one slot is kept free for it by the
         * roll rule (the log rolls when an index is full). */
        gr_index_append_time(&seg->tidx, seg->max_timestamp, seg->last_batch_base);
    }
    seg->index_max_bytes = 0;
    if (gr_index_resize(&seg->oidx, 0) != 0 || gr_index_resize(&seg->tidx, 0) != 0)
        return -1;
    seg->dirty = true;
    return gr_segment_flush(seg);
}

int gr_segment_activate(gr_segment *seg, size_t index_max_bytes)
{
    seg->index_max_bytes = index_max_bytes;
    if (gr_index_resize(&seg->oidx, index_max_bytes) != 0 ||
        gr_index_resize(&seg->tidx, index_max_bytes) != 0)
        return -1;
    return 0;
}

int gr_segment_rename(gr_segment *seg, const char *suffix)
{
    if (strlen(suffix) >= GR_SEGMENT_SUFFIX_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char from[4200], to[4200];
    bool log_last = suffix[0] == '\0';
    for (int step = 0; step < 3; step++) {
        int which = log_last ? (step + 1) % 3 : step; /* 0 log, 1 index, 2 timeindex */
        if (which == 0) {
            if (!seg_path(seg, from, sizeof from, ".log", seg->suffix) ||
                !seg_path(seg, to, sizeof to, ".log", suffix)) {
                errno = ENAMETOOLONG;
                return -1;
            }
            if (rename(from, to) != 0)
                return -1;
        } else {
            gr_index *idx = which == 1 ? &seg->oidx : &seg->tidx;
            if (!seg_path(seg, to, sizeof to, which == 1 ? ".index" : ".timeindex", suffix)) {
                errno = ENAMETOOLONG;
                return -1;
            }
            if (gr_index_rename(idx, to) != 0)
                return -1;
        }
    }
    snprintf(seg->suffix, sizeof seg->suffix, "%s", suffix);
    return 0;
}

const char *gr_segment_should_roll(const gr_segment *seg, size_t len, int64_t last_offset,
                                   int64_t max_ts, int64_t segment_bytes, int64_t segment_ms,
                                   int64_t now_ms)
{
    if (last_offset - seg->base_offset > REL_MAX)
        return "relative offset overflow";
    if (seg->size == 0)
        return NULL; /* an empty segment takes anything that fits its offsets */
    if ((int64_t)(seg->size + len) > segment_bytes || seg->size + len > (uint64_t)INT32_MAX)
        return "segment.bytes";
    /* Kafka's rule: the span of record timestamps in the segment, or wall
     * time since creation when the batches carry no timestamps. */
    int64_t waited = seg->first_timestamp >= 0 && max_ts >= 0 ? max_ts - seg->first_timestamp
                                                              : now_ms - seg->created_ms;
    if (waited > segment_ms)
        return "segment.ms";
    /* One slot stays free for the final time index entry written on roll. */
    if (gr_index_capacity(&seg->oidx) - seg->oidx.entries <= 1 ||
        gr_index_capacity(&seg->tidx) - seg->tidx.entries <= 1)
        return "segment.index.bytes";
    return NULL;
}
