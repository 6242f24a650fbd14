"""The labelled VAD dataset: real speech, generated gaps, noise at set SNRs.

Speech: the LibriVox clips in ``../shared/testdata/librivox/`` (16 kHz mono
int16, 24.7 s in all), in file-name order, each preceded by a gap of digital
silence 0.6 to 2.4 s long (seeded), plus a 1 s gap at the end.

Reference labels, on a 10 ms grid (``UNIT``), come from each *clean* clip alone:

1. the RMS level of every 10 ms unit in dBFS;
2. a unit is speech if its level exceeds ``max(floor + 15 dB, peak - 40 dB)``,
   where ``floor`` is the clip's 5th-percentile unit level (its background
   noise) and ``peak`` its loudest unit. 15 dB above the recording's own noise
   is conservative: breaths and room tone stay out, weak consonants mostly in;
3. hangover: every speech unit also marks the 2 units (20 ms) before it and
   the 15 units (150 ms) after it, which fills the short dips inside words and
   phrases and keeps decaying word endings;
4. the generated gaps are non-speech.

Noise (white, pink, babble) is mixed over the whole sequence, gaps included, at
20, 10 and 5 dB SNR, where SNR compares the mean power of the clean signal over
its speech units with the mean power of the noise. Babble is four "other
talkers": each is the same clips in a seeded shuffled order, circularly shifted
by a seeded amount, so the talkers never line up with the target or each other.
Every random choice comes from ``numpy.random.default_rng`` with fixed seeds,
so the dataset is the same on every run.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["RATE", "UNIT", "Condition", "Dataset", "build", "conditions", "label_clip"]

RATE = 16000
UNIT = 160  # samples per label unit (10 ms)
LIBRIVOX = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "librivox"
SEED = 20240611
BABBLE_TALKERS = 4


@dataclass(frozen=True)
class Condition:
    """One noise type at one SNR (``snr_db`` is None for the clean signal)."""

    noise: str
    snr_db: float | None

    @property
    def name(self) -> str:
        return "clean" if self.snr_db is None else f"{self.noise} {self.snr_db:g} dB"


@dataclass(frozen=True)
class Dataset:
    """The clean sequence and its labels (one bool per 10 ms unit)."""

    clean: NDArray[np.float64]
    labels: NDArray[np.bool_]
    clips: tuple[NDArray[np.float64], ...]

    def audio(self, condition: Condition) -> NDArray[np.int16]:
        """The sequence mixed with ``condition``'s noise, as int16."""
        x = self.clean
        if condition.snr_db is not None:
            noise = make_noise(condition.noise, len(x), self.clips)
            speech = np.repeat(self.labels, UNIT)[: len(x)]
            p_speech = float(np.mean(x[speech] ** 2))
            p_noise = float(np.mean(noise**2))
            gain = np.sqrt(p_speech / p_noise / 10 ** (condition.snr_db / 10))
            x = x + gain * noise
        return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def conditions(quick: bool = False) -> list[Condition]:
    """Clean plus each noise at each SNR (``quick``: 10 dB only)."""
    snrs = (10.0,) if quick else (20.0, 10.0, 5.0)
    return [Condition("none", None)] + [
        Condition(noise, snr) for noise in ("white", "pink", "babble") for snr in snrs
    ]


def read_wav(path: Path) -> NDArray[np.float64]:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def label_clip(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Speech labels of one clean clip, one per 10 ms unit (see the module docstring)."""
    units = len(x) // UNIT
    frames = x[: units * UNIT].reshape(units, UNIT)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768.0**2 + 1e-12)
    threshold = max(float(np.percentile(level, 5)) + 15.0, float(level.max()) - 40.0)
    core = level > threshold
    labels = core.copy()
    for i in np.flatnonzero(core):
        labels[max(0, i - 2) : i + 16] = True
    if len(x) % UNIT:  # the partial last unit follows the one before it
        labels = np.append(labels, labels[-1] if units else False)
    return labels


def build() -> Dataset:
    """Concatenate the clips with seeded gaps; label them."""
    rng = np.random.default_rng(SEED)
    clips = tuple(read_wav(p) for p in sorted(LIBRIVOX.glob("*.wav")))
    if not clips:
        raise SystemExit(f"no speech clips in {LIBRIVOX}")
    parts: list[NDArray[np.float64]] = []
    labels: list[NDArray[np.bool_]] = []
    for clip in clips:
        gap_units = int(rng.integers(60, 241))
        parts.append(np.zeros(gap_units * UNIT))
        labels.append(np.zeros(gap_units, dtype=bool))
        whole = len(clip) // UNIT * UNIT  # keep the grid aligned
        parts.append(clip[:whole])
        labels.append(label_clip(clip[:whole]))
    parts.append(np.zeros(100 * UNIT))
    labels.append(np.zeros(100, dtype=bool))
    return Dataset(np.concatenate(parts), np.concatenate(labels), clips)


def make_noise(kind: str, n: int, clips: tuple[NDArray[np.float64], ...]) -> NDArray[np.float64]:
    """``n`` samples of seeded noise of unit-ish level (scaled by the caller)."""
    seed = {"white": 1, "pink": 2, "babble": 3}[kind]
    rng = np.random.default_rng(SEED + seed)
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        # White noise shaped to a 1/f power spectrum (1/sqrt(f) amplitude) above 20 Hz.
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / RATE)
        spectrum *= 1 / np.sqrt(np.maximum(f, 20.0))
        return np.fft.irfft(spectrum, n)
    if kind == "babble":
        total = np.zeros(n)
        for _ in range(BABBLE_TALKERS):
            order = rng.permutation(len(clips))
            talker = np.concatenate([clips[i] for i in order])
            talker = np.tile(talker, n // len(talker) + 2)
            start = int(rng.integers(0, len(talker) - n))
            total += talker[start : start + n] / np.sqrt(np.mean(talker**2))
        return total
    raise ValueError(f"unknown noise {kind!r}")
