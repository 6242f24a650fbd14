"""Cartesia Sonic streaming text to speech: messages and contexts (sans-I/O).

Theory of operation
-------------------
The wire protocol (``../shared/protocols/cartesia.md``, docs.cartesia.ai): the
client opens ``wss://api.cartesia.ai/tts/websocket`` with the headers of
:func:`handshake_headers` (``X-API-Key``, ``Cartesia-Version``); a refused key
is an HTTP 401 on the upgrade, which the shell reports. Then both sides send
JSON text messages.

One socket multiplexes *contexts*, each one utterance named by a
client-chosen ``context_id``. The client streams text into a context as
generation requests with ``continue: true`` (pieces are concatenated verbatim,
so each keeps its trailing space) and closes its input with ``transcript: ""``
and ``continue: false``; ``{"context_id", "cancel": true}`` stops it. The
server answers, per context, ``chunk`` messages (base64 audio in the requested
raw encoding and rate), ``timestamps`` (word timings in seconds from the start
of that context's audio, when ``add_timestamps`` was asked), ``flush_done``,
and finally ``done``; or an ``error``.

:class:`TtsConnection` holds the state of one socket. The caller

1. calls :meth:`~TtsConnection.send_text`, :meth:`~TtsConnection.end_input` or
   :meth:`~TtsConnection.cancel`, then sends every string of
   :meth:`~TtsConnection.data_to_send` as a text message, in order;
2. passes each message from the server to
   :meth:`~TtsConnection.receive_message`, then drains
   :meth:`~TtsConnection.events_received`: :class:`AudioChunk`,
   :class:`WordTimestamps`, :class:`FlushDone`, :class:`ContextDone`,
   :class:`ServerError`.

Each context follows :data:`CONTEXT_TRANSITIONS` (applied by
:func:`next_state` only). A send the table forbids (text after the input was
closed) is local misuse: :class:`~vbgraph.errors.IllegalTransitionError`.
Output the table forbids (audio after ``done``, output for a context never
opened) is the server breaking the protocol:
:class:`~vbgraph.errors.ProviderProtocolError`. So is a message that is not a
JSON object with a string ``type``, a chunk without valid base64 ``data``, or
timestamps whose arrays differ in length; the connection is unusable after
one. Output for a cancelled context (generated before the cancel arrived) is
dropped and counted in ``stale_messages``; unknown ``type``\\ s are ignored and
counted in ``unknown_messages`` (the API grows). Audio chunks are re-aligned to
whole samples: bytes of a sample split across chunks wait for the next one.

This module imports no asyncio and no network library (a test checks it).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ...errors import IllegalTransitionError, ProviderProtocolError
from ...formats import AudioFormat, Encoding

__all__ = [
    "CARTESIA_VERSION",
    "CONTEXT_TRANSITIONS",
    "DEFAULT_URL",
    "SAMPLE_RATES",
    "WIRE_ENCODINGS",
    "AudioChunk",
    "ContextDone",
    "ContextEvent",
    "ContextState",
    "FlushDone",
    "ServerError",
    "TtsConnection",
    "TtsEvent",
    "TtsSettings",
    "WordTimestamps",
    "handshake_headers",
    "next_state",
]

DEFAULT_URL: Final = "wss://api.cartesia.ai/tts/websocket"
CARTESIA_VERSION: Final = "2026-03-01"
"""The API version sent by default (the one pipecat pins; the protocol notes list others)."""
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
WIRE_ENCODINGS: Final[Mapping[str, Encoding]] = {
    "pcm_s16le": Encoding.PCM_S16LE,
    "pcm_f32le": Encoding.PCM_F32LE,
    "pcm_mulaw": Encoding.MULAW,
    "pcm_alaw": Encoding.ALAW,
}
"""Cartesia's raw ``encoding`` names and the vbgraph encodings they are."""
_KEEP_FINISHED = 64  # finished contexts remembered, so their late messages are recognised


def handshake_headers(api_key: str, version: str = CARTESIA_VERSION) -> dict[str, str]:
    """The upgrade request's headers: the key and the pinned API version."""
    return {"X-API-Key": api_key, "Cartesia-Version": version}


@dataclass(frozen=True, slots=True)
class TtsSettings:
    """What every generation request of a connection carries.

    Raises :class:`ValueError` for an encoding or rate Cartesia does not offer.
    """

    model_id: str
    voice_id: str
    encoding: str = "pcm_s16le"
    sample_rate: int = 24000
    language: str | None = "en"
    add_timestamps: bool = True
    max_buffer_delay_ms: int | None = None
    speed: float | None = None
    volume: float | None = None

    def __post_init__(self) -> None:
        if self.encoding not in WIRE_ENCODINGS:
            raise ValueError(f"encoding {self.encoding!r} is not one of {list(WIRE_ENCODINGS)}")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate {self.sample_rate} is not one of {SAMPLE_RATES}")
        if not self.model_id or not self.voice_id:
            raise ValueError("model_id and voice_id must not be empty")

    @property
    def fmt(self) -> AudioFormat:
        """The format of the audio the server sends: mono, the requested encoding and rate."""
        return AudioFormat(self.sample_rate, 1, WIRE_ENCODINGS[self.encoding])

    def request(self, context_id: str, transcript: str, more: bool) -> dict[str, Any]:
        """One generation request (``more`` is the wire's ``continue``)."""
        body: dict[str, Any] = {
            "context_id": context_id,
            "model_id": self.model_id,
            "transcript": transcript,
            "continue": more,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {
                "container": "raw",
                "encoding": self.encoding,
                "sample_rate": self.sample_rate,
            },
            "add_timestamps": self.add_timestamps,
        }
        if self.language:
            body["language"] = self.language
        if self.max_buffer_delay_ms is not None:
            body["max_buffer_delay_ms"] = self.max_buffer_delay_ms
        config = {k: v for k, v in (("speed", self.speed), ("volume", self.volume)) if v}
        if config:
            body["generation_config"] = config
        return body


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Audio of a context: whole samples in the requested format."""

    context_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class WordTimestamps:
    """A batch of words of a context, with start and end in seconds from its first sample."""

    context_id: str
    words: tuple[str, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FlushDone:
    """Everything sent before the ``flush`` numbered ``flush_id`` has been generated."""

    context_id: str
    flush_id: int


@dataclass(frozen=True, slots=True)
class ContextDone:
    """The context is finished: no more output for it."""

    context_id: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server refused a request (``context_id`` set) or failed as a whole (``None``)."""

    context_id: str | None
    status_code: int
    message: str
    title: str = ""
    error_code: str = ""
    request_id: str = ""

    def __str__(self) -> str:
        where = f"context {self.context_id!r}: " if self.context_id else ""
        title = f"{self.title}: " if self.title and self.title not in self.message else ""
        code = f" [{self.error_code}]" if self.error_code else ""
        request = f" (request {self.request_id})" if self.request_id else ""
        return f"{where}HTTP {self.status_code}{code}: {title}{self.message}{request}"


TtsEvent = AudioChunk | WordTimestamps | FlushDone | ContextDone | ServerError

# -- the context state table ----------------------------------------------------------------


class ContextState(StrEnum):
    """Where one context is. ``None`` (not in the enum) means not opened yet."""

    STREAMING = "streaming"  # input open (continue: true sent)
    CLOSING = "closing"  # input closed (continue: false sent), output still coming
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ContextEvent(StrEnum):
    """What happens to a context: the client sends, or the server answers."""

    SEND_TEXT = "send_text"
    SEND_END = "send_end"
    SEND_CANCEL = "send_cancel"
    RECV_OUTPUT = "recv_output"  # chunk, timestamps, flush_done
    RECV_DONE = "recv_done"
    RECV_ERROR = "recv_error"


_S, _C = ContextState, ContextEvent
CONTEXT_TRANSITIONS: Final[Mapping[tuple[ContextState | None, ContextEvent], ContextState]] = {
    (None, _C.SEND_TEXT): _S.STREAMING,
    (None, _C.SEND_END): _S.CLOSING,  # a context given all its text in one final request
    (_S.STREAMING, _C.SEND_TEXT): _S.STREAMING,
    (_S.STREAMING, _C.SEND_END): _S.CLOSING,
    (_S.STREAMING, _C.SEND_CANCEL): _S.CANCELLED,
    (_S.STREAMING, _C.RECV_OUTPUT): _S.STREAMING,
    # The server may end a context whose input is open (its own timeout); accepted.
    (_S.STREAMING, _C.RECV_DONE): _S.DONE,
    (_S.STREAMING, _C.RECV_ERROR): _S.FAILED,
    (_S.CLOSING, _C.SEND_CANCEL): _S.CANCELLED,
    (_S.CLOSING, _C.RECV_OUTPUT): _S.CLOSING,
    (_S.CLOSING, _C.RECV_DONE): _S.DONE,
    (_S.CLOSING, _C.RECV_ERROR): _S.FAILED,
    # Output generated before the cancel arrived is stale, not a violation.
    (_S.CANCELLED, _C.SEND_CANCEL): _S.CANCELLED,
    (_S.CANCELLED, _C.RECV_OUTPUT): _S.CANCELLED,
    (_S.CANCELLED, _C.RECV_DONE): _S.CANCELLED,
    (_S.CANCELLED, _C.RECV_ERROR): _S.CANCELLED,
    # Cancelling what already finished is a no-op (an interruption races the done).
    (_S.DONE, _C.SEND_CANCEL): _S.DONE,
    (_S.FAILED, _C.SEND_CANCEL): _S.FAILED,
}
"""Every allowed (state, event) -> next state of a context; anything else is illegal."""
_FINISHED: Final = frozenset({_S.DONE, _S.CANCELLED, _S.FAILED})


def next_state(context_id: str, state: ContextState | None, event: ContextEvent) -> ContextState:
    """Apply :data:`CONTEXT_TRANSITIONS`; an illegal step raises (see the module docstring)."""
    new = CONTEXT_TRANSITIONS.get((state, event))
    if new is not None:
        return new
    shown = "unopened" if state is None else state.value
    if event.value.startswith("send"):
        raise IllegalTransitionError(f"cartesia context {context_id!r}", shown, event.value)
    raise ProviderProtocolError(
        f"cartesia: the server sent {event.value.removeprefix('recv_')} for context "
        f"{context_id!r} in state {shown}"
    )


# -- the connection -------------------------------------------------------------------------


class TtsConnection:
    """The protocol state of one socket (see the module docstring). Not thread-safe."""

    def __init__(self, settings: TtsSettings) -> None:
        self.settings = settings
        self.unknown_messages = 0
        """Messages of a ``type`` this module does not know (ignored)."""
        self.stale_messages = 0
        """Output for cancelled contexts (dropped)."""
        self._width = settings.fmt.frame_bytes
        self._states: OrderedDict[str, ContextState] = OrderedDict()
        self._partial: dict[str, bytes] = {}
        self._out: list[str] = []
        self._events: list[TtsEvent] = []

    def state(self, context_id: str) -> ContextState | None:
        """The state of a context; ``None`` if never opened (or long forgotten)."""
        return self._states.get(context_id)

    @property
    def open_contexts(self) -> list[str]:
        """Contexts still expecting output (streaming or closing), oldest first."""
        return [c for c, s in self._states.items() if s not in _FINISHED]

    # -- client -> server ---------------------------------------------------------------

    def send_text(self, context_id: str, text: str) -> None:
        """Stream ``text`` into a context (``continue: true``); opens it if new.

        Pieces are concatenated verbatim: keep the space between words.
        """
        if not text:
            raise ValueError("send_text needs text; close the input with end_input()")
        self._step(context_id, _C.SEND_TEXT)
        self._send(self.settings.request(context_id, text, True))

    def end_input(self, context_id: str, text: str = "") -> None:
        """Close a context's input (``continue: false``): the server finishes and sends done."""
        self._step(context_id, _C.SEND_END)
        self._send(self.settings.request(context_id, text, False))

    def cancel(self, context_id: str) -> None:
        """Stop a context. Nothing is sent if it had already finished."""
        before = self._states.get(context_id)
        self._step(context_id, _C.SEND_CANCEL)
        if before not in _FINISHED:
            self._send({"context_id": context_id, "cancel": True})
            self._partial.pop(context_id, None)

    def data_to_send(self) -> list[str]:
        """Text messages to send now, in order (then empty until the next send call)."""
        out, self._out = self._out, []
        return out

    def _send(self, body: dict[str, Any]) -> None:
        self._out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    def _step(self, context_id: str, event: ContextEvent) -> ContextState:
        state = next_state(context_id, self._states.get(context_id), event)
        self._states[context_id] = state
        if state in _FINISHED:
            self._states.move_to_end(context_id)
            finished = [c for c, s in self._states.items() if s in _FINISHED]
            for old in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
                del self._states[old]
        return state

    # -- server -> client ---------------------------------------------------------------

    def events_received(self) -> list[TtsEvent]:
        """Events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def receive_message(self, message: str | bytes) -> None:
        """One message from the server (a text frame; JSON in a binary frame is accepted)."""
        try:
            text = message.decode("utf-8") if isinstance(message, bytes) else message
            obj = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProviderProtocolError(f"cartesia: a message is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProviderProtocolError(f"cartesia: a message is not a JSON object: {text[:80]!r}")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise ProviderProtocolError(f"cartesia: a message has no string 'type': {text[:80]!r}")
        parse = _PARSERS.get(kind)
        if parse is None:
            if kind != "phoneme_timestamps":  # known, only sent when asked for; never asked
                self.unknown_messages += 1
            return
        parse(self, obj)

    def _context(self, obj: dict[str, Any], event: ContextEvent) -> str | None:
        """The message's context id after its transition, or ``None`` if the output is stale."""
        cid = obj.get("context_id")
        if not isinstance(cid, str) or not cid:
            raise ProviderProtocolError(f"cartesia: a {obj['type']!r} message has no context_id")
        if self._step(cid, event) is ContextState.CANCELLED:
            self.stale_messages += 1
            return None
        return cid

    def _chunk(self, obj: dict[str, Any]) -> None:
        cid = self._context(obj, _C.RECV_OUTPUT)
        data = obj.get("data")
        if not isinstance(data, str):
            raise ProviderProtocolError("cartesia: a chunk has no base64 'data' string")
        try:
            audio = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderProtocolError(f"cartesia: a chunk's data is not base64: {exc}") from None
        if cid is None:
            return
        audio = self._partial.pop(cid, b"") + audio
        whole = len(audio) - len(audio) % self._width
        if whole < len(audio):
            self._partial[cid] = audio[whole:]
        if whole:
            self._events.append(AudioChunk(cid, audio[:whole]))

    def _timestamps(self, obj: dict[str, Any]) -> None:
        cid = self._context(obj, _C.RECV_OUTPUT)
        stamps = obj.get("word_timestamps")
        if not isinstance(stamps, dict):
            raise ProviderProtocolError("cartesia: timestamps without a 'word_timestamps' object")
        words, start, end = stamps.get("words"), stamps.get("start"), stamps.get("end")
        if not (isinstance(words, list) and isinstance(start, list) and isinstance(end, list)):
            raise ProviderProtocolError("cartesia: word_timestamps needs lists words/start/end")
        if not len(words) == len(start) == len(end):
            raise ProviderProtocolError(
                f"cartesia: word_timestamps lists differ in length "
                f"({len(words)} words, {len(start)} starts, {len(end)} ends)"
            )
        if not all(isinstance(w, str) for w in words):
            raise ProviderProtocolError("cartesia: a timestamped word is not a string")
        times = [_seconds(t) for t in start], [_seconds(t) for t in end]
        if cid is not None:
            self._events.append(WordTimestamps(cid, tuple(words), tuple(times[0]), tuple(times[1])))

    def _flush_done(self, obj: dict[str, Any]) -> None:
        cid = self._context(obj, _C.RECV_OUTPUT)
        flush_id = obj.get("flush_id")
        if not isinstance(flush_id, int) or isinstance(flush_id, bool):
            raise ProviderProtocolError("cartesia: flush_done without an integer flush_id")
        if cid is not None:
            self._events.append(FlushDone(cid, flush_id))

    def _done(self, obj: dict[str, Any]) -> None:
        cid = self._context(obj, _C.RECV_DONE)
        if cid is not None:
            self._partial.pop(cid, None)  # a dangling half sample cannot be played
            self._events.append(ContextDone(cid))

    def _error(self, obj: dict[str, Any]) -> None:
        cid = obj.get("context_id")
        state = self._states.get(cid) if isinstance(cid, str) else None
        if state is ContextState.CANCELLED:
            self.stale_messages += 1
            return
        if state is None or state in _FINISHED:
            # About the connection, a request the server could not place, or a late
            # answer to a finished context: reported, but it changes no context.
            cid = None if state is None else cid
        else:
            assert isinstance(cid, str)
            self._step(cid, _C.RECV_ERROR)
        status = obj.get("status_code")
        message = obj.get("message") or obj.get("error") or obj.get("title") or "unknown error"
        self._events.append(
            ServerError(
                cid,
                status if isinstance(status, int) else 0,
                str(message),
                str(obj.get("title") or ""),
                str(obj.get("error_code") or ""),
                str(obj.get("request_id") or ""),
            )
        )


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderProtocolError(f"cartesia: a timestamp is not a number: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ProviderProtocolError(f"cartesia: a timestamp is negative or not finite: {value!r}")
    return float(value)


_PARSERS: Final = {
    "chunk": TtsConnection._chunk,
    "timestamps": TtsConnection._timestamps,
    "flush_done": TtsConnection._flush_done,
    "done": TtsConnection._done,
    "error": TtsConnection._error,
}
