"""Linear PCM conversion, gain, mixing, channels and level: the functions nodes call on raw audio.

Buffers are mono or interleaved samples in host order, which is little-endian
on every platform vbgraph supports (``pcm_s16le`` and ``pcm_f32le``): int16 in
``[-32768, 32767]`` and float32 with full scale at 1.0. Each function takes any
contiguous byte buffer (``bytes``, ``bytearray``, ``memoryview``, also a
memoryview with a wider item type) and returns a new ``bytes``; the one
exception is the passthrough below.

Numerics, identical in the compiled and the numpy implementation:

- int16 -> float32 divides by 32768, so -32768 becomes -1.0 exactly and the
  round trip int16 -> float32 -> int16 is the identity.
- Every result that is int16 (:func:`f32_to_s16`, :func:`gain_s16`) is computed
  in float32, then NaN becomes 0, values saturate to ``[-32768, 32767]``, and
  the result is rounded to nearest with ties to even (``0.5 -> 0``,
  ``1.5 -> 2``, ``2.5 -> 2``). So ``+1.0`` becomes 32767 and ``-1.0`` -32768.
- :func:`gain_f32` does not clip: float audio may exceed full scale until it is
  converted back to int16.
- Mixing (:func:`mix_s16`, :func:`mix_f32`) sums streams sample by sample:
  int16 exactly, then saturated once; float32 left to right, without clipping.
- Stereo is interleaved (``L R L R ...``). Down-mixing averages the two
  channels, ``(L + R) / 2``, int16 rounded half to even like everything else;
  up-mixing copies each sample to both channels.

``IMPLEMENTATION`` says which one runs: ``"c"`` for the compiled kernels
(csrc/pcm.c) or ``"numpy"`` for the reference, used when the compiled module is
missing (a ``RuntimeWarning`` says so once, at import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Protocol

from ..errors import AudioFormatError, UsageError
from ..typing import BytesLike
from ._backend import FALLBACK_WARNING, load_backend

__all__ = [
    "IMPLEMENTATION",
    "MIX_MAX_STREAMS",
    "db_to_gain",
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

_FALLBACK_WARNING: Final = FALLBACK_WARNING

_S16_BYTES: Final = 2
_F32_BYTES: Final = 4
_FLT_MAX: Final = 3.4028234663852886e38  # largest finite float32

MIX_MAX_STREAMS: Final = 65535
"""The most buffers one :func:`mix_s16` or :func:`mix_f32` call adds (csrc/pcm.h)."""


class _Backend(Protocol):
    """What ``_pcm_c`` and ``_pcm_ref`` both provide (modules match this protocol)."""

    def s16_to_f32(self, data: BytesLike, /) -> bytes: ...
    def f32_to_s16(self, data: BytesLike, /) -> bytes: ...
    def gain_s16(self, data: BytesLike, gain: float, /) -> bytes: ...
    def gain_f32(self, data: BytesLike, gain: float, /) -> bytes: ...
    def peak_s16(self, data: BytesLike, /) -> int: ...
    def rms_s16(self, data: BytesLike, /) -> float: ...
    def peak_f32(self, data: BytesLike, /) -> float: ...
    def rms_f32(self, data: BytesLike, /) -> float: ...
    def mix_s16(self, buffers: Sequence[BytesLike], /) -> bytes: ...
    def mix_f32(self, buffers: Sequence[BytesLike], /) -> bytes: ...
    def stereo_to_mono_s16(self, data: BytesLike, /) -> bytes: ...
    def stereo_to_mono_f32(self, data: BytesLike, /) -> bytes: ...
    def mono_to_stereo_s16(self, data: BytesLike, /) -> bytes: ...
    def mono_to_stereo_f32(self, data: BytesLike, /) -> bytes: ...


# The implementation is looked up as a module global at each call, so the tests
# can run one test class against each (tests/dsp/test_pcm.py).

_impl: _Backend
IMPLEMENTATION: str
_impl, IMPLEMENTATION = load_backend("pcm")


def _samples(data: BytesLike, size: int, func: str, unit: str = "sample") -> BytesLike:
    """``data`` as a contiguous byte buffer, checked to hold whole samples of ``size`` bytes.

    ``unit`` names what ``size`` bytes are in the error message ("frame" for
    interleaved stereo). vbgraph.dsp.g711 and vbgraph.dsp.ring use it too.
    """
    if type(data) is bytes or type(data) is bytearray:  # the hot path: no view needed
        nbytes = len(data)
    else:
        try:
            view = memoryview(data)
        except TypeError:
            raise UsageError(
                f"{func}: expected bytes, bytearray or memoryview, got {type(data).__name__}"
            ) from None
        if not view.c_contiguous:
            raise AudioFormatError(f"{func}: the buffer is not contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        data = view
        nbytes = view.nbytes
    if nbytes % size:
        raise AudioFormatError(
            f"{func}: buffer length {nbytes} bytes is not a whole number of {size}-byte {unit}s"
        )
    return data


def _mix_inputs(buffers: Sequence[BytesLike], size: int, func: str) -> Sequence[BytesLike]:
    """The buffers to mix, each checked by :func:`_samples`, at least one, all of one length."""
    if (type(buffers) is list or type(buffers) is tuple) and 0 < len(buffers) <= MIX_MAX_STREAMS:
        # The hot path: a few bytes objects of one valid length, passed on as they are.
        # The general path below costs about 0.7 us for two buffers, three times the mixing.
        first = buffers[0]
        if type(first) is bytes and not len(first) % size:
            nbytes = len(first)
            for data in buffers:
                if type(data) is not bytes or len(data) != nbytes:
                    break
            else:
                return buffers
    if type(buffers) is not list and type(buffers) is not tuple:
        try:
            memoryview(buffers)  # type: ignore[arg-type]
        except TypeError:
            pass
        else:
            raise UsageError(
                f"{func}: expected a sequence of buffers, got one {type(buffers).__name__}"
            )
        try:
            buffers = list(buffers)
        except TypeError:
            raise UsageError(
                f"{func}: expected a sequence of buffers, got {type(buffers).__name__}"
            ) from None
    if not buffers:
        raise UsageError(f"{func}: needs at least one buffer")
    if len(buffers) > MIX_MAX_STREAMS:
        raise UsageError(f"{func}: at most {MIX_MAX_STREAMS} buffers, got {len(buffers)}")
    checked = [_samples(data, size, func) for data in buffers]
    lengths = [len(data) for data in checked]  # bytes: _samples gives byte buffers
    for index, length in enumerate(lengths):
        if length != lengths[0]:
            raise AudioFormatError(
                f"{func}: buffer {index} is {length} bytes long, buffer 0 is {lengths[0]}"
            )
    return checked


def _checked_gain(gain: float, func: str) -> float:
    if not math.isfinite(gain) or abs(gain) > _FLT_MAX:
        raise UsageError(f"{func}: gain must be a finite float32 value, got {gain!r}")
    return gain


def s16_to_f32(data: BytesLike) -> bytes:
    """Convert int16 samples to float32 in ``[-1.0, 1.0)`` (divide by 32768).

    Exact and lossless: :func:`f32_to_s16` gives the input back.
    """
    return _impl.s16_to_f32(_samples(data, _S16_BYTES, "s16_to_f32"))


def f32_to_s16(data: BytesLike) -> bytes:
    """Convert float32 samples to int16: scale by 32768, saturate, round half to even.

    Values at or beyond full scale saturate (``1.0 -> 32767``,
    ``-1.0 -> -32768``), infinities too; NaN becomes 0.
    """
    return _impl.f32_to_s16(_samples(data, _F32_BYTES, "f32_to_s16"))


def gain_s16(data: BytesLike, gain: float) -> bytes:
    """Multiply int16 samples by ``gain``, saturating and rounding half to even.

    ``gain`` is a linear factor (see :func:`db_to_gain`); it may be negative but
    must be finite. A gain of exactly 1.0 on a ``bytes`` input returns that same
    object (passthrough, no copy); other inputs get a ``bytes`` copy.
    """
    buf = _samples(data, _S16_BYTES, "gain_s16")
    if _checked_gain(gain, "gain_s16") == 1.0:
        return data if type(data) is bytes else bytes(buf)
    return _impl.gain_s16(buf, gain)


def gain_f32(data: BytesLike, gain: float) -> bytes:
    """Multiply float32 samples by ``gain`` in float32, without clipping.

    A gain of exactly 1.0 on a ``bytes`` input returns that same object
    (passthrough). Computing it would give the same values, except that a
    signalling NaN would come back quiet: the passthrough keeps every bit.
    """
    buf = _samples(data, _F32_BYTES, "gain_f32")
    if _checked_gain(gain, "gain_f32") == 1.0:
        return data if type(data) is bytes else bytes(buf)
    return _impl.gain_f32(buf, gain)


def peak_s16(data: BytesLike) -> int:
    """The largest absolute int16 sample value, 0..32768 (0 for an empty buffer)."""
    return _impl.peak_s16(_samples(data, _S16_BYTES, "peak_s16"))


def rms_s16(data: BytesLike) -> float:
    """Root mean square of int16 samples, in sample units (0.0 for an empty buffer).

    Divide by 32768 for a fraction of full scale; ``20 * log10`` of that is dBFS.
    """
    return _impl.rms_s16(_samples(data, _S16_BYTES, "rms_s16"))


def peak_f32(data: BytesLike) -> float:
    """The largest absolute float32 sample value (0.0 for an empty buffer).

    1.0 is full scale; values above it are reported as they are, infinity too.
    NaN samples count as 0, as :func:`f32_to_s16` converts them.
    """
    return _impl.peak_f32(_samples(data, _F32_BYTES, "peak_f32"))


def rms_f32(data: BytesLike) -> float:
    """Root mean square of float32 samples, 1.0 being full scale (0.0 for an empty buffer).

    Computed in double precision; NaN samples count as 0. ``20 * log10`` of the
    result is dBFS (a full-scale square wave gives 1.0, a full-scale sine about
    0.707).
    """
    return _impl.rms_f32(_samples(data, _F32_BYTES, "rms_f32"))


def mix_s16(buffers: Sequence[BytesLike]) -> bytes:
    """Add int16 streams of equal length sample by sample, saturating the sum.

    The sum is exact, then clipped once to ``[-32768, 32767]``: two streams at
    20000 give 32767, and 30000 + 30000 - 30000 gives 30000 (no clipping of
    partial sums). To mix at other levels, scale the inputs first with
    :func:`gain_s16`, or mix float32 (:func:`mix_f32`), which keeps headroom.
    One buffer is returned as it is when it is ``bytes`` (passthrough), else
    copied to ``bytes``. Raises :class:`AudioFormatError` if the lengths differ
    and :class:`UsageError` for no buffers or more than
    :data:`MIX_MAX_STREAMS`.
    """
    checked = _mix_inputs(buffers, _S16_BYTES, "mix_s16")
    if len(checked) == 1:
        first = checked[0]
        return first if type(first) is bytes else bytes(first)
    return _impl.mix_s16(checked)


def mix_f32(buffers: Sequence[BytesLike]) -> bytes:
    """Add float32 streams of equal length sample by sample, without clipping.

    The sum is computed left to right in float32 (the order matters in the last
    bit, and is fixed). The result may exceed full scale; :func:`f32_to_s16`
    saturates it when converting back. One ``bytes`` buffer is returned as it
    is. Errors as for :func:`mix_s16`.
    """
    checked = _mix_inputs(buffers, _F32_BYTES, "mix_f32")
    if len(checked) == 1:
        first = checked[0]
        return first if type(first) is bytes else bytes(first)
    return _impl.mix_f32(checked)


def stereo_to_mono_s16(data: BytesLike) -> bytes:
    """Down-mix interleaved int16 stereo to mono: ``(L + R) / 2``, rounded half to even.

    The average cannot overflow, so nothing saturates: ``(32767, 32767)``
    gives 32767 and ``(1, 2)`` gives 2. The buffer must hold whole 4-byte
    frames.
    """
    return _impl.stereo_to_mono_s16(_samples(data, 2 * _S16_BYTES, "stereo_to_mono_s16", "frame"))


def stereo_to_mono_f32(data: BytesLike) -> bytes:
    """Down-mix interleaved float32 stereo to mono: ``(L + R) * 0.5`` in float32.

    The buffer must hold whole 8-byte frames.
    """
    return _impl.stereo_to_mono_f32(_samples(data, 2 * _F32_BYTES, "stereo_to_mono_f32", "frame"))


def mono_to_stereo_s16(data: BytesLike) -> bytes:
    """Up-mix int16 mono to interleaved stereo, the same sample in both channels."""
    return _impl.mono_to_stereo_s16(_samples(data, _S16_BYTES, "mono_to_stereo_s16"))


def mono_to_stereo_f32(data: BytesLike) -> bytes:
    """Up-mix float32 mono to interleaved stereo, each sample copied bit for bit."""
    return _impl.mono_to_stereo_f32(_samples(data, _F32_BYTES, "mono_to_stereo_f32"))


def db_to_gain(db: float) -> float:
    """The linear gain for ``db`` decibels: ``10 ** (db / 20)``.

    ``0.0`` gives exactly 1.0 (so :func:`gain_s16` passes through), ``-inf``
    gives 0.0 (mute), ``-6.0`` about 0.501.
    """
    return float(10.0 ** (db / 20.0))
