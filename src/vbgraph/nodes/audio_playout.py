"""The ``audio.playout`` node: the bot's audio out at real time, pausable and clearable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from ..errors import AudioFormatError
from ..events import BargeInCancelled, BargeInStarted, Event
from ..formats import AudioFormat
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed
from ._playout import Playout, PlayoutStatistics

__all__ = ["AudioPlayout"]

_PCM = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")


@register
class AudioPlayout(Node):
    """Example launch line::

        nodes:
          tts: {type: tone, duration_ms: 500, chunk_ms: 100}
          play: {type: audio.playout, chunk_ms: 20}
          out: {type: log}
        edges: [tts -> play -> out]

    The heart of every transport-out: the bot's audio arrives in any chunk
    sizes, usually much faster than real time (TTS bursts), goes into a bounded
    playout buffer, and leaves on ``out`` as frames of exactly ``chunk_ms``,
    one every ``chunk_ms`` on the session clock, without gaps while the buffer
    holds audio. When the buffer runs dry the output stops (or, with
    ``fill_silence``, carries silence); a last partial chunk is padded with
    silence. Output ``pts`` come from sample counts since playback (re)started.

    Bus events: ``BotSpeechStarted`` when audio starts playing,
    ``BotSpeechStopped(interrupted=False)`` when the buffer has drained and the
    last chunk finished, ``BotSpeechStopped(interrupted=True)`` when an
    interruption cleared it. ``BargeInStarted`` pauses the output (the buffer
    is kept) and ``BargeInCancelled`` resumes it from the same sample: a false
    interruption loses nothing.

    On ``Interrupt`` the buffer is cleared at once: nothing of the old epoch is
    emitted afterwards, and the runtime drops old-epoch frames still arriving.
    :meth:`played` tells how many samples of each epoch were actually sent out,
    so an agent can know what the caller heard.

    ``overflow: block`` (default) makes a producer that runs ahead by more than
    ``max_buffer_ms`` wait: it is paced by the playout and nothing is lost.
    ``drop_oldest`` keeps the buffer current instead, counting what it drops.
    """

    type_name: ClassVar[str] = "audio.playout"
    interruptible: ClassVar[bool] = True
    subscribes: ClassVar[tuple[type[Event], ...]] = (BargeInStarted, BargeInCancelled)

    class Params(NodeParams):
        """Parameters of ``audio.playout``."""

        chunk_ms: float = Field(
            20, gt=0, le=1000, allow_inf_nan=False, description="Length of every output frame."
        )
        max_buffer_ms: float = Field(
            5000,
            gt=0,
            le=600_000,
            allow_inf_nan=False,
            description="Most audio held ahead of playback. It adds no latency (playback "
            "starts with the first chunk); it bounds memory and how much synthesized audio "
            "an interruption throws away.",
        )
        overflow: Literal["block", "drop_oldest"] = Field(
            "block",
            description="When the buffer is full: make the producer wait (block), or drop "
            "the oldest audio, counted (drop_oldest).",
        )
        fill_silence: bool = Field(
            False,
            description="Emit silence frames while the buffer is empty or paused (for "
            "transports that need a continuous stream), once the format is known.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(encodings=_PCM, doc="The bot's audio, in chunks of any size.")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(same_as="in", doc="The same audio in chunk_ms frames at real time.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, AudioPlayout.Params)
        self._playout = Playout(
            f"audio.playout '{node_id}'",
            ctx,
            self._deliver,
            chunk_ms=p.chunk_ms,
            max_buffer_ms=p.max_buffer_ms,
            overflow=p.overflow,
            fill_silence=p.fill_silence,
        )

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

    # -- what was played ------------------------------------------------------------

    def played(self, epoch: int | None = None) -> int:
        """Sample frames of real audio sent out in ``epoch`` (default: the current one)."""
        return self._playout.played(epoch)

    @property
    def played_by_epoch(self) -> Mapping[int, int]:
        """Sample frames sent out, per epoch (epochs with nothing played are absent)."""
        return self._playout.played_by_epoch

    def statistics(self) -> PlayoutStatistics:
        """A snapshot of the buffer and counters."""
        return self._playout.statistics()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Make the playout's events on the session's loop."""
        self._playout.start()

    async def process(self, port: str, frame: Frame) -> None:
        """Buffer the audio; waits for room when the buffer is full (``overflow: block``)."""
        if type(frame) is AudioFrame:
            await self._playout.write(frame)

    async def on_end(self) -> None:
        """Play out what is buffered, then stop (outputs end after this)."""
        await self._playout.finish()

    def on_event(self, event: Event) -> None:
        """``BargeInStarted`` pauses, ``BargeInCancelled`` resumes where it paused."""
        self._playout.on_event(event)

    def on_interrupt(self, epoch: int) -> None:
        """Clear the buffer at once; report the bot stopped if it was playing."""
        self._playout.clear()

    async def run(self) -> None:
        """The playout clock: one chunk per ``chunk_ms`` while there is audio to play."""
        await self._playout.run()

    def _deliver(self, frame: AudioFrame) -> None:
        self.emit("out", frame)
