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

/* ---- defaults, for deciding whether a tagged field is written ---- */

/* True if s equals the default: null when dflt is NULL, else the C string. */
bool gr_proto_str_is(gr_str s, const char *dflt);

#endif
