"""The ``convert.resample`` node: sample-rate conversion (compiled, or soxr)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from ..dsp.resample import Resampler
from ..errors import AudioFormatError
from ..formats import AudioFormat
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed
from ._ports import pcm_in
from ._resample_backends import ResampleBackend, open_backend, uses_compiled
from ._timeline import Timeline

__all__ = ["ConvertResample"]


@register
class ConvertResample(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          r: {type: convert.resample, rate: 48000}
          b: {type: log}
        edges: [a -> r -> b]

    Converts linear PCM (int16 or float32, any channel count) to ``rate`` Hz,
    one streaming resampler per node instance, created on the first frame in
    that frame's format. Negotiation inserts it where a consumer wants another
    rate.

    *Engine.* ``engine: auto`` (default) uses vbgraph's compiled polyphase
    resampler (:mod:`vbgraph.dsp.resample`) for every pair among 8, 16, 22.05,
    24, 32, 44.1 and 48 kHz at ``low``/``medium``/``high``: its delay is at
    most 2 ms at ``high`` (3.75 ms when one side is 8 kHz), every chunk yields
    its share of output at once, and output does not depend on chunking, bit
    for bit. Other pairs, ``quality: vhq`` and ``engine: soxr`` use a
    `soxr <https://github.com/dofuuz/python-soxr>`_ stream, which batches
    internally (its first chunks may produce nothing) and dithers int16 by
    about 1 LSB.

    *Length.* The engine holds back some input as filter history and releases
    it when the input ends (``on_end`` flushes the tail), so the whole stream
    of ``n`` input samples gives ``round(n * rate / in_rate)`` output samples
    (halves round up), exactly what one-shot resampling gives.

    *Time.* Output ``pts`` count output samples from the first input frame's
    ``pts``: both engines align output with the input's start, so output
    sample ``k`` is at ``t0 + k / rate`` however the chunks fall, with no drift.
    A gap in the input (a jump in ``pts``, e.g. silence between two replies)
    shifts the output by the same amount, so the gap is kept.

    *Interruption.* ``on_interrupt`` clears the filter history (no audio of the
    old turn leaks into the new one) and re-anchors ``pts`` at the next frame.

    ``quality``: ``low``, ``medium``, ``high`` (default) or ``vhq`` (soxr
    only); higher costs CPU and delay. A frame already at ``rate`` passes on
    as the same object.
    """

    type_name: ClassVar[str] = "convert.resample"

    class Params(NodeParams):
        """Parameters of ``convert.resample``."""

        rate: int = Field(gt=0, le=768_000, description="The sample rate to convert to, in Hz.")
        quality: Literal["low", "medium", "high", "vhq"] = Field(
            "high", description="Quality preset: low, medium, high or vhq (very high, soxr only)."
        )
        engine: Literal["auto", "vbgraph", "soxr"] = Field(
            "auto",
            description="auto: the compiled resampler where it supports the rates, else soxr; "
            "vbgraph: the compiled one (an unsupported pair is an error); soxr: always soxr.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": pcm_in("Linear PCM audio.")}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The resampled audio.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, ConvertResample.Params)
        self._rate = p.rate
        self._quality = p.quality
        self._engine = p.engine
        self._stream: ResampleBackend | None = None
        self._in_fmt: AudioFormat | None = None
        self._out_fmt: AudioFormat | None = None
        self._time: Timeline | None = None  # set by the first frame since start/interrupt
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
        p = typed(params, cls.Params)
        if p.engine == "vbgraph" and not uses_compiled(fmt.rate, p.rate, p.quality, "vbgraph"):
            raise AudioFormatError(
                f"engine 'vbgraph' does not resample {fmt.rate} -> {p.rate} Hz at quality "
                f"'{p.quality}'; use engine 'auto' or 'soxr'"
            )
        return {"out": fmt.replace(rate=p.rate)}

    @classmethod
    def latency_ns(cls, params: NodeParams, inputs: Mapping[str, AudioFormat] | None = None) -> int:
        """The compiled resampler's exact delay; 0 for soxr (it reports none up front)."""
        p = typed(params, cls.Params)
        fmt = (inputs or {}).get("in")
        if fmt is None or fmt.rate == p.rate:
            return 0
        if not uses_compiled(fmt.rate, p.rate, p.quality, p.engine):
            return 0
        resampler = Resampler(fmt.rate, p.rate, quality=p.quality)  # type: ignore[arg-type]
        return resampler.latency_ns

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
        if self._time is None:
            self._time = Timeline(frame.pts, fmt.rate)
        self._time.observe(frame.pts, frame.samples)
        self._epoch = frame.epoch
        if frame.data:
            self._send(stream.process(frame.data))

    def on_end(self) -> None:
        """Flush the engine's tail (the samples it held back as history)."""
        stream, self._stream = self._stream, None
        if stream is not None and self._time is not None:
            self._send(stream.flush())

    def on_interrupt(self, epoch: int) -> None:
        """Drop the filter history and re-anchor ``pts`` at the next frame."""
        if self._stream is not None:
            self._stream.reset()
        self._time = None
        self._sent = 0

    @property
    def engine(self) -> str | None:
        """Which engine runs (``vbgraph`` or ``soxr``), once the first frame arrived."""
        return None if self._stream is None else self._stream.name

    def _open(self, fmt: AudioFormat) -> ResampleBackend:
        self._stream = open_backend(fmt, self._rate, self._quality, self._engine)
        self._in_fmt = fmt
        self._out_fmt = fmt.replace(rate=self._rate)
        return self._stream

    def _send(self, out: bytes) -> None:
        assert self._out_fmt is not None and self._time is not None
        count = len(out) // self._out_fmt.frame_bytes
        if not count:
            return
        pts = self._time.out_pts(self._sent, self._rate)
        self._sent += count
        self.emit("out", AudioFrame(out, self._out_fmt, pts=pts, epoch=self._epoch))
