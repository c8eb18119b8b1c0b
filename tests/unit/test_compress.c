/*
 * test_compress.c - common/compress: round trips of every codec at several
 * levels, streams written by the codec libraries themselves in the forms
 * clients use (raw and xerial snappy, concatenated gzip members, lz4 frames
 * with and without content size and checksums, zstd frames with and without
 * content size), the output bound against decompression bombs, malformed
 * input, and the record batches captured from kcat and confluent_kafka in
 * tests/data/batches (see the README there).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/compress.h"
#include "tests/unit/suites.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

static const gr_codec all_codecs[] = {GR_CODEC_NONE, GR_CODEC_GZIP, GR_CODEC_SNAPPY, GR_CODEC_LZ4,
                                      GR_CODEC_ZSTD};
static const gr_codec real_codecs[] = {GR_CODEC_GZIP, GR_CODEC_SNAPPY, GR_CODEC_LZ4, GR_CODEC_ZSTD};
#define N_REAL (sizeof real_codecs / sizeof real_codecs[0])

/* ---- inputs ---- */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    uint32_t s = seed ? seed : 1;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next(&s);
    return p;
}

/* Record-like text: compresses well but is not one repeated byte. */
static uint8_t *text_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    size_t pos = 0;
    for (unsigned i = 0; pos < n; i++) {
        char line[96];
        int len = snprintf(line, sizeof line, "key-%u:value-%u lorem ipsum dolor sit amet\n", i,
                           i * 7u);
        for (int j = 0; j < len && pos < n; j++)
            p[pos++] = (uint8_t)line[j];
    }
    return p;
}

/* ---- helpers ---- */

/* Compresses with gr_compress into a fresh buffer (caller frees). */
static uint8_t *compress_new(gr_codec codec, int level, const uint8_t *in, size_t n, size_t *out_len)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_compress(codec, level, in, n, &w), GR_OK);
    ck_assert(gr_writer_ok(&w));
    uint8_t *p = gr_writer_take(&w, out_len);
    if (!p) { /* nothing appended (the none codec with empty input) */
        p = malloc(1);
        ck_assert_ptr_nonnull(p);
    }
    return p;
}

/* Decompresses and checks that the output is exactly want. */
static void expect_decompress(gr_codec codec, const uint8_t *c, size_t clen, const uint8_t *want,
                              size_t want_len)
{
    uint8_t *out = NULL;
    size_t out_len = 12345;
    int rc = gr_decompress(codec, c, clen, want_len, &out, &out_len);
    ck_assert_msg(rc == GR_OK, "%s: decompress of %zu bytes: %d", gr_codec_name(codec), clen, rc);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, want_len);
    if (want_len)
        ck_assert_mem_eq(out, want, want_len);
    free(out);
}

static void expect_fail(gr_codec codec, const uint8_t *c, size_t clen, size_t max_out)
{
    uint8_t *out = (uint8_t *)&out; /* must come back NULL */
    size_t out_len = 12345;
    int rc = gr_decompress(codec, c, clen, max_out, &out, &out_len);
    ck_assert_msg(rc < 0, "%s: %zu bytes of bad input decompressed (%zu bytes out)",
                  gr_codec_name(codec), clen, out_len);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(out_len, 0);
}

/* Compresses, decompresses with the exact bound, and checks that one byte
 * less of bound is refused. */
static void round_trip(gr_codec codec, int level, const uint8_t *in, size_t n)
{
    size_t clen;
    uint8_t *c = compress_new(codec, level, in, n, &clen);
    expect_decompress(codec, c, clen, in, n);
    if (n > 0)
        expect_fail(codec, c, clen, n - 1);
    free(c);
}

/* In a child with the data segment limited to what it already uses plus
 * 24 MiB, decompression must fail as malformed (the bound, or a lie found
 * out), not as an allocation failure: memory use does not follow what the
 * data claims. Not under AddressSanitizer, whose own memory such a limit
 * would break. */
static void expect_bounded_memory(gr_codec codec, const uint8_t *c, size_t clen, size_t max_out)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)codec, (void)c, (void)clen, (void)max_out;
#else
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* statm: size resident shared text lib data (pages) */
        long v[6];
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
            _exit(3);
        fclose(f);
        long pages = v[5];
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 24 * MiB;
        if (setrlimit(RLIMIT_DATA, &rl) != 0)
            _exit(4);
        uint8_t *out = NULL;
        size_t out_len;
        int rc = gr_decompress(codec, c, clen, max_out, &out, &out_len);
        _exit(rc == GR_ERR_MALFORMED ? 0 : rc == GR_ERR_NOMEM ? 1 : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: under a memory limit: child exit %d",
                  gr_codec_name(codec), WEXITSTATUS(status));
#endif
}

/* ---- names ---- */

START_TEST(test_codec_names)
{
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(gr_codec_name(all_codecs[i]), names[i]);
        gr_codec c = (gr_codec)99;
        ck_assert_int_eq(gr_codec_parse(names[i], &c), GR_OK);
        ck_assert_int_eq(c, all_codecs[i]);
    }
    gr_codec c = GR_CODEC_GZIP;
    ck_assert_int_lt(gr_codec_parse("GZIP", &c), 0);
    ck_assert_int_lt(gr_codec_parse("producer", &c), 0);
    ck_assert_int_lt(gr_codec_parse("uncompressed", &c), 0);
    ck_assert_int_lt(gr_codec_parse("", &c), 0);
    ck_assert_int_lt(gr_codec_parse(NULL, &c), 0);
    ck_assert_int_eq(c, GR_CODEC_GZIP);
    ck_assert_str_eq(gr_codec_name((gr_codec)5), "unknown");
}
END_TEST

/* ---- round trips ---- */

/* Levels per codec: the default, the extremes and something between. */
static const int *levels_for(gr_codec codec, size_t *n)
{
    static const int none[] = {-1};
    static const int gzip[] = {-1, 0, 1, 6, 9};
    static const int lz4[] = {-1, 0, 1, 3, 9, 12, 17};
    static const int zstd[] = {-1, 0, 1, 3, 19};
    switch (codec) {
    case GR_CODEC_GZIP:
        *n = sizeof gzip / sizeof gzip[0];
        return gzip;
    case GR_CODEC_LZ4:
        *n = sizeof lz4 / sizeof lz4[0];
        return lz4;
    case GR_CODEC_ZSTD:
        *n = sizeof zstd / sizeof zstd[0];
        return zstd;
    default:
        *n = 1;
        return none;
    }
}

START_TEST(test_round_trip)
{
    gr_codec codec = all_codecs[_i];
    static const uint8_t one[1] = {0x42};
    uint8_t *text = text_bytes(MiB);
    uint8_t *rnd = random_bytes(100 * KiB, 7);
    size_t nl;
    const int *levels = levels_for(codec, &nl);
    for (size_t l = 0; l < nl; l++) {
        round_trip(codec, levels[l], NULL, 0);
        round_trip(codec, levels[l], one, 1);
        round_trip(codec, levels[l], text, MiB);
        round_trip(codec, levels[l], rnd, 100 * KiB);
    }
    /* Highly compressible input really is compressed. */
    if (codec != GR_CODEC_NONE) {
        size_t clen;
        uint8_t *c = compress_new(codec, -1, text, MiB, &clen);
        ck_assert_uint_lt(clen, MiB / 4);
        free(c);
    }
    free(text);
    free(rnd);
}
END_TEST

/* zstd's strongest level, on smaller input to keep the suite fast. */
START_TEST(test_zstd_max_level)
{
    uint8_t *text = text_bytes(64 * KiB);
    round_trip(GR_CODEC_ZSTD, 22, text, 64 * KiB);
    free(text);
}
END_TEST

START_TEST(test_compress_appends)
{
    uint8_t *text = text_bytes(10 * KiB);
    for (size_t i = 0; i < N_REAL; i++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_raw(&w, "prefix", 6);
        ck_assert_int_eq(gr_compress(real_codecs[i], -1, text, 10 * KiB, &w), GR_OK);
        ck_assert_uint_gt(w.len, 6);
        ck_assert_mem_eq(w.p, "prefix", 6);
        expect_decompress(real_codecs[i], w.p + 6, w.len - 6, text, 10 * KiB);
        gr_writer_free(&w);
    }
    free(text);
}
END_TEST

START_TEST(test_bad_levels)
{
    static const struct {
        gr_codec codec;
        int level;
    } bad[] = {{GR_CODEC_GZIP, 10}, {GR_CODEC_LZ4, 18}, {GR_CODEC_ZSTD, 23}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_raw(&w, "x", 1);
        ck_assert_int_lt(gr_compress(bad[i].codec, bad[i].level, (const uint8_t *)"abc", 3, &w), 0);
        ck_assert_uint_eq(w.len, 1); /* nothing appended */
        gr_writer_free(&w);
    }
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_lt(gr_compress((gr_codec)5, -1, (const uint8_t *)"abc", 3, &w), 0);
    ck_assert_uint_eq(w.len, 0);
    gr_writer_free(&w);

    uint8_t *out = NULL;
    size_t out_len;
    ck_assert_int_lt(gr_decompress((gr_codec)7, (const uint8_t *)"abc", 3, 100, &out, &out_len), 0);
    ck_assert_ptr_null(out);
}
END_TEST

/* ---- snappy: raw and xerial ---- */

static uint8_t *snappy_raw(const uint8_t *in, size_t n, size_t *clen)
{
    size_t max = snappy_max_compressed_length(n);
    uint8_t *c = malloc(max);
    ck_assert_ptr_nonnull(c);
    *clen = max;
    ck_assert_int_eq(snappy_compress((const char *)in, n, (char *)c, clen), SNAPPY_OK);
    return c;
}

static void put_be32(gr_writer *w, uint32_t v) { gr_write_u32(w, v); }

static void xerial_header(gr_writer *w, uint32_t version, uint32_t compat)
{
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    gr_write_raw(w, magic, 8);
    put_be32(w, version);
    put_be32(w, compat);
}

static void xerial_block(gr_writer *w, const uint8_t *in, size_t n)
{
    size_t clen;
    uint8_t *c = snappy_raw(in, n, &clen);
    put_be32(w, (uint32_t)clen);
    gr_write_raw(w, c, clen);
    free(c);
}

START_TEST(test_snappy_raw_vector)
{
    uint8_t *text = text_bytes(200 * KiB); /* more than one xerial block's worth */
    size_t clen;
    uint8_t *c = snappy_raw(text, 200 * KiB, &clen);
    expect_decompress(GR_CODEC_SNAPPY, c, clen, text, 200 * KiB);
    expect_fail(GR_CODEC_SNAPPY, c, clen, 200 * KiB - 1);
    free(c);
    /* Raw snappy of nothing is the single byte 0. */
    c = snappy_raw(NULL, 0, &clen);
    ck_assert_uint_eq(clen, 1);
    expect_decompress(GR_CODEC_SNAPPY, c, clen, NULL, 0);
    free(c);
    free(text);
}
END_TEST

START_TEST(test_snappy_xerial_vector)
{
    uint8_t *text = text_bytes(100 * KiB);
    /* Blocks of uneven sizes, as a writer with another block size makes. */
    static const size_t cuts[] = {0, 1, 32 * KiB + 1, 64 * KiB, 100 * KiB};
    gr_writer w;
    gr_writer_init(&w, 0);
    xerial_header(&w, 1, 1);
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++)
        xerial_block(&w, text + cuts[i], cuts[i + 1] - cuts[i]);
    ck_assert(gr_writer_ok(&w));
    expect_decompress(GR_CODEC_SNAPPY, w.p, w.len, text, 100 * KiB);
    expect_fail(GR_CODEC_SNAPPY, w.p, w.len, 100 * KiB - 1);
    gr_writer_free(&w);

    /* Later versions that stay compatible are read. */
    gr_writer_init(&w, 0);
    xerial_header(&w, 7, 1);
    xerial_block(&w, text, 1000);
    expect_decompress(GR_CODEC_SNAPPY, w.p, w.len, text, 1000);
    gr_writer_free(&w);

    /* A header and no blocks is an empty stream. */
    gr_writer_init(&w, 0);
    xerial_header(&w, 1, 1);
    expect_decompress(GR_CODEC_SNAPPY, w.p, w.len, NULL, 0);
    gr_writer_free(&w);
    free(text);
}
END_TEST

/* gr_compress writes the xerial form: check its framing by hand. */
START_TEST(test_snappy_writes_xerial)
{
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    uint8_t *text = text_bytes(100 * KiB);
    size_t clen;
    uint8_t *c = compress_new(GR_CODEC_SNAPPY, -1, text, 100 * KiB, &clen);
    ck_assert_uint_ge(clen, 16);
    ck_assert_mem_eq(c, magic, 8);
    gr_reader r;
    gr_reader_init(&r, c + 8, clen - 8);
    int32_t version, compat;
    gr_read_i32(&r, &version);
    gr_read_i32(&r, &compat);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(compat, 1);
    size_t total = 0, blocks = 0;
    while (gr_reader_remaining(&r) > 0) {
        int32_t blen;
        const uint8_t *b;
        ck_assert_int_eq(gr_read_i32(&r, &blen), GR_OK);
        ck_assert_int_gt(blen, 0);
        ck_assert_int_eq(gr_read_raw(&r, (size_t)blen, &b), GR_OK);
        size_t n;
        ck_assert_int_eq(snappy_uncompressed_length((const char *)b, (size_t)blen, &n), SNAPPY_OK);
        ck_assert_uint_le(n, 32 * KiB);
        uint8_t *block = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(block);
        ck_assert_int_eq(snappy_uncompress((const char *)b, (size_t)blen, (char *)block, &n),
                         SNAPPY_OK);
        ck_assert_mem_eq(block, text + total, n);
        free(block);
        total += n;
        blocks++;
    }
    ck_assert_uint_eq(total, 100 * KiB);
    ck_assert_uint_eq(blocks, 4); /* 32 KiB blocks */
    free(c);

    /* Empty input: the header alone. */
    c = compress_new(GR_CODEC_SNAPPY, -1, NULL, 0, &clen);
    ck_assert_uint_eq(clen, 16);
    free(c);
    free(text);
}
END_TEST

START_TEST(test_snappy_bad_xerial)
{
    uint8_t *text = text_bytes(4 * KiB);
    gr_writer w;

    /* Version 0: older than anything compatible. */
    gr_writer_init(&w, 0);
    xerial_header(&w, 0, 0);
    xerial_block(&w, text, 4 * KiB);
    expect_fail(GR_CODEC_SNAPPY, w.p, w.len, MiB);
    gr_writer_free(&w);

    /* Header cut short. */
    gr_writer_init(&w, 0);
    xerial_header(&w, 1, 1);
    for (size_t cut = 8; cut < 16; cut++)
        expect_fail(GR_CODEC_SNAPPY, w.p, cut, MiB);
    gr_writer_free(&w);

    /* Block length beyond the data, negative, zero; a partial length. */
    static const uint32_t lens[] = {0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        gr_writer_init(&w, 0);
        xerial_header(&w, 1, 1);
        xerial_block(&w, text, 100);
        put_be32(&w, lens[i]);
        gr_write_raw(&w, text, 10);
        expect_fail(GR_CODEC_SNAPPY, w.p, w.len, MiB);
        gr_writer_free(&w);
    }
    gr_writer_init(&w, 0);
    xerial_header(&w, 1, 1);
    xerial_block(&w, text, 100);
    gr_write_raw(&w, "\0\0", 2);
    expect_fail(GR_CODEC_SNAPPY, w.p, w.len, MiB);
    gr_writer_free(&w);

    /* A block whose content is not snappy. */
    gr_writer_init(&w, 0);
    xerial_header(&w, 1, 1);
    put_be32(&w, 8);
    gr_write_raw(&w, "\xff\xff\xff\xff\x0f garbage", 8);
    expect_fail(GR_CODEC_SNAPPY, w.p, w.len, MiB);
    gr_writer_free(&w);

    /* Wrong magic: read as raw snappy, which it is not. */
    gr_writer_init(&w, 0);
    static const uint8_t bad_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 'X'};
    gr_write_raw(&w, bad_magic, 8);
    put_be32(&w, 1);
    put_be32(&w, 1);
    xerial_block(&w, text, 4 * KiB);
    expect_fail(GR_CODEC_SNAPPY, w.p, w.len, MiB);
    gr_writer_free(&w);

    /* A raw block declaring far more than it could hold. */
    static const uint8_t liar[] = {0xff, 0xff, 0xff, 0x7f, 0x00}; /* 256 MiB - 1 */
    expect_fail(GR_CODEC_SNAPPY, liar, sizeof liar, 512 * MiB);
    expect_bounded_memory(GR_CODEC_SNAPPY, liar, sizeof liar, 512 * MiB);
    free(text);
}
END_TEST

/* ---- gzip ---- */

/* One gzip member made by zlib directly (caller frees). */
static uint8_t *gzip_member(const uint8_t *in, size_t n, int level, size_t *clen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    size_t bound = deflateBound(&zs, n);
    uint8_t *c = malloc(bound);
    ck_assert_ptr_nonnull(c);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = c;
    zs.avail_out = (uInt)bound;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *clen = bound - zs.avail_out;
    deflateEnd(&zs);
    return c;
}

START_TEST(test_gzip_concatenated)
{
    uint8_t *text = text_bytes(300 * KiB);
    size_t l1, l2;
    uint8_t *m1 = gzip_member(text, 100 * KiB, 9, &l1);
    uint8_t *m2 = gzip_member(text + 100 * KiB, 200 * KiB, 1, &l2);
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_raw(&w, m1, l1);
    gr_write_raw(&w, m2, l2);
    expect_decompress(GR_CODEC_GZIP, w.p, w.len, text, 300 * KiB);
    expect_fail(GR_CODEC_GZIP, w.p, w.len, 300 * KiB - 1);
    /* The bound holds across members too. */
    expect_fail(GR_CODEC_GZIP, w.p, w.len, 100 * KiB);
    /* An empty member in between is fine. */
    size_t l0;
    uint8_t *m0 = gzip_member(NULL, 0, 6, &l0);
    gr_writer w2;
    gr_writer_init(&w2, 0);
    gr_write_raw(&w2, m1, l1);
    gr_write_raw(&w2, m0, l0);
    gr_write_raw(&w2, m2, l2);
    expect_decompress(GR_CODEC_GZIP, w2.p, w2.len, text, 300 * KiB);
    /* Bytes after a member that are not another member. */
    gr_write_raw(&w2, "junk", 4);
    expect_fail(GR_CODEC_GZIP, w2.p, w2.len, MiB);
    gr_writer_free(&w2);
    /* A second member cut short. */
    expect_fail(GR_CODEC_GZIP, w.p, l1 + l2 / 2, MiB);
    gr_writer_free(&w);
    free(m0);
    free(m1);
    free(m2);
    free(text);
}
END_TEST

START_TEST(test_gzip_corrupt)
{
    uint8_t *text = text_bytes(10 * KiB);
    size_t clen;
    uint8_t *c = gzip_member(text, 10 * KiB, 6, &clen);
    c[clen - 6] ^= 0x01; /* the CRC-32 of the trailer */
    expect_fail(GR_CODEC_GZIP, c, clen, MiB);
    c[clen - 6] ^= 0x01;
    c[clen - 2] ^= 0x01; /* ISIZE */
    expect_fail(GR_CODEC_GZIP, c, clen, MiB);
    c[clen - 2] ^= 0x01;
    c[0] = 0x1e; /* gzip magic */
    expect_fail(GR_CODEC_GZIP, c, clen, MiB);
    free(c);
    /* zlib (RFC 1950) framing is not gzip. */
    uLongf zlen = compressBound(10 * KiB);
    uint8_t *z = malloc(zlen);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(compress(z, &zlen, text, 10 * KiB), Z_OK);
    expect_fail(GR_CODEC_GZIP, z, zlen, MiB);
    free(z);
    free(text);
}
END_TEST

/* ---- lz4 ---- */

static uint8_t *lz4_frame(const uint8_t *in, size_t n, const LZ4F_preferences_t *prefs, size_t *clen)
{
    size_t bound = LZ4F_compressFrameBound(n, prefs);
    uint8_t *c = malloc(bound);
    ck_assert_ptr_nonnull(c);
    *clen = LZ4F_compressFrame(c, bound, in, n, prefs);
    ck_assert(!LZ4F_isError(*clen));
    return c;
}

START_TEST(test_lz4_frame_variants)
{
    uint8_t *text = text_bytes(300 * KiB);
    LZ4F_preferences_t variants[5];
    memset(variants, 0, sizeof variants);
    /* 0: library defaults. */
    /* 1: content size and both checksums. */
    variants[1].frameInfo.contentSize = 300 * KiB;
    variants[1].frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    variants[1].frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    /* 2: linked 64 KiB blocks, high compression. */
    variants[2].frameInfo.blockSizeID = LZ4F_max64KB;
    variants[2].frameInfo.blockMode = LZ4F_blockLinked;
    variants[2].compressionLevel = 12;
    /* 3: 4 MiB blocks with a content checksum. */
    variants[3].frameInfo.blockSizeID = LZ4F_max4MB;
    variants[3].frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    /* 4: what Kafka's Java client writes: 64 KiB independent blocks, no extras. */
    variants[4].frameInfo.blockSizeID = LZ4F_max64KB;
    variants[4].frameInfo.blockMode = LZ4F_blockIndependent;
    for (size_t i = 0; i < 5; i++) {
        size_t clen;
        uint8_t *c = lz4_frame(text, 300 * KiB, &variants[i], &clen);
        expect_decompress(GR_CODEC_LZ4, c, clen, text, 300 * KiB);
        expect_fail(GR_CODEC_LZ4, c, clen, 300 * KiB - 1);
        free(c);
    }

    /* Two frames back to back. */
    size_t l1, l2;
    uint8_t *f1 = lz4_frame(text, 1000, NULL, &l1);
    uint8_t *f2 = lz4_frame(text + 1000, 2000, &variants[1], &l2);
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_raw(&w, f1, l1);
    gr_write_raw(&w, f2, l2);
    expect_decompress(GR_CODEC_LZ4, w.p, w.len, text, 3000);
    expect_fail(GR_CODEC_LZ4, w.p, w.len, 2999);
    gr_writer_free(&w);
    free(f1);
    free(f2);

    /* A frame with a content checksum and a flipped byte in its data. */
    size_t clen;
    uint8_t *c = lz4_frame(text, 10 * KiB, &variants[3], &clen);
    c[clen / 2] ^= 0x20;
    expect_fail(GR_CODEC_LZ4, c, clen, MiB);
    free(c);
    /* A wrong frame magic. */
    c = lz4_frame(text, 10 * KiB, NULL, &clen);
    c[0] ^= 0x01;
    expect_fail(GR_CODEC_LZ4, c, clen, MiB);
    free(c);
    free(text);
}
END_TEST

/* ---- zstd ---- */

static uint8_t *zstd_frame(const uint8_t *in, size_t n, int content_size, int checksum, size_t *clen)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ck_assert_ptr_nonnull(cctx);
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size)));
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum)));
    size_t bound = ZSTD_compressBound(n);
    uint8_t *c = malloc(bound);
    ck_assert_ptr_nonnull(c);
    *clen = ZSTD_compress2(cctx, c, bound, in, n);
    ck_assert(!ZSTD_isError(*clen));
    ZSTD_freeCCtx(cctx);
    return c;
}

START_TEST(test_zstd_frame_variants)
{
    uint8_t *text = text_bytes(300 * KiB);
    for (int cs = 0; cs <= 1; cs++) {
        for (int ck = 0; ck <= 1; ck++) {
            size_t clen;
            uint8_t *c = zstd_frame(text, 300 * KiB, cs, ck, &clen);
            ck_assert_uint_eq(ZSTD_getFrameContentSize(c, clen),
                              cs ? 300 * KiB : ZSTD_CONTENTSIZE_UNKNOWN);
            expect_decompress(GR_CODEC_ZSTD, c, clen, text, 300 * KiB);
            expect_fail(GR_CODEC_ZSTD, c, clen, 300 * KiB - 1);
            if (ck) {
                c[clen - 1] ^= 0x01; /* the checksum */
                expect_fail(GR_CODEC_ZSTD, c, clen, MiB);
            }
            free(c);
        }
    }
    /* Frames back to back, and a skippable frame between them. */
    size_t l1, l2;
    uint8_t *f1 = zstd_frame(text, 1000, 1, 0, &l1);
    uint8_t *f2 = zstd_frame(text + 1000, 2000, 0, 1, &l2);
    static const uint8_t skippable[] = {0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_raw(&w, f1, l1);
    gr_write_raw(&w, skippable, sizeof skippable);
    gr_write_raw(&w, f2, l2);
    expect_decompress(GR_CODEC_ZSTD, w.p, w.len, text, 3000);
    expect_fail(GR_CODEC_ZSTD, w.p, w.len, 2999);
    gr_writer_free(&w);
    free(f1);
    free(f2);
    free(text);
}
END_TEST

/* A frame written by a streaming encoder told to use a 128 MiB window. */
static uint8_t *zstd_big_window_frame(const uint8_t *in, size_t n, size_t *clen)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ck_assert_ptr_nonnull(cctx);
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 27)));
    size_t cap = ZSTD_compressBound(n) + 64;
    uint8_t *c = malloc(cap);
    ck_assert_ptr_nonnull(c);
    ZSTD_outBuffer ob = {c, cap, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    /* Feeding in two calls keeps the encoder from learning the size. */
    ck_assert(!ZSTD_isError(ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_continue)));
    ck_assert_uint_eq(ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end), 0);
    ZSTD_freeCCtx(cctx);
    *clen = ob.pos;
    return c;
}

/* The window the decoder allocates is bounded by max(8 MiB, max_out). */
START_TEST(test_zstd_window_bound)
{
    uint8_t *text = text_bytes(64 * KiB);
    size_t clen;
    uint8_t *c = zstd_big_window_frame(text, 64 * KiB, &clen);
    ck_assert_uint_eq(ZSTD_getFrameContentSize(c, clen), ZSTD_CONTENTSIZE_UNKNOWN);
    /* Frame header: magic, descriptor (single segment bit 5 clear), then
     * the window descriptor, whose top 5 bits are log2(window) - 10. */
    ck_assert_uint_eq(c[4] & 0x20, 0);
    ck_assert_uint_eq(10 + (c[5] >> 3), 27);
    expect_fail(GR_CODEC_ZSTD, c, clen, MiB);
    uint8_t *out;
    size_t out_len;
    ck_assert_int_eq(gr_decompress(GR_CODEC_ZSTD, c, clen, 128 * MiB, &out, &out_len), GR_OK);
    ck_assert_uint_eq(out_len, 64 * KiB);
    ck_assert_mem_eq(out, text, 64 * KiB);
    free(out);
    free(c);
    free(text);
}
END_TEST

/* ---- bombs ---- */

/* 64 MiB of zeros, compressed (once per codec, at a fast level). */
static uint8_t *bomb(gr_codec codec, size_t *clen)
{
    uint8_t *zeros = calloc(64, MiB);
    ck_assert_ptr_nonnull(zeros);
    uint8_t *c = compress_new(codec, 1, zeros, 64 * MiB, clen);
    free(zeros);
    return c;
}

START_TEST(test_bomb)
{
    gr_codec codec = real_codecs[_i];
    size_t clen;
    uint8_t *c = bomb(codec, &clen);
    ck_assert_uint_lt(clen, 4 * MiB);
    expect_fail(codec, c, clen, MiB);
    expect_bounded_memory(codec, c, clen, MiB);
    /* The same bytes with room for them decompress: the failure above was the bound. */
    uint8_t *out;
    size_t out_len;
    ck_assert_int_eq(gr_decompress(codec, c, clen, 64 * MiB, &out, &out_len), GR_OK);
    ck_assert_uint_eq(out_len, 64 * MiB);
    ck_assert(out[0] == 0 && out[64 * MiB - 1] == 0 && memcmp(out, out + 1, 64 * MiB - 1) == 0);
    free(out);
    free(c);
}
END_TEST

/* zstd without a declared content size: the bound has to stop the stream. */
START_TEST(test_bomb_zstd_streaming)
{
    uint8_t *zeros = calloc(64, MiB);
    ck_assert_ptr_nonnull(zeros);
    size_t clen;
    uint8_t *c = zstd_frame(zeros, 64 * MiB, 0, 0, &clen);
    free(zeros);
    ck_assert_uint_eq(ZSTD_getFrameContentSize(c, clen), ZSTD_CONTENTSIZE_UNKNOWN);
    expect_fail(GR_CODEC_ZSTD, c, clen, MiB);
    expect_bounded_memory(GR_CODEC_ZSTD, c, clen, MiB);
    free(c);
}
END_TEST

/* ---- malformed input ---- */

START_TEST(test_truncated)
{
    gr_codec codec = real_codecs[_i];
    uint8_t *text = text_bytes(20 * KiB); /* one xerial block */
    size_t clen;
    uint8_t *c = compress_new(codec, -1, text, 20 * KiB, &clen);
    for (size_t cut = 0; cut < clen; cut++) {
        /* A xerial stream cut right after its header is a valid empty stream. */
        if (codec == GR_CODEC_SNAPPY && cut == 16)
            continue;
        expect_fail(codec, c, cut, MiB);
    }
    free(c);
    free(text);
}
END_TEST

START_TEST(test_garbage)
{
    gr_codec codec = real_codecs[_i];
    static const size_t lens[] = {1, 2, 7, 16, 100, 4096, 65536};
    for (uint32_t seed = 1; seed <= 20; seed++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            uint8_t *g = random_bytes(lens[i], seed * 7919u + (uint32_t)i);
            expect_fail(codec, g, lens[i], MiB);
            free(g);
        }
    }
    /* Valid-looking starts followed by garbage. */
    uint8_t *text = text_bytes(8 * KiB);
    size_t clen;
    uint8_t *c = compress_new(codec, -1, text, 8 * KiB, &clen);
    uint8_t *g = random_bytes(clen, 99);
    size_t keep = codec == GR_CODEC_SNAPPY ? 24 : 16; /* xerial header + a block length */
    memcpy(g, c, keep);
    expect_fail(codec, g, clen, MiB);
    free(g);
    free(c);
    free(text);
}
END_TEST

START_TEST(test_none_codec)
{
    static const uint8_t data[] = "plain records";
    expect_decompress(GR_CODEC_NONE, data, sizeof data, data, sizeof data);
    expect_fail(GR_CODEC_NONE, data, sizeof data, sizeof data - 1);
    expect_decompress(GR_CODEC_NONE, NULL, 0, NULL, 0);
}
END_TEST

/* ---- batches captured from real clients ---- */

/* Where tests/data is: the source tree, from which the tests run, unless
 * GREGOR_TEST_DATA says otherwise. */
static uint8_t *read_data_file(const char *name, size_t *len)
{
    const char *dir = getenv("GREGOR_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/batches/%s", dir ? dir : "tests/data", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run the tests from the source tree)", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* What a captured file is expected to hold (tests/data/batches/README.md). */
typedef enum { KCAT, CONFLUENT } capture_kind;

static int bytes_eq(const uint8_t *p, int64_t len, const char *s)
{
    return len == (int64_t)strlen(s) && memcmp(p, s, (size_t)len) == 0;
}

/* Checks record number idx (across the whole file) against the README. */
static void check_record(capture_kind kind, int idx, const uint8_t *key, int32_t key_len,
                         const uint8_t *value, int32_t value_len, gr_reader *headers,
                         int32_t header_count)
{
    char want_key[64], want_value[160];
    if (kind == KCAT) {
        if (idx < 200) {
            snprintf(want_key, sizeof want_key, "key-%d", idx);
            snprintf(want_value, sizeof want_value, "value-%d %s", idx,
                     "lorem ipsum dolor sit amet lorem ipsum dolor sit amet "
                     "lorem ipsum dolor sit amet ");
        } else if (idx == 200) {
            want_key[0] = '\0';
            snprintf(want_value, sizeof want_value, "value-with-empty-key");
        } else {
            snprintf(want_key, sizeof want_key, "small-%d", idx - 201);
            snprintf(want_value, sizeof want_value, "tiny-%d", idx - 201);
        }
        ck_assert_msg(bytes_eq(key, key_len, want_key), "record %d: key", idx);
        ck_assert_msg(bytes_eq(value, value_len, want_value), "record %d: value", idx);
        ck_assert_int_eq(header_count, 1);
    } else {
        snprintf(want_key, sizeof want_key, "ck-%d", idx);
        ck_assert_msg(bytes_eq(key, key_len, want_key), "record %d: key", idx);
        if (idx % 2) {
            ck_assert_int_eq(value_len, -1);
        } else {
            snprintf(want_value, sizeof want_value, "cv-%d %s", idx,
                     "ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ");
            ck_assert_msg(bytes_eq(value, value_len, want_value), "record %d: value", idx);
        }
        ck_assert_int_eq(header_count, 2);
    }
    for (int32_t h = 0; h < header_count; h++) {
        int32_t hk_len, hv_len;
        const uint8_t *hk, *hv = NULL;
        ck_assert_int_eq(gr_read_varint(headers, &hk_len), GR_OK);
        ck_assert_int_ge(hk_len, 0);
        ck_assert_int_eq(gr_read_raw(headers, (size_t)hk_len, &hk), GR_OK);
        ck_assert_int_eq(gr_read_varint(headers, &hv_len), GR_OK);
        if (hv_len >= 0)
            ck_assert_int_eq(gr_read_raw(headers, (size_t)hv_len, &hv), GR_OK);
        if (kind == KCAT) {
            ck_assert(bytes_eq(hk, hk_len, "hk") && bytes_eq(hv, hv_len, "hv"));
        } else if (h == 0) {
            ck_assert(bytes_eq(hk, hk_len, "h1") && bytes_eq(hv, hv_len, "x"));
        } else {
            ck_assert(bytes_eq(hk, hk_len, "hnull"));
            ck_assert_int_eq(hv_len, -1);
        }
    }
}

/* Walks count uncompressed records, checking each; returns how many. */
static int check_records(capture_kind kind, int first_idx, const uint8_t *p, size_t len,
                         int32_t count)
{
    gr_reader r;
    gr_reader_init(&r, p, len);
    int n = 0;
    while (gr_reader_remaining(&r) > 0) {
        int32_t rec_len, key_len, value_len, header_count, offset_delta;
        int64_t ts_delta;
        int8_t attrs;
        const uint8_t *rec, *key = NULL, *value = NULL;
        ck_assert_int_eq(gr_read_varint(&r, &rec_len), GR_OK);
        ck_assert_int_gt(rec_len, 0);
        ck_assert_int_eq(gr_read_raw(&r, (size_t)rec_len, &rec), GR_OK);
        gr_reader rr;
        gr_reader_init(&rr, rec, (size_t)rec_len);
        gr_read_i8(&rr, &attrs);
        gr_read_varlong(&rr, &ts_delta);
        gr_read_varint(&rr, &offset_delta);
        gr_read_varint(&rr, &key_len);
        if (key_len >= 0)
            gr_read_raw(&rr, (size_t)key_len, &key);
        gr_read_varint(&rr, &value_len);
        if (value_len >= 0)
            gr_read_raw(&rr, (size_t)value_len, &value);
        gr_read_varint(&rr, &header_count);
        ck_assert_int_eq(rr.err, GR_OK);
        ck_assert_int_eq(offset_delta, n);
        check_record(kind, first_idx + n, key, key_len, value, value_len, &rr, header_count);
        ck_assert_int_eq(rr.err, GR_OK);
        ck_assert_uint_eq(gr_reader_remaining(&rr), 0);
        n++;
    }
    ck_assert_int_eq(n, count);
    return n;
}

static const struct {
    const char *file;
    gr_codec codec;
    capture_kind kind;
    int records;
} captures[] = {
    {"none.bin", GR_CODEC_NONE, KCAT, 206},     {"gzip.bin", GR_CODEC_GZIP, KCAT, 206},
    {"snappy.bin", GR_CODEC_SNAPPY, KCAT, 206}, {"lz4.bin", GR_CODEC_LZ4, KCAT, 206},
    {"zstd.bin", GR_CODEC_ZSTD, KCAT, 206},     {"confluent-zstd.bin", GR_CODEC_ZSTD, CONFLUENT, 10},
};

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(test_captured_batches)
{
    size_t len;
    uint8_t *data = read_data_file(captures[_i].file, &len);
    gr_codec codec = captures[_i].codec;
    size_t pos = 0;
    int records = 0, batches = 0;
    while (pos < len) {
        ck_assert_uint_ge(len - pos, GR_BATCH_HEADER_SIZE);
        const uint8_t *b = data + pos;
        size_t size = GR_BATCH_LOG_OVERHEAD + load32(b + GR_BATCH_OFF_LENGTH);
        ck_assert_uint_le(size, len - pos);
        ck_assert_uint_gt(size, GR_BATCH_HEADER_SIZE);
        ck_assert_int_eq(b[GR_BATCH_OFF_MAGIC], GR_BATCH_MAGIC);
        int attrs = (int)b[GR_BATCH_OFF_ATTRIBUTES] << 8 | b[GR_BATCH_OFF_ATTRIBUTES + 1];
        ck_assert_int_eq(attrs & GR_BATCH_ATTR_CODEC_MASK, codec);
        int32_t count = (int32_t)load32(b + 57);

        const uint8_t *body = b + GR_BATCH_HEADER_SIZE;
        size_t body_len = size - GR_BATCH_HEADER_SIZE;
        uint8_t *out;
        size_t out_len;
        ck_assert_int_eq(gr_decompress(codec, body, body_len, 16 * MiB, &out, &out_len), GR_OK);
        ck_assert_uint_gt(out_len, 0);
        records += check_records(captures[_i].kind, records, out, out_len, count);

        /* Gregor's own compression of the same records reads back too. */
        size_t clen;
        uint8_t *c = compress_new(codec, -1, out, out_len, &clen);
        expect_decompress(codec, c, clen, out, out_len);
        free(c);
        /* And the client's bytes obey the bound like any other. */
        expect_fail(codec, body, body_len, out_len - 1);
        free(out);
        pos += size;
        batches++;
    }
    ck_assert_int_ge(batches, 1);
    ck_assert_int_eq(records, captures[_i].records);
    free(data);
}
END_TEST

Suite *compress_suite(void)
{
    Suite *s = suite_create("compress");
    TCase *t = tcase_create("round_trip");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_codec_names);
    tcase_add_loop_test(t, test_round_trip, 0, (int)(sizeof all_codecs / sizeof all_codecs[0]));
    tcase_add_test(t, test_zstd_max_level);
    tcase_add_test(t, test_compress_appends);
    tcase_add_test(t, test_bad_levels);
    tcase_add_test(t, test_none_codec);
    suite_add_tcase(s, t);

    t = tcase_create("vectors");
    tcase_add_test(t, test_snappy_raw_vector);
    tcase_add_test(t, test_snappy_xerial_vector);
    tcase_add_test(t, test_snappy_writes_xerial);
    tcase_add_test(t, test_gzip_concatenated);
    tcase_add_test(t, test_gzip_corrupt);
    tcase_add_test(t, test_lz4_frame_variants);
    tcase_add_test(t, test_zstd_frame_variants);
    tcase_add_test(t, test_zstd_window_bound);
    suite_add_tcase(s, t);

    t = tcase_create("hostile");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_bomb, 0, (int)N_REAL);
    tcase_add_test(t, test_bomb_zstd_streaming);
    tcase_add_loop_test(t, test_truncated, 0, (int)N_REAL);
    tcase_add_loop_test(t, test_garbage, 0, (int)N_REAL);
    tcase_add_test(t, test_snappy_bad_xerial);
    suite_add_tcase(s, t);

    t = tcase_create("captured");
    tcase_add_loop_test(t, test_captured_batches, 0, (int)(sizeof captures / sizeof captures[0]));
    suite_add_tcase(s, t);
    return s;
}
