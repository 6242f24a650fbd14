"""A streaming format converter: any of our audio formats to any other, in one object.

Transports use it between the wire (μ-law 8 kHz from a phone, 48 kHz from a
browser, whatever a WebSocket client declared) and the graph's own format.
It chains the compiled kernels: decode G.711 or float to int16, fold or
spread channels, resample, encode. Every stage that has nothing to do is
left out, so a converter between equal formats returns its input unchanged
(the same object, for ``bytes``).

Rates are those of :class:`~vbgraph.dsp.resample.Resampler`
(``SUPPORTED_RATES``); soxr covers others in the ``convert.resample`` node.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import AudioFormatError
from ..formats import AudioFormat, Encoding
from ..typing import BytesLike
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .pcm import f32_to_s16, mono_to_stereo_s16, s16_to_f32, stereo_to_mono_s16
from .resample import Resampler

__all__ = ["FormatConverter"]

_Stage = Callable[[BytesLike], BytesLike]

_DECODE: dict[Encoding, _Stage] = {
    Encoding.MULAW: ulaw_decode,
    Encoding.ALAW: alaw_decode,
    Encoding.PCM_F32LE: f32_to_s16,
}
_ENCODE: dict[Encoding, _Stage] = {
    Encoding.MULAW: ulaw_encode,
    Encoding.ALAW: alaw_encode,
    Encoding.PCM_F32LE: s16_to_f32,
}


class FormatConverter:
    """Convert a stream from ``src`` to ``dst`` (mono or stereo; any of our encodings).

    Call :meth:`process` as audio arrives, :meth:`flush` at the end of the
    stream, :meth:`reset` to drop held samples (an interruption). Holds state
    only in its resampler. Not thread-safe.
    """

    __slots__ = ("_resampler", "_stages", "dst", "src")

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        for fmt in (src, dst):
            if fmt.channels > 2:
                raise AudioFormatError(f"FormatConverter: {fmt} has more than 2 channels")
        self.src = src
        self.dst = dst
        self._resampler: Resampler | None = None
        stages: list[_Stage] = []
        if src == dst:
            self._stages: tuple[_Stage, ...] = ()
            return
        if src.encoding in _DECODE:
            stages.append(_DECODE[src.encoding])
        if src.channels == 2 and dst.channels == 1:
            stages.append(stereo_to_mono_s16)
        if src.rate != dst.rate:
            self._resampler = Resampler(
                src.rate, dst.rate, channels=min(src.channels, dst.channels)
            )
            stages.append(self._resampler.process)
        if src.channels == 1 and dst.channels == 2:
            stages.append(mono_to_stereo_s16)
        if dst.encoding in _ENCODE:
            stages.append(_ENCODE[dst.encoding])
        self._stages = tuple(stages)

    @property
    def passthrough(self) -> bool:
        """True when source and destination formats are equal (nothing is done)."""
        return not self._stages

    def process(self, data: BytesLike) -> BytesLike:
        """Convert the next piece of the stream (whole sample frames of ``src``)."""
        if len(memoryview(data)) % self.src.frame_bytes:
            raise AudioFormatError(
                f"FormatConverter: {len(memoryview(data))} bytes is not a whole number of "
                f"{self.src} sample frames"
            )
        for stage in self._stages:
            data = stage(data)
        return data

    def flush(self) -> bytes:
        """The resampler's tail at the end of the stream, in ``dst`` (maybe empty)."""
        if self._resampler is None:
            return b""
        tail: BytesLike = self._resampler.flush()
        after = False
        for stage in self._stages:
            if after:
                tail = stage(tail)
            elif stage == self._resampler.process:
                after = True
        return bytes(tail)

    def reset(self) -> None:
        """Drop samples held for the next call (after an interruption)."""
        if self._resampler is not None:
            self._resampler.reset()
