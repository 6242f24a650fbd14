"""Audio on its way to Deepgram: what waits, what is in flight, and when it was (sans-I/O).

Theory of operation
-------------------
Deepgram times every result in seconds since the first audio of *its
connection*, and forgets the audio it had not finalized when a connection
drops. :class:`AudioLedger` keeps what is needed to survive both:

* **pending**: items not sent yet, in order: audio chunks and the control
  messages that must follow them (``Finalize`` after the audio it finalizes,
  ``CloseStream`` last). While the socket is down, audio waits here, bounded
  by ``max_pending_ns``; when full, the oldest audio is dropped and counted
  (``overflow`` chunks, ``overflow_ns``).
* **sent**: audio sent on the current connection, each chunk with its first
  sample's offset on the connection and its session ``pts``. A result's stream
  time maps to session time through it (:meth:`session_ns`), so gaps in the
  input (a VAD that forwards speech only) do not shift transcripts.
* A final result (``is_final``) fixes its span for good: :meth:`confirm`
  forgets the chunks before its end. Deepgram's finals tile the stream, so
  what is left in ``sent`` is exactly the audio no final covers yet.
* When the connection drops, :meth:`restart` puts that unconfirmed audio back
  at the front of pending (cut at the confirmed sample), re-inserting a
  ``Finalize`` that had not been answered and a ``CloseStream`` that had been
  sent: the next connection hears the audio again, so no final is lost and
  none is repeated. The unconfirmed tail is bounded by ``max_replay_ns``
  (the oldest is forgotten and counted in ``trimmed_ns``): a server that
  never finalizes cannot grow memory without bound.

The caller owns time: every method that needs "now" takes it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from ...typing import BytesLike
from .protocol import CLOSE_STREAM

__all__ = ["AudioLedger"]

_NS = 1_000_000_000


@dataclass(slots=True)
class _Chunk:
    data: bytes
    pts: int
    samples: int
    offset: int = -1  # first sample's index on the connection; -1 until sent
    sent_ns: int = -1


class AudioLedger:
    """Audio and control messages for one stream, across its connections (see module doc).

    ``rate`` and ``frame_bytes`` describe the audio (16000 and 2 for 16 kHz
    linear16 mono); chunks must hold whole sample frames.
    """

    def __init__(
        self, rate: int, frame_bytes: int, *, max_pending_ns: int, max_replay_ns: int
    ) -> None:
        if rate <= 0 or frame_bytes <= 0:
            raise ValueError("rate and frame_bytes must be positive")
        self.rate = rate
        self.frame_bytes = frame_bytes
        self._max_pending = max_pending_ns * rate // _NS
        self._max_replay = max_replay_ns * rate // _NS
        self._pending: deque[_Chunk | str] = deque()
        self._pending_samples = 0
        self._sent: list[_Chunk] = []
        self._controls: list[tuple[int, str]] = []  # (offset it followed, message) sent
        self._next = 0  # offset of the next sample sent on this connection
        self._confirmed = 0  # samples of this connection a final covers
        self._anchor: tuple[int, int] = (0, 0)  # (offset, pts) of a forgotten chunk
        self.overflow = 0
        """Audio chunks dropped because pending audio exceeded ``max_pending_ns``."""
        self.overflow_ns = 0
        """Duration of the audio dropped that way."""
        self.trimmed_ns = 0
        """Unconfirmed audio that will not be replayed (over ``max_replay_ns``, or forgotten)."""
        self.replayed_ns = 0
        """Audio sent again on a new connection by :meth:`restart`."""

    # -- input ----------------------------------------------------------------------------

    def push_audio(self, data: BytesLike, pts: int) -> None:
        """Queue a chunk of audio whose first sample is at session time ``pts`` (kept as bytes)."""
        # bytes(b) of a bytes object is that object: frames' payloads are not
        # copied. Other buffers are copied once, as frames may share them.
        raw = bytes(data)
        if not raw:
            return
        if len(raw) % self.frame_bytes:
            raise ValueError(f"{len(raw)} bytes is not a whole number of sample frames")
        chunk = _Chunk(raw, pts, len(raw) // self.frame_bytes)
        self._pending.append(chunk)
        self._pending_samples += chunk.samples
        self._bound_pending()

    def push_control(self, message: str) -> None:
        """Queue a control message (``Finalize``, ``CloseStream``) after the audio queued so far."""
        self._pending.append(message)

    @property
    def pending_ns(self) -> int:
        """Duration of the audio waiting to be sent."""
        return self._pending_samples * _NS // self.rate

    @property
    def has_pending(self) -> bool:
        """True if anything waits to be sent."""
        return bool(self._pending)

    @property
    def pending_audio(self) -> bool:
        """True if audio (not only control messages) waits to be sent."""
        return self._pending_samples > 0

    # -- sending --------------------------------------------------------------------------

    def take(self, now_ns: int) -> bytes | str | None:
        """The next item to send (it counts as sent from now on), or ``None``.

        ``bytes`` go out as a binary frame, ``str`` as a text frame. If the
        send fails the connection is lost anyway, and :meth:`restart` resends.
        """
        if not self._pending:
            return None
        item = self._pending.popleft()
        if isinstance(item, str):
            self._controls.append((self._next, item))
            return item
        self._pending_samples -= item.samples
        item.offset = self._next
        item.sent_ns = now_ns
        self._next += item.samples
        self._sent.append(item)
        self._bound_replay()
        return item.data

    # -- results --------------------------------------------------------------------------

    def confirm(self, end_s: float) -> None:
        """A final result covers the stream up to ``end_s`` (seconds on this connection)."""
        sample = min(self._next, max(0, round(end_s * self.rate)))
        if sample <= self._confirmed:
            return
        self._confirmed = sample
        sent = self._sent
        keep = 0
        while keep < len(sent) and sent[keep].offset + sent[keep].samples <= sample:
            keep += 1
        if keep:
            last = sent[keep - 1]
            self._anchor = (last.offset, last.pts)
            del sent[:keep]
        self._controls = [
            (at, msg) for at, msg in self._controls if at > sample or msg == CLOSE_STREAM
        ]

    def session_ns(self, stream_s: float) -> int:
        """Session time of the audio at ``stream_s`` seconds on this connection.

        Exact inside the audio still held; outside it, extrapolated from the
        nearest chunk at the audio's rate.
        """
        sample = round(stream_s * self.rate)
        chunk = self._chunk_at(sample)
        offset, pts = (chunk.offset, chunk.pts) if chunk is not None else self._anchor
        return pts + (sample - offset) * _NS // self.rate

    def sent_ns(self, end_s: float) -> int | None:
        """Session time the audio just before ``end_s`` was sent, if that chunk is still held.

        A result ending at ``end_s`` could not exist before then: ``now -
        sent_ns(end)`` is the recogniser's latency for it.
        """
        sample = max(0, round(end_s * self.rate) - 1)
        chunk = self._chunk_at(sample)
        if chunk is None or not chunk.offset <= sample < chunk.offset + chunk.samples:
            return None
        return chunk.sent_ns

    def _chunk_at(self, sample: int) -> _Chunk | None:
        sent = self._sent
        if not sent:
            return None
        i = bisect_right(sent, sample, key=lambda c: c.offset) - 1
        return sent[max(i, 0)]

    # -- a new connection -----------------------------------------------------------------

    def restart(self, *, replay: bool = True) -> None:
        """The connection is gone: queue its unconfirmed audio (and open controls) again.

        ``replay=False`` forgets that audio instead (counted in
        ``trimmed_ns``): after an idle close it is silence nobody needs.
        """
        if not replay:
            self.trimmed_ns += (self._next - self._confirmed) * _NS // self.rate
            self._sent.clear()
        replay_items: list[_Chunk | str] = []
        controls = deque(self._controls)
        for chunk in self._sent:
            cut = max(0, self._confirmed - chunk.offset)
            if cut < chunk.samples:
                data = chunk.data[cut * self.frame_bytes :]
                pts = chunk.pts + cut * _NS // self.rate
                replay_items.append(_Chunk(data, pts, chunk.samples - cut))
                self._pending_samples += chunk.samples - cut
                self.replayed_ns += (chunk.samples - cut) * _NS // self.rate
            end = chunk.offset + chunk.samples
            while controls and controls[0][0] <= end:
                at, msg = controls.popleft()
                if at > self._confirmed or msg == CLOSE_STREAM:
                    replay_items.append(msg)
        replay_items.extend(msg for _, msg in controls if replay or msg == CLOSE_STREAM)
        self._pending.extendleft(reversed(replay_items))
        self._sent.clear()
        self._controls.clear()
        self._next = self._confirmed = 0
        self._bound_pending()

    # -- bounds ---------------------------------------------------------------------------

    def _bound_pending(self) -> None:
        pending = self._pending
        i = 0
        while self._pending_samples > self._max_pending and i < len(pending):
            item = pending[i]
            if isinstance(item, str):
                i += 1
                continue
            del pending[i]
            self._pending_samples -= item.samples
            self.overflow += 1
            self.overflow_ns += item.samples * _NS // self.rate

    def _bound_replay(self) -> None:
        sent = self._sent
        while len(sent) > 1 and self._next - max(sent[0].offset, self._confirmed) > (
            self._max_replay
        ):
            first = sent.pop(0)
            lost = first.offset + first.samples - max(first.offset, self._confirmed)
            self.trimmed_ns += max(0, lost) * _NS // self.rate
            self._confirmed = max(self._confirmed, first.offset + first.samples)
            self._anchor = (first.offset, first.pts)
