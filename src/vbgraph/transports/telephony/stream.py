"""One telephony media stream, sans-I/O: the state machine every dialect shares.

Theory of operation
-------------------
A provider (Twilio, Telnyx, Plivo, Exotel, Vonage) opens one WebSocket per
call to our server. :class:`MediaStream` is that connection's protocol state,
parameterized by a :class:`~._common.Dialect` (the wire's vocabulary). It
owns no socket: the shell feeds it what arrives and sends what it produces.

*Receiving.* Call :meth:`MediaStream.receive_text` (or
:meth:`~MediaStream.receive_binary`) with each message, then drain
:meth:`~MediaStream.events_received`. The dialect says which kind of event
a message is; the transition table below decides whether that kind is allowed
now, and only then is the message decoded (so a message out of order gets an
out-of-order error, not a complaint about its fields)::

    state            event                        next state
    ---------------  ---------------------------  -----------------------------
    AWAITING_START   connected, error             AWAITING_START
    AWAITING_START   start                        STREAMING
    AWAITING_START   stop                         STOPPED
    AWAITING_START   media, dtmf, mark, cleared   refused: nothing started yet
    STREAMING        media, dtmf, mark,           STREAMING
                     cleared, error
    STREAMING        stop                         STOPPED
    STREAMING        connected, start             refused: a second start
    STOPPED          anything                     ignored (counted as ``late``)

A refused event, a message that is not JSON, a missing or mistyped field, a
corrupt base64 payload or audio that is not whole sample frames raises
:class:`~._common.StreamProtocolError` (naming dialect, event and field) and
the stream is failed: close the connection. An event name the dialect does
not know is *ignored* and counted (``ignored``): providers add events, and a
call should not drop for one. Media chunks that arrive out of order (Telnyx
does not guarantee order) are counted (``out_of_order``), not reordered.

*Sending.* :meth:`~MediaStream.send_audio` takes the bot's audio in the
call's ``bot_format`` with its position (samples of bot audio sent so far,
:attr:`OutboundAudio.end_sample <vbgraph.transports.link.OutboundAudio>`),
:meth:`~MediaStream.send_mark` places a named mark, and
:meth:`~MediaStream.send_clear` asks the far end to drop what it still
buffers. Then drain :meth:`~MediaStream.data_to_send` onto the socket.

*Marks tell the playback position.* Every mark is named ``label@position``
and remembered: besides the marks asked for (the end of each utterance), one
goes out after every ``mark_interval_ms`` of audio. When the provider echoes
one (it has played everything before it) the stream reports
:class:`MarkPlayed` with its position, for
:meth:`CallLink.confirm_played <vbgraph.transports.link.CallLink.confirm_played>`.
Twilio also echoes the marks still pending when it executes a ``clear``,
although their audio was dropped, not played: marks sent before a clear are
therefore reported as :class:`MarkCleared` and never confirm playback. (A mark
whose audio did finish just before the clear arrived is reported cleared too:
the position is under-reported by at most the audio in flight, never over.)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import UsageError
from ._common import (
    CallStarted,
    Dialect,
    DtmfReceived,
    Framer,
    MarkEchoed,
    MediaReceived,
    PlaybackCleared,
    RemoteError,
    StreamConnected,
    StreamProtocolError,
    StreamStopped,
    WireEvent,
    WireMessage,
    load_json,
)

__all__ = [
    "TRANSITIONS",
    "MarkCleared",
    "MarkPlayed",
    "MediaStream",
    "State",
    "StreamEvent",
    "StreamStatistics",
]

_MAX_PENDING_MARKS = 256
"""Marks awaiting their echo; beyond this the oldest are forgotten (counted)."""


class State(enum.Enum):
    """Where a media stream is in its life."""

    AWAITING_START = "awaiting_start"
    STREAMING = "streaming"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """The far end has played the bot's audio up to ``position`` (samples of ``bot_format``)."""

    name: str
    position: int


@dataclass(frozen=True, slots=True)
class MarkCleared:
    """A mark came back because a clear dropped its audio: it was not played."""

    name: str
    position: int


StreamEvent = (
    StreamConnected
    | CallStarted
    | MediaReceived
    | DtmfReceived
    | MarkPlayed
    | MarkCleared
    | PlaybackCleared
    | StreamStopped
    | RemoteError
)

_Kind = type[WireEvent]

TRANSITIONS: Mapping[State, Mapping[_Kind, State]] = {
    State.AWAITING_START: {
        StreamConnected: State.AWAITING_START,
        RemoteError: State.AWAITING_START,
        CallStarted: State.STREAMING,
        StreamStopped: State.STOPPED,
    },
    State.STREAMING: {
        MediaReceived: State.STREAMING,
        DtmfReceived: State.STREAMING,
        MarkEchoed: State.STREAMING,
        PlaybackCleared: State.STREAMING,
        RemoteError: State.STREAMING,
        StreamStopped: State.STOPPED,
    },
}
"""The transition table (see the module docstring); a pair not listed is refused.

In ``STOPPED`` every event is ignored and counted instead.
"""

_WHY = {
    State.AWAITING_START: "before the stream's start message",
    State.STREAMING: "after the stream started (a second start?)",
}


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """Counters of one media stream."""

    messages: int
    media_bytes: int
    ignored: int
    """Messages with an event the dialect does not use."""
    late: int
    """Messages after the stream stopped."""
    out_of_order: int
    """Media chunks numbered at or below one already received."""
    marks_sent: int
    marks_played: int
    marks_cleared: int
    marks_unknown: int
    """Echoes of marks we did not send (or forgot: more than 256 pending)."""
    held_bytes_dropped: int
    """Bot audio held back for framing and dropped by a clear."""


class MediaStream:
    """The protocol state of one media-stream connection; see the module docstring.

    ``mark_interval_ms`` is how much bot audio goes out between position marks
    (0: only the marks asked for with :meth:`send_mark`).
    """

    def __init__(self, dialect: Dialect, *, mark_interval_ms: float = 200.0) -> None:
        if mark_interval_ms < 0:
            raise UsageError(f"mark_interval_ms must be >= 0, got {mark_interval_ms}")
        self.dialect = dialect
        self.mark_interval_ms = mark_interval_ms
        self._state = State.AWAITING_START
        self._call: CallStarted | None = None
        self._framer: Framer | None = None
        self._interval = 0
        self._events: list[StreamEvent] = []
        self._out: list[WireMessage] = []
        self._pending: dict[str, int] = {}
        self._cleared: dict[str, int] = {}
        self._next = State.AWAITING_START
        self._last_mark = 0
        self._position = 0
        self._last_chunk = -1
        self._played = 0
        self._counts = dict.fromkeys(StreamStatistics.__dataclass_fields__, 0)

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def call(self) -> CallStarted | None:
        """The call, once its start message arrived."""
        return self._call

    @property
    def played_position(self) -> int:
        """The furthest position the far end reported played (samples of ``bot_format``)."""
        return self._played

    # -- receiving -------------------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Feed one text message; then drain :meth:`events_received`.

        Raises :class:`~._common.StreamProtocolError` if the message breaks
        the protocol; the stream is failed after that.
        """
        self._check_usable()
        try:
            msg = load_json(self.dialect.name, text)
            kind = self._admit(self.dialect.events.get(msg.event), msg.event)
            if kind is not None:
                self._apply(self.dialect.decode(msg, self._call))
        except StreamProtocolError:
            self._state = State.FAILED
            raise

    def receive_binary(self, data: bytes) -> None:
        """Feed one binary message (Vonage audio); a protocol error where the dialect has none."""
        self._check_usable()
        decode = self.dialect.decode_binary
        try:
            if decode is None:
                raise StreamProtocolError(
                    self.dialect.name, f"unexpected binary message ({len(data)} bytes)"
                )
            if self._admit(MediaReceived, "media") is not None:
                self._apply(decode(data, self._call))
        except StreamProtocolError:
            self._state = State.FAILED
            raise

    def events_received(self) -> list[StreamEvent]:
        """The events decoded since the last call, in order."""
        events, self._events = self._events, []
        return events

    def _check_usable(self) -> None:
        if self._state is State.FAILED:
            raise UsageError(f"{self.dialect.name} media stream failed earlier: close it")

    def _admit(self, kind: _Kind | None, name: str) -> _Kind | None:
        """Apply the transition table to a message of ``kind``: its kind if it is to be decoded."""
        counts = self._counts
        counts["messages"] += 1
        if kind is None:
            counts["ignored"] += 1
            return None
        if self._state is State.STOPPED:
            counts["late"] += 1
            return None
        following = TRANSITIONS[self._state].get(kind)
        if following is None:
            raise StreamProtocolError(
                self.dialect.name,
                f"'{name}' is not allowed {_WHY[self._state]} (state {self._state.value})",
                event=name,
            )
        self._next = following
        return kind

    def _apply(self, event: WireEvent) -> None:
        counts = self._counts
        self._state = self._next
        if isinstance(event, MarkEchoed):
            self._echoed(event.name)
            return
        if isinstance(event, CallStarted):
            self._started(event)
        elif isinstance(event, MediaReceived):
            counts["media_bytes"] += len(event.payload)
            if event.chunk >= 0:
                if event.chunk <= self._last_chunk:
                    counts["out_of_order"] += 1
                self._last_chunk = max(self._last_chunk, event.chunk)
        elif isinstance(event, PlaybackCleared):
            # Plivo and Vonage confirm a clear and never echo the dropped marks.
            self._cleared.clear()
        self._events.append(event)

    def _started(self, call: CallStarted) -> None:
        self._call = call
        self._framer = Framer(self.dialect.framing(call.bot_format), call.bot_format)
        self._interval = call.bot_format.samples_for_ms(self.mark_interval_ms)

    def _echoed(self, name: str) -> None:
        counts = self._counts
        position = self._pending.pop(name, None)
        if position is not None:
            counts["marks_played"] += 1
            self._played = max(self._played, position)
            self._events.append(MarkPlayed(name, position))
            return
        position = self._cleared.pop(name, None)
        if position is not None:
            counts["marks_cleared"] += 1
            self._events.append(MarkCleared(name, position))
            return
        counts["marks_unknown"] += 1

    # -- sending ---------------------------------------------------------------------------

    def send_audio(self, payload: bytes, end_sample: int) -> None:
        """Queue the bot's audio (``bot_format``); ``end_sample`` is its end position.

        Adds a position mark once ``mark_interval_ms`` of audio went out since
        the last mark. After the stream stopped, audio is dropped.
        """
        framer = self._sending()
        if framer is None:
            return
        call = self._call
        assert call is not None
        self._position = end_sample
        for piece in framer.push(payload):
            self._out.append(self.dialect.encode_media(call, piece))
        position = end_sample - framer.held_samples
        if self._interval and position - self._last_mark >= self._interval:
            self._place_mark("audio", position)

    def send_mark(self, label: str) -> str:
        """Queue a mark after everything sent so far; returns its wire name.

        Its position is the end of the last audio. Audio held back for
        framing is sent first, padded with silence to a whole unit.
        """
        framer = self._sending()
        if framer is None:
            return ""
        self.flush()
        return self._place_mark(label, self._position)

    def send_clear(self) -> None:
        """Queue a clear: the far end drops the audio it buffers (barge-in).

        Audio held back for framing is dropped too; marks still awaiting their
        echo will be reported as :class:`MarkCleared`.
        """
        framer = self._sending()
        if framer is None:
            return
        call = self._call
        assert call is not None
        self._counts["held_bytes_dropped"] += framer.reset()
        self._cleared.update(self._pending)
        self._pending.clear()
        self._trim(self._cleared)
        self._out.append(self.dialect.encode_clear(call))

    def flush(self) -> None:
        """Send audio held back for framing now (padded with silence to a whole unit)."""
        framer = self._sending()
        if framer is None:
            return
        call = self._call
        assert call is not None
        for piece in framer.flush():
            self._out.append(self.dialect.encode_media(call, piece))

    def data_to_send(self) -> list[WireMessage]:
        """The messages queued since the last call, in order (text or binary)."""
        out, self._out = self._out, []
        return out

    def _sending(self) -> Framer | None:
        if self._state is State.AWAITING_START:
            raise UsageError(f"{self.dialect.name} media stream: nothing to send before start")
        if self._state is not State.STREAMING:
            return None
        return self._framer

    def _place_mark(self, label: str, position: int) -> str:
        call = self._call
        assert call is not None
        name = f"{label}@{position}"
        self._pending[name] = position
        self._trim(self._pending)
        self._last_mark = position
        self._counts["marks_sent"] += 1
        self._out.append(self.dialect.encode_mark(call, name))
        return name

    def _trim(self, marks: dict[str, int]) -> None:
        # A peer that never echoes must not grow memory; a forgotten mark that
        # does come back later is counted as unknown.
        while len(marks) > _MAX_PENDING_MARKS:
            del marks[next(iter(marks))]

    def statistics(self) -> StreamStatistics:
        """A snapshot of the counters."""
        return StreamStatistics(**self._counts)
