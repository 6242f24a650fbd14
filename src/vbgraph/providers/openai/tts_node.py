"""The ``tts.openai`` node: the asyncio shell around :mod:`.audio_protocol` for speech.

Theory of operation
-------------------
The node is ``tts.piper`` with the voice replaced by HTTP requests: text in
(whole messages or streamed LLM tokens) is cut into pieces by the same
:class:`~vbgraph.speech.text_aggregator.TextAggregator` (an early first
clause, then whole sentences), and each piece is one ``POST /audio/speech``
asking for ``pcm``: the body streams back as raw 24 kHz samples, which go out
as ``AudioFrame`` values the moment they arrive.

``process`` only queues pieces; the background task ``run`` sends them one
after another, each in its own task, so that ``on_interrupt`` (synchronous)
can cancel the one in flight. Cancelling it closes its connection (the
``finally`` of ``_HttpEndpoint.post`` in ``stt_node``), and each frame is
checked against the session epoch before it goes out, so no audio of an
interrupted turn is emitted afterwards. Cancellation is not an error:
nothing is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from ...errors import ProviderProtocolError
from ...events import Metric
from ...formats import AudioFormat, Encoding, pts_ns
from ...frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from ...node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ...registry import register
from ...speech.text_aggregator import TextAggregator
from .._secrets import ApiKey, api_key_field
from .audio_protocol import (
    SPEECH_RATE,
    ApiError,
    SpeechAudio,
    SpeechDone,
    SpeechResponse,
    request_headers,
    speech_request,
)
from .stt_node import API_KEY_ENV, _check_url, _HttpEndpoint, _provider_error, _resolve_key

__all__ = ["OpenAITTS"]

FORMAT = AudioFormat(SPEECH_RATE, 1, Encoding.PCM_S16LE)


@dataclass(frozen=True, slots=True)
class _Piece:
    """Text to speak, the epoch it belongs to, and whether it starts an utterance."""

    text: str
    epoch: int
    starts_utterance: bool


@register
class OpenAITTS(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts: {type: tts.openai, model: gpt-4o-mini-tts, voice: coral}
          play: {type: audio.playout}
          out: {type: file.sink, path: greeting.wav}
        edges: [agent -> tts -> play -> out]

    Speaks text with OpenAI's speech endpoint (``POST /audio/speech``), or any
    server that speaks it (``base_url``). A drop-in for ``tts.piper``: the
    same input (``TextFrame`` messages, ``LLMTokenFrame`` streams), the same
    cutting into pieces (the first clause once it has
    ``first_clause_min_words`` words, then whole sentences; held streamed
    text is spoken after ``flush_after_ms`` without new text, at a
    ``TextFrame`` or at the end of input), the same output: int16 mono, here
    at 24 kHz, with ``pts`` counted in samples from the utterance's first
    audio and the epoch of the text.

    One request per piece, ``response_format: pcm``: the audio streams out
    as the server sends it, so time to first audio is the server's time to
    first byte for the first clause (``Metric("tts.openai.ttfb_ms")`` per
    request). ``model`` is ``gpt-4o-mini-tts`` (default; takes
    ``instructions`` on how to speak), ``tts-1`` or ``tts-1-hd``; ``voice``
    one of alloy, ash, ballad, coral, echo, fable, nova, onyx, sage,
    shimmer, verse (the server checks); ``speed`` 0.25 to 4.

    *Key.* ``api_key``, or ``$OPENAI_API_KEY`` when omitted; required for
    api.openai.com (a missing key fails at start), optional for other hosts.

    *Interruptible.* An interruption drops held text and queued pieces,
    closes the request in flight, and nothing of the old epoch is emitted
    afterwards. A piece whose request fails (bad key, rate limit, timeout
    after ``timeout_s`` without a byte) is reported as a ``NodeError``
    (phase ``synthesize``) saying what to do, and skipped; the node goes on.
    """

    type_name: ClassVar[str] = "tts.openai"
    interruptible: ClassVar[bool] = True

    class Params(NodeParams):
        """Parameters of ``tts.openai``."""

        model: str = Field(
            "gpt-4o-mini-tts", min_length=1, description="gpt-4o-mini-tts, tts-1 or tts-1-hd."
        )
        voice: str = Field("alloy", min_length=1, description="Voice name (alloy, coral ...).")
        base_url: str = Field("https://api.openai.com/v1", description="API base URL.")
        api_key: ApiKey = api_key_field(API_KEY_ENV)
        speed: float | None = Field(
            None, ge=0.25, le=4.0, description="Speaking speed (1: normal)."
        )
        instructions: str | None = Field(
            None, description="How to speak (tone, accent): gpt-4o-mini-tts only."
        )
        first_clause_min_words: int = Field(
            3, ge=1, le=100, description="An utterance's first piece may end at a clause mark "
            "once it has this many words (earlier first audio).",
        )  # fmt: skip
        flush_after_ms: float = Field(
            200, gt=0, le=60_000, allow_inf_nan=False,
            description="Held streamed text is spoken once no text has come for this long.",
        )  # fmt: skip
        timeout_s: float = Field(
            30.0, gt=0, description="Connect timeout, and longest wait for the next bytes."
        )

        @field_validator("base_url")
        @classmethod
        def _url(cls, value: str) -> str:
            return _check_url(value)

        @model_validator(mode="after")
        def _instructions_need_gpt4o(self) -> Self:
            if self.instructions and self.model in ("tts-1", "tts-1-hd"):
                raise ValueError(f"{self.model} takes no instructions: use gpt-4o-mini-tts")
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(
            TextFrame, LLMTokenFrame, doc="Text to speak: whole messages or streamed tokens."
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(
            channels=(1,), encodings=("pcm_s16le",), fixed=FORMAT, doc="Speech: int16 mono, 24 kHz."
        )
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, OpenAITTS.Params)
        p = self._p = params
        self._aggregator = TextAggregator(p.first_clause_min_words)
        who = f"tts.openai '{node_id}'"
        self._http = _HttpEndpoint(p.base_url, "/audio/speech", who, p.timeout_s)
        self._api_key: str | None = None
        self._pieces: deque[_Piece] = deque()
        self._epoch = ctx.epoch  # epoch of the text held and queued
        self._request: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._last_text_s = 0.0  # loop time of the last streamed text
        self._next_starts_utterance = True
        self._samples = 0  # since the utterance's first audio
        self._t0 = -1  # session time of the utterance's first audio, once there is some
        self._on_frame: dict[type[Frame], Callable[[Frame], None]] = {
            TextFrame: self._on_text,
            LLMTokenFrame: self._on_token,
        }
        self.requests = 0
        """Speech requests sent."""
        self.cancelled = 0
        """Requests closed by an interruption."""

    def start(self) -> None:
        """Find the API key (param or ``$OPENAI_API_KEY``)."""
        self._api_key = _resolve_key(self._p.api_key, self._p.base_url, self.id)

    # -- text in -----------------------------------------------------------------------

    async def process(self, port: str, frame: Frame) -> None:
        """Add the text to the aggregator; complete pieces go to the request queue."""
        # async although it never awaits: its own task (not fused into the producer's)
        # and an async on_end that waits for the requests to drain.
        handler = self._on_frame.get(type(frame))
        if handler is None:
            return
        if frame.epoch != self._epoch:
            if frame.epoch < self._epoch:
                return  # stale (the runtime drops these before they get here)
            self._aggregator.reset()  # held text of an older turn
            self._epoch = frame.epoch
        handler(frame)

    def _on_text(self, frame: Frame) -> None:
        assert isinstance(frame, TextFrame)
        self._queue(self._aggregator.push(frame.text) + self._aggregator.flush(), frame.epoch)

    def _on_token(self, frame: Frame) -> None:
        assert isinstance(frame, LLMTokenFrame)
        self._last_text_s = asyncio.get_running_loop().time()
        self._queue(self._aggregator.push(frame.text), frame.epoch)
        if self._aggregator.held:
            self._wake.set()  # (re)arm the flush timer in run()

    def _queue(self, texts: list[str], epoch: int) -> None:
        if not texts:
            return
        first = self._next_starts_utterance
        for text in texts:
            self._pieces.append(_Piece(text, epoch, first))
            first = False
        self._next_starts_utterance = self._aggregator.at_utterance_start
        self._drained.clear()
        self._wake.set()

    # -- requests ------------------------------------------------------------------------

    async def run(self) -> None:
        """Send queued pieces one after another; each request runs in its own task."""
        while True:
            piece = await self._next_piece()
            if piece.epoch < self.ctx.epoch:
                continue
            if piece.starts_utterance:
                self._samples, self._t0 = 0, -1
            task = asyncio.ensure_future(self._speak(piece))
            self._request = task
            try:
                # asyncio.wait, not await: an interruption cancels the task, which must
                # end this piece quietly rather than cancel run() itself.
                await asyncio.wait((task,))
            finally:
                self._request = None
                if not task.done():
                    task.cancel()  # run() itself was cancelled (the node is stopping)
            if not task.cancelled() and (exc := task.exception()) is not None:
                self.ctx.report(f"synthesize {piece.text[:60]!r}", exc)

    async def _next_piece(self) -> _Piece:
        """The next queued piece; while none, flush held streamed text after a pause."""
        loop = asyncio.get_running_loop()
        while not self._pieces:
            self._wake.clear()
            if self._aggregator.held.strip():
                wait = self._last_text_s + self._p.flush_after_ms / 1000 - loop.time()
                if wait <= 0:
                    self._queue(self._aggregator.flush(), self._epoch)
                    continue
                with contextlib.suppress(TimeoutError):  # the pause: flush on the next round
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                self._drained.set()
                await self._wake.wait()
        return self._pieces.popleft()

    async def _speak(self, piece: _Piece) -> None:
        """One request: its audio out as it arrives. Raises ProviderError on failure."""
        p = self._p
        body = speech_request(
            piece.text, model=p.model, voice=p.voice, speed=p.speed, instructions=p.instructions
        )
        headers = request_headers(self._api_key, "application/json", "audio/pcm")
        self.requests += 1
        sent = self.ctx.now_ns()
        first = True
        exchange = self._http.exchange(headers, body, SpeechResponse())
        async with aclosing(exchange) as events:
            async for event in events:
                if isinstance(event, SpeechAudio):
                    if piece.epoch < self.ctx.epoch:
                        return  # interrupted between two reads: not one more sample
                    now = self.ctx.now_ns()
                    if first:
                        first = False
                        ms = (now - sent) / 1e6
                        self.ctx.publish(Metric(metric="tts.openai.ttfb_ms", value=ms, unit="ms"))
                    self._emit(event.data, piece.epoch, now)
                    await self.ctx.drain()
                elif isinstance(event, SpeechDone):
                    return
                else:
                    assert isinstance(event, ApiError)
                    has_key = self._api_key is not None
                    raise _provider_error(self._http.who, p.base_url, event, has_key)
        raise ProviderProtocolError(f"{self._http.who}: the response ended without its audio")

    def _emit(self, data: bytes, epoch: int, now: int) -> None:
        if self._t0 < 0:
            self._t0 = now
        frame = AudioFrame(
            data, FORMAT, pts=pts_ns(self._samples, SPEECH_RATE, self._t0), epoch=epoch
        )
        self._samples += len(data) // 2
        self.emit("out", frame)

    # -- interruption and end ----------------------------------------------------------------

    def on_interrupt(self, epoch: int) -> None:
        """Drop held text and queued pieces; close the request in flight."""
        self._aggregator.reset()
        self._pieces.clear()
        self._next_starts_utterance = True
        self._epoch = max(self._epoch, epoch)
        request, self._request = self._request, None
        if request is not None and not request.done():
            request.cancel()
            self.cancelled += 1
        self._drained.set()

    async def on_end(self) -> None:
        """Speak what is held, then wait until every queued piece has been spoken."""
        self._queue(self._aggregator.flush(), self._epoch)
        await self._drained.wait()

    def stop(self) -> None:
        """Close the request in flight."""
        request, self._request = self._request, None
        if request is not None:
            request.cancel()
