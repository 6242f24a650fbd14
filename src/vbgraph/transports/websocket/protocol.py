"""vbgraph's own WebSocket protocol for apps, server side (sans-I/O).

Theory of operation
-------------------
The wire protocol is specified in ``docs/protocols/websocket.md``: the
client opens ``GET /ws``, sends one JSON ``start`` message naming its audio
format, then binary messages of raw audio and a few JSON control messages
(``interrupt``, ``mark``, ``text``, ``end``); the server answers ``started``,
then binary bot audio paced at real time, ``clear`` on an interruption,
``mark``, ``event`` and finally ``end`` (or an ``error`` before it closes).

:class:`ServerProtocol` holds one connection's state and nothing else. The
shell feeds it every message it reads:

* :meth:`ServerProtocol.receive_text` / :meth:`ServerProtocol.receive_binary`
  return one typed event (``Start``, ``Audio``, ``Interrupt``, ``MarkPlayed``,
  ``Text``, ``End``: see :mod:`.messages`) or raise
  :class:`~.messages.ProtocolViolation`. After a violation the connection is
  ``CLOSED``: the caller must send :meth:`ServerProtocol.send_error` of it and
  close the socket with ``violation.close_code``;
* the ``send_*`` methods return the JSON text of a server message (``None``
  when there is nothing to send) and move the state where a message does.

The connection's life is the table :data:`TRANSITIONS`, applied by
:func:`apply` only::

    AWAIT_START --start--> STREAMING --end--> ENDING
         |                    |  ^ audio,         |  ^ interrupt, mark
         |                    |  | interrupt,     |  |
         |                    |  | mark, text     |  |
         +---- server_end, violation, close ------+--+--> CLOSED

A client message the table does not allow in the current state (audio before
``start``, a second ``start``, audio after ``end``) is a violation with code
``unexpected_message``. This module imports no asyncio or network library.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from ...errors import IllegalTransitionError
from .events import EventEncoder, format_json
from .messages import (
    MESSAGE_FIELDS,
    Audio,
    ClientEvent,
    End,
    Interrupt,
    MarkPlayed,
    ProtocolViolation,
    Start,
    Text,
    decode,
    parse_start,
    string_field,
)

__all__ = ["TRANSITIONS", "ServerProtocol", "Trigger", "WireState", "apply"]

_MAX_MARKS = 1024  # unanswered marks remembered (a client that never echoes cannot grow memory)


class WireState(StrEnum):
    """Where a connection is in its life."""

    AWAIT_START = "await_start"
    STREAMING = "streaming"
    ENDING = "ending"
    """The client sent ``end``: the bot may still be speaking."""
    CLOSED = "closed"


class Trigger(StrEnum):
    """What moves a connection: client messages, then the server's and the socket's."""

    START = "start"
    AUDIO = "audio"
    INTERRUPT = "interrupt"
    MARK = "mark"
    TEXT = "text"
    END = "end"
    SERVER_END = "server_end"
    """The session ended and the server sent ``end``."""
    VIOLATION = "violation"
    CLOSE = "close"
    """The socket closed (either side)."""


W, T = WireState, Trigger

TRANSITIONS: dict[tuple[WireState, Trigger], WireState] = {
    (W.AWAIT_START, T.START): W.STREAMING,
    (W.STREAMING, T.AUDIO): W.STREAMING,
    (W.STREAMING, T.INTERRUPT): W.STREAMING,
    (W.STREAMING, T.MARK): W.STREAMING,
    (W.STREAMING, T.TEXT): W.STREAMING,
    (W.STREAMING, T.END): W.ENDING,
    # After `end` the caller is silent but may still stop the bot or confirm playback.
    (W.ENDING, T.INTERRUPT): W.ENDING,
    (W.ENDING, T.MARK): W.ENDING,
    **{(s, t): W.CLOSED for s in W for t in (T.SERVER_END, T.VIOLATION, T.CLOSE)},
}
"""(state, trigger) → next state; a missing pair is illegal."""

_TRIGGERS = {name: Trigger(name) for name in MESSAGE_FIELDS}
"""Message type → its trigger in :data:`TRANSITIONS`."""
_WHERE = {
    W.AWAIT_START: "before the start message",
    W.STREAMING: "after the start message",
    W.ENDING: "after the end message",
    W.CLOSED: "on a closed connection",
}


def apply(state: WireState, trigger: Trigger) -> WireState:
    """The state after ``trigger``; raises :class:`IllegalTransitionError` if not allowed."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransitionError("websocket connection", state.value, trigger.value) from None


class ServerProtocol:
    """One connection's protocol state (see the module docstring).

    ``max_text_chars`` bounds a JSON message, ``max_audio_ms`` one binary
    message (at the client's format); larger ones are ``message_too_big``.
    """

    def __init__(self, *, max_text_chars: int = 65_536, max_audio_ms: float = 1000.0) -> None:
        self.state = WireState.AWAIT_START
        self.max_text_chars = max_text_chars
        self.max_audio_ms = max_audio_ms
        self.start: Start | None = None
        """The start message, once received."""
        self._encoder = EventEncoder()
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._max_audio_bytes = 0
        self._parsers: dict[str, Callable[[Mapping[str, Any]], ClientEvent]] = {
            "start": self._parse_start,
            "interrupt": lambda obj: Interrupt(),
            "end": lambda obj: End(),
            "text": lambda obj: Text(
                string_field(obj, "text", "text", required=True, limit=self.max_text_chars)
            ),
            "mark": self._parse_mark,
        }

    # -- client → server -------------------------------------------------------------------

    def receive_text(self, text: str) -> ClientEvent:
        """Parse one text message; raises :class:`~.messages.ProtocolViolation`."""
        try:
            kind, obj = decode(text, self.max_text_chars)
            self._advance(_TRIGGERS[kind])
            return self._parsers[kind](obj)
        except ProtocolViolation:
            self.state = WireState.CLOSED
            raise

    def receive_binary(self, data: bytes) -> Audio:
        """Parse one binary message (caller audio); raises :class:`~.messages.ProtocolViolation`."""
        try:
            return self._audio(data)
        except ProtocolViolation:
            self.state = WireState.CLOSED
            raise

    def connection_closed(self) -> None:
        """The socket closed; nothing more is received or sent."""
        self.state = apply(self.state, Trigger.CLOSE)

    # -- server → client -------------------------------------------------------------------

    def send_started(self, session_id: str) -> str | None:
        """``started``: the session runs; echoes the formats in effect.

        ``None`` when the connection closed meanwhile (the client broke the
        protocol right after ``start``); before ``start`` it is a usage error.
        """
        start = self.start
        if self.state is WireState.CLOSED:
            return None
        if start is None:
            raise IllegalTransitionError("websocket connection", self.state.value, "started")
        return _dump(
            type="started",
            version=1,
            session_id=session_id,
            format=format_json(start.format),
            output_format=format_json(start.output_format),
        )

    def send_clear(self) -> str | None:
        """``clear``: the bot was interrupted; the client drops the bot audio it buffers."""
        return None if self.state is WireState.CLOSED else _dump(type="clear")

    def send_mark(self, name: str, samples: int) -> str | None:
        """``mark``: everything sent before it is one finished utterance (``samples`` in all)."""
        if self.state is WireState.CLOSED:
            return None
        if self.start is not None and self.start.playback_marks:
            self._marks[name] = samples
            while len(self._marks) > _MAX_MARKS:
                self._marks.popitem(last=False)
        return _dump(type="mark", name=name)

    def send_event(self, event: object) -> str | None:
        """``event``: a session bus event the client asked for; ``None`` if not forwarded."""
        if self.state is WireState.CLOSED:
            return None
        wanted = None if self.start is None else self.start.events
        fields = self._encoder.encode(event)
        if fields is None or (wanted is not None and fields["event"] not in wanted):
            return None
        return _dump(type="event", **fields)

    def send_error(self, code: str, message: str, *, fatal: bool = True) -> str:
        """``error``; a fatal one closes the connection (then close with ``CLOSE_CODES[code]``)."""
        if fatal:
            self.state = apply(self.state, Trigger.VIOLATION)
        return _dump(type="error", code=code, message=message, fatal=fatal)

    def send_end(self, reason: str = "") -> str | None:
        """``end``: the session has ended; close the socket with 1000 after it."""
        if self.state is WireState.CLOSED:
            return None
        self.state = apply(self.state, Trigger.SERVER_END)
        return _dump(type="end", reason=reason)

    # -- helpers ---------------------------------------------------------------------------

    def _advance(self, trigger: Trigger) -> None:
        try:
            self.state = apply(self.state, trigger)
        except IllegalTransitionError:
            where = _WHERE[self.state]
            raise ProtocolViolation(
                "unexpected_message", f"'{trigger.value}' message {where}"
            ) from None

    def _audio(self, data: bytes) -> Audio:
        if self.state is WireState.AWAIT_START:
            raise ProtocolViolation(
                "unexpected_message",
                "binary audio before the start message: send "
                '{"type": "start", "format": {...}} first',
            )
        self._advance(Trigger.AUDIO)
        assert self.start is not None
        fmt = self.start.format
        if len(data) > self._max_audio_bytes:
            raise ProtocolViolation(
                "message_too_big",
                f"audio message of {len(data)} bytes (at most "
                f"{self.max_audio_ms:g} ms = {self._max_audio_bytes} bytes of {fmt})",
            )
        samples, rest = divmod(len(data), fmt.frame_bytes)
        if rest:
            raise ProtocolViolation(
                "partial_sample",
                f"audio message of {len(data)} bytes is not whole "
                f"{fmt.frame_bytes}-byte samples of {fmt}",
            )
        return Audio(data, samples)

    def _parse_start(self, obj: Mapping[str, Any]) -> Start:
        start = self.start = parse_start(obj, EventEncoder.NAMES)
        fmt = start.format
        self._max_audio_bytes = max(fmt.bytes_for_ms(self.max_audio_ms), fmt.frame_bytes)
        return start

    def _parse_mark(self, obj: Mapping[str, Any]) -> MarkPlayed:
        name = string_field(obj, "mark", "name", required=True, limit=256)
        samples = self._marks.pop(name, None)
        if samples is None:
            raise ProtocolViolation(
                "unknown_mark", f"mark {name!r} was not sent (or was already echoed)"
            )
        return MarkPlayed(name, samples)


def _dump(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
