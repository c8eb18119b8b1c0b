/*
 * test_buf.c - common/buf: big-endian integers, varints, reader bounds and
 * sticky errors, writer growth, length back-patching, the request arena.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tests/unit/suites.h"

/* Encodes with fn into a fresh writer and compares with the expected bytes. */
#define ASSERT_BYTES(w, ...)                                                                       \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        ck_assert(gr_writer_ok(w));                                                                \
        ck_assert_uint_eq((w)->len, sizeof want_);                                                 \
        ck_assert_mem_eq((w)->p, want_, sizeof want_);                                             \
    } while (0)

/* ---- big-endian integers ---- */

START_TEST(test_be_layout)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_i32(&w, 0x01020304);
    ASSERT_BYTES(&w, 0x01, 0x02, 0x03, 0x04);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_i16(&w, INT16_MIN);
    gr_write_i64(&w, -2);
    gr_write_u16(&w, 0xBEEF);
    gr_write_i8(&w, -1);
    ASSERT_BYTES(&w, 0x80, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBE, 0xEF, 0xFF);
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_be_round_trip)
{
    static const int8_t i8s[] = {INT8_MIN, -1, 0, 1, INT8_MAX};
    static const int16_t i16s[] = {INT16_MIN, -1, 0, 1, INT16_MAX};
    static const int32_t i32s[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    static const int64_t i64s[] = {INT64_MIN, -1, 0, 1, INT64_MAX};
    static const uint16_t u16s[] = {0, 1, UINT16_MAX};
    static const uint32_t u32s[] = {0, 1, UINT32_MAX};
    static const double f64s[] = {0.0, -1.5, 1e300, -2.2250738585072014e-308};
    gr_writer w;
    gr_writer_init(&w, 0);
    for (int i = 0; i < 5; i++) {
        gr_write_i8(&w, i8s[i]);
        gr_write_i16(&w, i16s[i]);
        gr_write_i32(&w, i32s[i]);
        gr_write_i64(&w, i64s[i]);
    }
    for (int i = 0; i < 3; i++) {
        gr_write_u16(&w, u16s[i]);
        gr_write_u32(&w, u32s[i]);
    }
    for (int i = 0; i < 4; i++)
        gr_write_f64(&w, f64s[i]);
    gr_write_bool(&w, true);
    gr_write_bool(&w, false);
    gr_uuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(i * 17);
    gr_write_uuid(&w, &u);
    ck_assert(gr_writer_ok(&w));
    ck_assert_uint_eq(w.len, 5 * 15 + 3 * 6 + 4 * 8 + 2 + 16);

    gr_reader r;
    gr_reader_init(&r, w.p, w.len);
    for (int i = 0; i < 5; i++) {
        int8_t a;
        int16_t b;
        int32_t c;
        int64_t d;
        ck_assert_int_eq(gr_read_i8(&r, &a), GR_OK);
        ck_assert_int_eq(a, i8s[i]);
        ck_assert_int_eq(gr_read_i16(&r, &b), GR_OK);
        ck_assert_int_eq(b, i16s[i]);
        ck_assert_int_eq(gr_read_i32(&r, &c), GR_OK);
        ck_assert_int_eq(c, i32s[i]);
        ck_assert_int_eq(gr_read_i64(&r, &d), GR_OK);
        ck_assert_int_eq(d, i64s[i]);
    }
    for (int i = 0; i < 3; i++) {
        uint16_t a;
        uint32_t b;
        ck_assert_int_eq(gr_read_u16(&r, &a), GR_OK);
        ck_assert_uint_eq(a, u16s[i]);
        ck_assert_int_eq(gr_read_u32(&r, &b), GR_OK);
        ck_assert_uint_eq(b, u32s[i]);
    }
    for (int i = 0; i < 4; i++) {
        double d;
        ck_assert_int_eq(gr_read_f64(&r, &d), GR_OK);
        ck_assert_mem_eq(&d, &f64s[i], sizeof d);
    }
    bool t, f;
    ck_assert_int_eq(gr_read_bool(&r, &t), GR_OK);
    ck_assert_int_eq(gr_read_bool(&r, &f), GR_OK);
    ck_assert(t && !f);
    gr_uuid v;
    ck_assert_int_eq(gr_read_uuid(&r, &v), GR_OK);
    ck_assert_mem_eq(v.b, u.b, 16);
    ck_assert_uint_eq(gr_reader_remaining(&r), 0);
    ck_assert_int_eq(r.err, GR_OK);
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_bool_any_nonzero)
{
    static const uint8_t in[] = {0x00, 0x01, 0x7F, 0xFF};
    gr_reader r;
    gr_reader_init(&r, in, sizeof in);
    bool b;
    ck_assert_int_eq(gr_read_bool(&r, &b), GR_OK);
    ck_assert(!b);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(gr_read_bool(&r, &b), GR_OK);
        ck_assert(b);
    }
}
END_TEST

/* ---- varints ---- */

START_TEST(test_varint_vectors)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_varint(&w, -1);
    ASSERT_BYTES(&w, 0x01);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_varint(&w, 1);
    ASSERT_BYTES(&w, 0x02);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_uvarint(&w, 300);
    ASSERT_BYTES(&w, 0xAC, 0x02);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_varint(&w, 0);
    gr_write_varint(&w, -64); /* zig-zag 127: still one byte */
    gr_write_varint(&w, 64);  /* zig-zag 128: two bytes */
    ASSERT_BYTES(&w, 0x00, 0x7F, 0x80, 0x01);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_uvarint(&w, UINT32_MAX);
    ASSERT_BYTES(&w, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F);
    gr_writer_free(&w);

    gr_writer_init(&w, 0);
    gr_write_varlong(&w, INT64_MIN); /* zig-zag: all 64 bits set */
    ASSERT_BYTES(&w, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01);
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_varint_round_trip_and_sizes)
{
    static const struct {
        int32_t v;
        size_t size;
    } ints[] = {{0, 1}, {-1, 1}, {1, 1}, {63, 1}, {-64, 1}, {64, 2}, {-65, 2},
                {INT32_MAX, 5}, {INT32_MIN, 5}, {INT32_MAX / 2, 5}, {1 << 20, 4}};
    static const struct {
        int64_t v;
        size_t size;
    } longs[] = {{0, 1}, {-1, 1}, {1, 1}, {INT32_MAX, 5}, {INT32_MIN, 5}, {(int64_t)1 << 62, 10},
                 {INT64_MAX, 10}, {INT64_MIN, 10}, {((int64_t)1 << 55) - 1, 8}};
    static const struct {
        uint64_t v;
        size_t size;
    } ulongs[] = {{0, 1}, {127, 1}, {128, 2}, {16383, 2}, {16384, 3}, {UINT32_MAX, 5}, {UINT64_MAX, 10}};

    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_varint(&w, ints[i].v);
        ck_assert_msg(w.len == ints[i].size, "varint %d: %zu bytes", ints[i].v, w.len);
        ck_assert_uint_eq(gr_varint_size(ints[i].v), ints[i].size);
        gr_reader r;
        gr_reader_init(&r, w.p, w.len);
        int32_t back;
        ck_assert_int_eq(gr_read_varint(&r, &back), GR_OK);
        ck_assert_int_eq(back, ints[i].v);
        ck_assert_uint_eq(gr_reader_remaining(&r), 0);
        gr_writer_free(&w);
    }
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_varlong(&w, longs[i].v);
        ck_assert_msg(w.len == longs[i].size, "varlong %lld: %zu bytes", (long long)longs[i].v, w.len);
        ck_assert_uint_eq(gr_varlong_size(longs[i].v), longs[i].size);
        gr_reader r;
        gr_reader_init(&r, w.p, w.len);
        int64_t back;
        ck_assert_int_eq(gr_read_varlong(&r, &back), GR_OK);
        ck_assert_int_eq(back, longs[i].v);
        ck_assert_uint_eq(gr_reader_remaining(&r), 0);
        gr_writer_free(&w);
    }
    for (size_t i = 0; i < sizeof ulongs / sizeof ulongs[0]; i++) {
        gr_writer w;
        gr_writer_init(&w, 0);
        gr_write_uvarlong(&w, ulongs[i].v);
        ck_assert_uint_eq(w.len, ulongs[i].size);
        ck_assert_uint_eq(gr_uvarlong_size(ulongs[i].v), ulongs[i].size);
        gr_reader r;
        gr_reader_init(&r, w.p, w.len);
        uint64_t back;
        ck_assert_int_eq(gr_read_uvarlong(&r, &back), GR_OK);
        ck_assert_uint_eq(back, ulongs[i].v);
        if (ulongs[i].v <= UINT32_MAX) {
            ck_assert_uint_eq(gr_uvarint_size((uint32_t)ulongs[i].v), ulongs[i].size);
            uint32_t b32;
            gr_reader_init(&r, w.p, w.len);
            ck_assert_int_eq(gr_read_uvarint(&r, &b32), GR_OK);
            ck_assert_uint_eq(b32, ulongs[i].v);
        }
        gr_writer_free(&w);
    }
}
END_TEST

START_TEST(test_varint_malformed)
{
    /* six bytes, the first five with the continuation bit: too long for an int */
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    gr_reader r;
    uint32_t u;
    int32_t s;
    gr_reader_init(&r, six, sizeof six);
    ck_assert_int_eq(gr_read_uvarint(&r, &u), GR_ERR_MALFORMED);
    ck_assert_int_eq(r.err, GR_ERR_MALFORMED);
    gr_reader_init(&r, six, sizeof six);
    ck_assert_int_eq(gr_read_varint(&r, &s), GR_ERR_MALFORMED);

    /* five bytes whose value needs more than 32 bits */
    static const uint8_t big[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x1F};
    gr_reader_init(&r, big, sizeof big);
    ck_assert_int_eq(gr_read_uvarint(&r, &u), GR_ERR_MALFORMED);

    /* eleven bytes for a long */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    uint64_t ul;
    int64_t sl;
    gr_reader_init(&r, eleven, sizeof eleven);
    ck_assert_int_eq(gr_read_uvarlong(&r, &ul), GR_ERR_MALFORMED);
    gr_reader_init(&r, eleven, sizeof eleven);
    ck_assert_int_eq(gr_read_varlong(&r, &sl), GR_ERR_MALFORMED);
    /* and the error is sticky */
    int8_t b;
    ck_assert_int_eq(gr_read_i8(&r, &b), GR_ERR_MALFORMED);

    /* a varint cut off in the middle is truncated, not malformed */
    static const uint8_t cut[] = {0xAC};
    gr_reader_init(&r, cut, sizeof cut);
    ck_assert_int_eq(gr_read_uvarint(&r, &u), GR_ERR_TRUNCATED);
    gr_reader_init(&r, cut, 0);
    ck_assert_int_eq(gr_read_varlong(&r, &sl), GR_ERR_TRUNCATED);
}
END_TEST

/* ---- reader bounds ---- */

START_TEST(test_truncation_sticky)
{
    static const uint8_t in[] = {1, 2, 3};
    gr_reader r;
    gr_reader_init(&r, in, sizeof in);
    int32_t v = 12345;
    ck_assert_int_eq(gr_read_i32(&r, &v), GR_ERR_TRUNCATED);
    ck_assert_int_eq(v, 12345); /* output untouched */
    ck_assert_uint_eq(r.pos, 0);
    /* three bytes remain, but the reader has failed: every read fails */
    int8_t b;
    ck_assert_int_eq(gr_read_i8(&r, &b), GR_ERR_TRUNCATED);
    const uint8_t *p = NULL;
    ck_assert_int_eq(gr_read_raw(&r, 1, &p), GR_ERR_TRUNCATED);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(gr_skip(&r, 0), GR_ERR_TRUNCATED);
    ck_assert_int_eq(r.err, GR_ERR_TRUNCATED);

    /* each fixed-size read stops exactly at its size */
    static const uint8_t seven[7] = {0};
    int64_t l;
    gr_reader_init(&r, seven, sizeof seven);
    ck_assert_int_eq(gr_read_i64(&r, &l), GR_ERR_TRUNCATED);
    gr_uuid u;
    gr_reader_init(&r, seven, sizeof seven);
    ck_assert_int_eq(gr_read_uuid(&r, &u), GR_ERR_TRUNCATED);
    double d;
    gr_reader_init(&r, seven, sizeof seven);
    ck_assert_int_eq(gr_read_f64(&r, &d), GR_ERR_TRUNCATED);
    int16_t s;
    gr_reader_init(&r, seven, 1);
    ck_assert_int_eq(gr_read_i16(&r, &s), GR_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_read_raw_bounds)
{
    static const uint8_t in[] = {10, 20, 30, 40, 50};
    gr_reader r;
    const uint8_t *p;
    gr_reader_init(&r, in, sizeof in);
    ck_assert_int_eq(gr_read_raw(&r, 0, &p), GR_OK);
    ck_assert_ptr_eq(p, in);
    ck_assert_int_eq(gr_read_raw(&r, 2, &p), GR_OK);
    ck_assert_ptr_eq(p, in);
    ck_assert_int_eq(gr_skip(&r, 1), GR_OK);
    ck_assert_int_eq(gr_read_raw(&r, 2, &p), GR_OK);
    ck_assert_ptr_eq(p, in + 3);
    ck_assert_uint_eq(gr_reader_remaining(&r), 0);
    ck_assert_int_eq(gr_read_raw(&r, 0, &p), GR_OK); /* zero bytes at the end is fine */

    /* sizes that would overflow a naive pos + n check */
    gr_reader_init(&r, in, sizeof in);
    ck_assert_int_eq(gr_skip(&r, 1), GR_OK);
    ck_assert_int_eq(gr_read_raw(&r, SIZE_MAX, &p), GR_ERR_TRUNCATED);
    gr_reader_init(&r, in, sizeof in);
    ck_assert_int_eq(gr_read_raw(&r, 6, &p), GR_ERR_TRUNCATED);
    ck_assert_uint_eq(r.pos, 0);
    gr_reader_init(&r, in, sizeof in);
    ck_assert_int_eq(gr_skip(&r, SIZE_MAX - 2), GR_ERR_TRUNCATED);
}
END_TEST

/* ---- writer ---- */

START_TEST(test_writer_growth)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_ptr_null(w.p);
    gr_write_raw(&w, "", 0); /* nothing to write: no allocation needed */
    ck_assert_uint_eq(w.len, 0);
    for (int i = 0; i < 100000; i++) {
        gr_write_i8(&w, (int8_t)(i * 7));
        ck_assert_uint_ge(w.cap, w.len);
    }
    ck_assert(gr_writer_ok(&w));
    ck_assert_uint_eq(w.len, 100000);
    for (int i = 0; i < 100000; i++)
        ck_assert_int_eq((int8_t)w.p[i], (int8_t)(i * 7));

    /* one big raw write in the middle of small ones */
    static uint8_t big[70000];
    memset(big, 0xA5, sizeof big);
    gr_write_raw(&w, big, sizeof big);
    gr_write_i16(&w, 0x1234);
    ck_assert_uint_eq(w.len, 100000 + sizeof big + 2);
    ck_assert_mem_eq(w.p + 100000, big, sizeof big);
    ck_assert_uint_eq(w.p[w.len - 2], 0x12);

    size_t len;
    uint8_t *taken = gr_writer_take(&w, &len);
    ck_assert_uint_eq(len, 100000 + sizeof big + 2);
    ck_assert_ptr_null(w.p);
    ck_assert_uint_eq(w.len, 0);
    ck_assert_uint_eq(w.cap, 0);
    free(taken);

    /* the writer is reusable after take */
    gr_write_i32(&w, 7);
    ASSERT_BYTES(&w, 0, 0, 0, 7);
    gr_writer_free(&w);

    gr_writer_init(&w, 1000);
    ck_assert_uint_ge(w.cap, 1000);
    ck_assert_uint_eq(w.len, 0);
    uint8_t *q = gr_writer_reserve(&w, 10);
    ck_assert_ptr_eq(q, w.p);
    ck_assert_uint_eq(w.len, 0);
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_writer_impossible_reserve_is_sticky)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_i8(&w, 1);
    ck_assert_ptr_null(gr_writer_reserve(&w, SIZE_MAX - 1));
    ck_assert_int_eq(w.err, GR_ERR_NOMEM);
    ck_assert(!gr_writer_ok(&w));
    gr_write_i32(&w, 5); /* ignored once failed */
    ck_assert_uint_eq(w.len, 1);
    ck_assert_ptr_null(gr_writer_reserve(&w, 1));
    gr_writer_free(&w);
}
END_TEST

START_TEST(test_write_i32_at)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_i32(&w, 0); /* length placeholder */
    gr_write_raw(&w, "abcdef", 6);
    gr_write_i32_at(&w, 0, 6);
    ASSERT_BYTES(&w, 0, 0, 0, 6, 'a', 'b', 'c', 'd', 'e', 'f');
    gr_write_i32_at(&w, 6, -1); /* the last four bytes exactly */
    ASSERT_BYTES(&w, 0, 0, 0, 6, 'a', 'b', 0xFF, 0xFF, 0xFF, 0xFF);
    gr_write_i32_at(&w, 7, 0x11111111); /* would run past len: ignored */
    gr_write_i32_at(&w, 100, 0x11111111);
    ASSERT_BYTES(&w, 0, 0, 0, 6, 'a', 'b', 0xFF, 0xFF, 0xFF, 0xFF);
    gr_writer_free(&w);
}
END_TEST

/* ---- arena ---- */

START_TEST(test_arena_alignment_and_zeroing)
{
    /* leave dirty memory behind for the arena's chunks to be carved from */
    for (int i = 0; i < 4; i++) {
        void *dirty = malloc(8192);
        ck_assert_ptr_nonnull(dirty);
        memset(dirty, 0xEE, 8192);
        free(dirty);
    }
    gr_arena a;
    gr_arena_init(&a);
    static const size_t sizes[] = {1, 3, 8, 13, 0, 100, 4000, 5000, 7, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = gr_arena_alloc(&a, sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 8, 0);
        for (size_t k = 0; k < sizes[i]; k++)
            ck_assert_uint_eq(p[k], 0);
        memset(p, 0xCC, sizes[i]); /* must not disturb other allocations */
    }
    ck_assert_uint_ge(a.total, 1 + 3 + 8 + 13 + 100 + 4000 + 5000 + 7 + 65536);

    int64_t *arr = gr_arena_calloc(&a, 100, sizeof *arr);
    ck_assert_ptr_nonnull(arr);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(arr[i], 0);
    char *s = gr_arena_strdup(&a, "hello world", 5);
    ck_assert_str_eq(s, "hello");
    char *e = gr_arena_strdup(&a, NULL, 0);
    ck_assert_str_eq(e, "");

    gr_arena_free(&a);
    ck_assert_ptr_null(a.head);
    ck_assert_uint_eq(a.total, 0);
    /* reusable after free */
    ck_assert_ptr_nonnull(gr_arena_alloc(&a, 16));
    gr_arena_free(&a);
}
END_TEST

START_TEST(test_arena_overflow)
{
    gr_arena a;
    gr_arena_init(&a);
    ck_assert_ptr_null(gr_arena_calloc(&a, SIZE_MAX / 2 + 1, 2));
    ck_assert_ptr_null(gr_arena_calloc(&a, SIZE_MAX, SIZE_MAX));
    ck_assert_ptr_null(gr_arena_calloc(&a, 3, SIZE_MAX / 2));
    ck_assert_ptr_null(gr_arena_alloc(&a, SIZE_MAX));
    ck_assert_ptr_null(gr_arena_alloc(&a, SIZE_MAX - 7)); /* would wrap when rounded up to 8 */
    ck_assert_uint_eq(a.total, 0);
    ck_assert_ptr_nonnull(gr_arena_calloc(&a, 0, SIZE_MAX)); /* zero elements is not an overflow */
    gr_arena_free(&a);
}
END_TEST

/* ---- small helpers ---- */

START_TEST(test_str_and_uuid_helpers)
{
    gr_str s = gr_str_from("abc");
    ck_assert_int_eq(s.len, 3);
    ck_assert(gr_str_eq(s, "abc"));
    ck_assert(!gr_str_eq(s, "ab"));
    ck_assert(!gr_str_eq(s, "abcd"));
    ck_assert(!gr_str_eq(s, NULL));
    gr_str n = gr_str_from(NULL);
    ck_assert_int_eq(n.len, -1);
    ck_assert(gr_str_eq(n, NULL));
    ck_assert(!gr_str_eq(n, ""));
    ck_assert(gr_str_eq(gr_str_from(""), ""));

    gr_uuid u = {{0}};
    ck_assert(gr_uuid_is_zero(&u));
    u.b[15] = 1;
    ck_assert(!gr_uuid_is_zero(&u));

    ck_assert_str_eq(gr_err_str(GR_OK), "ok");
    ck_assert_str_eq(gr_err_str(GR_ERR_TRUNCATED), "truncated");
    ck_assert_str_eq(gr_err_str(GR_ERR_MALFORMED), "malformed");
    ck_assert_str_eq(gr_err_str(-999), "unknown error");
}
END_TEST

Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *t = tcase_create("ints");
    tcase_add_test(t, test_be_layout);
    tcase_add_test(t, test_be_round_trip);
    tcase_add_test(t, test_bool_any_nonzero);
    tcase_add_test(t, test_varint_vectors);
    tcase_add_test(t, test_varint_round_trip_and_sizes);
    tcase_add_test(t, test_varint_malformed);
    suite_add_tcase(s, t);

    t = tcase_create("bounds");
    tcase_add_test(t, test_truncation_sticky);
    tcase_add_test(t, test_read_raw_bounds);
    suite_add_tcase(s, t);

    t = tcase_create("writer");
    tcase_add_test(t, test_writer_growth);
    tcase_add_test(t, test_writer_impossible_reserve_is_sticky);
    tcase_add_test(t, test_write_i32_at);
    suite_add_tcase(s, t);

    t = tcase_create("arena");
    tcase_add_test(t, test_arena_alignment_and_zeroing);
    tcase_add_test(t, test_arena_overflow);
    tcase_add_test(t, test_str_and_uuid_helpers);
    suite_add_tcase(s, t);
    return s;
}
