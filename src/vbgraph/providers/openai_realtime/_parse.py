"""Field checks and per-event parsers for :mod:`.protocol` (not public API).

Every failure is a :class:`~vbgraph.errors.ProviderProtocolError` naming the
event type and the field, so a malformed message reads as what it is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from ...errors import ProviderProtocolError
from .events import (
    FunctionCall,
    InputCommitted,
    ItemTruncated,
    ResponseDone,
    ServerError,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptDone,
    UserTranscript,
    UserTranscriptFailed,
)

__all__ = [
    "AUDIO_DELTA",
    "IGNORED",
    "SIMPLE",
    "TRANSCRIPT_DELTA",
    "TRANSCRIPT_DONE",
    "b64",
    "integer",
    "obj",
    "optional_text",
    "response_done",
    "server_error",
    "text",
    "transcript_done",
]

AUDIO_DELTA = ("response.output_audio.delta", "response.audio.delta")
TRANSCRIPT_DELTA = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)
TRANSCRIPT_DONE = (
    "response.output_audio_transcript.done",
    "response.audio_transcript.done",
    "response.output_text.done",
    "response.text.done",
)
IGNORED = frozenset(
    {
        "rate_limits.updated",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.retrieved",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.timeout_triggered",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_audio.done",
        "response.audio.done",
        "response.function_call_arguments.delta",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
    }
)
"""Documented events that carry nothing the client must act on (counted, not parsed)."""


def _fail(kind: str, key: str, what: str) -> ProviderProtocolError:
    return ProviderProtocolError(f"openai realtime: {kind!r} event: field {key!r} {what}")


def obj(event: dict[str, Any], key: str, kind: str) -> dict[str, Any]:
    """``event[key]``, which must be a JSON object."""
    value = event.get(key)
    if not isinstance(value, dict):
        raise _fail(kind, key, "must be an object")
    return value


def text(event: dict[str, Any], key: str, kind: str, empty: bool = False) -> str:
    """``event[key]``, which must be a string (non-empty unless ``empty``)."""
    value = event.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise _fail(kind, key, "must be a non-empty string" if not empty else "must be a string")
    return value


def optional_text(event: dict[str, Any], key: str, kind: str) -> str | None:
    """``event[key]`` if it is a string, ``None`` if absent or null."""
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(kind, key, "must be a string or null")
    return value


def integer(event: dict[str, Any], key: str, kind: str, default: int | None = None) -> int:
    """``event[key]``, a non-negative integer (``default`` when absent, if given)."""
    value = event.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(kind, key, "must be a non-negative integer")
    return value


def b64(event: dict[str, Any], key: str, kind: str) -> bytes:
    """``event[key]`` decoded from base64."""
    value = text(event, key, kind, empty=True)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(kind, key, "is not valid base64") from None


def transcript_done(kind: str, event: dict[str, Any]) -> TranscriptDone:
    """``response.output_audio_transcript.done`` (``transcript``) or ``...text.done`` (``text``)."""
    key = "text" if "text" in kind else "transcript"
    return TranscriptDone(
        text(event, "response_id", kind),
        text(event, "item_id", kind),
        text(event, key, kind, empty=True),
    )


def response_done(kind: str, event: dict[str, Any]) -> ResponseDone:
    """``response.done``: id, status, reason, and function calls found in its ``output``."""
    response = obj(event, "response", kind)
    details = response.get("status_details")
    reason = None
    if isinstance(details, dict):
        reason = optional_text(details, "reason", kind)
    output = response.get("output") or []
    if not isinstance(output, list):
        raise _fail(kind, "response.output", "must be a list")
    rid = text(response, "id", kind)
    calls = [
        FunctionCall(
            rid,
            text(item, "id", kind),
            text(item, "call_id", kind),
            text(item, "name", kind),
            text(item, "arguments", kind, empty=True),
        )
        for item in output
        if isinstance(item, dict) and item.get("type") == "function_call"
    ]
    return ResponseDone(rid, text(response, "status", kind), reason, tuple(calls))


def server_error(kind: str, event: dict[str, Any]) -> ServerError:
    """An ``error`` event (``answers`` is filled in by the protocol)."""
    error = obj(event, "error", kind)
    code = error.get("code")
    return ServerError(
        message=text(error, "message", kind, empty=True),
        type=optional_text(error, "type", kind) or "",
        code="" if code is None else str(code),
        param=optional_text(error, "param", kind),
        event_id=optional_text(error, "event_id", kind),
    )


def _speech_started(kind: str, e: dict[str, Any]) -> ServerEvent:
    return SpeechStarted(integer(e, "audio_start_ms", kind), text(e, "item_id", kind))


def _speech_stopped(kind: str, e: dict[str, Any]) -> ServerEvent:
    return SpeechStopped(integer(e, "audio_end_ms", kind), text(e, "item_id", kind))


def _committed(kind: str, e: dict[str, Any]) -> ServerEvent:
    return InputCommitted(text(e, "item_id", kind), optional_text(e, "previous_item_id", kind))


def _cleared(kind: str, e: dict[str, Any]) -> None:
    return None


def _user_transcript(kind: str, e: dict[str, Any]) -> ServerEvent:
    return UserTranscript(text(e, "item_id", kind), text(e, "transcript", kind, empty=True))


def _user_transcript_failed(kind: str, e: dict[str, Any]) -> ServerEvent:
    error = e.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return UserTranscriptFailed(text(e, "item_id", kind), str(message or "transcription failed"))


def _truncated(kind: str, e: dict[str, Any]) -> ServerEvent:
    return ItemTruncated(
        text(e, "item_id", kind),
        integer(e, "content_index", kind, 0),
        integer(e, "audio_end_ms", kind),
    )


SIMPLE: dict[str, Callable[[str, dict[str, Any]], ServerEvent | None]] = {
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": _committed,
    "input_audio_buffer.cleared": _cleared,
    "conversation.item.input_audio_transcription.completed": _user_transcript,
    "conversation.item.input_audio_transcription.failed": _user_transcript_failed,
    "conversation.item.truncated": _truncated,
}
"""Events parsed into a value without touching the protocol's state (beyond the buffer)."""
