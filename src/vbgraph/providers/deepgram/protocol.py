"""Deepgram live STT (``wss://api.deepgram.com/v1/listen``): URL, messages and events, sans-I/O.

Theory of operation
-------------------
The wire protocol (``../shared/protocols/deepgram.md``): the client opens a
WebSocket to ``/v1/listen?<query>`` with ``Authorization: Token <key>``
(:func:`listen_url`, :func:`auth_headers`); a refused handshake is a plain
HTTP error with a JSON body (:func:`handshake_rejection`). Audio goes up as
binary frames, control messages (``KeepAlive``, ``Finalize``, ``CloseStream``)
as JSON text frames. The server answers with JSON text frames discriminated by
``type`` and reports errors by closing with a status code and a reason such as
``NET-0001``.

:class:`ListenConnection` is one connection's state. The caller

1. calls ``send_audio`` / ``send_keepalive`` / ``send_finalize`` /
   ``send_close_stream`` and then writes every item of ``data_to_send()``
   (``bytes``: a binary frame; ``str``: a text frame) to the socket, in order;
2. passes each received text frame to ``receive_text`` (binary frames to
   ``receive_binary``), and the close code and reason to ``receive_close``;
3. after each call drains ``events_received()``: the events of
   :mod:`.messages` (``Transcript``, ``SpeechStarted``, ``UtteranceEnd``,
   ``Metadata``, ``ServerError``) and, last of all, ``StreamClosed``.

The connection's lifecycle is the table ``TRANSITIONS`` (OPEN → CLOSING once
``CloseStream`` is sent → CLOSED once the socket closed); a call the table
does not allow raises :class:`~vbgraph.errors.IllegalTransitionError` (local
misuse). A message that breaks the protocol (not JSON, not an object, a
known type with missing or mistyped fields, a binary frame) raises
:class:`~vbgraph.errors.ProviderProtocolError`; the connection stays usable, the
message is lost (``malformed`` counts them). A message of an unknown ``type``
is ignored and counted in ``unknown``: Deepgram adds message types over time.
This module imports no asyncio and no network library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from ...errors import IllegalTransitionError, ProviderProtocolError
from ...formats import Encoding
from ...typing import BytesLike
from .messages import CloseKind, ListenEvent, StreamClosed, parse_message

__all__ = [
    "CLOSE_STREAM",
    "DEFAULT_URL",
    "ENCODINGS",
    "FINALIZE",
    "KEEP_ALIVE",
    "TRANSITIONS",
    "ConnectionState",
    "HandshakeRejection",
    "ListenConnection",
    "LiveOptions",
    "auth_headers",
    "handshake_rejection",
    "listen_url",
]

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
KEEP_ALIVE = json.dumps({"type": "KeepAlive"})
FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})

ENCODINGS: Mapping[Encoding, str] = {
    Encoding.PCM_S16LE: "linear16",
    Encoding.MULAW: "mulaw",
    Encoding.ALAW: "alaw",
}
"""vbgraph encodings Deepgram takes as raw audio, and their ``encoding`` query value."""
_RAW = frozenset({"linear16", "linear32", "mulaw", "alaw", "amr-nb", "amr-wb", "speex", "g729"})
_ERROR_CODE = re.compile(r"\b([A-Z]{3,4}-\d{4})\b")


# -- the handshake --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """The query of a live request. ``None`` leaves a parameter out (Deepgram's default).

    ``endpointing`` is milliseconds of silence that end an utterance, or
    ``False`` to turn it off (Deepgram's default is 10 ms). ``extra`` holds any
    other documented parameter verbatim, e.g. ``(("diarize", "true"),)``.
    """

    model: str = "nova-3"
    language: str | None = "en-US"
    encoding: str | None = "linear16"
    sample_rate: int | None = 16000
    channels: int = 1
    interim_results: bool = True
    endpointing: int | bool | None = 300
    utterance_end_ms: int | None = None
    vad_events: bool = False
    smart_format: bool | None = True
    punctuate: bool | None = None
    keyterms: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def query(self) -> list[tuple[str, str]]:
        """The query parameters, in a stable order; raises ``ValueError`` if inconsistent."""
        if not self.model:
            raise ValueError("model must not be empty")
        if self.encoding in _RAW and self.sample_rate is None:
            raise ValueError(f"encoding {self.encoding} is raw audio: sample_rate is required")
        if self.utterance_end_ms is not None and not self.interim_results:
            raise ValueError("utterance_end_ms needs interim_results")
        if self.endpointing is True:
            raise ValueError("endpointing is a number of ms or False, not True")
        out: list[tuple[str, str]] = [("model", self.model)]
        if self.language:
            out.append(("language", self.language))
        if self.encoding:
            out.append(("encoding", self.encoding))
        if self.sample_rate is not None:
            out.append(("sample_rate", str(self.sample_rate)))
        out.append(("channels", str(self.channels)))
        out.append(("interim_results", _flag(self.interim_results)))
        if self.endpointing is not None:
            off = self.endpointing is False
            out.append(("endpointing", "false" if off else str(self.endpointing)))
        if self.utterance_end_ms is not None:
            out.append(("utterance_end_ms", str(self.utterance_end_ms)))
        out.append(("vad_events", _flag(self.vad_events)))
        if self.smart_format is not None:
            out.append(("smart_format", _flag(self.smart_format)))
        if self.punctuate is not None:
            out.append(("punctuate", _flag(self.punctuate)))
        out.extend(("keyterm", term) for term in self.keyterms)
        out.extend(self.extra)
        return out


def _flag(value: bool) -> str:
    return "true" if value else "false"


def listen_url(base: str, options: LiveOptions) -> str:
    """``base`` (``wss://api.deepgram.com/v1/listen``) with the options as its query."""
    sep = "&" if "?" in base else "?"
    return base + sep + urlencode(options.query())


def auth_headers(api_key: str, scheme: str = "Token") -> dict[str, str]:
    """The ``Authorization`` header: ``Token <key>`` (``Bearer`` for a temporary JWT)."""
    if not api_key:
        raise ValueError("the API key is empty")
    return {"Authorization": f"{scheme} {api_key}"}


@dataclass(frozen=True, slots=True)
class HandshakeRejection:
    """The server refused the upgrade with an HTTP error (401 bad key, 400 bad params ...)."""

    status: int
    code: str
    message: str
    request_id: str = ""

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status}{code}: {self.message}"


def handshake_rejection(status: int, body: bytes) -> HandshakeRejection:
    """Read an HTTP error body: ``{err_code, err_msg}`` or the newer ``{category, message}``.

    Never raises: a body that is not such JSON is quoted as the message.
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        obj: Any = json.loads(text) if text else None
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        code = obj.get("err_code") or obj.get("category") or ""
        message = obj.get("err_msg") or obj.get("message") or obj.get("details") or ""
        return HandshakeRejection(
            status, str(code), str(message) or "no message", str(obj.get("request_id") or "")
        )
    return HandshakeRejection(status, "", text[:200] or "no error body")


_REFUSING_CODES = frozenset({1002, 1003, 1007, 1008})


def _close_kind(state: ConnectionState, code: int, error_code: str) -> CloseKind:
    if error_code == "NET-0001":
        return CloseKind.IDLE_TIMEOUT
    if error_code.startswith("DATA-") or code in _REFUSING_CODES:
        return CloseKind.REFUSED
    if state is ConnectionState.CLOSING and code == 1000:
        return CloseKind.COMPLETE
    return CloseKind.DROPPED


# -- the connection's lifecycle -------------------------------------------------------------


class ConnectionState(StrEnum):
    """States of one live connection."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _Input(StrEnum):
    AUDIO = "send audio"
    KEEP_ALIVE = "send KeepAlive"
    FINALIZE = "send Finalize"
    CLOSE_STREAM = "send CloseStream"
    MESSAGE = "receive message"
    CLOSE = "receive close"


_O, _C, _X = ConnectionState.OPEN, ConnectionState.CLOSING, ConnectionState.CLOSED
TRANSITIONS: Mapping[tuple[ConnectionState, str], ConnectionState] = {
    (_O, _Input.AUDIO): _O,
    (_O, _Input.KEEP_ALIVE): _O,
    (_O, _Input.FINALIZE): _O,
    (_O, _Input.CLOSE_STREAM): _C,
    (_O, _Input.MESSAGE): _O,
    (_O, _Input.CLOSE): _X,
    (_C, _Input.MESSAGE): _C,
    (_C, _Input.CLOSE): _X,
}
"""(state, input) → next state. Nothing may be sent after ``CloseStream``."""


class ListenConnection:
    """One live connection's protocol state (see the module docstring)."""

    def __init__(self) -> None:
        self.state = ConnectionState.OPEN
        self.unknown = 0
        """Messages of an unknown ``type``, ignored."""
        self.malformed = 0
        """Messages that raised :class:`ProviderProtocolError`."""
        self.audio_bytes = 0
        """Audio bytes sent on this connection."""
        self._out: list[bytes | str] = []
        self._events: list[ListenEvent] = []

    def _apply(self, event: _Input) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalTransitionError(
                "deepgram listen connection", self.state.value, event.value
            ) from None

    # -- sending --------------------------------------------------------------------------

    def send_audio(self, data: BytesLike) -> None:
        """Queue raw audio (copied to ``bytes``). Empty data is skipped: it would mean "close"."""
        if not data:
            return
        self._apply(_Input.AUDIO)
        self.audio_bytes += len(data)
        self._out.append(bytes(data))

    def send_keepalive(self) -> None:
        """Queue ``KeepAlive``: send one every 3-5 s without audio, or the server closes."""
        self._apply(_Input.KEEP_ALIVE)
        self._out.append(KEEP_ALIVE)

    def send_finalize(self) -> None:
        """Queue ``Finalize``: the server finalizes what it holds (``from_finalize`` results)."""
        self._apply(_Input.FINALIZE)
        self._out.append(FINALIZE)

    def send_close_stream(self) -> None:
        """Queue ``CloseStream``: the server sends its last results, ``Metadata``, then closes."""
        self._apply(_Input.CLOSE_STREAM)
        self._out.append(CLOSE_STREAM)

    def data_to_send(self) -> list[bytes | str]:
        """Frames to write, in order: ``bytes`` as binary frames, ``str`` as text frames."""
        out, self._out = self._out, []
        return out

    # -- receiving ------------------------------------------------------------------------

    def events_received(self) -> list[ListenEvent]:
        """The events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def receive_text(self, text: str) -> None:
        """One text frame from the server; raises :class:`ProviderProtocolError` if malformed."""
        self._apply(_Input.MESSAGE)
        try:
            event = parse_message(text)
        except ProviderProtocolError:
            self.malformed += 1
            raise
        if event is None:
            self.unknown += 1
        else:
            self._events.append(event)

    def receive_binary(self, data: bytes) -> None:
        """A binary frame: ``/v1/listen`` sends none, so this always raises."""
        self._apply(_Input.MESSAGE)
        self.malformed += 1
        raise ProviderProtocolError(f"deepgram: unexpected binary frame ({len(data)} bytes)")

    def receive_close(self, code: int | None, reason: str = "") -> None:
        """The socket closed with ``code`` and ``reason`` (``None``: no close frame)."""
        state = self.state
        self._apply(_Input.CLOSE)
        code = 1006 if code is None else code
        found = _ERROR_CODE.search(reason)
        error_code = found.group(1) if found else ""
        self._events.append(
            StreamClosed(code, reason, _close_kind(state, code, error_code), error_code)
        )
