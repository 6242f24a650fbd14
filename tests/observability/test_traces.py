"""Spans of a modelled conversation: the tree (session → turns → stages and provider calls),
their times from the events, error and interruption events, trace ids in log records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import ClassVar

import pytest
from obs_support import (
    LLM_MS,
    STT_MS,
    TTS_MS,
    Run,
    attrs,
    conversation_plan,
    end,
    memory_telemetry,
    run,
    span_tree,
    start,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Metric,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.frames import Frame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, Port, frame_port
from vbgraph.observability import TraceContextFilter
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock

MS = 1_000_000
STAGE_NAMES = {"user_speech", "stt", "end_of_turn", "llm", "tts", "bot_speech"}
CLIENT_NAMES = {"transcribe", "chat llm.fake", "synthesize"}


@pytest.fixture(scope="module")
def traced() -> tuple[Run, tuple[ReadableSpan, ...]]:
    """The conversation and its finished spans."""
    telemetry, _, exporter = memory_telemetry()
    done = run(conversation_plan(), telemetry)
    assert done.result.ok, done.result.errors
    return done, exporter.get_finished_spans()


def wall0(spans: tuple[ReadableSpan, ...]) -> int:
    (session,) = [s for s in spans if s.name == "session"]
    return start(session)


def duration(span: ReadableSpan) -> int:
    return end(span) - start(span)


def turns(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.name == "turn"), key=lambda s: int(attrs(s)["vbgraph.turn.number"])
    )


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> dict[str, ReadableSpan]:
    tree = span_tree(spans)
    return {s.name: s for s in tree.get(parent.context.span_id, [])}


def nth(done: Run, kind: type, n: int, **match: object) -> int:
    """The pts of the n-th (0-based) event of ``kind`` whose fields match."""
    found = [
        e.pts
        for e in done.events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]
    return found[n]


class TestTree:
    def test_one_session_span_is_the_root_of_one_trace(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]]
    ) -> None:
        """Session span: attributes, state, and as long as the session; one trace id."""
        done, spans = traced
        roots = span_tree(spans)[None]
        assert [s.name for s in roots] == ["session"]
        session = roots[0]
        assert attrs(session) == {
            "session.id": done.result.session_id,
            "graph.name": "conversation",
            "vbgraph.session.state": "ended",
        }
        assert duration(session) == done.result.duration_ns
        assert {s.context.trace_id for s in spans} == {session.context.trace_id}

    def test_each_turn_is_a_child_of_the_session_with_a_span_per_stage_and_provider(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]]
    ) -> None:
        """Four turns; each has the six stages and three client spans, inside the turn."""
        _, spans = traced
        session = span_tree(spans)[None][0]
        found = turns(spans)
        assert [attrs(t)["vbgraph.turn.number"] for t in found] == [1, 2, 3, 4]
        for turn in found:
            assert turn.parent is not None and turn.parent.span_id == session.context.span_id
            kids = children(spans, turn)
            assert set(kids) == STAGE_NAMES | CLIENT_NAMES
            for name, kid in kids.items():
                want = SpanKind.CLIENT if name in CLIENT_NAMES else SpanKind.INTERNAL
                assert kid.kind is want, name
                assert start(turn) <= start(kid) <= end(kid) <= end(turn)

    def test_transcripts_are_left_off_spans_unless_asked_for(self) -> None:
        """record_text: the user's words and the reply become turn attributes."""
        telemetry, _, exporter = memory_telemetry(record_text=True)
        run(conversation_plan(), telemetry)
        first = turns(exporter.get_finished_spans())[0]
        assert attrs(first)["vbgraph.turn.user_text"] == "what time do you open"
        assert attrs(first)["vbgraph.turn.bot_text"] == "Sure. You said what time do you open."

    def test_the_default_leaves_what_was_said_out(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]]
    ) -> None:
        """Transcripts are personal data: not recorded by default."""
        for turn in turns(traced[1]):
            assert "vbgraph.turn.user_text" not in attrs(turn)


class TestTiming:
    @pytest.mark.parametrize("n", range(4))
    def test_stage_spans_start_and_end_at_their_events(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]], n: int
    ) -> None:
        """Session time mapped to wall time: each stage sits exactly where its events are."""
        done, spans = traced
        base = wall0(spans)
        kids = children(spans, turns(spans)[n])
        stop = nth(done, UserSpeechStopped, n)
        first_token = nth(done, Metric, n, metric="llm.fake.ttft_ms")
        expected = {
            "user_speech": (nth(done, UserSpeechStarted, n), stop),
            "stt": (stop, nth(done, TranscriptReceived, n)),
            "end_of_turn": (stop, nth(done, TurnEnded, n)),
            "llm": (nth(done, TurnEnded, n), first_token),
            "tts": (first_token, nth(done, BotSpeechStarted, n)),
            "bot_speech": (nth(done, BotSpeechStarted, n), nth(done, BotSpeechStopped, n)),
        }
        for name, (t0, t1) in expected.items():
            span = kids[name]
            assert (start(span) - base, end(span) - base) == (t0, t1), name
        assert duration(kids["llm"]) == LLM_MS * MS

    @pytest.mark.parametrize("n", range(4))
    def test_provider_spans_last_their_reported_latency_and_carry_genai_attributes(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]], n: int
    ) -> None:
        """transcribe 200 ms, synthesize 100 ms, chat from request to AgentReplied."""
        done, spans = traced
        kids = children(spans, turns(spans)[n])
        assert duration(kids["transcribe"]) == STT_MS * MS
        assert duration(kids["synthesize"]) == TTS_MS * MS
        chat = kids["chat llm.fake"]
        request = nth(done, Metric, n, metric="llm.fake.ttft_ms") - LLM_MS * MS
        assert start(chat) - wall0(spans) == request
        assert end(chat) - wall0(spans) == nth(done, AgentReplied, n)
        assert {k: v for k, v in attrs(chat).items() if k.startswith("gen_ai.")} == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "fake",
            "gen_ai.system": "fake",
            "gen_ai.request.model": "llm.fake",
        }
        assert [e.name for e in chat.events] == ["first_result"]

    def test_turn_attributes_carry_the_per_turn_latencies(
        self, traced: tuple[Run, tuple[ReadableSpan, ...]]
    ) -> None:
        """voice_to_voice on the span equals speech stop to first bot audio."""
        done, spans = traced
        for n, turn in enumerate(turns(spans)):
            v2v = (nth(done, BotSpeechStarted, n) - nth(done, UserSpeechStopped, n)) / 1e9
            assert attrs(turn)["vbgraph.turn.voice_to_voice"] == pytest.approx(v2v)
            assert attrs(turn)["vbgraph.turn.interrupted"] is False


class TestEvents:
    def test_node_errors_and_interrupts_are_events_of_the_session_span(self) -> None:
        """An injected LLM failure and a barge-in, at their session times."""
        telemetry, _, exporter = memory_telemetry()

        async def main() -> None:
            session = Session(conversation_plan("{error_turns: [0]}"), observer=telemetry)
            await session.start()
            await asyncio.sleep(12.0)  # virtual: the second turn is being spoken
            session.interrupt("test")
            await session.wait()

        VirtualClock().run(main())
        spans = exporter.get_finished_spans()
        (session,) = [s for s in spans if s.name == "session"]
        events = {e.name: e for e in session.events}
        assert set(events) == {"node_error", "interrupt"}
        error = attrs(events["node_error"])
        assert error["node.id"] == "llm" and error["error.type"] == "ModelledFault"
        assert "modelled error on request 0" in str(error["exception.message"])
        assert events["interrupt"].attributes == {"vbgraph.epoch": 1, "vbgraph.reason": "test"}
        assert events["interrupt"].timestamp - start(session) == 12_000 * MS


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Logger(Node):
    """Test node: logs one line per frame."""

    type_name: ClassVar[str] = "test.logger"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def process(self, port: str, frame: Frame) -> None:
        logging.getLogger("test.observability").info("frame %d", frame.pts)


def test_log_records_written_inside_a_session_carry_its_trace_id() -> None:
    """TraceContextFilter: the session span is current in the session's tasks."""
    telemetry, _, exporter = memory_telemetry()
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Logger)
    g = Graph("logs")
    g.chain(g.add("tone", duration_ms=60, chunk_ms=20), g.add("test.logger"))
    records: list[logging.LogRecord] = []
    handler = _ListHandler(records)
    handler.addFilter(TraceContextFilter())
    log = logging.getLogger("test.observability")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        run(g.compile(reg), telemetry)
        logging.getLogger("test.observability").info("outside")
    finally:
        log.removeHandler(handler)
    (session,) = exporter.get_finished_spans()
    inside = [r for r in records if r.getMessage() != "outside"]
    assert len(inside) == 3
    for record in inside:
        assert record.trace_id == format(session.context.trace_id, "032x")  # type: ignore[attr-defined]
        assert record.span_id == format(session.context.span_id, "016x")  # type: ignore[attr-defined]
    assert records[-1].trace_id == ""  # type: ignore[attr-defined]
