"""``stt.openai`` against the fake server on 127.0.0.1, fed real read speech, on virtual time."""

from __future__ import annotations

import socket
import wave
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from tests.conftest import TESTDATA

from vbgraph.clock import VirtualClock
from vbgraph.errors import ConfigError
from vbgraph.events import (
    Event,
    Metric,
    NodeError,
    TranscriptReceived,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.frames import Frame, TranscriptFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, frame_port
from vbgraph.providers.openai.stt_node import OpenAISTT
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.testing.fakes.openai_audio import ERROR_401, Failure, FakeOpenAIAudio

CLIP = TESTDATA / "sense_and_sensibility_01_austen_64kb-0880.wav"
SAID = "He was not an ill disposed young man."
with wave.open(str(CLIP)) as _w:
    CLIP_SAMPLES = _w.getnframes()
    _pcm = np.frombuffer(_w.readframes(CLIP_SAMPLES), dtype="<i2").astype(np.float64) / 32768
CLIP_DBFS = 10 * np.log10(np.mean(_pcm**2))


class Transcripts(Node):
    """Test sink: keeps transcript frames."""

    type_name: ClassVar[str] = "test.transcripts"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port(TranscriptFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[TranscriptFrame] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, TranscriptFrame)
        self.frames.append(frame)


def registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Transcripts)
    return reg


@dataclass
class Run:
    """One finished session: its result, frames, bus events and the server's records."""

    result: SessionResult
    frames: list[TranscriptFrame]
    events: list[Event]
    node: OpenAISTT
    fake: FakeOpenAIAudio

    @property
    def finals(self) -> list[str]:
        return [f.text for f in self.frames if f.final]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]


async def transcribe(
    fake: FakeOpenAIAudio,
    mic: Mapping[str, Any] | None = None,
    vad: Mapping[str, Any] | None = None,
    failures: Sequence[Failure] = (),
    **params: Any,
) -> Run:
    """mic (the clip by default) -> [vad.native ->] stt.openai -> sink, against ``fake``."""
    fake.fail("transcriptions", *failures)
    g = Graph("stt")
    spec: dict[str, Any] = {"type_name": "file.source", "path": str(CLIP)}
    spec = dict(mic) if mic and "type_name" in mic else {**spec, **(mic or {})}
    source = g.add(id="mic", **spec)
    params.setdefault("base_url", fake.base_url)
    params.setdefault("api_key", "sk-test")
    stt = g.add("stt.openai", id="stt", **params)
    if vad is not None:
        v = g.add("vad.native", id="vad", **vad)
        g.connect(source, v)
        g.connect(v["speech"], stt)
    else:
        g.connect(source, stt)
    g.connect(stt, g.add("test.transcripts", id="out"))
    session = Session(g.compile(registry()), debug=True)
    listener = session.events()
    result = await session.run()
    sink, node = session.nodes["out"], session.nodes["stt"]
    assert isinstance(sink, Transcripts) and isinstance(node, OpenAISTT)
    return Run(result, sink.frames, listener.drain(), node, fake)


def serve(test: Callable[[FakeOpenAIAudio], Awaitable[Run]], **server: Any) -> Run:
    """Run ``test`` with a fresh fake server, on a virtual-time loop."""

    async def main() -> Run:
        async with FakeOpenAIAudio(**server) as fake:
            return await test(fake)

    return VirtualClock().run(main(), debug=True)


class TestUtterances:
    """Utterances in, one upload each, transcripts out (as stt.whisper)."""

    def test_each_vad_segment_of_real_speech_is_uploaded_and_transcribed(self) -> None:
        """The clip's speech segment goes up as 16 kHz mono WAV; its transcript comes out."""
        r = serve(lambda f: transcribe(f, vad={}), transcripts=[SAID])
        assert r.result.ok, r.result.errors
        (start,), (stop,) = r.of(UserSpeechStarted), r.of(UserSpeechStopped)
        (upload,) = r.fake.transcriptions
        assert (upload.rate, upload.channels, upload.model) == (16000, 1, "gpt-4o-mini-transcribe")
        assert (upload.response_format, upload.stream, upload.language) == ("json", False, "en")
        # The speech port carries the segment, whole 20 ms frames around it.
        assert abs(upload.duration_s - (stop.pts - start.pts) / 1e9) <= 0.04
        (frame,) = r.frames
        assert frame.final and frame.text == SAID and frame.language == "en"
        assert frame.pts <= start.pts
        (heard,) = r.of(TranscriptReceived)
        assert (heard.text, heard.final, heard.speech_start_ns) == (SAID, True, frame.pts)
        assert len([m for m in r.of(Metric) if m.metric == "stt.openai.ms"]) == 1

    def test_without_a_vad_the_whole_clip_is_one_upload_of_its_exact_samples(self) -> None:
        """Length and level of the uploaded WAV are the clip's own."""
        r = serve(lambda f: transcribe(f), transcripts=[SAID])
        (upload,) = r.fake.transcriptions
        assert upload.duration_s == CLIP_SAMPLES / 16000
        assert upload.dbfs == pytest.approx(CLIP_DBFS, abs=1e-6)
        assert r.finals == [SAID]

    def test_two_utterances_are_transcribed_in_order(self) -> None:
        """The clip played twice with a short VAD hangover: two uploads, two transcripts."""
        second = "He was not an ill disposed young man, again."
        r = serve(
            lambda f: transcribe(f, mic={"loop": 2}, vad={"stop_ms": 150}),
            transcripts=[SAID, second],
        )
        assert len(r.of(UserSpeechStopped)) == 2
        assert r.finals == [SAID, second]
        assert [e.text for e in r.of(TranscriptReceived)] == [SAID, second]
        assert r.node.transcribed == 2

    def test_silence_is_uploaded_and_gives_no_transcript(self) -> None:
        """The server transcribes silence to "": no frame, no event, no error."""
        r = serve(lambda f: transcribe(f, mic={"type_name": "silence", "duration_ms": 1000}))
        (upload,) = r.fake.transcriptions
        assert upload.text == "" and upload.duration_s == 1.0
        assert r.frames == [] and r.of(TranscriptReceived) == [] and r.result.ok

    def test_float_audio_is_converted_to_16_bit_for_the_upload(self) -> None:
        """A float32 tone at -6 dBFS peak arrives as 16-bit at -9 dBFS RMS."""
        tone = {"type_name": "tone", "encoding": "pcm_f32le", "level_db": -6, "duration_ms": 500}
        r = serve(lambda f: transcribe(f, mic=tone), transcripts=["beep"])
        (upload,) = r.fake.transcriptions
        assert upload.dbfs == pytest.approx(-6 - 3.01, abs=0.05)
        assert r.finals == ["beep"]


class TestFormats:
    """Streaming and the other answer formats."""

    def test_streaming_sends_interim_text_then_the_final_transcript(self) -> None:
        """transcript.text.delta pieces become growing interim frames; done is the final."""
        r = serve(lambda f: transcribe(f, stream=True), transcripts=[SAID])
        assert r.fake.transcriptions[0].stream
        words = SAID.split()
        interim = [" ".join(words[: i + 1]) for i in range(len(words))]
        assert [(f.text, f.final) for f in r.frames] == [(t, False) for t in interim] + [
            (SAID, True)
        ]
        assert [e.final for e in r.of(TranscriptReceived)] == [False] * len(words) + [True]
        assert len({f.pts for f in r.frames}) == 1  # all stamped with the utterance start

    def test_whisper_with_text_format_and_auto_language_works(self) -> None:
        """whisper-1, response_format text, language omitted from the form."""
        r = serve(
            lambda f: transcribe(f, model="whisper-1", response_format="text", language="auto"),
            transcripts=[SAID],
        )
        (upload,) = r.fake.transcriptions
        assert (upload.model, upload.response_format, upload.language) == (
            "whisper-1",
            "text",
            None,
        )
        assert r.finals == [SAID] and r.frames[0].language is None

    def test_whisper_cannot_stream(self) -> None:
        """stream: true with whisper-1 is a ConfigError at compile time."""
        g = Graph("bad")
        g.add("stt.openai", id="stt", model="whisper-1", stream=True)
        with pytest.raises(ConfigError, match="whisper-1 does not stream"):
            g.compile(registry())


class TestErrors:
    """Failed requests: a clear NodeError, and the session goes on."""

    def test_a_bad_key_gives_a_node_error_that_says_to_set_the_key(self) -> None:
        """401 with the documented JSON: the message names node, key variable and server text."""
        r = serve(lambda f: transcribe(f, api_key="sk-wrong"))
        (error,) = r.of(NodeError)
        assert (error.node_id, error.phase, error.error_type) == (
            "stt",
            "transcribe",
            "ProviderError",
        )
        assert "stt.openai 'stt'" in error.message and "refused the API key" in error.message
        assert "OPENAI_API_KEY" in error.message and ERROR_401["message"] in error.message
        assert r.frames == [] and r.node.failures == 1 and r.fake.rejected == ["api key"]

    def test_after_a_rate_limit_the_next_utterances_are_still_transcribed(self) -> None:
        """A 429 on the first of three pieces: one NodeError, two transcripts."""
        r = serve(
            lambda f: transcribe(f, failures=[Failure(429)], max_segment_s=1.2),
            transcripts=["one", "two"],
        )
        (error,) = r.of(NodeError)
        assert "rate limited" in error.message
        assert r.finals == ["one", "two"] and len(r.fake.transcriptions) == 3

    def test_audio_too_short_is_reported_with_the_param(self) -> None:
        """A 50 ms utterance: the documented 400 audio_too_short, naming 'file'."""
        tone = {"type_name": "tone", "duration_ms": 50}
        r = serve(lambda f: transcribe(f, mic=tone))
        (error,) = r.of(NodeError)
        assert "Audio file is too short" in error.message and "[param 'file']" in error.message

    def test_a_silent_server_times_out_on_virtual_time(self) -> None:
        """No byte for timeout_s: ProviderConnectionError saying so (the fake waits 60 s)."""
        r = serve(lambda f: transcribe(f, timeout_s=5), latency_s=60)
        (error,) = r.of(NodeError)
        assert error.error_type == "ProviderConnectionError"
        assert "sent nothing for 5.0 s" in error.message

    def test_a_stream_cut_off_midway_is_a_protocol_error(self) -> None:
        """The server drops the connection inside the event stream."""
        r = serve(
            lambda f: transcribe(f, failures=[Failure(200, after_bytes=100)], stream=True),
            transcripts=[SAID],
        )
        (error,) = r.of(NodeError)
        assert error.error_type == "ProviderProtocolError" and "stt.openai 'stt'" in error.message
        assert all(not f.final for f in r.frames)

    def test_a_refused_connection_is_a_connection_error(self) -> None:
        """Nothing listening: ProviderConnectionError naming the URL."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1"
        r = serve(lambda f: transcribe(f, base_url=url))
        (error,) = r.of(NodeError)
        assert error.error_type == "ProviderConnectionError" and url in error.message


class TestKey:
    """The API key: param, environment, or none for local servers."""

    def test_a_missing_key_for_openai_fails_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No api_key and no $OPENAI_API_KEY for api.openai.com: ConfigError at start."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        r = serve(lambda f: transcribe(f, base_url="https://api.openai.com/v1", api_key=None))
        (error,) = r.of(NodeError)
        assert (error.phase, error.error_type) == ("start", "ConfigError")
        assert "OPENAI_API_KEY" in error.message and "'api_key'" in error.message
        assert r.fake.transcriptions == []

    def test_the_key_is_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """api_key omitted: $OPENAI_API_KEY is sent."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        r = serve(lambda f: transcribe(f, api_key=None), transcripts=[SAID])
        assert r.finals == [SAID]

    def test_a_local_server_needs_no_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Not api.openai.com, no key anywhere: the request goes without Authorization."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        r = serve(lambda f: transcribe(f, api_key=None), api_key=None, transcripts=[SAID])
        assert r.finals == [SAID]

    def test_the_key_never_shows_in_the_params(self) -> None:
        """The api_key param is a secret: repr and dumps hide it."""
        p = OpenAISTT.Params.model_validate({"api_key": "sk-very-secret"})
        assert "sk-very-secret" not in repr(p) and "sk-very-secret" not in str(p.model_dump())
