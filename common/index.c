/*
 * index.c - see index.h.
 *
 * The file size always equals map_len: opening and resizing ftruncate the
 * file first and map it whole afterwards, so the mapping never extends past
 * the end of the file (which would fault). Entries live at the start of the
 * mapping; bytes after `entries` entries are zero or stale and are never
 * read. A mapping of length zero is represented by map == NULL.
 */
#include "common/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

size_t gr_index_entry_size(gr_index_kind kind)
{
    return kind == GR_INDEX_OFFSET ? GR_INDEX_OFFSET_ENTRY : GR_INDEX_TIME_ENTRY;
}

static size_t esize(const gr_index *idx) { return gr_index_entry_size(idx->kind); }

uint32_t gr_index_capacity(const gr_index *idx) { return (uint32_t)(idx->map_len / esize(idx)); }

bool gr_index_full(const gr_index *idx) { return idx->entries >= gr_index_capacity(idx); }

gr_index_entry gr_index_get(const gr_index *idx, uint32_t i)
{
    gr_index_entry e = {0, 0, -1};
    const uint8_t *p = idx->map + (size_t)i * esize(idx);
    if (idx->kind == GR_INDEX_OFFSET) {
        e.offset = idx->base_offset + (int32_t)get_be(p, 4);
        e.position = (uint32_t)get_be(p + 4, 4);
    } else {
        e.timestamp = (int64_t)get_be(p, 8);
        e.offset = idx->base_offset + (int32_t)get_be(p + 8, 4);
    }
    return e;
}

bool gr_index_last(const gr_index *idx, gr_index_entry *out)
{
    if (idx->entries == 0)
        return false;
    *out = gr_index_get(idx, idx->entries - 1);
    return true;
}

static bool entry_is_zero(const gr_index *idx, uint32_t i)
{
    const uint8_t *p = idx->map + (size_t)i * esize(idx);
    for (size_t k = 0; k < esize(idx); k++)
        if (p[k])
            return false;
    return true;
}

/* Sets the file size to len and maps it whole. */
static int remap(gr_index *idx, size_t len)
{
    if (idx->map) {
        munmap(idx->map, idx->map_len);
        idx->map = NULL;
        idx->map_len = 0;
    }
    if (ftruncate(idx->fd, (off_t)len) != 0)
        return -1;
    if (len == 0)
        return 0;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, idx->fd, 0);
    if (m == MAP_FAILED)
        return -1;
    idx->map = m;
    idx->map_len = len;
    return 0;
}

int gr_index_open(gr_index *idx, const char *path, gr_index_kind kind, int64_t base_offset,
                  size_t max_bytes)
{
    memset(idx, 0, sizeof *idx);
    idx->kind = kind;
    idx->fd = -1;
    idx->base_offset = base_offset;
    idx->path = strdup(path);
    if (!idx->path) {
        errno = ENOMEM;
        return -1;
    }
    idx->fd = open(path, O_RDWR | O_CLOEXEC);
    if (idx->fd < 0 && errno == ENOENT) {
        idx->created = true;
        idx->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (idx->fd < 0)
        goto fail;
    struct stat st;
    if (fstat(idx->fd, &st) != 0)
        goto fail;
    size_t es = esize(idx);
    size_t have = (size_t)st.st_size / es * es;
    idx->ragged = have != (size_t)st.st_size;
    if (have > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, idx->fd, 0);
        if (m == MAP_FAILED)
            goto fail;
        idx->map = m;
        idx->map_len = (size_t)st.st_size;
        idx->entries = (uint32_t)(have / es);
        while (idx->entries > 0 && entry_is_zero(idx, idx->entries - 1))
            idx->entries--;
    }
    if (gr_index_resize(idx, max_bytes) != 0)
        goto fail;
    return 0;
fail:;
    int saved = errno;
    gr_index_close(idx);
    errno = saved;
    return -1;
}

void gr_index_close(gr_index *idx)
{
    if (idx->map)
        munmap(idx->map, idx->map_len);
    if (idx->fd >= 0)
        close(idx->fd);
    free(idx->path);
    memset(idx, 0, sizeof *idx);
    idx->fd = -1;
}

int gr_index_resize(gr_index *idx, size_t max_bytes)
{
    size_t es = esize(idx);
    size_t want = max_bytes > 0 ? max_bytes / es * es : (size_t)idx->entries * es;
    if (want < (size_t)idx->entries * es)
        want = (size_t)idx->entries * es; /* never drop entries by resizing */
    if (want / es > INT32_MAX)
        want = (size_t)INT32_MAX / es * es;
    if (want == idx->map_len)
        return 0;
    /* Growing leaves zeros after the entries (ftruncate fills with zeros),
     * but a shrink-then-grow could expose stale bytes of an older mapping
     * only if entries had been dropped; clear them so that the trailing-zero
     * rule of open() holds for whatever a crash leaves behind. */
    if (idx->map && idx->map_len > (size_t)idx->entries * es)
        memset(idx->map + (size_t)idx->entries * es, 0, idx->map_len - (size_t)idx->entries * es);
    return remap(idx, want);
}

int gr_index_rename(gr_index *idx, const char *new_path)
{
    char *p = strdup(new_path);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    if (rename(idx->path, new_path) != 0) {
        int saved = errno;
        free(p);
        errno = saved;
        return -1;
    }
    free(idx->path);
    idx->path = p;
    return 0;
}

int gr_index_sync(gr_index *idx)
{
    if (idx->map && msync(idx->map, idx->map_len, MS_SYNC) != 0)
        return -1;
    return fsync(idx->fd);
}

int gr_index_append_offset(gr_index *idx, int64_t offset, uint32_t position)
{
    int64_t rel = offset - idx->base_offset;
    if (rel < 0 || rel > INT32_MAX || position == 0 || position > INT32_MAX)
        return -1;
    gr_index_entry last;
    if (gr_index_last(idx, &last) && (last.offset >= offset || last.position >= position))
        return 1;
    if (gr_index_full(idx))
        return -1;
    uint8_t *p = idx->map + (size_t)idx->entries * GR_INDEX_OFFSET_ENTRY;
    put_be(p, (uint64_t)rel, 4);
    put_be(p + 4, position, 4);
    idx->entries++;
    return 0;
}

int gr_index_append_time(gr_index *idx, int64_t timestamp, int64_t offset)
{
    int64_t rel = offset - idx->base_offset;
    if (rel < 0 || rel > INT32_MAX)
        return -1;
    gr_index_entry last;
    if (gr_index_last(idx, &last) && (last.timestamp >= timestamp || last.offset > offset))
        return 1;
    if (gr_index_full(idx))
        return -1;
    uint8_t *p = idx->map + (size_t)idx->entries * GR_INDEX_TIME_ENTRY;
    put_be(p, (uint64_t)timestamp, 8);
    put_be(p + 8, (uint64_t)rel, 4);
    idx->entries++;
    return 0;
}

/* The last entry i for which below(entry i) holds, assuming it holds for a
 * prefix. Each probe is compared, so the result always satisfies below(). */
static int64_t search(const gr_index *idx, int64_t target, gr_index_entry *out)
{
    int64_t lo = 0, hi = (int64_t)idx->entries - 1, found = -1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        gr_index_entry e = gr_index_get(idx, (uint32_t)mid);
        bool below = idx->kind == GR_INDEX_OFFSET ? e.offset <= target : e.timestamp < target;
        if (below) {
            found = mid;
            if (out)
                *out = e;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

int64_t gr_index_lookup_offset(const gr_index *idx, int64_t target, gr_index_entry *out)
{
    return search(idx, target, out);
}

int64_t gr_index_lookup_time(const gr_index *idx, int64_t target, gr_index_entry *out)
{
    return search(idx, target, out);
}

void gr_index_reset(gr_index *idx)
{
    if (idx->map)
        memset(idx->map, 0, (size_t)idx->entries * esize(idx));
    idx->entries = 0;
}

void gr_index_truncate_offset(gr_index *idx, int64_t offset)
{
    uint32_t keep = idx->entries;
    while (keep > 0 && gr_index_get(idx, keep - 1).offset >= offset)
        keep--;
    if (idx->map && keep < idx->entries)
        memset(idx->map + (size_t)keep * esize(idx), 0, (size_t)(idx->entries - keep) * esize(idx));
    idx->entries = keep;
}

const char *gr_index_check(const gr_index *idx, uint64_t log_size, int64_t next_offset, bool full)
{
    if (idx->entries == 0)
        return NULL;
    gr_index_entry prev = {0, 0, 0};
    for (uint32_t i = 0; i < idx->entries; i++) {
        if (!full && i != 0 && i != idx->entries - 1)
            i = idx->entries - 1; /* first and last only */
        gr_index_entry e = gr_index_get(idx, i);
        if (e.offset < idx->base_offset || e.offset >= next_offset)
            return "entry offset outside the segment";
        if (idx->kind == GR_INDEX_OFFSET) {
            if (e.position == 0 || e.position >= log_size)
                return "entry position outside the log file";
            if (i > 0 && (e.offset <= prev.offset || e.position <= prev.position))
                return "entries not increasing";
        } else if (i > 0 && (e.timestamp <= prev.timestamp || e.offset < prev.offset)) {
            return "entries not increasing";
        }
        prev = e;
    }
    return NULL;
}
