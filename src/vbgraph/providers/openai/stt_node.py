"""The ``stt.openai`` node: the asyncio shell around :mod:`.audio_protocol` for transcription.

Theory of operation
-------------------
The node is ``stt.whisper`` with the model call replaced by an HTTP upload:
the same ports, the same utterance cutting by the VAD's
``UserSpeechStarted``/``UserSpeechStopped`` events (the segmenter
``stt.whisper`` holds, by pts, so frames and events may arrive in any order),
the same frames and events out. Each finished utterance becomes one WAV file
posted to ``/audio/transcriptions``; a background task (``run``) sends them
one at a time, in order, so ``process`` never waits for the network.

The connection code is here too (``_HttpEndpoint``): one TCP (TLS for
https) connection per request, ``Connection: close``, bytes through
``providers/_http1.py``. ``tts.openai`` imports it, with ``_provider_error``
and ``_resolve_key`` (private: a node module exports only its node class;
they could move to a shared ``providers/openai`` helper module, which
``llm.openai``'s own copy of the connection loop could use too).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, Self, TypeVar
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...errors import ProviderConnectionError, ProviderError, ProviderProtocolError
from ...events import Event, Metric, TranscriptReceived, UserSpeechStarted, UserSpeechStopped
from ...formats import Encoding
from ...frames import AudioFrame, Frame, TranscriptFrame
from ...node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ...registry import register
from .._http1 import ResponseEnd, ResponseHead, ResponseParser, build_request
from .._secrets import ApiKey, api_key_field, resolve_api_key
from .audio_protocol import (
    ApiError,
    TranscriptDelta,
    TranscriptDone,
    TranscriptionResponse,
    encode_wav,
    request_headers,
    transcription_request,
)

if TYPE_CHECKING:
    from ...nodes.stt_whisper import _Utterance, _Utterances

__all__ = ["OpenAISTT"]

API_KEY_ENV = "OPENAI_API_KEY"
OPENAI_HOST = "api.openai.com"
_NS = 1_000_000_000
_READ_SIZE = 65536
_MAX_WAITING = 16  # utterances waiting for the server; more means it is far behind


E = TypeVar("E")


class _Parser(Protocol[E]):
    """What :meth:`_HttpEndpoint.exchange` needs of a response parser (audio_protocol's)."""

    @property
    def closed(self) -> bool: ...

    def receive_status(self, status: int, content_type: str) -> None: ...

    def receive_data(self, data: bytes) -> None: ...

    def receive_eof(self) -> None: ...

    def events_received(self) -> list[E]: ...


class _HttpEndpoint:
    """One URL to POST to, and the code that does it (used by both OpenAI audio nodes)."""

    def __init__(self, base_url: str, path: str, who: str, timeout_s: float) -> None:
        url = urlsplit(base_url)
        self.base_url = base_url
        self.tls = url.scheme == "https"
        self.host = url.hostname or ""
        self.port = url.port or (443 if self.tls else 80)
        default = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default else f"{self.host}:{self.port}"
        self.target = (url.path or "").rstrip("/") + path
        self.who = who
        self.timeout_s = timeout_s

    async def exchange(
        self, headers: Mapping[str, str], body: bytes, parser: _Parser[E]
    ) -> AsyncGenerator[E, None]:
        """Send one request; feed the answer to ``parser`` and yield its events.

        Ends once the parser is closed (its final event or an error answer was
        yielded). The connection is closed when the generator ends or is
        closed (``aclosing``), also on cancellation: an interrupted caller's
        server sees the client go away at once. Connect failures, broken
        connections and ``timeout_s`` without a byte are
        :class:`ProviderConnectionError`, answers that break the protocol
        :class:`ProviderProtocolError`, both naming the node and URL.
        """
        context = ssl.create_default_context() if self.tls else None
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if self.tls else None,
                )
        except (OSError, TimeoutError) as exc:
            raise ProviderConnectionError(
                f"{self.who}: cannot connect to {self.base_url}: {exc or type(exc).__name__}"
            ) from exc
        try:
            writer.write(build_request("POST", self.host_header, self.target, headers, body))
            await writer.drain()
            http = ResponseParser()
            while not parser.closed:
                async with asyncio.timeout(self.timeout_s):
                    data = await reader.read(_READ_SIZE)
                if data:
                    http.receive_data(data)
                else:
                    http.receive_eof()  # raises if the body is not complete
                for piece in http.events_received():
                    if isinstance(piece, ResponseHead):
                        if piece.status >= 200:  # not 100 Continue: the real head
                            parser.receive_status(
                                piece.status, piece.headers.get("content-type", "")
                            )
                    elif isinstance(piece, ResponseEnd):
                        parser.receive_eof()
                    else:
                        parser.receive_data(piece)
                for event in parser.events_received():
                    yield event
                if not data and not parser.closed:
                    raise ProviderProtocolError("the server closed the connection mid-response")
        except TimeoutError as exc:
            raise ProviderConnectionError(
                f"{self.who}: {self.base_url} sent nothing for {self.timeout_s} s"
            ) from exc
        except ProviderProtocolError as exc:
            raise ProviderProtocolError(f"{self.who}: {self.base_url}: {exc}") from exc
        except OSError as exc:
            raise ProviderConnectionError(
                f"{self.who}: connection to {self.base_url} broke: {exc}"
            ) from exc
        finally:
            writer.close()


def _resolve_key(api_key: ApiKey, base_url: str, node_id: str) -> str | None:
    """The key to send: required for api.openai.com, optional for local look-alikes."""
    required = urlsplit(base_url).hostname == OPENAI_HOST
    return resolve_api_key(api_key, API_KEY_ENV, node_id=node_id, required=required)


def _provider_error(who: str, where: str, error: ApiError, has_key: bool) -> ProviderError:
    """A clear :class:`ProviderError` for an error answer (what to do about a 401 or 429)."""
    if error.status == 401:
        hint = (
            f"the server refused the API key: set api_key or ${API_KEY_ENV}"
            if has_key
            else f"no API key was given: set api_key or ${API_KEY_ENV}"
        )
        return ProviderError(f"{who}: {where}: {hint} ({error})")
    if error.status == 429:
        return ProviderError(f"{who}: {where}: rate limited, try again later ({error})")
    param = f" [param '{error.param}']" if error.param else ""
    return ProviderError(f"{who}: {where}: {error}{param}")


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


@register
class OpenAISTT(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav}
          vad: {type: vad.native}
          stt: {type: stt.openai, model: gpt-4o-mini-transcribe, language: en}
          out: {type: log}
        edges: [mic -> vad, vad.speech -> stt, stt -> out]

    Speech recognition with OpenAI's transcription endpoint
    (``POST /audio/transcriptions``), or any server that speaks it
    (``base_url``). A drop-in for ``stt.whisper``: the same input (16 kHz mono
    audio, whole or only the VAD's speech), the same cutting into utterances
    by the VAD's events (the whole input is one utterance without a VAD; an
    utterance longer than ``max_segment_s`` is cut into pieces), the same
    output: one final ``TranscriptFrame`` per utterance with any text
    (``pts`` = start of the utterance) and a ``TranscriptReceived`` event.

    Each utterance is uploaded as one WAV file. ``model`` is
    ``gpt-4o-mini-transcribe`` (default), ``gpt-4o-transcribe`` or
    ``whisper-1``. With ``stream: true`` (gpt-4o models) the text streams
    back as it is recognised: each piece sends an interim ``TranscriptFrame``
    (``final: false``, the text so far) before the final one.

    *Key.* ``api_key``, or ``$OPENAI_API_KEY`` when omitted; required for
    api.openai.com (a missing key fails at start), optional for other hosts.

    *Errors.* An utterance whose request fails (bad key, rate limit, bad
    audio, timeout after ``timeout_s`` without a byte) publishes a
    ``NodeError`` (phase ``transcribe``) whose message says what to do; the
    node goes on with the next utterance.

    *Metrics.* ``stt.openai.ms`` per utterance: upload start to final text.

    Not interruptible, for the same reason as ``stt.whisper``: the user's
    speech is what the next turn is about.
    """

    type_name: ClassVar[str] = "stt.openai"

    class Params(NodeParams):
        """Parameters of ``stt.openai``."""

        model: str = Field(
            "gpt-4o-mini-transcribe",
            min_length=1,
            description="gpt-4o-mini-transcribe, gpt-4o-transcribe or whisper-1.",
        )
        base_url: str = Field("https://api.openai.com/v1", description="API base URL.")
        api_key: ApiKey = api_key_field(API_KEY_ENV)
        language: str = Field(
            "en", min_length=2, description="ISO-639-1 code of the speech; 'auto' detects it."
        )
        prompt: str | None = Field(None, description="Text that guides style or vocabulary.")
        temperature: float | None = Field(None, ge=0, le=1, description="Sampling temperature.")
        response_format: Literal["json", "text"] = Field(
            "json", description="Answer format asked for (both give the same frames)."
        )
        stream: bool = Field(
            False, description="Stream interim text as it is recognised (gpt-4o models)."
        )
        max_segment_s: float = Field(
            30, gt=0, le=600, description="Longest audio uploaded at once; longer is cut."
        )
        timeout_s: float = Field(
            30.0, gt=0, description="Connect timeout, and longest wait for the next bytes."
        )

        @field_validator("base_url")
        @classmethod
        def _url(cls, value: str) -> str:
            return _check_url(value)

        @model_validator(mode="after")
        def _stream_needs_gpt4o(self) -> Self:
            if self.stream and self.model == "whisper-1":
                raise ValueError("whisper-1 does not stream: use a gpt-4o model or stream: false")
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(
            rates=(16000,),
            channels=(1,),
            encodings=("pcm_s16le", "pcm_f32le"),
            doc="The caller's audio, 16 kHz mono: speech segments or everything.",
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(TranscriptFrame, doc="Interim (streaming) and final transcripts."),
    }
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (UserSpeechStarted, UserSpeechStopped)

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, OpenAISTT.Params)
        p = self._p = params
        # Imported here: vbgraph.nodes imports this module, so a top-level import of
        # vbgraph.nodes.stt_whisper would be circular.
        from ...nodes.stt_whisper import _Utterances

        self._utterances: _Utterances = _Utterances(round(p.max_segment_s * _NS))
        self._language = None if p.language == "auto" else p.language
        who = f"stt.openai '{node_id}'"
        self._http = _HttpEndpoint(p.base_url, "/audio/transcriptions", who, p.timeout_s)
        self._api_key: str | None = None
        self._waiting: deque[_Utterance] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.transcribed = 0
        """Utterances the server transcribed."""
        self.dropped = 0
        """Utterances dropped because too many were waiting for the server."""
        self.failures = 0
        """Requests that failed (each published as a ``NodeError``)."""

    def start(self) -> None:
        """Find the API key (param or ``$OPENAI_API_KEY``)."""
        self._api_key = _resolve_key(self._p.api_key, self._p.base_url, self.id)

    async def process(self, port: str, frame: Frame) -> None:
        """Keep the audio; queue every utterance it completes (never waits for the server)."""
        # async (as stt.whisper): own task, and an async on_end that waits for the transcripts.
        if type(frame) is AudioFrame:
            self._submit(self._utterances.push(frame))

    def on_event(self, event: Event) -> None:
        """A VAD event opens or closes an utterance (by pts, as in ``stt.whisper``)."""
        if type(event) is UserSpeechStarted:
            self._submit(self._utterances.start(event.pts))
        elif type(event) is UserSpeechStopped:
            self._submit(self._utterances.stop(event.pts))

    async def on_end(self) -> None:
        """Close the open utterance and wait until every queued one is transcribed."""
        self._submit(self._utterances.finish())
        await self._idle.wait()

    async def run(self) -> None:
        """Upload queued utterances one at a time, in order."""
        while True:
            if not self._waiting:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            utterance = self._waiting.popleft()
            try:
                await self._transcribe(utterance)
            except Exception as exc:  # this utterance failed: report, go on
                self.failures += 1
                self.ctx.report("transcribe", exc)

    def _submit(self, utterances: list[_Utterance]) -> None:
        for utterance in utterances:
            if len(self._waiting) >= _MAX_WAITING:
                self._waiting.popleft()
                self.dropped += 1
            self._waiting.append(utterance)
        if utterances:
            self._idle.clear()
            self._wake.set()

    async def _transcribe(self, utterance: _Utterance) -> None:
        p = self._p
        content_type, body = transcription_request(
            encode_wav(_pcm16(utterance), utterance.frames[0].fmt.rate),
            model=p.model,
            response_format=p.response_format,
            stream=p.stream,
            language=self._language,
            prompt=p.prompt,
            temperature=p.temperature,
        )
        accept = "text/event-stream" if p.stream else "application/json, text/plain"
        headers = request_headers(self._api_key, content_type, accept)
        sent = self.ctx.now_ns()
        parts: list[str] = []
        exchange = self._http.exchange(headers, body, TranscriptionResponse())
        async with aclosing(exchange) as events:
            async for event in events:
                if isinstance(event, TranscriptDelta):
                    parts.append(event.text)
                    self._emit(utterance, "".join(parts).strip(), final=False)
                elif isinstance(event, TranscriptDone):
                    self.transcribed += 1
                    ms = (self.ctx.now_ns() - sent) / 1e6
                    self.ctx.publish(Metric(metric="stt.openai.ms", value=ms, unit="ms"))
                    self._emit(utterance, event.text, final=True)
                    return
                else:
                    has_key = self._api_key is not None
                    raise _provider_error(self._http.who, p.base_url, event, has_key)
        raise ProviderProtocolError(f"{self._http.who}: the response ended without a transcript")

    def _emit(self, utterance: _Utterance, text: str, final: bool) -> None:
        if not text:
            return
        epoch = self.ctx.epoch
        t0 = utterance.t0_ns
        self.emit(
            "out",
            TranscriptFrame(text, final=final, language=self._language, pts=t0, epoch=epoch),
        )
        self.ctx.publish(
            TranscriptReceived(
                text=text, final=final, language=self._language, speech_start_ns=t0, epoch=epoch
            )
        )


def _pcm16(utterance: _Utterance) -> bytes:
    """The utterance's samples as s16le (float32 input is converted, clipped)."""
    data = b"".join(bytes(f.data) for f in utterance.frames)
    if utterance.frames[0].fmt.encoding != Encoding.PCM_F32LE:
        return data
    samples = np.frombuffer(data, dtype="<f4")
    pcm: bytes = (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    return pcm
