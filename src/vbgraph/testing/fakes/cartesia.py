"""A fake Cartesia TTS WebSocket server: a real peer on 127.0.0.1 for tests.

It follows ``../shared/protocols/cartesia.md``, not any client::

    async with FakeCartesia(api_key="sk_car_test") as fake:
        url = fake.url  # ws://127.0.0.1:<port>/tts/websocket
        ...
        await fake.wait_for(lambda: fake.completed)

*Handshake.* Only ``/tts/websocket`` (404 otherwise). ``Cartesia-Version``
(header, or ``?cartesia_version=``, which wins) must be a date
``YYYY-MM-DD`` from 2024-06-10 on (400). The key comes from ``X-API-Key``,
``Authorization: Bearer`` or ``?api_key=``/``?access_token=``; missing or
wrong is HTTP 401 on the upgrade, as Cartesia answers.

*Requests.* Each text message must be a JSON object. A cancel
(``{"context_id", "cancel": true}``) stops that context: nothing more is
generated for it and no ``done`` follows. A generation request is checked
field by field (``model_id`` among ``models``; ``voice`` as ``{"mode": "id",
"id"}``, ``{"id"}`` or a string, a UUID, among ``voices`` if given;
``output_format`` raw with a known encoding and rate; ``transcript`` a string,
empty only with ``continue: false``; the optional fields' types and ranges),
and against its context (no text after the input was closed, the same model,
voice and format throughout). A violation is answered with the documented
``error`` message (``status_code``, ``title``, ``message``, ``error_code``,
``request_id``, ``doc_url``, ``done: true``); the socket stays open.

*Speech.* The fake voice (:func:`synthesize`) is deterministic: each
character takes ``ms_per_char``; letters and digits are a harmonic buzz whose
pitch depends on the letter, everything else is silence. Text is generated a
word at a time as it completes (whole transcript at ``continue: false`` or
``flush: true``), streamed as ``chunk`` messages of ``chunk_ms`` in the
requested encoding and rate, with ``timestamps`` for its words (when
``add_timestamps``) computed from the same sample counts, then ``flush_done``
and ``done``. ``first_chunk_latency_ms`` delays each context's first output
and ``chunk_interval_ms`` paces the chunks (session time: instant on a
``VirtualClock``).

*Faults on demand.* :meth:`FakeCartesia.drop_after_chunks` aborts the TCP
connection mid-stream; :meth:`FakeCartesia.stall_after_chunks` stops a
context's output with the socket left open; ``idle_timeout_s`` closes a
silent socket as the real service does after about five minutes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt

from ...dsp.g711 import alaw_encode, ulaw_encode

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = [
    "ENCODINGS",
    "MODELS",
    "SAMPLE_RATES",
    "FakeCartesia",
    "encode",
    "synthesize",
    "word_timestamps",
]

MODELS = ("sonic-3", "sonic-2", "sonic-turbo", "sonic")
ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
DOC_URL = "https://docs.cartesia.ai/api-reference/tts/websocket"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _char_samples(rate: int, ms_per_char: float) -> int:
    return max(1, round(rate * ms_per_char / 1000))


def synthesize(text: str, rate: int, ms_per_char: float = 50.0) -> npt.NDArray[np.float32]:
    """The fake voice: float samples in [-1, 1], ``ms_per_char`` ms for each character."""
    n = _char_samples(rate, ms_per_char)
    t = np.arange(n) / rate
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / max(1, rate // 250))
    out = np.zeros(n * len(text), dtype=np.float32)
    for i, ch in enumerate(text):
        if not ch.isalnum():
            continue
        f0 = 90.0 + 9.0 * (ord(ch.lower()) % 23)  # a pitch per letter: 90..288 Hz
        loud = 0.35 if ch.lower() in "aeiouy" else 0.2
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
        out[i * n : (i + 1) * n] = loud * fade * wave / 2.45
    return out


def encode(samples: npt.NDArray[np.float32], encoding: str) -> bytes:
    """``samples`` in one of Cartesia's raw encodings."""
    if encoding == "pcm_f32le":
        return samples.astype("<f4").tobytes()
    s16 = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
    if encoding == "pcm_mulaw":
        return ulaw_encode(s16)
    if encoding == "pcm_alaw":
        return alaw_encode(s16)
    return s16


def word_timestamps(
    text: str, rate: int, ms_per_char: float = 50.0, offset_samples: int = 0
) -> list[tuple[str, float, float]]:
    """``(word, start_s, end_s)`` of each whitespace-separated word of ``text`` as
    :func:`synthesize` speaks it, ``offset_samples`` into the context's audio."""
    n = _char_samples(rate, ms_per_char)
    return [
        (m.group(), (offset_samples + m.start() * n) / rate, (offset_samples + m.end() * n) / rate)
        for m in re.finditer(r"\S+", text)
    ]


@dataclass(eq=False)
class _Context:
    cid: str
    model_id: str
    voice: str
    encoding: str
    rate: int
    add_timestamps: bool
    buffer: str = ""
    samples: int = 0
    closed: bool = False
    cancelled: bool = False
    failed: bool = False
    flushes: int = 0
    flush_id: int = 0
    started: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def take(self) -> str:
        """Text ready to speak: whole words, or everything once closed or flushed."""
        if self.closed or self.flushes:
            text, self.buffer = self.buffer, ""
            return text
        cut = max(self.buffer.rfind(" "), self.buffer.rfind("\n")) + 1
        text, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return text


class _Problem(Exception):
    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class FakeCartesia:
    """The fake server (see the module docstring). Records what it saw for tests.

    ``requests`` holds every client message (parsed), ``handshakes`` the
    headers of accepted upgrades, ``rejected`` why each refusal or error was
    sent, ``audio`` the bytes sent per context, ``completed`` and
    ``cancelled`` context ids in order.
    """

    def __init__(
        self,
        api_key: str = "sk_car_test",
        *,
        models: Iterable[str] = MODELS,
        voices: Iterable[str] | None = None,
        ms_per_char: float = 50.0,
        chunk_ms: float = 40.0,
        first_chunk_latency_ms: float = 0.0,
        chunk_interval_ms: float = 0.0,
        idle_timeout_s: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = frozenset(models)
        self.voices = None if voices is None else frozenset(voices)
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.first_chunk_latency_ms = first_chunk_latency_ms
        self.chunk_interval_ms = chunk_interval_ms
        self.idle_timeout_s = idle_timeout_s
        self.requests: list[dict[str, Any]] = []
        self.handshakes: list[dict[str, str]] = []
        self.rejected: list[str] = []
        self.audio: dict[str, bytearray] = {}
        self.completed: list[str] = []
        self.cancelled: list[str] = []
        self.stalled: list[str] = []
        self.connections = 0
        self.dropped = 0
        self._drop_countdown: int | None = None
        self._stall_countdown: int | None = None
        self._server: Server | None = None
        self._changed = asyncio.Event()
        self._errors = 0

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/tts/websocket``."""
        assert self._server is not None, "use 'async with FakeCartesia() as fake'"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}/tts/websocket"

    async def __aenter__(self) -> FakeCartesia:
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check_handshake,
            ping_interval=None,
            max_size=1 << 20,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def drop_after_chunks(self, chunks: int) -> None:
        """Abort the TCP connection (no close frame) right after the next ``chunks`` chunks.

        With 0 it is aborted when the next generation request arrives, before any audio.
        """
        self._drop_countdown = chunks

    def stall_after_chunks(self, chunks: int) -> None:
        """After the next ``chunks`` chunks, send nothing more for that context (socket open)."""
        self._stall_countdown = chunks

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        """Return once ``predicate()`` is true; re-checked whenever the server's state changes."""
        while not predicate():
            await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- handshake -------------------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        headers = request.headers
        if url.path != "/tts/websocket":
            return self._refuse(connection, HTTPStatus.NOT_FOUND, f"no route {url.path}")
        version = query.get("cartesia_version") or headers.get("Cartesia-Version")
        if not version:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "Cartesia-Version is required")
        if not _VERSION.match(version) or version < "2024-06-10":
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, f"bad version {version!r}")
        bearer = headers.get("Authorization", "")
        key = (
            headers.get("X-API-Key")
            or (bearer[7:] if bearer.startswith("Bearer ") else None)
            or query.get("api_key")
            or query.get("access_token")
        )
        if key is None:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "API key is required")
        if key != self.api_key:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "Invalid API key")
        self.handshakes.append({k.lower(): v for k, v in headers.raw_items()})
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, why: str) -> Response:
        self.rejected.append(f"HTTP {status.value}: {why}")
        self._touch()
        return connection.respond(status, json.dumps({"error": why}) + "\n")

    # -- one connection ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        self.connections += 1
        contexts: dict[str, _Context] = {}
        self._touch()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        raw = await ws.recv()
                except TimeoutError:
                    await ws.close(1000, "idle timeout")
                    return
                await self._receive(ws, contexts, raw)
        except ConnectionClosed:
            pass
        finally:
            for ctx in contexts.values():
                if ctx.task is not None:
                    ctx.task.cancel()
            self._touch()

    async def _receive(
        self, ws: ServerConnection, contexts: dict[str, _Context], raw: str | bytes
    ) -> None:
        try:
            if isinstance(raw, bytes):
                raise _Problem("send JSON in text messages")
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _Problem(f"invalid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise _Problem("a request must be a JSON object")
        except _Problem as problem:
            await self._error(ws, None, problem)
            return
        self.requests.append(obj)
        self._touch()
        cid = obj.get("context_id")
        if obj.get("cancel") is True:
            if not isinstance(cid, str) or not cid:
                await self._error(ws, None, _Problem("cancel needs a context_id"))
                return
            self.cancelled.append(cid)
            ctx = contexts.get(cid)
            if ctx is not None:
                ctx.cancelled = True
                ctx.wake.set()
            return
        if cid is None:
            cid = obj["context_id"] = f"auto-{len(self.requests)}"
        try:
            ctx = self._request(contexts, obj)
        except _Problem as problem:
            if isinstance(cid, str) and cid in contexts:
                contexts[cid].failed = True
            await self._error(ws, cid if isinstance(cid, str) else None, problem)
            return
        if self._drop_countdown == 0:
            self._drop(ws)
            return
        if ctx.task is None:
            ctx.task = asyncio.create_task(self._generate(ws, ctx))
        ctx.wake.set()

    def _drop(self, ws: ServerConnection) -> None:
        self._drop_countdown = None
        self.dropped += 1
        ws.transport.abort()  # a network failure: no close frame
        self._touch()

    def _request(self, contexts: dict[str, _Context], obj: dict[str, Any]) -> _Context:
        """Validate a generation request; returns its context with the text added."""
        cid = obj["context_id"]
        if not isinstance(cid, str) or not cid:
            raise _Problem("context_id must be a non-empty string")
        model = obj.get("model_id")
        if not isinstance(model, str) or model not in self.models:
            raise _Problem(f"model_id {model!r} is not a model", "invalid_model_id")
        voice = _voice_id(obj.get("voice"))
        if self.voices is not None and voice not in self.voices:
            raise _Problem(f"voice {voice!r} was not found", "voice_not_found", 404)
        encoding, rate = _output_format(obj.get("output_format"))
        transcript = obj.get("transcript")
        if not isinstance(transcript, str):
            raise _Problem("transcript must be a string")
        more = obj.get("continue", False)
        if not isinstance(more, bool):
            raise _Problem("continue must be a boolean")
        if more and not transcript:
            raise _Problem("transcript must not be empty while continue is true")
        _check_optional(obj)
        ctx = contexts.get(cid)
        if ctx is None:
            timestamps = bool(obj.get("add_timestamps", False))
            ctx = _Context(cid, model, voice, encoding, rate, timestamps)
            contexts[cid] = ctx
            self.audio[cid] = bytearray()
        elif ctx.closed or ctx.cancelled or ctx.failed:
            raise _Problem(f"context {cid!r} is closed; use a new context_id", "context_closed")
        elif (model, voice, encoding, rate) != (ctx.model_id, ctx.voice, ctx.encoding, ctx.rate):
            raise _Problem("model_id, voice and output_format must not change within a context")
        ctx.buffer += transcript
        ctx.closed = not more
        ctx.flushes += obj.get("flush") is True
        return ctx

    async def _error(self, ws: ServerConnection, cid: str | None, problem: _Problem) -> None:
        self._errors += 1
        self.rejected.append(f"{problem.code}: {problem.message}")
        self._touch()
        message: dict[str, Any] = {
            "type": "error",
            "status_code": problem.status,
            "done": True,
            "title": HTTPStatus(problem.status).phrase,
            "message": problem.message,
            "error_code": problem.code,
            "request_id": f"req_fake_{self._errors:04d}",
            "doc_url": DOC_URL,
        }
        if cid is not None:
            message["context_id"] = cid
        await ws.send(json.dumps(message))

    # -- generation ------------------------------------------------------------------------

    async def _generate(self, ws: ServerConnection, ctx: _Context) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while not ctx.cancelled:
                ctx.wake.clear()
                text = ctx.take()
                if text:
                    await self._speak(ws, ctx, text)
                elif ctx.flushes:
                    ctx.flushes -= 1
                    ctx.flush_id += 1
                    await self._send(ws, ctx, "flush_done", flush_id=ctx.flush_id, flush_done=True)
                elif ctx.closed:
                    await self._send(ws, ctx, "done", done=True)
                    self.completed.append(ctx.cid)
                    self._touch()
                    return
                else:
                    await ctx.wake.wait()
        except ConnectionClosed:
            return

    async def _speak(self, ws: ServerConnection, ctx: _Context, text: str) -> None:
        if not ctx.started:
            ctx.started = True
            await asyncio.sleep(self.first_chunk_latency_ms / 1000)
        pcm = encode(synthesize(text, ctx.rate, self.ms_per_char), ctx.encoding)
        words = word_timestamps(text, ctx.rate, self.ms_per_char, ctx.samples)
        ctx.samples += len(text) * _char_samples(ctx.rate, self.ms_per_char)
        if ctx.add_timestamps and words and not ctx.cancelled:
            stamps = {
                "words": [w for w, _, _ in words],
                "start": [s for _, s, _ in words],
                "end": [e for _, _, e in words],
            }
            await self._send(ws, ctx, "timestamps", word_timestamps=stamps)
        width = 4 if ctx.encoding == "pcm_f32le" else 2 if ctx.encoding == "pcm_s16le" else 1
        step = max(1, round(ctx.rate * self.chunk_ms / 1000)) * width
        for i in range(0, len(pcm), step):
            if i and self.chunk_interval_ms:
                await asyncio.sleep(self.chunk_interval_ms / 1000)
            if ctx.cancelled:
                return
            piece = pcm[i : i + step]
            data = base64.b64encode(piece).decode("ascii")
            await self._send(ws, ctx, "chunk", data=data, step_time=12.5)
            self.audio[ctx.cid] += piece
            self._touch()
            if self._stall_countdown is not None:
                self._stall_countdown -= 1
                if self._stall_countdown <= 0:
                    self._stall_countdown = None
                    self.stalled.append(ctx.cid)
                    self._touch()
                    await asyncio.Event().wait()  # until the connection goes away
            if self._drop_countdown is not None:
                self._drop_countdown -= 1
                if self._drop_countdown <= 0:
                    self._drop(ws)
                    await asyncio.sleep(0)  # let the abort land before the next send

    async def _send(self, ws: ServerConnection, ctx: _Context, kind: str, **fields: Any) -> None:
        message = {"type": kind, "context_id": ctx.cid, "status_code": 200, "done": False}
        message.update(fields)
        await ws.send(json.dumps(message))


def _voice_id(voice: Any) -> str:
    if isinstance(voice, dict):
        if voice.get("mode", "id") != "id":
            raise _Problem("voice mode must be 'id' (embeddings are not supported here)")
        voice = voice.get("id")
    if not isinstance(voice, str) or not _UUID.match(voice):
        raise _Problem(f"voice id {voice!r} is not a UUID", "invalid_voice")
    return voice


def _output_format(fmt: Any) -> tuple[str, int]:
    if not isinstance(fmt, dict):
        raise _Problem("output_format is required")
    if fmt.get("container") != "raw":
        raise _Problem(f"container {fmt.get('container')!r}: this fake streams 'raw' only")
    encoding, rate = fmt.get("encoding"), fmt.get("sample_rate")
    if encoding not in ENCODINGS:
        raise _Problem(f"encoding {encoding!r} is not one of {list(ENCODINGS)}")
    if not isinstance(rate, int) or rate not in SAMPLE_RATES:
        raise _Problem(f"sample_rate {rate!r} is not one of {list(SAMPLE_RATES)}")
    return encoding, rate


def _check_optional(obj: dict[str, Any]) -> None:
    for name in ("add_timestamps", "add_phoneme_timestamps", "flush"):
        if name in obj and not isinstance(obj[name], bool):
            raise _Problem(f"{name} must be a boolean")
    if "language" in obj and not isinstance(obj["language"], str):
        raise _Problem("language must be a string")
    delay = obj.get("max_buffer_delay_ms", 0)
    if not isinstance(delay, int) or not 0 <= delay <= 5000:
        raise _Problem("max_buffer_delay_ms must be an integer 0..5000")
    config = obj.get("generation_config", {})
    if not isinstance(config, dict):
        raise _Problem("generation_config must be an object")
    for name, low, high in (("speed", 0.6, 1.5), ("volume", 0.5, 2.0)):
        value = config.get(name, low)
        if not isinstance(value, int | float) or not low <= value <= high:
            raise _Problem(f"generation_config.{name} must be within {low}..{high}")
