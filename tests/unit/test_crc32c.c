/*
 * test_crc32c.c - common/crc32c: published check values for both the table
 * and the SSE4.2 implementation, chaining, and the two implementations
 * against each other (and against a bit-at-a-time reference) on random data
 * of random lengths and alignments.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "tests/unit/suites.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* One bit per step, straight from the definition; slow but obviously right. */
static uint32_t crc_bitwise(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *q = p;
    uint32_t c = ~crc;
    while (n--) {
        c ^= *q++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* Known answers (RFC 3720 appendix B.4 and the common "check" value). */
static void check_vectors(crc_fn f)
{
    ck_assert_uint_eq(f(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(f(0, "", 0), 0);

    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(f(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    ck_assert_uint_eq(f(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ck_assert_uint_eq(f(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(f(0, buf, 32), 0x113FDB5Cu);
}

START_TEST(test_vectors_sw)
{
    check_vectors(gr_crc32c_sw);
    check_vectors(crc_bitwise);
}
END_TEST

START_TEST(test_vectors_hw)
{
    if (!gr_crc32c_hw_available()) {
        fprintf(stderr, "crc32c: CPU has no SSE4.2, hardware path not tested\n");
        return;
    }
    check_vectors(gr_crc32c_hw);
}
END_TEST

START_TEST(test_vectors_dispatch) { check_vectors(gr_crc32c); }
END_TEST

START_TEST(test_chaining)
{
    static const char s[] = "The quick brown fox jumps over the lazy dog, 0123456789!";
    size_t n = sizeof s - 1;
    uint32_t whole = gr_crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++) {
        ck_assert_uint_eq(gr_crc32c(gr_crc32c(0, s, cut), s + cut, n - cut), whole);
        ck_assert_uint_eq(gr_crc32c_sw(gr_crc32c_sw(0, s, cut), s + cut, n - cut), whole);
        if (gr_crc32c_hw_available())
            ck_assert_uint_eq(gr_crc32c_hw(gr_crc32c_hw(0, s, cut), s + cut, n - cut), whole);
    }
}
END_TEST

/* xorshift64*, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

START_TEST(test_random_agree)
{
    enum { MAX = 4096 + 16 };
    uint8_t *buf = malloc(MAX);
    ck_assert_ptr_nonnull(buf);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < MAX; i++)
        buf[i] = (uint8_t)rng_next(&seed);
    bool hw = gr_crc32c_hw_available();
    for (int iter = 0; iter < 3000; iter++) {
        size_t align = rng_next(&seed) % 16;
        size_t len = rng_next(&seed) % (iter < 1000 ? 40 : MAX - 16);
        uint32_t start = iter % 3 ? (uint32_t)rng_next(&seed) : 0;
        uint32_t want = crc_bitwise(start, buf + align, len);
        ck_assert_uint_eq(gr_crc32c_sw(start, buf + align, len), want);
        ck_assert_uint_eq(gr_crc32c(start, buf + align, len), want);
        if (hw)
            ck_assert_uint_eq(gr_crc32c_hw(start, buf + align, len), want);
    }
    free(buf);
}
END_TEST

Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_add_test(tc, test_vectors_sw);
    tcase_add_test(tc, test_vectors_hw);
    tcase_add_test(tc, test_vectors_dispatch);
    tcase_add_test(tc, test_chaining);
    tcase_add_test(tc, test_random_agree);
    suite_add_tcase(s, tc);
    return s;
}
