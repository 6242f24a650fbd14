"""Metrics of a modelled four-turn conversation on virtual time: names, units, attributes, values.

Every stage of the graph has a fixed latency (STT 200 ms, LLM 300 ms to the
first token, TTS 100 ms to the first byte), so each value is predicted from
the configuration or recomputed from the session's own events.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from obs_support import (
    LLM_MS,
    STT_MS,
    TTS_MS,
    Run,
    attrs,
    conversation_plan,
    histogram,
    memory_telemetry,
    metrics,
    run,
    value,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    Metric,
    NodeError,
    TurnEnded,
    UserSpeechStopped,
)
from vbgraph.observability import Telemetry
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock

S = 1e9
GEN_AI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "fake",
    "gen_ai.system": "fake",
    "gen_ai.request.model": "llm.fake",
}


@pytest.fixture(scope="module")
def exact() -> tuple[Run, InMemoryMetricReader]:
    """The conversation, every frame of every node timed."""
    telemetry, reader, _ = memory_telemetry(node_sample_interval_s=0)
    done = run(conversation_plan(), telemetry)
    assert done.result.ok, done.result.errors
    return done, reader


def turn_times(done: Run) -> list[tuple[int, int, int]]:
    """(last speech stop before it, turn end, first bot audio after it) for each turn."""
    out = []
    events = done.events
    for i, e in enumerate(events):
        if isinstance(e, TurnEnded) and e.text.strip():
            stop = max(x.pts for x in events[:i] if isinstance(x, UserSpeechStopped))
            bot = min(x.pts for x in events[i:] if isinstance(x, BotSpeechStarted))
            out.append((stop, e.pts, bot))
    return out


class TestNamesAndUnits:
    def test_every_instrument_has_its_conventional_name_and_unit(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """The names the docs list, with UCUM units; GenAI ones as the conventions say."""
        got = {name: m.unit for name, m in metrics(exact[1]).items()}
        assert got == {
            "vbgraph.node.process.duration": "s",
            "vbgraph.stt.ttfb": "s",
            "vbgraph.tts.ttfb": "s",
            "gen_ai.client.operation.time_to_first_chunk": "s",
            "gen_ai.client.operation.duration": "s",
            "vbgraph.turn.end_of_turn_delay": "s",
            "vbgraph.turn.voice_to_voice": "s",
            "vbgraph.sessions.active": "{session}",
        }


class TestProviderLatencies:
    def test_stt_ttfb_is_the_configured_latency_for_each_transcript(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """Four transcripts, 200 ms each, attributed to the STT node."""
        point = histogram(
            metrics(exact[1])["vbgraph.stt.ttfb"], node__id="stt", node__type="stt.fake"
        )
        assert point.count == 4
        assert point.sum == pytest.approx(4 * STT_MS / 1000)
        assert point.min == point.max == pytest.approx(STT_MS / 1000)

    def test_tts_ttfb_counts_every_synthesis_request(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """One value per request (two sentences a reply), each the configured 100 ms."""
        done, reader = exact
        requests = [e for e in done.events if isinstance(e, Metric) and e.metric.startswith("tts")]
        point = histogram(
            metrics(reader)["vbgraph.tts.ttfb"], node__id="tts", node__type="tts.fake"
        )
        assert point.count == len(requests) == 8
        assert point.sum == pytest.approx(len(requests) * TTS_MS / 1000)

    def test_llm_time_to_first_chunk_and_duration_follow_the_genai_conventions(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """TTFT is the configured 300 ms; the duration runs to each AgentReplied."""
        done, reader = exact
        got = metrics(reader)
        ttfc = histogram(got["gen_ai.client.operation.time_to_first_chunk"], **_k(GEN_AI))
        assert ttfc.count == 4 and ttfc.sum == pytest.approx(4 * LLM_MS / 1000)
        first = [e.pts for e in done.events if isinstance(e, Metric) and e.metric.startswith("llm")]
        replied = [e.pts for e in done.events if isinstance(e, AgentReplied)]
        expected = sum(r - (f - LLM_MS * 1_000_000) for f, r in zip(first, replied, strict=True))
        duration = histogram(got["gen_ai.client.operation.duration"], **_k(GEN_AI))
        assert duration.count == 4 and duration.sum == pytest.approx(expected / S)


class TestTurnLatencies:
    def test_voice_to_voice_per_turn_is_what_the_events_imply(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """Speech stop to first bot audio, one value per turn, in the right bucket."""
        done, reader = exact
        v2v = [(bot - stop) / S for stop, _, bot in turn_times(done)]
        point = histogram(metrics(reader)["vbgraph.turn.voice_to_voice"])
        assert point.count == len(v2v) == 4
        assert point.sum == pytest.approx(sum(v2v))
        assert point.min == pytest.approx(min(v2v)) and point.max == pytest.approx(max(v2v))
        for v in v2v:
            index = next(i for i, b in enumerate(point.explicit_bounds) if v <= b)
            assert point.bucket_counts[index] >= 1

    def test_end_of_turn_delay_is_speech_stop_to_turn_end(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """VAD hangover plus transcription plus the turn detector's wait."""
        done, reader = exact
        delays = [(end - stop) / S for stop, end, _ in turn_times(done)]
        point = histogram(metrics(reader)["vbgraph.turn.end_of_turn_delay"])
        assert point.count == 4 and point.sum == pytest.approx(sum(delays))
        assert min(delays) > STT_MS / 1000  # it waits for the words at least


class TestNodeProcessingTime:
    def test_with_no_sampling_every_delivered_frame_is_timed(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """Histogram count per node = frames its input edges delivered."""
        done, reader = exact
        metric = metrics(reader)["vbgraph.node.process.duration"]
        plan = done.session.plan
        for nid, planned in plan.nodes.items():
            delivered = sum(done.result.edges[e.name].delivered for e in plan.edges if e.dst == nid)
            if not delivered:
                continue
            point = histogram(metric, node__id=nid, node__type=planned.cls.type_name)
            assert point.count == delivered, nid

    def test_an_async_node_is_timed_to_the_end_of_its_reply(
        self, exact: tuple[Run, InMemoryMetricReader]
    ) -> None:
        """llm.fake's process runs from the turn's text to its AgentReplied."""
        done, reader = exact
        ends = [e.pts for e in done.events if isinstance(e, TurnEnded)]
        replied = [e.pts for e in done.events if isinstance(e, AgentReplied)]
        expected = sum(r - t for t, r in zip(ends, replied, strict=True)) / S
        point = histogram(
            metrics(reader)["vbgraph.node.process.duration"], node__id="llm", node__type="llm.fake"
        )
        assert point.sum == pytest.approx(expected, abs=1e-3)

    def test_sampling_times_about_one_frame_per_interval_per_node(self) -> None:
        """Default 1 s: the 50 frames/s VAD gets ~one timed frame per second of audio."""
        telemetry, reader, _ = memory_telemetry(node_sample_interval_s=1.0)
        done = run(conversation_plan(), telemetry)
        point = histogram(
            metrics(reader)["vbgraph.node.process.duration"],
            node__id="vad",
            node__type="vad.native",
        )
        seconds = done.result.duration_ns / S
        assert math.floor(seconds * 0.9) <= point.count <= math.ceil(seconds) + 1
        assert point.sum > 0


class TestSessionsErrorsDrops:
    def test_active_sessions_and_queue_depth_are_seen_while_the_session_runs(self) -> None:
        """1 active while running, 0 after; queue edges report a depth while live."""
        telemetry, reader, _ = memory_telemetry()

        async def main() -> tuple[float, set[str], float, int]:
            session = Session(conversation_plan(), observer=telemetry)
            await session.start()
            await asyncio.sleep(6.0)  # virtual: the first turn is under way
            mid = metrics(reader)
            live = value(mid["vbgraph.sessions.active"])
            edges = {
                str(attrs(p)["edge.name"]) for p in mid["vbgraph.edge.queue.depth"].data.data_points
            }
            await session.wait()
            after = metrics(reader)
            depth_points = (
                len(after["vbgraph.edge.queue.depth"].data.data_points)
                if "vbgraph.edge.queue.depth" in after
                else 0
            )
            return live, edges, value(after["vbgraph.sessions.active"]), depth_points

        live, edges, after, depth_after = VirtualClock().run(main())
        plan = conversation_plan()
        queued = {e.name for e in plan.edges if plan.nodes[e.dst].cls.is_async()}
        assert live == 1 and after == 0
        assert edges == queued and depth_after == 0

    def test_node_errors_and_interruptions_are_counted_with_their_attributes(self) -> None:
        """An injected LLM failure and one barge-in, with drops by reason as the edges count."""
        telemetry, reader, _ = memory_telemetry()

        async def main() -> Run:
            session = Session(conversation_plan("{error_turns: [1]}"), observer=telemetry)
            events: list[object] = []
            session.bus.subscribe(NodeError, "test", events.append)
            await session.start()
            await asyncio.sleep(8.0)  # virtual: the bot is answering the first turn
            session.interrupt("test")
            result = await session.wait()
            return Run(result, [], session)

        done = VirtualClock().run(main())
        got = metrics(reader)
        (error,) = done.result.errors
        assert error.node_id == "llm" and error.error_type == "ModelledFault"
        errors = got["vbgraph.node.errors"]
        assert errors.unit == "{error}"
        assert (
            value(
                errors, {"node.id": "llm", "node.type": "llm.fake", "error.type": "ModelledFault"}
            )
            == 1
        )
        assert done.result.interrupts == 1
        assert value(got["vbgraph.interruptions"]) == 1
        dropped = {
            (str(attrs(p)["edge.name"]), str(attrs(p)["reason"])): value(
                got["vbgraph.edge.dropped"], attrs(p)
            )
            for p in got["vbgraph.edge.dropped"].data.data_points
        }
        expected = {
            (name, reason): getattr(stats, field)
            for name, stats in done.result.edges.items()
            for field, reason in (
                ("drops", "overflow"),
                ("stale", "stale"),
                ("flushed", "flushed"),
                ("failed", "failed"),
            )
            if getattr(stats, field)
        }
        assert dropped == expected and expected  # the interruption flushed or staled frames


def _k(attrs: dict[str, str]) -> dict[str, str]:
    return {k.replace(".", "__"): v for k, v in attrs.items()}


def test_a_telemetry_without_providers_watches_nothing() -> None:
    """No meter and no tracer: sessions run unobserved (no watch is made)."""
    telemetry = Telemetry()
    done = run(conversation_plan(), telemetry)
    assert done.result.ok and telemetry.watch(done.session) is None
