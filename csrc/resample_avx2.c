/* resample_avx2.c - AVX2 dot-product kernel for resample.c, chosen at run time.
 *
 * Same results as vb_dot_scalar, bit for bit: one 8-lane accumulator per
 * output (lane l sums taps l, l+8, ... in order), multiply then add (no FMA,
 * which would round once instead of twice), and a reduction whose additions
 * are exactly ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). What AVX2 adds is width
 * and several outputs in flight at once: their independent accumulators hide
 * the add latency, and one transposing reduction serves four or eight. When
 * the ratio has few phases (L), outputs of one phase are computed together,
 * so each coefficient is loaded once for eight outputs.
 *
 * Measured for the high preset on one 20 ms chunk of int16 mono (min of 15
 * runs, AMD EPYC, gcc 12): 48 -> 16 kHz (184 taps, 320 outputs) 2.0 us, 16 ->
 * 24 kHz 1.3 us, 8 -> 16 kHz 0.9 us, against 5.8, 3.5 and 2.3 us for the
 * scalar kernel (SSE2 baseline). An FMA variant measured no faster (loads, not
 * arithmetic, bound the loop) and would round differently. Tiling eight
 * outputs instead of four gained 5 %.
 *
 * Only the functions carry target("avx2"), so this file builds with the
 * project's baseline flags and runs only where vb_resample_cpu_has_avx2() says.
 */
#define VB_RESAMPLE_INTERNAL
#include "resample.h"

#if VB_RESAMPLE_HAVE_AVX2_VARIANT

#include <immintrin.h>

int vb_resample_cpu_has_avx2(void) {
    /* Also checks that the OS saves the YMM registers (XGETBV). */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

#define VB_AVX2 __attribute__((target("avx2")))

/* ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) of one accumulator. */
static inline VB_AVX2 float vb_reduce1(__m256 a) {
    __m256 t = _mm256_hadd_ps(a, a); /* a0+a1, a2+a3, ., ., a4+a5, a6+a7, ., . */
    t = _mm256_hadd_ps(t, t);        /* (a0+a1)+(a2+a3), ..., (a4+a5)+(a6+a7), ... */
    __m128 r = _mm_add_ss(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    return _mm_cvtss_f32(r);
}

/* Four outputs of one phase: x0..x3 windows, h shared. */
static inline VB_AVX2 void vb_tile4_shared(const float *x0, const float *x1, const float *x2,
                                           const float *x3, const float *h, size_t taps,
                                           float *r0, float *r1, float *r2, float *r3) {
    __m256 a0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps();
    __m256 a3 = _mm256_setzero_ps();
    for (size_t i = 0; i < taps; i += 8) {
        __m256 c = _mm256_loadu_ps(h + i);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(x0 + i), c));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(x1 + i), c));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(x2 + i), c));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(x3 + i), c));
    }
    /* Transpose-reduce: lane t of r is output t's tree (see the file comment). */
    __m256 s01 = _mm256_hadd_ps(a0, a1); /* per 128-bit half: a0 pairs, a1 pairs */
    __m256 s23 = _mm256_hadd_ps(a2, a3);
    __m256 s = _mm256_hadd_ps(s01, s23); /* low half: (l0+l1)+(l2+l3); high: (l4+l5)+(l6+l7) */
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    float tmp[4];
    _mm_storeu_ps(tmp, r);
    *r0 = tmp[0];
    *r1 = tmp[1];
    *r2 = tmp[2];
    *r3 = tmp[3];
}

/* Eight outputs of one phase, windows `step` frames apart, h shared: nine
 * loads per eight products, and eight add chains in flight. */
static inline VB_AVX2 void vb_tile8_shared(const float *x, size_t step, const float *h,
                                           size_t taps, float *out, size_t stride) {
    __m256 a0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps();
    __m256 a3 = _mm256_setzero_ps();
    __m256 a4 = _mm256_setzero_ps();
    __m256 a5 = _mm256_setzero_ps();
    __m256 a6 = _mm256_setzero_ps();
    __m256 a7 = _mm256_setzero_ps();
    const float *x0 = x, *x1 = x + step, *x2 = x + 2 * step, *x3 = x + 3 * step;
    const float *x4 = x + 4 * step, *x5 = x + 5 * step, *x6 = x + 6 * step, *x7 = x + 7 * step;
    for (size_t i = 0; i < taps; i += 8) {
        __m256 c = _mm256_loadu_ps(h + i);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(x0 + i), c));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(x1 + i), c));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(x2 + i), c));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(x3 + i), c));
        a4 = _mm256_add_ps(a4, _mm256_mul_ps(_mm256_loadu_ps(x4 + i), c));
        a5 = _mm256_add_ps(a5, _mm256_mul_ps(_mm256_loadu_ps(x5 + i), c));
        a6 = _mm256_add_ps(a6, _mm256_mul_ps(_mm256_loadu_ps(x6 + i), c));
        a7 = _mm256_add_ps(a7, _mm256_mul_ps(_mm256_loadu_ps(x7 + i), c));
    }
    __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    __m128 r0 = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    __m128 r1 = _mm_add_ps(_mm256_castps256_ps128(s1), _mm256_extractf128_ps(s1, 1));
    float t[8];
    _mm_storeu_ps(t, r0);
    _mm_storeu_ps(t + 4, r1);
    for (int k = 0; k < 8; k++) {
        out[(size_t)k * stride] = t[k];
    }
}

/* Four consecutive outputs, each with its own phase. */
static inline VB_AVX2 __m128 vb_tile4(const float *const *xs, const float *const *hs,
                                      size_t taps) {
    __m256 a0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps();
    __m256 a3 = _mm256_setzero_ps();
    for (size_t i = 0; i < taps; i += 8) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(xs[0] + i),
                                             _mm256_loadu_ps(hs[0] + i)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(xs[1] + i),
                                             _mm256_loadu_ps(hs[1] + i)));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(xs[2] + i),
                                             _mm256_loadu_ps(hs[2] + i)));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(xs[3] + i),
                                             _mm256_loadu_ps(hs[3] + i)));
    }
    __m256 s01 = _mm256_hadd_ps(a0, a1);
    __m256 s23 = _mm256_hadd_ps(a2, a3);
    __m256 s = _mm256_hadd_ps(s01, s23);
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

static inline VB_AVX2 float vb_single(const float *x, const float *h, size_t taps) {
    __m256 a = _mm256_setzero_ps();
    for (size_t i = 0; i < taps; i += 8) {
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(h + i)));
    }
    return vb_reduce1(a);
}

VB_AVX2 void vb_resample_dot_avx2(const float *x, const float *bank, size_t taps,
                                  uint32_t phase, uint32_t phases, size_t step_int,
                                  uint32_t step_frac, size_t n, float *out) {
    size_t o = 0;
    uint32_t p = phase;
    size_t j = 0;
    if ((size_t)phases * 4 <= n) {
        /* Phase-major: outputs r, r + L, r + 2L, ... share phase p_r and their
         * windows start M frames apart, so a tile of eight (then four) loads
         * each coefficient once. This is the case for every small L (8 -> 16,
         * 48 -> 16, 16 -> 24 kHz); the results are the same as in output
         * order, as each output's sum is computed alone. */
        size_t step = step_int * phases + step_frac; /* M */
        for (size_t r = 0; r < phases; r++) {
            const float *h = bank + (size_t)p * taps;
            size_t m = r;
            size_t base = o;
            for (; m + 7 * (size_t)phases < n; m += 8 * (size_t)phases) {
                vb_tile8_shared(x + base, step, h, taps, out + m, phases);
                base += 8 * step;
            }
            for (; m + 3 * (size_t)phases < n; m += 4 * (size_t)phases) {
                vb_tile4_shared(x + base, x + base + step, x + base + 2 * step,
                                x + base + 3 * step, h, taps, out + m, out + m + phases,
                                out + m + 2 * (size_t)phases, out + m + 3 * (size_t)phases);
                base += 4 * step;
            }
            for (; m < n; m += phases) {
                out[m] = vb_single(x + base, h, taps);
                base += step;
            }
            o += step_int;
            p += step_frac;
            if (p >= phases) {
                p -= phases;
                o++;
            }
        }
        return;
    }
    for (; j + 4 <= n; j += 4) {
        const float *xs[4];
        const float *hs[4];
        for (int t = 0; t < 4; t++) {
            xs[t] = x + o;
            hs[t] = bank + (size_t)p * taps;
            o += step_int;
            p += step_frac;
            if (p >= phases) {
                p -= phases;
                o++;
            }
        }
        _mm_storeu_ps(out + j, vb_tile4(xs, hs, taps));
    }
    for (; j < n; j++) {
        out[j] = vb_single(x + o, bank + (size_t)p * taps, taps);
        o += step_int;
        p += step_frac;
        if (p >= phases) {
            p -= phases;
            o++;
        }
    }
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int vb_resample_avx2_unused;

#endif
