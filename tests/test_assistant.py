"""The offline assistant end to end: graphs/assistant.yaml on real models, in real time.

The caller is the bundled piper-spoken conversation (graphs/samples/conversation.wav, its words
and times in conversation.txt), or a short one made here for the barge-in. Whisper, piper and
the worker threads run for real, so the session runs on the real clock (~26 s + ~9 s): on the
virtual clock the recording would race ahead of the worker threads (see docs/assistant.md).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tests.conftest import ROOT, SAMPLES

from vbgraph.clock import VirtualClock
from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    TurnEnded,
)
from vbgraph.graph.load import load
from vbgraph.io.wav import read_wav
from vbgraph.node import Node
from vbgraph.nodes.agent_rules import AgentRules
from vbgraph.nodes.audio_playout import AudioPlayout
from vbgraph.runtime.session import Session, SessionResult

pytest.importorskip("faster_whisper")
pytest.importorskip("piper")

pytestmark = pytest.mark.model

GRAPH = ROOT / "graphs" / "assistant.yaml"
NS = 1_000_000_000
RATE = 22050  # conversation.wav is at the voice's rate


@dataclass
class Run:
    result: SessionResult
    nodes: dict[str, Node]
    events: list[Event]
    out: Path

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]

    def lines(self) -> list[dict[str, Any]]:
        text = (self.out / "transcript.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]


def run_assistant(mic: Path, out: Path, overrides: tuple[str, ...] = ()) -> Run:
    env = {"INPUT": str(mic), "OUTPUT": str(out), "QUIET": "true"}
    plan = load(GRAPH, overrides=list(overrides), env=env).compile()

    async def main() -> Run:
        session = Session(plan)
        listener = session.events(capacity=100_000)
        result = await session.run()
        return Run(result, dict(session.nodes), list(listener.drain()), out)

    # Virtual time: deterministic. It holds still while Whisper and piper run in
    # their threads, so model compute takes no session time here (latency figures
    # come from benchmarks/bench_assistant.py on the real clock).
    return VirtualClock().run(main())


def words(text: str) -> list[str]:
    cleaned = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower())
    return cleaned.replace("'", "").split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def script_lines(path: Path) -> list[tuple[float, float, str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    return [(float(a), float(b), text) for a, b, text in rows]


def generator() -> ModuleType:
    path = SAMPLES / "make_conversation.py"
    spec = importlib.util.spec_from_file_location("make_conversation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rms(audio: np.ndarray[Any, Any], start_s: float, end_s: float) -> float:
    part = audio[int(start_s * RATE) : int(end_s * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(part**2))) if part.size else 0.0


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_assistant(SAMPLES / "conversation.wav", tmp_path_factory.mktemp("assistant"))


EXPECTED_INTENTS = ["hours", "booking", "booking_name", "goodbye"]


class TestTheBundledConversation:
    def test_the_session_ends_cleanly(self, conversation: Run) -> None:
        assert conversation.result.ok, conversation.result.errors
        assert conversation.result.state.value == "ended"

    def test_the_assistant_hears_the_right_words(self, conversation: Run) -> None:
        script = script_lines(SAMPLES / "conversation.txt")
        heard = [e.text for e in conversation.of(TurnEnded) if e.text]
        assert len(heard) == len(script)
        for (_, _, said), text in zip(script, heard, strict=True):
            assert wer(said, text) <= 0.25, (said, text)

    def test_each_turn_gets_its_intent(self, conversation: Run) -> None:
        replies = conversation.of(AgentReplied)
        assert replies[0].intent == "greeting"
        assert [r.intent for r in replies[1:]] == EXPECTED_INTENTS
        assert "Peter" in replies[3].text and "Friday evening" in replies[3].text

    def test_the_bot_speaks_after_each_turn_never_over_the_caller(self, conversation: Run) -> None:
        script = script_lines(SAMPLES / "conversation.txt")
        starts = [e.pts / NS for e in conversation.of(BotSpeechStarted)]
        stops = [e.pts / NS for e in conversation.of(BotSpeechStopped)]
        assert len(starts) == len(stops) == len(script) + 1  # the greeting, then each answer
        assert not any(e.interrupted for e in conversation.of(BotSpeechStopped))
        spans = list(zip(starts, stops, strict=True))
        for (_, user_end, _), bot in zip(script, spans[1:], strict=True):
            assert user_end < bot[0] < user_end + 1.5  # answered within 1.5 s
        for user_start, user_end, _ in script:  # no bot audio over the caller's words
            assert all(b <= user_start or a >= user_end for a, b in spans), (spans, script)
        fmt, data = read_wav(conversation.out / "conversation.wav")
        assert fmt.rate == RATE and fmt.channels == 1
        audio = np.frombuffer(data, dtype="<i2")
        assert len(audio) / RATE >= script[-1][1]
        for start, stop in spans:  # the bot's speech is in the file where it was played
            assert rms(audio, start + 0.1, min(stop, start + 1.0)) > 300
        for (_, user_end, _), (bot_start, _) in zip(script, spans[1:], strict=True):
            assert rms(audio, user_end + 0.05, bot_start - 0.02) < 30  # the wait is silent

    def test_one_transcript_line_per_turn_with_latencies_in_order(self, conversation: Run) -> None:
        lines = conversation.lines()
        assert [line["intent"] for line in lines] == EXPECTED_INTENTS
        order = ("user_start_s", "user_stop_s", "transcript_s", "turn_end_s", "agent_s")
        for line in lines:
            times = [line[k] for k in (*order, "bot_start_s", "bot_stop_s")]
            assert None not in times and times == sorted(times), line
            for key in ("stt_ms", "endpointing_ms", "agent_ms", "tts_ms", "voice_to_voice_ms"):
                assert line[key] >= 0, (key, line)
            assert line["interrupted"] is False
            assert line["voice_to_voice_ms"] == pytest.approx(
                line["endpointing_ms"] + line["agent_ms"] + line["tts_ms"], abs=0.2
            )


def test_a_barge_in_cuts_the_reply_and_the_context(tmp_path: Path) -> None:
    """The caller asks the next question while the bot is still answering the first."""
    mic, script = generator().make(
        tmp_path,
        turns=((0.5, "What time do you open?"), (1.9, "Where are you located?")),
        tail_s=3.5,
        name="barge_in",
    )
    r = run_assistant(mic, tmp_path / "out", ("agent.greeting=''",))
    assert r.result.ok, r.result.errors
    replies = r.of(AgentReplied)
    assert [e.intent for e in replies] == ["hours", "location"]
    (interrupt,) = r.of(Interrupt)
    assert interrupt.reason == "barge-in"
    assert interrupt.pts / NS > script[1][0]  # after the caller started the second question
    stopped = r.of(BotSpeechStopped)
    assert [e.interrupted for e in stopped] == [True, False]
    play = r.nodes["play"]
    assert isinstance(play, AudioPlayout)
    full_s = len(words(replies[0].text)) / 3.5  # the whole first answer would be ~2.5 s
    played_s = play.played_by_epoch[0] / 22050
    assert 0.1 < played_s < full_s
    agent = r.nodes["agent"]
    assert isinstance(agent, AgentRules)
    said = [m.content for m in agent.context.messages if m.role == "assistant"]
    assert len(said) == 2 and said[1] == replies[1].text
    assert said[0] and len(said[0]) < len(replies[0].text)  # only what the caller heard
    assert replies[0].text.startswith(said[0].rstrip(" .…-"))
    lines = r.lines()
    assert [(line["intent"], line["interrupted"]) for line in lines] == [
        ("hours", True),
        ("location", False),
    ]
