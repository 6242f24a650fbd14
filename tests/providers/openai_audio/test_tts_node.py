"""``tts.openai`` against the fake server on 127.0.0.1, on virtual time: streamed, interruptible."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from vbgraph.clock import VirtualClock
from vbgraph.errors import ConfigError
from vbgraph.events import Event, Interrupt, Metric, NodeError
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.providers.openai.tts_node import OpenAITTS
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.speech.text_aggregator import TextAggregator
from vbgraph.testing.fakes.openai_audio import ERROR_401, Failure, FakeOpenAIAudio, speech_pcm

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Each sentence is one request, streamed as it arrives.",
    "This is the third and last sentence of the test.",
]


class Say(Node):
    """Test source: texts as TextFrames, or as LLM tokens ``token_chars`` long, ``gap_ms`` apart."""

    type_name: ClassVar[str] = "test.say"

    class Params(NodeParams):
        texts: list[str] = Field(default_factory=list)
        token_chars: int = 0
        gap_ms: float = 0
        after_interrupt: str = Field("", description="Said once an interruption happened.")
        hold_ms: float = Field(0, description="Keep the stream open this long after the text.")

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame, LLMTokenFrame)}
    subscribes: ClassVar[tuple[type[Event], ...]] = (Interrupt,)

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.interrupted = asyncio.Event()

    def on_event(self, event: Event) -> None:
        self.interrupted.set()

    async def run(self) -> None:
        p = self.params
        assert isinstance(p, Say.Params)
        await self.say(p.texts)
        if p.after_interrupt:
            await self.interrupted.wait()
            await self.say([p.after_interrupt])
        await asyncio.sleep(p.hold_ms / 1000)

    async def say(self, texts: list[str]) -> None:
        p = self.params
        assert isinstance(p, Say.Params)
        for text in texts:
            if not p.token_chars:
                self.emit("out", TextFrame(text, epoch=self.ctx.epoch))
                await self.ctx.drain()
                continue
            for i in range(0, len(text), p.token_chars):
                self.emit("out", LLMTokenFrame(text[i : i + p.token_chars], epoch=self.ctx.epoch))
                await asyncio.sleep(p.gap_ms / 1000)


class Ear(Node):
    """Test sink: audio frames with the session epoch at arrival; may interrupt after N frames."""

    type_name: ClassVar[str] = "test.ear"

    class Params(NodeParams):
        interrupt_after: int = Field(0, description="Interrupt after this many frames (0: no).")

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[tuple[AudioFrame, int]] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        self.frames.append((frame, self.ctx.epoch))
        p = self.params
        assert isinstance(p, Ear.Params)
        if len(self.frames) == p.interrupt_after:
            self.ctx.interrupt("test barge-in")

    def audio(self, epoch: int | None = None) -> bytes:
        return b"".join(bytes(f.data) for f, _ in self.frames if epoch in (None, f.epoch))


def registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Say)
    reg.add(Ear)
    return reg


@dataclass
class Run:
    """One finished session: result, what the ear heard, the bus events, node and server."""

    result: SessionResult
    ear: Ear
    events: list[Event]
    node: OpenAITTS
    fake: FakeOpenAIAudio

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]


async def speak(
    fake: FakeOpenAIAudio,
    texts: list[str],
    say: Mapping[str, Any] | None = None,
    interrupt_after: int = 0,
    **params: Any,
) -> Run:
    """say -> tts.openai -> ear, against ``fake``."""
    g = Graph("tts")
    params.setdefault("base_url", fake.base_url)
    params.setdefault("api_key", "sk-test")
    g.chain(
        g.add("test.say", id="say", texts=texts, **dict(say or {})),
        g.add("tts.openai", id="tts", **params),
        g.add("test.ear", id="ear", interrupt_after=interrupt_after),
    )
    session = Session(g.compile(registry()), debug=True)
    listener = session.events()
    result = await session.run()
    ear, node = session.nodes["ear"], session.nodes["tts"]
    assert isinstance(ear, Ear) and isinstance(node, OpenAITTS)
    return Run(result, ear, listener.drain(), node, fake)


def serve(test: Callable[[FakeOpenAIAudio], Awaitable[Run]], **server: Any) -> Run:
    """Run ``test`` with a fresh fake server, on a virtual-time loop."""

    async def main() -> Run:
        async with FakeOpenAIAudio(**server) as fake:
            return await test(fake)

    return VirtualClock().run(main(), debug=True)


def pieces(text: str) -> list[str]:
    """What the aggregator cuts a whole message into."""
    agg = TextAggregator(3)
    return agg.push(text) + agg.flush()


class TestSpeech:
    """Text in, one request per piece, the PCM streamed out."""

    def test_each_piece_is_one_request_and_all_its_audio_comes_out(self) -> None:
        """Three sentences: three requests; the ear gets exactly the server's samples, in order."""
        r = serve(lambda f: speak(f, SENTENCES))
        assert r.result.ok, r.result.errors
        expected = [p for s in SENTENCES for p in pieces(s)]
        assert [s.input for s in r.fake.speeches] == expected
        assert all(s.completed for s in r.fake.speeches)
        assert r.ear.audio() == b"".join(speech_pcm(t) for t in expected)
        assert r.node.requests == len(expected)

    def test_the_audio_is_24_khz_mono_int16_and_not_silent(self) -> None:
        """Frames carry the fixed format; the samples have speech-like level."""
        r = serve(lambda f: speak(f, ["Hello there."]))
        assert {f.fmt for f, _ in r.ear.frames} == {AudioFormat(24000)}
        samples = np.frombuffer(r.ear.audio(), dtype="<i2").astype(np.float64)
        assert len(samples) > 24000 * 0.3 and np.sqrt(np.mean(samples**2)) > 1000

    def test_audio_streams_out_in_chunks_as_the_server_sends_them(self) -> None:
        """100 ms chunks 50 ms apart: many frames per request, arriving over time."""
        r = serve(lambda f: speak(f, [SENTENCES[0]]), chunk_interval_s=0.05)
        frames = [f for f, _ in r.ear.frames]
        assert len(frames) > 5 and len({f.samples for f in frames[:-1]}) == 1
        assert frames[0].samples == 2400

    def test_pts_count_samples_from_the_utterances_first_audio(self) -> None:
        """Within one message, each frame's pts follows from the samples before it."""
        r = serve(lambda f: speak(f, [" ".join(SENTENCES)]), chunk_interval_s=0.01)
        frames = [f for f, _ in r.ear.frames]
        t0, samples = frames[0].pts, 0
        for frame in frames:
            assert frame.pts == t0 + samples * 1_000_000_000 // 24000
            samples += frame.samples

    def test_the_request_carries_model_voice_speed_and_instructions(self) -> None:
        """As configured; response_format is always pcm."""
        r = serve(
            lambda f: speak(f, ["Hi there."], voice="coral", speed=1.5, instructions="Be calm.")
        )
        (req,) = r.fake.speeches
        assert (req.model, req.voice, req.response_format) == ("gpt-4o-mini-tts", "coral", "pcm")
        assert (req.speed, req.instructions) == (1.5, "Be calm.")
        assert len(r.ear.audio()) == len(speech_pcm("Hi there.", 1.5))

    def test_time_to_first_byte_is_published_per_request(self) -> None:
        """tts.openai.ttfb_ms: the server's 0.3 s latency, on virtual time."""
        r = serve(lambda f: speak(f, SENTENCES[:2]), latency_s=0.3)
        ttfb = [m.value for m in r.of(Metric) if m.metric == "tts.openai.ttfb_ms"]
        assert len(ttfb) == len(r.fake.speeches) and all(v == pytest.approx(300) for v in ttfb)

    def test_streamed_tokens_are_spoken_clause_then_sentences(self) -> None:
        """LLM tokens: an early first clause, then whole sentences; the tail flushes on a pause."""
        text = "Well, let me think about that. The answer is yes. And then"
        r = serve(lambda f: speak(f, [text], say={"token_chars": 3, "gap_ms": 20}))
        assert [s.input for s in r.fake.speeches] == [
            "Well, let me think about that.",
            "The answer is yes.",
            "And then",
        ]

    def test_tts1_takes_no_instructions(self) -> None:
        """instructions with tts-1 is a ConfigError at compile time."""
        g = Graph("bad")
        g.add("tts.openai", id="tts", model="tts-1", instructions="Whisper.")
        with pytest.raises(ConfigError, match="takes no instructions"):
            g.compile(registry())


class TestInterruption:
    """A barge-in closes the request in flight; nothing of the old turn comes out after."""

    def test_an_interrupt_mid_stream_closes_the_request_and_no_old_audio_follows(self) -> None:
        """The server holds after 1 chunk; the ear interrupts at it: the node closes the request."""

        async def test(fake: FakeOpenAIAudio) -> Run:
            fake.fail("speech", Failure(200, hold_after=1))
            # The session stays open 10 s: the request must close at the interrupt, not at the end.
            return await speak(fake, [SENTENCES[0]], say={"hold_ms": 10_000}, interrupt_after=1)

        r = serve(test)
        assert r.fake.disconnected_at is not None and r.fake.disconnected_at < 0.1
        (req,) = r.fake.speeches
        assert not req.completed and req.sent_bytes < req.audio_bytes
        assert r.result.interrupts == 1 and r.node.cancelled == 1
        assert r.result.ok and r.of(NodeError) == []
        assert [epoch for _, epoch in r.ear.frames] == [0]  # the frame that interrupted, no more

    def test_text_of_the_new_turn_is_spoken_after_an_interrupt(self) -> None:
        """The held request is closed (else the node would wait on it for ever), queued
        sentences of the old turn are dropped, and the new text gets its own request."""
        after = "Okay, stopping now."

        async def test(fake: FakeOpenAIAudio) -> Run:
            fake.fail("speech", Failure(200, hold_after=1))
            return await speak(fake, SENTENCES, say={"after_interrupt": after}, interrupt_after=1)

        r = serve(test)
        assert r.result.ok and r.of(NodeError) == []
        assert [s.input for s in r.fake.speeches] == [SENTENCES[0], *pieces(after)]
        assert r.fake.disconnected.is_set() and not r.fake.speeches[0].completed
        assert r.ear.audio(epoch=1) == b"".join(speech_pcm(p) for p in pieces(after))
        assert all(f.epoch >= epoch for f, epoch in r.ear.frames)


class TestErrors:
    """Failed requests: a clear NodeError per piece, and the node goes on."""

    def test_a_bad_key_gives_a_node_error_that_says_to_set_the_key(self) -> None:
        """401 with the documented JSON: node, variable and the server's message."""
        r = serve(lambda f: speak(f, ["Hello there."], api_key="sk-wrong"))
        (error,) = r.of(NodeError)
        assert (error.node_id, error.error_type) == ("tts", "ProviderError")
        assert error.phase.startswith("synthesize")
        assert "tts.openai 'tts'" in error.message and "refused the API key" in error.message
        assert "OPENAI_API_KEY" in error.message and ERROR_401["message"] in error.message
        assert r.ear.frames == []

    def test_an_unknown_voice_is_reported_naming_the_param(self) -> None:
        """The server's 400 for the voice names param 'voice' and the supported ones."""
        r = serve(lambda f: speak(f, ["Hello there."], voice="bob"))
        (error,) = r.of(NodeError)
        assert "[param 'voice']" in error.message and "'coral'" in error.message

    def test_after_a_rate_limit_the_next_piece_is_still_spoken(self) -> None:
        """429 on the first sentence: one NodeError; the second sentence plays."""

        async def test(fake: FakeOpenAIAudio) -> Run:
            fake.fail("speech", Failure(429))
            return await speak(fake, SENTENCES[:2])

        r = serve(test)
        (error,) = r.of(NodeError)
        assert "rate limited" in error.message
        assert r.ear.audio() == speech_pcm(SENTENCES[1])

    def test_a_stream_cut_off_midway_is_a_protocol_error_and_the_next_piece_plays(self) -> None:
        """The server drops the connection after 10 000 bytes of the first sentence."""

        async def test(fake: FakeOpenAIAudio) -> Run:
            fake.fail("speech", Failure(200, after_bytes=10_000))
            return await speak(fake, SENTENCES[:2])

        r = serve(test)
        (error,) = r.of(NodeError)
        assert error.error_type == "ProviderProtocolError" and "tts.openai 'tts'" in error.message
        assert r.ear.audio() == speech_pcm(SENTENCES[0])[:10_000] + speech_pcm(SENTENCES[1])

    def test_a_silent_server_times_out_on_virtual_time(self) -> None:
        """No byte for timeout_s: a ProviderConnectionError saying so."""
        r = serve(lambda f: speak(f, ["Hello there."], timeout_s=2), latency_s=30)
        (error,) = r.of(NodeError)
        assert error.error_type == "ProviderConnectionError" and "2.0 s" in error.message

    def test_a_missing_key_for_openai_fails_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No api_key and no $OPENAI_API_KEY for api.openai.com: ConfigError at start."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        r = serve(lambda f: speak(f, ["Hi."], base_url="https://api.openai.com/v1", api_key=None))
        (error,) = r.of(NodeError)
        assert (error.phase, error.error_type) == ("start", "ConfigError")
        assert "OPENAI_API_KEY" in error.message
