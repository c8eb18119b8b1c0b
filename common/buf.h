/*
 * buf.h - bounded byte readers, growable byte writers and a request arena.
 *
 * Everything Gregor reads from the network or the disk goes through a
 * gr_reader: a cursor over a buffer it does not own. Every read checks the
 * bytes that remain first and fails with GR_ERR_TRUNCATED instead of reading
 * past the end; once a read has failed the reader stays failed, so a decoder
 * may check only at the end of a sequence of reads if it wants to.
 *
 * Integers on the wire are big-endian (Kafka's order). Varints are the
 * protobuf-style base-128 encodings Kafka uses: unsigned varints for compact
 * lengths and tag numbers, zig-zag varints/varlongs inside record batches.
 *
 * A gr_writer appends to a heap buffer it owns and grows it geometrically.
 * Allocation failure is sticky in the same way as truncation for readers:
 * check gr_writer_ok() (or the return of gr_writer_finish) once at the end.
 *
 * A gr_arena hands out memory that lives as long as one request (decoded
 * arrays, response scratch) and is freed all at once. Decoders never
 * allocate in proportion to a number they have not checked against the
 * bytes that remain in the frame, so an arena's size is bounded by the size
 * of the frame it decodes.
 */
#ifndef GR_BUF_H
#define GR_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GR_OK = 0,
    GR_ERR_TRUNCATED = -1, /* fewer bytes than the encoding needs */
    GR_ERR_MALFORMED = -2, /* bytes present but not a valid encoding */
    GR_ERR_NOMEM = -3,     /* allocation failed */
    GR_ERR_VERSION = -4,   /* version outside what the message supports */
};

const char *gr_err_str(int err);

/* A length-delimited view into someone else's bytes. len == -1 means null. */
typedef struct {
    const char *ptr;
    int32_t len;
} gr_str;

typedef struct {
    const uint8_t *ptr;
    int32_t len;
} gr_bytes;

#define GR_STR_NULL ((gr_str){NULL, -1})
#define GR_BYTES_NULL ((gr_bytes){NULL, -1})
gr_str gr_str_from(const char *cstr); /* NULL gives a null string */
bool gr_str_eq(gr_str a, const char *cstr);

typedef struct {
    uint8_t b[16];
} gr_uuid;

bool gr_uuid_is_zero(const gr_uuid *u);

/* ---- reader ---- */

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err; /* first error seen, GR_OK while healthy */
} gr_reader;

void gr_reader_init(gr_reader *r, const void *p, size_t len);
static inline size_t gr_reader_remaining(const gr_reader *r) { return r->len - r->pos; }

int gr_read_i8(gr_reader *r, int8_t *v);
int gr_read_i16(gr_reader *r, int16_t *v);
int gr_read_i32(gr_reader *r, int32_t *v);
int gr_read_i64(gr_reader *r, int64_t *v);
int gr_read_u16(gr_reader *r, uint16_t *v);
int gr_read_u32(gr_reader *r, uint32_t *v);
int gr_read_bool(gr_reader *r, bool *v);        /* any non-zero byte is true */
int gr_read_f64(gr_reader *r, double *v);
int gr_read_uuid(gr_reader *r, gr_uuid *v);
int gr_read_uvarint(gr_reader *r, uint32_t *v); /* at most 5 bytes */
int gr_read_uvarlong(gr_reader *r, uint64_t *v); /* at most 10 bytes */
int gr_read_varint(gr_reader *r, int32_t *v);   /* zig-zag */
int gr_read_varlong(gr_reader *r, int64_t *v);  /* zig-zag */
/* Points *out at the next n bytes and skips them. */
int gr_read_raw(gr_reader *r, size_t n, const uint8_t **out);
int gr_skip(gr_reader *r, size_t n);

/* ---- writer ---- */

typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
    int err;
} gr_writer;

/* cap_hint may be 0. The writer owns its buffer until gr_writer_take(). */
void gr_writer_init(gr_writer *w, size_t cap_hint);
void gr_writer_free(gr_writer *w);
static inline bool gr_writer_ok(const gr_writer *w) { return w->err == GR_OK; }
/* Hands the buffer to the caller (who frees it with free()); resets w. */
uint8_t *gr_writer_take(gr_writer *w, size_t *len);
/* Ensures room for n more bytes; returns a pointer to them (len not moved). */
uint8_t *gr_writer_reserve(gr_writer *w, size_t n);

void gr_write_i8(gr_writer *w, int8_t v);
void gr_write_i16(gr_writer *w, int16_t v);
void gr_write_i32(gr_writer *w, int32_t v);
void gr_write_i64(gr_writer *w, int64_t v);
void gr_write_u16(gr_writer *w, uint16_t v);
void gr_write_u32(gr_writer *w, uint32_t v);
void gr_write_bool(gr_writer *w, bool v);
void gr_write_f64(gr_writer *w, double v);
void gr_write_uuid(gr_writer *w, const gr_uuid *v);
void gr_write_uvarint(gr_writer *w, uint32_t v);
void gr_write_uvarlong(gr_writer *w, uint64_t v);
void gr_write_varint(gr_writer *w, int32_t v);
void gr_write_varlong(gr_writer *w, int64_t v);
void gr_write_raw(gr_writer *w, const void *p, size_t n);
/* Overwrites 4 bytes at an earlier position (length prefixes). */
void gr_write_i32_at(gr_writer *w, size_t pos, int32_t v);

/* Sizes of encodings, for the generated size functions. */
size_t gr_uvarint_size(uint32_t v);
size_t gr_uvarlong_size(uint64_t v);
size_t gr_varint_size(int32_t v);
size_t gr_varlong_size(int64_t v);

/* ---- arena ---- */

typedef struct gr_arena_chunk gr_arena_chunk;
typedef struct {
    gr_arena_chunk *head;
    size_t total; /* bytes handed out, for limits and tests */
} gr_arena;

void gr_arena_init(gr_arena *a);
/* Zeroed, 8-byte aligned memory; NULL on allocation failure. */
void *gr_arena_alloc(gr_arena *a, size_t n);
/* n * size with overflow checked. */
void *gr_arena_calloc(gr_arena *a, size_t n, size_t size);
char *gr_arena_strdup(gr_arena *a, const char *s, size_t len);
void gr_arena_free(gr_arena *a); /* frees everything; a may be reused */

#endif
