/*
 * compress.h - the compression codecs of record batches: gzip, snappy, lz4
 * and zstd, in the framings Kafka clients write.
 *
 * A compressed batch (codec bits of the attributes non-zero) carries its
 * records section compressed as one unit. These functions turn that section
 * into plain record bytes and back. They know nothing about batches
 * themselves; batch.c calls them.
 *
 * Decompression treats its input as hostile. The caller names the largest
 * output it is willing to hold (max_out); output beyond it is an error found
 * while streaming, never an attempt to allocate what the data claims. See
 * compress.c for the framings accepted and how the bound is enforced.
 */
#ifndef GR_COMPRESS_H
#define GR_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"
#include "common/buf.h"

/* Decompresses the records section of a Kafka batch compressed with codec
 * into a malloc'd buffer *out (the caller frees it; it is non-NULL on success
 * even when *out_len is 0). GR_CODEC_NONE copies the input.
 *
 * Returns GR_OK, or negative with *out NULL:
 *   GR_ERR_TRUNCATED  the compressed stream ends before it is complete
 *   GR_ERR_MALFORMED  the data is not a valid stream of that codec, the codec
 *                     is unknown, or the output would exceed max_out bytes
 *                     (a decompression bomb is an error, not an allocation)
 *   GR_ERR_NOMEM      an allocation failed
 * Output of exactly max_out bytes is accepted. Memory used is bounded by
 * about max_out plus the codec's working state (for zstd, a window of at most
 * max(8 MiB, max_out rounded up to a power of two); a frame that asks for a
 * larger one is refused as malformed). */
int gr_decompress(gr_codec codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                  size_t *out_len);

/* Compresses in and appends the result to w, in the framing Kafka clients
 * produce (see compress.c). level < 0 selects the codec's Kafka default
 * (compression.gzip.level: zlib's default, 6; compression.lz4.level: 9;
 * compression.zstd.level: 3); snappy has no levels and ignores it. A level
 * outside the codec's range is GR_ERR_MALFORMED: gzip 0-9 (0 stores),
 * lz4 0-17 (below 3 is lz4's fast mode, above 12 is the same as 12), zstd
 * 0-22 (0 is libzstd's default, 3). Negative zstd levels cannot be asked
 * for through this interface. Returns GR_OK or negative; on failure
 * nothing is appended (and w's sticky error is set if an allocation failed). */
int gr_compress(gr_codec codec, int level, const uint8_t *in, size_t in_len, gr_writer *w);

/* "none", "gzip", "snappy", "lz4", "zstd"; "unknown" for anything else. */
const char *gr_codec_name(gr_codec codec);

/* Parses a codec name as compression.type spells it (exact, lower case).
 * "producer" and "uncompressed" are for the caller to handle. GR_OK or
 * GR_ERR_MALFORMED. */
int gr_codec_parse(const char *name, gr_codec *out);

#endif
