"""Numpy reference for the PCM kernels in csrc/pcm.c.

This is the definition the compiled module is tested against, bit for bit, and
the fallback :mod:`vbgraph.dsp.pcm` uses when the compiled module is missing.
It mirrors the C arithmetic step by step: products in float32, NaN to 0,
saturate, then round half to even (``numpy.rint``; csrc/pcm.c gets the same
result with the 1.5 * 2**23 trick). Samples are little-endian whatever the host.

Private, with the same caller's contract as ``_pcm_c``: ``data`` is a
contiguous byte buffer holding a whole number of samples, and ``gain`` is a
finite value that fits in a float32.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..typing import BytesLike

__all__ = ["f32_to_s16", "gain_f32", "gain_s16", "peak_s16", "rms_s16", "s16_to_f32"]

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
