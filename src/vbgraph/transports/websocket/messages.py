"""The WebSocket protocol's client messages: their types, fields and checks (sans-I/O).

Each text message is one JSON object with a ``type``; :func:`decode` checks
the envelope (size, JSON, object, known type, no unknown field) and the
``parse_*`` functions check one message's fields. Every failure is a
:class:`ProtocolViolation` with a documented ``code`` (see
:data:`CLOSE_CODES` and ``docs/protocols/websocket.md``); nothing else is
raised, whatever the input (a fuzz test holds this). Unknown fields are
errors on purpose: a typo like ``sample_rte`` must not silently fall back to
a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderProtocolError
from ...formats import AudioFormat, Encoding

__all__ = [
    "CLOSE_CODES",
    "ENCODINGS",
    "MESSAGE_FIELDS",
    "SAMPLE_RATES",
    "Audio",
    "ClientEvent",
    "End",
    "Interrupt",
    "MarkPlayed",
    "ProtocolViolation",
    "Start",
    "Text",
    "decode",
    "parse_format",
    "parse_start",
    "string_field",
]

ENCODINGS: tuple[str, ...] = ("pcm_s16le", "mulaw", "alaw")
"""Audio encodings a client may use (``format.encoding``)."""
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 24000, 48000)
"""Sample rates a client may use (``format.sample_rate``)."""

CLOSE_CODES: Mapping[str, int] = {
    "bad_json": 1008,
    "bad_message": 1008,
    "unknown_type": 1008,
    "unexpected_message": 1008,
    "unknown_mark": 1008,
    "partial_sample": 1008,
    "start_timeout": 1008,
    "unsupported_format": 1003,
    "message_too_big": 1009,
    "session_failed": 1011,
    "server_full": 1013,
    "server_draining": 1013,
}
"""Error code → WebSocket close code that follows the ``error`` message.

1008 policy violation (the message broke the protocol), 1003 unsupported
data (a format this server does not take), 1009 message too big, 1011 the
server failed, 1013 try again later.
"""

MESSAGE_FIELDS: Mapping[str, frozenset[str]] = {
    "start": frozenset(
        {"type", "format", "output_format", "call_id", "metadata", "events", "playback_marks"}
    ),
    "interrupt": frozenset({"type"}),
    "mark": frozenset({"type", "name"}),
    "text": frozenset({"type", "text"}),
    "end": frozenset({"type"}),
}
"""Message type → the fields it may have."""

_FORMAT_FIELDS = frozenset({"encoding", "sample_rate", "channels"})


class ProtocolViolation(ProviderProtocolError):
    """A client message broke the protocol; ``code`` is one of :data:`CLOSE_CODES`.

    The connection cannot go on: send ``ServerProtocol.send_error(v.code,
    str(v))`` and close with ``v.close_code``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.close_code = CLOSE_CODES[code]
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Start:
    """The call starts: audio formats both ways and who is calling."""

    format: AudioFormat
    """What the client sends (the link's ``caller_format``)."""
    output_format: AudioFormat
    """What the client wants back (the link's ``bot_format``)."""
    call_id: str = ""
    metadata: Mapping[str, str] | None = None
    events: frozenset[str] | None = None
    """Event names to forward; ``None``: all of them."""
    playback_marks: bool = False
    """The client echoes every ``mark`` once it has played the audio before it."""


@dataclass(frozen=True, slots=True)
class Audio:
    """Caller audio in the start message's ``format``, whole sample frames."""

    data: bytes
    samples: int


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The client stopped the bot (its own barge-in detection, a button)."""


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """The client has played all bot audio up to the mark ``name`` (``samples`` in all)."""

    name: str
    samples: int


@dataclass(frozen=True, slots=True)
class Text:
    """Typed user text (parsed, but this server version does not feed it to the graph)."""

    text: str


@dataclass(frozen=True, slots=True)
class End:
    """The caller is done; the bot finishes speaking, then the server ends the call."""


ClientEvent = Start | Audio | Interrupt | MarkPlayed | Text | End


def decode(text: str, max_chars: int) -> tuple[str, dict[str, Any]]:
    """The ``type`` and object of one text message, its envelope checked."""
    if len(text) > max_chars:
        raise ProtocolViolation(
            "message_too_big", f"text message of {len(text)} characters (at most {max_chars})"
        )
    try:
        obj = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and UnicodeError for lone surrogates
        raise ProtocolViolation("bad_json", f"text message is not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolViolation("bad_json", "text message is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolViolation("bad_json", "text message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolViolation("bad_message", "message has no string field 'type'")
    allowed = MESSAGE_FIELDS.get(kind)
    if allowed is None:
        known = ", ".join(sorted(MESSAGE_FIELDS))
        raise ProtocolViolation("unknown_type", f"unknown message type {kind!r} (known: {known})")
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ProtocolViolation("bad_message", f"'{kind}' message has unknown field(s) {extra}")
    return kind, obj


def parse_start(obj: Mapping[str, Any], event_names: Sequence[str]) -> Start:
    """The fields of a ``start`` message; ``event_names`` are the events it may list."""
    if "format" not in obj:
        raise ProtocolViolation("bad_message", "'start' message needs a 'format' object")
    fmt = parse_format(obj["format"], "format")
    out_obj = obj.get("output_format")
    out = fmt if out_obj is None else parse_format(out_obj, "output_format")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ProtocolViolation("bad_message", "'metadata' must be an object of string values")
    events = obj.get("events")
    if events is not None and (
        not isinstance(events, list)
        or not all(isinstance(e, str) and e in event_names for e in events)
    ):
        names = ", ".join(event_names)
        raise ProtocolViolation("bad_message", f"'events' must be a list of names from: {names}")
    marks = obj.get("playback_marks", False)
    if not isinstance(marks, bool):
        raise ProtocolViolation("bad_message", "'playback_marks' must be true or false")
    return Start(
        format=fmt,
        output_format=out,
        call_id=string_field(obj, "start", "call_id", required=False, limit=256),
        metadata=dict(metadata),
        events=None if events is None else frozenset(events),
        playback_marks=marks,
    )


def parse_format(obj: object, name: str) -> AudioFormat:
    """An audio format object (``format``, ``output_format``)."""
    if not isinstance(obj, dict):
        raise ProtocolViolation("bad_message", f"'{name}' must be an object")
    extra = sorted(set(obj) - _FORMAT_FIELDS)
    if extra:
        raise ProtocolViolation("bad_message", f"'{name}' has unknown field(s) {extra}")
    encoding, rate = obj.get("encoding"), obj.get("sample_rate")
    channels = obj.get("channels", 1)
    if not isinstance(encoding, str):
        raise ProtocolViolation(
            "bad_message", f"'{name}.encoding' must be a string, one of {ENCODINGS}"
        )
    # type() is: JSON true is a Python bool, an int subclass, and 16000.0 is not a rate.
    if type(rate) is not int or type(channels) is not int:
        raise ProtocolViolation(
            "bad_message", f"'{name}.sample_rate' and '{name}.channels' must be integers"
        )
    if encoding not in ENCODINGS:
        raise ProtocolViolation(
            "unsupported_format",
            f"'{name}.encoding' {encoding!r} is not supported (one of {ENCODINGS})",
        )
    if rate not in SAMPLE_RATES:
        raise ProtocolViolation(
            "unsupported_format",
            f"'{name}.sample_rate' {rate} is not supported (one of {SAMPLE_RATES})",
        )
    if channels != 1:
        raise ProtocolViolation(
            "unsupported_format", f"'{name}.channels' must be 1 (mono), got {channels}"
        )
    return AudioFormat(rate, 1, Encoding(encoding))


def string_field(obj: Mapping[str, Any], kind: str, key: str, *, required: bool, limit: int) -> str:
    """A string field of at most ``limit`` characters (``""`` when optional and absent)."""
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit or (required and not value):
        raise ProtocolViolation(
            "bad_message",
            f"'{kind}.{key}' must be a non-empty string of at most {limit} characters",
        )
    return value
