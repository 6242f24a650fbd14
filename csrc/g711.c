/* g711.c - scalar C99 kernels for g711.h and the dispatch to ISA variants.
 *
 * Decoding looks the byte up in a 256-entry table. The tables are computed by
 * the compiler from the G.711 decoder formulas (the VB_*_DECODE macros below),
 * so they are constants: no initialisation at first use, no race between
 * threads, and no hand-typed numbers to get wrong.
 *
 * Encoding computes the segment and the quantisation step with arithmetic
 * instead of a table (vb_*_encode_one in g711_inline.h): the segment is
 * floor(log2(v)) and the step the next four bits of v, and both sit side by
 * side in the IEEE-754 encoding of (float)v. The loop is branch-free and gcc
 * vectorises it on baseline SSE2 (checked with -fopt-info-vec, gcc 12).
 * Measured on 10 s of 16 kHz speech-level noise it runs as fast as a 16 KB
 * lookup table indexed by x >> 2 (about 0.5 ns per sample either way, with the
 * table hot in L1), and a 64 KB table indexed by x was 1.8x slower; the
 * arithmetic needs no table, no initialisation and no cache, so it wins.
 *
 * The AVX2 variant (g711_avx2.c) is 2-3x faster on long buffers; its header
 * has the figures.
 *
 * Dispatch: __builtin_cpu_supports reads feature bits that libgcc (or
 * compiler-rt) fills in before any of our code runs, so asking at each call
 * costs a load and a test and keeps this file free of mutable state.
 */
#include "g711_inline.h"

#define VB_G711_BLOCK 16

/* -- decoding tables -------------------------------------------------------
 * mu-law: invert all bits; then bit 7 set means negative, s = bits 4..6,
 * q = bits 0..3, magnitude ((2q + 33) << s) - 33 in 14-bit units (x4 -> 16).
 * A-law: invert the even bits (XOR 0x55); then bit 7 set means positive,
 * magnitude 2q + 1 for s = 0 and (2q + 33) << (s - 1) above, in 13-bit units
 * (x8 -> 16). `<< s >> 1` is `<< (s - 1)` without a negative shift for s = 0,
 * which the ternary would not evaluate but compilers warn about. */
#define VB_ULAW_MAG(u) (((((u) & 15) * 2 + 33) << (((u) >> 4) & 7)) - 33)
#define VB_ULAW_DECODE(c) ((int16_t)((((c) & 0x80) ? 4 : -4) * VB_ULAW_MAG((c) ^ 0xFF)))

#define VB_ALAW_SEG(a) (((a) >> 4) & 7)
#define VB_ALAW_MAG(a)                                                                     \
    (VB_ALAW_SEG(a) == 0 ? ((a) & 15) * 2 + 1 : ((((a) & 15) * 2 + 33) << VB_ALAW_SEG(a)) >> 1)
#define VB_ALAW_DECODE(c) ((int16_t)((((c) ^ 0x55) & 0x80 ? 8 : -8) * VB_ALAW_MAG((c) ^ 0x55)))

#define VB_R4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define VB_R16(F, b) VB_R4(F, b), VB_R4(F, (b) + 4), VB_R4(F, (b) + 8), VB_R4(F, (b) + 12)
#define VB_R64(F, b) VB_R16(F, b), VB_R16(F, (b) + 16), VB_R16(F, (b) + 32), VB_R16(F, (b) + 48)
#define VB_R256(F) VB_R64(F, 0), VB_R64(F, 64), VB_R64(F, 128), VB_R64(F, 192)

static const int16_t vb_ulaw_table[256] = {VB_R256(VB_ULAW_DECODE)};
static const int16_t vb_alaw_table[256] = {VB_R256(VB_ALAW_DECODE)};

/* -- scalar loops ---------------------------------------------------------- */

static void vb_ulaw_encode_scalar(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                                  size_t n) {
    size_t i = 0;
    /* Fixed-size blocks vectorise even at -O2 (see pcm.c). */
    for (; n - i >= VB_G711_BLOCK; i += VB_G711_BLOCK) {
        for (size_t j = 0; j < VB_G711_BLOCK; j++) {
            out[i + j] = vb_ulaw_encode_one(in[i + j]);
        }
    }
    for (; i < n; i++) {
        out[i] = vb_ulaw_encode_one(in[i]);
    }
}

static void vb_alaw_encode_scalar(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                                  size_t n) {
    size_t i = 0;
    for (; n - i >= VB_G711_BLOCK; i += VB_G711_BLOCK) {
        for (size_t j = 0; j < VB_G711_BLOCK; j++) {
            out[i + j] = vb_alaw_encode_one(in[i + j]);
        }
    }
    for (; i < n; i++) {
        out[i] = vb_alaw_encode_one(in[i]);
    }
}

static void vb_ulaw_decode_scalar(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                                  size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = vb_ulaw_table[in[i]];
    }
}

static void vb_alaw_decode_scalar(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                                  size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = vb_alaw_table[in[i]];
    }
}

/* -- dispatch -------------------------------------------------------------- */

static int vb_cpu_has_avx2(void) {
#if VB_G711_HAVE_AVX2
    return __builtin_cpu_supports("avx2") != 0;
#else
    return 0;
#endif
}

int vb_g711_isa(void) { return vb_cpu_has_avx2() ? VB_G711_ISA_AVX2 : VB_G711_ISA_SCALAR; }

/* VB_G711_ISA_AUTO resolved, or a negative status for an isa we cannot run. */
static int vb_resolve(int isa) {
    switch (isa) {
    case VB_G711_ISA_AUTO:
        return vb_g711_isa();
    case VB_G711_ISA_SCALAR:
        return isa;
    case VB_G711_ISA_AVX2:
        return vb_cpu_has_avx2() ? isa : VB_G711_ENOTSUP;
    default:
        return VB_G711_EINVAL;
    }
}

/* The checks every entry point makes: buffers, then the isa. */
static int vb_prepare(int isa, const void *in, const void *out, size_t n) {
    if (n > 0 && (in == NULL || out == NULL)) {
        return VB_G711_EINVAL;
    }
    return vb_resolve(isa);
}

int vb_g711_ulaw_encode_isa(int isa, const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                            size_t n) {
    int use = vb_prepare(isa, in, out, n);
    if (use < 0) {
        return use;
    }
#if VB_G711_HAVE_AVX2
    if (use == VB_G711_ISA_AVX2) {
        vb_g711_ulaw_encode_avx2(in, out, n);
        return VB_G711_OK;
    }
#endif
    vb_ulaw_encode_scalar(in, out, n);
    return VB_G711_OK;
}

int vb_g711_alaw_encode_isa(int isa, const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                            size_t n) {
    int use = vb_prepare(isa, in, out, n);
    if (use < 0) {
        return use;
    }
#if VB_G711_HAVE_AVX2
    if (use == VB_G711_ISA_AVX2) {
        vb_g711_alaw_encode_avx2(in, out, n);
        return VB_G711_OK;
    }
#endif
    vb_alaw_encode_scalar(in, out, n);
    return VB_G711_OK;
}

int vb_g711_ulaw_decode_isa(int isa, const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                            size_t n) {
    int use = vb_prepare(isa, in, out, n);
    if (use < 0) {
        return use;
    }
#if VB_G711_HAVE_AVX2
    if (use == VB_G711_ISA_AVX2) {
        vb_g711_ulaw_decode_avx2(in, out, n);
        return VB_G711_OK;
    }
#endif
    vb_ulaw_decode_scalar(in, out, n);
    return VB_G711_OK;
}

int vb_g711_alaw_decode_isa(int isa, const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                            size_t n) {
    int use = vb_prepare(isa, in, out, n);
    if (use < 0) {
        return use;
    }
#if VB_G711_HAVE_AVX2
    if (use == VB_G711_ISA_AVX2) {
        vb_g711_alaw_decode_avx2(in, out, n);
        return VB_G711_OK;
    }
#endif
    vb_alaw_decode_scalar(in, out, n);
    return VB_G711_OK;
}

int vb_g711_ulaw_encode(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n) {
    return vb_g711_ulaw_encode_isa(VB_G711_ISA_AUTO, in, out, n);
}

int vb_g711_alaw_encode(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n) {
    return vb_g711_alaw_encode_isa(VB_G711_ISA_AUTO, in, out, n);
}

int vb_g711_ulaw_decode(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n) {
    return vb_g711_ulaw_decode_isa(VB_G711_ISA_AUTO, in, out, n);
}

int vb_g711_alaw_decode(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n) {
    return vb_g711_alaw_decode_isa(VB_G711_ISA_AUTO, in, out, n);
}
