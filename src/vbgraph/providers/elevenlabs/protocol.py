"""ElevenLabs streaming TTS over WebSocket: URL, client messages, server events (sans-I/O).

Theory of operation
-------------------
The wire protocol (``../shared/protocols/elevenlabs.md``): a WebSocket to
``{base}/v1/text-to-speech/{voice_id}/multi-stream-input`` (or
``stream-input``, one context per socket) with ``model_id``,
``output_format`` ... in the query and the key in the ``xi-api-key`` header.
Both directions carry JSON text messages; audio is base64 inside them.

:class:`ElevenLabsClient` holds the client's side of one connection. The
caller (the asyncio shell) calls

* ``open_context(id)`` (BOS: ``{"text": " ", "voice_settings": .., ...}``),
  ``send_text(id, text, flush=...)``, ``keep_alive(id)``,
  ``close_context(id)`` (``close_context: true``; on ``stream-input`` the EOS
  ``{"text": ""}``) and ``close_socket()``; after each it sends every string
  that ``data_to_send()`` returns, in order;
* ``receive_message(text)`` for each message from the server, then drains
  ``events_received()``: :class:`AudioChunk` (decoded audio, optional
  :class:`Alignment`), :class:`ContextFinal` (``isFinal``) and
  :class:`ServerError` (``{"error", "message", "code"}``).

Each context follows :data:`CONTEXT_TRANSITIONS` (open → closing → done).
Sending on a context in a state that does not allow it is local misuse and
raises :class:`~vbgraph.errors.IllegalTransitionError`; the *server* sending
audio or ``isFinal`` for a context the client does not know (never opened,
or already final) is counted in ``stray_messages`` and dropped, not raised:
late messages are normal around a barge-in. Messages with none of the keys
``audio``, ``isFinal`` or ``error`` are counted in ``unknown_messages`` and
ignored (the service may add message types). A message that is not a JSON
object, or whose known fields have the wrong types (audio not base64,
alignment arrays of different lengths ...), raises
:class:`~vbgraph.errors.ProviderProtocolError`; every message stands alone,
so the connection stays usable after one.

:func:`classify_close` tells what a close frame means (idle timeout, refused
key, other policy violation, drop). :class:`SpokenText` turns alignment
(character start times relative to each chunk's audio) into "which words had
been spoken after N ms of this reply's audio". This module imports no
asyncio and no network library (a test imports it with them blocked).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from ...errors import IllegalTransitionError, ProviderProtocolError, UsageError
from ...formats import AudioFormat, Encoding

__all__ = [
    "API_KEY_HEADER",
    "CONTEXT_TRANSITIONS",
    "DEFAULT_BASE_URL",
    "MAX_CONTEXTS",
    "OUTPUT_FORMATS",
    "Alignment",
    "AudioChunk",
    "CloseKind",
    "ContextEvent",
    "ContextFinal",
    "ContextState",
    "ElevenLabsClient",
    "ServerError",
    "ServerEvent",
    "SpokenText",
    "audio_format",
    "build_url",
    "classify_close",
    "handshake_headers",
    "parse_server_message",
]

DEFAULT_BASE_URL: Final = "wss://api.elevenlabs.io"
API_KEY_HEADER: Final = "xi-api-key"
MAX_CONTEXTS: Final = 5
"""Contexts one ``multi-stream-input`` socket may have open at once."""

OUTPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    **{f"pcm_{rate}": AudioFormat(rate, 1, Encoding.PCM_S16LE)
       for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)},
    "ulaw_8000": AudioFormat(8000, 1, Encoding.MULAW),
    "alaw_8000": AudioFormat(8000, 1, Encoding.ALAW),
}  # fmt: skip
"""The raw ``output_format`` values: ``pcm_N`` is headerless int16 LE mono at N Hz."""


def audio_format(output_format: str) -> AudioFormat:
    """The :class:`AudioFormat` of a raw ``output_format`` (mp3 and opus are not raw)."""
    try:
        return OUTPUT_FORMATS[output_format]
    except KeyError:
        known = ", ".join(OUTPUT_FORMATS)
        raise ValueError(f"output_format {output_format!r} is not one of {known}") from None


def build_url(
    base_url: str,
    voice_id: str,
    *,
    model_id: str,
    output_format: str,
    multi: bool = True,
    sync_alignment: bool = True,
    inactivity_timeout_s: int | None = None,
    language_code: str | None = None,
    auto_mode: bool | None = None,
) -> str:
    """The WebSocket URL of a TTS stream (``multi-stream-input`` unless ``multi=False``).

    ``sync_alignment`` asks for alignment with every audio chunk (times
    relative to that chunk), which :class:`SpokenText` relies on.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"{base_url!r} is not a ws:// or wss:// URL")
    if not voice_id:
        raise ValueError("voice_id must not be empty")
    audio_format(output_format)
    query: dict[str, str] = {"model_id": model_id, "output_format": output_format}
    if sync_alignment:
        query["sync_alignment"] = "true"
    if inactivity_timeout_s is not None:
        query["inactivity_timeout"] = str(inactivity_timeout_s)
    if language_code:
        query["language_code"] = language_code
    if auto_mode is not None:
        query["auto_mode"] = "true" if auto_mode else "false"
    endpoint = "multi-stream-input" if multi else "stream-input"
    path = f"{base_url.rstrip('/')}/v1/text-to-speech/{quote(voice_id, safe='')}/{endpoint}"
    return f"{path}?{urlencode(query)}"


def handshake_headers(api_key: str) -> dict[str, str]:
    """Headers of the opening handshake: the key goes in ``xi-api-key``."""
    return {API_KEY_HEADER: api_key}


# -- server events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alignment:
    """Characters and their timing, in ms relative to the start of the chunk's audio."""

    chars: tuple[str, ...]
    start_ms: tuple[int, ...]
    duration_ms: tuple[int, ...]

    @property
    def text(self) -> str:
        """The characters joined."""
        return "".join(self.chars)


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Audio for ``context_id`` (``None`` on ``stream-input``), already base64-decoded."""

    context_id: str | None
    audio: bytes
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None


@dataclass(frozen=True, slots=True)
class ContextFinal:
    """``isFinal``: nothing more comes for ``context_id``."""

    context_id: str | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error message from the server (``{"message", "error", "code"}``)."""

    error: str
    message: str
    code: int | None = None
    context_id: str | None = None

    @property
    def is_auth(self) -> bool:
        """True if the server refused the key (or the account's quota)."""
        return _is_auth(f"{self.error} {self.message}")

    def __str__(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        return f"{self.error}: {self.message}{code}"


ServerEvent = AudioChunk | ContextFinal | ServerError


def _fail(what: str, data: object) -> ProviderProtocolError:
    shown = repr(data)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ProviderProtocolError(f"ElevenLabs: {what}: {shown}")


def _alignment(value: object, key: str) -> Alignment | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(f"'{key}' is not an object", value)
    chars = value.get("chars")
    starts = value.get("charStartTimesMs")
    durations = value.get("charDurationsMs")
    if not (isinstance(chars, list) and isinstance(starts, list) and isinstance(durations, list)):
        raise _fail(f"'{key}' needs the arrays chars, charStartTimesMs, charDurationsMs", value)
    if not len(chars) == len(starts) == len(durations):
        raise _fail(f"'{key}' arrays have different lengths", value)
    if not all(isinstance(c, str) for c in chars):
        raise _fail(f"'{key}'.chars holds a non-string", value)
    numbers = (*starts, *durations)
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise _fail(f"'{key}' times are not numbers", value)
    return Alignment(
        tuple(chars), tuple(round(n) for n in starts), tuple(round(n) for n in durations)
    )


def parse_server_message(data: str | bytes) -> list[ServerEvent] | None:
    """The events in one server message; ``None`` for a message of unknown shape.

    Raises :class:`ProviderProtocolError` for a message that is not a JSON
    object or whose known fields are malformed. A binary frame is read as
    UTF-8 JSON text. An audio message with empty audio and no alignment gives
    no event; ``isFinal: true`` after audio in one message gives both.
    """
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"a message is not JSON ({exc})", data) from None
    if not isinstance(msg, dict):
        raise _fail("a message is not a JSON object", data)
    context_id = msg.get("contextId")
    if context_id is not None and not isinstance(context_id, str):
        raise _fail("'contextId' is not a string", msg)
    if "error" in msg:
        error, message, code = msg["error"], msg.get("message", ""), msg.get("code")
        if not isinstance(error, str) or not isinstance(message, str):
            raise _fail("an error message needs string 'error' and 'message'", msg)
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise _fail("an error 'code' is not an integer", msg)
        return [ServerError(error, message, code, context_id)]
    if "audio" not in msg and "isFinal" not in msg:
        return None
    events: list[ServerEvent] = []
    audio = msg.get("audio")
    if audio is not None:
        if not isinstance(audio, str):
            raise _fail("'audio' is not a base64 string", msg)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise _fail(f"'audio' is not valid base64 ({exc})", audio) from None
        alignment = _alignment(msg.get("alignment"), "alignment")
        normalized = _alignment(msg.get("normalizedAlignment"), "normalizedAlignment")
        if pcm or alignment is not None:
            events.append(AudioChunk(context_id, pcm, alignment, normalized))
    final = msg.get("isFinal")
    if final is not None and not isinstance(final, bool):
        raise _fail("'isFinal' is not a boolean", msg)
    if final:
        events.append(ContextFinal(context_id))
    return events


# -- closes ------------------------------------------------------------------------------


class CloseKind(StrEnum):
    """What a closed connection means for the client."""

    NORMAL = "normal"  # 1000: after close_socket / EOS
    IDLE_TIMEOUT = "idle_timeout"  # 1008 input_timeout_exceeded: reconnect when needed
    AUTH = "auth"  # the key (or quota) was refused: do not retry
    POLICY = "policy"  # another 1008 or error close: the client broke a rule
    DROPPED = "dropped"  # no close frame (1006) or a server error: reconnect


_AUTH_WORDS = ("api key", "api_key", "unauthorized", "authoriz", "quota", "credits")
_IDLE_WORDS = ("input_timeout_exceeded", "have not received a new text input", "inactivity")


def _is_auth(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _AUTH_WORDS)


def classify_close(code: int | None, reason: str = "") -> CloseKind:
    """Classify a close frame (``code`` ``None``: the connection dropped without one)."""
    if code is None or code in (1006, 1011, 1012, 1013, 1014):
        return CloseKind.DROPPED
    lowered = reason.lower()
    if any(word in lowered for word in _IDLE_WORDS):
        return CloseKind.IDLE_TIMEOUT
    if _is_auth(reason) or code in (4001, 4003):
        return CloseKind.AUTH
    if code in (1000, 1001):
        return CloseKind.NORMAL
    return CloseKind.POLICY


# -- the client's side of one connection --------------------------------------------------


class ContextState(StrEnum):
    """Where one context is in its life."""

    OPEN = "open"  # initialised; text may be sent
    CLOSING = "closing"  # close_context / EOS sent; audio may still come
    DONE = "done"  # isFinal received


class ContextEvent(StrEnum):
    """What may happen to a context: a client message or a server event."""

    SEND_TEXT = "send_text"
    FLUSH = "flush"
    KEEP_ALIVE = "keep_alive"
    CLOSE = "close"
    AUDIO = "audio"
    FINAL = "final"


_S, _E = ContextState, ContextEvent
CONTEXT_TRANSITIONS: Final[Mapping[tuple[ContextState, ContextEvent], ContextState]] = {
    (_S.OPEN, _E.SEND_TEXT): _S.OPEN,
    (_S.OPEN, _E.FLUSH): _S.OPEN,
    (_S.OPEN, _E.KEEP_ALIVE): _S.OPEN,
    (_S.OPEN, _E.CLOSE): _S.CLOSING,
    (_S.OPEN, _E.AUDIO): _S.OPEN,
    (_S.OPEN, _E.FINAL): _S.DONE,  # the server may end a context itself (its idle timeout)
    (_S.CLOSING, _E.CLOSE): _S.CLOSING,  # closing twice is harmless: nothing is sent
    (_S.CLOSING, _E.AUDIO): _S.CLOSING,  # flushed text keeps generating after close_context
    (_S.CLOSING, _E.FINAL): _S.DONE,
}
"""A context's life: (state, event) -> next state. Anything else is illegal."""


class ElevenLabsClient:
    """The client's side of one ``multi-stream-input`` (or ``stream-input``) connection.

    ``voice_settings``, ``generation_config`` and
    ``pronunciation_dictionary_locators`` go in the *first* context's
    initialisation only: the service closes the socket with 1008 when
    ``voice_settings`` comes again with other values, so later contexts of
    the same socket inherit them. See the module docstring for the calls.
    """

    def __init__(
        self,
        *,
        multi: bool = True,
        voice_settings: Mapping[str, Any] | None = None,
        generation_config: Mapping[str, Any] | None = None,
        pronunciation_dictionary_locators: Sequence[Mapping[str, str]] = (),
    ) -> None:
        self.multi = multi
        self._settings: dict[str, Any] = {}
        if voice_settings:
            self._settings["voice_settings"] = dict(voice_settings)
        if generation_config:
            self._settings["generation_config"] = dict(generation_config)
        if pronunciation_dictionary_locators:
            self._settings["pronunciation_dictionary_locators"] = [
                dict(p) for p in pronunciation_dictionary_locators
            ]
        self._contexts: dict[str | None, ContextState] = {}
        self._opened = 0
        self._out: list[str] = []
        self._events: list[ServerEvent] = []
        self.unknown_messages = 0
        """Messages of a shape this client does not know (ignored)."""
        self.stray_messages = 0
        """Audio or isFinal for a context that is not open here (dropped)."""

    # -- sending ----------------------------------------------------------------------

    def state(self, context_id: str | None) -> ContextState | None:
        """The state of ``context_id``, or ``None`` if it is not open (never, or done)."""
        return self._contexts.get(context_id)

    @property
    def active_contexts(self) -> list[str | None]:
        """Contexts opened and not yet final, oldest first."""
        return list(self._contexts)

    def open_context(self, context_id: str | None) -> None:
        """Initialise a context: ``{"text": " ", "context_id": ..}`` (BOS on ``stream-input``)."""
        if not self.multi and (context_id is not None or self._opened):
            raise UsageError("stream-input has one context per socket, with context_id None")
        if self.multi and not context_id:
            raise UsageError("multi-stream-input needs a context_id for every context")
        if context_id in self._contexts:
            raise UsageError(f"context {context_id!r} is already open")
        if self.multi and len(self._contexts) >= MAX_CONTEXTS:
            raise UsageError(f"at most {MAX_CONTEXTS} contexts may be open on one socket")
        msg: dict[str, Any] = {"text": " "}
        if not self._opened:
            msg.update(self._settings)
        self._put(msg, context_id)
        self._contexts[context_id] = ContextState.OPEN
        self._opened += 1

    def send_text(
        self,
        context_id: str | None,
        text: str,
        *,
        flush: bool = False,
        try_trigger_generation: bool = False,
    ) -> None:
        """Append ``text`` to the context (a trailing space is added if missing).

        ``flush=True`` makes the server generate everything buffered now
        instead of waiting for its chunk schedule (at the end of a sentence
        the caller wants to hear at once). ``try_trigger_generation`` is the
        legacy hint "generate if the schedule allows".
        """
        if not text:
            raise UsageError("send_text needs text: use keep_alive or close_context")
        self._step(context_id, ContextEvent.SEND_TEXT)
        if not text[-1].isspace():
            text += " "
        msg: dict[str, Any] = {"text": text}
        if try_trigger_generation:
            msg["try_trigger_generation"] = True
        if flush:
            msg["flush"] = True
        self._put(msg, context_id)

    def flush(self, context_id: str | None) -> None:
        """Generate what the context has buffered now."""
        self._step(context_id, ContextEvent.FLUSH)
        self._put({"text": " ", "flush": True} if not self.multi else {"flush": True}, context_id)

    def keep_alive(self, context_id: str | None = None) -> None:
        """Reset the server's inactivity timer: ``{"text": ""}`` (with ``context_id``: that one's).

        Only on ``multi-stream-input`` (on ``stream-input`` an empty text is the EOS).
        """
        if not self.multi:
            raise UsageError("stream-input has no keep-alive message (an empty text ends it)")
        if context_id is not None:
            self._step(context_id, ContextEvent.KEEP_ALIVE)
        self._put({"text": ""}, context_id)

    def close_context(self, context_id: str | None) -> None:
        """Stop the context: ``close_context: true`` (``{"text": ""}``, EOS, on ``stream-input``).

        Text already flushed keeps generating; ``isFinal`` follows. Closing a
        closing context sends nothing.
        """
        if self._contexts.get(context_id) is ContextState.CLOSING:
            return
        self._step(context_id, ContextEvent.CLOSE)
        self._put({"close_context": True} if self.multi else {"text": ""}, context_id)

    def close_socket(self) -> None:
        """Close every context and the socket (``{"close_socket": true}``; EOS on stream-input)."""
        if not self.multi:
            if self._contexts.get(None) is ContextState.OPEN:
                self.close_context(None)
            return
        self._out.append(json.dumps({"close_socket": True}))
        for cid in self._contexts:
            self._contexts[cid] = ContextState.CLOSING

    def data_to_send(self) -> list[str]:
        """The messages to send, in order (the caller sends them all)."""
        out, self._out = self._out, []
        return out

    def _put(self, msg: dict[str, Any], context_id: str | None) -> None:
        if self.multi and context_id is not None:
            msg["context_id"] = context_id
        self._out.append(json.dumps(msg, ensure_ascii=False))

    def _step(self, context_id: str | None, event: ContextEvent) -> None:
        state = self._contexts.get(context_id)
        if state is None:
            raise IllegalTransitionError(f"context {context_id!r}", "not open", event.value)
        nxt = CONTEXT_TRANSITIONS.get((state, event))
        if nxt is None:
            raise IllegalTransitionError(f"context {context_id!r}", state.value, event.value)
        if nxt is ContextState.DONE:
            del self._contexts[context_id]
        else:
            self._contexts[context_id] = nxt

    # -- receiving --------------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Parse one server message; then drain :meth:`events_received`.

        Raises :class:`ProviderProtocolError` for a malformed message (see
        the module docstring); nothing of it is kept.
        """
        events = parse_server_message(data)
        if events is None:
            self.unknown_messages += 1
            return
        for event in events:
            if isinstance(event, ServerError):
                self._events.append(event)
                continue
            cid = event.context_id if self.multi else None
            state = self._contexts.get(cid)
            kind = ContextEvent.AUDIO if isinstance(event, AudioChunk) else ContextEvent.FINAL
            if state is None or (state, kind) not in CONTEXT_TRANSITIONS:
                self.stray_messages += 1
                continue
            self._step(cid, kind)
            self._events.append(event)

    def events_received(self) -> list[ServerEvent]:
        """The events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events


# -- what was spoken ---------------------------------------------------------------------


class SpokenText:
    """Which text of a reply had been spoken after a given time of its audio (sans-I/O).

    Feed it each chunk's :class:`Alignment` with the chunk's offset in the
    reply's audio (the duration of the audio before it); ask
    :meth:`text_until`. A word counts once its last character has ended.
    """

    __slots__ = ("_chars", "_ends")

    def __init__(self) -> None:
        self._chars: list[str] = []
        self._ends: list[float] = []

    def __bool__(self) -> bool:
        return bool(self._chars)

    def add(self, alignment: Alignment, offset_ms: float, *, separate: bool = False) -> None:
        """Add a chunk's characters; ``separate`` puts a word break before them (new context)."""
        if separate and self._chars and not self._chars[-1].isspace():
            self._chars.append(" ")
            self._ends.append(offset_ms)
        for char, start, duration in zip(
            alignment.chars, alignment.start_ms, alignment.duration_ms, strict=True
        ):
            self._chars.append(char)
            self._ends.append(offset_ms + start + duration)

    @property
    def text(self) -> str:
        """All the text added, whitespace normalised."""
        return " ".join("".join(self._chars).split())

    def text_until(self, ms: float) -> str:
        """The whole words spoken within the first ``ms`` of the audio, whitespace normalised."""
        n = 0
        for end in self._ends:  # ends grow with the audio; stop at the first one past ms
            if end > ms:
                break
            n += 1
        spoken = "".join(self._chars[:n])
        if n < len(self._chars) and not self._chars[n].isspace() and not spoken[-1:].isspace():
            cut = max(spoken.rfind(" "), spoken.rfind("\n"), spoken.rfind("\t"))
            spoken = spoken[: max(cut, 0)]
        return " ".join(spoken.split())

    def reset(self) -> None:
        """Forget everything (a new reply)."""
        self._chars.clear()
        self._ends.clear()
