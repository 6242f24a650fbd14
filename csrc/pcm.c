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
#include <string.h>

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

int vb_pcm_peak_f32(const float *in, size_t n, float *peak) {
    float best = 0.0f;
    if (peak == NULL || (n > 0 && in == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(in[i]);
        best = a > best ? a : best; /* false for NaN, so NaN never wins */
    }
    *peak = best;
    return VB_PCM_OK;
}

int vb_pcm_rms_f32(const float *in, size_t n, double *rms) {
    double part[4] = {0.0, 0.0, 0.0, 0.0};
    double sum;
    size_t i = 0;
    if (rms == NULL || (n > 0 && in == NULL)) {
        return VB_PCM_EINVAL;
    }
    if (n == 0) {
        *rms = 0.0;
        return VB_PCM_OK;
    }
    /* The order of the additions is part of the contract (see pcm.h). Four
     * independent sums let the loop run two SSE2 lanes at a time without the
     * reassociation that -ffast-math would allow. A float32 squared is exact in
     * double (24-bit significand, 48-bit product). */
    for (; n - i >= 4; i += 4) {
        for (size_t j = 0; j < 4; j++) {
            double x = (double)in[i + j];
            x = (x == x) ? x : 0.0;
            part[j] += x * x;
        }
    }
    sum = (part[0] + part[1]) + (part[2] + part[3]);
    for (; i < n; i++) {
        double x = (double)in[i];
        x = (x == x) ? x : 0.0;
        sum += x * x;
    }
    *rms = sqrt(sum / (double)n);
    return VB_PCM_OK;
}

/* Mixing runs over blocks of VB_PCM_MIX_BLOCK samples: all inputs are added
 * into a local accumulator before the block is written, which is what allows
 * `out` to be one of the inputs. The block lives on the stack (256 B or 512 B),
 * so nothing is allocated. */
#define VB_PCM_MIX_BLOCK 64

static inline void vb_mix_s16_block(const int16_t *const *in, size_t streams, int16_t *out,
                                    size_t at, size_t len) {
    int32_t acc[VB_PCM_MIX_BLOCK];
    for (size_t j = 0; j < len; j++) {
        acc[j] = 0;
    }
    for (size_t k = 0; k < streams; k++) {
        const int16_t *src = in[k] + at;
        for (size_t j = 0; j < len; j++) {
            acc[j] += src[j];
        }
    }
    for (size_t j = 0; j < len; j++) {
        int32_t y = acc[j];
        y = y > -32768 ? y : -32768;
        y = y < 32767 ? y : 32767;
        out[at + j] = (int16_t)y;
    }
}

static inline void vb_mix_f32_block(const float *const *in, size_t streams, float *out,
                                    size_t at, size_t len) {
    float acc[VB_PCM_MIX_BLOCK];
    /* Start from in[0], not from 0.0f: 0.0f + -0.0f would turn a lone -0.0 into +0.0. */
    for (size_t j = 0; j < len; j++) {
        acc[j] = in[0][at + j];
    }
    for (size_t k = 1; k < streams; k++) {
        const float *src = in[k] + at;
        for (size_t j = 0; j < len; j++) {
            acc[j] += src[j];
        }
    }
    for (size_t j = 0; j < len; j++) {
        out[at + j] = acc[j];
    }
}

/* Shared argument checks of the mixers; returns VB_PCM_OK to go on. */
static int vb_mix_check(const void *const *in, size_t streams, const void *out, size_t n) {
    if (streams > VB_PCM_MIX_MAX_STREAMS) {
        return VB_PCM_ERANGE;
    }
    if (n == 0) {
        return VB_PCM_OK;
    }
    if (out == NULL || (streams > 0 && in == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (size_t k = 0; k < streams; k++) {
        if (in[k] == NULL) {
            return VB_PCM_EINVAL;
        }
    }
    return VB_PCM_OK;
}

int vb_pcm_mix_s16(const int16_t *const *in, size_t streams, int16_t *out, size_t n) {
    size_t i = 0;
    int rc = vb_mix_check((const void *const *)in, streams, out, n);
    if (rc != VB_PCM_OK || n == 0) {
        return rc;
    }
    /* The constant length in the main loop lets the inlined block vectorise. */
    for (; n - i >= VB_PCM_MIX_BLOCK; i += VB_PCM_MIX_BLOCK) {
        vb_mix_s16_block(in, streams, out, i, VB_PCM_MIX_BLOCK);
    }
    if (i < n) {
        vb_mix_s16_block(in, streams, out, i, n - i);
    }
    return VB_PCM_OK;
}

int vb_pcm_mix_f32(const float *const *in, size_t streams, float *out, size_t n) {
    size_t i = 0;
    int rc = vb_mix_check((const void *const *)in, streams, out, n);
    if (rc != VB_PCM_OK || n == 0) {
        return rc;
    }
    if (streams == 0) {
        memset(out, 0, n * sizeof(float)); /* all-bits-zero is +0.0f in IEEE-754 */
        return VB_PCM_OK;
    }
    for (; n - i >= VB_PCM_MIX_BLOCK; i += VB_PCM_MIX_BLOCK) {
        vb_mix_f32_block(in, streams, out, i, VB_PCM_MIX_BLOCK);
    }
    if (i < n) {
        vb_mix_f32_block(in, streams, out, i, n - i);
    }
    return VB_PCM_OK;
}

/* round_half_even((l + r) / 2) for int16 l, r, in integers: with s = l + r and
 * h = floor(s / 2), an odd s is a tie h + 0.5, which goes up only when h is odd. */
static inline int16_t vb_average_s16(int32_t l, int32_t r) {
    int32_t s = l + r;
    int32_t h = s >> 1; /* arithmetic shift: floor, also for negative s */
    return (int16_t)(h + (s & h & 1));
}

int vb_pcm_stereo_to_mono_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                              size_t frames) {
    size_t i = 0;
    if (frames > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (; frames - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = vb_average_s16(in[2 * (i + j)], in[2 * (i + j) + 1]);
        }
    }
    for (; i < frames; i++) {
        out[i] = vb_average_s16(in[2 * i], in[2 * i + 1]);
    }
    return VB_PCM_OK;
}

int vb_pcm_stereo_to_mono_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out,
                              size_t frames) {
    size_t i = 0;
    if (frames > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (; frames - i >= VB_PCM_BLOCK; i += VB_PCM_BLOCK) {
        for (size_t j = 0; j < VB_PCM_BLOCK; j++) {
            out[i + j] = (in[2 * (i + j)] + in[2 * (i + j) + 1]) * 0.5f;
        }
    }
    for (; i < frames; i++) {
        out[i] = (in[2 * i] + in[2 * i + 1]) * 0.5f;
    }
    return VB_PCM_OK;
}

int vb_pcm_mono_to_stereo_s16(const int16_t *VB_RESTRICT in, int16_t *VB_RESTRICT out,
                              size_t frames) {
    if (frames > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    for (size_t i = 0; i < frames; i++) {
        out[2 * i] = in[i];
        out[2 * i + 1] = in[i];
    }
    return VB_PCM_OK;
}

int vb_pcm_mono_to_stereo_f32(const float *VB_RESTRICT in, float *VB_RESTRICT out,
                              size_t frames) {
    if (frames > 0 && (in == NULL || out == NULL)) {
        return VB_PCM_EINVAL;
    }
    /* Copied as bytes so that no float load can quiet a signalling NaN (x87
     * would); compilers turn each 4-byte memcpy into one move. */
    for (size_t i = 0; i < frames; i++) {
        memcpy(&out[2 * i], &in[i], sizeof(float));
        memcpy(&out[2 * i + 1], &in[i], sizeof(float));
    }
    return VB_PCM_OK;
}
