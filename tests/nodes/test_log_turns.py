"""log.turns on scripted bus events (no models): one JSON line per turn, latencies, progress."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from vbgraph.clock import VirtualClock
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
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, Port, text_port
from vbgraph.nodes.log_turns import LogTurns
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session

MS = 1_000_000
SCRIPT: list[tuple[float, Event]] = []
"""(session ms, event) the scripted source publishes, in order; set by each test."""


class EventScript(Node):
    """Publishes SCRIPT's events at their times (stamped with them), then ends."""

    type_name: ClassVar[str] = "test.event_script"
    outputs: ClassVar[Mapping[str, Port]] = {"out": text_port(doc="Nothing is sent.")}

    async def run(self) -> None:
        for ms, event in SCRIPT:
            await self.ctx.clock.sleep_until_ns(round(ms * MS))
            self.ctx.publish(event)


def _registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(EventScript)
    return reg


def run_log(
    script: list[tuple[float, Event]], tmp_path: Path, *, quiet: bool = False
) -> tuple[LogTurns, list[dict[str, object]]]:
    SCRIPT[:] = [(ms, replace(e, pts=round(ms * MS))) for ms, e in script]
    g = Graph("log_turns")
    src = g.add("test.event_script", id="script")
    log = g.add("log.turns", id="turns", path=str(tmp_path / "t.jsonl"), quiet=quiet)
    g.chain(src, log)

    async def main() -> tuple[LogTurns, bool]:
        session = Session(g.compile(_registry()), debug=True)
        result = await session.run()
        node = session.nodes["turns"]
        assert isinstance(node, LogTurns)
        return node, result.ok

    node, ok = VirtualClock().run(main(), debug=True)
    assert ok
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
    return node, [json.loads(line) for line in lines]


def one_turn(start: float, text: str, reply: str, intent: str) -> list[tuple[float, Event]]:
    """A turn: speech, stop, transcript +300, turn end +350, reply, audio +450 .. +1450."""
    stop = start + 1000
    return [
        (start, UserSpeechStarted()),
        (stop, UserSpeechStopped()),
        (stop + 300, Metric(metric="stt.whisper.ms", value=280.0, unit="ms")),
        (stop + 300, TranscriptReceived(text=text)),
        (stop + 350, AgentReplied(text=reply, intent=intent)),
        (stop + 350, TurnEnded(text=text)),
        (stop + 450, BotSpeechStarted()),
        (stop + 1450, BotSpeechStopped()),
    ]


GREETING: list[tuple[float, Event]] = [
    (0, AgentReplied(text="Hello.", intent="greeting")),
    (10, BotSpeechStarted()),
    (600, BotSpeechStopped()),
]


def test_one_line_per_turn_with_the_latency_breakdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The greeting is not a turn; each turn has its times and ms in order."""
    script = (
        GREETING
        + one_turn(1000, "What time do you open?", "We open at 8.", "hours")
        + one_turn(4000, "Where are you?", "On Harbor Street.", "location")
    )
    node, lines = run_log(script, tmp_path)
    assert [line["turn"] for line in lines] == [1, 2]
    first = lines[0]
    assert first["user"] == "What time do you open?" and first["agent"] == "We open at 8."
    assert first["intent"] == "hours" and first["interrupted"] is False
    assert first["user_start_s"] == 1.0 and first["user_stop_s"] == 2.0
    assert first["transcript_s"] == 2.3 and first["turn_end_s"] == 2.35
    assert first["agent_s"] == 2.35 and first["bot_start_s"] == 2.45
    assert first["bot_stop_s"] == 3.45
    assert first["stt_ms"] == 300 and first["stt_compute_ms"] == 280
    assert first["endpointing_ms"] == 350 and first["agent_ms"] == 0
    assert first["tts_ms"] == 100 and first["voice_to_voice_ms"] == 450
    assert first["turn_to_voice_ms"] == 100
    assert lines[1]["intent"] == "location" and lines[1]["user_start_s"] == 4.0
    assert node.turns == lines and node.written_path == tmp_path / "t.jsonl"
    out = capsys.readouterr().out.splitlines()
    assert out == [
        'turn 1: "What time do you open?" → "We open at 8." v2v 450 ms',
        'turn 2: "Where are you?" → "On Harbor Street." v2v 450 ms',
    ]


def test_quiet_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, lines = run_log(one_turn(0, "Hi.", "Hello.", "hi"), tmp_path, quiet=True)
    assert len(lines) == 1
    assert capsys.readouterr().out == ""


def test_a_barge_in_marks_the_turn_interrupted(tmp_path: Path) -> None:
    """The caller talks over the reply: the turn is cut; the next one is logged after it."""
    script = one_turn(0, "What time do you open?", "We open at 8 and close at 6.", "hours")
    script = [s for s in script if not isinstance(s[1], BotSpeechStopped)]
    script += [
        (1900, UserSpeechStarted()),
        (2300, Interrupt(epoch=1, reason="barge-in")),
        (2300, BotSpeechStopped(interrupted=True)),
    ]
    script += one_turn(1900, "Where are you?", "On Harbor Street.", "location")[1:]
    _, lines = run_log(script, tmp_path, quiet=True)
    assert [(line["intent"], line["interrupted"]) for line in lines] == [
        ("hours", True),
        ("location", False),
    ]
    assert lines[0]["bot_stop_s"] == 2.3 and lines[1]["user_start_s"] == 1.9


def test_a_discarded_turn_and_missing_steps(tmp_path: Path) -> None:
    """An empty TurnEnded (a cough) is no turn; a reply that never played has null times."""
    script: list[tuple[float, Event]] = [
        (0, UserSpeechStarted()),
        (300, UserSpeechStopped()),
        (900, TurnEnded(text="")),
        (1000, UserSpeechStarted()),
        (2000, UserSpeechStopped()),
        (2300, TranscriptReceived(text="Bye.")),
        (2300, AgentReplied(text="Goodbye!", intent="goodbye")),
        (2300, TurnEnded(text="Bye.")),
    ]
    _, lines = run_log(script, tmp_path, quiet=True)
    (line,) = lines
    assert line["user"] == "Bye." and line["user_start_s"] == 1.0
    assert line["bot_start_s"] is None and line["voice_to_voice_ms"] is None
    assert line["agent_ms"] == 0 and line["endpointing_ms"] == 300
