/* g711_inline.h - private to g711.c and its ISA variants (g711_avx2.c).
 *
 * The per-sample coding steps, written once as static inline functions so
 * that each variant file compiles the same arithmetic for its own instruction
 * set, and the variants' entry points. Not part of the public API (g711.h).
 */
#ifndef VB_G711_INLINE_H
#define VB_G711_INLINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "g711.h"

/* An AVX2 variant is built where the compiler can target it per function. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define VB_G711_HAVE_AVX2 1
#else
#define VB_G711_HAVE_AVX2 0
#endif

/* (bits of (float)v) >> 19 is (floor(log2 v) + 127) << 4 | (next 4 bits of v),
 * for 1 <= v < 2^24: the exponent and the top four mantissa bits sit side by
 * side, and the conversion is exact. memcpy is the defined way to read the
 * bits; compilers turn it into a register move. */
static inline int32_t vb_exp_and_4_bits(int32_t v) {
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (int32_t)(bits >> 19);
}

/* v * 2^k for 0 <= v < 2^24, 0 <= k < 100, by adding k to the float exponent:
 * exact, and unlike v << k it vectorises without per-lane shifts (SSE2 and
 * AVX2 alike). */
static inline int32_t vb_times_pow2(int32_t v, int32_t k) {
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits += (uint32_t)k << 23;
    memcpy(&f, &bits, sizeof f);
    return (int32_t)f;
}

static inline uint8_t vb_ulaw_encode_one(int16_t sample) {
    int32_t x = sample;
    int32_t sign = x >> 31;             /* 0 or -1 (arithmetic shift, as on every target) */
    int32_t v = ((x ^ sign) >> 2) + 33; /* one's complement magnitude, biased */
    v = v < 8191 ? v : 8191;            /* 8191 - 33 = 8158 is the largest magnitude */
    /* s = floor(log2 v) - 5, so s << 4 | q = (e + 127) << 4 | q - (127 + 5) << 4. */
    int32_t code = vb_exp_and_4_bits(v) - ((127 + 5) << 4);
    /* Invert the 7 code bits, and set bit 7 for x >= 0. */
    return (uint8_t)(code ^ 0xFF ^ (sign & 0x80));
}

static inline uint8_t vb_alaw_encode_one(int16_t sample) {
    int32_t x = sample;
    int32_t sign = x >> 31;
    int32_t m = (x ^ sign) >> 4; /* one's complement magnitude, 0..2047 */
    /* m >= 16: s = floor(log2 m) - 3. Below 16 the code is m itself. */
    int32_t code = vb_exp_and_4_bits(m) - ((127 + 3) << 4);
    code = m < 16 ? m : code;
    /* Bit 7 set for x >= 0, then invert the even bits. */
    return (uint8_t)(code ^ 0xD5 ^ (sign & 0x80));
}

/* The decoder formulas of g711.h, computed instead of looked up (the AVX2
 * variant uses them; the scalar code reads tables built from the same
 * formulas, and the tests hold both to G.711). */
static inline int16_t vb_ulaw_decode_one(uint8_t code) {
    int32_t c = ~(int32_t)code & 0xFF;
    int32_t magnitude = (vb_times_pow2(2 * (c & 15) + 33, (c >> 4) & 7) - 33) * 4;
    int32_t negative = -(c >> 7); /* 0 or -1 */
    return (int16_t)((magnitude ^ negative) - negative);
}

static inline int16_t vb_alaw_decode_one(uint8_t code) {
    int32_t a = (int32_t)code ^ 0x55;
    int32_t s = (a >> 4) & 7;
    int32_t above = s != 0; /* segment 0 is 2q + 1; above, (2q + 33) << (s - 1) */
    int32_t magnitude = vb_times_pow2(2 * (a & 15) + 1 + (above << 5), s - above) * 8;
    int32_t negative = (a >> 7) - 1; /* bit 7 set means positive: 0, else -1 */
    return (int16_t)((magnitude ^ negative) - negative);
}

#if VB_G711_HAVE_AVX2
/* g711_avx2.c; call only where __builtin_cpu_supports("avx2"). */
void vb_g711_ulaw_encode_avx2(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n);
void vb_g711_alaw_encode_avx2(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n);
void vb_g711_ulaw_decode_avx2(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n);
void vb_g711_alaw_decode_avx2(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n);
#endif

#endif /* VB_G711_INLINE_H */
