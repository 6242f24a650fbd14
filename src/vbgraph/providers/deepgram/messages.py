"""Deepgram live STT server messages: typed events and their parsers (sans-I/O).

Each JSON text frame from ``/v1/listen`` is one message, discriminated by
``type`` (``../shared/protocols/deepgram.md``; field names as in Deepgram's
SDK types). :func:`parse_message` turns one into an event:

* ``Results`` → :class:`Transcript` (first alternative only: requests never
  ask for more);
* ``SpeechStarted`` → :class:`SpeechStarted`, ``UtteranceEnd`` →
  :class:`UtteranceEnd`, ``Metadata`` → :class:`Metadata`, ``Error`` →
  :class:`ServerError`;
* any other ``type`` → ``None``: Deepgram adds types over time, so they are
  skipped (the caller counts them).

Input that breaks the protocol raises
:class:`~vbgraph.errors.ProviderProtocolError` naming the message type and
field: text that is not JSON or not an object with a string ``type``, a known
type whose fields are missing or of the wrong type. Optional fields Deepgram
leaves out (``is_final``, ``words``, ``channel_index`` ...) take their
documented defaults. The close of the socket is :class:`StreamClosed`, made by
:class:`~vbgraph.providers.deepgram.protocol.ListenConnection`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ...errors import ProviderProtocolError

__all__ = [
    "CloseKind",
    "ListenEvent",
    "Metadata",
    "ServerError",
    "SpeechStarted",
    "StreamClosed",
    "Transcript",
    "TranscriptWord",
    "UtteranceEnd",
    "parse_message",
]

# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptWord:
    """One word of a transcript; times are seconds since the connection's first audio."""

    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str
    speaker: int | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A ``Results`` message: the first alternative of the audio span ``[start, start+duration)``.

    ``is_final`` False is an interim hypothesis that a later message replaces;
    True fixes the span. ``speech_final`` marks an endpoint (a pause);
    ``from_finalize`` a final forced by ``Finalize``.
    """

    text: str
    is_final: bool
    speech_final: bool
    from_finalize: bool
    start: float
    duration: float
    confidence: float
    words: tuple[TranscriptWord, ...] = ()
    channel: int = 0
    channels: int = 1
    languages: tuple[str, ...] = ()
    request_id: str = ""

    @property
    def end(self) -> float:
        """End of the audio span, in seconds since the connection's first audio."""
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Deepgram's VAD heard speech begin at ``timestamp`` (needs ``vad_events``)."""

    timestamp: float
    channel: int = 0


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """A gap of ``utterance_end_ms`` followed the last word, which ended at ``last_word_end``."""

    last_word_end: float
    channel: int = 0


@dataclass(frozen=True, slots=True)
class Metadata:
    """The summary sent after ``CloseStream``, just before the server closes."""

    request_id: str
    duration: float
    channels: int
    created: str = ""
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class ServerError:
    """An ``Error`` message (``SchemaError``: the server could not parse a text message)."""

    variant: str
    description: str
    code: str = ""


class CloseKind(StrEnum):
    """What a close means for the caller."""

    COMPLETE = "complete"
    """The server closed normally after ``CloseStream``: everything was transcribed."""
    IDLE_TIMEOUT = "idle_timeout"
    """``NET-0001``: no audio or text for ~10 s. Reconnect when there is audio again."""
    REFUSED = "refused"
    """The server refused the audio or the client (``DATA-0000``, policy): do not retry."""
    DROPPED = "dropped"
    """Any other close, or none at all (the network): reconnect."""


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The socket closed. ``code`` 1006 means no close frame arrived."""

    code: int
    reason: str
    kind: CloseKind
    error_code: str = ""

    def __str__(self) -> str:
        return f"close {self.code} {self.reason!r}" if self.reason else f"close {self.code}"


ListenEvent = Transcript | SpeechStarted | UtteranceEnd | Metadata | ServerError | StreamClosed


# -- message parsers: each returns an event or raises ProviderProtocolError -----------------


def _bad(kind: str, what: str) -> ProviderProtocolError:
    return ProviderProtocolError(f"deepgram {kind} message: {what}")


def _finite(value: Any) -> bool:
    # json.loads accepts NaN and Infinity; a time that is not finite cannot be mapped.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(obj: Mapping[str, Any], key: str, kind: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if value is None:
        raise _bad(kind, f"'{key}' is missing")
    if not _finite(value):
        raise _bad(kind, f"'{key}' is not a finite number: {value!r}")
    return float(value)


def _bool(obj: Mapping[str, Any], key: str, kind: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(kind, f"'{key}' is not true/false: {value!r}")
    return value


def _str(obj: Mapping[str, Any], key: str, kind: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise _bad(kind, f"'{key}' is not a string: {value!r}")
    return value


def _channel(value: Any, kind: str) -> tuple[int, int]:
    """``[channel, total]`` as Deepgram sends it (absent: mono)."""
    if value is None:
        return 0, 1
    if not isinstance(value, list) or not value or not all(_finite(v) for v in value):
        raise _bad(kind, f"channel index is not a list of numbers: {value!r}")
    return int(value[0]), int(value[1]) if len(value) > 1 else 1


def _word(obj: Any) -> TranscriptWord:
    if not isinstance(obj, dict):
        raise _bad("Results", f"a word is not an object: {obj!r}")
    word = _str(obj, "word", "Results")
    speaker = obj.get("speaker")
    if not _finite(speaker):
        speaker = None
    return TranscriptWord(
        word,
        _num(obj, "start", "Results"),
        _num(obj, "end", "Results"),
        _num(obj, "confidence", "Results", 0.0),
        _str(obj, "punctuated_word", "Results", word),
        None if speaker is None else int(speaker),
    )


def _results(obj: dict[str, Any]) -> Transcript:
    channel = obj.get("channel")
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    if not isinstance(alternatives, list) or not alternatives:
        raise _bad("Results", "'channel.alternatives' is not a non-empty list")
    best = alternatives[0]
    if not isinstance(best, dict):
        raise _bad("Results", "an alternative is not an object")
    words = best.get("words", [])
    if not isinstance(words, list):
        raise _bad("Results", "'words' is not a list")
    languages = best.get("languages") or ()
    if not isinstance(languages, list | tuple) or not all(isinstance(x, str) for x in languages):
        raise _bad("Results", f"'languages' is not a list of strings: {languages!r}")
    index, total = _channel(obj.get("channel_index"), "Results")
    metadata = obj.get("metadata")
    request_id = metadata.get("request_id", "") if isinstance(metadata, dict) else ""
    return Transcript(
        text=_str(best, "transcript", "Results"),
        is_final=_bool(obj, "is_final", "Results"),
        speech_final=_bool(obj, "speech_final", "Results"),
        from_finalize=_bool(obj, "from_finalize", "Results"),
        start=_num(obj, "start", "Results"),
        duration=_num(obj, "duration", "Results"),
        confidence=_num(best, "confidence", "Results", 0.0),
        words=tuple(_word(w) for w in words),
        channel=index,
        channels=total,
        languages=tuple(languages),
        request_id=str(request_id),
    )


def _speech_started(obj: dict[str, Any]) -> SpeechStarted:
    return SpeechStarted(
        _num(obj, "timestamp", "SpeechStarted"), _channel(obj.get("channel"), "SpeechStarted")[0]
    )


def _utterance_end(obj: dict[str, Any]) -> UtteranceEnd:
    return UtteranceEnd(
        _num(obj, "last_word_end", "UtteranceEnd"), _channel(obj.get("channel"), "UtteranceEnd")[0]
    )


def _metadata(obj: dict[str, Any]) -> Metadata:
    return Metadata(
        _str(obj, "request_id", "Metadata"),
        _num(obj, "duration", "Metadata"),
        int(_num(obj, "channels", "Metadata")),
        _str(obj, "created", "Metadata", ""),
        _str(obj, "sha256", "Metadata", ""),
    )


def _error(obj: dict[str, Any]) -> ServerError:
    code = obj.get("code")
    return ServerError(
        _str(obj, "variant", "Error", "Error"),
        _str(obj, "description", "Error", ""),
        "" if code is None else str(code),
    )


_PARSERS: Mapping[str, Callable[[dict[str, Any]], ListenEvent]] = {
    "Results": _results,
    "SpeechStarted": _speech_started,
    "UtteranceEnd": _utterance_end,
    "Metadata": _metadata,
    "Error": _error,
}
"""Message ``type`` → parser; any other type is counted in ``unknown`` and skipped."""


def parse_message(text: str) -> ListenEvent | None:
    """One server text frame as an event; ``None`` for an unknown ``type`` (see module doc)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderProtocolError(
            f"deepgram: a message is not JSON ({exc.msg}): {text[:80]!r}"
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProviderProtocolError(f"deepgram: a message has no 'type': {text[:80]!r}")
    parse = _PARSERS.get(obj["type"])
    return None if parse is None else parse(obj)
