"""TurnTracker and classify_metric: turns assembled from scripted bus events (no OpenTelemetry)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    Metric,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.observability.turns import Turn, TurnTracker, classify_metric, metric_ns

MS = 1_000_000


def feed(script: list[tuple[float, Event]]) -> tuple[list[Turn], list[Turn]]:
    """Feed (ms, event) pairs; returns (answered, finished) turns in callback order."""
    answered: list[Turn] = []
    finished: list[Turn] = []
    tracker = TurnTracker(on_answered=answered.append, on_finished=finished.append)
    for ms, event in script:
        tracker.feed(replace(event, pts=round(ms * MS)))
    tracker.finish()
    return answered, finished


def streamed_turn(start: float, text: str) -> list[tuple[float, Event]]:
    """A turn whose streamed reply starts playing before AgentReplied (an LLM's stream)."""
    stop = start + 1000
    return [
        (start, UserSpeechStarted(source="vad")),
        (stop, UserSpeechStopped(source="vad")),
        (stop + 200, Metric(metric="stt.deepgram.ttfb_ms", value=150.0, source="stt")),
        (stop + 200, TranscriptReceived(text=text, source="stt")),
        (stop + 400, TurnEnded(text=text, source="turn")),
        (stop + 700, Metric(metric="llm.ttft_ms", value=300.0, source="llm")),
        (stop + 800, Metric(metric="tts.cartesia.ttfb_ms", value=90.0, source="tts")),
        (stop + 800, BotSpeechStarted(source="play")),
        (stop + 900, Metric(metric="llm.prompt_tokens", value=42, unit="tokens", source="llm")),
        (stop + 900, Metric(metric="llm.completion_tokens", value=7, unit="tokens", source="llm")),
        (stop + 900, AgentReplied(text="Sure.", source="llm")),
        (stop + 2000, BotSpeechStopped(source="play")),
    ]


class TestClassifyMetric:
    @pytest.mark.parametrize(
        ("name", "stage"),
        [
            ("stt.whisper.ms", "stt"),
            ("stt.fake.ms", "stt"),
            ("stt.openai.ms", "stt"),
            ("stt.deepgram.ttfb_ms", "stt"),
            ("llm.ttft_ms", "llm"),
            ("llm.fake.ttft_ms", "llm"),
            ("tts.fake.ttfb_ms", "tts"),
            ("tts.cartesia.ttfb_ms", "tts"),
            ("tts.elevenlabs.ttfb_ms", "tts"),
            ("tts.openai.ttfb_ms", "tts"),
            ("llm.prompt_tokens", "input_tokens"),
            ("llm.completion_tokens", "output_tokens"),
            ("turn.model_ms", None),
            ("queue.depth", None),
            ("stt", None),
        ],
    )
    def test_each_provider_metric_name_maps_to_its_stage_by_prefix(
        self, name: str, stage: str | None
    ) -> None:
        """The providers' names, and the ones that are not latencies."""
        assert classify_metric(name) == stage

    def test_metric_values_are_converted_by_their_unit(self) -> None:
        """ms by default; s and us too."""
        assert metric_ns(Metric(metric="x", value=1.5, unit="ms")) == 1_500_000
        assert metric_ns(Metric(metric="x", value=1.5, unit="s")) == 1_500_000_000
        assert metric_ns(Metric(metric="x", value=2.0, unit="us")) == 2_000
        assert metric_ns(Metric(metric="x", value=2.0, unit="")) == 2_000_000


class TestTurns:
    def test_a_streamed_reply_that_plays_before_agent_replied_still_answers_the_turn(self) -> None:
        """Bot audio after the first token counts; v2v and the stage times follow the events."""
        answered, finished = feed(streamed_turn(0, "Table for two?"))
        assert [t.number for t in answered] == [1] and finished == answered
        turn = finished[0]
        assert turn.voice_to_voice_ns == 800 * MS
        assert turn.end_of_turn_delay_ns == 400 * MS
        assert turn.first_reply == 1700 * MS and turn.agent == 1900 * MS
        assert turn.reply == "Sure." and turn.bot_stop == 3000 * MS

    def test_provider_calls_carry_their_request_and_first_result_times(self) -> None:
        """Each call starts its reported latency before its Metric event."""
        (turn,) = feed(streamed_turn(0, "Table for two?"))[1]
        assert turn.stt is not None and turn.llm is not None and turn.tts is not None
        assert (turn.stt.start, turn.stt.first) == (1050 * MS, 1200 * MS)
        assert (turn.llm.start, turn.llm.first, turn.llm.end) == (1400 * MS, 1700 * MS, 1900 * MS)
        assert (turn.llm.input_tokens, turn.llm.output_tokens) == (42, 7)
        assert (turn.tts.start, turn.tts.first) == (1710 * MS, 1800 * MS)
        assert turn.llm.source == "llm" and turn.tts.metric == "tts.cartesia.ttfb_ms"

    def test_a_greeting_is_not_a_turn_and_its_tts_is_not_counted(self) -> None:
        """No user turn yet: the bot's first words belong to no turn."""
        script: list[tuple[float, Event]] = [
            (0, AgentReplied(text="Hello.")),
            (50, Metric(metric="tts.fake.ttfb_ms", value=50.0)),
            (50, BotSpeechStarted()),
            (900, BotSpeechStopped()),
            *streamed_turn(1000, "Hi."),
        ]
        _, finished = feed(script)
        assert [t.text for t in finished] == ["Hi."]
        assert finished[0].tts is not None and finished[0].tts.first == 2800 * MS

    def test_a_barge_in_marks_the_turn_interrupted_and_the_next_turn_finishes_it(self) -> None:
        """Interrupt while the bot speaks; the next turn's end finishes the cut one."""
        first = [e for e in streamed_turn(0, "One.") if not isinstance(e[1], BotSpeechStopped)]
        script = [
            *first,
            (2500, Interrupt(epoch=1, reason="barge-in")),
            *streamed_turn(2400, "Two.")[:5],
        ]
        _, finished = feed(script)
        assert [(t.text, t.interrupted) for t in finished] == [("One.", True), ("Two.", False)]
        assert finished[1].bot_start is None and finished[1].voice_to_voice_ns is None

    def test_an_empty_turn_end_discards_the_turn(self) -> None:
        """A cough: no turn, and the numbering does not move."""
        script: list[tuple[float, Event]] = [
            (0, UserSpeechStarted()),
            (300, UserSpeechStopped()),
            (900, TurnEnded(text=" ")),
            *streamed_turn(1000, "Real."),
        ]
        _, finished = feed(script)
        assert [(t.number, t.text, t.user_start) for t in finished] == [(1, "Real.", 1000 * MS)]
