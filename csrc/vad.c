/* vad.c - the frame-level VAD of vad.h; the algorithm is stated there.
 *
 * Every constant and expression has its twin in src/vbgraph/dsp/_vad_ref.py:
 * change both together. The handle is one malloc'd struct holding all state
 * and work buffers, so process() never allocates.
 */
#include "vad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VB_PI 3.14159265358979323846
#define HOP 80          /* samples per hop at 8 kHz (10 ms) */
#define WIN 128         /* analysis window and FFT length */
#define HALF 64         /* complex FFT length */
#define DEC_HALF 15     /* half-band filter: 2 * DEC_HALF + 1 taps */
#define DEC_TAPS (2 * DEC_HALF + 1)
#define MAX_FRAME 480   /* 30 ms at 16 kHz */
#define NB 6
#define FLAT_LO 4
#define FLAT_HI 60
#define BIN_FLOOR 1.0
#define SNR_MAX 30.0
#define TONAL_OFFSET 3.0
#define TONAL_WEIGHT 1.0
#define DOWN 0.2
#define UP_RATE 0.05
#define UP_QUIET 0.3
#define UP_SPEECH 0.02
#define FLAT_MARGIN 1.0
#define SMOOTH 0.8
#define LEVEL_UP 0.3
#define LEVEL_DECAY 0.02
#define LEVEL_FLOOR 0.0
#define MIN_RUN 3
#define PROB_SCALE 2.0
#define VOLUME_FLOOR (-120.0)

static const int BAND_LO[NB] = {2, 4, 8, 16, 32, 48};
static const int BAND_HI[NB] = {4, 8, 16, 32, 48, 60};
static const double BAND_WEIGHT[NB] = {0.5, 1.0, 1.0, 1.0, 0.75, 0.5};
static const double THRESHOLD[4] = {1.8, 2.4, 2.9, 3.5};
static const int HANGOVER[4] = {12, 10, 8, 6};
static const double RELATIVE[4] = {30.0, 28.0, 26.0, 24.0};

struct vb_vad {
    int rate, aggressiveness, factor, hops;
    size_t frame_samples;
    double dec[DEC_TAPS];
    double win[WIN];
    double tw_re[HALF / 2], tw_im[HALF / 2];  /* exp(-2 pi i k / 64) */
    double sp_re[HALF], sp_im[HALF];          /* exp(-2 pi i k / 128) */
    int bitrev[HALF];
    /* stream state */
    double ext[2 * DEC_HALF + MAX_FRAME]; /* decimator history + frame (16 kHz) */
    double y[MAX_FRAME];                  /* the frame at 8 kHz */
    double buf[WIN];                      /* the last WIN samples at 8 kHz */
    double noise[NB];
    long count;
    int run, hang;
    double score, level;
    double probability, volume_db;
    /* work */
    double re[HALF], im[HALF];
    double p[HALF + 1];
};

int vb_vad_check(int rate, size_t frame_samples, int aggressiveness) {
    size_t per_10ms;
    if (rate != 8000 && rate != 16000) {
        return VB_VAD_EUNSUPPORTED;
    }
    if (aggressiveness < 0 || aggressiveness > VB_VAD_MAX_AGGRESSIVENESS) {
        return VB_VAD_EUNSUPPORTED;
    }
    per_10ms = (size_t)rate / 100;
    if (frame_samples != per_10ms && frame_samples != 2 * per_10ms &&
        frame_samples != 3 * per_10ms) {
        return VB_VAD_EUNSUPPORTED;
    }
    return VB_VAD_OK;
}

/* Mirrored by _vad_ref.decimator(): taps at even offsets from the centre are
 * exactly zero, the centre is 0.5, then everything is scaled to sum to 1. */
static void vb_design_decimator(double *h) {
    double sum = 0.0;
    for (int i = 0; i < DEC_TAPS; i++) {
        int k = i - DEC_HALF;
        h[i] = 0.0;
        if (k == 0) {
            h[i] = 0.5;
        } else if (k % 2 != 0) {
            double x = VB_PI * (double)k / 2.0;
            double w = 0.42 + 0.5 * cos(VB_PI * (double)k / (DEC_HALF + 1)) +
                       0.08 * cos(2.0 * VB_PI * (double)k / (DEC_HALF + 1));
            h[i] = 0.5 * sin(x) / x * w;
        }
    }
    for (int i = 0; i < DEC_TAPS; i++) {
        sum = sum + h[i];
    }
    for (int i = 0; i < DEC_TAPS; i++) {
        h[i] = h[i] / sum;
    }
}

vb_vad *vb_vad_new(int rate, size_t frame_samples, int aggressiveness) {
    vb_vad *h;
    if (vb_vad_check(rate, frame_samples, aggressiveness) != VB_VAD_OK) {
        return NULL;
    }
    h = (vb_vad *)calloc(1, sizeof(vb_vad));
    if (h == NULL) {
        return NULL;
    }
    h->rate = rate;
    h->aggressiveness = aggressiveness;
    h->factor = rate / 8000;
    h->frame_samples = frame_samples;
    h->hops = (int)(frame_samples / ((size_t)HOP * (size_t)h->factor));
    vb_design_decimator(h->dec);
    for (int n = 0; n < WIN; n++) {
        h->win[n] = 0.5 - 0.5 * cos(2.0 * VB_PI * (double)n / WIN);
    }
    for (int k = 0; k < HALF / 2; k++) {
        h->tw_re[k] = cos(2.0 * VB_PI * (double)k / HALF);
        h->tw_im[k] = -sin(2.0 * VB_PI * (double)k / HALF);
    }
    for (int k = 0; k < HALF; k++) {
        int r = 0;
        for (int b = 0; b < 6; b++) {
            r |= ((k >> b) & 1) << (5 - b);
        }
        h->bitrev[k] = r;
        h->sp_re[k] = cos(2.0 * VB_PI * (double)k / WIN);
        h->sp_im[k] = -sin(2.0 * VB_PI * (double)k / WIN);
    }
    vb_vad_reset(h);
    return h;
}

void vb_vad_free(vb_vad *h) {
    free(h);
}

void vb_vad_reset(vb_vad *h) {
    if (h == NULL) {
        return;
    }
    memset(h->ext, 0, sizeof(h->ext));
    memset(h->buf, 0, sizeof(h->buf));
    memset(h->noise, 0, sizeof(h->noise));
    h->count = 0;
    h->run = 0;
    h->hang = 0;
    h->score = 0.0;
    h->level = LEVEL_FLOOR;
    h->probability = 0.0;
    h->volume_db = VOLUME_FLOOR;
}

/* p[k] = |X[k]|^2 + BIN_FLOOR for k = 0..64, X the real FFT of win * buf. */
static void vb_power_spectrum(vb_vad *h) {
    double *re = h->re, *im = h->im;
    for (int n = 0; n < HALF; n++) {
        int r = h->bitrev[n];
        re[r] = h->buf[2 * n] * h->win[2 * n];
        im[r] = h->buf[2 * n + 1] * h->win[2 * n + 1];
    }
    for (int len = 2; len <= HALF; len <<= 1) {
        int half = len >> 1;
        int step = HALF / len;
        for (int s = 0; s < HALF; s += len) {
            for (int j = 0; j < half; j++) {
                double wr = h->tw_re[j * step], wi = h->tw_im[j * step];
                int a = s + j, b = s + j + half;
                double tr = re[b] * wr - im[b] * wi;
                double ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] = re[a] + tr;
                im[a] = im[a] + ti;
            }
        }
    }
    /* Split: X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[-k]) / 2,
     * O = (Z[k] - conj Z[-k]) / 2i. */
    for (int k = 0; k <= HALF; k++) {
        int a = k % HALF, b = (HALF - k) % HALF;
        double er = 0.5 * (re[a] + re[b]), ei = 0.5 * (im[a] - im[b]);
        double or_ = 0.5 * (im[a] + im[b]), oi = -0.5 * (re[a] - re[b]);
        double wr = k < HALF ? h->sp_re[k] : -1.0, wi = k < HALF ? h->sp_im[k] : 0.0;
        double xr = er + (or_ * wr - oi * wi);
        double xi = ei + (or_ * wi + oi * wr);
        h->p[k] = xr * xr + xi * xi + BIN_FLOOR;
    }
}

/* One hop of HOP samples at 8 kHz; returns 0/1 and adds its probability. */
static int vb_hop(vb_vad *h, const double *x, double *prob_sum) {
    double sums[NB], e[NB], snr_sum = 0.0, w_sum = 0.0, arith = 0.0, logsum = 0.0;
    double all = 0.0, cnt_all = 0.0, noise_db = 0.0, level, tonal, score, thr, total, prob;
    int raw, noisy;
    int a = h->aggressiveness;
    memmove(h->buf, h->buf + HOP, (WIN - HOP) * sizeof(double));
    memcpy(h->buf + (WIN - HOP), x, HOP * sizeof(double));
    vb_power_spectrum(h);
    for (int b = 0; b < NB; b++) {
        double s = 0.0;
        for (int k = BAND_LO[b]; k < BAND_HI[b]; k++) {
            s = s + h->p[k];
        }
        sums[b] = s;
        e[b] = 10.0 * log10(s / (double)(BAND_HI[b] - BAND_LO[b]));
    }
    if (h->count < WIN / HOP + 1) { /* until the window holds only real input */
        for (int b = 0; b < NB; b++) {
            h->noise[b] = e[b];
        }
    }
    h->count++;
    for (int b = 0; b < NB; b++) {
        double d = e[b] - h->noise[b];
        d = d < 0.0 ? 0.0 : (d > SNR_MAX ? SNR_MAX : d);
        snr_sum = snr_sum + BAND_WEIGHT[b] * d;
        w_sum = w_sum + BAND_WEIGHT[b];
    }
    level = snr_sum / w_sum;
    /* Flatness of the whitened spectrum over bands 1..5 (bins FLAT_LO..FLAT_HI). */
    for (int b = 1; b < NB; b++) {
        arith = arith + sums[b] / pow(10.0, h->noise[b] / 10.0);
        noise_db = noise_db + (double)(BAND_HI[b] - BAND_LO[b]) * h->noise[b];
    }
    arith = arith / (FLAT_HI - FLAT_LO);
    for (int k = FLAT_LO; k < FLAT_HI; k += 8) {
        double prod = 1.0;
        for (int j = 0; j < 8; j++) {
            prod = prod * h->p[k + j];
        }
        logsum = logsum + log(prod);
    }
    logsum = logsum - noise_db * (log(10.0) / 10.0);
    tonal = 10.0 * log10(arith) - (10.0 / log(10.0)) * logsum / (FLAT_HI - FLAT_LO);
    score = SMOOTH * h->score + (1.0 - SMOOTH) * (level + TONAL_WEIGHT * (tonal - TONAL_OFFSET));
    h->score = score;
    thr = THRESHOLD[a];
    for (int b = 0; b < NB; b++) {
        all = all + sums[b];
        cnt_all = cnt_all + (double)(BAND_HI[b] - BAND_LO[b]);
    }
    total = 10.0 * log10(all / cnt_all);
    raw = score > thr && total > h->level - RELATIVE[a];
    if (raw && total > h->level) {
        h->level = h->level + LEVEL_UP * (total - h->level);
    }
    h->level = h->level - LEVEL_DECAY < LEVEL_FLOOR ? LEVEL_FLOOR : h->level - LEVEL_DECAY;
    prob = 1.0 / (1.0 + exp(-(score - thr) / PROB_SCALE));
    *prob_sum = *prob_sum + prob;
    noisy = !raw || tonal < TONAL_OFFSET + FLAT_MARGIN;
    for (int b = 0; b < NB; b++) {
        double d = e[b] - h->noise[b];
        if (d < 0.0) {
            h->noise[b] = h->noise[b] + DOWN * d;
        } else {
            double up = UP_RATE * d, cap = noisy ? UP_QUIET : UP_SPEECH;
            h->noise[b] = h->noise[b] + (up < cap ? up : cap);
        }
    }
    if (raw) {
        h->run++;
        if (h->run >= MIN_RUN) {
            h->hang = HANGOVER[a];
        }
        return 1;
    }
    h->run = 0;
    if (h->hang > 0) {
        h->hang--;
        return 1;
    }
    return 0;
}

int vb_vad_process(vb_vad *h, const int16_t *samples, size_t n) {
    int64_t energy = 0;
    const double *y;
    double prob_sum = 0.0;
    int speech = 0;
    if (h == NULL || samples == NULL || n != h->frame_samples) {
        return VB_VAD_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        energy += (int64_t)samples[i] * samples[i];
    }
    if (energy == 0) {
        h->volume_db = VOLUME_FLOOR;
    } else {
        double db = 10.0 * log10((double)energy / (double)n / (32768.0 * 32768.0));
        h->volume_db = db < VOLUME_FLOOR ? VOLUME_FLOOR : db;
    }
    if (h->factor == 2) {
        double *ext = h->ext;
        for (size_t i = 0; i < n; i++) {
            ext[2 * DEC_HALF + i] = (double)samples[i];
        }
        /* Tap by tap over all outputs: independent sums that vectorise, instead
         * of one dependent chain of 17 additions per output. Only the centre
         * and the taps at even j (odd offsets from the centre) are non-zero. */
        for (size_t m = 0; m < n / 2; m++) {
            h->y[m] = h->dec[DEC_HALF] * ext[2 * m + DEC_HALF];
        }
        for (int j = 0; j < DEC_TAPS; j += 2) {
            double c = h->dec[j];
            for (size_t m = 0; m < n / 2; m++) {
                h->y[m] = h->y[m] + c * ext[2 * m + (size_t)j];
            }
        }
        memmove(ext, ext + n, 2 * DEC_HALF * sizeof(double));
    } else {
        for (size_t i = 0; i < n; i++) {
            h->y[i] = (double)samples[i];
        }
    }
    y = h->y;
    for (int i = 0; i < h->hops; i++) {
        speech |= vb_hop(h, y + (size_t)i * HOP, &prob_sum);
    }
    h->probability = prob_sum / (double)h->hops;
    return speech;
}

double vb_vad_probability(const vb_vad *h) {
    return h == NULL ? 0.0 : h->probability;
}

double vb_vad_volume_db(const vb_vad *h) {
    return h == NULL ? VOLUME_FLOOR : h->volume_db;
}

size_t vb_vad_frame_samples(const vb_vad *h) {
    return h == NULL ? 0 : h->frame_samples;
}

size_t vb_vad_latency(const vb_vad *h) {
    (void)h;
    return 0;
}
