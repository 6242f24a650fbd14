"""A fake OpenAI Realtime server: a real WebSocket peer on 127.0.0.1 (websockets, asyncio).

.. code-block:: python

    from vbgraph.testing.fakes.openai_realtime import FakeRealtime, Turn

    async with FakeRealtime(turns=[Turn("hello", "Hi! How can I help?")]) as server:
        ...  # point s2s.openai_realtime at url=server.url, api_key="sk-test"

It follows ``../shared/protocols/openai.md``, not the client:

* **Handshake.** ``/v1/realtime?model=...`` only (else HTTP 404 / an error
  event). ``Authorization: Bearer <key>`` is checked after the upgrade, as
  the service does: a wrong key gets an ``error`` event (code
  ``invalid_api_key``) and a close 3000 ``invalid_request_error.invalid_api_key``.
  ``OpenAI-Beta: realtime=v1`` selects the beta protocol (its
  ``session.update`` shape and event names); without it the GA one.
* **Session.** ``session.created`` first; ``session.update`` is validated
  field by field (unknown fields, ``session.type``, audio formats: GA
  ``audio/pcm`` at 24000, ``audio/pcmu``, ``audio/pcma``, beta ``pcm16``,
  ``g711_ulaw``, ``g711_alaw``; ``turn_detection`` ``server_vad`` or null;
  tools) and answered with ``session.updated`` or an ``error`` naming the
  param. Other client events are checked too: bad JSON, unknown types, bad
  base64, audio that is not whole samples, a commit of less than 100 ms
  (``input_audio_buffer_commit_empty``), a second ``response.create`` while
  one runs, ``response.cancel`` with nothing running, a truncation past the
  audio generated, a function output for an unknown call.
* **Server VAD.** Input audio is decoded to PCM and cut in 20 ms frames; a
  frame is speech when its level is above ``-70 + 60 * threshold`` dBFS;
  60 ms of speech gives ``speech_started`` (``audio_start_ms`` minus the
  prefix padding), ``silence_duration_ms`` of non-speech gives
  ``speech_stopped``, a commit and (``create_response``) a response. Speech
  while a response is generated cancels it (``interrupt_response``, reason
  ``turn_detected``).
* **Responses** follow the script (:class:`Turn`, one per committed user
  turn): the user's transcript (when transcription is on), then the reply
  as audio deltas of real, non-silent speech-like PCM in the output format,
  ``len(text) / chars_per_second`` long, with transcript deltas placed
  along it, and the full closing sequence to ``response.done``. A turn with
  a ``call`` first answers with the function call; the reply follows the
  client's ``function_call_output`` and ``response.create`` (``{output}`` in
  the reply is replaced by that output). ``latency_s`` passes before each
  response, ``pace`` x real time between deltas (0: all at once).
* **Faults on demand.** :meth:`FakeRealtime.drop` cuts every connection
  (no close frame); ``max_session_s`` ends a session with ``session_expired``.

Every connection is a :class:`FakeSession` recording what it received and
did; :meth:`FakeRealtime.wait_until` waits for a condition without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ...dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ...providers.openai_realtime.events import AudioCodec

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = ["FakeRealtime", "FakeSession", "Truncation", "Turn", "speech_like"]

_GA_KEYS = {
    "type",
    "model",
    "instructions",
    "output_modalities",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "include",
    "prompt",
}
_BETA_KEYS = {
    "modalities",
    "instructions",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "input_audio_noise_reduction",
    "speed",
    "tracing",
}
_VAD_KEYS = {
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "create_response",
    "interrupt_response",
    "idle_timeout_ms",
    "eagerness",
}
_CLIENT_TYPES = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)
BAD_KEY_MESSAGE = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
EMPTY_COMMIT_MESSAGE = (
    "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
    "audio, but buffer only has {ms:.2f}ms of audio."
)
_FRAME_MS = 20


@dataclass
class Turn:
    """One scripted exchange: what the user said and what the model answers.

    ``call`` is ``(function name, arguments JSON)`` for a model that calls a
    tool before answering; ``reply`` may then hold ``{output}``.
    """

    transcript: str = ""
    reply: str = "Sorry, could you say that again?"
    call: tuple[str, str] | None = None


@dataclass(frozen=True)
class Truncation:
    """A ``conversation.item.truncate`` the server accepted."""

    item_id: str
    audio_end_ms: int
    generated_ms: int


def speech_like(text: str, codec: AudioCodec, chars_per_second: float = 15.0) -> bytes:
    """Deterministic, non-silent audio for ``text``: ``len(text) / chars_per_second`` long.

    A buzz of harmonics on a 130 Hz voice, shaped into ~4 syllables a second,
    so it is loud enough for any VAD and never all zero. Encoded in ``codec``.
    """
    fmt = codec.fmt
    n = max(fmt.rate // 5, int(len(text) / chars_per_second * fmt.rate))
    t = np.arange(n) / fmt.rate
    voice = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 6))
    envelope = 0.35 + 0.65 * np.abs(np.sin(np.pi * 4 * t))
    pcm = (voice * envelope * 5000).astype("<i2").tobytes()
    if codec is AudioCodec.PCMU:
        return ulaw_encode(pcm)
    if codec is AudioCodec.PCMA:
        return alaw_encode(pcm)
    return pcm


class _Reject(Exception):
    """A client event is refused: sent back as an ``error`` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


# The documented server_vad defaults (protocol notes), the service's own when none are sent.
_DEFAULT_VAD: dict[str, Any] = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                "silence_duration_ms": 500, "create_response": True,
                                "interrupt_response": True}  # fmt: skip


@dataclass(frozen=True)
class _Config:
    """What a session.update may change, applied whole or not at all."""

    in_codec: AudioCodec = AudioCodec.PCM16
    out_codec: AudioCodec = AudioCodec.PCM16
    vad: dict[str, Any] | None = field(default_factory=lambda: dict(_DEFAULT_VAD))
    transcribe: bool = False


@dataclass
class _Item:
    role: str
    audio_bytes: int = 0
    call_id: str | None = None


@dataclass
class FakeSession:
    """One connection, as the server saw it."""

    headers: dict[str, str]
    api: str = "ga"
    model: str = ""
    session: dict[str, Any] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    """Types of the client events, in order (``input_audio_buffer.append`` included)."""
    audio_in: bytearray = field(default_factory=bytearray)
    """All input audio, decoded to 16-bit PCM at the input rate."""
    vad: list[tuple[str, int]] = field(default_factory=list)
    """(``started``/``stopped``, audio ms) as server VAD decided."""
    responses: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(response id, status, reason) of every finished response."""
    truncations: list[Truncation] = field(default_factory=list)
    function_outputs: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Codes of the error events sent."""
    closed: bool = False


class _Conn:
    """The server side of one connection."""

    def __init__(self, fake: FakeRealtime, ws: ServerConnection, record: FakeSession) -> None:
        self.fake, self.ws, self.rec = fake, ws, record
        self.ga = record.api == "ga"
        self.cfg = _Config()
        self.ids = 0
        self.buffer = 0  # samples appended since the last commit
        self.pending = bytearray()  # PCM not yet cut into VAD frames
        self.frames = 0  # VAD frames decided
        self.speech_run = self.silence_run = 0
        self.speaking = False
        self.speech_item: str | None = None  # the user item the speech will become
        self.expiry: asyncio.Task[None] | None = None
        self.items: dict[str, _Item] = {}
        self.last_item: str | None = None
        self.open_calls: dict[str, Turn] = {}
        self.answer: Turn | None = None  # turn whose function output came in
        self.next_turn: Turn | None = None  # turn of the last committed user item
        self.response: asyncio.Task[None] | None = None
        self.response_id = ""
        self.cancel_reason: str | None = None

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}_{self.ids:04d}"

    async def send(self, kind: str, **payload: Any) -> None:
        event = {"type": kind, "event_id": self.new_id("event"), **payload}
        await self.ws.send(json.dumps(event))

    async def item_added(self, previous: str | None, item: dict[str, Any]) -> None:
        """``conversation.item.added`` (GA) or ``.created`` (beta)."""
        kind = "conversation.item.added" if self.ga else "conversation.item.created"
        await self.send(kind, previous_item_id=previous, item=item)

    async def item_done(self, previous: str | None, item: dict[str, Any]) -> None:
        """GA only: ``conversation.item.done`` once the item is complete."""
        if self.ga:
            await self.send("conversation.item.done", previous_item_id=previous, item=item)

    async def error(self, code: str, message: str, param: str | None, event_id: Any) -> None:
        self.rec.errors.append(code)
        kind = "server_error" if code == "server_error" else "invalid_request_error"
        error = {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id if isinstance(event_id, str) else None,
        }
        await self.send("error", error=error)
        self.fake._changed()

    # -- the connection ------------------------------------------------------------------

    async def serve(self) -> None:
        from websockets.exceptions import ConnectionClosed

        fake = self.fake
        if fake.api_key is not None and self.rec.headers.get("authorization") != (
            f"Bearer {fake.api_key}"
        ):
            await self.error("invalid_api_key", BAD_KEY_MESSAGE, None, None)
            await self.ws.close(3000, "invalid_request_error.invalid_api_key")
            return
        if self.rec.api == "beta" and not fake.allow_beta:
            await self.error("beta_not_supported", "The beta interface is gone.", None, None)
            await self.ws.close(3000, "invalid_request_error.beta_not_supported")
            return
        self.rec.session = self.session_object()
        await self.send("session.created", session=self.rec.session)
        if fake.max_session_s is not None:
            self.expiry = asyncio.create_task(self.expire(fake.max_session_s))
        try:
            async for message in self.ws:
                await self.receive(message)
        except ConnectionClosed:
            pass
        finally:
            if self.expiry is not None:
                self.expiry.cancel()
            if self.response is not None:
                self.response.cancel()
            self.rec.closed = True
            fake._changed()

    async def expire(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        message = "Your session hit the maximum duration of 30 minutes."
        await self.error("session_expired", message, None, None)
        await self.ws.close(1000, "session_expired")

    async def receive(self, message: str | bytes) -> None:
        event_id = None
        try:
            if isinstance(message, bytes):
                raise _Reject("invalid_value", "Binary messages are not supported.")
            try:
                event = json.loads(message)
            except ValueError:
                raise _Reject("invalid_json", "We could not parse the JSON body.") from None
            if not isinstance(event, dict):
                raise _Reject("invalid_json", "An event must be a JSON object.")
            event_id = event.get("event_id")
            kind = event.get("type")
            if kind not in _CLIENT_TYPES:
                raise _Reject("invalid_value", f"Invalid value: {kind!r}.", "type")
            self.rec.received.append(kind)
            await getattr(self, "on_" + kind.replace(".", "_"))(event)
        except _Reject as exc:
            await self.error(exc.code, exc.message, exc.param, event_id)
        self.fake._changed()

    # -- session.update ---------------------------------------------------------------------

    def session_object(self) -> dict[str, Any]:
        if self.ga:
            return {
                "type": "realtime",
                "object": "realtime.session",
                "id": self.new_id("sess"),
                "model": self.rec.model,
                "output_modalities": ["audio"],
                "instructions": "",
                "audio": {
                    "input": {
                        "format": self.cfg.in_codec.ga_format(),
                        "transcription": None,
                        "turn_detection": self.cfg.vad,
                    },
                    "output": {"format": self.cfg.out_codec.ga_format(), "voice": "alloy"},
                },
                "tools": [],
                "tool_choice": "auto",
            }
        return {
            "object": "realtime.session",
            "id": self.new_id("sess"),
            "model": self.rec.model,
            "modalities": ["audio", "text"],
            "instructions": "",
            "voice": "alloy",
            "input_audio_format": self.cfg.in_codec.beta_name,
            "output_audio_format": self.cfg.out_codec.beta_name,
            "input_audio_transcription": None,
            "turn_detection": self.cfg.vad,
            "tools": [],
            "tool_choice": "auto",
        }

    async def on_session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise _Reject("missing_required_parameter", "Missing 'session'.", "session")
        merged = json.loads(json.dumps(self.rec.session))
        if self.ga:
            self.cfg = self.update_ga(session, merged)
        else:
            self.cfg = self.update_beta(session, merged)
        for key in ("instructions", "tools", "tool_choice"):
            if key in session:
                merged[key] = session[key]
        self.rec.session = merged
        await self.send("session.updated", session=merged)

    def update_ga(self, s: dict[str, Any], merged: dict[str, Any]) -> _Config:
        _known(s, _GA_KEYS, "session")
        if s.get("type") != "realtime":
            message = "Missing required parameter: 'session.type'."
            raise _Reject("missing_required_parameter", message, "session.type")
        audio = s.get("audio", {})
        _known(audio, {"input", "output"}, "session.audio")
        inp, out = audio.get("input", {}), audio.get("output", {})
        keys = {"format", "noise_reduction", "transcription", "turn_detection"}
        _known(inp, keys, "session.audio.input")
        _known(out, {"format", "voice", "speed"}, "session.audio.output")
        cfg = self.cfg
        if "format" in inp:
            cfg = replace(cfg, in_codec=_codec(inp["format"], "session.audio.input.format"))
        if "format" in out:
            cfg = replace(cfg, out_codec=_codec(out["format"], "session.audio.output.format"))
        if "turn_detection" in inp:
            cfg = replace(cfg, vad=_turn_detection(inp["turn_detection"], "session.audio.input"))
        if "transcription" in inp:
            on = _transcription(inp["transcription"], "session.audio.input")
            cfg = replace(cfg, transcribe=on)
        _tools(s.get("tools", []))
        merged["audio"]["input"].update(inp, format=cfg.in_codec.ga_format())
        merged["audio"]["output"].update(out, format=cfg.out_codec.ga_format())
        return cfg

    def update_beta(self, s: dict[str, Any], merged: dict[str, Any]) -> _Config:
        _known(s, _BETA_KEYS, "session")
        cfg = self.cfg
        if "input_audio_format" in s:
            codec = _codec(s["input_audio_format"], "session.input_audio_format", True)
            cfg = replace(cfg, in_codec=codec)
        if "output_audio_format" in s:
            codec = _codec(s["output_audio_format"], "session.output_audio_format", True)
            cfg = replace(cfg, out_codec=codec)
        if "turn_detection" in s:
            cfg = replace(cfg, vad=_turn_detection(s["turn_detection"], "session"))
        if "input_audio_transcription" in s:
            on = _transcription(s["input_audio_transcription"], "session")
            cfg = replace(cfg, transcribe=on)
        _tools(s.get("tools", []))
        merged.update(s)
        return cfg

    # -- input audio ---------------------------------------------------------------------------

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        try:
            data = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise _Reject("invalid_value", "Invalid 'audio': expected base64 audio.", "audio")
        if len(data) % self.cfg.in_codec.fmt.frame_bytes:
            raise _Reject("invalid_value", "Audio must be whole 16-bit samples.", "audio")
        pcm = data
        if self.cfg.in_codec is AudioCodec.PCMU:
            pcm = ulaw_decode(data)
        elif self.cfg.in_codec is AudioCodec.PCMA:
            pcm = alaw_decode(data)
        self.rec.audio_in += pcm
        self.buffer += len(pcm) // 2
        self.pending += pcm
        await self.run_vad()

    @property
    def rate(self) -> int:
        return self.cfg.in_codec.fmt.rate

    async def run_vad(self) -> None:
        step = self.rate * _FRAME_MS // 1000 * 2
        while len(self.pending) >= step:
            frame = np.frombuffer(bytes(self.pending[:step]), "<i2").astype(np.float64)
            del self.pending[:step]
            self.frames += 1
            vad = self.cfg.vad
            if vad is None:
                continue
            level = 20 * math.log10(math.sqrt(float(np.mean(frame**2))) / 32768 + 1e-9)
            speech = level > -70 + 60 * float(vad.get("threshold", 0.5))
            end_ms = self.frames * _FRAME_MS
            self.speech_run = self.speech_run + 1 if speech else 0
            self.silence_run = 0 if speech else self.silence_run + 1
            if not self.speaking and self.speech_run >= 3:
                self.speaking = True
                start = max(0, end_ms - 3 * _FRAME_MS - int(vad.get("prefix_padding_ms", 300)))
                await self.speech_started(start, vad)
            elif self.speaking and self.silence_run * _FRAME_MS >= int(
                vad.get("silence_duration_ms", 500)
            ):
                self.speaking = False
                self.rec.vad.append(("stopped", end_ms))
                await self.send(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=end_ms,
                    item_id=self.speech_item,
                )
                await self.commit(respond=bool(vad.get("create_response", True)))

    async def speech_started(self, start_ms: int, vad: dict[str, Any]) -> None:
        self.rec.vad.append(("started", start_ms))
        self.speech_item = self.new_id("item")
        await self.send(
            "input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=self.speech_item
        )
        if self.response is not None and vad.get("interrupt_response", True):
            self.cancel_reason = self.cancel_reason or "turn_detected"

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        ms = self.buffer * 1000 / self.rate
        if ms < 100:
            raise _Reject("input_audio_buffer_commit_empty", EMPTY_COMMIT_MESSAGE.format(ms=ms))
        await self.commit(respond=False)

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer = 0
        await self.send("input_audio_buffer.cleared")

    async def commit(self, respond: bool) -> None:
        item_id, self.speech_item = self.speech_item or self.new_id("item"), None
        self.buffer = 0
        previous, self.last_item = self.last_item, item_id
        self.items[item_id] = _Item("user")
        await self.send("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.item_added(previous, item)
        await self.item_done(previous, item)
        turn = self.fake.next_turn()
        if self.cfg.transcribe:
            await self.send(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=turn.transcript,
                usage={"type": "duration", "seconds": 1},
            )
        self.next_turn = turn
        if respond:
            await self.start_response()

    # -- responses -----------------------------------------------------------------------------

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            raise _Reject(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.response_id}.",
            )
        await self.start_response()

    async def start_response(self) -> None:
        """Start the next response; one still running (being cancelled) finishes first."""
        if self.response is not None:
            await asyncio.shield(self.response)
        turn, self.answer = self.answer, None
        if turn is None:
            # No user turn committed (a greeting, a text-only exchange): the next in the script.
            turn, self.next_turn = self.next_turn or self.fake.next_turn(), None
        self.response_id = self.new_id("resp")
        self.cancel_reason = None
        self.response = asyncio.create_task(self.respond(turn, self.response_id))

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        rid = event.get("response_id")
        if (
            self.response is None
            or self.cancel_reason is not None
            or (rid is not None and rid != self.response_id)
        ):
            raise _Reject(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        self.cancel_reason = "client_cancelled"

    async def respond(self, turn: Turn, rid: str) -> None:
        try:
            await self._respond(turn, rid)
        finally:
            if self.response is asyncio.current_task():
                self.response = None
            self.fake._changed()

    async def _respond(self, turn: Turn, rid: str) -> None:
        fake = self.fake
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        response: dict[str, Any] = {
            "id": rid,
            "object": "realtime.response",
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "usage": None,
        }
        await self.send("response.created", response=response)
        item_id = self.new_id("item")
        previous, self.last_item = self.last_item, item_id
        if turn.call is not None:
            await self.call(turn, rid, item_id, previous)
            return
        ga = self.ga
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.items[item_id] = record = _Item("assistant")
        where = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send("response.output_item.added", response_id=rid, output_index=0, item=item)
        await self.item_added(previous, item)
        await self.send(
            "response.content_part.added", **where, part={"type": "audio", "transcript": ""}
        )
        text = turn.reply
        audio = speech_like(text, self.cfg.out_codec, fake.chars_per_second)
        fmt = self.cfg.out_codec.fmt
        step = fmt.bytes_for_ms(fake.delta_ms)
        words = _words(text)
        said: list[str] = []
        prefix = "response.output_audio" if ga else "response.audio"
        for start in range(0, len(audio), step):
            if self.cancel_reason is not None:
                break
            chunk = audio[start : start + step]
            end_frac = (start + len(chunk)) / len(audio)
            while words and words[0][0] < end_frac:
                said.append(words.pop(0)[1])
                await self.send(prefix + "_transcript.delta", **where, delta=said[-1])
            await self.send(prefix + ".delta", **where, delta=base64.b64encode(chunk).decode())
            record.audio_bytes += len(chunk)
            if fake.pace:
                await asyncio.sleep(len(chunk) / fmt.frame_bytes / fmt.rate * fake.pace)
        cancelled = self.cancel_reason is not None
        transcript = "".join(said)
        if not cancelled:
            await self.send(prefix + ".done", **where)
            await self.send(prefix + "_transcript.done", **where, transcript=transcript)
        part_type = "output_audio" if ga else "audio"
        item.update(
            status="incomplete" if cancelled else "completed",
            content=[{"type": part_type, "transcript": transcript}],
        )
        await self.send(
            "response.content_part.done", **where, part={"type": "audio", "transcript": transcript}
        )
        await self.send("response.output_item.done", response_id=rid, output_index=0, item=item)
        await self.item_done(previous, item)
        await self.done(rid, [item])

    async def call(self, turn: Turn, rid: str, item_id: str, previous: str | None) -> None:
        assert turn.call is not None
        name, arguments = turn.call
        call_id = self.new_id("call")
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        self.items[item_id] = _Item("assistant", call_id=call_id)
        await self.send("response.output_item.added", response_id=rid, output_index=0, item=item)
        await self.item_added(previous, item)
        where = {"response_id": rid, "item_id": item_id, "output_index": 0, "call_id": call_id}
        for k in range(0, len(arguments), 8):
            await self.send(
                "response.function_call_arguments.delta", **where, delta=arguments[k : k + 8]
            )
        extra = {} if self.ga else {"name": name}
        await self.send(
            "response.function_call_arguments.done", **where, **extra, arguments=arguments
        )
        item.update(status="completed", arguments=arguments)
        await self.send("response.output_item.done", response_id=rid, output_index=0, item=item)
        await self.item_done(previous, item)
        self.open_calls[call_id] = Turn(turn.transcript, turn.reply)
        await self.done(rid, [item])

    async def done(self, rid: str, output: list[dict[str, Any]]) -> None:
        reason = self.cancel_reason
        status = "completed" if reason is None else "cancelled"
        details = None if reason is None else {"type": "cancelled", "reason": reason}
        usage = {"total_tokens": 60, "input_tokens": 40, "output_tokens": 20}
        response = {
            "id": rid,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": output,
            "usage": usage,
        }
        self.rec.responses.append((rid, status, reason))
        self.response = None  # before the event goes out: a response.create may follow at once
        await self.send("response.done", response=response)

    # -- conversation items ------------------------------------------------------------------

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") not in (
            "message",
            "function_call_output",
        ):
            raise _Reject("invalid_value", "Invalid 'item.type'.", "item.type")
        item_id = item.get("id") or self.new_id("item")
        if item["type"] == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if call_id not in self.open_calls:
                raise _Reject(
                    "invalid_value",
                    f"Tool call ID {call_id!r} not found in conversation.",
                    "item.call_id",
                )
            if not isinstance(output, str):
                raise _Reject("invalid_type", "'item.output' must be a string.", "item.output")
            turn = self.open_calls.pop(call_id)
            self.answer = Turn(turn.transcript, turn.reply.replace("{output}", output))
            self.rec.function_outputs.append((call_id, output))
        self.items[item_id] = _Item(str(item.get("role", "tool")))
        previous, self.last_item = self.last_item, item_id
        await self.item_added(previous, {**item, "id": item_id})

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item_id, end = event.get("item_id"), event.get("audio_end_ms")
        item = self.items.get(item_id) if isinstance(item_id, str) else None
        if item is None or item.role != "assistant" or item.call_id is not None:
            raise _Reject(
                "invalid_value", f"Item {item_id!r} is not an assistant audio item.", "item_id"
            )
        if event.get("content_index", 0) != 0:
            raise _Reject("invalid_value", "Only content_index 0 has audio.", "content_index")
        fmt = self.cfg.out_codec.fmt
        generated = item.audio_bytes // fmt.frame_bytes * 1000 // fmt.rate
        if isinstance(end, bool) or not isinstance(end, int) or not 0 <= end <= generated:
            raise _Reject(
                "invalid_value",
                f"audio_end_ms {end!r} is not within the item's {generated} ms of audio.",
                "audio_end_ms",
            )
        assert isinstance(item_id, str)
        self.rec.truncations.append(Truncation(item_id, end, generated))
        await self.send(
            "conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end
        )

    async def on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.items:
            raise _Reject("invalid_value", f"Item {item_id!r} does not exist.", "item_id")
        del self.items[item_id]
        await self.send("conversation.item.deleted", item_id=item_id)


def _known(obj: Any, keys: set[str], where: str) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        raise _Reject("invalid_type", f"'{where}' must be an object.", where)
    for key in obj:
        if key not in keys:
            raise _Reject(
                "unknown_parameter", f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}"
            )


def _codec(value: Any, param: str, beta: bool = False) -> AudioCodec:
    if beta != isinstance(value, str):
        raise _Reject("invalid_value", f"Invalid value for '{param}': {value!r}.", param)
    try:
        return AudioCodec.from_wire(value)
    except ValueError as exc:
        raise _Reject("invalid_value", f"Invalid value for '{param}': {exc}", param) from None


def _turn_detection(value: Any, where: str) -> dict[str, Any] | None:
    param = f"{where}.turn_detection"
    if value is None:
        return None
    _known(value, _VAD_KEYS, param)
    if value.get("type") not in ("server_vad", "semantic_vad"):
        raise _Reject("invalid_value", f"Invalid value for '{param}.type'.", f"{param}.type")
    threshold = value.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise _Reject("invalid_value", "threshold must be in [0, 1].", f"{param}.threshold")
    return {**_DEFAULT_VAD, **value}


def _transcription(value: Any, where: str) -> bool:
    if value is None:
        return False
    name = "transcription" if where.endswith("input") else "input_audio_transcription"
    param = f"{where}.{name}"
    _known(value, {"model", "language", "prompt"}, param)
    if not isinstance(value.get("model"), str):
        raise _Reject("invalid_value", f"'{param}.model' is required.", f"{param}.model")
    return True


def _tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise _Reject("invalid_type", "'session.tools' must be an array.", "session.tools")
    for i, tool in enumerate(tools):
        where = f"session.tools[{i}]"
        _known(tool, {"type", "name", "description", "parameters"}, where)
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise _Reject("invalid_value", f"'{where}' needs type 'function' and a name.", where)
        params = tool.get("parameters", {"type": "object"})
        if not isinstance(params, dict) or params.get("type") != "object":
            raise _Reject(
                "invalid_value",
                f"'{where}.parameters' must be a JSON schema object.",
                f"{where}.parameters",
            )


def _words(text: str) -> list[tuple[float, str]]:
    """(start position as a fraction of the text, word with its leading space)."""
    out: list[tuple[float, str]] = []
    pos = 0
    for k, word in enumerate(text.split(" ")):
        piece = word if k == 0 else " " + word
        out.append((pos / max(1, len(text)), piece))
        pos += len(piece)
    return out


class FakeRealtime:
    """``async with FakeRealtime(turns=[...]) as server:`` then ``server.url``.

    ``api_key=None`` accepts any key. ``delta_ms`` is the audio per delta,
    ``pace`` the real-time factor between deltas (0: a burst, as fast as the
    socket takes them; the service is usually faster than real time).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test",
        turns: list[Turn] | None = None,
        latency_s: float = 0.0,
        delta_ms: float = 100.0,
        pace: float = 0.0,
        chars_per_second: float = 15.0,
        allow_beta: bool = True,
        max_session_s: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.turns: list[Turn] = list(turns or [])
        self.latency_s, self.delta_ms, self.pace = latency_s, delta_ms, pace
        self.chars_per_second = chars_per_second
        self.allow_beta = allow_beta
        self.max_session_s = max_session_s
        self.sessions: list[FakeSession] = []
        self._server: Server | None = None
        self._conns: list[_Conn] = []
        self._change: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v1/realtime`` (the node adds ``?model=``)."""
        assert self._server is not None, "use 'async with FakeRealtime() as server'"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/realtime"

    async def __aenter__(self) -> FakeRealtime:
        from websockets.asyncio.server import serve

        self._change = asyncio.Event()
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._route, ping_interval=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/v1/realtime":
            return connection.respond(404, "Not Found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        model = (parse_qs(urlsplit(request.path).query).get("model") or [""])[0]
        beta = headers.get("openai-beta", "") == "realtime=v1"
        record = FakeSession(headers, "beta" if beta else "ga", model)
        self.sessions.append(record)
        conn = _Conn(self, ws, record)
        self._conns.append(conn)
        if not model:
            await conn.error("missing_model", "You must provide a model parameter.", "model", None)
            await ws.close(3000, "invalid_request_error.missing_model")
            return
        try:
            await conn.serve()
        finally:
            self._conns.remove(conn)

    def _changed(self) -> None:
        if self._change is not None:
            self._change.set()

    def next_turn(self) -> Turn:
        """The next scripted turn (a default one when the script is used up)."""
        return self.turns.pop(0) if self.turns else Turn()

    def script(self, *turns: Turn) -> None:
        """Add turns, used in order by the next committed user turns."""
        self.turns.extend(turns)

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as it is on every open connection (to test a client's parser)."""
        for conn in list(self._conns):
            await conn.ws.send(text)

    def drop(self) -> None:
        """Cut every open connection at the TCP level (no close frame)."""
        for conn in self._conns:
            conn.ws.transport.abort()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` is true (checked after every server-side change)."""
        assert self._change is not None
        while not condition():
            self._change.clear()
            await self._change.wait()
