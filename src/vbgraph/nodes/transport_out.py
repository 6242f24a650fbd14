"""The ``transport.out`` node: the bot's audio to the caller, paced at real time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from ..dsp.convert import FormatConverter
from ..events import BargeInCancelled, BargeInStarted, Event
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..transports.link import CallLink
from ._link import require_link
from ._params import typed
from ._playout import Playout, PlayoutStatistics

__all__ = ["TransportOut"]


@register
class TransportOut(Node):
    """Example launch line::

        nodes:
          caller: {type: transport.in}
          echo: {type: gain, db: -6}
          speaker: {type: transport.out, chunk_ms: 20}
        edges: [caller -> echo -> speaker]

    Plays the bot's audio to the caller. Audio arrives in bursts (TTS runs
    faster than real time) and goes into a bounded playout buffer; it leaves
    in chunks of exactly ``chunk_ms`` at real time, without gaps while the
    buffer holds audio, converted to the wire's format (μ-law 8 kHz for a
    phone ...). It behaves like ``audio.playout`` (same events, pause on
    barge-in, ``played()``), so do not put one in front of it.

    On an interruption the buffer is cleared at once and the far end is told
    to drop what it still holds (Twilio ``clear``, the WebSocket protocol's
    ``clear`` message). At the end of each utterance a mark asks the far end
    to report when it has been played, where the wire supports that.
    """

    type_name: ClassVar[str] = "transport.out"
    interruptible: ClassVar[bool] = True
    subscribes: ClassVar[tuple[type[Event], ...]] = (BargeInStarted, BargeInCancelled)

    class Params(NodeParams):
        """Parameters of ``transport.out``."""

        chunk_ms: float = Field(
            20, gt=0, le=200, allow_inf_nan=False, description="Length of every packet sent."
        )
        max_buffer_ms: float = Field(
            10_000,
            gt=0,
            le=600_000,
            allow_inf_nan=False,
            description="Most bot audio held ahead of playback (bounds memory; adds no latency).",
        )
        overflow: Literal["block", "drop_oldest"] = Field(
            "block", description="When the buffer is full: pace the producer, or drop (counted)."
        )
        lead_ms: float = Field(
            100,
            ge=0,
            le=1000,
            allow_inf_nan=False,
            description="Send up to this far ahead of real time (the far end's jitter buffer "
            "holds it; an interruption clears it there too). Keeps a live, real-time producer "
            "from accumulating delay; 0: exactly real time.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(
            rates=(8000, 16000, 24000, 48000),
            channels=(1,),
            encodings=("pcm_s16le",),
            doc="The bot's audio, in chunks of any size.",
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, TransportOut.Params)
        self._playout = Playout(
            f"transport.out '{node_id}'",
            ctx,
            self._deliver,
            chunk_ms=p.chunk_ms,
            max_buffer_ms=p.max_buffer_ms,
            overflow=p.overflow,
            on_drained=self._drained,
            lead_ms=p.lead_ms,
        )
        self._link: CallLink | None = None
        self._converter: FormatConverter | None = None
        self._utterances = 0

    @property
    def link(self) -> CallLink | None:
        """The caller's link (after start)."""
        return self._link

    def played(self, epoch: int | None = None) -> int:
        """Sample frames of bot audio sent in ``epoch`` (default: the current one)."""
        return self._playout.played(epoch)

    def statistics(self) -> PlayoutStatistics:
        """The playout buffer's counters (the link has its own ``statistics()``)."""
        return self._playout.statistics()

    def start(self) -> None:
        """Find the caller and start the playout clock."""
        self._link = require_link(self.ctx, self.type_name)
        self._playout.fill_silence = self._link.continuous
        self._playout.start()

    async def process(self, port: str, frame: Frame) -> None:
        """Convert the bot's audio to the wire format and buffer it for playout.

        Converting before the buffer (not per packet) keeps every packet
        exactly ``chunk_ms`` of wire audio, whatever the resampler holds back.
        Waits for room when the buffer is full (``overflow: block``).
        """
        if type(frame) is not AudioFrame:
            return
        link = self._link
        assert link is not None
        conv = self._converter
        if conv is None or conv.src != frame.fmt:
            conv = self._converter = FormatConverter(frame.fmt, link.bot_format)
        data = conv.process(frame.data)
        if len(data):
            await self._playout.write(frame.with_data(data, link.bot_format))

    async def run(self) -> None:
        """The playout clock."""
        await self._playout.run()

    async def on_end(self) -> None:
        """Play out what is buffered, the converter's tail included."""
        link, conv = self._link, self._converter
        if link is not None and conv is not None:
            tail = conv.flush()
            if tail:
                await self._playout.write(AudioFrame(tail, link.bot_format, epoch=self.ctx.epoch))
        await self._playout.finish()

    def on_event(self, event: Event) -> None:
        """Barge-in pauses the bot; a false one resumes it."""
        self._playout.on_event(event)

    def on_interrupt(self, epoch: int) -> None:
        """Drop buffered audio here and at the far end."""
        self._playout.clear()
        if self._converter is not None:
            self._converter.reset()
        if self._link is not None:
            self._link.clear(epoch)

    def _deliver(self, frame: AudioFrame) -> None:
        link = self._link
        assert link is not None
        data = frame.data
        payload = data if isinstance(data, bytes) else bytes(data)
        link.send_audio(payload, len(payload) // link.bot_format.frame_bytes, frame.epoch)
        if link.output_closed:
            # The caller hung up: playing the rest of the buffer to nobody would only keep
            # the session alive for as long. Drop it, counted.
            stats = self._playout.statistics()
            chunk = max(1, len(payload))
            link.count_dropped(-(-stats.buffered_bytes // chunk))
            self._playout.clear()

    def _drained(self) -> None:
        # The utterance played to its end: ask the far end to confirm it heard it all.
        if self._link is not None:
            self._utterances += 1
            self._link.mark(f"utterance-{self._utterances}")
