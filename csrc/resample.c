/* resample.c - the streaming resampler of resample.h; the contract is stated there.
 *
 * State. Input is converted to float32 and kept per channel (planar) in a work
 * buffer of `cap` frames: [0, fill) holds input frames, oldest first, and the
 * next output's window starts at index `s` with phase `p`. Its TAPS frames end
 * `latency` frames after input frame q (the output's instant rounded down).
 * After reset the buffer holds TAPS - R - 1 zero frames, the silence before the
 * stream, so output 0 (phase 0, q = 0) starts at index 0.
 *
 * process() alternates two steps until input or output room runs out:
 * produce every output whose window is complete (s + TAPS <= fill), in blocks
 * of VB_OUT_BLOCK per channel through the dot-product kernel, then move the
 * unfinished window to the front and append the next input frames. The move
 * copies fewer than TAPS frames per refill of up to VB_IN_BLOCK frames.
 *
 * The counters n_in and n_out (frames since reset) give the exact answers of
 * out_frames() and flush_frames() from the formulas E(n) and F(n).
 *
 * Coefficients are computed in double from explicit formulas (a fixed-length
 * power series for I0, libm sin, IEEE arithmetic in a fixed order) so that the
 * numpy reference, src/vbgraph/dsp/_resample_ref.py, computes the same bits; it
 * mirrors every expression below, so change both together.
 */
#define VB_RESAMPLE_INTERNAL
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VB_PI 3.14159265358979323846
#define VB_TAP_MULTIPLE 8 /* taps per phase round up to this (one AVX2 vector) */
#define VB_ALIGN 64       /* bytes; bank and each channel's work buffer */
#define VB_IN_BLOCK 2048  /* input frames appended per refill */
#define VB_OUT_BLOCK 256  /* outputs per kernel call, per channel */
#define VB_I0_TERMS 64    /* power series terms of I0; enough for beta <= 20 */

/* Stopband attenuation (dB) of each preset: LOW, MEDIUM, HIGH. The transition
 * band is the same for all (0.9 to 1.1 times the lower Nyquist frequency), so
 * the filter length and the delay grow with the attenuation. */
static const double VB_ATTENUATION[3] = {55.0, 75.0, 93.0};

struct vb_resampler {
    int in_rate, out_rate, channels, format, quality, kernel;
    uint32_t phases;        /* L */
    uint32_t step;          /* M */
    size_t step_int;        /* M / L */
    uint32_t step_frac;     /* M % L */
    size_t taps;            /* per phase, a multiple of VB_TAP_MULTIPLE */
    size_t lookahead;       /* R = ceil(H), the delay in input frames */
    size_t cap;             /* frames per channel in the work buffer (>= taps + VB_IN_BLOCK) */
    float *bank;            /* phases * taps */
    float *work;            /* channels * cap, channel c at work + c * cap */
    float *tmp;             /* channels * VB_OUT_BLOCK kernel results */
    size_t fill;            /* frames in the work buffer */
    size_t s;               /* window start of the next output */
    uint32_t p;             /* phase of the next output */
    uint64_t n_in;          /* input frames consumed since reset */
    uint64_t n_out;         /* output frames written since reset */
    int draining;           /* a flush has started and not finished */
    vb_resample_dot_fn dot; /* the kernel in use */
    void *block;            /* the one allocation, for free() */
};

/* ---- Coefficient design ------------------------------------------------ */

/* Modified Bessel function I0 by its power series sum_k ((x/2)^k / k!)^2.
 * A fixed number of terms, no early exit, so the reference can vectorise the
 * same sum; beyond the peak (k > x/2) the terms vanish below 2^-53 of the sum. */
static double vb_bessel_i0(double x) {
    double half = x / 2.0;
    double q = half * half;
    double term = 1.0;
    double sum = 1.0;
    for (int k = 1; k <= VB_I0_TERMS; k++) {
        term = term * q / (double)(k * k);
        sum = sum + term;
    }
    return sum;
}

static size_t vb_round_up(size_t n, size_t multiple) {
    return (n + multiple - 1) / multiple * multiple;
}

static uint32_t vb_gcd(uint32_t a, uint32_t b) {
    while (b != 0) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Window half-width H in input frames. Kaiser's estimate: a window spanning
 * N - 1 = (A - 7.95) / (2.285 * dw) samples reaches attenuation A over a
 * transition of dw rad/sample; here dw = 2 pi * 0.1 * c (0.2 of the lower
 * Nyquist frequency, in input samples) and N - 1 = 2H. */
static double vb_half_width(double attenuation, double c) {
    return (attenuation - 7.95) / (2.0 * 2.285 * 2.0 * VB_PI * 0.1 * c);
}

/* Kaiser's beta for attenuation A > 50 dB (every preset is). */
static double vb_beta(double attenuation) {
    return 0.1102 * (attenuation - 8.7);
}

/* The weight of an input frame tau input frames before the output instant:
 * c sinc(c tau) times the Kaiser window of half-width H, zero for |tau| >= H. */
static double vb_weight(double tau, double c, double half_width, double beta, double i0_beta) {
    double r, w, x, sinc;
    if (fabs(tau) >= half_width) {
        return 0.0;
    }
    r = tau / half_width;
    w = vb_bessel_i0(beta * sqrt(1.0 - r * r)) / i0_beta;
    x = c * tau;
    sinc = x == 0.0 ? 1.0 : sin(VB_PI * x) / (VB_PI * x);
    return c * sinc * w;
}

/* tau of tap i of phase p: p/L - R + (taps - 1 - i); the integer part is exact. */
static double vb_tau(uint32_t p, uint32_t phases, size_t i, size_t taps, size_t lookahead) {
    return (double)p / (double)phases +
           (double)((int64_t)taps - 1 - (int64_t)i - (int64_t)lookahead);
}

/* Fill bank[phases * taps]; mirrored by _resample_ref.design(). */
static void vb_design(float *bank, uint32_t phases, uint32_t step, size_t taps,
                      size_t lookahead, double half_width, double beta) {
    double c = phases < step ? (double)phases / (double)step : 1.0;
    double i0_beta = vb_bessel_i0(beta);
    double sum = 0.0;
    double scale;
    if (phases == step) { /* equal rates: a unit impulse at tau = 0 */
        memset(bank, 0, (size_t)phases * taps * sizeof(float));
        bank[taps - 1 - lookahead] = 1.0f;
        return;
    }
    /* Normalise so that the mean DC gain of a phase is exactly 1: the sum of
     * all weights, in bank order, then each weight scaled and rounded once.
     * The weights are computed twice rather than kept as doubles; the
     * arithmetic is the same, so are the values. */
    for (uint32_t p = 0; p < phases; p++) {
        for (size_t i = 0; i < taps; i++) {
            sum = sum + vb_weight(vb_tau(p, phases, i, taps, lookahead), c, half_width, beta,
                                  i0_beta);
        }
    }
    scale = (double)phases / sum;
    for (uint32_t p = 0; p < phases; p++) {
        for (size_t i = 0; i < taps; i++) {
            double weight =
                vb_weight(vb_tau(p, phases, i, taps, lookahead), c, half_width, beta, i0_beta);
            bank[(size_t)p * taps + i] = (float)(weight * scale);
        }
    }
}

/* ---- Kernels ----------------------------------------------------------- */

/* The reference summation order (resample.h): 8 lane sums, then a fixed tree.
 * gcc turns the 8 lanes into SSE2 vectors; no reassociation is involved. */
static void vb_dot_scalar(const float *x, const float *bank, size_t taps, uint32_t phase,
                          uint32_t phases, size_t step_int, uint32_t step_frac, size_t n,
                          float *out) {
    size_t o = 0;
    uint32_t p = phase;
    for (size_t j = 0; j < n; j++) {
        const float *xx = x + o;
        const float *hh = bank + (size_t)p * taps;
        float a[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (size_t i = 0; i < taps; i += 8) {
            for (size_t l = 0; l < 8; l++) {
                a[l] = a[l] + xx[i + l] * hh[i + l];
            }
        }
        out[j] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        o += step_int;
        p += step_frac;
        if (p >= phases) {
            p -= phases;
            o++;
        }
    }
}

static vb_resample_dot_fn vb_kernel_fn(int kernel) {
#if VB_RESAMPLE_HAVE_AVX2_VARIANT
    if (kernel == VB_RESAMPLE_KERNEL_AVX2) {
        return vb_resample_dot_avx2;
    }
#endif
    (void)kernel;
    return vb_dot_scalar;
}

static int vb_best_kernel(void) {
#if VB_RESAMPLE_HAVE_AVX2_VARIANT
    if (vb_resample_cpu_has_avx2()) {
        return VB_RESAMPLE_KERNEL_AVX2;
    }
#endif
    return VB_RESAMPLE_KERNEL_SCALAR;
}

/* 1.5 * 2^23: (y + MAGIC) - MAGIC rounds |y| <= 2^22 half to even (pcm.c). */
static const float VB_ROUND_MAGIC = 12582912.0f;

/* Saturate to int16 and round half to even. No NaN check: int16 input and
 * finite coefficients cannot make one. */
static inline int16_t vb_to_s16(float y) {
    y = (y > -32768.0f) ? y : -32768.0f;
    y = (y < 32767.0f) ? y : 32767.0f;
    y = (y + VB_ROUND_MAGIC) - VB_ROUND_MAGIC;
    return (int16_t)(int32_t)y;
}

/* ---- Buffer management ------------------------------------------------- */

/* Append n frames, starting at frame `first` of `in`, to the work buffer. */
static void vb_load(vb_resampler *h, const void *in, size_t first, size_t n) {
    size_t C = (size_t)h->channels;
    for (size_t c = 0; c < C; c++) {
        float *dst = h->work + c * h->cap + h->fill;
        if (h->format == VB_RESAMPLE_S16 && C == 1) { /* a separate loop vectorises */
            const int16_t *src = (const int16_t *)in + first;
            for (size_t i = 0; i < n; i++) {
                dst[i] = (float)src[i];
            }
        } else if (h->format == VB_RESAMPLE_S16) {
            const int16_t *src = (const int16_t *)in + first * C + c;
            for (size_t i = 0; i < n; i++) {
                dst[i] = (float)src[i * C];
            }
        } else if (C == 1) {
            memcpy(dst, (const float *)in + first, n * sizeof(float));
        } else {
            const float *src = (const float *)in + first * C + c;
            for (size_t i = 0; i < n; i++) {
                dst[i] = src[i * C];
            }
        }
    }
    h->fill += n;
}

/* Append n frames of silence (flush). */
static void vb_load_zeros(vb_resampler *h, size_t n) {
    for (int c = 0; c < h->channels; c++) {
        memset(h->work + (size_t)c * h->cap + h->fill, 0, n * sizeof(float));
    }
    h->fill += n;
}

/* Drop the frames before the next output's window. */
static void vb_compact(vb_resampler *h) {
    size_t keep;
    if (h->s == 0) {
        return;
    }
    keep = h->fill - h->s; /* s < fill always: taps > M / L + 1 (checked in new) */
    for (int c = 0; c < h->channels; c++) {
        float *w = h->work + (size_t)c * h->cap;
        memmove(w, w + h->s, keep * sizeof(float));
    }
    h->fill = keep;
    h->s = 0;
}

/* Write the n results in tmp to `out` from frame `first`, interleaving. */
static void vb_store(const vb_resampler *h, void *out, size_t first, size_t n) {
    size_t C = (size_t)h->channels;
    for (size_t c = 0; c < C; c++) {
        const float *src = h->tmp + c * VB_OUT_BLOCK;
        if (h->format == VB_RESAMPLE_S16 && C == 1) { /* a separate loop vectorises */
            int16_t *dst = (int16_t *)out + first;
            for (size_t j = 0; j < n; j++) {
                dst[j] = vb_to_s16(src[j]);
            }
        } else if (h->format == VB_RESAMPLE_S16) {
            int16_t *dst = (int16_t *)out + first * C + c;
            for (size_t j = 0; j < n; j++) {
                dst[j * C] = vb_to_s16(src[j]);
            }
        } else if (C == 1) {
            memcpy((float *)out + first, src, n * sizeof(float));
        } else {
            float *dst = (float *)out + first * C + c;
            for (size_t j = 0; j < n; j++) {
                dst[j * C] = src[j];
            }
        }
    }
}

/* Compute up to max_out outputs whose windows are complete; returns the count. */
static size_t vb_produce(vb_resampler *h, void *out, size_t first, size_t max_out) {
    size_t done = 0;
    while (done < max_out && h->s + h->taps <= h->fill) {
        /* Outputs j = 0, 1, ... start at s + floor((p + j M) / L); the window
         * is complete while that is <= fill - taps = s + D, i.e. for
         * j < ((D + 1) L - p) / M. */
        uint64_t D = (uint64_t)(h->fill - h->taps - h->s);
        uint64_t ready = ((D + 1) * h->phases - h->p + h->step - 1) / h->step;
        size_t n = max_out - done;
        uint64_t total;
        if (ready < n) {
            n = (size_t)ready;
        }
        if (n > VB_OUT_BLOCK) {
            n = VB_OUT_BLOCK;
        }
        for (int c = 0; c < h->channels; c++) {
            h->dot(h->work + (size_t)c * h->cap + h->s, h->bank, h->taps, h->p, h->phases,
                   h->step_int, h->step_frac, n, h->tmp + (size_t)c * VB_OUT_BLOCK);
        }
        vb_store(h, out, first + done, n);
        total = (uint64_t)h->p + (uint64_t)n * h->step;
        h->s += (size_t)(total / h->phases);
        h->p = (uint32_t)(total % h->phases);
        done += n;
    }
    return done;
}

/* ---- API --------------------------------------------------------------- */

int vb_resampler_check(int in_rate, int out_rate, int channels, int format, int quality) {
    uint32_t g, L, M;
    if (in_rate < VB_RESAMPLE_MIN_RATE || in_rate > VB_RESAMPLE_MAX_RATE ||
        out_rate < VB_RESAMPLE_MIN_RATE || out_rate > VB_RESAMPLE_MAX_RATE) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    if (channels < 1 || channels > VB_RESAMPLE_MAX_CHANNELS) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    if (format != VB_RESAMPLE_S16 && format != VB_RESAMPLE_F32) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    if (quality < VB_RESAMPLE_LOW || quality > VB_RESAMPLE_HIGH) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    g = vb_gcd((uint32_t)in_rate, (uint32_t)out_rate);
    L = (uint32_t)out_rate / g;
    M = (uint32_t)in_rate / g;
    if (L > VB_RESAMPLE_MAX_PHASES || L > (uint32_t)VB_RESAMPLE_MAX_RATIO * M ||
        M > (uint32_t)VB_RESAMPLE_MAX_RATIO * L) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    return VB_RESAMPLE_OK;
}

static size_t vb_align_size(size_t n) {
    return vb_round_up(n, VB_ALIGN);
}

vb_resampler *vb_resampler_new(int in_rate, int out_rate, int channels, int format,
                               int quality) {
    uint32_t g, L, M;
    double c, attenuation, half_width, beta;
    size_t lookahead, taps, cap, bank_bytes, work_bytes, tmp_bytes, head_bytes;
    unsigned char *block, *base;
    vb_resampler *h;

    if (vb_resampler_check(in_rate, out_rate, channels, format, quality) != VB_RESAMPLE_OK) {
        return NULL;
    }
    g = vb_gcd((uint32_t)in_rate, (uint32_t)out_rate);
    L = (uint32_t)out_rate / g;
    M = (uint32_t)in_rate / g;
    c = L < M ? (double)L / (double)M : 1.0;
    attenuation = VB_ATTENUATION[quality];
    if (L == M) {
        half_width = 0.0;
        lookahead = 0;
        taps = VB_TAP_MULTIPLE;
    } else {
        half_width = vb_half_width(attenuation, c);
        lookahead = (size_t)ceil(half_width);
        /* Taps cover tau in (-H, H) for every phase: tau runs from p/L - R
         * (newest frame) up in steps of 1, so 2R taps are enough. */
        taps = vb_round_up(2 * lookahead, VB_TAP_MULTIPLE);
    }
    beta = vb_beta(attenuation);
    /* vb_compact() relies on a window being longer than one output's step. */
    if (taps <= (size_t)(M / L) + 1) {
        return NULL;
    }
    cap = taps + VB_IN_BLOCK;

    head_bytes = vb_align_size(sizeof(vb_resampler));
    bank_bytes = vb_align_size((size_t)L * taps * sizeof(float));
    work_bytes = vb_align_size(cap * sizeof(float)); /* per channel */
    tmp_bytes = vb_align_size(VB_OUT_BLOCK * sizeof(float)); /* per channel */
    block = (unsigned char *)malloc(VB_ALIGN + head_bytes + bank_bytes +
                                    (size_t)channels * (work_bytes + tmp_bytes));
    if (block == NULL) {
        return NULL;
    }
    base = block + (VB_ALIGN - (size_t)((uintptr_t)block % VB_ALIGN));
    h = (vb_resampler *)(void *)base;
    memset(h, 0, sizeof(*h));
    h->block = block;
    h->in_rate = in_rate;
    h->out_rate = out_rate;
    h->channels = channels;
    h->format = format;
    h->quality = quality;
    h->phases = L;
    h->step = M;
    h->step_int = M / L;
    h->step_frac = M % L;
    h->taps = taps;
    h->lookahead = lookahead;
    h->bank = (float *)(void *)(base + head_bytes);
    /* Channel buffers are work_bytes apart; cap floats fit in each. */
    h->work = (float *)(void *)(base + head_bytes + bank_bytes);
    h->cap = work_bytes / sizeof(float);
    h->tmp = (float *)(void *)(base + head_bytes + bank_bytes + (size_t)channels * work_bytes);
    /* tmp is indexed with a stride of VB_OUT_BLOCK floats: tmp_bytes is that. */
    h->kernel = vb_best_kernel();
    h->dot = vb_kernel_fn(h->kernel);
    vb_design(h->bank, L, M, taps, lookahead, half_width, beta);
    vb_resampler_reset(h);
    return h;
}

void vb_resampler_free(vb_resampler *h) {
    if (h != NULL) {
        free(h->block);
    }
}

void vb_resampler_reset(vb_resampler *h) {
    if (h == NULL) {
        return;
    }
    h->fill = 0;
    vb_load_zeros(h, h->taps - h->lookahead - 1);
    h->s = 0;
    h->p = 0;
    h->n_in = 0;
    h->n_out = 0;
    h->draining = 0;
}

int vb_resampler_process(vb_resampler *h, const void *in, size_t in_frames, void *out,
                         size_t out_capacity, size_t *in_used, size_t *out_written) {
    size_t used = 0, written = 0;
    if (h == NULL || in_used == NULL || out_written == NULL ||
        (in == NULL && in_frames > 0) || (out == NULL && out_capacity > 0)) {
        return VB_RESAMPLE_EINVAL;
    }
    *in_used = 0;
    *out_written = 0;
    if (h->draining) {
        return VB_RESAMPLE_EDRAINING;
    }
    for (;;) {
        size_t room, n;
        written += vb_produce(h, out, written, out_capacity - written);
        if (used == in_frames) {
            break;
        }
        vb_compact(h);
        room = h->cap - h->fill;
        if (written == out_capacity) {
            /* Output full: take only frames that complete no window, so a
             * buffer sized by out_frames() always takes the whole input. */
            size_t need = h->s + h->taps - 1; /* last index before a window completes */
            size_t limit = need > h->fill ? need - h->fill : 0;
            room = room < limit ? room : limit;
            if (room == 0) {
                break;
            }
        }
        n = in_frames - used;
        n = n < room ? n : room;
        vb_load(h, in, used, n);
        used += n;
        h->n_in += n;
    }
    h->n_out += written;
    *in_used = used;
    *out_written = written;
    return VB_RESAMPLE_OK;
}

/* F(n) = floor(n L / M + 1/2) = floor((2 n L + M) / 2M). */
static uint64_t vb_total_frames(const vb_resampler *h, uint64_t n) {
    return (2 * n * h->phases + h->step) / (2 * (uint64_t)h->step);
}

int vb_resampler_flush(vb_resampler *h, void *out, size_t out_capacity, size_t *out_written) {
    size_t written = 0, goal;
    uint64_t remaining;
    if (h == NULL || out_written == NULL || (out == NULL && out_capacity > 0)) {
        return VB_RESAMPLE_EINVAL;
    }
    remaining = vb_total_frames(h, h->n_in) - h->n_out;
    goal = remaining < out_capacity ? (size_t)remaining : out_capacity;
    h->draining = 1;
    for (;;) {
        written += vb_produce(h, out, written, goal - written);
        if (written == goal) {
            break;
        }
        vb_compact(h);
        vb_load_zeros(h, h->cap - h->fill); /* silence after the end */
    }
    h->n_out += written;
    *out_written = written;
    if (written == remaining) {
        vb_resampler_reset(h);
    }
    return VB_RESAMPLE_OK;
}

size_t vb_resampler_out_frames(const vb_resampler *h, size_t in_frames) {
    uint64_t n, ready;
    if (h == NULL || h->draining) {
        return 0;
    }
    /* Far beyond any buffer, and keeps 2 n L below 2^64. */
    if ((uint64_t)in_frames > ((uint64_t)1 << 40)) {
        in_frames = (size_t)((uint64_t)1 << 40);
    }
    n = h->n_in + in_frames;
    ready = n > h->lookahead ? ((n - h->lookahead) * h->phases + h->step - 1) / h->step : 0;
    return (size_t)(ready - h->n_out);
}

size_t vb_resampler_flush_frames(const vb_resampler *h) {
    if (h == NULL) {
        return 0;
    }
    return (size_t)(vb_total_frames(h, h->n_in) - h->n_out);
}

size_t vb_resampler_latency(const vb_resampler *h) {
    return h == NULL ? 0 : h->lookahead;
}

uint64_t vb_resampler_latency_ns(const vb_resampler *h) {
    if (h == NULL) {
        return 0;
    }
    return ((uint64_t)h->lookahead * 1000000000u + (uint64_t)h->in_rate / 2) /
           (uint64_t)h->in_rate;
}

void vb_resampler_ratio(const vb_resampler *h, uint32_t *phases, uint32_t *step) {
    if (h != NULL && phases != NULL && step != NULL) {
        *phases = h->phases;
        *step = h->step;
    }
}

size_t vb_resampler_taps(const vb_resampler *h) {
    return h == NULL ? 0 : h->taps;
}

const float *vb_resampler_coefficients(const vb_resampler *h) {
    return h == NULL ? NULL : h->bank;
}

int vb_resampler_kernel(const vb_resampler *h) {
    return h == NULL ? VB_RESAMPLE_KERNEL_SCALAR : h->kernel;
}

int vb_resampler_set_kernel(vb_resampler *h, int kernel) {
    if (h == NULL) {
        return VB_RESAMPLE_EINVAL;
    }
    if (kernel == VB_RESAMPLE_KERNEL_AUTO) {
        kernel = vb_best_kernel();
    } else if (kernel == VB_RESAMPLE_KERNEL_AVX2) {
#if VB_RESAMPLE_HAVE_AVX2_VARIANT
        if (!vb_resample_cpu_has_avx2()) {
            return VB_RESAMPLE_EUNSUPPORTED;
        }
#else
        return VB_RESAMPLE_EUNSUPPORTED;
#endif
    } else if (kernel != VB_RESAMPLE_KERNEL_SCALAR) {
        return VB_RESAMPLE_EUNSUPPORTED;
    }
    h->kernel = kernel;
    h->dot = vb_kernel_fn(kernel);
    return VB_RESAMPLE_OK;
}
