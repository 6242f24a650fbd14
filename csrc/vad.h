/* vad.h - frame-level voice activity detection for 8/16 kHz int16, for vbgraph.
 *
 * Plain C99 with the GStreamer library-API shape (STYLE.md rule 6): an opaque
 * handle made by vb_vad_new() (the only function that allocates), caller-owned
 * buffers, no global state. Handles are independent; use each from one thread
 * at a time. Departures from rule 6: there is no out_frames() query (one
 * decision per frame, always), and vb_vad_latency() is 0 (a frame's decision
 * uses that frame and the past only, and is ready when process() returns).
 *
 * Theory of operation
 * -------------------
 * Frames are 10, 20 or 30 ms. Everything runs at 8 kHz: 16 kHz input first
 * goes through a 31-tap half-band low-pass (Blackman-windowed sinc, cutoff
 * 4 kHz, DC gain 1) and is decimated by 2, the filter's history carried from
 * frame to frame. Each 10 ms of 8 kHz audio is one hop, analysed as follows:
 *
 *  1. Spectrum: a periodic Hann window over the last 128 samples (16 ms), a
 *     128-point real FFT (a 64-point complex radix-2 FFT plus the real-input
 *     split), bin powers p[k] = |X[k]|^2 + 1 (int16 units; the +1 keeps logs
 *     finite in digital silence). Bins are 62.5 Hz apart.
 *  2. Six bands, bins [2,4) [4,8) [8,16) [16,32) [32,48) [48,60), that is
 *     125 Hz to 3.75 kHz; band level e[b] = 10 log10(mean of its p[k]).
 *  3. Noise floor n[b] per band, in dB: set to e[b] on the first two hops
 *     (until the window is all input); then after each hop it falls 20 % of the way to a quieter e[b] (fast down) and
 *     rises 5 % of the way to a louder one, capped at 0.3 dB per hop while the
 *     hop is not speech or its spectrum is as flat as noise, 0.02 dB per hop
 *     (2 dB/s) while it is speech (slow up). Steady noise becomes the floor.
 *  4. Level: the weighted mean over bands of clamp(e[b] - n[b], 0, 30) dB,
 *     weights 0.5 1 1 1 0.75 0.5.
 *  5. Tonality: 10 log10(arithmetic / geometric mean) of p[k] / floor(k) over
 *     bins 4..59 (250 Hz - 3.75 kHz), the spectrum whitened by the noise
 *     floor: about 2.5 to 3 dB for noise of any colour, more for the peaky
 *     spectrum of speech. The log of the geometric mean is summed from
 *     products of 8 bins (7 logs instead of 56).
 *  6. Score: level + (tonality - 3 dB), smoothed by s = 0.8 s + 0.2 score.
 *  7. The hop is speech if s > THRESHOLD[a] and the hop's 125 - 3750 Hz level
 *     is within RELATIVE[a] dB of the speech level, a tracker that moves 30 %
 *     of the way up to each louder speech hop and decays 0.02 dB per hop: this
 *     keeps quiet background talkers out.
 *  8. Hangover: after MIN_RUN (3) speech hops in a row, the next HANGOVER[a]
 *     non-speech hops still count as speech.
 *
 * A frame is speech if any of its hops is; its probability is the mean over
 * its hops of 1 / (1 + exp(-(s - THRESHOLD[a]) / 2)), before the hangover.
 * Presets a = 0..3: THRESHOLD 1.8 2.4 2.9 3.5 dB, RELATIVE 30 28 26 24 dB,
 * HANGOVER 12 10 8 6 hops.
 *
 * Numerics: float64 throughout, plain IEEE arithmetic (no FMA contraction:
 * build with -ffp-contract=off, as setup.py does). The numpy reference,
 * src/vbgraph/dsp/_vad_ref.py, runs the same steps with numpy's FFT and sums,
 * so features agree to about 1e-12 relative and decisions are equal.
 */
#ifndef VB_VAD_H
#define VB_VAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (process() returns 0 or 1 on success). */
#define VB_VAD_OK 0
#define VB_VAD_EINVAL (-1)       /* NULL handle or buffer, or n != frame_samples */
#define VB_VAD_EUNSUPPORTED (-2) /* rate, frame length or aggressiveness */
#define VB_VAD_ENOMEM (-3)       /* allocation failed (new only) */

#define VB_VAD_MAX_AGGRESSIVENESS 3

typedef struct vb_vad vb_vad;

/* VB_VAD_OK if new() accepts these: rate 8000 or 16000, frame_samples 10, 20
 * or 30 ms at that rate, aggressiveness 0..3; else VB_VAD_EUNSUPPORTED. */
int vb_vad_check(int rate, size_t frame_samples, int aggressiveness);

/* A VAD, or NULL if the arguments fail vb_vad_check() or memory runs out. */
vb_vad *vb_vad_new(int rate, size_t frame_samples, int aggressiveness);

/* Free the handle; NULL is allowed. */
void vb_vad_free(vb_vad *h);

/* Forget the stream (filter history, noise floor, hangover). NULL is allowed. */
void vb_vad_reset(vb_vad *h);

/* Analyse one frame of exactly frame_samples mono int16 samples: 1 if it
 * holds speech, 0 if not, or VB_VAD_EINVAL. Never allocates. */
int vb_vad_process(vb_vad *h, const int16_t *samples, size_t n);

/* The last frame's speech probability (0..1, before the hangover); 0 before any. */
double vb_vad_probability(const vb_vad *h);

/* The last frame's RMS level in dBFS (full scale 32768), at least -120. */
double vb_vad_volume_db(const vb_vad *h);

/* Samples per frame, as given to new(). */
size_t vb_vad_frame_samples(const vb_vad *h);

/* Lookahead in input samples: always 0 (see the top of this file). */
size_t vb_vad_latency(const vb_vad *h);

#ifdef __cplusplus
}
#endif

#endif /* VB_VAD_H */
