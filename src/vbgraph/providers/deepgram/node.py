"""The ``stt.deepgram`` node: audio frames in, transcript frames out, over a :class:`.LiveStream`.

Theory of operation
-------------------
The node is the graph-facing half; the socket, timers and reconnects are in
:class:`~.stream.LiveStream`, which it holds (opened in ``start``, run as the
node's background task), and the audio in flight is in an
:class:`~.ledger.AudioLedger` they share.

* ``process`` only queues each audio frame in the ledger and wakes the stream:
  it never waits on the network, so the input keeps flowing during a
  reconnect.
* A ``UserSpeechStopped`` at ``P`` queues ``Finalize`` once the audio up to
  ``P`` is queued: the event overtakes the frames still waiting in this node's
  input queue, as in ``stt.whisper``. ``on_end`` queues ``Finalize`` and
  ``CloseStream`` and waits, at most ``close_timeout_s``, for the stream to
  finish (last results, ``Metadata``, close).
* Server events come back through :meth:`SttDeepgram._on_event` on the
  stream's receiver task: transcripts become ``TranscriptFrame`` with their
  times mapped to the session clock by the ledger.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ...errors import ProviderConnectionError, ProviderError
from ...events import Event, Metric, TranscriptReceived, UserSpeechStopped
from ...formats import AudioFormat, Encoding
from ...frames import AudioFrame, Frame, TranscriptFrame, Word
from ...node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ...nodes._params import typed
from ...registry import register
from .._secrets import ApiKey, api_key_field, resolve_api_key
from .ledger import AudioLedger
from .messages import ListenEvent, Metadata, ServerError, SpeechStarted, Transcript, UtteranceEnd
from .protocol import CLOSE_STREAM, DEFAULT_URL, ENCODINGS, FINALIZE, LiveOptions, listen_url
from .stream import LiveStream, StreamSettings

__all__ = ["SttDeepgram"]

API_KEY_ENV = "DEEPGRAM_API_KEY"
SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
_NS = 1_000_000_000


@register
class SttDeepgram(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav, realtime: true}
          vad: {type: vad.native}
          stt: {type: stt.deepgram, model: nova-3, language: en-US}
          out: {type: log}
        edges: [mic -> vad, vad -> stt, stt -> out]

    Streaming speech recognition with Deepgram's live API (``/v1/listen``,
    needs ``$DEEPGRAM_API_KEY``). Same ports, frames and events as
    ``stt.whisper``, so swapping the two is a change of ``type``.

    Input: mono audio in ``encoding`` (``pcm_s16le``, ``mulaw`` or ``alaw``)
    at ``sample_rate``, sent as it arrives in raw binary frames; negotiation
    converts anything else. Wire the VAD's ``out`` port (every frame: Deepgram's
    endpointing hears the pauses) or its ``speech`` port (less audio billed;
    ``KeepAlive`` covers the gaps).

    Output: ``TranscriptFrame`` with ``final=False`` for each interim hypothesis
    (``interim_results``) and ``final=True`` for each final segment, with words
    and times on the session clock; a long utterance may give several finals,
    which ``turn`` joins. Each final is also published as ``TranscriptReceived``,
    and each utterance's first transcript publishes
    ``Metric("stt.deepgram.ttfb_ms")``: session time from sending the last audio
    it covers to its arrival.

    End of turn: on the VAD's ``UserSpeechStopped`` (once its audio is sent)
    and at the end of the input the node sends ``Finalize``, so the final does
    not wait for Deepgram's endpointing; at the end it sends ``CloseStream``
    and waits for the last results and ``Metadata``.

    Failures: a refused key or parameters fail ``start`` with an error naming
    the node. A dropped connection is reopened with backoff
    (``reconnect_attempts``); the audio of the unfinished utterance is sent
    again (``replay_s``) and audio arriving meanwhile waits (``buffer_s``;
    overflow dropped and counted in ``ledger.overflow``), so no final is lost.
    A malformed message is reported as a ``NodeError`` and skipped.
    """

    type_name: ClassVar[str] = "stt.deepgram"

    class Params(NodeParams):
        """Parameters of ``stt.deepgram``."""

        api_key: ApiKey = api_key_field(API_KEY_ENV)
        url: str = Field(DEFAULT_URL, description="Live endpoint (ws:// or wss://).")
        model: str = Field("nova-3", min_length=1, description="Deepgram model.")
        language: str = Field("en-US", min_length=2, description="Language (or 'multi').")
        encoding: Literal["pcm_s16le", "mulaw", "alaw"] = Field(
            "pcm_s16le", description="Audio encoding sent (linear16, mulaw or alaw on the wire)."
        )
        sample_rate: int = Field(16000, description=f"Sample rate sent, one of {SAMPLE_RATES}.")
        interim_results: bool = Field(True, description="Emit interim transcripts.")
        endpointing: int | Literal[False] | None = Field(
            300,
            description="ms of silence that end an utterance; false: off; null: Deepgram's "
            "default (10 ms).",
        )
        utterance_end_ms: int | None = Field(
            None, ge=1000, description="Ask for UtteranceEnd after this gap (needs interim)."
        )
        vad_events: bool = Field(False, description="Ask for SpeechStarted messages.")
        smart_format: bool = Field(True, description="Punctuation and formatting.")
        keyterms: list[str] = Field(default_factory=list, description="Keyterm prompts.")
        extra: dict[str, str] = Field(
            default_factory=dict, description="Other documented query parameters, sent as given."
        )
        finalize_on_speech_stop: bool = Field(
            True, description="Send Finalize when the VAD reports the end of speech."
        )
        keepalive_s: float = Field(
            4.0, gt=0, le=9, description="Send KeepAlive after this long with nothing sent."
        )
        connect_timeout_s: float = Field(10.0, gt=0, description="Handshake timeout.")
        close_timeout_s: float = Field(
            5.0, gt=0, description="Longest wait at the end for the last results."
        )
        reconnect_attempts: int = Field(
            5, ge=0, description="Failed connection attempts in a row before giving up."
        )
        buffer_s: float = Field(
            10.0, gt=0, description="Audio kept while reconnecting; older audio is dropped."
        )
        replay_s: float = Field(
            30.0, gt=0, description="Unfinalized audio kept to send again after a reconnect."
        )

        @field_validator("url")
        @classmethod
        def _check_url(cls, value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in ("ws", "wss") or not parts.hostname:
                raise ValueError(f"{value!r} is not a ws:// or wss:// URL")
            return value

        @field_validator("sample_rate")
        @classmethod
        def _check_rate(cls, value: int) -> int:
            if value not in SAMPLE_RATES:
                raise ValueError(f"{value} Hz is not one of {SAMPLE_RATES}")
            return value

        @field_validator("endpointing")
        @classmethod
        def _check_endpointing(cls, value: int | bool | None) -> int | bool | None:
            if value is not None and value is not False and not 10 <= value <= 60_000:
                raise ValueError("endpointing is 10..60000 ms, false or null")
            return value

        @model_validator(mode="after")
        def _check_query(self) -> Self:
            _options(self).query()  # raises ValueError naming the inconsistency
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(
            rates=(16000,),
            channels=(1,),
            encodings=("pcm_s16le",),
            doc="The caller's audio (mono, in `encoding` at `sample_rate`).",
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(TranscriptFrame, doc="Interim and final transcripts."),
    }
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (UserSpeechStopped,)

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """The input takes exactly the configured format (negotiation converts the rest)."""
        # One format, not every format Deepgram takes: the query must name it
        # before the first frame, because the connection opens in start (a bad
        # key fails the session at once, and the first words wait for no
        # handshake). A G.711 line at 8 kHz passes through with
        # ``encoding: mulaw, sample_rate: 8000``.
        p = typed(params, cls.Params)
        port = audio_port(
            rates=(p.sample_rate,),
            channels=(1,),
            encodings=(p.encoding,),
            doc=cls.inputs["in"].doc,
        )
        return {"in": port}, cls.outputs

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, SttDeepgram.Params)
        self._where = f"stt.deepgram node '{node_id}'"
        fmt = AudioFormat(p.sample_rate, 1, Encoding(p.encoding))
        self.ledger = AudioLedger(
            p.sample_rate,
            fmt.frame_bytes,
            max_pending_ns=round(p.buffer_s * _NS),
            max_replay_ns=round(p.replay_s * _NS),
        )
        """The audio on its way (``overflow``, ``trimmed_ns``, ``replayed_ns`` counters)."""
        self.stream: LiveStream | None = None
        """The connections to Deepgram, from ``start`` on (counters: ``connections`` ...)."""
        self._language = None if p.language == "multi" else p.language
        self._pushed_end = -(2**62)
        self._finalize_due: deque[int] = deque()
        self._audio_since_finalize = False
        self._awaiting_first = True
        self._handlers: dict[type, Callable[[Any], None]] = {
            Transcript: self._on_transcript,
            SpeechStarted: self._on_speech_started,
            UtteranceEnd: self._on_utterance_end,
            Metadata: self._on_metadata,
            ServerError: self._on_server_error,
        }
        self.finalizes = 0
        """``Finalize`` messages queued (end of speech, end of input)."""
        self.interims = 0
        self.finals = 0
        self.speech_started = 0
        """``SpeechStarted`` messages (with ``vad_events``); counted only."""
        self.metadata: Metadata | None = None
        """The server's summary after ``CloseStream``."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the key and open the connection (fails the session if refused)."""
        p = self._p
        key = resolve_api_key(p.api_key, API_KEY_ENV, node_id=self.id) or ""
        settings = StreamSettings(
            url=listen_url(p.url, _options(p)),
            api_key=key,
            where=self._where,
            key_hint=f"${API_KEY_ENV}",
            keepalive_s=p.keepalive_s,
            connect_timeout_s=p.connect_timeout_s,
            reconnect_attempts=p.reconnect_attempts,
        )
        self.stream = LiveStream(
            settings,
            self.ledger,
            self.ctx.clock,
            on_event=self._on_event,
            report=self.ctx.report,
            drain=self.ctx.drain,
        )
        await self.stream.open()

    async def process(self, port: str, frame: Frame) -> None:
        """Queue the audio for the stream; a due ``Finalize`` follows it."""
        if type(frame) is not AudioFrame:
            return
        self.ledger.push_audio(frame.data, frame.pts)
        self._pushed_end = frame.pts + frame.duration_ns
        self._audio_since_finalize = True
        due = self._finalize_due
        while due and due[0] <= self._pushed_end:
            due.popleft()
            self._queue_finalize()
        self._wake()

    def on_event(self, event: Event) -> None:
        """``UserSpeechStopped``: finalize once the audio up to its pts is queued."""
        if type(event) is UserSpeechStopped and self._p.finalize_on_speech_stop:
            if event.pts <= self._pushed_end:
                self._queue_finalize()
                self._wake()
            else:
                self._finalize_due.append(event.pts)

    def on_interrupt(self, epoch: int) -> None:
        """Nothing to drop: the user's speech is not stale when the bot's turn is."""
        return None

    async def on_end(self) -> None:
        """Finalize, close the stream and wait for the last results and ``Metadata``."""
        stream = self.stream
        assert stream is not None
        self._finalize_due.clear()
        self._queue_finalize()
        self.ledger.push_control(CLOSE_STREAM)
        stream.end()
        try:
            async with asyncio.timeout(self._p.close_timeout_s):
                await stream.finished.wait()
        except TimeoutError:
            raise ProviderConnectionError(
                f"{self._where}: no close from Deepgram {self._p.close_timeout_s} s after "
                "CloseStream; the last transcripts may be missing"
            ) from None

    async def run(self) -> None:
        """The stream's connection loop (reconnects included)."""
        assert self.stream is not None
        await self.stream.run()

    async def stop(self) -> None:
        """Close the socket if it is still open."""
        if self.stream is not None:
            await self.stream.close()

    # -- events ----------------------------------------------------------------------------

    def _wake(self) -> None:
        if self.stream is not None:
            self.stream.wake()

    def _queue_finalize(self) -> None:
        if self._audio_since_finalize:
            self._audio_since_finalize = False
            self.ledger.push_control(FINALIZE)
            self.finalizes += 1

    def _on_event(self, event: ListenEvent) -> None:
        self._handlers[type(event)](event)

    def _on_transcript(self, t: Transcript) -> None:
        ledger = self.ledger
        text = t.text.strip()
        if text:
            now = self.ctx.now_ns()
            if self._awaiting_first:
                sent = ledger.sent_ns(t.end)
                if sent is not None:
                    self._awaiting_first = False
                    self.ctx.publish(
                        Metric(metric="stt.deepgram.ttfb_ms", value=(now - sent) / 1e6, unit="ms")
                    )
            words = tuple(
                Word(
                    w.punctuated_word,
                    ledger.session_ns(w.start),
                    ledger.session_ns(w.end),
                    w.confidence,
                )
                for w in t.words
            )
            pts = words[0].start_ns if words else ledger.session_ns(t.start)
            language = t.languages[0] if t.languages else self._language
            epoch = self.ctx.epoch
            self.emit(
                "out",
                TranscriptFrame(
                    text,
                    final=t.is_final,
                    confidence=t.confidence,
                    words=words,
                    language=language,
                    pts=pts,
                    epoch=epoch,
                ),
            )
            if t.is_final:
                self.finals += 1
                self.ctx.publish(
                    TranscriptReceived(
                        text=text,
                        final=True,
                        confidence=t.confidence,
                        language=language,
                        speech_start_ns=pts,
                        epoch=epoch,
                    )
                )
            else:
                self.interims += 1
                self._words_pending = True
        if t.is_final:
            self._words_pending = False
            ledger.confirm(t.end)
            if t.speech_final or t.from_finalize:
                self._awaiting_first = True

    def _on_speech_started(self, event: SpeechStarted) -> None:
        # Counted only: the graph's VAD publishes UserSpeechStarted, a second
        # source of the same event would confuse the turn detector.
        self.speech_started += 1

    def _on_utterance_end(self, event: UtteranceEnd) -> None:
        self._awaiting_first = True

    def _on_metadata(self, event: Metadata) -> None:
        self.metadata = event

    def _on_server_error(self, event: ServerError) -> None:
        self.ctx.report(
            "receive",
            ProviderError(f"{self._where}: Deepgram {event.variant}: {event.description}"),
        )


def _options(p: SttDeepgram.Params) -> LiveOptions:
    return LiveOptions(
        model=p.model,
        language=p.language,
        encoding=ENCODINGS[Encoding(p.encoding)],
        sample_rate=p.sample_rate,
        channels=1,
        interim_results=p.interim_results,
        endpointing=p.endpointing,
        utterance_end_ms=p.utterance_end_ms,
        vad_events=p.vad_events,
        smart_format=p.smart_format,
        keyterms=tuple(p.keyterms),
        extra=tuple(p.extra.items()),
    )
