/* g711.h - ITU-T G.711 mu-law and A-law companding, for vbgraph.
 *
 * Plain C99, no allocation, no global mutable state; every buffer belongs to
 * the caller. Each function returns VB_G711_OK (0) or a negative VB_G711_E*
 * status. Like pcm.h these are stateless element-wise maps, so they take no
 * handle (the departure from STYLE.md rule 6 is explained in pcm.h).
 *
 * Linear samples are int16 in host order ("16-bit left-justified" in G.191
 * terms): mu-law uses the top 14 bits, A-law the top 13, and the bits below are
 * ignored by the encoder and zero in the decoder's output.
 *
 * Encoding, and the one place where G.711 leaves a choice: the Recommendation
 * gives decision values on a sign-magnitude scale, so it does not say where a
 * two's complement sample lying on a decision value goes, nor how negative
 * samples map to a magnitude. We follow ITU-T G.191's reference software
 * (the STL g711 module): a negative sample x has magnitude ~x = -x - 1 (one's
 * complement), which makes the code for x the mirror of the code for ~x and
 * the quantiser symmetric about -0.5. In 16-bit units:
 *
 *   - mu-law: m = x >= 0 ? x >> 2 : ~x >> 2 (0..8191), v = min(m + 33, 8191);
 *     segment s = floor(log2(v)) - 5 (0..7), step q = (v >> (s + 1)) & 15;
 *     code = ~(s << 4 | q) & 0x7F, plus 0x80 when x >= 0. So 0..3 -> 0xFF,
 *     -1..-4 -> 0x7F, and magnitudes from 32636 up saturate to 0x80 / 0x00.
 *   - A-law: m = x >= 0 ? x >> 4 : ~x >> 4 (0..2047); below 16, segment 0
 *     and q = m; else segment s = floor(log2(m)) - 3 (1..7) and
 *     q = (m >> (s - 1)) & 15. Segments 0 and 1 have the same step, so below
 *     32 the code s << 4 | q is m itself. Add 0x80 when x >= 0, then XOR 0x55
 *     (invert the even bits). So 0..15 -> 0xD5, -1..-16 -> 0x55, and there is
 *     no clipping: 32767 -> 0xAA, -32768 -> 0x2A.
 *
 * Python's audioop module, which this replaces, gives the same A-law codes but
 * uses the two's complement magnitude -(x >> 2) for mu-law, so its lin2ulaw
 * differs from G.191 (and from us) on 508 of the 65536 negative inputs, each
 * by one quantisation step. Decoding is fully specified by G.711 and agrees
 * everywhere.
 *
 * Decoding: mu-law y = ((2q + 33) << s) - 33 in 14-bit units, times 4; A-law
 * y = 2q + 1 (s = 0) or (2q + 33) << (s - 1) (s >= 1) in 13-bit units, times 8.
 * 0xFF and 0x7F decode to 0, 0x80 to +32124, 0x00 to -32124; 0xD5 to +8,
 * 0x55 to -8, 0xAA to +32256, 0x2A to -32256.
 *
 * Buffers: `in` and `out` must not overlap; int16 pointers must be aligned.
 *
 * Instruction sets: each function runs the fastest variant the CPU supports,
 * picked at every call from the CPU's feature bits (a load and a test; no
 * state of ours). The scalar C build (SSE2 on x86-64) always exists; an AVX2
 * variant lives in g711_avx2.c. All variants give identical bytes. The `_isa`
 * forms take the variant explicitly, for tests and benchmarks.
 */
#ifndef VB_G711_H
#define VB_G711_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define VB_RESTRICT
#elif defined(_MSC_VER)
#define VB_RESTRICT __restrict
#else
#define VB_RESTRICT restrict
#endif

/* Status codes. */
#define VB_G711_OK 0
#define VB_G711_EINVAL (-1)  /* a NULL buffer with n > 0, or an unknown isa */
#define VB_G711_ENOTSUP (-2) /* the isa asked for is not in this build or CPU */

/* Instruction sets for the `_isa` forms. */
#define VB_G711_ISA_AUTO 0   /* the best available: what the plain forms use */
#define VB_G711_ISA_SCALAR 1 /* plain C99, vectorised by the compiler for the baseline */
#define VB_G711_ISA_AVX2 2   /* x86 AVX2, gcc and clang builds */

/* The variant VB_G711_ISA_AUTO resolves to on this machine. */
int vb_g711_isa(void);

/* n int16 samples -> n mu-law bytes. */
int vb_g711_ulaw_encode(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n);

/* n mu-law bytes -> n int16 samples. */
int vb_g711_ulaw_decode(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n);

/* n int16 samples -> n A-law bytes. */
int vb_g711_alaw_encode(const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out, size_t n);

/* n A-law bytes -> n int16 samples. */
int vb_g711_alaw_decode(const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n);

/* The same, with the instruction set given (VB_G711_ISA_*). */
int vb_g711_ulaw_encode_isa(int isa, const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                            size_t n);
int vb_g711_ulaw_decode_isa(int isa, const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                            size_t n);
int vb_g711_alaw_encode_isa(int isa, const int16_t *VB_RESTRICT in, uint8_t *VB_RESTRICT out,
                            size_t n);
int vb_g711_alaw_decode_isa(int isa, const uint8_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                            size_t n);

#ifdef __cplusplus
}
#endif

#endif /* VB_G711_H */
