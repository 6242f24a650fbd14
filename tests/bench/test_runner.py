"""Running conversations through graphs on the virtual clock (vbgraph.bench.runner)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from vbgraph.bench.conversation import Conversation, load_conversation, synthesize
from vbgraph.bench.runner import BenchOptions, plan_for, run_bench, run_point
from vbgraph.bench.sweep import parse_sweep
from vbgraph.errors import ConfigError

from .conftest import FIXED, SAMPLE

CHUNK_MS = 20  # file.source's frames: the VAD decides once per chunk


class TestStages:
    def test_stages_equal_the_configured_fixed_latencies(
        self, graph: Path, caller: Conversation
    ) -> None:
        """stt, llm and tts measure exactly the modelled providers' fixed delays."""
        # asyncio debug mode on: the bench's own tasks and callbacks are checked too
        result = run_point(graph, [caller], overrides=FIXED, options=BenchOptions(debug=True))
        turns = result.turns
        assert len(turns) == 4
        for turn in turns:
            s = turn.stages
            assert (s["stt"], s["llm"], s["tts"]) == (180.0, 420.0, 95.0)
            assert s["playout"] == 0.0
            # the VAD's hangover (stop_ms 300), decided at a chunk boundary
            assert s["vad"] is not None and abs(s["vad"] - 300) <= CHUNK_MS
            # a complete sentence ends the turn min_delay_ms (200) after the VAD's stop
            assert s["turn"] == pytest.approx(200 - 180)
            parts = [s[k] for k in ("vad", "stt", "turn", "llm", "tts", "playout")]
            assert s["perceived"] == pytest.approx(sum(p for p in parts if p is not None))

    def test_a_latency_setting_moves_only_its_own_stage(
        self, graph: Path, caller: Conversation
    ) -> None:
        """Sweeping the LLM's fixed TTFT shifts llm and perceived by the same amount."""
        sweep = parse_sweep("llm.ttft.p50_ms=200,700")
        result = run_bench(graph, [caller], sweeps=[sweep], overrides=FIXED)
        low, high = (p.stages() for p in result.points)
        assert (low["llm"].p50, high["llm"].p50) == (200.0, 700.0)
        assert high["perceived"].p50 - low["perceived"].p50 == pytest.approx(500.0)
        assert high["stt"].p50 == low["stt"].p50 == 180.0

    def test_the_script_gives_each_turn_its_words_and_true_end(
        self, graph: Path, caller: Conversation
    ) -> None:
        """The modelled STT says the scripted words; speech_end_s is the script's end."""
        result = run_point(graph, [caller], overrides=FIXED)
        assert [t.log["user"] for t in result.turns] == caller.texts
        assert [t.speech_end_s for t in result.turns] == [t.end_s for t in caller.turns]


class TestSessions:
    def test_a_100_turn_sweep_runs_quickly_on_the_virtual_clock(
        self, graph: Path, tmp_path: Path
    ) -> None:
        """2 points x 2 sessions x 25 turns: 100 turns of ~2 min calls in seconds."""
        caller = synthesize(tmp_path / "long.wav", 25)
        t0 = time.perf_counter()
        result = run_bench(
            graph,
            [caller],
            sweeps=[parse_sweep("turn.stop_ms=300,600")],
            options=BenchOptions(sessions=2),
        )
        wall = time.perf_counter() - t0
        assert sum(len(p.turns) for p in result.points) == 100
        assert all(s.ok for p in result.points for s in p.sessions)
        session_seconds = sum(p.resources.audio_s for p in result.points)
        assert session_seconds > 4 * 130  # four sessions of a 137 s call
        assert wall < 30, f"a 100-turn sweep took {wall:.1f} s"

    def test_session_i_draws_the_same_latencies_at_every_point(
        self, graph: Path, caller: Conversation
    ) -> None:
        """Common random numbers: a setting that does not touch STT leaves stt unchanged."""
        sweep = parse_sweep("tts.ttfb.p95_ms=300,600")
        result = run_bench(graph, [caller], sweeps=[sweep], options=BenchOptions(sessions=3))
        a, b = ([t.stages["stt"] for t in p.turns] for p in result.points)
        assert a == b
        assert len(set(a)) > 1  # and the draws do vary, between turns and sessions

    def test_sessions_cycle_over_the_conversations(self, graph: Path, tmp_path: Path) -> None:
        """Session i plays conversation i mod len(conversations)."""
        one = synthesize(tmp_path / "one.wav", 1)
        two = synthesize(tmp_path / "two.wav", 2)
        result = run_point(graph, [one, two], options=BenchOptions(sessions=3))
        assert [(s.conversation, len(s.turns)) for s in result.sessions] == [
            ("one", 1),
            ("two", 2),
            ("one", 1),
        ]

    def test_staggered_sessions_still_measure_from_their_own_start(
        self, graph: Path, caller: Conversation
    ) -> None:
        """Each session's clock starts with it: stages do not shift with the stagger."""
        result = run_point(
            graph, [caller], options=BenchOptions(sessions=2, stagger_s=3.7), overrides=FIXED
        )
        first, second = (s.turns for s in result.sessions)
        assert [t.stages for t in first] == [t.stages for t in second]

    def test_a_failing_session_is_reported_not_raised(
        self, graph: Path, caller: Conversation
    ) -> None:
        """A provider that fails at start fails its session; the point still returns."""
        result = run_point(graph, [caller], overrides=["llm.faults.start=true"])
        (session,) = result.sessions
        assert not session.ok and session.state == "failed"
        assert any("modelled connection failure" in e for e in session.errors)
        assert session.turns == []

    def test_resources_are_measured(self, graph: Path, caller: Conversation) -> None:
        """CPU, wall time, audio seconds and memory come with every point."""
        r = run_point(graph, [caller], options=BenchOptions(sessions=2)).resources
        assert r.audio_s == pytest.approx(2 * caller.duration_s, rel=0.2)
        assert r.cpu_s > 0 and r.wall_s > 0 and r.peak_rss_mb > 10
        assert 0 < r.cpu_per_audio_s < 1


class TestWiring:
    def test_a_graph_without_log_turns_gets_one(self, tmp_path: Path, caller: Conversation) -> None:
        """The bench adds log.turns when the graph has none."""
        src = Path(__file__).resolve().parents[2] / "graphs" / "modelled.yaml"
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
        del data["nodes"]["turns"]
        data["nodes"]["mic"]["path"] = "unused.wav"  # the bench points it at the caller
        data["edges"] = [e.replace(" -> turns", "") for e in data["edges"]]
        bare = tmp_path / "bare.yaml"
        bare.write_text(yaml.safe_dump(data), encoding="utf-8")
        plan = plan_for(bare, caller)
        assert "bench_turns" in plan.nodes
        assert [n.type_name for n in plan.nodes.values()].count("log.turns") == 1
        assert len(run_point(bare, [caller]).turns) == 4

    def test_the_file_source_plays_the_conversation_at_real_time(
        self, graph: Path, caller: Conversation
    ) -> None:
        """Whatever the graph says, mic plays the given WAV, paced."""
        plan = plan_for(graph, caller)
        params = plan.nodes["mic"].params
        assert Path(str(params.path)) == caller.wav.resolve()  # type: ignore[attr-defined]
        assert params.realtime is True  # type: ignore[attr-defined]

    def test_a_graph_without_a_file_source_is_refused(self, caller: Conversation) -> None:
        """Transport graphs are for vbgraph serve; the error says what to use."""
        server = Path(__file__).resolve().parents[2] / "graphs" / "modelled_server.yaml"
        with pytest.raises(ConfigError, match=r"file\.source"):
            plan_for(server, caller)

    def test_a_bad_override_names_the_node(self, graph: Path, caller: Conversation) -> None:
        """Sweeping a node that does not exist fails before running."""
        with pytest.raises(ConfigError, match="no node 'nope'"):
            run_point(graph, [caller], overrides=["nope.x=1"])

    def test_no_conversation_is_refused(self, graph: Path) -> None:
        """run_point needs something to play."""
        with pytest.raises(ConfigError, match="at least one conversation"):
            run_point(graph, [])

    def test_the_bundled_sample_runs_with_its_script(self, graph: Path) -> None:
        """graphs/samples/conversation.wav: four answered turns."""
        result = run_point(graph, [load_conversation(SAMPLE)])
        assert len(result.turns) == 4
        assert all(t.stages["perceived"] is not None for t in result.turns)
