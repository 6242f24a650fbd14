"""The ``tts.cartesia`` node against the fake Cartesia server, on virtual time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from vbgraph.agent.context import ConversationContext, HeardTracker
from vbgraph.clock import VirtualClock
from vbgraph.errors import ConfigError
from vbgraph.events import BotSpeechStarted, BotTextPlayed, Event, Interrupt, Metric
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.providers.cartesia.node import TtsCartesia
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session
from vbgraph.speech.text_aggregator import TextAggregator
from vbgraph.testing.fakes.cartesia import FakeCartesia, word_timestamps

KEY = "sk_car_test"


class Say(Node):
    """Test source: texts as TextFrames (or tokens), with pauses; more after an interrupt."""

    type_name: ClassVar[str] = "test.say"

    class Params(NodeParams):
        texts: list[str] = Field(default_factory=list)
        token_chars: int = 0
        pause_ms: float = Field(0, description="Session time between texts.")
        after_interrupt: str = ""
        hold_ms: float = 0

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
        for i, text in enumerate(p.texts):
            if i:
                await asyncio.sleep(p.pause_ms / 1000)
            if p.token_chars:
                for k in range(0, len(text), p.token_chars):
                    token = text[k : k + p.token_chars]
                    self.emit("out", LLMTokenFrame(token, epoch=self.ctx.epoch))
                    await asyncio.sleep(0.01)
            else:
                self.emit("out", TextFrame(text, epoch=self.ctx.epoch))
        if p.after_interrupt:
            await self.interrupted.wait()
            self.emit("out", TextFrame(p.after_interrupt, epoch=self.ctx.epoch))
        await asyncio.sleep(p.hold_ms / 1000)


class Ear(Node):
    """Test sink: audio frames with the session epoch at arrival; may interrupt."""

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


class Barge(Node):
    """Test node: interrupts ``after_ms`` of session time after the bot starts speaking."""

    type_name: ClassVar[str] = "test.barge"

    class Params(NodeParams):
        after_ms: float = 1000

    subscribes: ClassVar[tuple[type[Event], ...]] = (BotSpeechStarted,)

    def on_event(self, event: Event) -> None:
        p = self.params
        assert isinstance(p, Barge.Params)
        loop = asyncio.get_running_loop()
        loop.call_later(p.after_ms / 1000, self.ctx.interrupt, "barge-in")


def registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    for cls in (Say, Ear, Barge):
        reg.add(cls)
    return reg


class Run:
    """A finished session: its result, the ear's frames, the events published."""

    def __init__(self, session: Session, events: list[Event]) -> None:
        self.session = session
        self.result = session.result()
        self.events = events
        tts = session.nodes["tts"]
        assert isinstance(tts, TtsCartesia)
        self.tts = tts
        ear = session.nodes.get("ear")
        self.ear = ear if isinstance(ear, Ear) else None

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]

    def metric(self, name: str) -> list[float]:
        return [e.value for e in self.of(Metric) if e.metric == name]


async def speak(
    fake: FakeCartesia,
    texts: list[str],
    *,
    source: Mapping[str, Any] | None = None,
    ear: Mapping[str, Any] | None = None,
    playout: bool = False,
    barge_after_ms: float | None = None,
    **params: Any,
) -> Run:
    """say -> tts.cartesia [-> audio.playout] -> ear, in one session against ``fake``."""
    g = Graph("cartesia")
    say = g.add("test.say", id="say", texts=texts, **dict(source or {}))
    params.setdefault("url", fake.url)
    params.setdefault("api_key", KEY)
    tts = g.add("tts.cartesia", id="tts", **params)
    chain = [say, tts]
    if playout:
        chain.append(g.add("audio.playout", id="play", chunk_ms=20))
    chain.append(g.add("test.ear", id="ear", **dict(ear or {})))
    g.chain(*chain)
    if barge_after_ms is not None:
        g.add("test.barge", id="barge", after_ms=barge_after_ms)
    session = Session(g.compile(registry()), debug=True)
    events: list[Event] = []
    listener = session.events()

    async def collect() -> None:
        events.extend([event async for event in listener])

    collector = asyncio.create_task(collect())
    await session.run()
    await collector
    return Run(session, events)


def serve(test: Callable[[FakeCartesia], Awaitable[Run]], **fake: Any) -> Run:
    """Run ``test`` with a fake server, on a virtual clock (no real waiting)."""

    async def main() -> Run:
        async with asyncio.timeout(600), FakeCartesia(**fake) as server:  # virtual seconds
            return await test(server)

    return VirtualClock().run(main(), debug=True)


def pieces(text: str) -> list[str]:
    """The clauses tts.cartesia sends for one whole message."""
    agg = TextAggregator(3)
    return agg.push(text) + agg.flush()


def rms(data: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(data, "<i2").astype(np.float64) ** 2)))


HELLO = "Hello there, my friend. How are you today? I hope all is well."


class TestSpeaking:
    """Text in, the service's audio out (protocol notes: generation request, chunk, done)."""

    def test_text_becomes_the_services_audio_in_the_negotiated_format(self) -> None:
        """24 kHz int16 mono frames carrying exactly the bytes the server sent."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, [HELLO])

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.ear is not None
        assert {f.fmt for f, _ in r.ear.frames} == {AudioFormat(24000, 1, Encoding.PCM_S16LE)}
        audio = r.ear.audio()
        assert len(audio) == len(HELLO + " ") * 1200 * 2  # 50 ms per character at 24 kHz
        assert rms(audio) > 1000  # real sound, not silence
        pts = [f.pts for f, _ in r.ear.frames]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)

    @pytest.mark.parametrize(
        ("encoding", "rate", "fmt"),
        [
            ("pcm_mulaw", 8000, AudioFormat(8000, 1, Encoding.MULAW)),
            ("pcm_alaw", 8000, AudioFormat(8000, 1, Encoding.ALAW)),
            ("pcm_f32le", 44100, AudioFormat(44100, 1, Encoding.PCM_F32LE)),
        ],
    )
    def test_other_encodings_and_rates_come_out_as_asked(
        self, encoding: str, rate: int, fmt: AudioFormat
    ) -> None:
        """The output port's format follows the params; bytes match the server's."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, ["Good morning."], encoding=encoding, sample_rate=rate)
            assert r.ear is not None
            (cid,) = fake.completed
            assert r.ear.audio() == bytes(fake.audio[cid])
            return r

        r = serve(test)
        assert r.ear is not None and {f.fmt for f, _ in r.ear.frames} == {fmt}
        assert TtsCartesia.output_formats(r.tts.params, {}) == {"out": fmt}

    def test_the_requests_follow_the_documented_shape(self) -> None:
        """Headers, one context, continue: true per clause, then '' with continue: false."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, [HELLO], model_id="sonic-2", speed=1.1)
            (handshake,) = fake.handshakes
            assert handshake["x-api-key"] == KEY
            assert handshake["cartesia-version"] == "2026-03-01"
            reqs = fake.requests
            assert len({req["context_id"] for req in reqs}) == 1
            assert [req["continue"] for req in reqs] == [True] * (len(reqs) - 1) + [False]
            assert [req["transcript"] for req in reqs[:-1]] == [p + " " for p in pieces(HELLO)]
            assert reqs[-1]["transcript"] == ""
            for req in reqs:
                assert req["model_id"] == "sonic-2"
                assert req["voice"] == {"mode": "id", "id": "f786b574-daa5-4673-aa0c-cbe3e8534c02"}
                assert req["output_format"] == {
                    "container": "raw",
                    "encoding": "pcm_s16le",
                    "sample_rate": 24000,
                }
                assert req["add_timestamps"] is True and req["language"] == "en"
                assert req["max_buffer_delay_ms"] == 0
                assert req["generation_config"] == {"speed": 1.1}
            assert fake.rejected == []
            return r

        assert serve(test).result.ok

    def test_streamed_tokens_go_out_clause_by_clause_in_one_context(self) -> None:
        """LLM tokens are aggregated like tts.piper's; the held end is flushed at the end."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, [HELLO], source={"token_chars": 4})
            transcripts = [req["transcript"] for req in fake.requests]
            assert transcripts == [p + " " for p in pieces(HELLO)] + [""]
            assert len(fake.completed) == 1
            return r

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.ear is not None and len(r.ear.audio()) == len(HELLO + " ") * 2400

    def test_held_text_is_spoken_after_a_pause_without_waiting_for_the_end(self) -> None:
        """A clause with no end mark goes out flush_after_ms after the last token."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(
                fake, ["Let me check that for you"], source={"token_chars": 5, "hold_ms": 3000}
            )
            assert [req["continue"] for req in fake.requests] == [True, False]
            return r

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.ear is not None and r.ear.audio()
        # Spoken about 0.2 s after the last token, long before the source ends at 3 s.
        assert r.ear.frames[0][0].pts < 1_000_000_000

    def test_several_turns_share_one_socket_with_one_context_each(self) -> None:
        """Two messages: two contexts, one connection, audio in order."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, ["First answer.", "Second answer."], source={"pause_ms": 2000})
            assert fake.connections == 1 and len(fake.handshakes) == 1
            first, second = fake.completed
            assert first != second
            assert r.ear is not None
            assert r.ear.audio() == bytes(fake.audio[first]) + bytes(fake.audio[second])
            return r

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.tts.statistics().contexts == 2

    def test_the_time_to_first_audio_is_published(self) -> None:
        """tts.cartesia.ttfb_ms: first text sent to first chunk, per utterance."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, ["One.", "Two."], source={"pause_ms": 1000})

        r = serve(test, first_chunk_latency_ms=150)
        assert r.metric("tts.cartesia.ttfb_ms") == [150.0, 150.0]  # virtual time: exact

    def test_empty_text_opens_no_context(self) -> None:
        """Whitespace is not speech: nothing is sent."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, ["   ", ""])
            assert fake.requests == []
            return r

        assert serve(test).result.ok


class TestInterruption:
    """An interruption cancels the live context (protocol notes: cancel)."""

    def test_an_interruption_mid_reply_cancels_the_context_and_no_old_audio_follows(self) -> None:
        """The context is cancelled on the wire; later frames are all of the new epoch."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(
                fake,
                [HELLO],
                source={"after_interrupt": "Sure, go ahead."},
                ear={"interrupt_after": 3},
            )
            old = fake.requests[0]["context_id"]
            assert fake.cancelled == [old]
            assert old not in fake.completed
            (new,) = fake.completed
            assert r.ear is not None and r.ear.audio(epoch=1) == bytes(fake.audio[new])
            return r

        r = serve(test, chunk_interval_ms=20)
        assert r.result.ok, r.result.errors
        assert r.ear is not None
        arrivals = [(f.epoch, epoch) for f, epoch in r.ear.frames]
        assert arrivals[:3] == [(0, 0)] * 3
        assert (0, 1) not in arrivals  # nothing of the old epoch after the interrupt
        assert arrivals[3:] and set(arrivals[3:]) == {(1, 1)}
        assert r.tts.statistics().cancelled == 1

    def test_audio_already_on_the_wire_when_cancelled_is_dropped_and_counted(self) -> None:
        """A fast server has sent the whole reply; none of it is emitted after the interrupt."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, [HELLO], ear={"interrupt_after": 2})

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.ear is not None and len(r.ear.frames) == 2
        assert r.tts.statistics().stale_messages > 0

    def test_word_timestamps_tell_the_agent_what_was_heard(self) -> None:
        """Cut 1 s into playout: BotTextPlayed holds the words whose audio ended by then."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, [HELLO], playout=True, barge_after_ms=1000)

        r = serve(test)
        assert r.result.ok, r.result.errors
        sent = " ".join(p + " " for p in pieces(HELLO)).replace("  ", " ")
        expected = [w for w, _, end in word_timestamps(sent, 24000) if end <= 1.0]
        assert expected == ["Hello", "there,", "my"]
        (played,) = r.of(BotTextPlayed)
        assert (played.text, played.epoch, played.interrupted) == ("Hello there, my", 0, True)
        context = ConversationContext()
        context.add_user("hi")
        tracker = HeardTracker(context)
        tracker.reply_started(0)
        context.add_assistant(HELLO)
        for event in r.events:
            tracker.on_event(event)
        last = context.messages[-1]
        assert (last.content, last.generated) == ("Hello there, my", HELLO)

    def test_a_reply_played_to_its_end_is_published_whole(self) -> None:
        """No barge-in: BotTextPlayed(interrupted=False) with every word, once."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, [HELLO], playout=True)

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert [(e.text, e.interrupted) for e in r.of(BotTextPlayed)] == [(HELLO, False)]

    def test_without_timestamps_nothing_is_claimed(self) -> None:
        """add_timestamps: false leaves what-was-heard to the agent's estimate."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(
                fake, [HELLO], playout=True, barge_after_ms=500, add_timestamps=False
            )

        r = serve(test)
        assert r.result.ok and r.of(BotTextPlayed) == []


class TestErrors:
    """Refusals and failures are reported naming the node; the session survives."""

    def test_a_bad_key_fails_the_session_at_start_naming_the_node(self) -> None:
        """HTTP 401 on the upgrade: a NodeError that says to set the key."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, [HELLO], api_key="sk_car_wrong")

        r = serve(test)
        assert not r.result.ok
        (error,) = r.result.errors
        assert (error.node_id, error.phase, error.error_type) == ("tts", "start", "ProviderError")
        assert "tts.cartesia 'tts'" in error.message and "refused the API key" in error.message
        assert "HTTP 401" in error.message and "CARTESIA_API_KEY" in error.message

    def test_no_key_at_all_is_a_config_error_naming_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Neither api_key nor $CARTESIA_API_KEY: found at start, before any connection."""
        monkeypatch.delenv("CARTESIA_API_KEY", raising=False)

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, [HELLO], api_key=None)
            assert fake.connections == 0 and fake.rejected == []
            return r

        (error,) = serve(test).result.errors
        assert error.error_type == "ConfigError" and "CARTESIA_API_KEY" in error.message

    def test_the_key_can_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """api_key omitted: $CARTESIA_API_KEY is sent."""
        monkeypatch.setenv("CARTESIA_API_KEY", KEY)

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, ["Hi there."], api_key=None)

        assert serve(test).result.ok

    def test_a_server_error_for_a_context_is_reported_and_later_turns_still_run(self) -> None:
        """An unknown voice: the documented error message, per turn; nothing hangs."""

        async def test(fake: FakeCartesia) -> Run:
            return await speak(fake, ["One.", "Two."], source={"pause_ms": 500})

        r = serve(test, voices=["00000000-0000-0000-0000-000000000000"])
        errors = r.result.errors
        assert len(errors) == 2  # one per turn: the answer to its closing request is not repeated
        for error in errors:
            assert error.node_id == "tts" and error.phase == "synthesize"
            assert "HTTP 404" in error.message and "voice_not_found" in error.message
        assert r.tts.statistics().lost == 2

    def test_a_refused_connection_is_retried_then_reported(self) -> None:
        """Nothing listening: backoff retries (virtual time), then a clear error."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]

        async def test(fake: FakeCartesia) -> Run:
            url = f"ws://127.0.0.1:{port}/tts/websocket"
            return await speak(fake, [HELLO], url=url, reconnect_attempts=2)

        (error,) = serve(test).result.errors
        assert error.error_type == "ProviderConnectionError" and error.phase == "start"
        assert "cannot connect" in error.message and "gave up after 2 retries" in error.message

    def test_a_url_that_is_not_a_websocket_is_a_config_error(self) -> None:
        """http:// does not compile, naming the field."""
        g = Graph("bad")
        g.add("tts.cartesia", id="tts", url="http://api.cartesia.ai/tts/websocket")
        with pytest.raises(ConfigError, match="url"):
            g.compile(registry())


class TestReconnect:
    """The socket is reopened when it closes (protocol notes: idle timeout, reconnect)."""

    def test_a_mid_stream_disconnect_is_reported_and_the_next_turn_uses_a_new_socket(
        self,
    ) -> None:
        """The cut utterance is a NodeError; the next one is spoken whole after reconnecting."""

        async def test(fake: FakeCartesia) -> Run:
            fake.drop_after_chunks(3)
            r = await speak(fake, [HELLO, "Are you still there?"], source={"pause_ms": 5000})
            assert fake.dropped == 1 and fake.connections == 2
            assert r.ear is not None
            (second,) = fake.completed
            assert r.ear.audio().endswith(bytes(fake.audio[second]))
            return r

        r = serve(test)
        (error,) = r.result.errors
        assert error.phase == "connection" and error.error_type == "ProviderConnectionError"
        assert "cut short" in error.message and "tts.cartesia 'tts'" in error.message
        stats = r.tts.statistics()
        assert (stats.connections, stats.lost) == (2, 1)

    def test_a_stalled_service_is_given_up_after_timeout_s_and_the_socket_reopened(self) -> None:
        """No message for timeout_s while audio is owed: cut short, reported, reconnected."""

        async def test(fake: FakeCartesia) -> Run:
            fake.stall_after_chunks(2)
            r = await speak(fake, [HELLO, "Back again."], source={"pause_ms": 8000}, timeout_s=3)
            assert fake.stalled and fake.connections == 2
            (second,) = fake.completed
            assert r.ear is not None and r.ear.audio().endswith(bytes(fake.audio[second]))
            return r

        r = serve(test)
        (error,) = r.result.errors
        assert "cut short" in error.message and "sent nothing for 3.0 s" in error.message
        assert error.pts == pytest.approx(3e9, rel=0.01)

    def test_an_idle_close_reconnects_quietly(self) -> None:
        """The server closes a silent socket; the next turn goes out on a new one, no error."""

        async def test(fake: FakeCartesia) -> Run:
            r = await speak(fake, ["Hello.", "Still here."], source={"pause_ms": 2500})
            assert fake.connections == 3  # closed at 1 s and 2 s of silence
            assert len(fake.completed) == 2
            return r

        r = serve(test, idle_timeout_s=1.0)
        assert r.result.ok, r.result.errors

    def test_an_utterance_lost_before_any_audio_is_replayed_on_the_new_socket(self) -> None:
        """Nothing of it was heard, so it is sent again: no error, all of it spoken."""

        async def test(fake: FakeCartesia) -> Run:
            fake.drop_after_chunks(0)
            r = await speak(fake, [HELLO])
            assert fake.dropped == 1 and fake.connections == 2
            (cid,) = fake.completed
            assert r.ear is not None and r.ear.audio() == bytes(fake.audio[cid])
            assert fake.requests[-1]["context_id"] == cid
            return r

        r = serve(test)
        assert r.result.ok, r.result.errors
        assert r.ear is not None and len(r.ear.audio()) == len(HELLO + " ") * 2400
