"""Numpy reference for the PCM kernels in csrc/pcm.c.

This is the definition the compiled module is tested against, bit for bit, and
the fallback :mod:`vbgraph.dsp.pcm` uses when the compiled module is missing.
It mirrors the C arithmetic step by step: products in float32, NaN to 0,
saturate, then round half to even (``numpy.rint``; csrc/pcm.c gets the same
result with the 1.5 * 2**23 trick). Samples are little-endian whatever the host.

Private, with the same caller's contract as ``_pcm_c``: ``data`` is a
contiguous byte buffer holding a whole number of samples (of frames, for the
stereo input of ``stereo_to_mono_*``), ``gain`` is a finite value that fits in a
float32, and the mixers get a non-empty sequence of buffers of equal length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..typing import BytesLike

__all__ = [
    "f32_to_s16",
    "gain_f32",
    "gain_s16",
    "mix_f32",
    "mix_s16",
    "mono_to_stereo_f32",
    "mono_to_stereo_s16",
    "peak_f32",
    "peak_s16",
    "rms_f32",
    "rms_s16",
    "s16_to_f32",
    "stereo_to_mono_f32",
    "stereo_to_mono_s16",
]

_S16 = np.dtype("<i2")
_F32 = np.dtype("<f4")
_SCALE = np.float32(32768.0)
_LOW = np.float32(-32768.0)
_HIGH = np.float32(32767.0)


def _to_s16(y: NDArray[np.float32]) -> bytes:
    """Overwrite ``y`` (a fresh array) with NaN -> 0, saturation and rounding."""
    y[np.isnan(y)] = 0.0
    np.clip(y, _LOW, _HIGH, out=y)
    np.rint(y, out=y)
    return y.astype(_S16).tobytes()


def s16_to_f32(data: BytesLike) -> bytes:
    x = np.frombuffer(data, dtype=_S16)
    return (x.astype(np.float32) / _SCALE).astype(_F32, copy=False).tobytes()


def f32_to_s16(data: BytesLike) -> bytes:
    x = np.frombuffer(data, dtype=_F32)
    # Huge values overflow to inf and then saturate; a signalling NaN becomes a
    # quiet NaN and then 0. Neither deserves a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32) * _SCALE
    return _to_s16(y)


def gain_s16(data: BytesLike, gain: float) -> bytes:
    x = np.frombuffer(data, dtype=_S16)
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32) * np.float32(gain)
    return _to_s16(y)


def gain_f32(data: BytesLike, gain: float) -> bytes:
    x = np.frombuffer(data, dtype=_F32)
    with np.errstate(all="ignore"):  # float output keeps inf and NaN as they are
        y = x.astype(np.float32) * np.float32(gain)
    return y.astype(_F32, copy=False).tobytes()


def peak_s16(data: BytesLike) -> int:
    x = np.frombuffer(data, dtype=_S16)
    if x.size == 0:
        return 0
    return int(np.abs(x.astype(np.int32)).max())


def rms_s16(data: BytesLike) -> float:
    x = np.frombuffer(data, dtype=_S16)
    if x.size == 0:
        return 0.0
    wide = x.astype(np.int64)
    total = int(np.dot(wide, wide))  # exact, as the int64 sum in C
    # float(total) / float(n), not total / n: C rounds both to double first.
    return math.sqrt(float(total) / float(x.size))


def peak_f32(data: BytesLike) -> float:
    x = np.frombuffer(data, dtype=_F32)
    if x.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):  # a signalling NaN is just a NaN here
        a = np.abs(x)
    a[np.isnan(a)] = 0.0  # NaN counts as silence, as in f32_to_s16
    return float(a.max())


def rms_f32(data: BytesLike) -> float:
    with np.errstate(invalid="ignore"):  # a signalling NaN is just a NaN here
        x = np.frombuffer(data, dtype=_F32).astype(np.float64)
    n = x.size
    if n == 0:
        return 0.0
    x[np.isnan(x)] = 0.0
    squares = x * x  # exact: a float32 squared fits a double
    # The summation order is csrc/pcm.c's: four running sums (add.accumulate is
    # sequential, unlike np.sum's pairwise sum), then the tail one by one.
    whole = n - n % 4
    total = 0.0
    if whole:
        part = np.add.accumulate(squares[:whole].reshape(-1, 4), axis=0)[-1]
        total = (float(part[0]) + float(part[1])) + (float(part[2]) + float(part[3]))
    for value in squares[whole:]:
        total += float(value)
    return math.sqrt(total / float(n))


def mix_s16(buffers: Sequence[BytesLike]) -> bytes:
    total = np.frombuffer(buffers[0], dtype=_S16).astype(np.int32)
    for data in buffers[1:]:
        total += np.frombuffer(data, dtype=_S16)  # exact: 65535 streams fit int32
    np.clip(total, -32768, 32767, out=total)
    return total.astype(_S16).tobytes()


def mix_f32(buffers: Sequence[BytesLike]) -> bytes:
    # Left to right in float32, starting from the first buffer (not from 0.0,
    # which would turn a lone -0.0 into +0.0).
    total = np.frombuffer(buffers[0], dtype=_F32).astype(np.float32)
    with np.errstate(all="ignore"):  # inf and NaN pass through, as in C
        for data in buffers[1:]:
            total += np.frombuffer(data, dtype=_F32)
    return total.astype(_F32, copy=False).tobytes()


def stereo_to_mono_s16(data: BytesLike) -> bytes:
    pairs = np.frombuffer(data, dtype=_S16).reshape(-1, 2).astype(np.int32)
    # (l + r) / 2 is exact in float64, and rint rounds its .5 cases to even.
    return np.rint((pairs[:, 0] + pairs[:, 1]) / 2).astype(_S16).tobytes()


def stereo_to_mono_f32(data: BytesLike) -> bytes:
    pairs = np.frombuffer(data, dtype=_F32).reshape(-1, 2).astype(np.float32)
    with np.errstate(all="ignore"):
        mono = (pairs[:, 0] + pairs[:, 1]) * np.float32(0.5)
    return mono.astype(_F32, copy=False).tobytes()


def mono_to_stereo_s16(data: BytesLike) -> bytes:
    return np.repeat(np.frombuffer(data, dtype=_S16), 2).tobytes()


def mono_to_stereo_f32(data: BytesLike) -> bytes:
    # As raw 32-bit words, so every NaN payload is copied bit for bit.
    return np.repeat(np.frombuffer(data, dtype="<u4"), 2).tobytes()
