"""The emit loop shared by the audio sources (``file.source``, ``tone``, ``silence``).

Not public API. Two pieces, held by the nodes rather than inherited:

* :class:`PacedOutput` stamps, emits and paces chunks on one output port. Each
  chunk's ``pts`` comes from the integer count of samples sent before it
  (:func:`~vbgraph.formats.pts_ns`), so an hour of audio ends at exactly one
  hour whatever the chunk size. After each emit it waits for room downstream
  (``ctx.drain()``: a ``block`` queue paces the source) and, when real-time,
  until the session clock reaches the next chunk's ``pts``: chunk ``k`` is never
  emitted before its own ``pts``, and the stream ends when its audio would have
  finished playing.
* :func:`generate` renders a stream of ``total`` samples chunk by chunk from a
  function of the absolute sample index, which is what keeps generated signals
  phase-continuous across chunks without accumulating anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from ..formats import AudioFormat, Encoding, pts_ns
from ..frames import AudioFrame
from ..node import Node, NodeParams
from ..typing import BytesLike

__all__ = ["GeneratorParams", "PacedOutput", "Render", "generate"]

Render = Callable[[int, int], BytesLike]
"""``render(start, count)``: the bytes of samples ``start .. start + count - 1``."""


class PacedOutput:
    """Emits audio chunks on ``port`` of ``node`` with exact ``pts`` and pacing."""

    __slots__ = ("_node", "fmt", "port", "realtime", "samples")

    def __init__(self, node: Node, port: str, fmt: AudioFormat, *, realtime: bool) -> None:
        self._node = node
        self.port = port
        self.fmt = fmt
        self.realtime = realtime
        self.samples = 0
        """Sample frames sent so far (the next chunk starts here)."""

    async def send(self, data: BytesLike) -> None:
        """Emit one chunk of whole sample frames, then wait for room (and its end if real-time)."""
        node = self._node
        fmt = self.fmt
        start = self.samples
        self.samples = start + fmt.samples_in(len(data))
        ctx = node.ctx
        node.emit(self.port, AudioFrame(data, fmt, pts=pts_ns(start, fmt.rate), epoch=ctx.epoch))
        await ctx.drain()
        if self.realtime:
            await ctx.clock.sleep_until_ns(pts_ns(self.samples, fmt.rate))


async def generate(out: PacedOutput, total: int, chunk: int, render: Render) -> None:
    """Send ``total`` samples in chunks of ``chunk`` (the last may be short) from ``render``."""
    start = 0
    while start < total:
        count = min(chunk, total - start)
        await out.send(render(start, count))
        start += count


class GeneratorParams(NodeParams):
    """The params every signal generator has: the format, length and pacing of its output."""

    rate: int = Field(16000, gt=0, le=768_000, description="Sample rate in Hz.")
    channels: int = Field(
        1, ge=1, le=32, description="Channel count; every channel carries the same signal."
    )
    encoding: Literal["pcm_s16le", "pcm_f32le"] = Field(
        "pcm_s16le", description="Sample encoding: 16-bit integer or 32-bit float."
    )
    duration_ms: float = Field(
        1000,
        ge=0,
        allow_inf_nan=False,
        description="Length of the signal in ms (rounded down to whole samples).",
    )
    chunk_ms: float = Field(
        20,
        gt=0,
        allow_inf_nan=False,
        description="Length of each frame in ms (rounded down to whole samples).",
    )
    realtime: bool = Field(
        False,
        description="Pace frames at real time on the session clock: a frame is emitted "
        "no earlier than its pts. Off, frames go out as fast as downstream takes them.",
    )

    @model_validator(mode="after")
    def _chunk_holds_a_sample(self) -> GeneratorParams:
        if self.format.samples_for_ms(self.chunk_ms) < 1:
            raise ValueError(f"chunk_ms={self.chunk_ms} is less than one sample at {self.rate} Hz")
        return self

    @property
    def format(self) -> AudioFormat:
        """The format of the generated frames."""
        return AudioFormat(self.rate, self.channels, Encoding(self.encoding))

    @property
    def total_samples(self) -> int:
        """Sample frames in the whole signal."""
        return self.format.samples_for_ms(self.duration_ms)

    @property
    def chunk_samples(self) -> int:
        """Sample frames per emitted frame (the last frame may hold fewer)."""
        return self.format.samples_for_ms(self.chunk_ms)
