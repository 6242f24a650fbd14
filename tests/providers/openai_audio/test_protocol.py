"""The sans-I/O OpenAI audio protocol: uploads, WAV, transcription and speech responses."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import ProviderProtocolError
from vbgraph.providers._http1 import FormField, build_multipart
from vbgraph.providers.openai.audio_protocol import (
    ApiError,
    SpeechAudio,
    SpeechDone,
    SpeechResponse,
    TranscriptDelta,
    TranscriptDone,
    TranscriptionResponse,
    encode_wav,
    error_from_body,
    parse_wav,
    request_headers,
    speech_request,
    transcription_request,
)
from vbgraph.testing.fakes.openai_audio import parse_multipart
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"
SENTENCE = "He was not an ill disposed young man."
STREAMED = [
    TranscriptDelta(t)
    for t in ["He", " was", " not", " an", " ill", " disposed", " young", " man."]
] + [TranscriptDone(SENTENCE)]


def golden(name: str) -> bytes:
    return (DATA / name).read_bytes()


def transcribe(
    chunks: list[bytes], content_type: str = "text/event-stream", status: int = 200
) -> list[object]:
    parser = TranscriptionResponse()
    parser.receive_status(status, content_type)
    events: list[object] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events += parser.events_received()
    parser.receive_eof()
    return events + list(parser.events_received())


def speech(chunks: list[bytes], content_type: str = "audio/pcm", status: int = 200) -> list[object]:
    parser = SpeechResponse()
    parser.receive_status(status, content_type)
    events: list[object] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events += parser.events_received()
    parser.receive_eof()
    return events + list(parser.events_received())


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    return [*pieces, data[last:]]


class TestTranscriptionRequest:
    """The multipart upload (API reference: create transcription)."""

    def test_the_upload_matches_the_golden_body(self) -> None:
        """file (a WAV named utterance.wav), model, response_format, language, prompt, ..."""
        tiny = parse_wav(golden("utterance.wav"))
        wav = encode_wav(golden("utterance.wav")[tiny.data_offset :][:320], 16000)
        ctype, body = transcription_request(
            wav,
            model="gpt-4o-transcribe",
            stream=True,
            language="en",
            prompt="Austen",
            temperature=0.0,
            boundary="vbgraph-golden",
        )
        assert ctype == "multipart/form-data; boundary=vbgraph-golden"
        assert body == golden("transcription_request.multipart")

    def test_an_independent_parser_reads_every_field_back(self) -> None:
        """The fake server's multipart parser finds the fields and the file as sent."""
        wav = golden("utterance.wav")
        ctype, body = transcription_request(wav, model="whisper-1", response_format="text")
        form = parse_multipart(ctype, body)
        assert set(form) == {"file", "model", "response_format"}
        assert form["file"].value == wav and form["file"].filename == "utterance.wav"
        assert form["file"].content_type == "audio/wav"
        assert form["model"].value == b"whisper-1"
        assert form["response_format"].value == b"text"

    def test_each_request_draws_a_fresh_random_boundary(self) -> None:
        """Two requests for the same audio use different boundaries."""
        wav = golden("utterance.wav")
        first = transcription_request(wav, model="whisper-1")[0]
        assert first != transcription_request(wav, model="whisper-1")[0]

    def test_a_given_boundary_found_in_the_audio_is_refused(self) -> None:
        """The body would be cut at the boundary: ValueError rather than a corrupt upload."""
        wav = encode_wav(b"--abcd" * 2, 16000)
        with pytest.raises(ValueError, match="contains the boundary"):
            transcription_request(wav, model="whisper-1", boundary="abcd")

    @pytest.mark.parametrize(
        ("field", "boundary", "message"),
        [
            (FormField("a", "x"), "", "boundary"),
            (FormField("a", "x"), "has space", "boundary"),
            (FormField("a", "x"), "x" * 71, "boundary"),
            (FormField('a"b', "x"), "ok", "quote or line break"),
            (FormField("a", "x", filename="a\r\nb.wav"), "ok", "quote or line break"),
        ],
    )
    def test_bad_boundaries_and_names_are_refused(
        self, field: FormField, boundary: str, message: str
    ) -> None:
        """RFC 2046 boundary characters and 1-70 length; no quotes or line breaks in names."""
        with pytest.raises(ValueError, match=message):
            build_multipart([field], boundary)

    def test_headers_carry_the_bearer_key_only_when_given(self) -> None:
        """Authorization: Bearer <key>; none without a key (local servers)."""
        assert request_headers("sk-1", "a/b", "c/d")["Authorization"] == "Bearer sk-1"
        assert "Authorization" not in request_headers(None, "a/b", "c/d")


class TestWav:
    """The uploaded file: 16-bit PCM WAV."""

    def test_the_golden_wav_parses_to_its_format_and_length(self) -> None:
        """16 kHz mono 16-bit, 4000 frames = 0.25 s, data right after the 44-byte header."""
        info = parse_wav(golden("utterance.wav"))
        assert (info.rate, info.channels, info.bits) == (16000, 1, 16)
        assert (info.data_offset, info.frames, info.duration_s) == (44, 4000, 0.25)

    def test_encoding_then_parsing_gives_the_samples_back(self) -> None:
        """encode_wav keeps the PCM bytes as they are; stereo counts frames per channel."""
        pcm = bytes(range(256)) * 4
        wav = encode_wav(pcm, 24000, channels=2)
        info = parse_wav(wav)
        assert wav[info.data_offset :] == pcm and info.frames == 256 and info.channels == 2

    def test_half_a_sample_cannot_be_encoded(self) -> None:
        """An odd byte count is not s16 audio."""
        with pytest.raises(ValueError, match="whole number"):
            encode_wav(b"\x00\x01\x02", 16000)

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("utterance_invalid.wav", "not linear PCM"),
            ("utterance_truncated.wav", "data chunk says 8000 bytes"),
        ],
    )
    def test_invalid_and_truncated_wavs_are_documented_errors(
        self, name: str, message: str
    ) -> None:
        """A non-PCM format tag and a short data chunk raise ValueError saying so."""
        with pytest.raises(ValueError, match=message):
            parse_wav(golden(name))

    @given(st.binary(max_size=120))
    @settings(max_examples=300, deadline=None)
    def test_any_bytes_parse_or_raise_value_error(self, data: bytes) -> None:
        """Fuzz: arbitrary input (also behind a valid RIFF prefix) never crashes otherwise."""
        for blob in (data, b"RIFF\x00\x00\x00\x00WAVE" + data):
            with contextlib.suppress(ValueError):
                parse_wav(blob)


class TestTranscriptionResponse:
    """Answers: json, text, and the transcript.text.* event stream."""

    def test_a_json_answer_gives_the_text(self) -> None:
        """{"text": ..., "usage": ...} (gpt-4o usage in tokens)."""
        events = transcribe([golden("transcription.json")], "application/json")
        assert events == [TranscriptDone(SENTENCE)]

    def test_a_whisper_json_answer_with_duration_usage_gives_the_text(self) -> None:
        """whisper-1 reports usage as seconds of audio; the text is what counts."""
        events = transcribe([golden("transcription_whisper.json")], "application/json")
        assert events == [TranscriptDone("He might even have been made amiable himself.")]

    def test_a_text_answer_is_the_transcript_without_its_newline(self) -> None:
        """response_format=text answers text/plain."""
        events = transcribe([golden("transcription.txt")], "text/plain; charset=utf-8")
        assert events == [TranscriptDone(SENTENCE)]

    def test_the_event_stream_gives_deltas_then_the_whole_text(self) -> None:
        """One TranscriptDelta per transcript.text.delta, then TranscriptDone; [DONE] after."""
        assert transcribe([golden("transcription_stream.sse")]) == STREAMED

    @given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
    @settings(max_examples=200, deadline=None)
    def test_any_chunking_of_the_stream_gives_the_same_events(self, cuts: list[int]) -> None:
        """Events do not depend on where the body was split."""
        data = golden("transcription_stream.sse")
        assert transcribe(split_at(data, cuts)) == STREAMED

    def test_the_stream_byte_by_byte_and_with_crlf_gives_the_same_events(self) -> None:
        """One byte per call; CRLF line ends as well as LF."""
        data = golden("transcription_stream.sse")
        assert transcribe([data[i : i + 1] for i in range(len(data))]) == STREAMED
        crlf = data.replace(b"\n", b"\r\n")
        assert transcribe([crlf[i : i + 1] for i in range(len(crlf))]) == STREAMED

    def test_the_parser_is_closed_after_the_done_event(self) -> None:
        """closed turns true at transcript.text.done; later bytes are ignored."""
        parser = TranscriptionResponse()
        parser.receive_status(200, "text/event-stream")
        parser.receive_data(golden("transcription_stream.sse") + b"data: junk\n\n")
        assert parser.closed and parser.events_received()[-1] == TranscriptDone(SENTENCE)

    @pytest.mark.parametrize(
        ("name", "ctype", "message"),
        [
            ("transcription_invalid.json", "application/json", "no string 'text'"),
            ("transcription_truncated.json", "application/json", "not JSON"),
            ("transcription_stream_invalid.sse", "text/event-stream", "no string 'delta'"),
            ("transcription_stream_truncated.sse", "text/event-stream", "not JSON"),
        ],
    )
    def test_invalid_and_truncated_answers_are_protocol_errors(
        self, name: str, ctype: str, message: str
    ) -> None:
        """Wrong types and cut-off bodies raise ProviderProtocolError saying what is wrong."""
        with pytest.raises(ProviderProtocolError, match=message):
            transcribe([golden(name)], ctype)

    def test_a_stream_that_ends_between_events_is_a_protocol_error(self) -> None:
        """Deltas but no transcript.text.done: the transcript is incomplete."""
        data = golden("transcription_stream.sse").split(b'data: {"type":"transcript.text.done')[0]
        with pytest.raises(ProviderProtocolError, match="ended before"):
            transcribe([data])

    def test_done_marker_before_the_transcript_is_a_protocol_error(self) -> None:
        """data: [DONE] with no transcript.text.done before it."""
        with pytest.raises(ProviderProtocolError, match="DONE"):
            transcribe([b"data: [DONE]\n\n"])

    def test_an_error_event_in_the_stream_is_an_api_error(self) -> None:
        """{"type": "error", "error": {...}} in mid-stream ends it with an ApiError."""
        body = b'data: {"type":"transcript.text.delta","delta":"He"}\n\n' + (
            b'data: {"type":"error","error":{"message":"overloaded","type":"server_error"}}\n\n'
        )
        assert transcribe([body]) == [
            TranscriptDelta("He"),
            ApiError(200, "overloaded", "server_error"),
        ]

    @pytest.mark.parametrize(
        ("name", "status", "expected"),
        [
            ("error_401.json", 401, ("invalid_request_error", "invalid_api_key", "")),
            ("error_429.json", 429, ("requests", "rate_limit_exceeded", "")),
            (
                "error_400_audio_too_short.json",
                400,
                ("invalid_request_error", "audio_too_short", "file"),
            ),
        ],
    )
    def test_error_statuses_give_the_documented_error_fields(
        self, name: str, status: int, expected: tuple[str, str, str]
    ) -> None:
        """{"error": {message, type, param, code}} becomes an ApiError with each field."""
        (event,) = transcribe([golden(name)], "application/json", status)
        assert isinstance(event, ApiError)
        assert (event.type, event.code, event.param) == expected and event.status == status
        assert event.message == json.loads(golden(name))["error"]["message"]

    @pytest.mark.parametrize("name", ["error_401_truncated.json", "error_invalid.html"])
    def test_error_bodies_that_are_not_the_json_shape_are_quoted(self, name: str) -> None:
        """A cut or HTML error body is still an ApiError, carrying the text."""
        error = error_from_body(502, golden(name))
        assert error.status == 502 and error.message == golden(name).decode().strip()

    def test_calls_out_of_order_are_protocol_errors(self) -> None:
        """Data or end before the status, or two statuses."""
        with pytest.raises(ProviderProtocolError):
            TranscriptionResponse().receive_data(b"x")
        with pytest.raises(ProviderProtocolError):
            TranscriptionResponse().receive_eof()
        parser = TranscriptionResponse()
        parser.receive_status(200, "application/json")
        with pytest.raises(ProviderProtocolError):
            parser.receive_status(200, "application/json")

    @given(st.binary(max_size=300), st.sampled_from(["text/event-stream", "application/json"]))
    @settings(max_examples=300, deadline=None)
    def test_any_body_parses_or_raises_a_protocol_error(self, data: bytes, ctype: str) -> None:
        """Fuzz: events or ProviderProtocolError, nothing else."""
        with contextlib.suppress(ProviderProtocolError):
            transcribe([data], ctype)


class TestSpeech:
    """POST /audio/speech: the JSON request and the streamed PCM answer."""

    def test_the_request_matches_the_golden_body(self) -> None:
        """model, voice, input, response_format pcm, speed and instructions."""
        body = speech_request(
            "Hello there, how can I help?",
            model="gpt-4o-mini-tts",
            voice="coral",
            speed=1.25,
            instructions="Speak warmly.",
        )
        assert json.loads(body) == json.loads(golden("speech_request.json"))

    def test_optional_fields_are_left_out(self) -> None:
        """No speed or instructions unless given."""
        body = json.loads(speech_request("Hi.", model="tts-1", voice="alloy"))
        assert body == {
            "model": "tts-1",
            "voice": "alloy",
            "input": "Hi.",
            "response_format": "pcm",
        }

    @pytest.mark.parametrize(("text", "message"), [(" ", "empty"), ("a" * 4097, "4096")])
    def test_empty_and_overlong_text_is_refused(self, text: str, message: str) -> None:
        """The documented input is 1 to 4096 characters."""
        with pytest.raises(ValueError, match=message):
            speech_request(text, model="tts-1", voice="alloy")

    @given(st.lists(st.integers(min_value=0, max_value=5000), max_size=10))
    @settings(max_examples=200, deadline=None)
    def test_any_chunking_gives_the_same_whole_samples(self, cuts: list[int]) -> None:
        """Odd splits are held back a byte: every SpeechAudio is whole samples, none lost."""
        pcm = bytes(range(256)) * 16
        events = speech(split_at(pcm, cuts))
        assert events[-1] == SpeechDone()
        audio = [e for e in events if isinstance(e, SpeechAudio)]
        assert all(len(e.data) % 2 == 0 and e.data for e in audio)
        assert b"".join(e.data for e in audio) == pcm

    def test_audio_that_ends_in_the_middle_of_a_sample_is_a_protocol_error(self) -> None:
        """An odd byte left at the end: the stream was cut."""
        with pytest.raises(ProviderProtocolError, match="middle of a sample"):
            speech([b"\x00\x01\x02"])

    def test_an_error_status_gives_the_api_error(self) -> None:
        """400 with the documented voice error: param 'voice'."""
        (event,) = speech([golden("error_400_voice.json")], "application/json", 400)
        assert isinstance(event, ApiError) and event.param == "voice" and event.status == 400

    def test_a_json_answer_with_status_200_is_read_as_an_error(self) -> None:
        """Some proxies answer errors with 200 and JSON: not audio."""
        (event,) = speech([golden("error_429.json")], "application/json", 200)
        assert isinstance(event, ApiError) and event.code == "rate_limit_exceeded"


def test_the_protocol_module_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: audio_protocol.py and the HTTP codec import no asyncio, ssl or network lib."""
    assert_imports_without(["vbgraph.providers.openai.audio_protocol", "vbgraph.providers._http1"])
