/* pcm.c - scalar C99 kernels for pcm.h; the contract is stated there.
 *
 * Vectorisation: every loop body is branch-free, and the main loops run over
 * fixed blocks of VB_PCM_BLOCK samples with a scalar tail. A constant trip
 * count lets gcc vectorise even at -O2 (gcc 12's "very cheap" cost model
 * refuses loops that would need a runtime epilogue); at -O3 the plain loop
 * would vectorise too. Checked with -fopt-info-vec on gcc 12, x86-64 baseline
 * (SSE2). The comparisons below only become vector selects when the compiler
 * may assume that float compares do not trap, so build with
 * -fno-trapping-math (setup.py does). No SIMD variant files yet: the baseline
 * auto-vectorised loops are memory-bound on long buffers (see
 * benchmarks/bench_pcm.py), so an AVX2 variant behind runtime dispatch is not
 * worth its code until a profile says otherwise.
 */
#include "pcm.h"

#include <math.h>

#define VB_PCM_BLOCK 16

/* 1.5 * 2^23. For |y| <= 2^22, (y + MAGIC) - MAGIC rounds y to an integer in
 * the current rounding mode (ties to even by default), because the sum has no
 * bits below 2^0. Unlike lrintf/rintf it vectorises on every target without
 * SSE4.1, and the result converts to int exactly. */
static const float VB_ROUND_MAGIC = 12582912.0f;

/* NaN -> 0, saturate to the int16 range, round half to even. Branch-free:
 * each ternary becomes a compare plus a select (or and-mask). */
static inline int16_t vb_saturate_round(float y) {
    y = (y == y) ? y : 0.0f;             /* NaN -> 0 */
    y = (y > -32768.0f) ? y : -32768.0f; /* also maps -inf */
    y = (y < 32767.0f) ? y : 32767.0f;   /* also maps +inf */
    y = (y + VB_ROUND_MAGIC) - VB_ROUND_MAGIC;
    return (int16_t)(int32_t)y;
}

int vb_pcm_s16_to_f32(const int16_t *VB_RESTRICT in, float *VB_RESTRICT out, size_t n) {
    size_t i = 0;
    if (n > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    /* Division by a power of two is exact, so gcc emits a multiply by 2^-15. */
    for (; n - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = (float)in[i + j] / 32768.0f;
        }
    }
    for (; i < n; i++) {
        out[i] = (float)in[i] / 32768.0f;
    }
    return VB_PCM_OK;
}

int vb_pcm_f32_to_s16(const float *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n) {
    size_t i = 0;
    if (n > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (; n - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = vb_saturate_round(in[i + j] * 32768.0f);
        }
    }
    for (; i < n; i++) {
        out[i] = vb_saturate_round(in[i] * 32768.0f);
    }
    return VB_PCM_OK;
}

int vb_pcm_gain_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out, size_t n,
                    float gain) {
    size_t i = 0;
    if (n > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (; n - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = vb_saturate_round((float)in[i + j] * gain);
        }
    }
    for (; i < n; i++) {
        out[i] = vb_saturate_round((float)in[i] * gain);
    }
    return VB_PCM_OK;
}

int vb_pcm_gain_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out, size_t n, float gain) {
    size_t i = 0;
    if (n > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (; n - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = in[i + j] * gain;
        }
    }
    for (; i < n; i++) {
        out[i] = in[i] * gain;
    }
    return VB_PCM_OK;
}

int vb_pcm_peak_s16(const int16_t *in, size_t n, int32_t *peak) {
    int32_t best = 0;
    if (peak == NULL || (n > 0 && in == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t x = in[i];
        int32_t a = x < 0 ? -x : x; /* int32, so |-32768| does not overflow */
        best = a > best ? a : best;
    }
    *peak = best;
    return VB_PCM_OK;
}

int vb_pcm_rms_s16(const int16_t *in, size_t n, double *rms) {
    int64_t sum = 0;
    if (rms == NULL || (n > 0 && in == NULL)) {
        return VB_PCM_EINVAL;
    }
    if (n == 0) {
        *rms = 0.0;
        return VB_PCM_OK;
    }
    /* Each square is at most 2^30, so it fits int32; the sum needs int64. */
    for (size_t i = 0; i < n; i++) {
        int32_t x = in[i];
        sum += (int64_t)(x * x);
    }
    *rms = sqrt((double)sum / (double)n);
    return VB_PCM_OK;
}
