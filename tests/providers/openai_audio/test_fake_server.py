"""The fake OpenAI audio server checks what clients send, as the real API does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from vbgraph.clock import VirtualClock
from vbgraph.providers._http1 import (
    FormField,
    ResponseHead,
    ResponseParser,
    build_multipart,
    build_request,
    multipart_content_type,
)
from vbgraph.providers.openai.audio_protocol import encode_wav, transcription_request
from vbgraph.testing.fakes.openai_audio import FakeOpenAIAudio, speech_pcm

KEY = {"Authorization": "Bearer sk-test"}
TONE = (8000 * np.sin(np.arange(8000) * 0.1)).astype("<i2").tobytes()  # 0.5 s at 16 kHz


async def post(
    fake: FakeOpenAIAudio, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    """One raw request; the status and the JSON (or raw bytes) answer."""
    host, port = fake.base_url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(build_request("POST", f"{host}:{port}", path, headers, body))
    http = ResponseParser()
    while data := await reader.read(65536):
        http.receive_data(data)
    http.receive_eof()
    writer.close()
    events = http.events_received()
    head = events[0]
    assert isinstance(head, ResponseHead)
    raw = b"".join(e for e in events if isinstance(e, bytes))
    is_json = "json" in head.headers.get("content-type", "")
    return head.status, json.loads(raw) if is_json else raw


def check(test: Callable[[FakeOpenAIAudio], Awaitable[None]], **server: Any) -> None:
    async def main() -> None:
        async with FakeOpenAIAudio(**server) as fake:
            await test(fake)

    VirtualClock().run(main(), debug=True)


def upload(fields: list[FormField]) -> tuple[dict[str, str], bytes]:
    return {**KEY, "Content-Type": multipart_content_type("b0")}, build_multipart(fields, "b0")


WAV = FormField("file", encode_wav(TONE, 16000), filename="a.wav", content_type="audio/wav")


@pytest.mark.parametrize(
    ("fields", "param", "text"),
    [
        ([FormField("model", "whisper-1")], "file", "Missing required parameter"),
        ([WAV], "model", "Missing required parameter"),
        ([WAV, FormField("model", "whisper-9")], "model", "Invalid model"),
        (
            [WAV, FormField("model", "whisper-1"), FormField("colour", "red")],
            "colour",
            "Unrecognized",
        ),
        (
            [WAV, FormField("model", "gpt-4o-transcribe"), FormField("response_format", "srt")],
            "response_format",
            "not supported",
        ),
        (
            [WAV, FormField("model", "whisper-1"), FormField("temperature", "hot")],
            "temperature",
            "number from 0 to 1",
        ),
        (
            [WAV, FormField("model", "whisper-1"), FormField("stream", "yes")],
            "stream",
            "boolean",
        ),
        (
            [FormField("file", TONE, filename="a.wav"), FormField("model", "whisper-1")],
            "file",
            "Invalid file format",
        ),
        (
            [
                FormField("file", encode_wav(TONE[:1000], 16000), filename="a.wav"),
                FormField("model", "whisper-1"),
            ],
            "file",
            "too short",
        ),
    ],
)
def test_bad_uploads_get_a_400_naming_the_param(
    fields: list[FormField], param: str, text: str
) -> None:
    """Missing or unknown fields, bad model, format, temperature or stream, raw PCM, 31 ms."""

    async def test(fake: FakeOpenAIAudio) -> None:
        headers, body = upload(fields)
        status, answer = await post(fake, "/v1/audio/transcriptions", body, headers)
        assert status == 400 and answer["error"]["param"] == param
        assert text in answer["error"]["message"] and fake.transcriptions == []

    check(test)


def test_a_good_upload_is_transcribed_from_the_script_in_order() -> None:
    """Two uploads of speech-level audio get the two scripted texts; usage is per model."""

    async def test(fake: FakeOpenAIAudio) -> None:
        for model, expected in (("whisper-1", "first"), ("gpt-4o-transcribe", "second")):
            ctype, body = transcription_request(encode_wav(TONE, 16000), model=model)
            status, answer = await post(
                fake, "/v1/audio/transcriptions", body, {**KEY, "Content-Type": ctype}
            )
            assert status == 200 and answer["text"] == expected
        assert fake.transcriptions[0].duration_s == 0.5

    check(test, transcripts=["first", "second"])


def test_requests_without_the_right_key_get_the_documented_401() -> None:
    """No Authorization header, or a wrong key: 401 with the error JSON."""

    async def test(fake: FakeOpenAIAudio) -> None:
        for headers in ({}, {"Authorization": "Bearer sk-nope"}):
            status, answer = await post(fake, "/v1/audio/speech", b"{}", headers)
            assert status == 401 and answer["error"]["type"] == "invalid_request_error"

    check(test)


def test_unknown_routes_are_404() -> None:
    """Only the two audio endpoints exist."""

    async def test(fake: FakeOpenAIAudio) -> None:
        status, answer = await post(fake, "/v1/audio/translations", b"", KEY)
        assert status == 404 and "Invalid URL" in answer["error"]["message"]

    check(test)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"voice": "bob"}, "voice"),
        ({"model": "tts-9"}, "model"),
        ({"input": ""}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"speed": 5}, "speed"),
        ({"model": "tts-1", "instructions": "Whisper."}, "instructions"),
        ({"response_format": "mp3"}, "response_format"),
        ({"style": "calm"}, "style"),
    ],
)
def test_bad_speech_requests_get_a_400_naming_the_param(change: dict[str, Any], param: str) -> None:
    """Unknown voice or model, empty or overlong input, speed, misplaced instructions ..."""

    async def test(fake: FakeOpenAIAudio) -> None:
        body = {
            "model": "gpt-4o-mini-tts",
            "voice": "alloy",
            "input": "Hi.",
            "response_format": "pcm",
        }
        headers = {**KEY, "Content-Type": "application/json"}
        data = json.dumps({**body, **change}).encode()
        status, answer = await post(fake, "/v1/audio/speech", data, headers)
        assert status == 400 and answer["error"]["param"] == param

    check(test)


def test_speech_is_non_silent_pcm_whose_length_grows_with_the_text() -> None:
    """More words, more samples; faster speed, fewer; the samples are speech-level."""
    short, long = speech_pcm("Hello."), speech_pcm("Hello there, how are you doing today?")
    assert len(long) > 4 * len(short) > 0
    assert len(speech_pcm("Hello there.", 2.0)) < len(speech_pcm("Hello there.")) * 0.6
    samples = np.frombuffer(long, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 3000 and len(long) % 2 == 0

    async def test(fake: FakeOpenAIAudio) -> None:
        body = {"model": "tts-1", "voice": "nova", "input": "Hello.", "response_format": "wav"}
        headers = {**KEY, "Content-Type": "application/json"}
        status, answer = await post(fake, "/v1/audio/speech", json.dumps(body).encode(), headers)
        assert status == 200 and answer[:4] == b"RIFF" and answer[44:] == short

    check(test)
