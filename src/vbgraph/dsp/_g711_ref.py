"""Numpy reference for the G.711 kernels in csrc/g711.c.

This is what the compiled module is tested against, byte for byte, and the
fallback :mod:`vbgraph.dsp.g711` uses when the compiled module is missing. Every
call is a table lookup. The tables are built once, at import, from the
segment/step rule of csrc/g711.h written with numpy integer operations (the C
code finds the segment through the float exponent instead, and the tests check
both against tables built from the G.711 decision values):

- decoding: one int16 per code byte, 256 entries;
- encoding: mu-law depends only on ``x >> 2`` (16384 entries) and A-law only on
  ``x >> 4`` (4096 entries), because the one's complement magnitude of a
  negative x, ``~x >> k``, equals ``~(x >> k)``.

Private, with the caller's contract of ``_g711_c``: ``data`` is a contiguous
byte buffer, holding whole int16 samples for the encoders. Samples are
little-endian whatever the host.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..typing import BytesLike

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_S16 = np.dtype("<i2")


def _segment(v: NDArray[np.int64], first: int) -> NDArray[np.int64]:
    """floor(log2(v)) - log2(first) for ``first <= v < 128 * first``: the segment, 0..6 or 0..7."""
    seg = np.zeros_like(v)
    for s in range(1, 8):
        seg += v >= (first << s)
    return seg


def _ulaw_encode_table() -> NDArray[np.uint8]:
    """The mu-law code of every 14-bit value t = x >> 2, indexed by t + 8192."""
    t = np.arange(-8192, 8192, dtype=np.int64)
    negative = t < 0
    v = np.minimum(np.where(negative, ~t, t) + 33, 8191)  # biased magnitude, 33..8191
    seg = _segment(v, 32)
    step = (v >> (seg + 1)) & 15
    code = ((seg << 4) | step) ^ 0x7F  # mu-law sends every bit inverted
    table: NDArray[np.uint8] = np.where(negative, code, code | 0x80).astype(np.uint8)
    return table


def _alaw_encode_table() -> NDArray[np.uint8]:
    """The A-law code of every 12-bit value t = x >> 4, indexed by t + 2048."""
    t = np.arange(-2048, 2048, dtype=np.int64)
    negative = t < 0
    m = np.where(negative, ~t, t)  # magnitude, 0..2047
    seg = np.where(m < 16, 0, _segment(np.maximum(m, 16), 16) + 1)
    step = np.where(seg == 0, m, m >> np.maximum(seg - 1, 0)) & 15
    code = (seg << 4) | step | np.where(negative, 0, 0x80)
    return (code ^ 0x55).astype(np.uint8)  # invert the even bits


def _ulaw_decode_table() -> NDArray[np.int16]:
    c = np.arange(256, dtype=np.int64) ^ 0xFF
    seg, step = (c >> 4) & 7, c & 15
    magnitude = (((2 * step + 33) << seg) - 33) * 4
    return np.where(c & 0x80, -magnitude, magnitude).astype(_S16)


def _alaw_decode_table() -> NDArray[np.int16]:
    c = np.arange(256, dtype=np.int64) ^ 0x55
    seg, step = (c >> 4) & 7, c & 15
    magnitude = np.where(seg == 0, 2 * step + 1, ((2 * step + 33) << seg) >> 1) * 8
    return np.where(c & 0x80, magnitude, -magnitude).astype(_S16)


_ULAW_ENCODE: Final = _ulaw_encode_table()
_ALAW_ENCODE: Final = _alaw_encode_table()
_ULAW_DECODE: Final = _ulaw_decode_table()
_ALAW_DECODE: Final = _alaw_decode_table()


def ulaw_encode(data: BytesLike) -> bytes:
    x = np.frombuffer(data, dtype=_S16)
    codes: NDArray[np.uint8] = _ULAW_ENCODE[(x >> 2) + 8192]
    return codes.tobytes()


def ulaw_decode(data: BytesLike) -> bytes:
    samples: NDArray[np.int16] = _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    return samples.tobytes()


def alaw_encode(data: BytesLike) -> bytes:
    x = np.frombuffer(data, dtype=_S16)
    codes: NDArray[np.uint8] = _ALAW_ENCODE[(x >> 4) + 2048]
    return codes.tobytes()


def alaw_decode(data: BytesLike) -> bytes:
    samples: NDArray[np.int16] = _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    return samples.tobytes()
