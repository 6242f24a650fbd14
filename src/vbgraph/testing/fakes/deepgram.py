"""A fake Deepgram live STT server (``/v1/listen``): a real WebSocket peer on 127.0.0.1.

It follows ``../shared/protocols/deepgram.md``, not the client, and hears the
audio itself:

* **Handshake.** The path must be ``/v1/listen`` (404), ``Authorization`` must
  be ``Token <key>`` or ``Bearer <key>`` with the fake's key (401 with
  Deepgram's ``{"err_code": "INVALID_AUTH", ...}`` body), and the query must
  describe raw audio: ``encoding`` linear16, mulaw or alaw with an integer
  ``sample_rate`` (400; the real service also sniffs containers, the fake
  does not), booleans ``true``/``false``, ``endpointing`` an integer or
  ``false``, ``utterance_end_ms`` only with ``interim_results=true``.
* **Audio.** Binary frames are decoded (G.711 through :mod:`vbgraph.dsp.g711`)
  and cut into 10 ms windows; a window is speech when its RMS level is above
  ``threshold_dbfs``, and 30 ms of speech starts an utterance. Each utterance
  takes the next text of the ``script`` (an empty transcript once it runs out,
  counted in ``unscripted``). Stream time is the audio's sample count.
* **Results.** While an utterance goes on, an interim ``Results`` every
  ``interim_every_s`` of audio reveals one word per ``word_s`` of speech (never
  the last word). After ``endpointing`` ms of silence (the query's value;
  Deepgram's default is 10) comes ``is_final`` + ``speech_final`` with the
  whole text and evenly spread word times; a ``SpeechStarted`` first when
  ``vad_events=true``; an ``UtteranceEnd`` once ``utterance_end_ms`` of audio
  followed the last word; an empty final every ``silence_final_s`` of silence.
* **Control.** ``KeepAlive`` gets no answer. ``Finalize`` finalizes the open
  utterance (``from_finalize: true``; an empty such final if only silence is
  buffered). ``CloseStream`` (or the legacy empty binary frame) sends the last
  final, ``Metadata``, then closes 1000. Any other text gets an ``Error``
  message (``SchemaError``); audio after ``CloseStream`` is a recorded violation.
* **Failures.** No message for ``idle_timeout_s`` closes 1011 ``NET-0001``.
  :meth:`FakeDeepgram.drop_after` cuts a connection once its audio reaches a
  time (TCP abort, or a close code); the utterance it was hearing goes back to
  the front of the script, as the real service forgets unfinalized audio.
  :meth:`FakeDeepgram.refuse` answers the next handshakes with an HTTP status.
* **Latency.** Every message leaves ``latency_s`` after the audio or message
  that caused it arrived (order is kept).

Everything is recorded per connection (:class:`FakeConnection`); tests wait
for what they need with ``await fake.wait_for(lambda: ...)``, never a sleep.
Use it with ``async with FakeDeepgram(["hello there"]) as fake:`` and point
the node's ``url`` at ``fake.url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...dsp import g711

__all__ = ["FakeConnection", "FakeDeepgram", "Received"]

_ENCODINGS = ("linear16", "mulaw", "alaw")
_WINDOW_S = 0.01
_START_WINDOWS = 3
_NET_0001 = "NET-0001: Deepgram did not receive audio data or a text message within the timeout"


@dataclass(frozen=True, slots=True)
class Received:
    """A message the fake received: ``kind`` is ``audio``, a control type, or ``invalid``."""

    kind: str
    nbytes: int = 0
    audio_s: float = 0.0
    """Stream time (seconds of audio received) when it arrived."""
    at: float = 0.0
    """Event-loop time when it arrived (virtual time on a ``VirtualClock``)."""


@dataclass
class FakeConnection:
    """What one connection did: its query, what it received and sent, how it closed."""

    query: dict[str, list[str]]
    scheme: str
    """The ``Authorization`` scheme (``Token`` or ``Bearer``); the key is not kept."""
    received: list[Received] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    closed: bool = False

    def param(self, name: str) -> str | None:
        """The query parameter's (last) value."""
        values = self.query.get(name)
        return values[-1] if values else None

    def kinds(self) -> list[str]:
        """The kinds of the messages received, in order."""
        return [r.kind for r in self.received]


@dataclass(frozen=True, slots=True)
class _Options:
    rate: int
    channels: int
    encoding: str
    interim: bool
    endpointing_s: float | None
    utterance_end_s: float | None
    vad_events: bool
    model: str


@dataclass
class _Utterance:
    text: str
    start: float
    last_speech: float
    shown: int = 0
    last_interim: float = 0.0

    @property
    def tokens(self) -> list[str]:
        return self.text.split()


class _Listener:
    """One connection's recogniser (sans-I/O): audio and control in, messages out."""

    def __init__(self, fake: FakeDeepgram, opts: _Options) -> None:
        self.fake = fake
        self.opts = opts
        self.request_id = str(uuid.uuid4())
        self._sha = hashlib.sha256()
        self._pcm = bytearray()
        self._win = max(1, round(opts.rate * _WINDOW_S))
        self._windows = 0
        self.samples = 0  # samples per channel received
        self.segment_start = 0.0
        self._speech_run = 0
        self._silence_run = 0
        self._utt: _Utterance | None = None
        self._utterance_end_at: float | None = None
        self._last_word_end = 0.0
        # Finals made but not yet written to the socket: if the connection dies
        # first, their audio comes again on the next one and needs its text.
        self._undelivered: dict[int, str] = {}

    @property
    def audio_s(self) -> float:
        return self.samples / self.opts.rate

    def audio(self, data: bytes) -> list[dict[str, Any]]:
        self._sha.update(data)
        if self.opts.encoding == "mulaw":
            data = g711.ulaw_decode(data)
        elif self.opts.encoding == "alaw":
            data = g711.alaw_decode(data)
        self._pcm += data
        self.samples += len(data) // (2 * self.opts.channels)
        out: list[dict[str, Any]] = []
        step = self._win * 2 * self.opts.channels
        while len(self._pcm) >= step:
            window = np.frombuffer(bytes(self._pcm[:step]), "<i2").astype(np.float64)
            del self._pcm[:step]
            self._windows += 1
            rms = math.sqrt(float(np.mean(window * window)))
            speech = 20 * math.log10(rms / 32768 + 1e-12) > self.fake.threshold_dbfs
            self._window(speech, self._windows * self._win / self.opts.rate, out)
        return out

    def _window(self, speech: bool, t: float, out: list[dict[str, Any]]) -> None:
        fake, opts, win_s = self.fake, self.opts, self._win / self.opts.rate
        if speech:
            self._speech_run += 1
            self._silence_run = 0
            if self._utt is None and self._speech_run >= _START_WINDOWS:
                start = round(t - self._speech_run * win_s, 3)
                self._utt = _Utterance(fake._next_text(), start, t, last_interim=t)
                self._utterance_end_at = None
                if opts.vad_events:
                    out.append({"type": "SpeechStarted", "channel": [0, 1], "timestamp": start})
            if self._utt is not None:
                self._utt.last_speech = t
        else:
            self._silence_run += 1
            self._speech_run = 0
        utt = self._utt
        if utt is not None:
            if opts.interim and t - utt.last_interim >= fake.interim_every_s - 1e-9:
                utt.last_interim = t
                shown = min(len(utt.tokens) - 1, int((utt.last_speech - utt.start) / fake.word_s))
                if shown > utt.shown:
                    utt.shown = shown
                    out.append(self._results(t, utt, shown, is_final=False))
            ended = opts.endpointing_s is not None and self._silence_run * win_s >= (
                opts.endpointing_s - 1e-9
            )
            if ended:
                out.append(self._final(t, speech_final=True))
        else:
            if self._utterance_end_at is not None and t >= self._utterance_end_at - 1e-9:
                self._utterance_end_at = None
                out.append(
                    {
                        "type": "UtteranceEnd",
                        "channel": [0, 1],
                        "last_word_end": self._last_word_end,
                    }
                )
            silence = fake.silence_final_s
            if silence is not None and t - self.segment_start >= silence - 1e-9:
                out.append(self._final(t))

    def _results(
        self,
        t: float,
        utt: _Utterance | None,
        shown: int,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        words: list[dict[str, Any]] = []
        if utt is not None and shown:
            tokens = utt.tokens[:shown]
            span = max(utt.last_speech - utt.start, 0.1) if is_final else shown * self.fake.word_s
            step = span / len(utt.tokens) if is_final else span / shown
            for i, token in enumerate(tokens):
                plain = "".join(c for c in token if c.isalnum() or c == "'").lower() or token
                words.append(
                    {
                        "word": plain,
                        "start": round(utt.start + i * step, 3),
                        "end": round(utt.start + (i + 1) * step, 3),
                        "confidence": 0.98,
                        "punctuated_word": token,
                    }
                )
        text = " ".join(w["punctuated_word"] for w in words)
        start = round(self.segment_start, 3)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(t - self.segment_start, 3),
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {"transcript": text, "confidence": 0.97 if text else 0.0, "words": words}
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.opts.model, "version": "fake", "arch": "fake"},
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
        }

    def _final(
        self, t: float, *, speech_final: bool = False, from_finalize: bool = False
    ) -> dict[str, Any]:
        utt, self._utt = self._utt, None
        shown = len(utt.tokens) if utt is not None else 0
        msg = self._results(
            t, utt, shown, is_final=True, speech_final=speech_final, from_finalize=from_finalize
        )
        if utt is not None:
            self._undelivered[id(msg)] = utt.text
        words = msg["channel"]["alternatives"][0]["words"]
        if words:
            self._last_word_end = words[-1]["end"]
            if self.opts.utterance_end_s is not None:
                self._utterance_end_at = self._last_word_end + self.opts.utterance_end_s
        self.segment_start = t
        return msg

    def finalize(self) -> list[dict[str, Any]]:
        t = self._windows * self._win / self.opts.rate
        if self._utt is None and t <= self.segment_start:
            return []
        return [self._final(t, from_finalize=True)]

    def close_stream(self) -> list[dict[str, Any]]:
        t = self._windows * self._win / self.opts.rate
        out = []
        if self._utt is not None:
            out.append(self._final(t, speech_final=True))
        elif t > self.segment_start:
            out.append(self._final(t))
        out.append(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.request_id,
                "sha256": self._sha.hexdigest(),
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "duration": round(self.audio_s, 3),
                "channels": self.opts.channels,
            }
        )
        return out

    def delivered(self, msg: dict[str, Any]) -> None:
        """``msg`` was written to the socket."""
        self._undelivered.pop(id(msg), None)

    def abandon(self) -> None:
        """The connection is gone unfinished: what the client never got was never said."""
        texts = list(self._undelivered.values())
        if self._utt is not None:
            texts.append(self._utt.text)
        self.fake.script.extendleft(reversed(texts))
        self._undelivered.clear()
        self._utt = None


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class FakeDeepgram:
    """A fake ``/v1/listen`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        api_key: str = "dg-test",
        idle_timeout_s: float = 10.0,
        latency_s: float = 0.0,
        threshold_dbfs: float = -40.0,
        interim_every_s: float = 0.5,
        word_s: float = 0.3,
        silence_final_s: float | None = 5.0,
    ) -> None:
        self.script: deque[str] = deque(script)
        """Texts still to be said, one per utterance heard."""
        self.api_key = api_key
        self.idle_timeout_s = idle_timeout_s
        self.latency_s = latency_s
        self.threshold_dbfs = threshold_dbfs
        self.interim_every_s = interim_every_s
        self.word_s = word_s
        self.silence_final_s = silence_final_s
        self.connections: list[FakeConnection] = []
        self.rejected: list[tuple[int, str]] = []
        """(HTTP status, why) for each refused handshake."""
        self.unscripted = 0
        """Utterances heard after the script ran out (given an empty transcript)."""
        self._refuse: deque[int] = deque()
        self._drops: dict[int, tuple[float, int | None, str]] = {}
        self._sockets: dict[int, ServerConnection] = {}
        self._server: Server | None = None
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDeepgram:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_request
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v1/listen``: give it to the node's ``url`` param."""
        assert self._server is not None, "use 'async with FakeDeepgram() as fake'"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/listen"

    # -- test controls -----------------------------------------------------------------------

    def drop_after(
        self, audio_s: float, *, connection: int = 0, code: int | None = None, reason: str = ""
    ) -> None:
        """Cut connection number ``connection`` once it has received ``audio_s`` of audio.

        ``code`` ``None`` aborts the TCP connection (no close frame, as a
        network failure); otherwise the fake closes with ``code`` and ``reason``.
        """
        self._drops[connection] = (audio_s, code, reason)

    def refuse(self, *statuses: int) -> None:
        """Answer the next handshakes with these HTTP statuses (e.g. 503), one each."""
        self._refuse.extend(statuses)

    async def inject(self, text: str, *, connection: int = -1) -> None:
        """Send raw ``text`` to a client now (malformed or unknown messages for tests)."""
        index = connection % len(self.connections)
        await self._sockets[index].send(text)
        self.connections[index].sent.append({"injected": text})

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; it is checked after everything the fake records."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def _record(self) -> None:
        self._changed.set()

    # -- views -------------------------------------------------------------------------------

    def results(self, *, final: bool | None = None) -> list[dict[str, Any]]:
        """``Results`` messages sent on every connection (only finals or interims if asked)."""
        return [
            m
            for c in self.connections
            for m in c.sent
            if m.get("type") == "Results" and (final is None or m["is_final"] is final)
        ]

    def final_texts(self) -> list[str]:
        """Non-empty final transcripts, in the order they were sent."""
        texts = [m["channel"]["alternatives"][0]["transcript"] for m in self.results(final=True)]
        return [t for t in texts if t]

    def received(self, kind: str) -> list[Received]:
        """Messages of ``kind`` (``audio``, ``KeepAlive``, ``Finalize`` ...) on every connection."""
        return [r for c in self.connections for r in c.received if r.kind == kind]

    def _next_text(self) -> str:
        if self.script:
            return self.script.popleft()
        self.unscripted += 1
        return ""

    # -- handshake ---------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path != "/v1/listen":
            return self._reject(connection, 404, "Not Found", f"no route {parts.path}")
        if self._refuse:
            status = self._refuse.popleft()
            return self._reject(connection, status, "UNAVAILABLE", "refused by the test")
        scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
        if scheme not in ("Token", "Bearer") or key != self.api_key:
            return self._reject(connection, 401, "INVALID_AUTH", "Invalid credentials.")
        try:
            _options(parse_qs(parts.query, keep_blank_values=True))
        except ValueError as exc:
            return self._reject(connection, 400, "Bad Request", str(exc))
        return None

    def _reject(self, connection: ServerConnection, status: int, code: str, msg: str) -> Response:
        self.rejected.append((status, msg))
        self._record()
        body = json.dumps({"err_code": code, "err_msg": msg, "request_id": str(uuid.uuid4())})
        response = connection.respond(status, body)
        response.headers = Headers(
            [(k, v) for k, v in response.headers.raw_items() if k.lower() != "content-type"]
        )
        response.headers["Content-Type"] = "application/json"
        return response

    # -- one connection ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query, keep_blank_values=True)
        scheme = (ws.request.headers.get("Authorization") or "").partition(" ")[0]
        record = FakeConnection(query, scheme)
        index = len(self.connections)
        self.connections.append(record)
        self._sockets[index] = ws
        self._record()
        listener = _Listener(self, _options(query))
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[tuple[float, dict[str, Any] | _Close]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(ws, record, listener, outbox))
        closing = False

        def post(items: Iterable[dict[str, Any] | _Close]) -> None:
            nonlocal closing
            for item in items:
                closing = closing or isinstance(item, _Close)
                outbox.put_nowait((loop.time() + self.latency_s, item))

        def timed_out() -> None:
            record.violations.append("idle timeout")
            post([_Close(1011, _NET_0001)])

        complete = False
        idle = loop.call_later(self.idle_timeout_s, timed_out)
        try:
            async for message in ws:
                idle.cancel()
                if complete:
                    record.violations.append("message after CloseStream")
                    record.received.append(
                        Received("invalid", len(message), listener.audio_s, loop.time())
                    )
                elif isinstance(message, bytes) and message:
                    post(listener.audio(message))
                    record.received.append(
                        Received("audio", len(message), listener.audio_s, loop.time())
                    )
                    self._maybe_drop(index, listener, ws, post)
                else:
                    complete = self._control(message, listener, record, post)
                if not complete and not closing:
                    idle = loop.call_later(self.idle_timeout_s, timed_out)
                self._record()
        except ConnectionClosed:
            pass
        finally:
            idle.cancel()
            if not closing:
                sender.cancel()  # the client went away: nothing more can be sent
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender  # else let it finish its close handshake
            if not complete:
                listener.abandon()
            record.closed = True
            if record.close_code is None:
                record.close_code = ws.close_code
                record.close_reason = ws.close_reason or ""
            self._record()

    def _control(
        self,
        message: str | bytes,
        listener: _Listener,
        record: FakeConnection,
        post: Callable[[Iterable[dict[str, Any] | _Close]], None],
    ) -> bool:
        """A text frame (or the legacy empty binary frame); True once the stream is closing."""
        kind = "CloseStream" if message == b"" else _control_type(message)
        record.received.append(
            Received(kind, 0, listener.audio_s, asyncio.get_running_loop().time())
        )
        if kind == "KeepAlive":
            return False
        if kind == "Finalize":
            post(listener.finalize())
            return False
        if kind == "CloseStream":
            post([*listener.close_stream(), _Close(1000, "")])
            return True
        record.violations.append(f"unparsable text message {message!r:.80}")
        post(
            [
                {
                    "type": "Error",
                    "variant": "SchemaError",
                    "description": "Could not parse the client message.",
                    "message": message if isinstance(message, str) else "",
                }
            ]
        )
        return False

    def _maybe_drop(
        self,
        index: int,
        listener: _Listener,
        ws: ServerConnection,
        post: Callable[[Iterable[dict[str, Any] | _Close]], None],
    ) -> None:
        plan = self._drops.get(index)
        if plan is None or listener.audio_s < plan[0]:
            return
        del self._drops[index]
        _, code, reason = plan
        if code is None:
            self.connections[index].close_code = 1006
            self.connections[index].close_reason = "dropped by the test"
            ws.transport.abort()
        else:
            post([_Close(code, reason)])

    async def _send(
        self,
        ws: ServerConnection,
        record: FakeConnection,
        listener: _Listener,
        outbox: asyncio.Queue[tuple[float, dict[str, Any] | _Close]],
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, item = await outbox.get()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the recogniser's simulated latency
            if isinstance(item, _Close):
                record.close_code, record.close_reason = item.code, item.reason
                self._record()
                await ws.close(item.code, item.reason)
                return
            await ws.send(json.dumps(item))
            listener.delivered(item)
            record.sent.append(item)
            self._record()


def _control_type(message: str | bytes) -> str:
    if isinstance(message, bytes):
        return "invalid"
    try:
        obj = json.loads(message)
    except json.JSONDecodeError:
        return "invalid"
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if kind in ("KeepAlive", "Finalize", "CloseStream") else "invalid"


def _options(query: dict[str, list[str]]) -> _Options:
    """The stream's settings from its query; ``ValueError`` says what Deepgram would refuse."""

    def one(name: str, default: str | None = None) -> str | None:
        values = query.get(name)
        return values[-1] if values else default

    def flag(name: str) -> bool:
        value = one(name, "false")
        if value not in ("true", "false"):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value == "true"

    def integer(name: str, value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be an integer, not {value!r}") from None

    encoding = one("encoding")
    if encoding is None:
        raise ValueError("the fake takes raw audio only: pass encoding and sample_rate")
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding {encoding!r}: the fake takes linear16, mulaw or alaw")
    rate_text = one("sample_rate")
    if rate_text is None:
        raise ValueError(f"sample_rate is required with encoding={encoding}")
    rate = integer("sample_rate", rate_text)
    channels = integer("channels", one("channels", "1") or "1")
    if rate <= 0 or channels <= 0:
        raise ValueError("sample_rate and channels must be positive")
    interim = flag("interim_results")
    endpointing_text = one("endpointing", "10") or "10"
    endpointing = (
        None if endpointing_text == "false" else integer("endpointing", endpointing_text) / 1000
    )
    utterance_end = one("utterance_end_ms")
    if utterance_end is not None and not interim:
        raise ValueError("utterance_end_ms requires interim_results=true")
    return _Options(
        rate=rate,
        channels=channels,
        encoding=encoding,
        interim=interim,
        endpointing_s=endpointing,
        utterance_end_s=None
        if utterance_end is None
        else integer("utterance_end_ms", utterance_end) / 1000,
        vad_events=flag("vad_events"),
        model=one("model", "nova-3") or "nova-3",
    )
