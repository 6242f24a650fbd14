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
#define VB_PCM_ERANGE (-2) /* more streams than VB_PCM_MIX_MAX_STREAMS */

/* The most streams vb_pcm_mix_s16 adds at once: the int32 sum of 65535 int16
 * samples cannot overflow. vb_pcm_mix_f32 has the same limit for symmetry. */
#define VB_PCM_MIX_MAX_STREAMS 65535

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

/* *peak = max |in[i]| over the non-NaN samples (NaN counts as 0, as in
 * f32_to_s16; infinity counts), 0.0f for n == 0. */
int vb_pcm_peak_f32(const float *in, size_t n, float *peak);

/* *rms = sqrt(sum(in[i]^2) / n), NaN counting as 0, 0.0 for n == 0. Each square
 * is exact in double; the sum is double precision, accumulated in a fixed
 * order (four running sums over samples i % 4 == 0..3 of the first n - n % 4,
 * combined as (s0 + s1) + (s2 + s3), then the remaining samples one by one) so
 * that the numpy reference gives the same bits. */
int vb_pcm_rms_f32(const float *in, size_t n, double *rms);

/* Mixing: out[i] = in[0][i] + in[1][i] + ... + in[streams - 1][i], each input
 * holding n samples. int16 sums exactly in int32 and then saturates to
 * [-32768, 32767]; float32 adds left to right in float32 (in[0] + in[1], then
 * + in[2] ...) and does not clip. streams == 0 gives silence (zeros).
 * `out` may be one of the inputs (mixing in place) but must not partly overlap
 * any of them. VB_PCM_ERANGE above VB_PCM_MIX_MAX_STREAMS. */
int vb_pcm_mix_s16(const int16_t *const *in, size_t streams, int16_t *out, size_t n);
int vb_pcm_mix_f32(const float *const *in, size_t streams, float *out, size_t n);

/* Interleaved stereo (L R L R ...) of `frames` frames -> mono: the average
 * (L + R) / 2. int16 rounds half to even (exact in int32, then (1 + 2) / 2 ->
 * 2, (1 + 0) / 2 -> 0, (-1 + 0) / 2 -> 0); float32 computes (L + R) * 0.5f in
 * float32, so L + R may overflow to infinity for |L + R| > FLT_MAX. */
int vb_pcm_stereo_to_mono_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                              size_t frames);
int vb_pcm_stereo_to_mono_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out,
                              size_t frames);

/* Mono of `frames` samples -> interleaved stereo, each sample copied to both
 * channels bit for bit (a signalling NaN stays signalling). */
int vb_pcm_mono_to_stereo_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                              size_t frames);
int vb_pcm_mono_to_stereo_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out,
                              size_t frames);

#ifdef __cplusplus
}
#endif

#endif /* VB_PCM_H */
