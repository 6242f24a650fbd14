"""A fake ElevenLabs TTS WebSocket server: a real peer on 127.0.0.1 (websockets, asyncio).

.. code-block:: python

    from vbgraph.testing.fakes.elevenlabs import FakeElevenLabs

    async with FakeElevenLabs(api_key="xi-test") as server:
        ...  # point tts.elevenlabs at url=server.url, api_key="xi-test"

It follows ``../shared/protocols/elevenlabs.md`` (both
``/v1/text-to-speech/{voice_id}/multi-stream-input`` and ``stream-input``),
not the client:

* **Handshake.** Unknown paths are HTTP 404; an ``output_format`` other than
  ``pcm_8000`` ... ``pcm_48000``, ``ulaw_8000``, ``alaw_8000`` is HTTP 400,
  as is a missing ``model_id``. The key comes in the ``xi-api-key`` header,
  or (without the header) in the first message as ``xi-api-key``,
  ``xi_api_key`` or ``authorization: "Bearer <key>"``. A wrong key gets the
  error message ``{"message": "Invalid API key", "error":
  "invalid_api_key", "code": 1008}`` and a close 1008 ``Invalid API key``
  (or, with ``reject_bad_key_at_handshake=True``, HTTP 401 with
  ``{"detail": {"status": "invalid_api_key", ...}}``).
* **Messages.** JSON objects with known fields only. The socket's first
  message is the BOS/initialisation, ``text`` exactly ``" "``; a context's
  first message must carry ``text``. ``voice_settings`` (validated ranges)
  may come in the first message and later only unchanged (else 1008, as the
  service says). At most 5 contexts open at once. On ``stream-input``,
  ``{"text": ""}`` is the EOS; on ``multi-stream-input`` it is a keep-alive
  (of the connection, or of the context it names). Breaking a rule gets
  ``{"error": "invalid_input_message", ...}`` and a close 1008.
* **Generation.** Text is buffered per context and generated on ``flush``,
  when the buffer reaches the next ``chunk_length_schedule`` length
  (default [120, 160, 250, 290]), on every message with ``auto_mode=true``,
  and at the EOS. ``close_context`` drops unflushed text; text already
  flushed keeps generating (so audio for a closed context arrives late, as
  from the service), then ``isFinal`` follows. Audio is deterministic and
  non-silent: one tone of ``ms_per_char`` per character (pitch from the
  character), int16 LE or G.711 per ``output_format``, sent in ``chunk_ms``
  chunks with alignment whose times are relative to each chunk (or, without
  ``sync_alignment=true``, the whole generation's in its first chunk).
  ``first_chunk_latency_s`` passes before a context's first chunk and
  ``chunk_interval_s`` between chunks (virtual time on a ``VirtualClock``).
* **Inactivity.** No message for ``inactivity_timeout`` seconds (the query
  parameter, else the constructor's) closes the socket with 1008
  ``input_timeout_exceeded: Have not received a new text input ...``.
* **Faults on demand.** :meth:`FakeElevenLabs.drop_after` cuts the TCP
  connection (no close frame) after some more audio chunks;
  :meth:`FakeElevenLabs.inject` sends raw messages (malformed, unknown)
  before the next chunk.

Every connection is recorded (:class:`Connection`) with the messages it
sent and how it ended; :meth:`FakeElevenLabs.wait_until` waits for a
condition on them without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ...dsp.g711 import alaw_encode, ulaw_encode
from ...formats import Encoding
from ...providers.elevenlabs.protocol import MAX_CONTEXTS, OUTPUT_FORMATS

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = ["Connection", "FakeElevenLabs", "synthesize"]

_KEYS = {
    "text", "context_id", "voice_settings", "generation_config",
    "pronunciation_dictionary_locators", "xi-api-key", "xi_api_key", "authorization",
    "flush", "try_trigger_generation", "close_context", "close_socket",
}  # fmt: skip
_VOICE_RANGES = {"stability": (0, 1), "similarity_boost": (0, 1), "style": (0, 1)}
_SPEED = (0.7, 1.2)
_DEFAULT_SCHEDULE = (120, 160, 250, 290)
_VOICE_RULE = (
    "voice_settings field must be provided in the first message and then either be not "
    "provided or not change."
)


def synthesize(text: str, rate: int, ms_per_char: int) -> bytes:
    """Deterministic int16 LE speech stand-in: one tone per character, never silent."""
    samples = bytearray()
    for i, char in enumerate(text):
        start, end = i * ms_per_char * rate // 1000, (i + 1) * ms_per_char * rate // 1000
        freq = 180 + 15 * (ord(char) % 32)
        amp = 1500 if char.isspace() else 6000
        samples += b"".join(
            int(amp * math.sin(2 * math.pi * freq * n / rate)).to_bytes(2, "little", signed=True)
            for n in range(end - start)
        )
    return bytes(samples)


@dataclass
class Connection:
    """One client connection as the server saw it."""

    endpoint: str
    voice_id: str
    query: dict[str, str]
    header_key: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    generated: list[tuple[str | None, str]] = field(default_factory=list)
    """(context, text) of each generation, in order."""
    audio_chunks: int = 0
    close_code: int | None = None
    close_reason: str = ""
    dropped: bool = False


class _Broken(Exception):
    """The client broke a rule: send this error and close 1008."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass
class _Context:
    schedule: tuple[int, ...]
    buffer: str = ""
    step: int = 0
    closing: bool = False
    started: bool = False


class FakeElevenLabs:
    """``async with FakeElevenLabs() as server:`` then ``server.url`` (see the module docs)."""

    def __init__(
        self,
        api_key: str = "xi-test",
        *,
        inactivity_timeout_s: float = 20.0,
        first_chunk_latency_s: float = 0.0,
        chunk_interval_s: float = 0.0,
        chunk_ms: int = 100,
        ms_per_char: int = 60,
        reject_bad_key_at_handshake: bool = False,
    ) -> None:
        self.api_key = api_key
        self.inactivity_timeout_s = inactivity_timeout_s
        self.first_chunk_latency_s = first_chunk_latency_s
        self.chunk_interval_s = chunk_interval_s
        self.chunk_ms = chunk_ms
        self.ms_per_char = ms_per_char
        self.reject_bad_key_at_handshake = reject_bad_key_at_handshake
        self.connections: list[Connection] = []
        self.refused: list[str] = []
        """Why each handshake the server refused was refused."""
        self._drop_after: int | None = None
        self._inject: list[str] = []
        self._server: Server | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        """The base URL to give the client (``ws://127.0.0.1:<port>``)."""
        assert self._server is not None, "use 'async with FakeElevenLabs()'"
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    def inject(self, *messages: str) -> None:
        """Send these raw text messages just before the next audio chunk (any connection)."""
        self._inject.extend(messages)

    def drop_after(self, chunks: int) -> None:
        """Cut the connection (no close frame) once ``chunks`` more audio chunks were sent."""
        self._drop_after = chunks

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true (checked whenever the server's record changes)."""
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def __aenter__(self) -> FakeElevenLabs:
        from websockets.asyncio.server import serve

        self._changed = asyncio.Condition()
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_request, ping_interval=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    # -- handshake ------------------------------------------------------------------------

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        parts = url.path.strip("/").split("/")
        query = dict(parse_qsl(url.query))
        if (
            len(parts) != 4
            or parts[:2] != ["v1", "text-to-speech"]
            or parts[3]
            not in (
                "stream-input",
                "multi-stream-input",
            )
        ):
            return self._refuse(conn, HTTPStatus.NOT_FOUND, "not_found", f"no route {url.path}")
        fmt = query.get("output_format", "mp3_44100_128")
        if fmt not in OUTPUT_FORMATS:
            return self._refuse(
                conn, HTTPStatus.BAD_REQUEST, "invalid_output_format", f"unsupported {fmt!r}"
            )
        if not query.get("model_id"):
            return self._refuse(conn, HTTPStatus.BAD_REQUEST, "invalid_model", "model_id missing")
        key = request.headers.get("xi-api-key")
        if key is not None and key != self.api_key and self.reject_bad_key_at_handshake:
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, "invalid_api_key", "Invalid API key")
        return None

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, code: str, msg: str) -> Response:
        self.refused.append(f"{status.value} {code}: {msg}")
        body = json.dumps({"detail": {"status": code, "message": msg}})
        response = conn.respond(status, body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    # -- one connection ---------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        parts = url.path.strip("/").split("/")
        record = Connection(
            endpoint=parts[3],
            voice_id=parts[2],
            query=dict(parse_qsl(url.query)),
            header_key=ws.request.headers.get("xi-api-key"),
        )
        self.connections.append(record)
        await self._notify()
        session = _Session(self, ws, record)
        try:
            await session.serve()
        finally:
            if ws.close_code is not None and record.close_code is None and not record.dropped:
                record.close_code, record.close_reason = ws.close_code, ws.close_reason or ""
            await self._notify()

    def _take_drop(self) -> bool:
        if self._drop_after is None:
            return False
        self._drop_after -= 1
        if self._drop_after > 0:
            return False
        self._drop_after = None
        return True


class _Session:
    """The server's side of one connection: validation, buffers, the audio sender."""

    def __init__(self, fake: FakeElevenLabs, ws: ServerConnection, record: Connection) -> None:
        self.fake = fake
        self.ws = ws
        self.record = record
        self.multi = record.endpoint == "multi-stream-input"
        self.fmt = OUTPUT_FORMATS[record.query.get("output_format", "pcm_16000")]
        self.sync_alignment = record.query.get("sync_alignment") == "true"
        self.auto_mode = record.query.get("auto_mode") == "true"
        timeout = record.query.get("inactivity_timeout")
        self.timeout = min(float(timeout), 180.0) if timeout else fake.inactivity_timeout_s
        self.authed = record.header_key == fake.api_key
        self.contexts: dict[str | None, _Context] = {}
        self.voice_settings: Any = None
        self.first = True
        self.ended = False  # EOS / close_socket received
        self.jobs: asyncio.Queue[tuple[str | None, str | None]] = asyncio.Queue()

    async def serve(self) -> None:
        from websockets.exceptions import ConnectionClosed

        sender = asyncio.create_task(self._send_audio())
        try:
            if self.record.header_key is not None and not self.authed:
                raise _Broken("invalid_api_key", "Invalid API key")
            while True:
                try:
                    async with asyncio.timeout(None if self.ended else self.timeout):
                        data = await self.ws.recv()
                except TimeoutError:
                    reason = (
                        "input_timeout_exceeded: Have not received a new text input within "
                        f"the timeout of {self.timeout:g} seconds."
                    )
                    await self._close(1008, reason)
                    return
                self._receive(data)
                await self.fake._notify()
        except _Broken as exc:
            await self._send({"message": exc.message, "error": exc.error, "code": 1008})
            await self._close(1008, exc.message[:120])
        except ConnectionClosed:
            pass
        finally:
            if not self.ended or self.record.close_code is not None:
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _receive(self, data: str | bytes) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            raise _Broken("invalid_input_message", "message is not valid JSON") from None
        if not isinstance(msg, dict) or set(msg) - _KEYS:
            raise _Broken("invalid_input_message", f"unknown message schema: {str(msg)[:60]}")
        self.record.messages.append(msg)
        if self.ended:
            return
        if not self.authed:
            key = msg.get("xi-api-key", msg.get("xi_api_key"))
            bearer = str(msg.get("authorization", ""))
            if self.fake.api_key not in (key, bearer.removeprefix("Bearer ")):
                raise _Broken("invalid_api_key", "Invalid API key")
            self.authed = True
        self._check_settings(msg)
        first, self.first = self.first, False
        if first and msg.get("text") != " ":
            raise _Broken("invalid_input_message", 'the first message must be {"text": " "}')
        if msg.get("close_socket") is True and self.multi:
            for cid in list(self.contexts):
                self._close_context(cid)
            self.ended = True
            self.jobs.put_nowait((None, None))  # the sender closes the socket after the finals
            return
        cid = msg.get("context_id", "") if self.multi else None
        if cid is not None and not isinstance(cid, str):
            raise _Broken("invalid_input_message", "context_id must be a string")
        text = msg.get("text")
        if text is not None and not isinstance(text, str):
            raise _Broken("invalid_input_message", "text must be a string")
        if self.multi and "context_id" not in msg and text == "" and not first:
            return  # connection keep-alive
        ctx = self.contexts.get(cid)
        init = ctx is None
        if ctx is None:
            if not text:  # a keep-alive or flush cannot open a context
                raise _Broken("invalid_input_message", f"context {cid!r} was not initialised")
            if len(self.contexts) >= MAX_CONTEXTS:
                raise _Broken("max_active_contexts", f"more than {MAX_CONTEXTS} contexts open")
            schedule = (msg.get("generation_config") or {}).get("chunk_length_schedule")
            ctx = self.contexts[cid] = _Context(tuple(schedule or _DEFAULT_SCHEDULE))
            if text == " ":
                text = None  # the initialisation's space is not text to speak
        elif ctx.closing:
            raise _Broken("invalid_input_message", f"context {cid!r} is closed")
        if text == "" and not self.multi and not init:  # EOS
            self._generate(cid, ctx)
            self._close_context(cid)
            self.ended = True
            return
        if text:
            ctx.buffer += text
            threshold = ctx.schedule[min(ctx.step, len(ctx.schedule) - 1)]
            if self.auto_mode or len(ctx.buffer) >= threshold:
                ctx.step += 1
                self._generate(cid, ctx)
        if msg.get("flush") is True:
            self._generate(cid, ctx)
        if msg.get("close_context") is True and self.multi:
            self._close_context(cid)

    def _check_settings(self, msg: dict[str, Any]) -> None:
        settings = msg.get("voice_settings")
        if settings is not None:
            if not self.first and settings != self.voice_settings:
                raise _Broken("invalid_input_message", _VOICE_RULE)
            if not isinstance(settings, dict):
                raise _Broken("invalid_input_message", "voice_settings must be an object")
            for name, value in settings.items():
                low, high = _VOICE_RANGES.get(name, _SPEED if name == "speed" else (None, None))
                if name == "use_speaker_boost":
                    ok = isinstance(value, bool)
                else:
                    number = isinstance(value, int | float) and not isinstance(value, bool)
                    ok = low is not None and number and low <= value <= high
                if not ok:
                    raise _Broken("invalid_input_message", f"voice_settings.{name}={value!r}")
            self.voice_settings = settings
        config = msg.get("generation_config")
        if config is not None:
            schedule = config.get("chunk_length_schedule") if isinstance(config, dict) else None
            if not isinstance(schedule, list) or not all(
                isinstance(n, int | float) and 50 <= n <= 500 for n in schedule
            ):
                raise _Broken("invalid_input_message", "chunk_length_schedule: numbers 50-500")

    def _generate(self, cid: str | None, ctx: _Context) -> None:
        text, ctx.buffer = ctx.buffer, ""
        if text.strip():
            self.jobs.put_nowait((cid, text))

    def _close_context(self, cid: str | None) -> None:
        ctx = self.contexts.get(cid)
        if ctx is not None and not ctx.closing:
            ctx.closing = True
            ctx.buffer = ""  # unflushed text is dropped; flushed text still generates
            self.jobs.put_nowait((cid, None))

    # -- audio out --------------------------------------------------------------------------

    async def _send_audio(self) -> None:
        while True:
            cid, text = await self.jobs.get()
            if text is None:
                if cid is None and self.multi:  # close_socket: all finals were queued first
                    await self._close(1000, "")
                    return
                self.contexts.pop(cid, None)
                final: dict[str, Any] = {"isFinal": True}
                if self.multi:
                    final["contextId"] = cid
                else:
                    final["audio"] = None
                await self._send(final)
                if not self.multi:
                    await self._close(1000, "")
                    return
                continue
            await self._speak(cid, text)

    async def _speak(self, cid: str | None, text: str) -> None:
        from websockets.exceptions import ConnectionClosed

        fake, fmt = self.fake, self.fmt
        self.record.generated.append((cid, text))
        ctx = self.contexts.get(cid)
        if ctx is not None and not ctx.started:
            ctx.started = True
            if fake.first_chunk_latency_s > 0:
                await asyncio.sleep(fake.first_chunk_latency_s)
        pcm = synthesize(text, fmt.rate, fake.ms_per_char)
        if fmt.encoding is Encoding.MULAW:
            audio = ulaw_encode(pcm)
        elif fmt.encoding is Encoding.ALAW:
            audio = alaw_encode(pcm)
        else:
            audio = pcm
        total_ms = len(text) * fake.ms_per_char
        for start_ms in range(0, total_ms, fake.chunk_ms):
            end_ms = min(start_ms + fake.chunk_ms, total_ms)
            a = fmt.samples_for_ms(start_ms) * fmt.frame_bytes
            b = fmt.samples_for_ms(end_ms) * fmt.frame_bytes
            msg: dict[str, Any] = {"audio": base64.b64encode(audio[a:b]).decode("ascii")}
            if self.sync_alignment:
                msg["alignment"] = self._alignment(text, start_ms, end_ms, start_ms)
            elif start_ms == 0:
                msg["alignment"] = self._alignment(text, 0, total_ms, 0)
            else:
                msg["alignment"] = None
            msg["normalizedAlignment"] = msg["alignment"]
            if self.multi:
                msg["contextId"] = cid
            else:
                msg["isFinal"] = None
            while fake._inject:
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send(fake._inject.pop(0))
            await self._send(msg)
            self.record.audio_chunks += 1
            if fake._take_drop():
                self.record.dropped = True
                self.ws.transport.abort()
                return
            if fake.chunk_interval_s > 0:
                await asyncio.sleep(fake.chunk_interval_s)

    def _alignment(self, text: str, start_ms: int, end_ms: int, origin: int) -> dict[str, Any]:
        step = self.fake.ms_per_char
        first, last = -(-start_ms // step), -(-end_ms // step)  # chars starting in [start, end)
        chars = list(text[first:last])
        return {
            "chars": chars,
            "charStartTimesMs": [(first + i) * step - origin for i in range(len(chars))],
            "charDurationsMs": [step] * len(chars),
        }

    async def _send(self, msg: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(msg))

    async def _close(self, code: int, reason: str) -> None:
        if self.record.close_code is None and not self.record.dropped:
            self.record.close_code, self.record.close_reason = code, reason
        await self.ws.close(code, reason)
        await self.fake._notify()
