"""G.711 mu-law and A-law: the 8-bit telephony codecs, to and from int16 PCM.

Use these where audio meets the phone network: Twilio and most SIP trunks in
North America and Japan carry mu-law (``pcm_mulaw``), European trunks A-law
(``pcm_alaw``), both at 8 kHz, one byte per sample. Encoding takes int16
samples in host order (little-endian on every supported platform) and returns
one byte per sample; decoding takes any number of bytes and returns int16.

The codes are those of ITU-T G.711, bit-exact: decoding follows the
Recommendation's tables, and encoding its decision values, resolved where G.711
leaves a choice (negative samples and values on a decision boundary) as ITU-T
G.191's reference software does, by treating a negative sample x as the
magnitude ``-x - 1``. So ``x`` and ``-x - 1`` encode to codes that differ only in
the sign bit, and silence encodes to 0xFF (mu-law) and 0xD5 (A-law). These
functions replace ``audioop`` (removed in Python 3.13): decoding and A-law
encoding give the same bytes as ``audioop.ulaw2lin``/``alaw2lin``/``lin2alaw``;
``audioop.lin2ulaw`` differs on 508 of the 65536 negative-side inputs, by one
quantisation step, because it used the two's complement magnitude (details in
csrc/g711.h).

``IMPLEMENTATION`` says which code runs: ``"c"`` (csrc/g711.c) or ``"numpy"``
(table lookups, used when the compiled module is missing, with a
``RuntimeWarning`` once at import).
"""

from __future__ import annotations

from typing import Final, Protocol

from ..typing import BytesLike
from ._backend import load_backend
from .pcm import _samples

__all__ = ["IMPLEMENTATION", "alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_S16_BYTES: Final = 2


class _Backend(Protocol):
    """What ``_g711_c`` and ``_g711_ref`` both provide."""

    def ulaw_encode(self, data: BytesLike, /) -> bytes: ...
    def ulaw_decode(self, data: BytesLike, /) -> bytes: ...
    def alaw_encode(self, data: BytesLike, /) -> bytes: ...
    def alaw_decode(self, data: BytesLike, /) -> bytes: ...


# Looked up as a module global at each call, so that the tests can run one test
# class against each implementation (tests/dsp/test_g711.py).

_impl: _Backend
IMPLEMENTATION: str
_impl, IMPLEMENTATION = load_backend("g711")


# Each function checks a bytes argument inline and calls _samples only for
# other types: on a 20 ms packet the extra Python call would be a third of the
# whole cost (about 60 of 180 ns, CPython 3.11).


def ulaw_encode(data: BytesLike) -> bytes:
    """Encode int16 samples to mu-law, one byte per sample.

    The top 14 bits of each sample are coded; magnitudes beyond 32635 saturate
    to the largest code (0x80 for positive, 0x00 for negative samples).
    """
    if type(data) is not bytes or len(data) & 1:
        data = _samples(data, _S16_BYTES, "ulaw_encode")
    return _impl.ulaw_encode(data)


def ulaw_decode(data: BytesLike) -> bytes:
    """Decode mu-law bytes to int16 samples, two bytes out per byte in.

    Values lie in ``[-32124, 32124]``; both 0xFF and 0x7F decode to 0.
    """
    if type(data) is not bytes:
        data = _samples(data, 1, "ulaw_decode")
    return _impl.ulaw_decode(data)


def alaw_encode(data: BytesLike) -> bytes:
    """Encode int16 samples to A-law, one byte per sample.

    The top 13 bits of each sample are coded; the whole int16 range is within
    the coder's, so nothing saturates.
    """
    if type(data) is not bytes or len(data) & 1:
        data = _samples(data, _S16_BYTES, "alaw_encode")
    return _impl.alaw_encode(data)


def alaw_decode(data: BytesLike) -> bytes:
    """Decode A-law bytes to int16 samples, two bytes out per byte in.

    Values lie in ``[-32256, 32256]``; A-law has no zero, so 0xD5 decodes to +8
    and 0x55 to -8.
    """
    if type(data) is not bytes:
        data = _samples(data, 1, "alaw_decode")
    return _impl.alaw_decode(data)
