"""stt.fake, llm.fake, tts.fake and their latency model: the same contract as the real nodes."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from nodes_support import SPEECH

from vbgraph.events import AgentReplied, Event, Metric, TranscriptReceived
from vbgraph.frames import LLMTokenFrame, TextFrame, TranscriptFrame
from vbgraph.graph.load import loads
from vbgraph.nodes._modelled import Latency, LatencySampler
from vbgraph.nodes.recorder import Recorder
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock


class TestLatencyModel:
    def test_lognormal_draws_have_the_requested_median_and_p95(self) -> None:
        """10 000 draws: p50 and p95 within 5 % of what was asked."""
        sampler = LatencySampler(Latency(p50_ms=300, p95_ms=900), seed=1, session_id="s")
        draws = sorted(sampler.draw_s() * 1000 for _ in range(10_000))
        assert statistics.median(draws) == pytest.approx(300, rel=0.05)
        assert draws[9_500] == pytest.approx(900, rel=0.05)

    def test_draws_repeat_per_seed_and_session_and_differ_across_sessions(self) -> None:
        """Reproducible runs; independent sessions."""
        model = Latency(p50_ms=100)
        a = [LatencySampler(model, 7, "a").draw_s() for _ in range(3)]
        assert a == [LatencySampler(model, 7, "a").draw_s() for _ in range(3)]
        assert LatencySampler(model, 7, "a").draw_s() != LatencySampler(model, 7, "b").draw_s()

    def test_fixed_and_uniform_stay_in_their_range(self) -> None:
        """fixed is always p50; uniform stays between p50 and p95."""
        assert LatencySampler(Latency(dist="fixed", p50_ms=80), 0, "s").draw_s() == 0.08
        uni = LatencySampler(Latency(dist="uniform", p50_ms=50, p95_ms=60), 0, "s")
        assert all(0.05 <= uni.draw_s() <= 0.06 for _ in range(200))

    def test_a_p95_below_the_median_is_refused(self) -> None:
        """A clear validation error, not a silent swap."""
        with pytest.raises(ValueError, match="p95_ms must not be below p50_ms"):
            Latency(p50_ms=300, p95_ms=100)


CASCADE = f"""
version: 1
name: modelled
nodes:
  mic: {{type: file.source, path: "{SPEECH}", realtime: true}}
  vad: {{type: vad.native}}
  stt: {{type: stt.fake, transcripts: ["first question", "second question"],
         ttfb: {{dist: fixed, p50_ms: 200}}}}
  turn: {{type: turn}}
  llm: {{type: llm.fake, replies: ["You asked: {{text}}. Here is a long answer."],
         ttft: {{dist: fixed, p50_ms: 300}}, tokens_per_s: 50}}
  tts: {{type: tts.fake, ttfb: {{dist: fixed, p50_ms: 100}}, sample_rate: 16000}}
  play: {{type: audio.playout}}
  out: {{type: log}}
edges:
  - mic -> vad -> stt -> turn.transcript
  - turn.text -> llm -> tts -> play -> out
"""


def run_cascade(graph: str = CASCADE) -> tuple[list[object], list[object]]:
    async def main() -> tuple[list[object], list[object]]:
        session = Session(loads(graph).compile())
        seen: list[object] = []
        session.bus.subscribe(Event, "test", seen.append)
        result = await session.run()
        assert result.ok, result.errors
        return seen, [session.nodes["play"]]

    return VirtualClock().run(main())


def test_a_modelled_cascade_answers_each_turn_with_the_configured_latencies() -> None:
    """Transcripts follow the script; each stage's Metric is its configured delay."""
    events, (play,) = run_cascade()
    transcripts = [e.text for e in events if isinstance(e, TranscriptReceived)]
    assert transcripts and transcripts[0] == "first question"
    replies = [e for e in events if isinstance(e, AgentReplied) and not e.interrupted]
    assert replies and replies[0].text.startswith("You asked: first question")
    metrics = {e.metric: e.value for e in events if isinstance(e, Metric)}
    assert metrics["stt.fake.ms"] == pytest.approx(200)
    assert metrics["llm.fake.ttft_ms"] == pytest.approx(300)
    assert metrics["tts.fake.ttfb_ms"] == pytest.approx(100)
    assert play.played_by_epoch  # the bot's audio was played


def test_tts_fake_audio_lasts_as_long_as_the_words_take_and_is_not_silent() -> None:
    """165 words a minute: 11 words take 4 s; the buzz is well above silence."""
    graph = """
version: 1
name: tts
nodes:
  agent: {type: agent.rules, greeting: "one two three four five six seven eight nine ten eleven."}
  tts: {type: tts.fake, sample_rate: 16000, words_per_minute: 165}
  out: {type: recorder, keep: true}
edges: [agent -> tts -> out]
"""

    async def main() -> bytes:
        session = Session(loads(graph).compile())
        await session.run()
        rec = session.nodes["out"]
        assert isinstance(rec, Recorder)
        return rec.audio()

    pcm = np.frombuffer(VirtualClock().run(main()), "<i2")
    assert len(pcm) == pytest.approx(16000 * 11 * 60 / 165, abs=16000 * 0.05)
    assert np.sqrt(np.mean(pcm.astype(float) ** 2)) > 1000


def test_frame_kinds_match_the_real_nodes() -> None:
    """Swapping is a config change: same port frame kinds as whisper, openai and piper."""
    from vbgraph.registry import default_registry

    reg = default_registry()
    for fake, real in (
        ("stt.fake", "stt.whisper"),
        ("llm.fake", "llm.openai"),
        ("tts.fake", "tts.piper"),
    ):
        f_in, f_out = reg.get(fake).inputs, reg.get(fake).outputs
        r_in, r_out = reg.get(real).inputs, reg.get(real).outputs
        assert set(f_in) == set(r_in) and set(f_out) == set(r_out), fake
        for name in f_out:
            assert f_out[name].kinds == r_out[name].kinds, (fake, name)
    assert reg.get("llm.fake").outputs["out"].kinds == (LLMTokenFrame,)
    assert reg.get("stt.fake").outputs["out"].kinds == (TranscriptFrame,)
    assert set(reg.get("tts.fake").inputs["in"].kinds) == {TextFrame, LLMTokenFrame}
