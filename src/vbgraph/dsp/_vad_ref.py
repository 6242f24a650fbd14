"""Numpy reference for the frame-level VAD in csrc/vad.c.

The definition the compiled module is tested against, and the fallback
:mod:`vbgraph.dsp.vad` uses when the compiled module is missing. It runs the
same algorithm in float64 (see the theory of operation in csrc/vad.h); only
the order of some sums differs (numpy's FFT and dot products against the C
loops), so features agree to about 1e-12 and the decisions are equal. Every
constant below has its twin in csrc/vad.c: change both together.

Private, with the caller's contract of ``_vad_c``: arguments already checked by
:mod:`vbgraph.dsp.vad`, frames of exactly ``frame_samples`` little-endian int16
samples.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..typing import BytesLike

__all__ = ["Vad"]

HOP = 80  # samples per analysis hop at the internal 8 kHz rate (10 ms)
WIN = 128  # FFT length and analysis window (16 ms)
DEC_HALF = 15  # the 16 -> 8 kHz half-band filter has 2 * DEC_HALF + 1 taps
BAND_LO = (2, 4, 8, 16, 32, 48)  # first FFT bin of each band (62.5 Hz per bin)
BAND_HI = (4, 8, 16, 32, 48, 60)  # one past the last bin
BAND_WEIGHT = (0.5, 1.0, 1.0, 1.0, 0.75, 0.5)
FLAT_LO, FLAT_HI = 4, 60  # bins of the flatness measure: 250 - 3750 Hz
BIN_FLOOR = 1.0  # added to every bin's power (int16 units squared): no log of 0
SNR_MAX = 30.0  # dB; one band's contribution is capped here
TONAL_OFFSET = 3.0  # dB of "tonality" that a flat (noise) spectrum has by chance
TONAL_WEIGHT = 1.0
DOWN = 0.2  # the noise floor falls this fraction of the way to a quieter band at once
UP_RATE = 0.05  # ... and rises this fraction of the way to a louder one,
UP_QUIET = 0.3  # at most this many dB per hop while the hop is not speech,
UP_SPEECH = 0.02  # and this many while it is (2 dB/s)
FLAT_MARGIN = 1.0  # dB of tonality under which a loud hop still lets the floor rise fast
SMOOTH = 0.8  # weight of the previous hop's score
LEVEL_UP = 0.3  # the speech level moves this fraction of the way up to a louder speech hop
LEVEL_DECAY = 0.02  # dB per hop (2 dB/s) it falls back
LEVEL_FLOOR = 0.0  # where it starts (int16 units squared, in dB: about -90 dBFS)
MIN_RUN = 3  # speech hops in a row before the hangover arms
PROB_SCALE = 2.0  # dB of score per unit of logit
VOLUME_FLOOR = -120.0  # dBFS reported for digital silence

# Per aggressiveness 0..3: decision threshold on the score (dB) and hangover (hops).
THRESHOLD = (1.8, 2.4, 2.9, 3.5)
HANGOVER = (12, 10, 8, 6)
RELATIVE = (30.0, 28.0, 26.0, 24.0)  # dB below the speech level that still counts


def decimator() -> NDArray[np.float64]:
    """The half-band low-pass (Blackman-windowed sinc, cutoff 4 kHz at 16 kHz), DC gain 1."""
    n = np.arange(-DEC_HALF, DEC_HALF + 1, dtype=np.float64)
    h = np.zeros(2 * DEC_HALF + 1)
    for i, k in enumerate(n):
        if k == 0:
            h[i] = 0.5
        elif int(k) % 2:
            x = math.pi * k / 2.0
            w = (
                0.42
                + 0.5 * math.cos(math.pi * k / (DEC_HALF + 1))
                + 0.08 * math.cos(2.0 * math.pi * k / (DEC_HALF + 1))
            )
            h[i] = 0.5 * math.sin(x) / x * w
    return h / float(np.sum(h))


def hann() -> NDArray[np.float64]:
    """The periodic Hann window of WIN samples."""
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(WIN) / WIN)


class Vad:
    """One stream's VAD state (the ``vb_vad`` handle's twin)."""

    def __init__(self, rate: int, frame_samples: int, aggressiveness: int, /) -> None:
        self.rate = rate
        self.frame_samples = frame_samples
        self.aggressiveness = aggressiveness
        self._factor = rate // 8000
        self._hops = frame_samples // (HOP * self._factor)
        self._dec = decimator()
        self._win = hann()
        self._bins = np.arange(WIN // 2 + 1)
        self.reset()

    def reset(self) -> None:
        self._hist = np.zeros(2 * DEC_HALF)  # 16 kHz input the decimator still needs
        self._buf = np.zeros(WIN)  # the last WIN samples at 8 kHz
        self._noise = np.zeros(len(BAND_LO))
        self._count = 0  # hops since reset
        self._run = 0
        self._hang = 0
        self._score = 0.0
        self._level = LEVEL_FLOOR
        self.probability = 0.0
        self.volume_db = VOLUME_FLOOR
        self.decision = False

    def process(self, data: BytesLike, /) -> bool:
        x = np.frombuffer(data, dtype="<i2").astype(np.float64)
        energy = float(np.dot(x, x))
        self.volume_db = (
            VOLUME_FLOOR
            if energy == 0.0
            else max(VOLUME_FLOOR, 10.0 * math.log10(energy / len(x) / (32768.0 * 32768.0)))
        )
        if self._factor == 2:
            ext = np.concatenate([self._hist, x])
            self._hist = ext[len(x) :].copy()
            taps = np.lib.stride_tricks.sliding_window_view(ext, 2 * DEC_HALF + 1)[::2]
            x = taps[: len(x) // 2] @ self._dec
        speech = False
        probs = 0.0
        for i in range(self._hops):
            hop_speech, prob = self._hop(x[i * HOP : (i + 1) * HOP])
            speech = speech or hop_speech
            probs += prob
        self.probability = probs / self._hops
        self.decision = speech
        return speech

    def _hop(self, x: NDArray[np.float64]) -> tuple[bool, float]:
        buf = self._buf
        buf[: WIN - HOP] = buf[HOP:]
        buf[WIN - HOP :] = x
        p = np.abs(np.fft.rfft(buf * self._win)) ** 2 + BIN_FLOOR
        nb = len(BAND_LO)
        sums = np.array([np.sum(p[BAND_LO[b] : BAND_HI[b]]) for b in range(nb)])
        cnt = np.array([BAND_HI[b] - BAND_LO[b] for b in range(nb)], dtype=np.float64)
        e = 10.0 * np.log10(sums / cnt)
        noise = self._noise
        if self._count < WIN // HOP + 1:  # until the window holds only real input
            noise[:] = e
        self._count += 1
        snr = np.clip(e - noise, 0.0, SNR_MAX)
        w = np.array(BAND_WEIGHT)
        level = float(np.dot(w, snr)) / float(np.sum(w))
        # Flatness of the spectrum whitened by the noise floor (bands 1..5).
        lin = 10.0 ** (noise / 10.0)
        arith = float(np.sum(sums[1:] / lin[1:])) / (FLAT_HI - FLAT_LO)
        logsum = float(np.sum(np.log(p[FLAT_LO:FLAT_HI]))) - float(np.dot(cnt[1:], noise[1:])) * (
            math.log(10.0) / 10.0
        )
        tonal = 10.0 * math.log10(arith) - (10.0 / math.log(10.0)) * logsum / (FLAT_HI - FLAT_LO)
        # One-pole smoothing: speech lasts, chance peaks of noise do not.
        score = SMOOTH * self._score + (1.0 - SMOOTH) * (
            level + TONAL_WEIGHT * (tonal - TONAL_OFFSET)
        )
        self._score = score
        thr = THRESHOLD[self.aggressiveness]
        # Foreground only: a hop far below the recent speech level is background
        # (other talkers, a TV) even when it looks like speech.
        total = 10.0 * math.log10(float(np.sum(sums)) / float(np.sum(cnt)))
        raw = score > thr and total > self._level - RELATIVE[self.aggressiveness]
        if raw:
            self._level += LEVEL_UP * max(0.0, total - self._level)
        self._level = max(LEVEL_FLOOR, self._level - LEVEL_DECAY)
        prob = 1.0 / (1.0 + math.exp(-(score - thr) / PROB_SCALE))
        # Noise floor: fast down, slow up (slower while the hop is speech).
        d = e - noise
        # A spectrum as flat as noise is taken as noise however loud: a louder
        # background (a fan switched on) becomes the floor within seconds.
        noisy = not raw or tonal < TONAL_OFFSET + FLAT_MARGIN
        up = np.minimum(UP_RATE * d, UP_QUIET if noisy else UP_SPEECH)
        noise += np.where(d < 0.0, DOWN * d, up)
        if raw:
            self._run += 1
            if self._run >= MIN_RUN:
                self._hang = HANGOVER[self.aggressiveness]
            return True, prob
        self._run = 0
        if self._hang > 0:
            self._hang -= 1
            return True, prob
        return False, prob
