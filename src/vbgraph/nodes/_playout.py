"""The playout engine: audio in bursts, out at real time in fixed chunks, pausable, clearable.

``audio.playout`` and every transport-out node hold one :class:`Playout`; it
owns the ring buffer, the playout clock and the bot-speech events, and hands
each chunk to a ``deliver`` callable (emit on a port, or send to a caller).

Theory of operation: ``write`` (from the node's ``process``) puts audio into a
bounded ring buffer; ``run`` (the node's background task) takes one chunk per
``chunk_ms`` on the session clock, anchored at the moment playback (re)starts,
so output ``pts`` come from sample counts and never drift. ``BargeInStarted``
pauses (keeps the buffer), ``BargeInCancelled`` resumes from the same sample;
an interruption clears the buffer at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

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
from ..frames import AudioFrame
from ..node import NodeContext

__all__ = ["Overflow", "Playout", "PlayoutStatistics"]

_SILENCE = {Encoding.MULAW: b"\xff", Encoding.ALAW: b"\xd5"}

Overflow = Literal["block", "drop_oldest"]


@dataclass(frozen=True, slots=True)
class PlayoutStatistics:
    """A snapshot of a playout buffer (``statistics()`` of a playout node)."""

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


class Playout:
    """One playout buffer and its clock; see the module docstring.

    ``owner`` names the node in error messages. ``deliver`` receives every
    output frame (exactly ``chunk_ms`` long) at its playout time.
    """

    def __init__(
        self,
        owner: str,
        ctx: NodeContext,
        deliver: Callable[[AudioFrame], None],
        *,
        chunk_ms: float,
        max_buffer_ms: float,
        overflow: Overflow = "block",
        fill_silence: bool = False,
        on_drained: Callable[[], None] | None = None,
        lead_ms: float = 0.0,
    ) -> None:
        self.owner = owner
        self.ctx = ctx
        self.deliver = deliver
        self.chunk_ms = chunk_ms
        self.max_buffer_ms = max_buffer_ms
        self.overflow = overflow
        self.fill_silence = fill_silence
        self.on_drained = on_drained
        self.lead_ns = round(lead_ms * 1e6)
        """How far ahead of real time chunks may leave (the far end buffers them).

        Without it, a real-time producer (a relay, an echo) keeps any delay its
        jitter ever added: the buffer drains one chunk per tick, exactly as fast as
        it fills. A lead lets a backlog up to ``lead_ms`` leave at once."""
        """Called when an utterance has played to its end (not when it was cut off)."""
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

    # -- what was played ------------------------------------------------------------

    @property
    def format(self) -> AudioFormat | None:
        """The format of the audio being played (known after the first frame)."""
        return self._fmt

    @property
    def playing(self) -> bool:
        """True while bot audio is going out."""
        return self._playing

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

    # -- the node's hooks -------------------------------------------------------------

    def start(self) -> None:
        """Make the events on the session's loop (call from the node's ``start``)."""
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def write(self, frame: AudioFrame) -> None:
        """Buffer the audio; waits for room when the buffer is full (``overflow: block``)."""
        ring = self._ring
        if ring is None or frame.fmt != self._fmt:
            ring = self._open(frame.fmt)
        assert self._wake is not None and self._room is not None and self._idle is not None
        self._epoch = frame.epoch
        data = memoryview(frame.data).cast("B")
        if self.overflow == "drop_oldest":
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

    async def finish(self) -> None:
        """Play out what is buffered, then stop ``run`` (the node's ``on_end``)."""
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

    def clear(self) -> None:
        """Drop everything buffered at once; report the bot stopped if it was playing."""
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
        grace_s = self.chunk_ms / 1000
        while not self._closed:
            ring = self._ring
            if ring is not None and not ring.size and self._playing and not self._paused:
                # Ran dry while playing: give the producer one chunk's time before calling
                # the utterance over. A producer at exactly real time (an echo, a live
                # relay) then plays as one utterance, not one per chunk with a stop event
                # and a mark each; a late chunk keeps the timeline (no re-anchor).
                ended_ns = self._next_tick()  # when the last chunk finished playing
                wake.clear()
                # A timer that sets the event, not asyncio.wait_for: this runs once per
                # chunk per call when the producer is real-time, and wait_for makes a task.
                timer = asyncio.get_running_loop().call_later(grace_s, wake.set)
                await wake.wait()
                timer.cancel()
                if ring.size and self._playing and not self._paused:
                    continue
            else:
                ended_ns = -1
            if ring is None or self._paused or not ring.size:
                if self._playing and not self._paused:
                    self._playing = False
                    # Stamped with when the audio ended, not when the grace ran out.
                    self.ctx.publish(BotSpeechStopped(pts=ended_ns, interrupted=False))
                    if self.on_drained is not None:
                        self.on_drained()
                if ring is not None and not self._paused:
                    assert self._idle is not None
                    self._idle.set()
                if self.fill_silence and ring is not None and not self._closed:
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
            await clock.sleep_until_ns(self._next_tick() - self.lead_ns)

    # -- helpers -----------------------------------------------------------------------

    def _open(self, fmt: AudioFormat) -> RingBuffer:
        if self._ring is not None and self._ring.size:
            raise AudioFormatError(
                f"{self.owner}: format changed from {self._fmt} to {fmt} while audio was buffered"
            )
        self._fmt = fmt
        self._chunk_samples = fmt.samples_for_ms(self.chunk_ms)
        self._chunk_bytes = self._chunk_samples * fmt.frame_bytes
        self._silence = _SILENCE.get(fmt.encoding, b"\x00") * self._chunk_bytes
        capacity = max(fmt.bytes_for_ms(self.max_buffer_ms), self._chunk_bytes)
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
        self.deliver(AudioFrame(chunk, fmt, pts=pts, epoch=epoch))

    def _next_tick(self) -> int:
        fmt = self._fmt
        assert fmt is not None
        return pts_ns(self._sent * self._chunk_samples, fmt.rate, self._anchor_ns)
