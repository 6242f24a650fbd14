"""``tts.elevenlabs`` against the fake ElevenLabs server on 127.0.0.1, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from vbgraph.agent.context import ConversationContext, HeardTracker
from vbgraph.clock import VirtualClock
from vbgraph.dsp.g711 import ulaw_encode
from vbgraph.events import BotSpeechStarted, BotSpeechStopped, BotTextPlayed, Event, Metric
from vbgraph.frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.nodes.tts_piper import TtsPiper
from vbgraph.providers.elevenlabs.node import TtsElevenLabs
from vbgraph.providers.elevenlabs.protocol import audio_format
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.speech.text_aggregator import TextAggregator
from vbgraph.testing.fakes.elevenlabs import Connection, FakeElevenLabs, synthesize

MS_PER_CHAR = 60  # the fake's speaking rate


class Say(Node):
    """Test source: texts as TextFrames (or tokens), with gaps; more text after a barge-in."""

    type_name: ClassVar[str] = "test.el_say"

    class Params(NodeParams):
        texts: list[str] = Field(default_factory=list)
        token_chars: int = 0
        gap_s: float = 0
        after_interrupt: list[str] = Field(default_factory=list)

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame, LLMTokenFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.p = params
        assert isinstance(self.p, Say.Params)
        self.interrupted = asyncio.Event()

    def on_interrupt(self, epoch: int) -> None:
        self.interrupted.set()

    async def run(self) -> None:
        assert isinstance(self.p, Say.Params)
        for i, text in enumerate(self.p.texts):
            if i:
                await asyncio.sleep(self.p.gap_s)
            await self.say(text)
        if self.p.after_interrupt:
            await self.interrupted.wait()
            for text in self.p.after_interrupt:
                await self.say(text)

    async def say(self, text: str) -> None:
        assert isinstance(self.p, Say.Params)
        if not self.p.token_chars:
            self.emit("out", TextFrame(text, epoch=self.ctx.epoch))
            return
        epoch = self.ctx.epoch
        for i in range(0, len(text), self.p.token_chars):
            if self.ctx.epoch != epoch:
                return  # barged in: the rest of this reply is never generated
            self.emit("out", LLMTokenFrame(text[i : i + self.p.token_chars], epoch=epoch))
            await asyncio.sleep(0.01)


class Ear(Node):
    """Test sink: audio frames with the session epoch at arrival; may barge in."""

    type_name: ClassVar[str] = "test.el_ear"

    class Params(NodeParams):
        interrupt_after: int = 0

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[tuple[AudioFrame, int]] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame) and isinstance(self.params, Ear.Params)
        self.frames.append((frame, self.ctx.epoch))
        if len(self.frames) == self.params.interrupt_after:
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
    """A finished session against the fake."""

    result: SessionResult
    events: list[Event]
    tts: TtsElevenLabs
    ear: Ear
    connections: list[Connection]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]


def run(
    say: dict[str, Any],
    tts: dict[str, Any] | None = None,
    ear: dict[str, Any] | None = None,
    *,
    playout: bool = False,
    fake: dict[str, Any] | None = None,
    before: Callable[[FakeElevenLabs], None] | None = None,
) -> Run:
    """say -> tts.elevenlabs -> [audio.playout] -> ear, against a fresh fake, on virtual time."""

    async def main() -> Run:
        async with FakeElevenLabs(**(fake or {})) as server:
            if before is not None:
                before(server)
            g = Graph("tts")
            params = {"url": server.url, "api_key": "xi-test", "output_format": "pcm_16000"}
            chain = [
                g.add("test.el_say", id="say", **say),
                g.add("tts.elevenlabs", id="tts", **{**params, **(tts or {})}),
            ]
            if playout:
                chain.append(g.add("audio.playout", id="play", chunk_ms=20))
            chain.append(g.add("test.el_ear", id="ear", **(ear or {})))
            g.chain(*chain)
            session = Session(g.compile(registry()), debug=True)
            listener = session.events(capacity=100_000)
            await session.start()
            result = await session.wait()
            node, sink = session.nodes["tts"], session.nodes["ear"]
            assert isinstance(node, TtsElevenLabs) and isinstance(sink, Ear)
            return Run(result, listener.drain(), node, sink, server.connections)

    async def guarded() -> Run:
        async with asyncio.timeout(3600):  # virtual seconds: a net against endless keep-alives
            return await main()

    return VirtualClock().run(guarded(), debug=True)


def spoken(*pieces: str, fmt: str = "pcm_16000") -> bytes:
    """What the fake says for these pieces (each sent with its trailing space)."""
    rate = audio_format(fmt).rate
    pcm = b"".join(synthesize(p + " ", rate, MS_PER_CHAR) for p in pieces)
    return ulaw_encode(pcm) if fmt == "ulaw_8000" else pcm


def texts(conn: Connection) -> list[str]:
    return [text for _, text in conn.generated]


class TestSpeaking:
    """Text in, audio out (protocol doc: typical order)."""

    @pytest.mark.parametrize("fmt", ["pcm_16000", "pcm_44100", "ulaw_8000"])
    def test_text_becomes_audio_in_the_requested_format(self, fmt: str) -> None:
        """Every piece's audio arrives whole, in order, in the output_format's encoding."""
        r = run({"texts": ["Hello there. How are you?"]}, {"output_format": fmt})
        assert r.result.ok, r.result.errors
        assert {f.fmt for f, _ in r.ear.frames} == {audio_format(fmt)}
        assert r.ear.audio() == spoken("Hello there.", "How are you?", fmt=fmt)
        assert r.connections[0].query["output_format"] == fmt
        if fmt.startswith("pcm"):
            samples = np.frombuffer(r.ear.audio(), dtype="<i2").astype(np.float64)
            assert np.sqrt(np.mean(samples**2)) > 1000  # speech, not silence

    def test_frames_carry_the_epoch_and_pts_from_the_sample_count(self) -> None:
        """pts grow by each frame's duration from the utterance's first audio."""
        r = run({"texts": ["One two three."]})
        frames = [f for f, _ in r.ear.frames]
        assert frames and all(f.epoch == 0 for f in frames)
        t0 = frames[0].pts
        done = 0
        for frame in frames:
            assert frame.pts == t0 + done * 1_000_000_000 // 16000
            done += frame.samples

    def test_streamed_tokens_are_cut_like_tts_piper_cuts_them(self) -> None:
        """LLM tokens go through the same TextAggregator; each piece is flushed."""
        text = "Well, I think so. The weather today is sunny and warm. Enjoy it!"
        r = run({"texts": [text], "token_chars": 3})
        aggregator = TextAggregator(3)
        pieces = aggregator.push(text) + aggregator.flush()
        assert texts(r.connections[0]) == [p + " " for p in pieces]
        assert r.ear.audio() == spoken(*pieces)
        sends = [m for m in r.connections[0].messages if m.get("text", "").strip()]
        assert all(m["flush"] is True for m in sends)

    def test_time_to_first_audio_is_published_as_a_metric(self) -> None:
        """tts.elevenlabs.ttfb_ms: from the text being ready to the first audio."""
        r = run({"texts": ["Hi.", "Bye."], "gap_s": 2}, fake={"first_chunk_latency_s": 0.25})
        values = [e.value for e in r.of(Metric) if e.metric == "tts.elevenlabs.ttfb_ms"]
        assert values == [pytest.approx(250, abs=1), pytest.approx(250, abs=1)]

    def test_swapping_from_tts_piper_is_a_config_change(self) -> None:
        """Same port names and frame kinds, same aggregation params."""
        assert TtsElevenLabs.inputs.keys() == TtsPiper.inputs.keys()
        assert TtsElevenLabs.inputs["in"].kinds == TtsPiper.inputs["in"].kinds
        assert TtsElevenLabs.outputs.keys() == TtsPiper.outputs.keys()
        shared = {"first_clause_min_words", "flush_after_ms"}
        assert (
            shared <= TtsElevenLabs.Params.model_fields.keys() & TtsPiper.Params.model_fields.keys()
        )
        assert TtsElevenLabs.interruptible and TtsPiper.interruptible


class TestConnection:
    """One socket across turns; keep-alive; reconnects (protocol doc: inactivity, 1008)."""

    def test_turns_share_one_socket_kept_alive_over_idle_gaps(self) -> None:
        """45 s between turns: keep-alives stop the 20 s inactivity close."""
        r = run({"texts": ["First turn.", "Second turn."], "gap_s": 45})
        assert r.result.ok, r.result.errors
        [conn] = r.connections
        keepalives = [m for m in conn.messages if m == {"text": ""}]
        assert len(keepalives) >= 4
        assert texts(conn) == ["First turn. ", "Second turn. "]
        assert r.ear.audio() == spoken("First turn.", "Second turn.")
        assert conn.close_code == 1000  # close_socket when the node stops

    def test_an_idle_close_reconnects_on_the_next_turn_and_loses_nothing(self) -> None:
        """Without keep-alives the service closes with 1008; the next turn reconnects."""
        r = run({"texts": ["First turn.", "Second turn."], "gap_s": 30}, {"keepalive_s": 0})
        assert r.result.ok, r.result.errors
        first, second = r.connections
        assert first.close_code == 1008
        assert first.close_reason.startswith("input_timeout_exceeded")
        assert texts(first) == ["First turn. "] and texts(second) == ["Second turn. "]
        assert r.ear.audio() == spoken("First turn.", "Second turn.")
        assert r.tts.connects == 2

    def test_a_dropped_connection_resends_only_what_was_not_heard(self) -> None:
        """Cut after piece 1 and a bit of piece 2: pieces 2 and 3 go out again."""
        r = run(
            {"texts": ["One two three. Four five six. Seven eight nine."]},
            before=lambda fake: fake.drop_after(10),  # piece 1 is 9 chunks of 100 ms
        )
        assert r.result.ok, r.result.errors
        first, second = r.connections
        assert first.dropped
        assert texts(second) == ["Four five six. ", "Seven eight nine. "]
        tail = spoken("One two three.") + spoken("Four five six.")[:3200]  # one chunk of piece 2
        assert r.ear.audio() == tail + spoken("Four five six.", "Seven eight nine.")

    def test_a_refused_connection_is_retried_with_backoff_then_reported(self) -> None:
        """Nothing listens: the node gives up after reconnect_attempts, naming itself."""
        r = run(
            {"texts": ["Hello."]},
            {"url": "ws://127.0.0.1:9", "reconnect_attempts": 2, "prewarm": False},
        )
        [error] = r.result.errors
        assert error.node_id == "tts" and error.error_type == "ProviderConnectionError"
        assert "tts.elevenlabs 'tts'" in error.message and "after 3 attempts" in error.message
        assert r.tts.dropped_pieces == 1 and not r.ear.frames


class TestBadMessages:
    """Malformed and unknown messages from the service (protocol doc: Errors)."""

    def test_a_malformed_message_is_reported_and_skipped_an_unknown_one_counted(self) -> None:
        """The reply is still spoken whole; one NodeError names the node."""
        r = run(
            {"texts": ["Hello there."]},
            before=lambda fake: fake.inject('{"audio": "not base64!"}', '{"type": "usage"}'),
        )
        [error] = r.result.errors
        assert (error.node_id, error.phase, error.error_type) == (
            "tts",
            "receive",
            "ProviderProtocolError",
        )
        assert "tts.elevenlabs 'tts'" in error.message and "base64" in error.message
        assert (r.tts.protocol_errors, r.tts.unknown_messages) == (1, 1)
        assert r.ear.audio() == spoken("Hello there.")


class TestKeys:
    """Auth (protocol doc: Connection / Errors)."""

    @pytest.mark.parametrize("at_handshake", [False, True])
    def test_a_refused_key_is_a_clear_error_naming_the_node(self, at_handshake: bool) -> None:
        """1008 "Invalid API key" after the handshake, or HTTP 401: a NodeError, no audio."""
        r = run(
            {"texts": ["Hello there."]},
            {"api_key": "wrong"},
            fake={"reject_bad_key_at_handshake": at_handshake},
        )
        assert r.result.errors
        for error in r.result.errors:
            assert (error.node_id, error.phase) == ("tts", "connect")
            assert "tts.elevenlabs 'tts': ElevenLabs refused the API key" in error.message
            assert "$ELEVENLABS_API_KEY" in error.message
        assert not r.ear.frames and r.tts.dropped_pieces >= 1

    def test_a_missing_key_fails_start_naming_the_node_and_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No api_key and no $ELEVENLABS_API_KEY: the session does not start."""
        monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
        r = run({"texts": ["Hello."]}, {"api_key": None})
        [error] = r.result.errors
        assert (error.node_id, error.phase, error.error_type) == ("tts", "start", "ConfigError")
        assert "$ELEVENLABS_API_KEY" in error.message and not r.connections

    def test_the_key_is_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$ELEVENLABS_API_KEY goes in the xi-api-key header."""
        monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-test")
        r = run({"texts": ["Hello."]}, {"api_key": None})
        assert r.result.ok, r.result.errors
        assert r.connections[0].header_key == "xi-test"

    def test_the_key_is_redacted_in_params(self) -> None:
        """A SecretStr: repr and dumps never show it."""
        p = TtsElevenLabs.Params.model_validate({"api_key": "xi-secret"})
        assert "xi-secret" not in repr(p) and "xi-secret" not in str(p.model_dump())

    def test_keepalives_must_come_before_the_inactivity_timeout(self) -> None:
        """keepalive_s at or above the (default 20 s) timeout is a config error."""
        with pytest.raises(ValueError, match="keepalive_s"):
            TtsElevenLabs.Params.model_validate({"keepalive_s": 20})
        TtsElevenLabs.Params.model_validate({"keepalive_s": 50, "inactivity_timeout_s": 60})


class TestInterruption:
    """Barge-in: close the context, drop late audio, keep the socket."""

    def test_an_interruption_closes_the_context_drops_late_audio_and_keeps_the_socket(
        self,
    ) -> None:
        """Mid-reply barge-in: close_context, nothing old afterwards, same socket next."""
        reply = "One two three four. Five six seven eight. Nine ten eleven twelve."
        r = run(
            {"texts": [reply], "token_chars": 4, "after_interrupt": ["New."]},
            ear={"interrupt_after": 3},
            fake={"chunk_interval_s": 0.05},
        )
        assert r.result.ok, r.result.errors
        old = [f for f, _ in r.ear.frames if f.epoch == 0]
        assert len(old) == 3
        assert all(f.epoch == arrival for f, arrival in r.ear.frames)
        [conn] = r.connections
        tail = conn.messages[conn.messages.index({"text": " ", "context_id": "tts-2"}) - 1 :]
        assert tail[0] == {"close_context": True, "context_id": "tts-1"}  # sent by the interrupt
        assert "Nine" not in str(conn.messages)  # the rest of the reply never went out
        assert r.tts.stale_chunks > 0  # the fake kept flushing: late audio was dropped
        assert r.ear.audio(1) == spoken("New.")
        assert not r.of(BotTextPlayed)  # no playout here: nobody knows what was heard

    def test_alignment_tells_the_agent_what_the_caller_heard(self) -> None:
        """BotTextPlayed holds the words whose audio played before the barge-in."""
        reply = "Hello there my friend. How are you today?"
        r = run({"texts": [reply]}, ear={"interrupt_after": 50}, playout=True)
        assert r.result.ok, r.result.errors
        [start] = r.of(BotSpeechStarted)
        [stop] = r.of(BotSpeechStopped)
        assert stop.interrupted
        heard_ms = (stop.pts - start.pts) / 1e6
        said = "Hello there my friend. How are you today? "
        n = int(heard_ms // MS_PER_CHAR)
        prefix = said[:n] if said[n - 1 : n + 1].count(" ") else said[: said.rfind(" ", 0, n)]
        [played] = r.of(BotTextPlayed)
        assert played == BotTextPlayed(
            text=" ".join(prefix.split()), epoch=0, interrupted=True, pts=played.pts, source="tts"
        )
        assert played.text and reply.startswith(played.text) and played.text != reply
        # An agent's context keeps only what was heard.
        context = ConversationContext()
        context.add_user("hi")
        context.add_assistant(reply)
        tracker = HeardTracker(context)
        tracker.reply_started(0)
        for event in r.events:
            tracker.on_event(event)
        last = context.last_assistant()
        assert last is not None and (last.content, last.generated) == (played.text, reply)

    def test_a_reply_played_to_its_end_is_published_whole(self) -> None:
        """BotTextPlayed(interrupted=False) once the playout drained the reply."""
        r = run({"texts": ["Hello there. Bye now."]}, playout=True)
        assert [(e.text, e.interrupted) for e in r.of(BotTextPlayed)] == [
            ("Hello there. Bye now.", False)
        ]
