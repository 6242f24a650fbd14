"""How much of the bot's reply the caller heard, and which words that was (sans-I/O).

Theory of operation
-------------------
After a barge-in the client must tell the server where to cut the reply
(``conversation.item.truncate`` with ``audio_end_ms``): what was *played*, not
what was generated, or the model believes it said things nobody heard.
:class:`PlaybackClock` measures it for one reply at a time, two ways:

* **playout** (preferred): from the bus events of whatever plays the audio
  (``audio.playout`` and the transports built on it): time between
  ``BotSpeechStarted`` and ``BotSpeechStopped``, less the time a possible
  barge-in held playback paused (``BargeInStarted`` .. ``BargeInCancelled``).
  The playout sends a chunk and then waits ``chunk_ms``, so the time it has
  been playing is what a listener heard; it differs from the playout's
  ``played()`` sample count by less than one chunk.
* **pacing** (fallback, when nothing publishes those events): a model of a
  real-time player fed by our output: each frame we emit plays after the
  ones before it, starting no earlier than when it was emitted. Right for a
  transport that plays at real time without its own events; wrong for a
  file sink that takes audio as fast as it comes (there is no "heard" then).

``auto`` uses the events once any ``BotSpeechStarted`` has been seen in the
session, pacing before that. :class:`ReplyText` places the reply's transcript
deltas on its audio (each at the audio received when it arrived) so the text
the caller heard can be cut at the same point.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from ...events import BargeInCancelled, BargeInStarted, BotSpeechStarted, BotSpeechStopped, Event
from ...formats import AudioFormat, pts_ns
from ...frames import AudioFrame

__all__ = ["PlaybackClock", "Reply", "ReplyAudio", "ReplyText", "TruncateFrom"]

TruncateFrom = Literal["auto", "playout", "pacing"]
_MS = 1_000_000


class PlaybackClock:
    """Heard time of the current reply (see the module docstring). Times are session ns."""

    EVENTS: tuple[type[Event], ...] = (
        BotSpeechStarted,
        BotSpeechStopped,
        BargeInStarted,
        BargeInCancelled,
    )

    def __init__(self, mode: TruncateFrom = "auto") -> None:
        self.mode = mode
        self.seen_playout = False
        """True once a ``BotSpeechStarted`` was seen (``auto`` then trusts the events)."""
        self.emitted_ns = 0
        """Audio of the reply sent downstream so far."""
        self._heard = 0  # closed intervals of playing, this reply
        self._since: int | None = None  # start of the open interval
        self._paused = False
        self._play_end = 0  # pacing model: when the last emitted audio finishes playing

    def reset(self, now: int) -> None:
        """A new reply begins at ``now``: nothing of it emitted or heard yet.

        If the playout is still playing (the previous reply's tail, say after
        a tool call), the new reply is counted as heard from ``now``: an
        overestimate by that tail, never by more.
        """
        self.emitted_ns = 0
        self._heard = 0
        self._play_end = 0
        if self._since is not None:
            self._since = now

    def emitted(self, now: int, duration_ns: int) -> None:
        """We sent ``duration_ns`` of the reply's audio downstream at ``now``."""
        self.emitted_ns += duration_ns
        self._play_end = max(self._play_end, now) + duration_ns

    def on_event(self, event: Event) -> None:
        """Feed a playout or barge-in event (the :attr:`EVENTS` types)."""
        kind, pts = type(event), event.pts
        if kind is BotSpeechStarted:
            self.seen_playout = True
            if self._since is None and not self._paused:
                self._since = pts
        elif kind is BotSpeechStopped:
            self._close(pts)
            self._paused = False
        elif kind is BargeInStarted:
            self._close(pts)
            self._paused = True
        elif kind is BargeInCancelled and self._paused:
            self._paused = False
            self._since = pts

    def _close(self, pts: int) -> None:
        if self._since is not None:
            self._heard += max(0, pts - self._since)
            self._since = None

    @property
    def uses_playout(self) -> bool:
        """True if :meth:`heard_ns` comes from the playout's events."""
        return self.mode == "playout" or (self.mode == "auto" and self.seen_playout)

    @property
    def playing(self) -> bool:
        """True while the playout reports the bot's audio playing (or paused mid-reply)."""
        return self._since is not None or self._paused

    def heard_ns(self, now: int) -> int:
        """How much of the reply's audio the caller has heard by ``now``."""
        if self.uses_playout:
            heard = self._heard + (0 if self._since is None else max(0, now - self._since))
        else:
            heard = self.emitted_ns - max(0, self._play_end - now)
        return max(0, min(heard, self.emitted_ns))

    def heard_ms(self, now: int) -> int:
        """:meth:`heard_ns` in whole milliseconds."""
        return self.heard_ns(now) // _MS

    def unheard(self, now: int) -> bool:
        """True if audio already sent downstream has not been heard yet."""
        if self.uses_playout:
            return self.playing or self.heard_ns(now) < self.emitted_ns
        return self._play_end > now


class ReplyText:
    """A reply's transcript, each piece placed at the audio it arrived with."""

    __slots__ = ("_pieces", "final")

    def __init__(self) -> None:
        self._pieces: list[tuple[int, str]] = []
        self.final: str | None = None
        """The whole transcript, once ``...transcript.done`` came."""

    def add(self, audio_ms: int, delta: str) -> None:
        """A transcript delta that arrived when ``audio_ms`` of the item's audio had."""
        self._pieces.append((audio_ms, delta))

    @property
    def text(self) -> str:
        """Everything generated so far (the final transcript when known)."""
        if self.final is not None:
            return self.final
        return "".join(piece for _, piece in self._pieces).strip()

    def heard(self, audio_end_ms: int) -> str:
        """The words placed before ``audio_end_ms``: what the caller heard of them."""
        return "".join(piece for ms, piece in self._pieces if ms < audio_end_ms).strip()


class Reply:
    """One response of the model: its epoch, transcript, and audio sent downstream."""

    __slots__ = ("epoch", "has_audio", "interrupted", "response_id", "samples", "t0", "text")

    def __init__(self, response_id: str, epoch: int) -> None:
        self.response_id = response_id
        self.epoch = epoch
        """The session epoch when it began: its frames are stale after an interruption."""
        self.text = ReplyText()
        self.has_audio = False
        self.interrupted = False
        self.samples = 0
        """Sample frames of its audio sent downstream."""
        self.t0: int | None = None
        """pts of its first frame (``pts`` then count samples from it)."""


class ReplyAudio:
    r"""Reply audio received and not yet sent downstream, and the clock of what was heard.

    The node's reader :meth:`push`\es audio as it arrives (faster than real
    time); its emitter takes :meth:`next_frame` at the pace downstream allows.
    Bounded by the response itself (the server's ``max_output_tokens``); an
    interruption :meth:`clear`\s it.
    """

    def __init__(self, fmt: AudioFormat, mode: TruncateFrom = "auto") -> None:
        self.fmt = fmt
        self.clock = PlaybackClock(mode)
        self.peak = 0
        """Most chunks held at once."""
        self._pending: deque[tuple[Reply, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, reply: Reply, data: bytes, now: int) -> None:
        """Audio of ``reply`` arrived at ``now``."""
        if not reply.has_audio:
            reply.has_audio = True
            self.clock.reset(now)
        self._pending.append((reply, data))
        self.peak = max(self.peak, len(self._pending))

    def clear(self) -> None:
        """Drop everything not yet sent (an interruption)."""
        self._pending.clear()

    def next_frame(self, now: int, epoch: int) -> AudioFrame | None:
        """The next frame to send at ``now``; chunks of epochs before ``epoch`` are skipped.

        ``pts`` count samples from the reply's first frame; a reply arriving
        slower than real time is re-anchored at ``now`` (never in the past).
        """
        fmt, pending = self.fmt, self._pending
        while pending:
            reply, data = pending.popleft()
            if reply.epoch < epoch:
                continue
            if reply.t0 is None:
                reply.t0 = now
            pts = pts_ns(reply.samples, fmt.rate, reply.t0)
            if pts < now:
                reply.t0 += now - pts
                pts = now
            samples = len(data) // fmt.frame_bytes
            reply.samples += samples
            self.clock.emitted(now, samples * 1_000_000_000 // fmt.rate)
            return AudioFrame(data, fmt, pts=pts, epoch=reply.epoch)
        return None
