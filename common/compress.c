/*
 * compress.c - gzip, snappy, lz4 and zstd for the records section of a
 * record batch.
 *
 * Framings. Kafka does not define its own container for most codecs; each
 * is whatever the Java client's stream classes write, and librdkafka matches
 * them. What is accepted on decompression:
 *
 *   gzip    A gzip stream (RFC 1952). Several members back to back are read
 *           as one stream, as Java's GZIPInputStream does; bytes after a
 *           member that are not another valid member are an error.
 *   snappy  Either form clients write:
 *           - raw snappy: one snappy block (librdkafka's default);
 *           - the xerial stream the Java client writes: the 8-byte magic
 *             82 'S' 'N' 'A' 'P' 'P' 'Y' 00, int32 version, int32 minimum
 *             compatible version (both big-endian, version >= 1), then
 *             blocks, each an int32 big-endian length and a raw snappy block
 *             of that length. A header with no blocks is an empty stream.
 *           The magic tells them apart (as the clients do).
 *   lz4     The LZ4 frame format (magic 04 22 4D 18). The pre-0.10 framing
 *           with the broken header checksum belongs to magic 0/1 batches,
 *           which Gregor does not accept. Frames back to back are read as
 *           one stream.
 *   zstd    zstd frames (including skippable ones), with or without the
 *           content size in the header.
 *
 * On compression Gregor writes what the Java client writes, so that every
 * client can read what Gregor recompresses: a single gzip member; the xerial
 * snappy stream (32 KiB input blocks) — Java consumers need it and librdkafka
 * reads both forms; one lz4 frame with 64 KiB independent blocks and no
 * content size or checksums (Java's reader supports only independent
 * blocks); one zstd frame with the content size in its header (librdkafka
 * does the same; it lets a reader size its buffer at once).
 *
 * The bound. Compressed data claims nothing we trust. Output goes into a
 * buffer that starts small (or at a size the stream declares, if that is
 * within the bound) and doubles as needed up to max_out + 1 bytes; the
 * moment max_out + 1 bytes have come out, decompression stops with an error.
 * So a bomb costs at most about max_out of memory and the time to produce
 * it, whatever it would expand to. Snappy declares its uncompressed length
 * up front, so it is checked before anything is allocated. The zstd decoder
 * also allocates the window a frame asks for; frames asking for more than
 * max(8 MiB, max_out rounded up to a power of two), and never more than
 * libzstd's default 128 MiB, are refused. zstd's spec asks decoders to
 * support 8 MiB, and an encoder only declares a window larger than its
 * whole output when told to use one (a long-distance mode or a huge level).
 */
#include "common/compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#define ZLIB_CONST /* next_in is const: the input is never written */
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ---- the bounded output buffer ---- */

typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t max; /* the caller's max_out: len > max is an error */
} outbuf;

#define OUT_MIN_CAP 4096

/* Allocates the first buffer: hint bytes (clamped to [1, max + 1]). */
static int out_init(outbuf *o, size_t max, size_t hint)
{
    size_t limit = max == SIZE_MAX ? SIZE_MAX : max + 1;
    if (hint > limit)
        hint = limit;
    if (hint == 0)
        hint = 1;
    o->p = malloc(hint);
    o->len = 0;
    o->cap = hint;
    o->max = max;
    return o->p ? GR_OK : GR_ERR_NOMEM;
}

/* A starting size from the compressed size when the stream declares none. */
static size_t out_guess(size_t in_len)
{
    size_t g = in_len > SIZE_MAX / 4 ? SIZE_MAX : in_len * 4;
    return g < OUT_MIN_CAP ? OUT_MIN_CAP : g;
}

/* Makes room for more output when the buffer is full: doubles the capacity
 * up to max + 1. Because out_check runs after every step, len <= max here,
 * so there is always room to grow by at least one byte. */
static int out_grow(outbuf *o)
{
    if (o->len < o->cap)
        return GR_OK;
    size_t limit = o->max == SIZE_MAX ? SIZE_MAX : o->max + 1;
    if (o->cap >= limit)
        return GR_ERR_MALFORMED;
    size_t cap = o->cap > limit / 2 ? limit : o->cap * 2;
    uint8_t *p = realloc(o->p, cap);
    if (!p)
        return GR_ERR_NOMEM;
    o->p = p;
    o->cap = cap;
    return GR_OK;
}

/* The bound: more than max bytes of output is an error. */
static int out_check(const outbuf *o)
{
    return o->len > o->max ? GR_ERR_MALFORMED : GR_OK;
}

static void out_free(outbuf *o)
{
    free(o->p);
    o->p = NULL;
}

/* ---- gzip ---- */

static int gzip_decompress(const uint8_t *in, size_t in_len, outbuf *o)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int zr = inflateInit2(&zs, 16 + MAX_WBITS); /* 16: gzip wrapper only */
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? GR_ERR_NOMEM : GR_ERR_MALFORMED;

    size_t in_pos = 0;
    int rc;
    for (;;) {
        if ((rc = out_grow(o)) != GR_OK)
            break;
        /* zlib counts in uInt: feed at most UINT_MAX bytes per call. */
        size_t in_left = in_len - in_pos;
        size_t out_left = o->cap - o->len;
        zs.next_in = in + in_pos;
        zs.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        zs.next_out = o->p + o->len;
        zs.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        uInt avail_in = zs.avail_in, avail_out = zs.avail_out;

        zr = inflate(&zs, Z_NO_FLUSH);
        in_pos += avail_in - zs.avail_in;
        o->len += avail_out - zs.avail_out;
        if ((rc = out_check(o)) != GR_OK)
            break;

        if (zr == Z_STREAM_END) {
            if (in_pos == in_len) {
                rc = GR_OK;
                break;
            }
            /* Another member follows. */
            if (inflateReset(&zs) != Z_OK) {
                rc = GR_ERR_MALFORMED;
                break;
            }
            continue;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR) {
            /* No progress possible: either the output is full (grow and go
             * on) or the input ran out before the end of the stream. */
            if (zs.avail_out == 0)
                continue;
            rc = in_pos == in_len ? GR_ERR_TRUNCATED : GR_ERR_MALFORMED;
            break;
        }
        rc = zr == Z_MEM_ERROR ? GR_ERR_NOMEM : GR_ERR_MALFORMED; /* Z_DATA_ERROR, Z_NEED_DICT */
        break;
    }
    inflateEnd(&zs);
    return rc;
}

static int gzip_compress(int level, const uint8_t *in, size_t in_len, gr_writer *w)
{
    if (level < 0)
        level = Z_DEFAULT_COMPRESSION;
    else if (level > 9)
        return GR_ERR_MALFORMED;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int zr = deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? GR_ERR_NOMEM : GR_ERR_MALFORMED;

    size_t bound = deflateBound(&zs, in_len);
    uint8_t *dst = gr_writer_reserve(w, bound);
    if (!dst) {
        deflateEnd(&zs);
        return GR_ERR_NOMEM;
    }
    size_t in_pos = 0, out_pos = 0;
    int rc = GR_OK;
    for (;;) {
        size_t in_left = in_len - in_pos;
        size_t out_left = bound - out_pos;
        zs.next_in = in + in_pos;
        zs.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        zs.next_out = dst + out_pos;
        zs.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
        int flush = zs.avail_in == in_left ? Z_FINISH : Z_NO_FLUSH;

        zr = deflate(&zs, flush);
        in_pos += avail_in - zs.avail_in;
        out_pos += avail_out - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        /* deflateBound guarantees room, so anything but progress is a bug
         * in the arithmetic above or in zlib; fail rather than loop. */
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || out_pos == bound ||
            (avail_in == zs.avail_in && avail_out == zs.avail_out)) {
            rc = GR_ERR_MALFORMED;
            break;
        }
    }
    deflateEnd(&zs);
    if (rc == GR_OK)
        w->len += out_pos;
    return rc;
}

/* ---- snappy ---- */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_VERSION 1
#define XERIAL_COMPAT_VERSION 1
#define XERIAL_BLOCK_SIZE (32 * 1024) /* input bytes per block, as Java writes */

/* No snappy element expands more than 64 bytes out of 3 in, so a block that
 * declares more than 22 times its own size is lying; refusing it keeps a
 * few bytes of junk from costing an allocation of max_out. */
#define SNAPPY_MAX_RATIO 22

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int snappy_raw_decompress(const uint8_t *in, size_t in_len, size_t max_out,
                                 uint8_t **out, size_t *out_len)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK)
        return GR_ERR_MALFORMED;
    if (n > max_out || n / SNAPPY_MAX_RATIO > in_len)
        return GR_ERR_MALFORMED;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return GR_ERR_NOMEM;
    size_t got = n;
    if (snappy_uncompress((const char *)in, in_len, (char *)p, &got) != SNAPPY_OK || got != n) {
        free(p);
        return GR_ERR_MALFORMED;
    }
    *out = p;
    *out_len = n;
    return GR_OK;
}

/* Two passes over the blocks: the first checks the framing and adds up the
 * lengths the blocks declare (against max_out), the second decompresses
 * into one buffer of exactly that size. */
static int snappy_xerial_decompress(const uint8_t *in, size_t in_len, size_t max_out,
                                    uint8_t **out, size_t *out_len)
{
    if (in_len < XERIAL_HEADER_SIZE)
        return GR_ERR_TRUNCATED;
    int32_t version = (int32_t)load_be32(in + 8);
    if (version < XERIAL_COMPAT_VERSION)
        return GR_ERR_MALFORMED;

    size_t total = 0;
    for (size_t pos = XERIAL_HEADER_SIZE; pos < in_len;) {
        if (in_len - pos < 4)
            return GR_ERR_TRUNCATED;
        uint32_t blen = load_be32(in + pos);
        pos += 4;
        if (blen > INT32_MAX)
            return GR_ERR_MALFORMED;
        if (blen > in_len - pos)
            return GR_ERR_TRUNCATED;
        size_t n;
        if (snappy_uncompressed_length((const char *)in + pos, blen, &n) != SNAPPY_OK)
            return GR_ERR_MALFORMED;
        if (n > max_out - total || n / SNAPPY_MAX_RATIO > blen)
            return GR_ERR_MALFORMED;
        total += n;
        pos += blen;
    }

    uint8_t *p = malloc(total ? total : 1);
    if (!p)
        return GR_ERR_NOMEM;
    size_t done = 0;
    for (size_t pos = XERIAL_HEADER_SIZE; pos < in_len;) {
        uint32_t blen = load_be32(in + pos);
        pos += 4;
        size_t got = total - done;
        if (snappy_uncompress((const char *)in + pos, blen, (char *)p + done, &got) != SNAPPY_OK) {
            free(p);
            return GR_ERR_MALFORMED;
        }
        done += got;
        pos += blen;
    }
    if (done != total) {
        free(p);
        return GR_ERR_MALFORMED;
    }
    *out = p;
    *out_len = total;
    return GR_OK;
}

static int snappy_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                             size_t *out_len)
{
    if (in_len >= sizeof xerial_magic && memcmp(in, xerial_magic, sizeof xerial_magic) == 0)
        return snappy_xerial_decompress(in, in_len, max_out, out, out_len);
    return snappy_raw_decompress(in, in_len, max_out, out, out_len);
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes the xerial stream, the form the Java client produces, so that Java
 * consumers can read batches Gregor compresses; librdkafka reads it too. */
static int snappy_compress_xerial(const uint8_t *in, size_t in_len, gr_writer *w)
{
    size_t start = w->len;
    uint8_t *h = gr_writer_reserve(w, XERIAL_HEADER_SIZE);
    if (!h)
        return GR_ERR_NOMEM;
    memcpy(h, xerial_magic, sizeof xerial_magic);
    store_be32(h + 8, XERIAL_VERSION);
    store_be32(h + 12, XERIAL_COMPAT_VERSION);
    w->len += XERIAL_HEADER_SIZE;

    for (size_t pos = 0; pos < in_len;) {
        size_t n = in_len - pos < XERIAL_BLOCK_SIZE ? in_len - pos : XERIAL_BLOCK_SIZE;
        size_t max = snappy_max_compressed_length(n);
        uint8_t *b = gr_writer_reserve(w, 4 + max);
        if (!b) {
            w->len = start;
            return GR_ERR_NOMEM;
        }
        size_t clen = max;
        if (snappy_compress((const char *)in + pos, n, (char *)b + 4, &clen) != SNAPPY_OK) {
            w->len = start;
            return GR_ERR_MALFORMED;
        }
        store_be32(b, (uint32_t)clen);
        w->len += 4 + clen;
        pos += n;
    }
    return GR_OK;
}

/* ---- lz4 ---- */

static int lz4_decompress(const uint8_t *in, size_t in_len, outbuf *o)
{
    if (in_len == 0)
        return GR_ERR_TRUNCATED;
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return GR_ERR_NOMEM;

    size_t in_pos = 0;
    int rc;
    for (;;) {
        if ((rc = out_grow(o)) != GR_OK)
            break;
        size_t dst = o->cap - o->len;
        size_t src = in_len - in_pos;
        size_t hint = LZ4F_decompress(dctx, o->p + o->len, &dst, in + in_pos, &src, NULL);
        if (LZ4F_isError(hint)) {
            /* lz4's stable API does not say which error; an allocation
             * failure inside the decoder is reported as bad data. */
            rc = GR_ERR_MALFORMED;
            break;
        }
        in_pos += src;
        o->len += dst;
        if ((rc = out_check(o)) != GR_OK)
            break;
        if (hint == 0) {
            /* A frame ended (the context is ready for the next one). */
            if (in_pos == in_len) {
                rc = GR_OK;
                break;
            }
            continue;
        }
        if (o->len == o->cap)
            continue; /* output full: it may have more to give */
        if (in_pos == in_len) {
            rc = GR_ERR_TRUNCATED;
            break;
        }
        if (src == 0 && dst == 0) {
            rc = GR_ERR_MALFORMED; /* no progress with input and room left */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

#define LZ4_DEFAULT_LEVEL 9 /* Kafka's compression.lz4.level default */

static int lz4_compress(int level, const uint8_t *in, size_t in_len, gr_writer *w)
{
    if (level < 0)
        level = LZ4_DEFAULT_LEVEL;
    else if (level > 17)
        return GR_ERR_MALFORMED;
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs.frameInfo.contentSize = 0;
    prefs.compressionLevel = level;

    size_t bound = LZ4F_compressFrameBound(in_len, &prefs);
    if (LZ4F_isError(bound))
        return GR_ERR_MALFORMED;
    uint8_t *dst = gr_writer_reserve(w, bound);
    if (!dst)
        return GR_ERR_NOMEM;
    size_t n = LZ4F_compressFrame(dst, bound, in, in_len, &prefs);
    if (LZ4F_isError(n))
        return GR_ERR_NOMEM; /* the input and room are valid: only its allocations can fail */
    w->len += n;
    return GR_OK;
}

/* ---- zstd ---- */

#define ZSTD_MIN_WINDOW_LOG 23 /* 8 MiB, the window zstd's spec asks every decoder to support */
#define ZSTD_MAX_WINDOW_LOG 27 /* 128 MiB, libzstd's own default limit for streaming */
#define ZSTD_DEFAULT_LEVEL 3   /* Kafka's compression.zstd.level default */

/* The smallest w with 2^w >= n, at least ZSTD_MIN_WINDOW_LOG and at most
 * libzstd's default limit. */
static int zstd_window_log(size_t n)
{
    int w = ZSTD_MIN_WINDOW_LOG;
    while (w < ZSTD_MAX_WINDOW_LOG && ((size_t)1 << w) < n)
        w++;
    return w;
}

static int zstd_decompress(const uint8_t *in, size_t in_len, outbuf *o)
{
    if (in_len == 0)
        return GR_ERR_TRUNCATED;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return GR_ERR_NOMEM;
    int rc;
    if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, zstd_window_log(o->max)))) {
        rc = GR_ERR_MALFORMED;
        goto done;
    }
    ZSTD_inBuffer ib = {in, in_len, 0};
    for (;;) {
        if ((rc = out_grow(o)) != GR_OK)
            break;
        ZSTD_outBuffer ob = {o->p + o->len, o->cap - o->len, 0};
        size_t in_before = ib.pos;
        size_t r = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? GR_ERR_NOMEM
                                                                       : GR_ERR_MALFORMED;
            break;
        }
        o->len += ob.pos;
        if ((rc = out_check(o)) != GR_OK)
            break;
        if (r == 0) {
            /* A frame ended and is fully flushed; another may follow. */
            if (ib.pos == ib.size) {
                rc = GR_OK;
                break;
            }
            continue;
        }
        if (o->len == o->cap)
            continue; /* output full: it may have more to give */
        if (ib.pos == ib.size) {
            rc = GR_ERR_TRUNCATED;
            break;
        }
        if (ib.pos == in_before && ob.pos == 0) {
            rc = GR_ERR_MALFORMED; /* no progress with input and room left */
            break;
        }
    }
done:
    ZSTD_freeDCtx(dctx);
    return rc;
}

static int zstd_compress(int level, const uint8_t *in, size_t in_len, gr_writer *w)
{
    if (level < 0)
        level = ZSTD_DEFAULT_LEVEL;
    else if (level > ZSTD_maxCLevel())
        return GR_ERR_MALFORMED;
    size_t bound = ZSTD_compressBound(in_len);
    if (ZSTD_isError(bound))
        return GR_ERR_MALFORMED;
    uint8_t *dst = gr_writer_reserve(w, bound);
    if (!dst)
        return GR_ERR_NOMEM;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!cctx)
        return GR_ERR_NOMEM;
    int rc = GR_OK;
    size_t n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(n))
        n = ZSTD_compress2(cctx, dst, bound, in, in_len);
    if (ZSTD_isError(n))
        rc = ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? GR_ERR_NOMEM
                                                                   : GR_ERR_MALFORMED;
    else
        w->len += n;
    ZSTD_freeCCtx(cctx);
    return rc;
}

/* ---- the interface ---- */

/* A first buffer size for zstd: the content size of the first frame when
 * it declares one (a declared size beyond the bound fails at once). */
static int zstd_hint(const uint8_t *in, size_t in_len, size_t max_out, size_t *hint)
{
    unsigned long long cs = ZSTD_getFrameContentSize(in, in_len);
    *hint = out_guess(in_len);
    if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
        return GR_OK; /* garbage or no size: the decoder will say */
    if (cs > max_out)
        return GR_ERR_MALFORMED;
    /* One byte more than declared, so that a frame that is followed by
     * another needs no early doubling; exactness is not relied on. */
    *hint = (size_t)cs + 1;
    return GR_OK;
}

int gr_decompress(gr_codec codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                  size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!in && in_len)
        return GR_ERR_MALFORMED;
    if (!in)
        in = (const uint8_t *)"";

    if (codec == GR_CODEC_SNAPPY)
        return snappy_decompress(in, in_len, max_out, out, out_len);

    outbuf o;
    size_t hint = out_guess(in_len);
    int rc;
    switch (codec) {
    case GR_CODEC_NONE:
        if (in_len > max_out)
            return GR_ERR_MALFORMED;
        hint = in_len;
        break;
    case GR_CODEC_ZSTD:
        if ((rc = zstd_hint(in, in_len, max_out, &hint)) != GR_OK)
            return rc;
        break;
    case GR_CODEC_GZIP:
    case GR_CODEC_LZ4:
        break;
    default:
        return GR_ERR_MALFORMED;
    }
    if ((rc = out_init(&o, max_out, hint)) != GR_OK)
        return rc;

    switch (codec) {
    case GR_CODEC_NONE:
        memcpy(o.p, in, in_len);
        o.len = in_len;
        rc = GR_OK;
        break;
    case GR_CODEC_GZIP:
        rc = gzip_decompress(in, in_len, &o);
        break;
    case GR_CODEC_LZ4:
        rc = lz4_decompress(in, in_len, &o);
        break;
    default:
        rc = zstd_decompress(in, in_len, &o);
        break;
    }
    if (rc != GR_OK) {
        out_free(&o);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return GR_OK;
}

int gr_compress(gr_codec codec, int level, const uint8_t *in, size_t in_len, gr_writer *w)
{
    if (!gr_writer_ok(w))
        return w->err;
    if (!in && in_len)
        return GR_ERR_MALFORMED;
    if (!in)
        in = (const uint8_t *)"";
    switch (codec) {
    case GR_CODEC_NONE:
        gr_write_raw(w, in, in_len);
        return gr_writer_ok(w) ? GR_OK : w->err;
    case GR_CODEC_GZIP:
        return gzip_compress(level, in, in_len, w);
    case GR_CODEC_SNAPPY:
        return snappy_compress_xerial(in, in_len, w);
    case GR_CODEC_LZ4:
        return lz4_compress(level, in, in_len, w);
    case GR_CODEC_ZSTD:
        return zstd_compress(level, in, in_len, w);
    }
    return GR_ERR_MALFORMED;
}

static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};

const char *gr_codec_name(gr_codec codec)
{
    if ((unsigned)codec < sizeof codec_names / sizeof codec_names[0])
        return codec_names[codec];
    return "unknown";
}

int gr_codec_parse(const char *name, gr_codec *out)
{
    if (!name)
        return GR_ERR_MALFORMED;
    for (unsigned i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++) {
        if (strcmp(name, codec_names[i]) == 0) {
            *out = (gr_codec)i;
            return GR_OK;
        }
    }
    return GR_ERR_MALFORMED;
}
