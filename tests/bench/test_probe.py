"""Barge-in records and the join with log.turns (vbgraph.bench.probe)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.bench.conversation import synthesize
from vbgraph.bench.runner import run_bench
from vbgraph.bench.sweep import parse_sweep

from .conftest import FIXED

LONG_REPLY = (
    'llm.replies=["Sure. We have tables free on Friday evening from six until ten, and on '
    'Saturday from five, for groups of any size up to twelve people."]'
)
CHUNK_MS = 20


class TestBargeIn:
    @pytest.fixture
    def points(self, graph: Path, tmp_path: Path) -> dict[str, object]:
        """The caller's second turn starts while the bot reads its long first answer."""
        caller = synthesize(tmp_path / "barge.wav", 2, gap_s=2.5)  # turns at 1.0 s and 5.0 s
        result = run_bench(
            graph,
            [caller],
            sweeps=[parse_sweep("turn.false_interruption_ms=1000,3000")],
            overrides=[*FIXED[:3], LONG_REPLY],
        )
        return {p.point.label.rsplit("=", 1)[1]: p for p in result.points}

    def test_words_in_time_confirm_the_interruption(self, points: dict[str, object]) -> None:
        """With 3 s to wait for words, the transcript cuts the bot off."""
        (record,) = points["3000"].interruptions  # type: ignore[attr-defined]
        assert record.outcome == "interrupted"
        assert record.speech_start_s == 5.0
        # the bot pauses once speech has lasted the VAD's start_ms (200) plus
        # the turn's min_interruption_ms (300), decided at a chunk boundary
        assert record.silenced_ms is not None and abs(record.silenced_ms - 500) <= CHUNK_MS
        # it is cut when the words arrive: 1.5 s of speech, the VAD's stop, the STT
        assert record.interrupt_ms is not None
        assert abs(record.interrupt_ms - (1500 + 300 + 180)) <= CHUNK_MS

    def test_words_too_late_make_a_false_interruption(self, points: dict[str, object]) -> None:
        """With 1 s to wait, the bot resumes: outcome resumed, no Interrupt."""
        (record,) = points["1000"].interruptions  # type: ignore[attr-defined]
        assert record.outcome == "resumed"
        assert record.interrupt_ms is None and record.silenced_ms is not None

    def test_interruption_percentiles_summarize_the_records(
        self, points: dict[str, object]
    ) -> None:
        """interruption_stats has silenced and interrupt summaries."""
        stats = points["3000"].interruption_stats()  # type: ignore[attr-defined]
        assert stats["silenced"].n == 1 and stats["interrupt"].n == 1

    def test_a_turn_whose_reply_never_starts_has_no_perceived_latency(
        self, points: dict[str, object]
    ) -> None:
        """After a false interruption the answer queues behind the old one: not measured."""
        second = points["1000"].turns[1]  # type: ignore[attr-defined]
        assert second.stages["llm"] == 420.0
        assert second.stages["playout"] is None and second.stages["perceived"] is None

    def test_speech_while_the_bot_is_silent_is_not_a_barge_in(
        self, graph: Path, tmp_path: Path
    ) -> None:
        """Turns with room for the answer leave no interruption record."""
        caller = synthesize(tmp_path / "calm.wav", 3, gap_s=5.0)
        result = run_bench(graph, [caller], overrides=FIXED)
        assert result.points[0].interruptions == []
