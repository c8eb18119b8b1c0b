/* codec.c - see codec.h. */
#include "proto/codec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Records err in the reader (so it stays failed, like its own errors). */
static int fail(gr_reader *r, int err)
{
    if (r->err == GR_OK)
        r->err = err;
    return err;
}

/*
 * Reads a length prefix in either spelling into *len (-1 = null) and checks
 * it against nullability and max. Both spellings reject a length that does not
 * fit an int32; classic ones reject negatives other than -1.
 */
static int read_len(gr_reader *r, bool compact, bool wide, bool nullable, int64_t max,
                    int32_t *len)
{
    int64_t n;
    if (compact) {
        uint32_t u;
        int e = gr_read_uvarint(r, &u);
        if (e)
            return e;
        n = (int64_t)u - 1;
    } else if (wide) {
        int32_t v;
        int e = gr_read_i32(r, &v);
        if (e)
            return e;
        n = v;
    } else {
        int16_t v;
        int e = gr_read_i16(r, &v);
        if (e)
            return e;
        n = v;
    }
    if (n < -1 || n > max)
        return fail(r, GR_ERR_MALFORMED);
    if (n == -1 && !nullable)
        return fail(r, GR_ERR_MALFORMED);
    *len = (int32_t)n;
    return GR_OK;
}

/* A length-prefixed span: its bytes stay in the reader's buffer. */
static int read_span(gr_reader *r, bool compact, bool wide, bool nullable, int32_t max,
                     const uint8_t **ptr, int32_t *len)
{
    int e = read_len(r, compact, wide, nullable, max, len);
    if (e || *len < 0) {
        *ptr = NULL;
        return e;
    }
    return gr_read_raw(r, (size_t)*len, ptr);
}

int gr_proto_read_str(gr_reader *r, bool compact, bool nullable, gr_str *out)
{
    const uint8_t *p;
    int32_t len;
    int e = read_span(r, compact, false, nullable, GR_PROTO_MAX_STRING, &p, &len);
    if (e == GR_OK)
        *out = (gr_str){(const char *)p, len};
    return e;
}

int gr_proto_read_bytes(gr_reader *r, bool compact, bool nullable, gr_bytes *out)
{
    const uint8_t *p;
    int32_t len;
    int e = read_span(r, compact, true, nullable, INT32_MAX, &p, &len);
    if (e == GR_OK)
        *out = (gr_bytes){p, len};
    return e;
}

int gr_proto_read_count(gr_reader *r, bool compact, bool nullable, size_t min_elem,
                        int32_t *count)
{
    int32_t n;
    int e = read_len(r, compact, true, nullable, INT32_MAX, &n);
    if (e)
        return e;
    if (min_elem == 0)
        min_elem = 1;
    /* Compared by division so that no product can overflow. */
    if (n > 0 && (size_t)n > gr_reader_remaining(r) / min_elem)
        return fail(r, GR_ERR_TRUNCATED);
    *count = n;
    return GR_OK;
}

int gr_proto_read_present(gr_reader *r, bool *present)
{
    int8_t marker;
    int e = gr_read_i8(r, &marker);
    if (e)
        return e;
    *present = marker >= 0;
    return GR_OK;
}

int gr_proto_read_tag_count(gr_reader *r, uint32_t *count)
{
    int e = gr_read_uvarint(r, count);
    if (e)
        return e;
    /* Every tagged field takes at least a tag byte and a size byte. */
    if (*count > gr_reader_remaining(r) / 2)
        return fail(r, GR_ERR_TRUNCATED);
    return GR_OK;
}

int gr_proto_read_tag(gr_reader *r, uint32_t *tag, gr_reader *value)
{
    uint32_t size;
    int e = gr_read_uvarint(r, tag);
    if (!e)
        e = gr_read_uvarint(r, &size);
    if (e)
        return e;
    const uint8_t *p;
    e = gr_read_raw(r, size, &p);
    if (e)
        return e;
    gr_reader_init(value, p, size);
    return GR_OK;
}

int gr_proto_skip_tags(gr_reader *r)
{
    uint32_t n;
    int e = gr_proto_read_tag_count(r, &n);
    for (uint32_t i = 0; !e && i < n; i++) {
        uint32_t tag;
        gr_reader value;
        e = gr_proto_read_tag(r, &tag, &value);
    }
    return e;
}

void *gr_proto_alloc_array(gr_arena *a, int32_t count, size_t elem_size)
{
    if (count <= 0)
        return NULL;
    return gr_arena_calloc(a, (size_t)count, elem_size);
}

/* ---- encoding ---- */

static void write_len(gr_writer *w, bool compact, bool wide, int32_t len)
{
    if (compact)
        gr_write_uvarint(w, (uint32_t)((int64_t)len + 1));
    else if (wide)
        gr_write_i32(w, len);
    else
        gr_write_i16(w, (int16_t)len);
}

/* Common checks of a length-prefixed value about to be written. */
static int check_len(bool nullable, int32_t len, int32_t max, const void *ptr)
{
    if (len < -1 || len > max)
        return GR_ERR_MALFORMED;
    if (len == -1 && !nullable)
        return GR_ERR_MALFORMED;
    if (len > 0 && !ptr)
        return GR_ERR_MALFORMED;
    return GR_OK;
}

int gr_proto_write_str(gr_writer *w, bool compact, bool nullable, gr_str s)
{
    int e = check_len(nullable, s.len, GR_PROTO_MAX_STRING, s.ptr);
    if (e)
        return e;
    write_len(w, compact, false, s.len);
    if (s.len > 0)
        gr_write_raw(w, s.ptr, (size_t)s.len);
    return w->err;
}

static int64_t marker_slot(const void *p);
static int write_file_range(gr_writer *w, bool compact, gr_file_range *fr, int32_t len);

int gr_proto_write_bytes(gr_writer *w, bool compact, bool nullable, gr_bytes b)
{
    if (marker_slot(b.ptr) >= 0) {
        /* A file-backed value; one whose table is gone names nothing. */
        gr_file_range *fr = gr_proto_file_range(b);
        return fr ? write_file_range(w, compact, fr, b.len) : GR_ERR_MALFORMED;
    }
    int e = check_len(nullable, b.len, INT32_MAX, b.ptr);
    if (e)
        return e;
    write_len(w, compact, true, b.len);
    if (b.len > 0)
        gr_write_raw(w, b.ptr, (size_t)b.len);
    return w->err;
}

int gr_proto_write_count(gr_writer *w, bool compact, bool nullable, int32_t count,
                         const void *items)
{
    int e = check_len(nullable, count, INT32_MAX, items);
    if (e)
        return e;
    write_len(w, compact, true, count);
    return w->err;
}

int gr_proto_write_present(gr_writer *w, bool nullable, bool present)
{
    if (!nullable)
        return present ? GR_OK : GR_ERR_MALFORMED;
    gr_write_i8(w, present ? 1 : -1);
    return w->err;
}

int gr_proto_write_tag(gr_writer *w, uint32_t tag, size_t size)
{
    if (size > UINT32_MAX)
        return GR_ERR_MALFORMED;
    gr_write_uvarint(w, tag);
    gr_write_uvarint(w, (uint32_t)size);
    return w->err;
}

/* ---- sizes ---- */

static size_t len_size(bool compact, bool wide, int32_t len)
{
    if (compact)
        return gr_uvarint_size((uint32_t)((int64_t)len + 1));
    return wide ? 4 : 2;
}

size_t gr_proto_str_size(bool compact, gr_str s)
{
    return len_size(compact, false, s.len) + (s.len > 0 ? (size_t)s.len : 0);
}

size_t gr_proto_bytes_size(bool compact, gr_bytes b)
{
    return len_size(compact, true, b.len) + (b.len > 0 ? (size_t)b.len : 0);
}

size_t gr_proto_count_size(bool compact, int32_t count) { return len_size(compact, true, count); }

size_t gr_proto_tag_size(uint32_t tag, size_t size)
{
    return gr_uvarint_size(tag) + gr_uvarint_size((uint32_t)size) + size;
}

bool gr_proto_str_is(gr_str s, const char *dflt)
{
    if (!dflt)
        return s.len == -1;
    if (s.len <= 0) /* an empty view may have a NULL pointer: keep it from memcmp */
        return s.len == 0 && dflt[0] == '\0';
    return gr_str_eq(s, dflt);
}

/* ---- file-backed values ----
 *
 * A marker is the address of an element of `slots`, a private array no
 * data can live in, so telling a marker from a data pointer is one range
 * check and never misreads either. The element holds the range. Slots are
 * taken when a range is added and given back when its table is freed, so
 * they bound only the ranges of responses being built, not those being
 * sent.
 */
#define FILE_SLOTS (1u << 16)

static _Atomic(gr_file_range *) slots[FILE_SLOTS];
static uint32_t free_slots[FILE_SLOTS]; /* a stack of returned slots */
static uint32_t nfree_slots, next_new_slot;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static int slot_take(uint32_t *slot)
{
    int rc = GR_OK;
    pthread_mutex_lock(&slots_lock);
    if (nfree_slots > 0)
        *slot = free_slots[--nfree_slots];
    else if (next_new_slot < FILE_SLOTS)
        *slot = next_new_slot++;
    else
        rc = GR_ERR_NOMEM;
    pthread_mutex_unlock(&slots_lock);
    return rc;
}

static void slot_give(uint32_t slot)
{
    atomic_store(&slots[slot], NULL);
    pthread_mutex_lock(&slots_lock);
    free_slots[nfree_slots++] = slot;
    pthread_mutex_unlock(&slots_lock);
}

/* The slot a marker names, or -1 if p is not a marker. */
static int64_t marker_slot(const void *p)
{
    uintptr_t u = (uintptr_t)p, base = (uintptr_t)slots;
    if (!p || u < base || u - base >= sizeof slots)
        return -1;
    return (int64_t)((u - base) / sizeof slots[0]);
}

gr_file_range *gr_proto_file_range(gr_bytes b)
{
    int64_t slot = marker_slot(b.ptr);
    return slot < 0 ? NULL : atomic_load(&slots[slot]);
}

void gr_splices_init(gr_splices *s, gr_writer *w)
{
    memset(s, 0, sizeof *s);
    s->w = w;
}

void gr_file_range_ref(gr_file_range *r) { atomic_fetch_add(&r->refs, 1); }

void gr_file_range_unref(gr_file_range *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->release)
        r->release(r->arg);
    free(r);
}

/* Grows an array of elem-sized items to hold one more. */
static int grow(void **items, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return GR_OK;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*items, ncap * elem);
    if (!p)
        return GR_ERR_NOMEM;
    *items = p;
    *cap = ncap;
    return GR_OK;
}

int gr_splices_add(gr_splices *s, int fd, int64_t offset, size_t len, void (*release)(void *),
                   void *arg, gr_bytes *out)
{
    *out = (gr_bytes){NULL, 0};
    int rc = GR_OK;
    gr_file_range *r = NULL;
    if (len == 0)
        goto fail; /* nothing to send: an empty value, released now */
    if (len > INT32_MAX || offset < 0 || fd < 0) {
        rc = GR_ERR_MALFORMED;
        goto fail;
    }
    if ((rc = grow((void **)&s->ranges, &s->cap_ranges, s->nranges, sizeof *s->ranges)))
        goto fail;
    if (!(r = calloc(1, sizeof *r))) {
        rc = GR_ERR_NOMEM;
        goto fail;
    }
    if ((rc = slot_take(&r->slot))) {
        free(r);
        goto fail;
    }
    r->fd = fd;
    r->offset = offset;
    r->len = (int32_t)len;
    r->release = release;
    r->arg = arg;
    r->owner = s;
    atomic_init(&r->refs, 1); /* the table's */
    atomic_store(&slots[r->slot], r);
    s->ranges[s->nranges++] = r;
    *out = (gr_bytes){(const uint8_t *)&slots[r->slot], r->len};
    return GR_OK;
fail:
    if (release)
        release(arg);
    return rc;
}

static int write_file_range(gr_writer *w, bool compact, gr_file_range *fr, int32_t len)
{
    gr_splices *s = fr->owner;
    if (!s || s->w != w || len != fr->len)
        return GR_ERR_MALFORMED;
    write_len(w, compact, true, len);
    if (w->err)
        return w->err;
    /* A point at or past this one was left by an encoder that rolled back. */
    while (s->npoints > 0 && s->points[s->npoints - 1].pos >= w->len)
        s->npoints--;
    if (grow((void **)&s->points, &s->cap_points, s->npoints, sizeof *s->points)) {
        w->err = GR_ERR_NOMEM;
        return w->err;
    }
    s->points[s->npoints++] = (gr_splice){w->len, fr};
    return GR_OK;
}

uint64_t gr_splices_trim(gr_splices *s)
{
    while (s->npoints > 0 && (!s->w || s->points[s->npoints - 1].pos > s->w->len))
        s->npoints--;
    uint64_t total = 0;
    for (size_t i = 0; i < s->npoints; i++)
        total += (uint64_t)s->points[i].range->len;
    return total;
}

void gr_splices_free(gr_splices *s)
{
    for (size_t i = 0; i < s->nranges; i++) {
        gr_file_range *r = s->ranges[i];
        r->owner = NULL;
        slot_give(r->slot);
        gr_file_range_unref(r);
    }
    free(s->ranges);
    free(s->points);
    memset(s, 0, sizeof *s);
}
