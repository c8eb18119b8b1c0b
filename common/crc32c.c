/*
 * crc32c.c - CRC-32C, reflected polynomial 0x82F63B78.
 *
 * Two implementations of one function:
 *
 *  - Slicing-by-8: eight 256-entry tables, where table[k][b] is the CRC
 *    contribution of byte b followed by k zero bytes. Eight input bytes are
 *    folded per step with eight independent lookups. The tables are built
 *    once, at the first call, from the polynomial.
 *  - SSE4.2: the crc32 instruction computes exactly this polynomial, eight
 *    bytes per instruction. It lives in a function compiled for the sse4.2
 *    target so the rest of the file (and the binary) still runs on CPUs
 *    without it; the choice is made at run time with cpuid.
 *
 * Both keep the CRC register inverted internally (the standard ~0 initial
 * value and final xor), so callers see a plain chainable value starting at 0.
 * Unaligned input is fine: words are assembled with memcpy or byte loads.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GR_CRC32C_X86 1
#include <nmmintrin.h>
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static bool have_hw;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
}

static void init(void)
{
    build_tables();
#ifdef GR_CRC32C_X86
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t le32(const uint8_t *q)
{
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}

uint32_t gr_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    const uint8_t *q = p;
    uint32_t c = ~crc;
    for (; n >= 8; n -= 8, q += 8) {
        uint32_t lo = le32(q) ^ c;
        uint32_t hi = le32(q + 4);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *q++) & 0xff];
    return ~c;
}

#ifdef GR_CRC32C_X86
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *q, size_t n)
{
    uint64_t c = ~crc;
    for (; n >= 8; n -= 8, q += 8) {
        uint64_t word;
        memcpy(&word, q, 8);
        c = _mm_crc32_u64(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *q++);
    return ~c32;
}
#endif

bool gr_crc32c_hw_available(void)
{
    pthread_once(&init_once, init);
    return have_hw;
}

uint32_t gr_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
#ifdef GR_CRC32C_X86
    if (gr_crc32c_hw_available())
        return crc_sse42(crc, p, n);
#endif
    return gr_crc32c_sw(crc, p, n);
}

uint32_t gr_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
#ifdef GR_CRC32C_X86
    if (have_hw)
        return crc_sse42(crc, p, n);
#endif
    return gr_crc32c_sw(crc, p, n);
}
