/* buf.c - see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

const char *gr_err_str(int err)
{
    switch (err) {
    case GR_OK: return "ok";
    case GR_ERR_TRUNCATED: return "truncated";
    case GR_ERR_MALFORMED: return "malformed";
    case GR_ERR_NOMEM: return "out of memory";
    case GR_ERR_VERSION: return "unsupported version";
    default: return "unknown error";
    }
}

gr_str gr_str_from(const char *cstr)
{
    if (!cstr)
        return GR_STR_NULL;
    return (gr_str){cstr, (int32_t)strlen(cstr)};
}

bool gr_str_eq(gr_str a, const char *cstr)
{
    if (a.len < 0 || !cstr)
        return a.len < 0 && !cstr;
    if (a.len == 0) /* ptr may be NULL: no memcmp */
        return cstr[0] == 0;
    return strlen(cstr) == (size_t)a.len && memcmp(a.ptr, cstr, (size_t)a.len) == 0;
}

bool gr_uuid_is_zero(const gr_uuid *u)
{
    for (int i = 0; i < 16; i++)
        if (u->b[i])
            return false;
    return true;
}

/* ---- reader ---- */

void gr_reader_init(gr_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->err = GR_OK;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL. */
static const uint8_t *take(gr_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->pos) {
        r->err = GR_ERR_TRUNCATED;
        return NULL;
    }
    if (!r->p) /* an empty reader over no buffer: only n == 0 gets here */
        return (const uint8_t *)"";
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static uint64_t be(const uint8_t *q, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | q[i];
    return v;
}

#define READ_BE(name, type, utype, n)                                                              \
    int name(gr_reader *r, type *v)                                                                \
    {                                                                                              \
        const uint8_t *q = take(r, n);                                                             \
        if (!q)                                                                                    \
            return r->err;                                                                         \
        *v = (type)(utype)be(q, n);                                                                \
        return GR_OK;                                                                              \
    }

READ_BE(gr_read_i8, int8_t, uint8_t, 1)
READ_BE(gr_read_i16, int16_t, uint16_t, 2)
READ_BE(gr_read_i32, int32_t, uint32_t, 4)
READ_BE(gr_read_i64, int64_t, uint64_t, 8)
READ_BE(gr_read_u16, uint16_t, uint16_t, 2)
READ_BE(gr_read_u32, uint32_t, uint32_t, 4)

int gr_read_bool(gr_reader *r, bool *v)
{
    const uint8_t *q = take(r, 1);
    if (!q)
        return r->err;
    *v = q[0] != 0;
    return GR_OK;
}

int gr_read_f64(gr_reader *r, double *v)
{
    const uint8_t *q = take(r, 8);
    if (!q)
        return r->err;
    uint64_t bits = be(q, 8);
    memcpy(v, &bits, sizeof *v);
    return GR_OK;
}

int gr_read_uuid(gr_reader *r, gr_uuid *v)
{
    const uint8_t *q = take(r, 16);
    if (!q)
        return r->err;
    memcpy(v->b, q, 16);
    return GR_OK;
}

/* Base-128 little-endian groups, at most max_bytes of them. */
static int read_uvar(gr_reader *r, int max_bytes, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < max_bytes; i++) {
        const uint8_t *q = take(r, 1);
        if (!q)
            return r->err;
        x |= (uint64_t)(q[0] & 0x7f) << (7 * i);
        if (!(q[0] & 0x80)) {
            *v = x;
            return GR_OK;
        }
    }
    r->err = GR_ERR_MALFORMED;
    return r->err;
}

int gr_read_uvarint(gr_reader *r, uint32_t *v)
{
    uint64_t x = 0;
    int e = read_uvar(r, 5, &x);
    if (e)
        return e;
    if (x > UINT32_MAX) {
        r->err = GR_ERR_MALFORMED;
        return r->err;
    }
    *v = (uint32_t)x;
    return GR_OK;
}

int gr_read_uvarlong(gr_reader *r, uint64_t *v) { return read_uvar(r, 10, v); }

int gr_read_varint(gr_reader *r, int32_t *v)
{
    uint32_t u;
    int e = gr_read_uvarint(r, &u);
    if (e)
        return e;
    *v = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return GR_OK;
}

int gr_read_varlong(gr_reader *r, int64_t *v)
{
    uint64_t u = 0;
    int e = gr_read_uvarlong(r, &u);
    if (e)
        return e;
    *v = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return GR_OK;
}

int gr_read_raw(gr_reader *r, size_t n, const uint8_t **out)
{
    const uint8_t *q = take(r, n);
    if (!q)
        return r->err;
    *out = q;
    return GR_OK;
}

int gr_skip(gr_reader *r, size_t n) { return take(r, n) ? GR_OK : r->err; }

/* ---- writer ---- */

void gr_writer_init(gr_writer *w, size_t cap_hint)
{
    w->p = NULL;
    w->len = 0;
    w->cap = 0;
    w->err = GR_OK;
    if (cap_hint && !gr_writer_reserve(w, cap_hint))
        return;
}

void gr_writer_free(gr_writer *w)
{
    free(w->p);
    w->p = NULL;
    w->len = w->cap = 0;
}

uint8_t *gr_writer_take(gr_writer *w, size_t *len)
{
    uint8_t *p = w->p;
    *len = w->len;
    w->p = NULL;
    w->len = w->cap = 0;
    w->err = GR_OK;
    return p;
}

uint8_t *gr_writer_reserve(gr_writer *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = GR_ERR_NOMEM;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->err = GR_ERR_NOMEM;
            return NULL;
        }
        w->p = p;
        w->cap = cap;
    }
    return w->p + w->len;
}

static void put_be(gr_writer *w, uint64_t v, int n)
{
    uint8_t *q = gr_writer_reserve(w, (size_t)n);
    if (!q)
        return;
    for (int i = n - 1; i >= 0; i--) {
        q[i] = (uint8_t)v;
        v >>= 8;
    }
    w->len += (size_t)n;
}

void gr_write_i8(gr_writer *w, int8_t v) { put_be(w, (uint8_t)v, 1); }
void gr_write_i16(gr_writer *w, int16_t v) { put_be(w, (uint16_t)v, 2); }
void gr_write_i32(gr_writer *w, int32_t v) { put_be(w, (uint32_t)v, 4); }
void gr_write_i64(gr_writer *w, int64_t v) { put_be(w, (uint64_t)v, 8); }
void gr_write_u16(gr_writer *w, uint16_t v) { put_be(w, v, 2); }
void gr_write_u32(gr_writer *w, uint32_t v) { put_be(w, v, 4); }
void gr_write_bool(gr_writer *w, bool v) { put_be(w, v ? 1 : 0, 1); }

void gr_write_f64(gr_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_be(w, bits, 8);
}

void gr_write_uuid(gr_writer *w, const gr_uuid *v) { gr_write_raw(w, v->b, 16); }

void gr_write_uvarlong(gr_writer *w, uint64_t v)
{
    uint8_t *q = gr_writer_reserve(w, 10);
    if (!q)
        return;
    size_t n = 0;
    while (v >= 0x80) {
        q[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    q[n++] = (uint8_t)v;
    w->len += n;
}

void gr_write_uvarint(gr_writer *w, uint32_t v) { gr_write_uvarlong(w, v); }
void gr_write_varint(gr_writer *w, int32_t v)
{
    gr_write_uvarlong(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}
void gr_write_varlong(gr_writer *w, int64_t v)
{
    gr_write_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void gr_write_raw(gr_writer *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *q = gr_writer_reserve(w, n);
    if (!q)
        return;
    memcpy(q, p, n);
    w->len += n;
}

void gr_write_i32_at(gr_writer *w, size_t pos, int32_t v)
{
    if (w->err || w->len < 4 || pos > w->len - 4)
        return;
    uint32_t u = (uint32_t)v;
    for (int i = 3; i >= 0; i--) {
        w->p[pos + (size_t)i] = (uint8_t)u;
        u >>= 8;
    }
}

size_t gr_uvarlong_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
size_t gr_uvarint_size(uint32_t v) { return gr_uvarlong_size(v); }
size_t gr_varint_size(int32_t v) { return gr_uvarlong_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)); }
size_t gr_varlong_size(int64_t v) { return gr_uvarlong_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); }

/* ---- arena ---- */

struct gr_arena_chunk {
    gr_arena_chunk *next;
    size_t used, cap;
    _Alignas(8) uint8_t data[];
};

#define ARENA_CHUNK 4096

void gr_arena_init(gr_arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void *gr_arena_alloc(gr_arena *a, size_t n)
{
    if (n > SIZE_MAX - 64)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    gr_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void *gr_arena_calloc(gr_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return gr_arena_alloc(a, n * size);
}

char *gr_arena_strdup(gr_arena *a, const char *s, size_t len)
{
    char *p = gr_arena_alloc(a, len + 1);
    if (p && len)
        memcpy(p, s, len);
    return p;
}

void gr_arena_free(gr_arena *a)
{
    gr_arena_chunk *c = a->head;
    while (c) {
        gr_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
