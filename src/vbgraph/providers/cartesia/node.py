"""The ``tts.cartesia`` node: the asyncio shell around :mod:`.protocol` and :mod:`.utterances`.

It owns the WebSocket (websockets' asyncio client, imported when the node
starts), the text aggregation, the timers and reconnects; message shapes and
context rules are in ``protocol.py``, which text goes to which context and
which audio comes out when in ``utterances.py``.

One socket per session, opened in ``start`` (so a bad key fails the session
at once) and reopened with :class:`~vbgraph.providers._backoff.Backoff`
whenever it closes. Two tasks use it: ``run`` sends (pending text, cancels)
and runs the pause-flush timer; a reader task it spawns parses and emits.
What was heard is measured with :class:`~vbgraph.agent.context.PlayedSpeech`
over the playout's bus events and mapped onto the word timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from ...agent.context import PlayedSpeech
from ...errors import ConfigError, ProviderConnectionError, ProviderError, UsageError
from ...events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    BotTextPlayed,
    Event,
    Metric,
)
from ...formats import AudioFormat
from ...frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from ...node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ...registry import register
from ...speech.text_aggregator import TextAggregator
from .._backoff import Backoff
from .._secrets import ApiKey, api_key_field, resolve_api_key
from .protocol import (
    CARTESIA_VERSION,
    DEFAULT_URL,
    TtsConnection,
    TtsSettings,
    handshake_headers,
)
from .utterances import CartesiaStatistics, Utterances

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["TtsCartesia"]

API_KEY_ENV = "CARTESIA_API_KEY"
DEFAULT_VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
"""The voice of Cartesia's own quickstart examples."""
_MAX_MESSAGE = 16 * 1024 * 1024
_CLOSE_TIMEOUT_S = 2.0


@register
class TtsCartesia(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts: {type: tts.cartesia, voice: f786b574-daa5-4673-aa0c-cbe3e8534c02}
          play: {type: audio.playout}
          out: {type: file.sink, path: greeting.wav}
        edges: [agent -> tts -> play -> out]

    Speaks text with Cartesia Sonic over its streaming WebSocket API; a
    drop-in for ``tts.piper`` (same ports, frame kinds and interruption
    behaviour). Needs a Cartesia API key: ``api_key`` or ``$CARTESIA_API_KEY``.

    Input: ``TextFrame`` (a whole message: spoken completely, and it ends the
    utterance) and ``LLMTokenFrame`` (streamed text), cut into clauses by
    :class:`~vbgraph.speech.text_aggregator.TextAggregator` exactly as
    ``tts.piper`` does (first clause early, then sentences; held text is
    spoken after ``flush_after_ms`` without new text). Each clause goes to
    the service as soon as it is complete, all of an utterance in one
    context (``continue: true``), so prosody flows across clauses.

    Output: mono audio in ``encoding`` at ``sample_rate`` (24 kHz int16 by
    default; ``pcm_mulaw``/``pcm_alaw`` at 8000 Hz for telephony), emitted as
    the chunks arrive, ``pts`` from the sample count of the utterance.
    Metric ``tts.cartesia.ttfb_ms``: first text sent to first audio, per
    utterance.

    One WebSocket per session, opened at start and kept open; it is reopened
    with exponential backoff when it closes (``reconnect_attempts``). A bad
    key fails the session at start, naming this node. A connection lost
    mid-utterance is reported (``NodeError``, phase ``connection``); text
    that follows goes out on the new connection.

    Interruptible: an interruption drops held text and cancels the live
    context (``cancel: true``); audio of it still arriving is dropped and
    counted (``statistics().stale_messages``).

    What was heard: with ``add_timestamps`` (default) the node maps the word
    timestamps onto how long the playout actually played the reply
    (``BotSpeechStarted``/``Stopped``, barge-in pauses excluded) and
    publishes ``BotTextPlayed``: ``interrupted=True`` with the words heard
    when a barge-in cut the reply (agent nodes truncate their context to
    it), ``interrupted=False`` when it played to its end.
    """

    type_name: ClassVar[str] = "tts.cartesia"
    interruptible: ClassVar[bool] = True
    subscribes: ClassVar[tuple[type[Event], ...]] = (
        BotSpeechStarted,
        BotSpeechStopped,
        BargeInStarted,
        BargeInCancelled,
    )

    class Params(NodeParams):
        """Parameters of ``tts.cartesia``."""

        voice: str = Field(DEFAULT_VOICE, min_length=1, description="Cartesia voice id.")
        model_id: str = Field("sonic-3", min_length=1, description="Sonic model.")
        language: str | None = Field("en", description="Language code of the text.")
        sample_rate: Literal[8000, 16000, 22050, 24000, 44100, 48000] = Field(
            24000, description="Output rate in Hz."
        )
        encoding: Literal["pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"] = Field(
            "pcm_s16le", description="Output encoding (raw)."
        )
        speed: float | None = Field(None, ge=0.6, le=1.5, description="Speaking speed.")
        volume: float | None = Field(None, ge=0.5, le=2.0, description="Loudness.")
        add_timestamps: bool = Field(
            True, description="Ask for word timestamps (to publish what was heard)."
        )
        max_buffer_delay_ms: int | None = Field(
            0,
            ge=0,
            le=5000,
            description="Server-side wait for more text; 0 since the node sends whole "
            "clauses (None: the service default, 3000).",
        )
        first_clause_min_words: int = Field(
            3, ge=1, le=100, description="As tts.piper: words before the first clause may end."
        )
        flush_after_ms: float = Field(
            200,
            gt=0,
            le=60_000,
            allow_inf_nan=False,
            description="Held streamed text is spoken after this long without new text.",
        )
        url: str = Field(DEFAULT_URL, description="WebSocket endpoint (ws:// or wss://).")
        cartesia_version: str = Field(
            CARTESIA_VERSION, pattern=r"^\d{4}-\d{2}-\d{2}$", description="API version."
        )
        api_key: ApiKey = api_key_field(API_KEY_ENV)
        timeout_s: float = Field(
            10.0, gt=0, description="Connect timeout; longest silence while speaking."
        )
        reconnect_attempts: int = Field(
            5, ge=0, le=100, description="Retries of a failed connection before giving up."
        )

        @field_validator("url")
        @classmethod
        def _check_url(cls, value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in ("ws", "wss") or not parts.hostname:
                raise ValueError(f"{value!r} is not a ws:// or wss:// URL")
            return value

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(
            TextFrame, LLMTokenFrame, doc="Text to speak: whole messages or streamed tokens."
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(
            channels=(1,),
            encodings=("pcm_s16le", "pcm_f32le", "mulaw", "alaw"),
            doc="Speech: mono, in the encoding and sample_rate asked for.",
        )
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._p = p = _typed(params)
        self._settings = _settings(p)
        self._where = f"tts.cartesia '{node_id}'"
        self._aggregator = TextAggregator(p.first_clause_min_words)
        self._epoch = ctx.epoch  # epoch of the text held by the aggregator
        self._utterances = Utterances(
            node_id, self._settings.fmt, self._emit_audio, self._first_audio
        )
        self._played = PlayedSpeech()
        self._proto: TtsConnection | None = None
        self._ws: ClientConnection | None = None
        self._api_key = ""
        self._backoff = Backoff(attempts=p.reconnect_attempts)
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._last_text_s = 0.0  # loop time of the last streamed text
        self._activity_s = 0.0  # loop time of the last message or new context
        self._failed = False
        self._connections = 0
        self._unknown = 0
        self._stale = 0
        self._on_frame: dict[type[Frame], Callable[[Frame], None]] = {
            TextFrame: self._on_text,
            LLMTokenFrame: self._on_token,
        }

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """Mono, ``encoding`` at ``sample_rate``: what the service is asked for."""
        return {"out": _settings(_typed(params)).fmt}

    def statistics(self) -> CartesiaStatistics:
        """The node's counters so far."""
        u, proto = self._utterances, self._proto
        return CartesiaStatistics(
            connections=self._connections,
            contexts=u.opened,
            cancelled=u.cancelled,
            lost=u.lost,
            stale_messages=u.stale + self._stale + (proto.stale_messages if proto else 0),
            unknown_messages=self._unknown + (proto.unknown_messages if proto else 0),
            dropped_pieces=u.dropped,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Read the key and open the socket (a refused key or no service fails here)."""
        key = resolve_api_key(self._p.api_key, API_KEY_ENV, node_id=self.id)
        self._api_key = key or ""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._ws = await self._connect_retrying()

    async def process(self, port: str, frame: Frame) -> None:
        """Add the text to the aggregator; complete clauses go to the socket at once."""
        # async although it never awaits: the node needs its own task and an async on_end.
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
        agg = self._aggregator
        self._queue(agg.push(frame.text) + agg.flush(), frame.epoch, end=True)

    def _on_token(self, frame: Frame) -> None:
        assert isinstance(frame, LLMTokenFrame)
        self._last_text_s = asyncio.get_running_loop().time()
        self._queue(self._aggregator.push(frame.text), frame.epoch, end=False)
        if self._aggregator.held and self._wake is not None:
            self._wake.set()  # (re)arm the pause-flush timer in run()

    def _queue(self, texts: list[str], epoch: int, end: bool) -> None:
        if self._wake is None:
            raise UsageError(f"{self._where}: text before start()")
        if self._failed:
            self._utterances.dropped += len(texts)
            return
        self._utterances.queue(texts, epoch, end)
        self._check_idle()
        self._wake.set()

    def on_interrupt(self, epoch: int) -> None:
        """Drop held text and pending pieces; cancel the contexts of older epochs."""
        self._aggregator.reset()
        self._epoch = max(self._epoch, epoch)
        self._utterances.interrupt(epoch, self._proto)
        if self._wake is not None:
            self._wake.set()  # the cancel goes out now
        self._check_idle()

    async def on_end(self) -> None:
        """Speak what is held, then wait until every context has finished."""
        if self._idle is None:
            return
        self._queue(self._aggregator.flush(), self._epoch, end=True)
        await self._idle.wait()

    async def stop(self) -> None:
        """Close the socket."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(OSError):
                await ws.close()

    def _check_idle(self) -> None:
        if self._idle is not None:
            if self._utterances.idle:
                self._idle.set()
            else:
                self._idle.clear()

    def _emit_audio(self, frame: AudioFrame) -> None:
        self.emit("out", frame)

    def _first_audio(self, ttfb_ms: float) -> None:
        self.ctx.publish(Metric(metric="tts.cartesia.ttfb_ms", value=ttfb_ms, unit="ms"))

    # -- what was heard ------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Playout and barge-in events: how long the reply played; publish what was heard."""
        kind, played = type(event), self._played
        if kind is BotSpeechStarted:
            played.started(event.pts)
        elif kind is BargeInStarted:
            played.paused(event.pts)
        elif kind is BargeInCancelled:
            played.resumed(event.pts)
        elif kind is BotSpeechStopped:
            assert isinstance(event, BotSpeechStopped)
            played.stopped(event.pts)
            reply = self._utterances.reply
            if not event.interrupted:
                reply = self._utterances.played_out()
            elif reply is not None and not reply.finished:
                reply.finished = True
            else:
                return
            if reply is not None and reply.timed:
                text = reply.heard(played.heard_ns)
                self.ctx.publish(
                    BotTextPlayed(text=text, epoch=reply.epoch, interrupted=event.interrupted)
                )

    # -- the connection --------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the socket open and serve it; reconnect when it closes."""
        wake = self._wake
        assert wake is not None
        while not self._failed:
            ws = self._ws
            if ws is None:
                try:
                    ws = self._ws = await self._connect_retrying()
                except ProviderConnectionError as exc:
                    self._give_up(exc)
                    wake.clear()
                    await wake.wait()  # try again when there is something to say
                    continue
                except (ProviderError, ConfigError) as exc:  # refused: retrying cannot help
                    self._failed = True
                    self._give_up(exc)
                    return
            problem: ProviderError | None = None
            try:
                await self._serve(ws)
            except ProviderError as exc:
                problem = exc
            self._lost(problem)
            with contextlib.suppress(OSError):
                await ws.close()  # if cancelled here, stop() closes it
            self._ws = None

    async def _connect(self) -> ClientConnection:
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import InvalidHandshake, InvalidStatus
        except ImportError as exc:
            raise ConfigError(
                "needs the websockets package (pip install websockets)", node_id=self.id
            ) from exc
        p = self._p
        try:
            async with asyncio.timeout(p.timeout_s):
                ws = await connect(
                    p.url,
                    additional_headers=handshake_headers(self._api_key, p.cartesia_version),
                    open_timeout=None,
                    close_timeout=_CLOSE_TIMEOUT_S,
                    max_size=_MAX_MESSAGE,
                    user_agent_header="vbgraph",
                )
        except InvalidStatus as exc:
            raise self._refused(exc.response.status_code, exc.response.body) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ProviderConnectionError(
                f"{self._where}: cannot connect to {p.url}: {exc or type(exc).__name__}"
            ) from exc
        self._proto = TtsConnection(self._settings)
        self._connections += 1
        return ws

    def _refused(self, status: int, body: bytes | bytearray | None) -> ProviderError:
        text = bytes(body or b"").decode("utf-8", "replace").strip()[:200]
        said = f" ({text})" if text else ""
        url = self._p.url
        if status in (401, 403):
            return ProviderError(
                f"{self._where}: {url} refused the API key (HTTP {status}){said}; set the "
                f"api_key param or ${API_KEY_ENV}"
            )
        if 400 <= status < 500 and status not in (408, 429):
            return ProviderError(
                f"{self._where}: {url} refused the connection (HTTP {status}){said}; check "
                f"url and cartesia_version ({self._p.cartesia_version})"
            )
        return ProviderConnectionError(f"{self._where}: {url} answered HTTP {status}{said}")

    async def _connect_retrying(self) -> ClientConnection:
        """Connect, retrying with backoff; a refusal (bad key) raises at once."""
        while True:
            try:
                ws = await self._connect()
            except ProviderConnectionError as exc:
                delay = self._backoff.next_delay()
                if delay is None:
                    self._backoff.reset()
                    raise ProviderConnectionError(
                        f"{exc} (gave up after {self._p.reconnect_attempts} retries)"
                    ) from exc
                await asyncio.sleep(delay)
                continue
            self._backoff.reset()
            return ws

    async def _serve(self, ws: ClientConnection) -> None:
        """Send pending text until the reader ends; raises ProviderError if it broke."""
        wake, proto = self._wake, self._proto
        assert wake is not None and proto is not None
        reader = asyncio.create_task(self._read(ws, proto), name=f"{self.id}:read")
        reader.add_done_callback(_retrieve)
        reader.add_done_callback(lambda _: wake.set())
        try:
            while not reader.done():
                await self._send_pending(ws, proto)
                wake.clear()
                wait = self._flush_wait()
                if not self._utterances.has_text and not reader.done():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await wake.wait()
            await reader
        except ProviderError:
            raise
        except OSError as exc:
            raise ProviderConnectionError(f"{self._where}: connection broke: {exc}") from exc
        finally:
            reader.cancel()

    async def _send_pending(self, ws: ClientConnection, proto: TtsConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        utterances = self._utterances
        while True:
            reply = utterances.reply
            if utterances.send(proto, self.ctx.epoch, self.ctx.now_ns()):
                self._activity_s = asyncio.get_running_loop().time()
            if utterances.reply is not reply:
                self._played.reset()  # a new reply: nothing of it has played yet
            self._check_idle()
            out = proto.data_to_send()
            if not out:
                return
            try:
                for message in out:
                    await ws.send(message)
            except ConnectionClosed:
                return  # the reader sees the close and says why

    def _flush_wait(self) -> float | None:
        """Seconds until held streamed text is due (queued now if it is), or None."""
        if not self._aggregator.held.strip():
            return None
        loop = asyncio.get_running_loop()
        wait = self._last_text_s + self._p.flush_after_ms / 1000 - loop.time()
        if wait <= 0:
            self._queue(self._aggregator.flush(), self._epoch, end=True)
            return None
        return wait

    async def _read(self, ws: ClientConnection, proto: TtsConnection) -> None:
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

        timeout = self._p.timeout_s
        loop = asyncio.get_running_loop()
        utterances = self._utterances
        while True:
            try:
                async with asyncio.timeout(timeout):
                    message = await ws.recv()  # cancellation-safe (websockets docs)
            except TimeoutError:
                # Silence is fine between turns; while speaking it means a stalled service.
                if utterances.speaking and loop.time() - self._activity_s >= timeout:
                    raise ProviderConnectionError(
                        f"{self._where}: {self._p.url} sent nothing for {timeout} s while speaking"
                    ) from None
                continue
            except ConnectionClosedOK:
                return
            except ConnectionClosed as exc:
                raise ProviderConnectionError(f"{self._where}: connection lost: {exc}") from exc
            self._activity_s = loop.time()
            proto.receive_message(message)
            for event in proto.events_received():
                error = utterances.receive(event, self.ctx.now_ns())
                if error is not None:
                    phase = "connection" if error.context_id is None else "synthesize"
                    self.ctx.report(phase, ProviderError(f"{self._where}: {self._p.url}: {error}"))
            self._check_idle()
            await self.ctx.drain()

    def _lost(self, problem: ProviderError | None) -> None:
        """The socket closed: contexts already speaking are cut short (reported); those
        with no audio yet are replayed on the next socket (nothing of them was heard, so
        a close racing a new turn, such as the service's idle timeout, loses nothing)."""
        cut = self._utterances.connection_lost()
        if cut:
            why = f": {problem}" if problem is not None else " (closed by the server)"
            self.ctx.report(
                "connection",
                ProviderConnectionError(
                    f"{self._where}: {cut} utterance(s) cut short, reconnecting{why}"
                ),
            )
        elif problem is not None and not isinstance(problem, ProviderConnectionError):
            self.ctx.report("connection", problem)  # a protocol error, even between turns
        proto, self._proto = self._proto, None
        if proto is not None:
            self._stale += proto.stale_messages
            self._unknown += proto.unknown_messages
        self._check_idle()

    def _give_up(self, exc: Exception) -> None:
        """No connection: report, and drop the text waiting for one (counted)."""
        dropped = self._utterances.discard_text()
        if dropped:
            exc = ProviderConnectionError(f"{exc} ({dropped} piece(s) of text not spoken)")
        self.ctx.report("connect", exc)
        self._check_idle()


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a reader's exception as seen (it is re-raised by ``await`` when it matters)."""
    if not task.cancelled():
        task.exception()


def _typed(params: NodeParams) -> TtsCartesia.Params:
    assert isinstance(params, TtsCartesia.Params)
    return params


def _settings(p: TtsCartesia.Params) -> TtsSettings:
    return TtsSettings(
        model_id=p.model_id,
        voice_id=p.voice,
        encoding=p.encoding,
        sample_rate=p.sample_rate,
        language=p.language,
        add_timestamps=p.add_timestamps,
        max_buffer_delay_ms=p.max_buffer_delay_ms,
        speed=p.speed,
        volume=p.volume,
    )
