/* Partial-capacity paths: output in pieces of random size must equal one call. */
#include "resample.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int check(int a, int b, int ch, int fmt, int q, unsigned seed) {
    size_t n = 3000 + seed % 500, fb = (size_t)ch * (fmt ? 4 : 2);
    unsigned char *in = malloc(n * fb); srand(seed);
    for (size_t i = 0; i < n * fb; i++) in[i] = (unsigned char)rand();
    if (fmt) for (size_t i = 0; i < n * ch; i++) ((float *)in)[i] = (float)(rand() % 2000 - 1000) / 1000.0f;
    size_t cap = n * 8 + 64; unsigned char *ref = malloc(cap * fb), *got = malloc(cap * fb);
    vb_resampler *h = vb_resampler_new(a, b, ch, fmt, q);
    size_t u, w, tot = 0, w2;
    size_t want = vb_resampler_out_frames(h, n);
    if (vb_resampler_process(h, in, n, ref, want, &u, &w) || u != n || w != want) { printf("one-shot fail\n"); return 1; }
    tot = w; size_t fl = vb_resampler_flush_frames(h);
    vb_resampler_flush(h, ref + tot * fb, fl, &w2); tot += w2;
    if (vb_resampler_flush_frames(h) != 0) return 1;
    /* now pieces: random input sizes, random small output capacities */
    size_t pos = 0, outpos = 0;
    while (pos < n || vb_resampler_out_frames(h, 0) > 0) {
        size_t take = (size_t)(rand() % 50); if (take > n - pos) take = n - pos;
        size_t oc = (size_t)(rand() % 7);
        if (vb_resampler_process(h, in + pos * fb, take, got + outpos * fb, oc, &u, &w)) return 1;
        if (w > oc || u > take) { printf("overrun\n"); return 1; }
        pos += u; outpos += w;
    }
    int guard = 0;
    while (vb_resampler_flush_frames(h) > 0) {
        size_t oc = (size_t)(rand() % 5);
        if (vb_resampler_flush(h, got + outpos * fb, oc, &w)) return 1;
        outpos += w;
        if (oc && vb_resampler_flush_frames(h) > 0) {
            size_t x, y; if (vb_resampler_process(h, in, 1, got, 1, &x, &y) != VB_RESAMPLE_EDRAINING) { printf("no EDRAINING\n"); return 1; }
        }
        if (++guard > 100000) return 1;
    }
    if (outpos != tot || memcmp(ref, got, tot * fb)) { printf("mismatch %d->%d ch%d fmt%d q%d: %zu vs %zu\n", a, b, ch, fmt, q, outpos, tot); return 1; }
    vb_resampler_free(h); free(in); free(ref); free(got);
    return 0;
}
int main(void) {
    int rates[] = {8000, 16000, 22050, 24000, 32000, 44100, 48000}; int fails = 0, runs = 0;
    for (int i = 0; i < 7; i++) for (int j = 0; j < 7; j++) for (int ch = 1; ch <= 3; ch += 2) for (int f = 0; f < 2; f++) {
        fails += check(rates[i], rates[j], ch, f, (i + j) % 3, (unsigned)(i * 7 + j + ch * 100 + f)); runs++; }
    /* argument checks */
    if (vb_resampler_new(7, 8000, 1, 0, 0) || vb_resampler_new(8000, 8000, 0, 0, 0) || vb_resampler_new(8000, 16000, 1, 2, 0) || vb_resampler_new(8000, 16000, 1, 0, 3)) fails++;
    size_t u, w; if (vb_resampler_process(NULL, NULL, 0, NULL, 0, &u, &w) != VB_RESAMPLE_EINVAL) fails++;
    vb_resampler *h = vb_resampler_new(8000, 16000, 1, 0, 2);
    if (vb_resampler_process(h, NULL, 5, NULL, 0, &u, &w) != VB_RESAMPLE_EINVAL) fails++;
    if (vb_resampler_process(h, NULL, 0, NULL, 0, &u, &w) != VB_RESAMPLE_OK) fails++;
    vb_resampler_free(h); vb_resampler_free(NULL); vb_resampler_reset(NULL);
    printf("%d runs, %d failures\n", runs, fails); return fails != 0;
}
