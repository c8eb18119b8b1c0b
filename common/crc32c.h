/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of Kafka record batches.
 *
 * gr_crc32c() uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once, at the first call) and a portable slicing-by-8 table otherwise. Both
 * compute the same function; the two entry points below exist so the tests
 * can compare them on the same machine.
 *
 * The running value is the finished CRC (pre- and post-inversion are done
 * inside), so a checksum starts at 0 and chains:
 *   gr_crc32c(gr_crc32c(0, a, n), b, m) == gr_crc32c(0, a||b, n + m)
 */
#ifndef GR_CRC32C_H
#define GR_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t gr_crc32c(uint32_t crc, const void *p, size_t n);

/* The table implementation, always available. */
uint32_t gr_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* True when gr_crc32c_hw() may be called on this CPU. */
bool gr_crc32c_hw_available(void);
/* The SSE4.2 implementation; only call it when gr_crc32c_hw_available(). */
uint32_t gr_crc32c_hw(uint32_t crc, const void *p, size_t n);

#endif
