/* pcm.h - linear PCM sample conversion, gain and level, for vbgraph.
 *
 * Plain C99, no allocation, no global state; every buffer belongs to the
 * caller. Each function returns VB_PCM_OK (0) or a negative VB_PCM_E* status.
 *
 * Departure from STYLE.md rule 6 (opaque handle with new/free/reset/process):
 * these kernels are stateless element-wise maps, so a handle would own
 * nothing. Stateful kernels (resampler, filters) get the handle shape.
 *
 * Numeric contract (the numpy reference in src/vbgraph/dsp/_pcm_ref.py does the
 * same arithmetic, and the tests assert bit-exact equality):
 *
 *   - int16 -> float32 is x / 32768, so -32768 maps to -1.0 exactly and 32767
 *     to 32767/32768. The map is exact and invertible.
 *   - Every float32 -> int16 step (f32_to_s16, gain_s16) computes the product in
 *     float32, maps NaN to 0, saturates to [-32768, 32767] and rounds to the
 *     nearest integer, TIES TO EVEN (the IEEE default, numpy.rint): 0.5 -> 0,
 *     1.5 -> 2, 2.5 -> 2, -1.5 -> -2. Saturating before rounding gives the
 *     same result as after, because both bounds are integers.
 *   - float32 gain does no clipping: values above 1.0 stay, NaN stays NaN.
 *
 * The rounding relies on the default floating-point environment
 * (round-to-nearest) and on the compiler not reassociating float arithmetic:
 * build without -ffast-math / -fassociative-math, and with -ffp-contract=off so
 * that x * gain + C is never fused into one FMA (that would change results on
 * targets with FMA and break equality with the reference).
 *
 * Buffers: `in` and `out` must not overlap (they are declared restrict so the
 * loops vectorise without runtime alias checks). Pointers must be aligned to
 * their element type. Samples are in host byte order.
 */
#ifndef VB_PCM_H
#define VB_PCM_H

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
#define VB_PCM_OK 0
#define VB_PCM_EINVAL (-1) /* a NULL buffer with n > 0 */

/* out[i] = in[i] / 32768.0f. */
int vb_pcm_s16_to_f32(const int16_t *VB_RESTRICT in, float *VB_RESTRICT out, size_t n);

/* out[i] = saturate(round_half_even(in[i] * 32768.0f)); NaN -> 0. */
int vb_pcm_f32_to_s16(const float *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n);

/* out[i] = saturate(round_half_even((float)in[i] * gain)); a NaN product -> 0. */
int vb_pcm_gain_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n,
                    float gain);

/* out[i] = in[i] * gain in float32, no clipping. */
int vb_pcm_gain_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out, size_t n, float gain);

/* *peak = max |in[i]| (0..32768; 32768 only for -32768), 0 for n == 0. */
int vb_pcm_peak_s16(const int16_t *in, size_t n, int32_t *peak);

/* *rms = sqrt(sum(in[i]^2) / n) in int16 units, 0.0 for n == 0.
 * The sum is exact (int64) for n < 2^33 samples; the division and the square
 * root are double precision, each correctly rounded. */
int vb_pcm_rms_s16(const int16_t *in, size_t n, double *rms);

#ifdef __cplusplus
}
#endif

#endif /* VB_PCM_H */
