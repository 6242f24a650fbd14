/* resample.h - streaming polyphase resampler (Kaiser-windowed sinc), for vbgraph.
 *
 * Plain C99 with the GStreamer library-API shape (STYLE.md rule 6): an opaque
 * handle made by vb_resampler_new() (the only function that allocates), buffers
 * owned by the caller, and out_frames()/latency() queries so the caller can size
 * its buffers and report its delay. No global state: handles are independent
 * and each may be used from any thread, one thread at a time.
 *
 * Theory of operation
 * -------------------
 * The rates reduce by their gcd to out/in = L/M. Output sample k stands for the
 * input instant t_k = k * M / L (in input frames), so the output stream is
 * aligned with the input: the same signal, sampled at the new rate, with no
 * leading delay. It is
 *
 *     y[k] = sum_j x[j] * g(t_k - j),    g(t) = c sinc(c t) kaiser(t / H, beta)
 *
 * with c = min(1, L/M) (the cutoff sits on the Nyquist frequency of the lower
 * rate) and g zero outside |t| < H input frames. Writing k*M = q*L + p, the
 * weights g(p/L + integer) depend only on the phase p, so they are precomputed
 * in new() as a bank of L phases of TAPS coefficients each, TAPS a multiple of 8.
 *
 * Output k needs input up to frame q + R, with R = ceil(H) the lookahead: that
 * is the algorithmic delay, R input frames (vb_resampler_latency), at most
 * R * 1e9 / in_rate ns behind the input. Before q + R has arrived the output
 * cannot exist, so after n input frames in total exactly
 *
 *     E(n) = ceil((n - R) * L / M)   (0 while n <= R)
 *
 * output frames have been produced: output follows input at once, in
 * proportion, with no batching (a 20 ms chunk in gives its 20 ms out, +-1).
 * The stream is assumed silent before its first frame. vb_resampler_flush()
 * pads the end with silence and completes the stream to
 *
 *     F(n) = floor(n * L / M + 1/2)  (n * L / M rounded, halves up)
 *
 * frames, the length soxr's one-shot resampling gives. Splitting the input
 * into chunks, of any sizes down to one frame, changes none of these counts
 * and none of the sample values: each output is computed from the same inputs
 * by the same code, whatever the chunking.
 *
 * Quality presets set the Kaiser design (passband to 0.9, stopband from 1.1
 * times the lower rate's Nyquist frequency, attenuation A): LOW 55 dB, MEDIUM
 * 75 dB, HIGH 93 dB. See docs/resampler.md for lengths, delays and measurements.
 *
 * Numerics: int16 samples are converted exactly to float32 (unscaled), every
 * output is a float32 dot product summed in a fixed order (8 lane sums, lane l
 * taking taps l, l+8, ...; then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))), and
 * int16 output is rounded half to even and saturated as in pcm.h. Every kernel
 * variant (scalar C, AVX2) follows that order without FMA, so all give the same
 * bits; build with -ffp-contract=off and without -ffast-math (setup.py does).
 *
 * Buffers are interleaved frames in host byte order; `in` and `out` must not
 * overlap and must be aligned to their sample type.
 */
#ifndef VB_RESAMPLE_H
#define VB_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define VB_RESAMPLE_OK 0
#define VB_RESAMPLE_EINVAL (-1)       /* NULL handle, or NULL buffer with a non-zero size */
#define VB_RESAMPLE_EUNSUPPORTED (-2) /* rates, channels, format, quality or kernel */
#define VB_RESAMPLE_ENOMEM (-3)       /* allocation failed (new only) */
#define VB_RESAMPLE_EDRAINING (-4)    /* process() while a flush is unfinished */

/* Sample formats. */
#define VB_RESAMPLE_S16 0 /* int16 */
#define VB_RESAMPLE_F32 1 /* float32, full scale 1.0 */

/* Quality presets. */
#define VB_RESAMPLE_LOW 0
#define VB_RESAMPLE_MEDIUM 1
#define VB_RESAMPLE_HIGH 2

/* Dot-product kernels; AUTO picks the fastest the CPU has. All give equal bits. */
#define VB_RESAMPLE_KERNEL_AUTO 0
#define VB_RESAMPLE_KERNEL_SCALAR 1
#define VB_RESAMPLE_KERNEL_AVX2 2

/* Limits checked by vb_resampler_check(). */
#define VB_RESAMPLE_MIN_RATE 1000
#define VB_RESAMPLE_MAX_RATE 384000
#define VB_RESAMPLE_MAX_CHANNELS 8
#define VB_RESAMPLE_MAX_PHASES 1024 /* L after reduction (44.1 kHz <-> 8 kHz needs 441) */
#define VB_RESAMPLE_MAX_RATIO 16    /* max(in, out) / min(in, out) */

typedef struct vb_resampler vb_resampler;

/* VB_RESAMPLE_OK if new() accepts these arguments, else VB_RESAMPLE_EUNSUPPORTED. */
int vb_resampler_check(int in_rate, int out_rate, int channels, int format, int quality);

/* A resampler with its coefficient bank, or NULL if the arguments fail
 * vb_resampler_check() or memory runs out. Free it with vb_resampler_free(). */
vb_resampler *vb_resampler_new(int in_rate, int out_rate, int channels, int format, int quality);

/* Free the handle; NULL is allowed. */
void vb_resampler_free(vb_resampler *h);

/* Forget all input (history and pending output): the next frame starts a new
 * stream, as after new(). Use it on interruption. NULL is allowed. */
void vb_resampler_reset(vb_resampler *h);

/* Resample `in_frames` interleaved frames from `in` into `out`, which has room
 * for `out_capacity` frames. Stores the frames consumed in *in_used and the
 * frames written in *out_written. Consumed input is kept as history, so the
 * caller may reuse `in`. With out_capacity >= vb_resampler_out_frames(h,
 * in_frames) all input is consumed; otherwise call again with the rest (input
 * may also be empty, to collect output still pending). Never allocates.
 * EDRAINING if a flush is under way (finish it or reset). */
int vb_resampler_process(vb_resampler *h, const void *in, size_t in_frames, void *out,
                         size_t out_capacity, size_t *in_used, size_t *out_written);

/* End of stream: write the remaining output (the input's tail, padded with
 * silence) to `out`, up to `out_capacity` frames, and store the count in
 * *out_written. Once vb_resampler_flush_frames() frames have been written in
 * total, the handle is reset and ready for a new stream; until then only
 * flush() and reset() may be called. */
int vb_resampler_flush(vb_resampler *h, void *out, size_t out_capacity, size_t *out_written);

/* Frames process() will write if given `in_frames` more input (exact). */
size_t vb_resampler_out_frames(const vb_resampler *h, size_t in_frames);

/* Frames flush() still has to write (exact). */
size_t vb_resampler_flush_frames(const vb_resampler *h);

/* Algorithmic delay in input frames: output k, which stands for input instant
 * k * M / L, is produced once input frame floor(k * M / L) + latency arrived. */
size_t vb_resampler_latency(const vb_resampler *h);

/* The same delay in nanoseconds, latency * 1e9 / in_rate rounded to nearest. */
uint64_t vb_resampler_latency_ns(const vb_resampler *h);

/* The reduced ratio out/in = *phases / *step (L / M), and the taps per phase. */
void vb_resampler_ratio(const vb_resampler *h, uint32_t *phases, uint32_t *step);
size_t vb_resampler_taps(const vb_resampler *h);

/* The coefficient bank: phases * taps floats, phase-major; tap i of phase p
 * weighs input frame q + latency - taps + 1 + i for outputs with phase p. */
const float *vb_resampler_coefficients(const vb_resampler *h);

/* The kernel in use (VB_RESAMPLE_KERNEL_SCALAR or _AVX2), and a way to choose
 * one (AUTO, SCALAR, or AVX2 if the CPU has it; else EUNSUPPORTED). */
int vb_resampler_kernel(const vb_resampler *h);
int vb_resampler_set_kernel(vb_resampler *h, int kernel);

/* ---- Internal: shared with the SIMD variant files, not API. ---- */
#ifdef VB_RESAMPLE_INTERNAL

/* Write n outputs of one channel to out[0..n): output j is the dot product of
 * x[o_j .. o_j + taps) with phase p_j of the bank, where o_0 = 0, p_0 = phase,
 * and each step adds `step_frac` to p and `step_int` to o, carrying p >= phases
 * into o. Summation order as stated at the top of this file. */
typedef void (*vb_resample_dot_fn)(const float *x, const float *bank, size_t taps, uint32_t phase,
                                   uint32_t phases, size_t step_int, uint32_t step_frac,
                                   size_t n, float *out);

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define VB_RESAMPLE_HAVE_AVX2_VARIANT 1
int vb_resample_cpu_has_avx2(void);
void vb_resample_dot_avx2(const float *x, const float *bank, size_t taps, uint32_t phase,
                          uint32_t phases, size_t step_int, uint32_t step_frac, size_t n,
                          float *out);
#else
#define VB_RESAMPLE_HAVE_AVX2_VARIANT 0
#endif

#endif /* VB_RESAMPLE_INTERNAL */

#ifdef __cplusplus
}
#endif

#endif /* VB_RESAMPLE_H */
