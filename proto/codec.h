/*
 * codec.h - the Kafka wire encodings shared by every generated message.
 *
 * The code generated from proto/schema (build/gen/proto/messages.c) is a
 * straight sequence of calls into common/buf.h for fixed-size fields and into
 * these helpers for everything that has a length prefix, because that is where
 * the wire format has two spellings and where hostile input must be refused:
 *
 *   classic (non-flexible versions)      compact (flexible versions)
 *   string   int16 length, -1 = null     uvarint length+1, 0 = null
 *   bytes    int32 length, -1 = null     uvarint length+1, 0 = null
 *   array    int32 count,  -1 = null     uvarint count+1,  0 = null
 *
 * Flexible versions also end every struct with a tagged-field section:
 * uvarint number of fields, then per field uvarint tag, uvarint size and
 * size bytes of value. Unknown tags are skipped.
 *
 * Decoding rules (the reasons the helpers exist):
 *   - a negative classic length other than -1 is GR_ERR_MALFORMED;
 *   - null where the version does not allow null is GR_ERR_MALFORMED;
 *   - a compact length that does not fit an int32 is GR_ERR_MALFORMED;
 *   - strings are at most 32767 bytes in both spellings (as in Kafka);
 *   - a length or an element count that cannot fit in the bytes that remain
 *     is GR_ERR_TRUNCATED before anything is allocated, so a decoder never
 *     allocates more than a small multiple of the frame it was given.
 * Decoded strings and bytes point into the reader's buffer; nothing is copied.
 *
 * Encoding helpers validate what they are given (null where not allowed,
 * negative lengths other than -1, over-long strings, a positive count with no
 * items) and return GR_ERR_MALFORMED without writing anything in that case.
 */
#ifndef GR_PROTO_CODEC_H
#define GR_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The longest string either spelling may carry. */
#define GR_PROTO_MAX_STRING 0x7fff

/* ---- decoding ---- */

int gr_proto_read_str(gr_reader *r, bool compact, bool nullable, gr_str *out);
int gr_proto_read_bytes(gr_reader *r, bool compact, bool nullable, gr_bytes *out);
/*
 * Reads an array count (-1 for a null array). min_elem is the fewest bytes one
 * element can occupy; a count whose elements could not fit in what remains is
 * GR_ERR_TRUNCATED. Elements that could encode to nothing count as one byte,
 * which keeps the count bounded by the frame size.
 */
int gr_proto_read_count(gr_reader *r, bool compact, bool nullable, size_t min_elem,
                        int32_t *count);
/* Reads a nullable struct's presence marker (int8: negative = null). */
int gr_proto_read_present(gr_reader *r, bool *present);
/* Reads a tagged-field section count, refusing one that cannot fit. */
int gr_proto_read_tag_count(gr_reader *r, uint32_t *count);
/*
 * Reads one tagged field's tag and size, points *value at its size bytes and
 * moves r past them. The value is then decoded from *value alone, so a field
 * can never read beyond the size it declared.
 */
int gr_proto_read_tag(gr_reader *r, uint32_t *tag, gr_reader *value);
/* Skips a whole tagged-field section (for structs with no known tags). */
int gr_proto_skip_tags(gr_reader *r);
/* Arena storage for count decoded elements (NULL when count <= 0). */
void *gr_proto_alloc_array(gr_arena *a, int32_t count, size_t elem_size);

/* ---- encoding ---- */

int gr_proto_write_str(gr_writer *w, bool compact, bool nullable, gr_str s);
int gr_proto_write_bytes(gr_writer *w, bool compact, bool nullable, gr_bytes b);
/* items is the array's storage, checked to be non-NULL when count > 0. */
int gr_proto_write_count(gr_writer *w, bool compact, bool nullable, int32_t count,
                         const void *items);
/* Writes a nullable struct's presence marker, or refuses null if !nullable. */
int gr_proto_write_present(gr_writer *w, bool nullable, bool present);
/* Writes a tagged field's tag and the size of the value that follows. */
int gr_proto_write_tag(gr_writer *w, uint32_t tag, size_t size);

/* ---- sizes (what the writers above produce for valid input) ---- */

size_t gr_proto_str_size(bool compact, gr_str s);
size_t gr_proto_bytes_size(bool compact, gr_bytes b);
size_t gr_proto_count_size(bool compact, int32_t count);
/* Tag, size prefix and value of one tagged field whose value is size bytes. */
size_t gr_proto_tag_size(uint32_t tag, size_t size);

/* ---- file-backed values (zero-copy responses) ----
 *
 * A response may carry a bytes or records value whose content is a range of
 * a file (record batches in a log segment) instead of memory, so that the
 * sender can pass it to the socket with sendfile(2). Such a value is an
 * ordinary gr_bytes: len is the range's length, and ptr is an opaque marker
 * (never data, never dereferenced as data) that names a gr_file_range.
 * Size functions therefore count it like any other value; decoders never
 * see one.
 *
 * The ranges of one response live in a gr_splices table bound to the one
 * writer the response is encoded into. Encoding a marker writes the length
 * prefix (either spelling) and records a splice point, the writer position
 * where the range's bytes belong, instead of the bytes. A marker encoded
 * into any other writer is GR_ERR_MALFORMED, as is one whose len was
 * changed. The writer then holds the frame minus its file bytes: the sender
 * interleaves the writer's bytes with the ranges at the splice points.
 *
 * Release: every range is released (its callback runs) exactly once, when
 * the table has been freed and every sender holding a reference (one per
 * use) has dropped it. A failed gr_splices_add releases at once.
 *
 * A generated encoder that fails rolls the writer back; splice points past
 * the writer's end are stale and are ignored by gr_splices_trim, and a new
 * point drops every earlier one at or after its position.
 */
typedef struct gr_splices gr_splices;

typedef struct gr_file_range {
    int fd;          /* not owned: the releaser keeps it open until release */
    int64_t offset;
    int32_t len;
    /* private */
    void (*release)(void *arg);
    void *arg;
    _Atomic int refs;
    uint32_t slot;
    gr_splices *owner; /* NULL once the table is freed */
} gr_file_range;

typedef struct {
    size_t pos; /* writer position of the range's first byte */
    gr_file_range *range;
} gr_splice;

struct gr_splices {
    gr_writer *w; /* the only writer these ranges may be encoded into */
    gr_file_range **ranges;
    size_t nranges, cap_ranges;
    gr_splice *points; /* in increasing position order */
    size_t npoints, cap_points;
};

/* Binds an empty table to w. A zeroed table is also valid (and empty). */
void gr_splices_init(gr_splices *s, gr_writer *w);
/*
 * Makes *out a file-backed value for len bytes of fd at offset; release(arg)
 * runs exactly once when the range is no longer needed. len 0 releases at
 * once and gives an empty value. On failure (GR_ERR_NOMEM, GR_ERR_MALFORMED
 * for len > INT32_MAX or a negative offset, GR_ERR_NOMEM when too many
 * ranges are live) release has already run and *out is an empty value.
 */
int gr_splices_add(gr_splices *s, int fd, int64_t offset, size_t len, void (*release)(void *),
                   void *arg, gr_bytes *out);
/* Drops the splice points past the end of the writer (an encoder rolled
 * back); returns the number of file bytes the remaining ones carry. */
uint64_t gr_splices_trim(gr_splices *s);
/* Drops the table's references; ranges no sender holds are released. The
 * markers it handed out become invalid. s is left empty and unbound. */
void gr_splices_free(gr_splices *s);
/* A sender's reference on a range while it sends it. */
void gr_file_range_ref(gr_file_range *r);
void gr_file_range_unref(gr_file_range *r);
/* The range a value is backed by, or NULL for an in-memory value. */
gr_file_range *gr_proto_file_range(gr_bytes b);

/* ---- defaults, for deciding whether a tagged field is written ---- */

/* True if s equals the default: null when dflt is NULL, else the C string. */
bool gr_proto_str_is(gr_str s, const char *dflt);

#endif
