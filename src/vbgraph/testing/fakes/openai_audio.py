"""A fake OpenAI audio server (transcriptions and speech): a real HTTP/1.1 peer on 127.0.0.1.

.. code-block:: python

    from vbgraph.testing.fakes.openai_audio import FakeOpenAIAudio

    async with FakeOpenAIAudio(transcripts=["hello there"]) as server:
        ...  # point stt.openai / tts.openai at base_url=server.base_url, api_key="sk-test"

It follows the OpenAI API reference for ``POST /v1/audio/transcriptions``
and ``POST /v1/audio/speech``, not the client:

* every request needs ``Authorization: Bearer <api_key>`` (else 401 with the
  documented error JSON); unknown routes are 404;
* a transcription is a ``multipart/form-data`` upload whose ``file`` must be
  a real PCM WAV (the header is parsed: rate, channels, length), with a
  known ``model``, a ``response_format`` the model supports, and no unknown
  fields (400 naming the ``param`` otherwise). The transcript is derived
  from the audio: under 0.1 s is a 400 ``audio_too_short``; silence
  (below -50 dBFS RMS) transcribes to ``""``; any other upload gets the next
  of ``transcripts`` (in the order speech arrived), or a description of its
  length once the list runs out. ``json``/``verbose_json``/``text`` answers,
  or, with ``stream=true`` on a gpt-4o model, ``transcript.text.delta``
  events (one per word) then ``transcript.text.done`` and ``[DONE]``;
* a speech request is JSON with a known ``model`` and ``voice``, an
  ``input`` of 1-4096 characters, ``speed`` 0.25-4 and ``instructions`` only
  for gpt-4o-mini-tts. The answer (``pcm``, or ``wav`` with a header) is
  non-silent s16le 24 kHz mono audio, one tone burst per word, so its length
  grows with the text (and shrinks with ``speed``), sent with chunked
  transfer encoding in ``chunk_ms`` pieces.

Tests script :class:`Failure` values per endpoint (a status with its error
JSON, an answer cut off after some bytes, or a speech stream that *holds*
after some chunks until the client goes away, for interruption tests:
``disconnected`` is then set), add ``latency_s`` before each answer and
``chunk_interval_s`` between streamed pieces (virtual time on a
``VirtualClock``). Every request that passed validation is recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ...providers.openai.audio_protocol import (
    MAX_SPEECH_INPUT,
    SPEECH_MODELS,
    SPEECH_RATE,
    SPEECH_VOICES,
    STREAMING_MODELS,
    TRANSCRIPTION_MODELS,
    encode_wav,
    parse_wav,
)

__all__ = [
    "ERROR_401",
    "ERROR_429",
    "Failure",
    "FakeOpenAIAudio",
    "SpeechRecord",
    "TranscriptionRecord",
    "parse_multipart",
    "speech_pcm",
]

ERROR_401 = {
    "message": "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_api_key",
}
ERROR_429 = {
    "message": "Rate limit reached for requests. Please try again in 20s.",
    "type": "requests",
    "param": None,
    "code": "rate_limit_exceeded",
}
MAX_UPLOAD = 26_214_400  # the documented 25 MB
SILENCE_DBFS = -50.0
_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 411: "Length Required",
    413: "Content Too Large", 429: "Too Many Requests",
}  # fmt: skip
_FORM_FIELDS = {"file", "model", "language", "prompt", "response_format", "temperature", "stream"}
_SPEECH_FIELDS = {"model", "voice", "input", "response_format", "speed", "instructions"}


@dataclass
class Failure:
    """A scripted answer for the next valid request to one endpoint."""

    status: int = 429
    error: dict[str, Any] | None = None
    """The error object (default: the documented 429, or a generic one)."""
    after_bytes: int | None = None
    """With status 200: answer normally but drop the connection after this many body bytes."""
    hold_after: int | None = None
    """With status 200 (speech): send this many chunks, then wait until the client leaves."""


@dataclass
class TranscriptionRecord:
    """A transcription request as the server understood it."""

    model: str
    response_format: str
    stream: bool
    language: str | None
    prompt: str | None
    rate: int
    channels: int
    duration_s: float
    dbfs: float
    text: str = ""


@dataclass
class SpeechRecord:
    """A speech request as the server understood it, and how its answer went."""

    model: str
    voice: str
    input: str
    response_format: str
    speed: float
    instructions: str | None
    audio_bytes: int = 0
    """Audio the answer holds in all."""
    sent_bytes: int = 0
    """Audio actually sent before the stream ended or the client left."""
    completed: bool = False


class _Reject(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: Any = None):
        super().__init__(message)
        self.status = status
        self.error = {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }


@dataclass
class _Part:
    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


def parse_multipart(content_type: str, body: bytes) -> dict[str, _Part]:
    """The parts of a ``multipart/form-data`` body by name; :class:`ValueError` if malformed."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise ValueError(f"Content-Type is {kind.strip()!r}, not multipart/form-data")
    boundary = ""
    for param in params.split(";"):
        key, _, text = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = text.strip('"')
    if not boundary:
        raise ValueError("multipart Content-Type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter + b"\r\n"):
        raise ValueError("the body does not start with the boundary")
    end = body.find(b"\r\n" + delimiter + b"--")
    if end < 0:
        raise ValueError("the body has no closing boundary (truncated?)")
    parts: dict[str, _Part] = {}
    for raw in body[len(delimiter) + 2 : end].split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, value = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no blank line after its headers")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, val = line.partition(":")
            headers[name.strip().lower()] = val.strip()
        disposition = headers.get("content-disposition", "")
        attrs = {}
        for item in disposition.split(";")[1:]:
            key, _, val = item.strip().partition("=")
            attrs[key.lower()] = val.strip('"')
        if not disposition.startswith("form-data") or "name" not in attrs:
            raise ValueError(f"a part has no form-data name: {disposition!r}")
        parts[attrs["name"]] = _Part(
            attrs["name"], value, attrs.get("filename"), headers.get("content-type")
        )
    return parts


def speech_pcm(text: str, speed: float = 1.0) -> bytes:
    """The fake voice: per word a tone burst (~55 ms a letter) and a 60 ms pause, s16le 24 kHz."""
    pieces: list[npt.NDArray[np.float64]] = []
    for word in text.split():
        letters = sum(c.isalnum() for c in word) or 1
        n = round((0.04 + 0.055 * letters) / speed * SPEECH_RATE)
        freq = 140 + sum(word.encode()) % 160  # a pitch per word, in a voice's range
        t = np.arange(n) / SPEECH_RATE
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
        tone = 0.3 * ramp * np.sin(2 * math.pi * freq * t) * (1 + 0.3 * np.sin(2 * math.pi * 4 * t))
        pieces += [tone, np.zeros(round(0.06 / speed * SPEECH_RATE))]
    audio = np.concatenate(pieces) if pieces else np.zeros(0)
    pcm: bytes = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return pcm


class FakeOpenAIAudio:
    """``async with FakeOpenAIAudio() as server:`` then ``server.base_url`` (see the module doc)."""

    def __init__(
        self,
        api_key: str | None = "sk-test",
        transcripts: list[str] | tuple[str, ...] = (),
        *,
        latency_s: float = 0.0,
        chunk_ms: float = 100.0,
        chunk_interval_s: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.transcripts = list(transcripts)
        self.latency_s = latency_s
        self.chunk_ms = chunk_ms
        self.chunk_interval_s = chunk_interval_s
        self.transcriptions: list[TranscriptionRecord] = []
        self.speeches: list[SpeechRecord] = []
        self.rejected: list[str] = []
        """Why each 4xx was sent, in order."""
        self.held = asyncio.Event()
        """Set when a speech stream holds (``Failure.hold_after``)."""
        self.disconnected = asyncio.Event()
        """Set when a client closed its connection before the answer was complete."""
        self.disconnected_at: float | None = None
        """Loop time (virtual on a ``VirtualClock``) of the first such disconnect."""
        self._failures: dict[str, list[Failure]] = {"transcriptions": [], "speech": []}
        self._spoken = 0  # uploads that held speech (indexes ``transcripts``)
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        assert self._server is not None, "use 'async with FakeOpenAIAudio() as server'"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def fail(self, endpoint: str, *failures: Failure) -> None:
        """Answer the next valid requests to ``transcriptions`` or ``speech`` with these."""
        self._failures[endpoint].extend(failures)

    async def __aenter__(self) -> FakeOpenAIAudio:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # -- one connection --------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                await self._serve(reader, writer)
            except _Reject as exc:
                self.rejected.append(str(exc))
                await self._json(writer, exc.status, {"error": exc.error})
        except (ConnectionError, asyncio.IncompleteReadError):
            self._left()
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except asyncio.LimitOverrunError:
            raise _Reject(431, "Request header fields too large") from None
        lines = head.split("\r\n")
        request = lines[0].split(" ")
        if len(request) != 3 or request[2] != "HTTP/1.1":
            raise _Reject(400, f"Bad request line {lines[0]!r}")
        method, path, _ = request
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise _Reject(411, "Content-Length is required")
        length = int(headers["content-length"]) if headers["content-length"].isdigit() else -1
        if length < 0:
            raise _Reject(400, "Bad Content-Length")
        if length > MAX_UPLOAD:
            raise _Reject(413, f"Maximum content size limit ({MAX_UPLOAD}) exceeded")
        body = await reader.readexactly(length)
        endpoint = {"/v1/audio/transcriptions": "transcriptions", "/v1/audio/speech": "speech"}
        if method != "POST" or path not in endpoint:
            raise _Reject(404, f"Invalid URL ({method} {path})")
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            self.rejected.append("api key")
            if not auth:
                error = {**ERROR_401, "message": "You didn't provide an API key.", "code": None}
                await self._json(writer, 401, {"error": error})
                return
            await self._json(writer, 401, {"error": ERROR_401})
            return
        if endpoint[path] == "transcriptions":
            record = self._check_transcription(headers.get("content-type", ""), body)
            await self._answer_transcription(reader, writer, record)
        else:
            speech = self._check_speech(headers.get("content-type", ""), body)
            await self._answer_speech(reader, writer, speech)

    # -- transcriptions ------------------------------------------------------------------------

    def _check_transcription(self, content_type: str, body: bytes) -> TranscriptionRecord:
        try:
            form = parse_multipart(content_type, body)
        except ValueError as exc:
            raise _Reject(400, f"Could not parse multipart form: {exc}") from None
        unknown = sorted(set(form) - _FORM_FIELDS)
        if unknown:
            raise _Reject(400, f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
        for required in ("file", "model"):
            if required not in form:
                raise _Reject(400, f"Missing required parameter: '{required}'.", required)
        text = {k: p.value.decode("utf-8", "replace") for k, p in form.items() if k != "file"}
        model = text["model"]
        if model not in TRANSCRIPTION_MODELS:
            raise _Reject(400, f"Invalid model {model!r}.", "model", "model_not_found")
        fmt = text.get("response_format", "json")
        allowed = (
            ("json", "text") if model in STREAMING_MODELS else ("json", "text", "verbose_json")
        )
        if fmt not in allowed:
            raise _Reject(
                400, f"response_format {fmt!r} is not supported by {model}", "response_format"
            )
        stream = text.get("stream", "false")
        if stream not in ("true", "false"):
            raise _Reject(400, f"'stream' must be a boolean, got {stream!r}", "stream")
        language = text.get("language")
        if language is not None and (len(language) != 2 or not language.isalpha()):
            raise _Reject(400, f"Invalid language {language!r}: use ISO-639-1", "language")
        if "temperature" in text and not 0 <= _number(text["temperature"]) <= 1:
            raise _Reject(400, "temperature must be a number from 0 to 1", "temperature")
        upload = form["file"]
        if not upload.filename:
            raise _Reject(400, "'file' must be a file upload with a filename", "file")
        try:
            wav = parse_wav(upload.value)
        except ValueError as exc:
            raise _Reject(400, f"Invalid file format ({exc}).", "file", "invalid_value") from None
        if wav.bits != 16:
            raise _Reject(
                400, f"Invalid file format ({wav.bits}-bit WAV).", "file", "invalid_value"
            )
        if wav.duration_s < 0.1:
            raise _Reject(
                400,
                "Audio file is too short. Minimum audio length is 0.1 seconds.",
                "file",
                "audio_too_short",
            )
        pcm = upload.value[wav.data_offset : wav.data_offset + wav.data_bytes]
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
        dbfs = 10 * math.log10(float(np.mean(samples**2)) + 1e-20)
        record = TranscriptionRecord(
            model, fmt, stream == "true", language, text.get("prompt"),
            wav.rate, wav.channels, wav.duration_s, dbfs,
        )  # fmt: skip
        self.transcriptions.append(record)
        return record

    async def _answer_transcription(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, r: TranscriptionRecord
    ) -> None:
        failure = await self._failed("transcriptions", writer)
        if failure is True:
            return
        cut = failure.after_bytes if isinstance(failure, Failure) else None
        self._transcribe(r)
        await asyncio.sleep(self.latency_s)
        if r.stream and r.model in STREAMING_MODELS:  # whisper-1 ignores stream
            writer.write(_head(200, "text/event-stream; charset=utf-8", chunked=True))
            words = r.text.split()
            events: list[dict[str, Any]] = [
                {"type": "transcript.text.delta", "delta": word if i == 0 else " " + word}
                for i, word in enumerate(words)
            ]
            tokens = round(r.duration_s * 10)
            usage = {"type": "tokens", "input_tokens": tokens, "output_tokens": len(words),
                     "total_tokens": tokens + len(words)}  # fmt: skip
            events.append({"type": "transcript.text.done", "text": r.text, "usage": usage})
            sent = 0
            for event in events:
                data = f"data: {json.dumps(event)}\n\n".encode()
                if cut is not None and sent + len(data) > cut:
                    await self._chunk(writer, data[: cut - sent])
                    return  # drop the connection mid-stream
                await self._chunk(writer, data)
                sent += len(data)
                await asyncio.sleep(self.chunk_interval_s)
            await self._chunk(writer, b"data: [DONE]\n\n")
            await self._chunk(writer, b"")
            return
        if r.response_format == "text":
            data, ctype = (r.text + "\n").encode(), "text/plain; charset=utf-8"
        else:
            obj: dict[str, Any] = {"text": r.text}
            if r.response_format == "verbose_json":
                obj = {"task": "transcribe", "language": "english", "duration": r.duration_s,
                       "text": r.text, "segments": []}  # fmt: skip
            if r.model == "whisper-1":
                obj["usage"] = {"type": "duration", "seconds": math.ceil(r.duration_s)}
            data, ctype = json.dumps(obj).encode(), "application/json"
        # A cut answer still announces its full length: the client sees a short body.
        writer.write(_head(200, ctype, length=len(data)) + data[:cut])
        await writer.drain()

    def _transcribe(self, r: TranscriptionRecord) -> None:
        """What the fake "hears": nothing in silence, else the next scripted text."""
        if r.dbfs < SILENCE_DBFS:
            r.text = ""
        elif self._spoken < len(self.transcripts):
            r.text = self.transcripts[self._spoken]
            self._spoken += 1
        else:
            self._spoken += 1
            r.text = f"Utterance {self._spoken} was {r.duration_s:.1f} seconds long."

    # -- speech -----------------------------------------------------------------------------

    def _check_speech(self, content_type: str, body: bytes) -> SpeechRecord:
        if "application/json" not in content_type.lower():
            raise _Reject(400, f"Content-Type must be application/json, not {content_type!r}")
        try:
            obj = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Reject(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(obj, dict):
            raise _Reject(400, "The body must be a JSON object.")
        unknown = sorted(set(obj) - _SPEECH_FIELDS)
        if unknown:
            raise _Reject(400, f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
        for required in ("model", "input", "voice"):
            if required not in obj:
                raise _Reject(400, f"Missing required parameter: '{required}'.", required)
        model, voice, text = obj["model"], obj["voice"], obj["input"]
        if model not in SPEECH_MODELS:
            raise _Reject(400, f"Invalid model {model!r}.", "model", "model_not_found")
        if voice not in SPEECH_VOICES:
            supported = ", ".join(f"'{v}'" for v in SPEECH_VOICES)
            raise _Reject(
                400, f"Invalid value: {voice!r}. Supported values are: {supported}.", "voice",
                "invalid_value",
            )  # fmt: skip
        if not isinstance(text, str) or not text.strip():
            raise _Reject(400, "'input' must be a non-empty string.", "input")
        if len(text) > MAX_SPEECH_INPUT:
            raise _Reject(
                400, f"'input' is longer than {MAX_SPEECH_INPUT} characters.", "input",
                "string_above_max_length",
            )  # fmt: skip
        fmt = obj.get("response_format", "mp3")
        if fmt not in ("pcm", "wav"):
            raise _Reject(
                400, f"fake server: response_format {fmt!r} is not emulated", "response_format"
            )
        speed = obj.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            raise _Reject(400, f"speed {speed!r} is not in [0.25, 4.0]", "speed")
        instructions = obj.get("instructions")
        if instructions and model != "gpt-4o-mini-tts":
            raise _Reject(400, f"instructions are not supported by {model}", "instructions")
        record = SpeechRecord(model, voice, text, fmt, float(speed), instructions)
        self.speeches.append(record)
        return record

    async def _answer_speech(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, r: SpeechRecord
    ) -> None:
        failure = await self._failed("speech", writer)
        if failure is True:
            return
        await asyncio.sleep(self.latency_s)
        pcm = speech_pcm(r.input, r.speed)
        data = encode_wav(pcm, SPEECH_RATE) if r.response_format == "wav" else pcm
        r.audio_bytes = len(pcm)
        cut = failure.after_bytes if isinstance(failure, Failure) else None
        hold = failure.hold_after if isinstance(failure, Failure) else None
        writer.write(_head(200, "application/octet-stream", chunked=True))
        step = max(2, round(self.chunk_ms / 1000 * SPEECH_RATE) * 2)
        for n, start in enumerate(range(0, len(data), step)):
            if n == hold:
                self.held.set()
                while await reader.read(1):
                    pass
                self._left()
                return
            piece = data[start : start + step]
            if cut is not None and r.sent_bytes + len(piece) > cut:
                await self._chunk(writer, piece[: cut - r.sent_bytes])
                return  # drop the connection mid-stream: no last chunk
            await self._chunk(writer, piece)
            r.sent_bytes += len(piece)
            await asyncio.sleep(self.chunk_interval_s)
        await self._chunk(writer, b"")
        r.completed = True

    # -- helpers --------------------------------------------------------------------------------

    def _left(self) -> None:
        if not self.disconnected.is_set():
            self.disconnected_at = asyncio.get_running_loop().time()
            self.disconnected.set()

    async def _failed(self, endpoint: str, writer: asyncio.StreamWriter) -> bool | Failure:
        """Answer a scripted error (True); a cut-off 200 is returned for the caller."""
        queue = self._failures[endpoint]
        if not queue:
            return False
        failure = queue.pop(0)
        if failure.status == 200:
            return failure
        error = failure.error or (
            ERROR_429
            if failure.status == 429
            else {"message": "scripted failure", "type": "server_error"}
        )
        await self._json(writer, failure.status, {"error": error})
        return True

    async def _chunk(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()

    async def _json(self, writer: asyncio.StreamWriter, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        writer.write(_head(status, "application/json", length=len(data)) + data)
        await writer.drain()


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # fails every range check


def _head(status: int, content_type: str, *, length: int = 0, chunked: bool = False) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\nConnection: close\r\n\r\n"
    ).encode()
