"""The ``convert.rechunk`` node: audio in any chunk sizes out as exact N-ms frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from ..dsp.ring import Rechunker
from ..errors import AudioFormatError
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed
from ._timeline import Timeline

__all__ = ["ConvertRechunk"]

# The byte that encodes silence, for padding the last frame.
_SILENCE = {Encoding.MULAW: b"\xff", Encoding.ALAW: b"\xd5"}


@register
class ConvertRechunk(Node):
    """Example launch line::

        nodes:
          a: {type: file.source, path: speech.wav, chunk_ms: 37}
          r: {type: convert.rechunk, chunk_ms: 20}
          b: {type: log}
        edges: [a -> r -> b]

    Turns audio arriving in chunks of any size (a TTS stream's bursts, a file
    read in odd blocks) into frames of exactly ``chunk_ms`` each, as transports
    and frame-based models (VAD) need. It holds at most one partial frame; the
    compiled rechunker (:mod:`vbgraph.dsp.ring`) hands out views of the input
    without copying where a frame lies inside one input chunk.

    Output ``pts`` come from the count of output samples since the first input
    frame (no drift); a gap in the input's ``pts`` is kept in the output. At
    the end of the stream the last partial frame is emitted as it is, or
    padded with silence to a full frame with ``pad_last: true``. An
    interruption drops the partial frame and re-anchors ``pts`` at the next
    input.
    """

    type_name: ClassVar[str] = "convert.rechunk"

    class Params(NodeParams):
        """Parameters of ``convert.rechunk``."""

        chunk_ms: float = Field(
            gt=0, le=10_000, allow_inf_nan=False, description="Length of every output frame in ms."
        )
        pad_last: bool = Field(
            False, description="Pad the last partial frame with silence to a full frame."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(encodings=("pcm_s16le", "pcm_f32le", "mulaw", "alaw"), doc="Audio.")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(same_as="in", doc="The same audio in frames of exactly chunk_ms.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._p = typed(params, ConvertRechunk.Params)
        self._fmt: AudioFormat | None = None
        self._rechunker: Rechunker | None = None
        self._samples = 0  # samples per output frame
        self._time: Timeline | None = None
        self._sent = 0  # output frames since the first input
        self._epoch = 0

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Every frame but maybe the last is ``chunk_ms`` long."""
        return {"out": typed(params, cls.Params).chunk_ms}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format; refuses a chunk shorter than one sample."""
        fmt = inputs.get("in")
        if fmt is None:
            return {}
        if fmt.samples_for_ms(typed(params, cls.Params).chunk_ms) < 1:
            raise AudioFormatError(f"chunk_ms is less than one sample at {fmt.rate} Hz")
        return {"out": fmt}

    def process(self, port: str, frame: Frame) -> None:
        """Emit every frame the new data completes."""
        if type(frame) is not AudioFrame:
            self.emit("out", frame)
            return
        rechunker = self._rechunker
        if rechunker is None or frame.fmt != self._fmt:
            rechunker = self._open(frame.fmt)
        if self._time is None:
            self._time = Timeline(frame.pts, frame.fmt.rate)
            self._sent = 0
        self._time.observe(frame.pts, frame.samples)
        self._epoch = frame.epoch
        for chunk in rechunker.push(frame.data):
            self._send(chunk)

    def on_end(self) -> None:
        """Emit the last partial frame (padded with silence if ``pad_last``)."""
        rechunker = self._rechunker
        if rechunker is None or self._fmt is None:
            return
        rest = rechunker.flush(pad=False)
        if not rest:
            return
        if self._p.pad_last:
            full = self._samples * self._fmt.frame_bytes
            rest = rest + _SILENCE.get(self._fmt.encoding, b"\x00") * (full - len(rest))
        self._send(rest)

    def on_interrupt(self, epoch: int) -> None:
        """Drop the partial frame; the next input re-anchors ``pts``."""
        if self._rechunker is not None:
            self._rechunker.reset()
        self._time = None

    def _open(self, fmt: AudioFormat) -> Rechunker:
        if self._rechunker is not None and self._rechunker.pending:
            raise AudioFormatError(
                f"convert.rechunk '{self.id}': format changed from {self._fmt} to {fmt} "
                "in the middle of a frame"
            )
        self._fmt = fmt
        self._samples = fmt.samples_for_ms(self._p.chunk_ms)
        self._rechunker = Rechunker(self._samples * fmt.frame_bytes)
        return self._rechunker

    def _send(self, data: memoryview | bytes) -> None:
        fmt = self._fmt
        assert fmt is not None and self._time is not None
        pts = self._time.out_pts(self._sent * self._samples, fmt.rate)
        self._sent += 1
        self.emit("out", AudioFrame(data, fmt, pts=pts, epoch=self._epoch))
