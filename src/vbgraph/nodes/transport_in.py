"""The ``transport.in`` node: the caller's audio, from whatever transport connected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from ..dsp.convert import FormatConverter
from ..formats import AudioFormat, pts_ns
from ..frames import AudioFrame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..transports.link import CallLink
from ..transports.names import TRANSPORTS, TransportName
from ._link import require_link
from ._params import typed

__all__ = ["TransportIn"]


@register
class TransportIn(Node):
    """Example launch line::

        nodes:
          caller: {type: transport.in, sample_rate: 16000, transports: [websocket, twilio]}
          echo: {type: gain, db: -6}
          speaker: {type: transport.out}
        edges: [caller -> echo -> speaker]

    The caller's audio as the graph wants it (serve the graph with
    ``vbgraph serve GRAPH.yaml``). The server exposes the
    graph on every transport listed in ``transports`` and makes a session per
    connection; whatever arrives (μ-law 8 kHz from a phone, Opus from a
    browser, PCM from a WebSocket client) leaves here as int16 mono at
    ``sample_rate``, converted by the compiled kernels. ``pts`` count samples
    from the start of the call. The node ends when the caller hangs up.
    What the caller does besides speaking (a DTMF key on a phone) is published
    on the bus (``DtmfPressed``), in order with the audio.

    Run without a server (``vbgraph run``) it fails at start with an error
    that says so; tests attach a :class:`~vbgraph.transports.link.CallLink`.
    """

    type_name: ClassVar[str] = "transport.in"

    class Params(NodeParams):
        """Parameters of ``transport.in``."""

        sample_rate: Literal[8000, 16000, 24000, 48000] = Field(
            16000, description="Rate of the audio the graph gets (int16 mono)."
        )
        transports: list[TransportName] = Field(
            default_factory=lambda: list(TRANSPORTS),
            min_length=1,
            description="Transports `vbgraph serve` exposes this graph on.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {}
    outputs: ClassVar[Mapping[str, Port]] = {
        "audio": audio_port(doc="The caller's audio, int16 mono at sample_rate.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._fmt = AudioFormat(typed(params, TransportIn.Params).sample_rate)
        self._link: CallLink | None = None
        self._converter: FormatConverter | None = None
        self._samples = 0

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """int16 mono at ``sample_rate``."""
        return {"audio": AudioFormat(typed(params, cls.Params).sample_rate)}

    @property
    def link(self) -> CallLink | None:
        """The caller's link (after start)."""
        return self._link

    def start(self) -> None:
        """Find the caller; fails with a clear error when nobody is attached."""
        self._link = require_link(self.ctx, self.type_name)
        self._converter = FormatConverter(self._link.caller_format, self._fmt)

    async def run(self) -> None:
        """Receive the caller's audio until they hang up."""
        link, conv = self._link, self._converter
        assert link is not None and conv is not None
        ctx = self.ctx
        while (item := await link.receive()) is not None:
            if isinstance(item, bytes):
                self._emit(bytes(conv.process(item)))
                await ctx.drain()
            else:
                ctx.publish(item)  # a caller event (a DTMF key), in order with the audio
        self._emit(conv.flush())

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        fmt = self._fmt
        pts = pts_ns(self._samples, fmt.rate)
        self._samples += len(data) // fmt.frame_bytes
        self.emit("audio", AudioFrame(data, fmt, pts=pts, epoch=self.ctx.epoch))
