"""The ``convert.resample`` node: sample-rate conversion with soxr."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt
import soxr
from pydantic import Field

from ..errors import AudioFormatError
from ..formats import AudioFormat, pts_ns
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._arrays import buffer_of, dtype_of, samples_of
from ._params import typed
from ._ports import pcm_in

__all__ = ["ConvertResample"]

_SOXR_QUALITY: Final = {"low": "LQ", "medium": "MQ", "high": "HQ", "vhq": "VHQ"}


@register
class ConvertResample(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          r: {type: convert.resample, rate: 48000}
          b: {type: log}
        edges: [a -> r -> b]

    Converts linear PCM (int16 or float32, any channel count) to ``rate`` Hz
    with a streaming `soxr <https://github.com/dofuuz/python-soxr>`_ resampler,
    one per node instance, created on the first frame in that frame's format.
    Negotiation inserts it where a consumer wants another rate.

    *Length.* soxr holds back some input as filter history and releases it
    when the input ends (``on_end`` flushes the tail), so the whole stream of
    ``n`` input samples gives ``round(n * rate / in_rate)`` output samples
    (halves round up), exactly what one-shot resampling gives. While the
    stream runs, output lags input by the filter delay; the first frames may
    produce nothing.

    *Time.* Output ``pts`` count output samples from the first input frame's
    ``pts``: soxr aligns its output with the input's start, so output sample
    ``k`` is at ``t0 + k / rate`` however the chunks fall, with no drift.

    *Interruption.* ``on_interrupt`` clears the filter history (no audio of the
    old turn leaks into the new one) and re-anchors ``pts`` at the next frame.

    *Numerics.* float32 output does not depend on how the input is chunked,
    bit for bit. int16 output carries soxr's dither of about 1 LSB (silence
    in gives samples of -1, 0 and 1 out), so two chunkings of the same stream
    agree within 2 LSB; use float32 where exact zeros matter.

    ``quality`` is soxr's preset: ``low``, ``medium``, ``high`` (default) or
    ``vhq``; higher costs CPU and delay. A frame already at ``rate`` passes on
    as the same object.
    """

    type_name: ClassVar[str] = "convert.resample"

    class Params(NodeParams):
        """Parameters of ``convert.resample``."""

        rate: int = Field(gt=0, le=768_000, description="The sample rate to convert to, in Hz.")
        quality: Literal["low", "medium", "high", "vhq"] = Field(
            "high", description="soxr quality preset: low, medium, high or vhq (very high)."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": pcm_in("Linear PCM audio.")}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The resampled audio.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, ConvertResample.Params)
        self._rate = p.rate
        self._quality = _SOXR_QUALITY[p.quality]
        self._stream: soxr.ResampleStream | None = None
        self._in_fmt: AudioFormat | None = None
        self._out_fmt: AudioFormat | None = None
        self._t0: int | None = None  # pts of the first input frame since start/interrupt
        self._sent = 0  # output sample frames emitted since then
        self._epoch = 0

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format at the new rate."""
        fmt = inputs.get("in")
        if fmt is None:
            return {}
        return {"out": fmt.replace(rate=typed(params, cls.Params).rate)}

    @classmethod
    def latency_ns(cls, params: NodeParams) -> int:
        """0 for now: see the comment."""
        # soxr's delay depends on the input rate and quality, which this class
        # method does not see, and soxr only reports it from a live stream
        # (``ResampleStream.delay()``). The compiled resampler (csrc/, a later
        # issue) answers ``latency()`` from its filter length and will report
        # the exact figure here.
        return 0

    def process(self, port: str, frame: Frame) -> None:
        """Resample one frame; emits whatever output soxr has ready (maybe nothing)."""
        if type(frame) is not AudioFrame:
            self.emit("out", frame)
            return
        fmt = frame.fmt
        if fmt.rate == self._rate:
            self.emit("out", frame)
            return
        stream = self._stream
        if stream is None:
            stream = self._open(fmt)
        elif fmt != self._in_fmt:
            raise AudioFormatError(
                f"convert.resample '{self.id}': frame in {fmt} after frames in {self._in_fmt}"
            )
        if self._t0 is None:
            self._t0 = frame.pts
        self._epoch = frame.epoch
        if frame.data:
            self._send(stream.resample_chunk(_soxr_input(samples_of(frame))))

    def on_end(self) -> None:
        """Flush soxr's tail (the samples it held back as history)."""
        stream, self._stream = self._stream, None
        if stream is not None and self._t0 is not None:
            assert self._in_fmt is not None
            empty = np.zeros((0, self._in_fmt.channels), dtype=dtype_of(self._in_fmt))
            self._send(stream.resample_chunk(_soxr_input(empty), last=True))

    def on_interrupt(self, epoch: int) -> None:
        """Drop the filter history and re-anchor ``pts`` at the next frame."""
        if self._stream is not None:
            self._stream.clear()
        self._t0 = None
        self._sent = 0

    def _open(self, fmt: AudioFormat) -> soxr.ResampleStream:
        dtype = dtype_of(fmt)
        self._stream = soxr.ResampleStream(
            fmt.rate, self._rate, fmt.channels, dtype=dtype.name, quality=self._quality
        )
        self._in_fmt = fmt
        self._out_fmt = fmt.replace(rate=self._rate)
        return self._stream

    def _send(self, out: npt.NDArray[np.generic]) -> None:
        count = out.shape[0]
        if not count:
            return
        assert self._out_fmt is not None and self._t0 is not None
        pts = pts_ns(self._sent, self._rate, self._t0)
        self._sent += count
        # Zero-copy: soxr returns a fresh array that nothing else holds.
        self.emit("out", AudioFrame(buffer_of(out), self._out_fmt, pts=pts, epoch=self._epoch))


def _soxr_input(samples: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """soxr takes mono as 1-D and several channels as ``(frames, channels)``."""
    return samples.reshape(-1) if samples.shape[1] == 1 else samples
