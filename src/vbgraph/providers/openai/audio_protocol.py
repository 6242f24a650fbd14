"""OpenAI audio endpoints, transcription and speech: requests and responses (sans-I/O).

Theory of operation
-------------------
Two plain HTTP endpoints (no WebSocket), each one request per piece of work:

* ``POST {base_url}/audio/transcriptions`` takes one utterance as a
  ``multipart/form-data`` upload (fields ``file``, ``model``,
  ``response_format``, optional ``language``, ``prompt``, ``temperature``,
  ``stream``). The answer is JSON ``{"text": ..., "usage": ...}`` for
  ``response_format: json``, the bare text for ``text``, or, with
  ``stream=true`` on the gpt-4o models, ``text/event-stream`` whose ``data:``
  events are ``{"type": "transcript.text.delta", "delta": ...}`` then one
  ``{"type": "transcript.text.done", "text": ...}`` (a ``data: [DONE]`` line
  may follow). ``whisper-1`` ignores ``stream`` and answers JSON.
* ``POST {base_url}/audio/speech`` takes JSON ``{model, voice, input,
  response_format, speed?, instructions?}``; with ``response_format: pcm``
  the body is raw signed 16-bit little-endian mono samples at 24 kHz, sent
  with chunked transfer encoding as it is generated.

A failed request is an HTTP error status with the body ``{"error": {message,
type, param, code}}`` (:class:`ApiError`).

Build requests with :func:`transcription_request` and :func:`speech_request`;
parse responses with :class:`TranscriptionResponse` and
:class:`SpeechResponse`. Both parsers take the same calls, in order:

1. ``receive_status(status, content_type)`` once;
2. ``receive_data(bytes)`` with body bytes (already de-chunked) in any
   chunking: the events are the same for every split (tested byte by byte);
3. ``receive_eof()`` when the body ends;

and after each call the caller drains ``events_received()``. Once
``closed`` is true (a final event or an :class:`ApiError`), read no further
and close the connection. Input that breaks the protocol raises
:class:`~vbgraph.errors.ProviderProtocolError` (a body that is not the
documented JSON, an event stream or audio that ends early, half a sample).
This module imports no asyncio (a test checks it).
"""

from __future__ import annotations

import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Final

from ...errors import ProviderProtocolError
from .._http1 import FormField, build_multipart, multipart_content_type

__all__ = [
    "MAX_SPEECH_INPUT",
    "SPEECH_MODELS",
    "SPEECH_RATE",
    "SPEECH_VOICES",
    "STREAMING_MODELS",
    "TRANSCRIPTION_MODELS",
    "ApiError",
    "SpeechAudio",
    "SpeechDone",
    "SpeechResponse",
    "TranscriptDelta",
    "TranscriptDone",
    "TranscriptionResponse",
    "WavInfo",
    "encode_wav",
    "error_from_body",
    "parse_wav",
    "request_headers",
    "speech_request",
    "transcription_request",
]

TRANSCRIPTION_MODELS: Final = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
STREAMING_MODELS: Final = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
"""Models that stream with ``stream=true`` (whisper-1 ignores the field)."""
SPEECH_MODELS: Final = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
SPEECH_VOICES: Final = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse",
)  # fmt: skip
SPEECH_RATE: Final = 24_000
"""Sample rate of ``response_format: pcm`` (mono, s16le)."""
MAX_SPEECH_INPUT: Final = 4096
"""Longest ``input`` of one speech request, in characters."""

_MAX_BODY = 1 << 20  # a JSON or text answer larger than 1 MiB is not a transcript
_MAX_LINE = 1 << 20


# -- errors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiError:
    """The server refused or failed the request (an HTTP error status, or an error event)."""

    status: int
    message: str
    type: str = ""
    code: str = ""
    param: str = ""

    def __str__(self) -> str:
        kind = f" ({self.type})" if self.type else ""
        return f"HTTP {self.status}{kind}: {self.message}"


def error_from_body(status: int, body: bytes) -> ApiError:
    """The :class:`ApiError` in an error body; a body that is not the JSON shape is quoted."""
    text = body.decode("utf-8", "replace")
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    return _error_from(obj, status, text.strip()[:200] or "no error body")


def _error_from(obj: Any, status: int, fallback: str) -> ApiError:
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):

        def s(key: str) -> str:
            value = err.get(key)
            return "" if value is None else str(value)

        return ApiError(status, s("message") or fallback, s("type"), s("code"), s("param"))
    if isinstance(err, str):
        return ApiError(status, err)
    return ApiError(status, fallback)


def request_headers(api_key: str | None, content_type: str, accept: str) -> dict[str, str]:
    """Headers of a request (``Authorization`` only when a key is given)."""
    headers = {"Content-Type": content_type, "Accept": accept, "User-Agent": "vbgraph"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# -- WAV ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What a WAV header says, and where its samples are."""

    rate: int
    channels: int
    bits: int
    data_offset: int
    data_bytes: int

    @property
    def frames(self) -> int:
        """Sample frames (per channel) in the data chunk."""
        return self.data_bytes // (self.channels * self.bits // 8)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.frames / self.rate


def encode_wav(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file: the 44-byte RIFF header, then ``pcm`` (s16le) as is."""
    if len(pcm) % (2 * channels):
        raise ValueError(f"{len(pcm)} bytes is not a whole number of {channels}-channel samples")
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE",
        b"fmt ", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16,
        b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


def parse_wav(data: bytes) -> WavInfo:
    """The header of a PCM WAV file; :class:`ValueError` saying what is wrong otherwise.

    Unknown chunks (``LIST``, ``fact``) are skipped; the data chunk must be
    complete (a short file is an error, not a shorter clip).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(data):
                raise ValueError("truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise ValueError("data chunk before the fmt chunk")
            tag, channels, rate, bits = fmt
            if tag != 1 or bits not in (8, 16, 24, 32) or not channels or not rate:
                raise ValueError(f"not linear PCM (format {tag}, {bits} bits, {channels} ch)")
            if body + size > len(data):
                raise ValueError(
                    f"data chunk says {size} bytes but the file holds {len(data) - body}"
                )
            if size % (channels * bits // 8):
                raise ValueError("data chunk is not a whole number of sample frames")
            return WavInfo(rate, channels, bits, body, size)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk")


# -- transcription ----------------------------------------------------------------------------


def transcription_request(
    wav: bytes,
    *,
    model: str,
    response_format: str = "json",
    stream: bool = False,
    language: str | None = None,
    prompt: str | None = None,
    temperature: float | None = None,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """The ``Content-Type`` and multipart body of a transcription request for ``wav``.

    ``boundary`` is random when omitted (give one for reproducible bytes).
    """
    if not model:
        raise ValueError("model must not be empty")
    fields = [
        FormField("file", wav, filename="utterance.wav", content_type="audio/wav"),
        FormField("model", model),
        FormField("response_format", response_format),
    ]
    if language:
        fields.append(FormField("language", language))
    if prompt:
        fields.append(FormField("prompt", prompt))
    if temperature is not None:
        fields.append(FormField("temperature", repr(float(temperature))))
    if stream:
        fields.append(FormField("stream", "true"))
    while True:
        mark = boundary or f"vbgraph-{secrets.token_hex(16)}"
        try:
            return multipart_content_type(mark), build_multipart(fields, mark)
        except ValueError:
            if boundary:
                raise
            # 128 random bits occurred in the audio: draw another boundary.


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """More of the transcript (streaming only): append ``text`` to what came before."""

    text: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    """The whole transcript of the upload."""

    text: str


TranscriptionEvent = TranscriptDelta | TranscriptDone | ApiError


class TranscriptionResponse:
    """Parser of one transcription response, JSON, text or event stream (see the module doc)."""

    def __init__(self) -> None:
        self._events: list[TranscriptionEvent] = []
        self._mode = ""  # "", "error", "json", "text", "sse"
        self._status = 0
        self._body = bytearray()
        self._sse = _SseDecoder()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the transcript or an error was reported: read no further."""
        return self._closed

    def events_received(self) -> list[TranscriptionEvent]:
        """The events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def receive_status(self, status: int, content_type: str) -> None:
        """The response's HTTP status and ``Content-Type``; call once, first."""
        if self._mode:
            raise ProviderProtocolError("receive_status called twice")
        self._status = status
        ctype = content_type.lower()
        if not 200 <= status < 300:
            self._mode = "error"
        elif "text/event-stream" in ctype:
            self._mode = "sse"
        elif "json" in ctype:
            self._mode = "json"
        else:
            self._mode = "text"  # response_format=text answers text/plain

    def receive_data(self, data: bytes) -> None:
        """Body bytes, in any chunking."""
        if not self._mode:
            raise ProviderProtocolError("receive_data before receive_status")
        if self._closed:
            return
        if self._mode == "sse":
            for payload in self._sse.feed(data):
                self._event(payload)
                if self._closed:
                    return
        elif len(self._body) + len(data) > _MAX_BODY:
            if self._mode != "error":
                raise ProviderProtocolError(f"transcription body is over {_MAX_BODY} bytes")
            self._body += data[: max(0, _MAX_BODY - len(self._body))]
        else:
            self._body += data

    def receive_eof(self) -> None:
        """The body ended: report the transcript or error it held."""
        if not self._mode:
            raise ProviderProtocolError("receive_eof before receive_status")
        if self._closed:
            return
        mode, body = self._mode, bytes(self._body)
        if mode == "error":
            self._finish(error_from_body(self._status, body))
        elif mode == "text":
            self._finish(TranscriptDone(_utf8(body).strip()))
        elif mode == "json":
            obj = _json_object(_utf8(body))
            if "error" in obj and obj["error"] is not None:
                self._finish(_error_from(obj, self._status, "error"))
                return
            text = obj.get("text")
            if not isinstance(text, str):
                raise ProviderProtocolError("transcription JSON has no string 'text'")
            self._finish(TranscriptDone(text.strip()))
        else:
            for payload in self._sse.end():
                self._event(payload)
                if self._closed:
                    return
            raise ProviderProtocolError("the event stream ended before 'transcript.text.done'")

    def _event(self, payload: str) -> None:
        if payload.strip() == "[DONE]":
            raise ProviderProtocolError("'data: [DONE]' before 'transcript.text.done'")
        obj = _json_object(payload)
        kind = obj.get("type")
        if kind == "transcript.text.delta":
            delta = obj.get("delta")
            if not isinstance(delta, str):
                raise ProviderProtocolError("transcript.text.delta has no string 'delta'")
            if delta:
                self._events.append(TranscriptDelta(delta))
        elif kind == "transcript.text.done":
            text = obj.get("text")
            if not isinstance(text, str):
                raise ProviderProtocolError("transcript.text.done has no string 'text'")
            self._finish(TranscriptDone(text.strip()))
        elif kind == "error" or obj.get("error") is not None:
            self._finish(_error_from(obj, self._status, "error in stream"))
        # Other types (transcript.text.segment of the diarizing model) carry nothing here.

    def _finish(self, event: TranscriptionEvent) -> None:
        self._events.append(event)
        self._closed = True


# -- speech ---------------------------------------------------------------------------------


def speech_request(
    text: str,
    *,
    model: str,
    voice: str,
    speed: float | None = None,
    instructions: str | None = None,
) -> bytes:
    """The JSON body of a speech request for ``text``, answered as 24 kHz s16le PCM."""
    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    if len(text) > MAX_SPEECH_INPUT:
        raise ValueError(f"the text is {len(text)} characters; the limit is {MAX_SPEECH_INPUT}")
    body: dict[str, Any] = {"model": model, "voice": voice, "input": text, "response_format": "pcm"}
    if speed is not None:
        body["speed"] = speed
    if instructions:
        body["instructions"] = instructions
    return json.dumps(body, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Samples: s16le mono at :data:`SPEECH_RATE`, always a whole number of samples."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SpeechDone:
    """The audio is complete."""


SpeechEvent = SpeechAudio | SpeechDone | ApiError


class SpeechResponse:
    """Parser of one speech response: PCM out as it arrives (see the module doc).

    An odd byte at the end of a piece is held until its other half arrives;
    one left at the end of the body is a protocol error. A 2xx answer that is
    JSON rather than audio is read as an error body.
    """

    def __init__(self) -> None:
        self._events: list[SpeechEvent] = []
        self._status: int | None = None
        self._audio = False
        self._odd = b""
        self._body = bytearray()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the audio ended or an error was reported."""
        return self._closed

    def events_received(self) -> list[SpeechEvent]:
        """The events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def receive_status(self, status: int, content_type: str) -> None:
        """The response's HTTP status and ``Content-Type``; call once, first."""
        if self._status is not None:
            raise ProviderProtocolError("receive_status called twice")
        self._status = status
        ctype = content_type.lower()
        self._audio = 200 <= status < 300 and "json" not in ctype and "text/" not in ctype

    def receive_data(self, data: bytes) -> None:
        """Body bytes, in any chunking."""
        if self._status is None:
            raise ProviderProtocolError("receive_data before receive_status")
        if self._closed or not data:
            return
        if not self._audio:
            if len(self._body) < _MAX_BODY:
                self._body += data[: _MAX_BODY - len(self._body)]
            return
        if self._odd:
            data = self._odd + data
        cut = len(data) & ~1
        self._odd = data[cut:]
        if cut:
            self._events.append(SpeechAudio(bytes(data[:cut])))

    def receive_eof(self) -> None:
        """The body ended."""
        if self._status is None:
            raise ProviderProtocolError("receive_eof before receive_status")
        if self._closed:
            return
        self._closed = True
        if not self._audio:
            self._events.append(error_from_body(self._status, bytes(self._body)))
        elif self._odd:
            raise ProviderProtocolError("the audio ended in the middle of a sample")
        else:
            self._events.append(SpeechDone())


# -- helpers ------------------------------------------------------------------------------------


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProviderProtocolError(f"response body is not UTF-8: {exc}") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderProtocolError(f"not JSON ({exc}): {text[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ProviderProtocolError(f"not a JSON object: {text[:80]!r}")
    return obj


class _SseDecoder:
    """Server-sent events framing: bytes in, the ``data`` payload of each event out.

    Lines end with CRLF, LF or CR; an event ends at a blank line; ``data``
    lines of one event are joined with newlines; comments and other fields
    are ignored. (The chat-completions parser in ``protocol.py`` frames the
    same way; the two could share this.)
    """

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        """Payloads of the events that ``data`` completed."""
        self._buf += data
        out: list[str] = []
        buf, start, n = self._buf, 0, len(self._buf)
        while start < n:
            cr, lf = buf.find(b"\r", start), buf.find(b"\n", start)
            if cr < 0 and lf < 0:
                break
            if cr >= 0 and (lf < 0 or cr < lf):
                if cr + 1 == n:
                    break  # a CR at the end may be the first half of CRLF: wait
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            else:
                end, nxt = lf, lf + 1
            self._line(bytes(buf[start:end]), out)
            start = nxt
        del buf[:start]
        if len(buf) > _MAX_LINE:
            raise ProviderProtocolError(f"an event-stream line is longer than {_MAX_LINE} bytes")
        return out

    def end(self) -> list[str]:
        """Payloads left when the stream ends (a last event without its blank line)."""
        out: list[str] = []
        if self._buf:
            self._line(bytes(self._buf), out)
            self._buf.clear()
        if self._data:
            out.append("\n".join(self._data))
            self._data.clear()
        return out

    def _line(self, raw: bytes, out: list[str]) -> None:
        if not raw:
            if self._data:
                out.append("\n".join(self._data))
                self._data.clear()
            return
        line = _utf8(raw)
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
