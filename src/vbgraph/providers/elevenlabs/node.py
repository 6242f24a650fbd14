"""The ``tts.elevenlabs`` node: the asyncio shell around :mod:`.protocol`.

It owns the WebSocket (``websockets``, imported when the node connects), the
keep-alive and flush timers, reconnects, and the alignment bookkeeping that
tells the agent what the caller heard. Every message shape is in
``protocol.py``.

Design choices (see ``docs/providers/elevenlabs.md``):

* ``multi-stream-input``, one context per utterance. An interruption closes
  the context (``close_context``) and the socket stays up for the next turn,
  where ``stream-input`` would have to drop the socket (it has no cancel)
  and pay a new handshake. Late audio of a closed context is recognised by
  its ``contextId`` and dropped.
* Utterances of one epoch are spoken one after another: the next context
  opens once the previous one is final, so their audio never interleaves.
  Generation runs faster than real time, so the wait hides behind playout.
* Each aggregator piece is sent with ``flush: true``: the aggregator already
  decided it is worth speaking, and waiting for the service's 120-character
  chunk schedule would add latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from ...agent.context import PlayedSpeech
from ...errors import ProviderConnectionError, ProviderError, ProviderProtocolError, UsageError
from ...events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    BotTextPlayed,
    Event,
    Metric,
    TurnEnded,
)
from ...formats import AudioFormat, pts_ns
from ...frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from ...node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ...nodes._params import typed
from ...registry import register
from ...speech.text_aggregator import TextAggregator
from .._backoff import Backoff
from .._secrets import ApiKey, api_key_field, resolve_api_key
from .protocol import (
    DEFAULT_BASE_URL,
    MAX_CONTEXTS,
    AudioChunk,
    CloseKind,
    ContextFinal,
    ContextState,
    ElevenLabsClient,
    ServerError,
    ServerEvent,
    SpokenText,
    audio_format,
    build_url,
    classify_close,
    handshake_headers,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["TtsElevenLabs"]

API_KEY_ENV = "ELEVENLABS_API_KEY"
OutputFormat = Literal[
    "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_32000", "pcm_44100", "pcm_48000",
    "ulaw_8000", "alaw_8000",
]  # fmt: skip
_MAX_MESSAGE = 16 * 1024 * 1024
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(eq=False)
class _Utterance:
    """Text of one epoch spoken through one context (a fresh one after a reconnect)."""

    epoch: int
    queued_ns: int  # when its first piece was ready: time to first audio counts from here
    context_id: str | None = None
    pieces: list[str] = field(default_factory=list)  # sent on the current context
    ended: bool = False  # close_context sent
    failed: bool = False
    retries: int = 0
    spoken_chars: int = 0  # non-space characters of alignment received on this context
    aligned: bool = False
    samples: int = 0  # emitted since its first audio (output pts)
    t0: int = -1
    carry: bytes = b""  # an odd byte of int16 audio, waiting for its other half


@dataclass(frozen=True, slots=True)
class _Send:
    utt: _Utterance
    text: str


@dataclass(frozen=True, slots=True)
class _End:
    utt: _Utterance


@dataclass(eq=False)
class _Connection:
    ws: ClientConnection
    client: ElevenLabsClient
    utterances: dict[str, _Utterance] = field(default_factory=dict)
    last_sent: float = 0.0
    error: ServerError | None = None
    closed: bool = False
    receiver: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Reply:
    """The bot's reply being spoken: its aligned text and how long it has played."""

    epoch: int
    spoken: SpokenText = field(default_factory=SpokenText)
    speech: PlayedSpeech = field(default_factory=PlayedSpeech)
    audio_ns: int = 0
    sent: bool = False  # some of its text went to the service
    playing: bool = False
    reported: bool = False


@register
class TtsElevenLabs(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts: {type: tts.elevenlabs, voice_id: 21m00Tcm4TlvDq8ikWAM, output_format: pcm_24000}
          play: {type: audio.playout}
          out: {type: file.sink, path: greeting.wav}
        edges: [agent -> tts -> play -> out]

    Speaks text with ElevenLabs over its streaming WebSocket
    (``multi-stream-input``). A drop-in for ``tts.piper``: the same ``in``
    port (``TextFrame`` ends an utterance, ``LLMTokenFrame`` streams), the
    same text aggregation (``first_clause_min_words``, ``flush_after_ms``)
    and ``out`` audio frames carrying the epoch of their text, with ``pts``
    from the sample count since the utterance's first audio. ``out`` is mono
    at the ``output_format``'s rate: int16 for ``pcm_*``, G.711 for
    ``ulaw_8000`` / ``alaw_8000`` (negotiation converts for the consumer).

    *Key.* ``api_key``, else ``$ELEVENLABS_API_KEY`` (checked at start). A
    refused key is a ``NodeError`` naming this node, the text is dropped.

    *Connection.* Opened at start (``prewarm``) and kept across turns: an
    idle socket gets a keep-alive every ``keepalive_s`` (the service closes
    it after ``inactivity_timeout_s``, 20 s by default). If it is closed
    anyway (idle close 1008, or dropped) the node reconnects when there is
    text, with exponential backoff (``reconnect_attempts``); text whose audio
    had not arrived is sent again, so nothing is lost.

    *Interruption.* Held text and queued pieces are dropped, open contexts
    are closed, and audio still arriving for them is dropped (counted in
    ``stale_chunks``): nothing of the old epoch is emitted afterwards.

    *What was heard.* The node reads the service's character alignment and
    the playout's ``BotSpeechStarted`` / ``BotSpeechStopped`` (and the barge-in
    pause): when a reply is cut off it publishes ``BotTextPlayed`` with the
    words the caller actually heard, which agent nodes use to truncate their
    history; a reply that played to its end is published too.

    *Metrics.* ``tts.elevenlabs.ttfb_ms``: from an utterance's first text
    being ready to its first audio (connecting included).
    """

    type_name: ClassVar[str] = "tts.elevenlabs"
    interruptible: ClassVar[bool] = True
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (
        TurnEnded,
        BotSpeechStarted,
        BotSpeechStopped,
        BargeInStarted,
        BargeInCancelled,
    )

    class Params(NodeParams):
        """Parameters of ``tts.elevenlabs``."""

        voice_id: str = Field("21m00Tcm4TlvDq8ikWAM", min_length=1, description="Voice ID.")
        model_id: str = Field("eleven_flash_v2_5", min_length=1, description="Model ID.")
        output_format: OutputFormat = Field("pcm_24000", description="Audio format asked for.")
        api_key: ApiKey = api_key_field(API_KEY_ENV)
        url: str = Field(DEFAULT_BASE_URL, description="Service base URL (ws:// or wss://).")
        language_code: str | None = Field(None, description="ISO 639-1 language (some models).")
        stability: float | None = Field(None, ge=0, le=1, description="Voice stability.")
        similarity_boost: float | None = Field(None, ge=0, le=1, description="Similarity boost.")
        style: float | None = Field(None, ge=0, le=1, description="Style exaggeration.")
        use_speaker_boost: bool | None = Field(None, description="Speaker boost.")
        speed: float | None = Field(None, ge=0.7, le=1.2, description="Speaking speed.")
        first_clause_min_words: int = Field(
            3, ge=1, le=100, description="Words before an utterance's first clause may be cut."
        )
        flush_after_ms: float = Field(
            200, gt=0, le=60_000, description="Speak held streamed text after this pause."
        )
        keepalive_s: float = Field(
            10, ge=0, le=170, description="Keep-alive after this much idle time (0: never)."
        )
        inactivity_timeout_s: int | None = Field(
            None, ge=5, le=180, description="Ask the service to close idle sockets after this."
        )
        connect_timeout_s: float = Field(10, gt=0, description="Opening handshake timeout.")
        reconnect_attempts: int = Field(4, ge=0, le=20, description="Retries per failure.")
        prewarm: bool = Field(True, description="Connect at start, not at the first text.")

        @field_validator("url")
        @classmethod
        def _check_url(cls, value: str) -> str:
            build_url(value, "v", model_id="m", output_format="pcm_16000")  # raises ValueError
            return value.rstrip("/")

        @model_validator(mode="after")
        def _keepalive_in_time(self) -> Self:
            timeout = self.inactivity_timeout_s or 20
            if self.keepalive_s >= timeout:
                raise ValueError(f"keepalive_s must be below the {timeout} s inactivity timeout")
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(
            TextFrame, LLMTokenFrame, doc="Text to speak: whole messages or streamed tokens."
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(
            channels=(1,),
            encodings=("pcm_s16le", "mulaw", "alaw"),
            doc="Speech, mono, in the output_format's rate and encoding.",
        )
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, TtsElevenLabs.Params)
        self._fmt = audio_format(p.output_format)
        self._url = build_url(
            p.url,
            p.voice_id,
            model_id=p.model_id,
            output_format=p.output_format,
            inactivity_timeout_s=p.inactivity_timeout_s,
            language_code=p.language_code,
        )
        names = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")
        self._voice = {n: getattr(p, n) for n in names if getattr(p, n) is not None}
        self._aggregator = TextAggregator(p.first_clause_min_words)
        self._backoff = Backoff(attempts=p.reconnect_attempts)
        self._api_key = ""
        self._epoch = ctx.epoch  # epoch of the text held and queued
        self._outbox: deque[_Send | _End] = deque()
        self._open: _Utterance | None = None  # takes the next pieces
        self._speaking: _Utterance | None = None  # has the open context (current epoch)
        self._to_close: list[str] = []
        self._conn: _Connection | None = None
        self._reply = _Reply(ctx.epoch)
        self._cut: _Reply | None = None  # interrupted, waiting for the playout's stop
        self._playout_seen = False  # something reports bot speech: heard text can be known
        self._wake: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._last_text_s = 0.0
        self._contexts = 0
        self._on_frame: dict[type[Frame], Callable[[Frame], None]] = {
            TextFrame: self._on_text,
            LLMTokenFrame: self._on_token,
        }
        self.connects = 0
        """WebSocket connections opened."""
        self.stale_chunks = 0
        """Audio chunks dropped because an interruption made them stale."""
        self.dropped_pieces = 0
        """Text pieces never spoken (interrupted before sending, or the service failed)."""
        self.protocol_errors = 0
        """Malformed messages from the service (each reported, then skipped)."""
        self.unknown_messages = 0
        """Messages of a shape the protocol does not know (ignored)."""

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """Mono at the ``output_format``'s rate and encoding."""
        return {"out": audio_format(typed(params, cls.Params).output_format)}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Resolve the key (a :class:`ConfigError` naming the node if there is none)."""
        self._api_key = resolve_api_key(self._p.api_key, API_KEY_ENV, node_id=self.id) or ""
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    async def process(self, port: str, frame: Frame) -> None:
        """Aggregate the text; complete pieces are queued for :meth:`run` to send."""
        # async (never awaits): the node needs its own task and an async on_end.
        handler = self._on_frame.get(type(frame))
        if handler is None:
            return
        if frame.epoch != self._epoch:
            if frame.epoch < self._epoch:
                return
            self._aggregator.reset()
            self._epoch = frame.epoch
        handler(frame)

    def _on_text(self, frame: Frame) -> None:
        assert isinstance(frame, TextFrame)
        self._queue(self._aggregator.push(frame.text) + self._aggregator.flush(), True)

    def _on_token(self, frame: Frame) -> None:
        assert isinstance(frame, LLMTokenFrame)
        self._last_text_s = asyncio.get_running_loop().time()
        self._queue(self._aggregator.push(frame.text), False)
        if self._aggregator.held and self._wake is not None:
            self._wake.set()  # (re)arm the flush timer

    def _queue(self, texts: list[str], end: bool) -> None:
        if self._wake is None or self._drained is None:
            raise UsageError(f"tts.elevenlabs '{self.id}': text before start()")
        for text in texts:
            utt = self._open
            if utt is None or utt.epoch != self._epoch:
                utt = self._open = _Utterance(self._epoch, self.ctx.now_ns())
            self._outbox.append(_Send(utt, text))
        if end and self._open is not None:
            self._outbox.append(_End(self._open))
            self._open = None
        if self._outbox:
            self._drained.clear()
        self._wake.set()

    async def on_end(self) -> None:
        """Speak what is held, then wait until every utterance's audio has arrived."""
        if self._drained is None:
            return
        self._queue(self._aggregator.flush(), True)
        await self._drained.wait()

    async def stop(self) -> None:
        """Close the socket (``close_socket``, then the close handshake)."""
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        conn.closed = True
        if conn.receiver is not None:
            conn.receiver.cancel()
            await asyncio.wait([conn.receiver], timeout=1)
        with contextlib.suppress(Exception):
            conn.client.close_socket()
            await self._send(conn)
            async with asyncio.timeout(2):
                await conn.ws.close()

    # -- sending -----------------------------------------------------------------------

    async def run(self) -> None:
        """Send queued text (connecting when needed), close stale contexts, keep alive."""
        if self._p.prewarm:
            try:
                await self._connect()
            except ProviderError as exc:
                self.ctx.report("connect", exc)
        while True:
            cmd = await self._next_command()
            utt = cmd.utt
            try:
                await self._deliver(cmd)
            except ProviderError as exc:  # raised only while connecting: cmd was not sent
                self.dropped_pieces += isinstance(cmd, _Send)
                self._fail(utt, exc)
            except Exception as exc:  # a bug here must not stop the node speaking later turns
                self.ctx.report("send", exc)
                self._fail(utt, ProviderError(f"{self._where()}: {exc!r}"), report=False)

    async def _next_command(self) -> _Send | _End:
        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        while True:
            wake.clear()
            if self._to_close:
                await self._close_stale()
                continue
            if self._outbox:
                head = self._outbox[0]
                if head.utt.failed or head.utt.epoch < self.ctx.epoch:
                    self._outbox.popleft()
                    self.dropped_pieces += isinstance(head, _Send)
                    continue
                if not self._blocked(head):
                    return self._outbox.popleft()
            self._check_drained()
            now = loop.time()
            wait: float | None = None
            if self._aggregator.held.strip():
                due = self._last_text_s + self._p.flush_after_ms / 1000 - now
                if due <= 0:
                    self._queue(self._aggregator.flush(), True)
                    continue
                wait = due
            conn = self._conn
            if conn is not None and self._p.keepalive_s > 0:
                due = conn.last_sent + self._p.keepalive_s - now
                if due <= 0:
                    self._keep_alive(conn)
                    await self._send(conn)
                    continue
                wait = due if wait is None else min(wait, due)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    def _blocked(self, cmd: _Send | _End) -> bool:
        """A new utterance waits for the previous one's context to be final."""
        if not isinstance(cmd, _Send) or cmd.utt.context_id is not None:
            return False
        if self._speaking is not None and self._speaking is not cmd.utt:
            return True
        conn = self._conn
        return conn is not None and len(conn.client.active_contexts) >= MAX_CONTEXTS

    async def _deliver(self, cmd: _Send | _End) -> None:
        utt = cmd.utt
        if isinstance(cmd, _End) and utt.context_id is None:
            return  # nothing of it was sent (or everything is being sent again)
        conn = await self._connect()
        if utt.failed or utt.epoch < self.ctx.epoch:
            self.dropped_pieces += isinstance(cmd, _Send)
            return
        client = conn.client
        cid = utt.context_id
        if isinstance(cmd, _Send):
            if cid is None or client.state(cid) is not ContextState.OPEN:
                self._contexts += 1
                cid = utt.context_id = f"{self.id}-{self._contexts}"
                client.open_context(cid)
                conn.utterances[cid] = utt
                self._speaking = utt
            utt.pieces.append(cmd.text)
            client.send_text(cid, cmd.text, flush=True)
            self._reply_of(utt.epoch).sent = True
        else:
            utt.ended = True
            if cid is not None and client.state(cid) is ContextState.OPEN:
                client.close_context(cid)
        await self._send(conn)

    async def _send(self, conn: _Connection) -> None:
        """Send what the client has queued; a broken socket is left to the receiver."""
        from websockets.exceptions import ConnectionClosed

        conn.last_sent = asyncio.get_running_loop().time()
        for message in conn.client.data_to_send():
            try:
                await conn.ws.send(message)
            except ConnectionClosed:
                return  # the receiver sees the close and sends the text again

    def _keep_alive(self, conn: _Connection) -> None:
        # Name the open context (the service times contexts out too), never one whose
        # initialisation has not been sent: that would open it without voice settings.
        speaking = self._speaking
        cid = speaking.context_id if speaking is not None else None
        if cid is not None and conn.client.state(cid) is ContextState.OPEN:
            conn.client.keep_alive(cid)
        else:
            conn.client.keep_alive()

    async def _close_stale(self) -> None:
        ids, self._to_close = self._to_close, []
        conn = self._conn
        if conn is None or conn.closed:
            return
        for cid in ids:
            if conn.client.state(cid) is ContextState.OPEN:
                conn.client.close_context(cid)
        await self._send(conn)

    # -- the connection ----------------------------------------------------------------

    async def _connect(self) -> _Connection:
        """The open connection, or a new one (retrying with backoff)."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        backoff = self._backoff
        while True:
            try:
                ws = await connect(
                    self._url,
                    additional_headers=handshake_headers(self._api_key),
                    open_timeout=self._p.connect_timeout_s,
                    max_size=_MAX_MESSAGE,
                    proxy=None if any(h in self._url for h in _LOOPBACK) else True,
                )
                break
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = exc.response.body.decode("utf-8", "replace")[:200]
                if status in (401, 403):
                    raise self._auth_error(f"HTTP {status} {body}") from exc
                if 400 <= status < 500 and status != 429:
                    raise ProviderError(
                        f"{self._where()}: {self._url} refused the connection: HTTP {status} {body}"
                    ) from exc
                failure: Exception = exc
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                failure = exc
            delay = backoff.next_delay()
            if delay is None:
                attempts = backoff.failures + 1
                backoff.reset()  # the next utterance gets its own retries
                raise ProviderConnectionError(
                    f"{self._where()}: cannot connect to {self._url} after "
                    f"{attempts} attempts: {failure or type(failure).__name__}"
                )
            await asyncio.sleep(delay)
        backoff.reset()
        self.connects += 1
        client = ElevenLabsClient(voice_settings=self._voice)
        conn = self._conn = _Connection(ws, client, last_sent=asyncio.get_running_loop().time())
        conn.receiver = asyncio.create_task(self._receive(conn))
        return conn

    async def _receive(self, conn: _Connection) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for data in conn.ws:
                unknown = conn.client.unknown_messages
                try:
                    conn.client.receive_message(data)
                except ProviderProtocolError as exc:
                    self.protocol_errors += 1
                    self.ctx.report("receive", ProviderProtocolError(f"{self._where()}: {exc}"))
                    continue
                self.unknown_messages += conn.client.unknown_messages - unknown
                for event in conn.client.events_received():
                    self._on_server_event(conn, event)
                await self.ctx.drain()
        self._closed(conn, conn.ws.close_code, conn.ws.close_reason or "")

    def _on_server_event(self, conn: _Connection, event: ServerEvent) -> None:
        if isinstance(event, ServerError):
            if event.is_auth:
                conn.error = event  # the close that follows fails the utterances
            elif classify_close(1008, str(event)) is not CloseKind.IDLE_TIMEOUT:
                self.ctx.report("receive", ProviderError(f"{self._where()}: service error {event}"))
            return
        utt = conn.utterances.get(event.context_id or "")
        if utt is None:
            return
        if isinstance(event, ContextFinal):
            del conn.utterances[event.context_id or ""]
            if utt is self._speaking:
                self._speaking = None
            if not utt.ended:
                utt.context_id = None  # the service ended it: later pieces open a new one
            self._wake_up()
        elif utt.epoch < self.ctx.epoch:
            self.stale_chunks += 1
        else:
            self._emit(utt, event)

    def _closed(self, conn: _Connection, code: int | None, reason: str) -> None:
        """The socket closed: fail or re-send the utterances it was speaking."""
        if conn.closed:
            return
        conn.closed = True
        if self._conn is conn:
            self._conn = None
        kind = classify_close(code, reason)
        if conn.error is not None and conn.error.is_auth:
            kind = CloseKind.AUTH
        live = [u for u in conn.utterances.values() if u.epoch >= self.ctx.epoch]
        if any(u is self._speaking for u in conn.utterances.values()):
            self._speaking = None
        conn.utterances.clear()
        if kind is CloseKind.AUTH:
            error = self._auth_error(str(conn.error) if conn.error else f"{code} {reason}")
            self.ctx.report("connect", error)
            for utt in live:
                self._fail(utt, error, report=False)
        elif kind is CloseKind.POLICY:
            error = ProviderError(
                f"{self._where()}: the service closed the socket: {code} {reason}"
            )
            self.ctx.report("receive", error)
            self._resend(live)
        else:
            self._resend(live)
        self._wake_up()

    def _resend(self, utts: list[_Utterance]) -> None:
        """Queue again, at the front, the pieces whose audio had not fully arrived."""
        commands: list[_Send | _End] = []
        for utt in utts:
            utt.retries += 1
            if utt.retries > self._p.reconnect_attempts:
                error = ProviderConnectionError(
                    f"{self._where()}: gave up after the socket closed {utt.retries} times"
                )
                self._fail(utt, error)
                continue
            spoken, rest = utt.spoken_chars, list[str]()
            for piece in utt.pieces:
                size = sum(not c.isspace() for c in piece)
                if rest or spoken < size:
                    rest.append(piece)
                spoken -= size
            utt.context_id, utt.pieces, utt.spoken_chars, utt.aligned = None, [], 0, False
            commands += [_Send(utt, piece) for piece in rest]
            if utt.ended and rest:
                commands.append(_End(utt))
            utt.ended = False
        self._outbox.extendleft(reversed(commands))

    def _fail(self, utt: _Utterance, error: ProviderError, *, report: bool = True) -> None:
        """Give up on an utterance: report, drop its queued text, let the node drain."""
        if report:
            self.ctx.report("connect", error)
        utt.failed = True
        if self._speaking is utt:
            self._speaking = None
        if self._open is utt:
            self._open = None
        dropped = [c for c in self._outbox if c.utt is utt]
        self.dropped_pieces += sum(isinstance(c, _Send) for c in dropped) + len(utt.pieces)
        for cmd in dropped:
            self._outbox.remove(cmd)
        self._wake_up()

    def _auth_error(self, detail: str) -> ProviderError:
        return ProviderError(
            f"{self._where()}: ElevenLabs refused the API key ({detail.strip()}): set the "
            f"api_key param or ${API_KEY_ENV}"
        )

    def _where(self) -> str:
        return f"tts.elevenlabs '{self.id}'"

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()
        self._check_drained()

    def _check_drained(self) -> None:
        drained = self._drained
        if drained is None:
            return
        busy = self._outbox or self._speaking is not None or self._aggregator.held.strip()
        if busy:
            drained.clear()
        else:
            drained.set()

    # -- audio out ---------------------------------------------------------------------

    def _emit(self, utt: _Utterance, chunk: AudioChunk) -> None:
        fmt = self._fmt
        data = utt.carry + chunk.audio if utt.carry else chunk.audio
        whole = len(data) - len(data) % fmt.frame_bytes
        data, utt.carry = data[:whole], data[whole:]
        now = self.ctx.now_ns()
        if utt.t0 < 0:
            utt.t0 = now
            ttfb = (now - utt.queued_ns) / 1e6
            self.ctx.publish(Metric(metric="tts.elevenlabs.ttfb_ms", value=ttfb, unit="ms"))
        reply = self._reply_of(utt.epoch)
        if chunk.alignment is not None:
            reply.spoken.add(chunk.alignment, reply.audio_ns / 1e6, separate=not utt.aligned)
            utt.aligned = True
            utt.spoken_chars += sum(not c.isspace() for c in chunk.alignment.chars)
        if not data:
            return
        frame = AudioFrame(data, fmt, pts=pts_ns(utt.samples, fmt.rate, utt.t0), epoch=utt.epoch)
        utt.samples += len(data) // fmt.frame_bytes
        reply.audio_ns += frame.duration_ns
        self.emit("out", frame)

    # -- what the caller heard ---------------------------------------------------------

    def _reply_of(self, epoch: int) -> _Reply:
        if self._reply.epoch != epoch:
            self._reply = _Reply(epoch)
        return self._reply

    def on_interrupt(self, epoch: int) -> None:
        """Drop held and queued text, close the open contexts, publish what was heard."""
        self._aggregator.reset()
        self.dropped_pieces += sum(isinstance(c, _Send) for c in self._outbox)
        self._outbox.clear()
        self._open = None
        self._epoch = max(self._epoch, epoch)
        conn = self._conn
        if conn is not None:
            self._to_close += [c for c, u in conn.utterances.items() if u.epoch < epoch]
        if self._speaking is not None and self._speaking.epoch < epoch:
            self._speaking = None
        old, self._reply = self._reply, _Reply(epoch)
        if (old.spoken or old.sent) and not old.reported:
            if old.playing:
                self._cut = old  # the playout's BotSpeechStopped tells how much was heard
            elif self._playout_seen:  # (with no playout at all, nobody knows what was heard)
                self._publish_heard(old, interrupted=True)
        self._wake_up()

    def on_event(self, event: Event) -> None:
        """Playout and turn events: track how much of the reply has been heard."""
        kind = type(event)
        reply = self._reply
        if kind is TurnEnded:
            if self._idle():
                self._reply = _Reply(self.ctx.epoch)
        elif kind is BotSpeechStarted:
            self._playout_seen = True
            if self._cut is not None:  # a new reply plays before the cut one was reported
                self._publish_heard(self._cut, interrupted=True)
            reply.playing = True
            reply.speech.started(event.pts)
        elif kind is BargeInStarted:
            (self._cut or reply).speech.paused(event.pts)
        elif kind is BargeInCancelled:
            reply.speech.resumed(event.pts)
        elif kind is BotSpeechStopped:
            assert isinstance(event, BotSpeechStopped)
            target = self._cut or reply
            target.playing = False
            target.speech.stopped(event.pts)
            if event.interrupted:
                if (target.spoken or target.sent) and not target.reported:
                    self._publish_heard(target, interrupted=True)
            elif target is reply and reply.spoken and self._idle():
                self._publish_heard(reply, interrupted=False)
                self._reply = _Reply(self.ctx.epoch)

    def _idle(self) -> bool:
        held = self._aggregator.held.strip()
        return not (self._outbox or self._speaking or self._open or held)

    def _publish_heard(self, reply: _Reply, *, interrupted: bool) -> None:
        if reply is self._cut:
            self._cut = None
        reply.reported = True
        spoken = reply.spoken
        text = spoken.text_until(reply.speech.heard_ns / 1e6) if interrupted else spoken.text
        self.ctx.publish(BotTextPlayed(text=text, epoch=reply.epoch, interrupted=interrupted))
