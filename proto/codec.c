/* codec.c - see codec.h. */
#include "proto/codec.h"

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

int gr_proto_write_bytes(gr_writer *w, bool compact, bool nullable, gr_bytes b)
{
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
