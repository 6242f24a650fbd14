"""The ``audio.playout`` node: the bot's audio out at real time, pausable and clearable."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field

from ..dsp.ring import RingBuffer
from ..errors import AudioFormatError
from ..events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
)
from ..formats import AudioFormat, Encoding, pts_ns
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed

__all__ = ["AudioPlayout"]

_SILENCE = {Encoding.MULAW: b"\xff", Encoding.ALAW: b"\xd5"}
_PCM = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")


@dataclass(frozen=True, slots=True)
class PlayoutStatistics:
    """A snapshot of a playout buffer (``AudioPlayout.statistics()``)."""

    buffered_bytes: int
    capacity_bytes: int
    peak_bytes: int
    overflow_bytes: int
    """Bytes dropped because the buffer was full (``overflow: drop_oldest`` only)."""
    underruns: int
    """Times a partial chunk had to be padded with silence (the producer fell behind)."""
    played_samples: int
    """Sample frames of real audio played in the current epoch."""
    paused: bool
    playing: bool
    waiting: int
    """Producers waiting for room (``overflow: block``)."""


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
        self._p = typed(params, AudioPlayout.Params)
        self._fmt: AudioFormat | None = None
        self._ring: RingBuffer | None = None
        self._chunk_bytes = 0
        self._chunk_samples = 0
        self._silence = b""
        self._epoch = 0  # epoch of the audio in the buffer
        self._played: dict[int, int] = {}
        self._playing = False
        self._paused = False
        self._closed = False
        self._reanchor = True
        self._anchor_ns = 0
        self._sent = 0  # chunks since the anchor
        self._peak = 0
        self._overflow = 0
        self._underruns = 0
        self._waiting = 0
        self._wake: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

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
        return self._played.get(self.ctx.epoch if epoch is None else epoch, 0)

    @property
    def played_by_epoch(self) -> Mapping[int, int]:
        """Sample frames sent out, per epoch (epochs with nothing played are absent)."""
        return dict(self._played)

    def statistics(self) -> PlayoutStatistics:
        """A snapshot of the buffer and counters."""
        ring = self._ring
        return PlayoutStatistics(
            buffered_bytes=0 if ring is None else ring.size,
            capacity_bytes=0 if ring is None else ring.capacity,
            peak_bytes=self._peak,
            overflow_bytes=self._overflow,
            underruns=self._underruns,
            played_samples=self.played(),
            paused=self._paused,
            playing=self._playing,
            waiting=self._waiting,
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Make the events on the session's loop."""
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def process(self, port: str, frame: Frame) -> None:
        """Buffer the audio; waits for room when the buffer is full (``overflow: block``)."""
        if type(frame) is not AudioFrame:
            return
        ring = self._ring
        if ring is None or frame.fmt != self._fmt:
            ring = self._open(frame.fmt)
        assert self._wake is not None and self._room is not None and self._idle is not None
        self._epoch = frame.epoch
        data = memoryview(frame.data).cast("B")
        if self._p.overflow == "drop_oldest":
            self._overflow += ring.write_overwrite(data)
            self._wrote(ring)
            return
        while data:
            taken = ring.write(data)
            data = data[taken:]
            if taken:
                self._wrote(ring)
            if data:
                self._room.clear()
                self._waiting += 1
                try:
                    await self._room.wait()
                finally:
                    self._waiting -= 1
                if frame.epoch < self.ctx.epoch:
                    return  # interrupted while waiting: the rest is stale

    def _wrote(self, ring: RingBuffer) -> None:
        assert self._wake is not None and self._idle is not None
        self._peak = max(self._peak, ring.size)
        self._idle.clear()
        self._wake.set()

    async def on_end(self) -> None:
        """Play out what is buffered, then stop (outputs end after this)."""
        assert self._wake is not None and self._idle is not None
        self._wake.set()
        await self._idle.wait()
        self._closed = True
        self._wake.set()

    def on_event(self, event: Event) -> None:
        """``BargeInStarted`` pauses, ``BargeInCancelled`` resumes where it paused."""
        if type(event) is BargeInStarted:
            self._paused = True
            self._reanchor = True
        elif type(event) is BargeInCancelled:
            self._paused = False
            if self._wake is not None:
                self._wake.set()

    def on_interrupt(self, epoch: int) -> None:
        """Clear the buffer at once; report the bot stopped if it was playing."""
        if self._ring is not None:
            self._ring.reset()
        self._paused = False
        self._reanchor = True
        if self._room is not None:
            self._room.set()
        if self._playing:
            self._playing = False
            self.ctx.publish(BotSpeechStopped(interrupted=True))
        if self._idle is not None:
            self._idle.set()

    async def run(self) -> None:
        """The playout clock: one chunk per ``chunk_ms`` while there is audio to play."""
        wake = self._wake
        assert wake is not None
        clock = self.ctx.clock
        while not self._closed:
            ring = self._ring
            if ring is None or self._paused or not ring.size:
                if self._playing and not self._paused:
                    self._playing = False
                    self.ctx.publish(BotSpeechStopped(interrupted=False))
                if ring is not None and not self._paused:
                    assert self._idle is not None
                    self._idle.set()
                if self._p.fill_silence and ring is not None and not self._closed:
                    self._send(self._silence, real=0)
                    await clock.sleep_until_ns(self._next_tick())
                    continue
                self._reanchor = True
                wake.clear()
                await wake.wait()
                continue
            if not self._playing:
                self._playing = True
                self.ctx.publish(BotSpeechStarted())
            chunk = ring.read(self._chunk_bytes)
            real = len(chunk)
            if real < self._chunk_bytes:
                # The producer fell behind (or ended mid-chunk): pad to a whole frame.
                self._underruns += 1
                chunk += self._silence[: self._chunk_bytes - real]
            assert self._room is not None
            self._room.set()
            self._send(chunk, real=real)
            await clock.sleep_until_ns(self._next_tick())

    # -- helpers -----------------------------------------------------------------------

    def _open(self, fmt: AudioFormat) -> RingBuffer:
        if self._ring is not None and self._ring.size:
            raise AudioFormatError(
                f"audio.playout '{self.id}': format changed from {self._fmt} to {fmt} "
                "while audio was buffered"
            )
        self._fmt = fmt
        self._chunk_samples = fmt.samples_for_ms(self._p.chunk_ms)
        self._chunk_bytes = self._chunk_samples * fmt.frame_bytes
        self._silence = _SILENCE.get(fmt.encoding, b"\x00") * self._chunk_bytes
        capacity = max(fmt.bytes_for_ms(self._p.max_buffer_ms), self._chunk_bytes)
        self._ring = RingBuffer(capacity)
        return self._ring

    def _send(self, chunk: bytes, real: int) -> None:
        fmt = self._fmt
        assert fmt is not None
        if self._reanchor:
            self._reanchor = False
            self._anchor_ns = self.ctx.now_ns()
            self._sent = 0
        pts = pts_ns(self._sent * self._chunk_samples, fmt.rate, self._anchor_ns)
        self._sent += 1
        epoch = self._epoch if real else self.ctx.epoch
        if real:
            self._played[epoch] = self._played.get(epoch, 0) + real // fmt.frame_bytes
        self.emit("out", AudioFrame(chunk, fmt, pts=pts, epoch=epoch))

    def _next_tick(self) -> int:
        fmt = self._fmt
        assert fmt is not None
        return pts_ns(self._sent * self._chunk_samples, fmt.rate, self._anchor_ns)
