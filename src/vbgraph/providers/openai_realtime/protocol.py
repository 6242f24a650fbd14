"""OpenAI Realtime (speech to speech over WebSocket), sans-I/O: client events out, server events in.

Theory of operation
-------------------
The wire protocol (``../shared/protocols/openai.md``): every WebSocket message
is a JSON text event with a ``type``. The client configures the session
(``session.update``), streams its audio (``input_audio_buffer.append``, base64),
and with ``turn_detection: null`` ends each turn itself (``commit`` then
``response.create``). The server answers with VAD events, the user's
transcript, and responses: ``response.created``, audio and transcript
deltas, ``response.done``. GA and beta event names are both understood.

:class:`RealtimeProtocol` holds one connection's state and does no I/O:

* ``send_*`` methods queue client events; the caller then sends every text
  of :meth:`RealtimeProtocol.data_to_send` on the socket, in order.
* :meth:`RealtimeProtocol.receive_message` takes one text message from the
  socket; the caller then handles :meth:`RealtimeProtocol.events_received`
  (values from :mod:`.events`) and sends ``data_to_send()`` again (a cancel
  asked for before its response existed goes out when it is created).
* :meth:`RealtimeProtocol.receive_close` when the socket closed.

Two state machines, each a transition table in :mod:`.states`: the
connection (``connecting`` until ``session.created``, ``configuring`` until
``session.updated``, then ``ready``) and the current response (``idle`` →
``requested`` → ``active`` → ``idle``, or through ``cancelling`` when we
cancel). A client call the table forbids raises
:class:`~vbgraph.errors.IllegalTransitionError` (local misuse); a server event
it forbids raises :class:`~vbgraph.errors.ProviderProtocolError`, as does a
malformed message (not JSON, not an object, no ``type``, a required field
missing or of the wrong type, bad base64, audio that is not whole samples).
After a ``ProviderProtocolError`` the state is as before the message, so the
caller may report it and go on. Unknown event types are ignored and counted
in :attr:`RealtimeProtocol.unknown`. Deltas of a response we cancelled are
dropped and counted in :attr:`RealtimeProtocol.stale_deltas`.

This module imports no asyncio and no network library (a test checks it).
"""

from __future__ import annotations

import base64
import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderProtocolError, UsageError
from ...typing import BytesLike
from . import _parse as p
from .config import Api, SessionConfig
from .events import (
    AudioCodec,
    AudioDelta,
    FunctionCall,
    ResponseCreated,
    ResponseDone,
    ServerError,
    ServerEvent,
    SessionCreated,
    SessionUpdated,
    TranscriptDelta,
)
from .states import CONNECTION, RESPONSE, ConnState, ResponseState, apply

__all__ = ["MIN_COMMIT_MS", "AudioItem", "RealtimeProtocol"]

MIN_COMMIT_MS = 100
"""The server refuses to commit less audio than this (``input_audio_buffer_commit_empty``)."""
_SENT_IDS = 256  # client event ids remembered to match errors to what we sent


@dataclass(frozen=True, slots=True)
class AudioItem:
    """The assistant item whose audio arrived last: what a truncation refers to."""

    item_id: str
    content_index: int
    response_id: str
    generated_ms: int
    """Milliseconds of its audio received so far."""


class RealtimeProtocol:
    """One Realtime connection's state (see the module docstring for the caller's duties)."""

    def __init__(self, api: Api = Api.GA) -> None:
        self.api = api
        self.state = ConnState.CONNECTING
        self.response_state = ResponseState.IDLE
        self.response_id: str | None = None
        """The id of the response in flight (``None`` when idle or not yet created)."""
        self.config: SessionConfig | None = None
        self.session: Mapping[str, Any] = {}
        """The config the server last confirmed (``session.created`` / ``.updated``)."""
        self.unknown: Counter[str] = Counter()
        """Server event types not in the protocol notes, ignored, by name."""
        self.ignored = 0
        """Known server events that need no action (``rate_limits.updated`` ...)."""
        self.stale_deltas = 0
        """Deltas of a response we cancelled, dropped."""
        self.skipped_commits = 0
        """``send_commit`` calls refused because less than MIN_COMMIT_MS was buffered."""
        self._out: list[str] = []
        self._events: list[ServerEvent] = []
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._next_id = 0
        self._buffered = 0  # input bytes appended since the last commit or clear
        self._item: list[Any] | None = None  # [item_id, content_index, response_id, bytes]
        self._call_names: dict[str, str] = {}  # function-call item id -> name
        self._calls: list[FunctionCall] = []

    # -- results ----------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """The client events queued since the last call, as JSON texts, in order."""
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[ServerEvent]:
        """The server events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    @property
    def input_codec(self) -> AudioCodec:
        """The codec of the audio we send (PCM16 until a config says otherwise)."""
        return AudioCodec.PCM16 if self.config is None else self.config.input_codec

    @property
    def output_codec(self) -> AudioCodec:
        """The codec of the audio the server sends."""
        return AudioCodec.PCM16 if self.config is None else self.config.output_codec

    @property
    def ready(self) -> bool:
        """True once the session is configured (audio and responses may be sent)."""
        return self.state in (ConnState.READY, ConnState.RECONFIGURING)

    @property
    def buffered_ms(self) -> int:
        """Input audio appended since the last commit or clear, in ms."""
        fmt = self.input_codec.fmt
        return self._buffered // fmt.frame_bytes * 1000 // fmt.rate

    @property
    def last_audio_item(self) -> AudioItem | None:
        """The assistant item whose audio arrived last, if any."""
        if self._item is None:
            return None
        item_id, index, response_id, nbytes = self._item
        fmt = self.output_codec.fmt
        return AudioItem(item_id, index, response_id, nbytes // fmt.frame_bytes * 1000 // fmt.rate)

    # -- client events ---------------------------------------------------------------------

    def _send(self, event: dict[str, Any], with_id: bool = True) -> None:
        role = "openai realtime connection"
        self.state = apply(CONNECTION, role, self.state, event["type"], False)
        if with_id:
            self._next_id += 1
            event_id = f"vbg_{self._next_id}"
            event = {"event_id": event_id, **event}
            self._sent[event_id] = event["type"]
            while len(self._sent) > _SENT_IDS:
                self._sent.popitem(last=False)
        self._out.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    def send_session_update(self, config: SessionConfig) -> None:
        """Configure the session (allowed once ``session.created`` has arrived)."""
        self._send({"type": "session.update", "session": config.to_session(self.api)})
        self.config = config

    def send_audio(self, data: BytesLike) -> None:
        """Append input audio in the session's input codec (whole samples).

        Appends carry no ``event_id`` (50 a second; an error about one still
        names the problem).
        """
        fmt = self.input_codec.fmt
        if len(data) % fmt.frame_bytes:
            raise UsageError(f"{len(data)} bytes is not whole samples of {fmt}")
        if not data:
            return
        audio = base64.b64encode(data).decode("ascii")
        self._send({"type": "input_audio_buffer.append", "audio": audio}, with_id=False)
        self._buffered += len(data)

    def send_commit(self) -> bool:
        """Commit the input buffer as a user turn (``turn_detection: null``).

        Returns False and sends nothing when less than :data:`MIN_COMMIT_MS`
        is buffered: the server would refuse it (counted in ``skipped_commits``).
        """
        if self.buffered_ms < MIN_COMMIT_MS:
            self.skipped_commits += 1
            return False
        self._send({"type": "input_audio_buffer.commit"})
        self._buffered = 0
        return True

    def send_clear(self) -> None:
        """Drop the uncommitted input audio."""
        self._send({"type": "input_audio_buffer.clear"})
        self._buffered = 0

    @property
    def can_create_response(self) -> bool:
        """True when no response is requested or running (``send_response_create`` is legal)."""
        return self.response_state is ResponseState.IDLE

    def send_response_create(
        self, instructions: str | None = None, tool_choice: str | None = None
    ) -> None:
        """Ask for a response; raises IllegalTransitionError while one is requested or running.

        ``instructions`` and ``tool_choice`` (``"none"``: answer in words) apply
        to this response only.
        """
        new = apply(
            RESPONSE, "openai realtime response", self.response_state, "response.create", False
        )
        event: dict[str, Any] = {"type": "response.create"}
        overrides: dict[str, Any] = {}
        if instructions:
            overrides["instructions"] = instructions
        if tool_choice:
            overrides["tool_choice"] = tool_choice
        if overrides:
            event["response"] = overrides
        self._send(event)
        self.response_state = new

    def send_response_cancel(self) -> bool:
        """Cancel the response in flight; False (nothing sent) if none is or it is cancelling.

        A response requested but not yet created is cancelled as soon as
        ``response.created`` arrives.
        """
        state = self.response_state
        if state not in (ResponseState.REQUESTED, ResponseState.ACTIVE):
            return False
        if state is ResponseState.ACTIVE:
            self._send({"type": "response.cancel", "response_id": self.response_id})
        self.response_state = RESPONSE[(state, "response.cancel")]
        return True

    def send_truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> int:
        """Cut assistant item ``item_id`` at ``audio_end_ms`` (what the caller heard).

        The value is clamped to ``[0, generated]`` for the last audio item (the
        server refuses more than it generated); returns the value sent.
        """
        item = self.last_audio_item
        if item is not None and item.item_id == item_id:
            audio_end_ms = min(audio_end_ms, item.generated_ms)
        audio_end_ms = max(0, int(audio_end_ms))
        self._send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )
        return audio_end_ms

    def send_function_output(self, call_id: str, output: str) -> None:
        """Answer function call ``call_id`` (then ask for a response to hear the model use it)."""
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._send({"type": "conversation.item.create", "item": item})

    # -- server events ---------------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Parse one server event (a WebSocket text message).

        Raises :class:`ProviderProtocolError` for a malformed or out-of-order
        event; the state is then unchanged.
        """
        if self.state is ConnState.CLOSED:
            raise UsageError("receive_message after receive_close")
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError(f"openai realtime: a message is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProviderProtocolError("openai realtime: a message is not a JSON object")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise ProviderProtocolError("openai realtime: a message has no string 'type'")
        handler = _HANDLERS.get(kind)
        if self.state is ConnState.CONNECTING and kind not in ("session.created", "error"):
            raise ProviderProtocolError(
                f"openai realtime: the first event must be 'session.created', got {kind!r}"
            )
        if handler is not None:
            handler(self, kind, obj)
        elif kind in p.IGNORED:
            self.ignored += 1
        else:
            self.unknown[kind] += 1

    def receive_close(self) -> None:
        """The socket closed: nothing more can be sent; the response in flight is gone."""
        self.state = ConnState.CLOSED
        self.response_state = ResponseState.IDLE
        self.response_id = None

    def _conn(self, event: str) -> None:
        self.state = apply(CONNECTION, "openai realtime connection", self.state, event, True)

    def _response(self, event: str) -> ResponseState:
        new: ResponseState = apply(
            RESPONSE, "openai realtime response", self.response_state, event, True
        )
        return new

    def _on_session(self, kind: str, obj: dict[str, Any]) -> None:
        session = p.obj(obj, "session", kind)
        self._conn(kind)
        self.session = session
        self._events.append(
            SessionCreated(session) if kind == "session.created" else SessionUpdated(session)
        )

    def _on_simple(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "input_audio_buffer.committed" or kind == "input_audio_buffer.cleared":
            self._buffered = 0
        event = p.SIMPLE[kind](kind, obj)
        if event is not None:
            self._events.append(event)

    def _on_response_created(self, kind: str, obj: dict[str, Any]) -> None:
        rid = p.text(p.obj(obj, "response", kind), "id", kind)
        new = self._response(kind)
        self.response_state, self.response_id = new, rid
        self._calls.clear()
        self._call_names.clear()
        self._events.append(ResponseCreated(rid))
        if new is ResponseState.CANCELLING:  # cancelled before it existed: cancel it now
            self._send({"type": "response.cancel", "response_id": rid})

    def _delta(self, kind: str, obj: dict[str, Any]) -> bool:
        """Check a delta belongs to the response in flight; False if it is stale."""
        rid = p.text(obj, "response_id", kind)
        self._response("delta")
        if rid != self.response_id:
            raise ProviderProtocolError(
                f"openai realtime: {kind!r} for response {rid!r}, but {self.response_id!r} runs"
            )
        if self.response_state is ResponseState.CANCELLING:
            self.stale_deltas += 1
            return False
        return True

    def _on_output_item(self, kind: str, obj: dict[str, Any]) -> None:
        item = p.obj(obj, "item", kind)
        if item.get("type") == "function_call":
            self._call_names[p.text(item, "id", kind)] = p.text(item, "name", kind)

    def _on_audio_delta(self, kind: str, obj: dict[str, Any]) -> None:
        item_id, index = p.text(obj, "item_id", kind), p.integer(obj, "content_index", kind, 0)
        data = p.b64(obj, "delta", kind)
        fmt = self.output_codec.fmt
        if len(data) % fmt.frame_bytes:
            raise ProviderProtocolError(f"openai realtime: {kind!r} audio is not whole samples")
        if not self._delta(kind, obj):
            return
        rid = self.response_id or ""
        if self._item is None or self._item[0] != item_id or self._item[1] != index:
            self._item = [item_id, index, rid, 0]
        self._item[3] += len(data)
        self._events.append(AudioDelta(rid, item_id, index, data))

    def _on_transcript_delta(self, kind: str, obj: dict[str, Any]) -> None:
        item_id, delta = p.text(obj, "item_id", kind), p.text(obj, "delta", kind, empty=True)
        if not self._delta(kind, obj):
            return
        item = self.last_audio_item
        audio_ms = item.generated_ms if item is not None and item.item_id == item_id else 0
        self._events.append(TranscriptDelta(self.response_id or "", item_id, delta, audio_ms))

    def _on_transcript_done(self, kind: str, obj: dict[str, Any]) -> None:
        event = p.transcript_done(kind, obj)
        if self._delta(kind, obj):
            self._events.append(event)

    def _on_call_done(self, kind: str, obj: dict[str, Any]) -> None:
        item_id = p.text(obj, "item_id", kind)
        name = obj.get("name") or self._call_names.get(item_id)
        if not isinstance(name, str) or not name:
            raise ProviderProtocolError(f"openai realtime: {kind!r}: no function name for the call")
        call = FunctionCall(
            p.text(obj, "response_id", kind),
            item_id,
            p.text(obj, "call_id", kind),
            name,
            p.text(obj, "arguments", kind, empty=True),
        )
        if self._delta(kind, obj):
            self._calls.append(call)

    def _on_response_done(self, kind: str, obj: dict[str, Any]) -> None:
        done = p.response_done(kind, obj)
        new = self._response(kind)
        if self.response_id is not None and done.response_id != self.response_id:
            raise ProviderProtocolError(
                f"openai realtime: response.done for {done.response_id!r}, "
                f"but {self.response_id!r} runs"
            )
        seen = {c.call_id for c in self._calls}
        calls = tuple(self._calls) + tuple(c for c in done.calls if c.call_id not in seen)
        self.response_state, self.response_id = new, None
        self._calls.clear()
        self._events.append(ResponseDone(done.response_id, done.status, done.reason, calls))

    def _on_error(self, kind: str, obj: dict[str, Any]) -> None:
        error = p.server_error(kind, obj)
        answers = self._sent.get(error.event_id or "")
        error = ServerError(
            error.message, error.type, error.code, error.param, error.event_id, answers
        )
        if answers == "session.update" and self.state in (
            ConnState.CONFIGURING,
            ConnState.RECONFIGURING,
        ):
            self._conn("error:session.update")
        if answers == "response.create" and self.response_state in (
            ResponseState.REQUESTED,
            ResponseState.CANCEL_REQUESTED,
        ):
            self.response_state = self._response("error:response.create")
        self._events.append(error)


_Handler = Callable[[RealtimeProtocol, str, dict[str, Any]], None]
_HANDLERS: dict[str, _Handler] = {
    "session.created": RealtimeProtocol._on_session,
    "session.updated": RealtimeProtocol._on_session,
    **{name: RealtimeProtocol._on_simple for name in p.SIMPLE},
    "response.created": RealtimeProtocol._on_response_created,
    "response.output_item.added": RealtimeProtocol._on_output_item,
    **{name: RealtimeProtocol._on_audio_delta for name in p.AUDIO_DELTA},
    **{name: RealtimeProtocol._on_transcript_delta for name in p.TRANSCRIPT_DELTA},
    **{name: RealtimeProtocol._on_transcript_done for name in p.TRANSCRIPT_DONE},
    "response.function_call_arguments.done": RealtimeProtocol._on_call_done,
    "response.done": RealtimeProtocol._on_response_done,
    "error": RealtimeProtocol._on_error,
}
"""Server event type → handler. GA and beta names of the same event share a handler."""
