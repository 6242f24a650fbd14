"""The :class:`CallLink`: one caller, between a transport shell and a session's nodes.

Theory of operation
-------------------
The network side (a transport shell: Twilio media stream, WebSocket client,
WebRTC peer) and the graph side (the ``transport.in`` and ``transport.out``
nodes) run on the same event loop and never call each other. They meet here:

* *Inbound.* The shell decodes wire messages to audio payloads in
  ``caller_format`` (μ-law 8 kHz for a phone, PCM for the others) and calls
  :meth:`CallLink.push_audio`; ``transport.in`` awaits :meth:`CallLink.receive`
  and converts to the graph's format. The inbound buffer is bounded
  (``max_inbound_ms``): when the graph falls that far behind, the oldest audio
  is dropped and counted (``statistics().inbound_dropped_bytes``).
  :meth:`CallLink.end_input` (the caller hung up) ends the graph's input.
* *Outbound.* ``transport.out`` paces the bot's audio at real time and calls
  :meth:`CallLink.send_audio` once per chunk, already in ``bot_format``; on an
  interruption it calls :meth:`CallLink.clear`, which drops what the shell has
  not sent yet and queues an :class:`OutboundClear` (Twilio's ``clear``). The
  shell awaits :meth:`CallLink.next_outbound` and writes to the network.
* *Playback position.* Where the wire reports what the caller actually heard
  (Twilio ``mark`` echoes), the shell calls :meth:`CallLink.confirm_played`;
  otherwise what was sent counts as played.

Nothing here touches a socket, so the tests drive a link from both ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import UsageError
from ..events import Event
from ..formats import AudioFormat

__all__ = [
    "CallLink",
    "LinkStatistics",
    "Outbound",
    "OutboundAudio",
    "OutboundClear",
    "OutboundMark",
]


@dataclass(frozen=True, slots=True)
class OutboundAudio:
    """A chunk of the bot's audio to send now, in the link's ``bot_format``."""

    payload: bytes
    samples: int
    epoch: int
    """The turn epoch it belongs to (for marks and logs)."""
    end_sample: int
    """Samples of bot audio sent on this link, this chunk included (a mark name)."""


@dataclass(frozen=True, slots=True)
class OutboundClear:
    """The bot was interrupted: tell the far end to drop audio it still buffers."""

    epoch: int


@dataclass(frozen=True, slots=True)
class OutboundMark:
    """The bot finished an utterance: ask the far end to report when it has played."""

    name: str


Outbound = OutboundAudio | OutboundClear | OutboundMark


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Counters of one link."""

    inbound_bytes: int
    inbound_dropped_bytes: int
    """Caller audio dropped because the graph fell ``max_inbound_ms`` behind."""
    outbound_chunks: int
    outbound_dropped_chunks: int
    """Bot audio dropped because the shell fell behind or the call had ended."""
    cleared_chunks: int
    """Bot audio queued for sending and dropped by an interruption (not a loss)."""
    sent_samples: int
    played_samples: int


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[None] | None = None

    def wake(self) -> None:
        fut = self.future
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.future = fut
        try:
            await fut
        finally:
            self.future = None


@dataclass(eq=False)
class CallLink:
    """One caller's audio in and out; see the module docstring.

    ``transport`` names the transport (``"twilio"``, ``"websocket"`` ...),
    ``call_id`` the call as the far end knows it. ``continuous`` asks
    ``transport.out`` to send silence while the bot is quiet (a WebRTC track
    needs a frame every 20 ms; a media stream does not).
    """

    transport: str
    caller_format: AudioFormat
    bot_format: AudioFormat
    call_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    continuous: bool = False
    reports_playback: bool = False
    """True when the shell calls :meth:`confirm_played` (the wire echoes marks)."""
    max_inbound_ms: float = 1000.0
    max_outbound_ms: float = 1000.0
    chunk_ms: float = 20.0
    _inbound: deque[bytes | Event] = field(default_factory=deque, init=False, repr=False)
    _inbound_size: int = field(default=0, init=False, repr=False)
    _outbound: deque[Outbound] = field(default_factory=deque, init=False, repr=False)
    _in_wait: _Waiter = field(default_factory=_Waiter, init=False, repr=False)
    _out_wait: _Waiter = field(default_factory=_Waiter, init=False, repr=False)
    _input_ended: bool = field(default=False, init=False, repr=False)
    _output_closed: bool = field(default=False, init=False, repr=False)
    _stats: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    end_reason: str = field(default="", init=False)
    """Why the caller's input ended (``"hangup"``, ``"stop"``, a protocol error ...)."""

    def __post_init__(self) -> None:
        self._stats = dict.fromkeys(
            (
                "inbound_bytes",
                "inbound_dropped_bytes",
                "outbound_chunks",
                "outbound_dropped_chunks",
                "cleared_chunks",
                "sent_samples",
                "played_samples",
            ),
            0,
        )
        self._max_inbound_bytes = max(
            self.caller_format.bytes_for_ms(self.max_inbound_ms), self.caller_format.frame_bytes
        )
        self._max_outbound_items = max(1, int(self.max_outbound_ms // self.chunk_ms))

    # -- network side ------------------------------------------------------------------

    def push_audio(self, payload: bytes) -> None:
        """Caller audio from the wire, in ``caller_format`` (whole sample frames)."""
        if self._input_ended:
            raise UsageError(f"CallLink {self.call_id!r}: push_audio after end_input")
        if len(payload) % self.caller_format.frame_bytes:
            raise UsageError(
                f"CallLink {self.call_id!r}: {len(payload)} bytes is not whole sample "
                f"frames of {self.caller_format}"
            )
        stats = self._stats
        stats["inbound_bytes"] += len(payload)
        self._inbound.append(payload)
        self._inbound_size += len(payload)
        inbound = self._inbound
        while self._inbound_size > self._max_inbound_bytes:
            # Drop the oldest audio; caller events (rare, small) are kept in their place.
            i = next(i for i, item in enumerate(inbound) if isinstance(item, bytes))
            if i == len(inbound) - 1:
                break  # never drop the payload just pushed
            oldest = inbound[i]
            assert isinstance(oldest, bytes)
            del inbound[i]
            self._inbound_size -= len(oldest)
            stats["inbound_dropped_bytes"] += len(oldest)
        self._in_wait.wake()

    def push_event(self, event: Event) -> None:
        """Something the caller did besides speaking (a DTMF key): ``transport.in``
        publishes it on the session bus, in order with the audio around it."""
        if self._input_ended:
            raise UsageError(f"CallLink {self.call_id!r}: push_event after end_input")
        self._inbound.append(event)
        self._in_wait.wake()

    def end_input(self, reason: str = "hangup") -> None:
        """The caller's audio has ended (hang-up, stop message, closed socket)."""
        if not self._input_ended:
            self._input_ended = True
            self.end_reason = reason
            self._in_wait.wake()

    async def next_outbound(self) -> Outbound | None:
        """The next thing to send to the caller; ``None`` once the output is closed."""
        while not self._outbound:
            if self._output_closed:
                return None
            await self._out_wait.wait()
        return self._outbound.popleft()

    def poll_outbound(self) -> Outbound | None:
        """The next thing to send if one is queued, else ``None`` (never waits).

        For shells paced by their own clock (a WebRTC track pulls a frame
        every 20 ms and sends silence when there is none).
        """
        return self._outbound.popleft() if self._outbound else None

    @property
    def output_closed(self) -> bool:
        """True once :meth:`close_output` was called."""
        return self._output_closed

    def confirm_played(self, samples: int) -> None:
        """The far end reports it has played ``samples`` samples of bot audio in all."""
        stats = self._stats
        stats["played_samples"] = max(stats["played_samples"], min(samples, stats["sent_samples"]))

    def close_output(self) -> None:
        """The connection is gone: later bot audio is dropped (counted)."""
        self._output_closed = True
        self._out_wait.wake()

    # -- graph side --------------------------------------------------------------------

    @property
    def input_ended(self) -> bool:
        """True once the caller's audio has ended and all of it was received."""
        return self._input_ended and not self._inbound

    async def receive(self) -> bytes | Event | None:
        """The next piece of caller audio (``caller_format``) or caller event; ``None`` at
        the end."""
        while not self._inbound:
            if self._input_ended:
                return None
            await self._in_wait.wait()
        item = self._inbound.popleft()
        if isinstance(item, bytes):
            self._inbound_size -= len(item)
        return item

    def send_audio(self, payload: bytes, samples: int, epoch: int) -> None:
        """One chunk of bot audio in ``bot_format``, at its playout time."""
        stats = self._stats
        if self._output_closed or len(self._outbound) >= self._max_outbound_items:
            stats["outbound_dropped_chunks"] += 1
            return
        stats["outbound_chunks"] += 1
        stats["sent_samples"] += samples
        self._outbound.append(OutboundAudio(payload, samples, epoch, stats["sent_samples"]))
        self._out_wait.wake()

    def count_dropped(self, chunks: int) -> None:
        """Bot audio the graph side threw away because the connection is gone (counted)."""
        self._stats["outbound_dropped_chunks"] += chunks

    def mark(self, name: str) -> None:
        """Ask the far end to report when everything sent so far has played."""
        if not self._output_closed:
            self._outbound.append(OutboundMark(name))
            self._out_wait.wake()

    def clear(self, epoch: int) -> None:
        """Interruption: drop unsent bot audio and tell the far end to drop its buffer."""
        if self._output_closed:
            return
        kept: deque[Outbound] = deque()
        for item in self._outbound:
            if isinstance(item, OutboundAudio):
                self._stats["cleared_chunks"] += 1
                self._stats["sent_samples"] -= item.samples
            else:
                kept.append(item)
        kept.append(OutboundClear(epoch))
        self._outbound = kept
        self._out_wait.wake()

    @property
    def played_samples(self) -> int:
        """Bot audio the caller has heard, in samples of ``bot_format``.

        Reported by the far end where it can (Twilio marks), else what was sent.
        """
        key = "played_samples" if self.reports_playback else "sent_samples"
        return self._stats[key]

    def statistics(self) -> LinkStatistics:
        """A snapshot of the counters."""
        return LinkStatistics(**self._stats)
