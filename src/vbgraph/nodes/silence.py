"""The ``silence`` node: digital silence of a given format and length."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..formats import AudioFormat
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._generator import GeneratorParams, PacedOutput, generate
from ._params import typed

__all__ = ["Silence"]


@register
class Silence(Node):
    """Example launch line::

        nodes:
          a: {type: silence, duration_ms: 500}
          b: {type: file.sink, path: gap.wav}
        edges: [a -> b]

    All-zero audio for ``duration_ms``: a gap to splice between clips, or a
    stand-in microphone that is always quiet. For a test signal use ``tone``.
    Every full-size chunk is the same immutable ``bytes`` object, so a long
    stretch of silence allocates one buffer.
    """

    type_name: ClassVar[str] = "silence"

    class Params(GeneratorParams):
        """Parameters of ``silence`` (the generator's: format, length, pacing)."""

    params: Params
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The silence.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Silence.Params)
        self._fmt = p.format
        self._chunk = bytes(p.chunk_samples * self._fmt.frame_bytes)

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Frames of ``chunk_ms`` (the last may be shorter)."""
        return {"out": typed(params, cls.Params).chunk_ms}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The format given by ``rate``, ``channels`` and ``encoding``."""
        return {"out": typed(params, cls.Params).format}

    def render(self, start: int, count: int) -> bytes:
        """``count`` samples of zeros (0 and +0.0 are both all-zero bytes)."""
        nbytes = count * self._fmt.frame_bytes
        return self._chunk if nbytes == len(self._chunk) else bytes(nbytes)

    async def run(self) -> None:
        """Emit the silence chunk by chunk."""
        p = self.params
        out = PacedOutput(self, "out", self._fmt, realtime=p.realtime)
        await generate(out, p.total_samples, p.chunk_samples, self.render)
