"""A cascade through the fake servers: Deepgram → OpenAI chat → Cartesia, with a fallback LLM.

Real speech (the bundled caller recording, several turns) goes through the
Deepgram fake (which finds the utterances in the audio), the turn detector, an
LLM slot whose first provider is an OpenAI-compatible server that fails on the
second turn and whose second is another one that works, then Cartesia. Every user
turn must get exactly one spoken answer: nothing is lost to the failure.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from vbgraph.events import (
    AgentReplied,
    Event,
    ProviderSwitched,
    TranscriptReceived,
    TurnEnded,
)
from vbgraph.graph.load import loads
from vbgraph.nodes.audio_playout import AudioPlayout
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock
from vbgraph.testing.fakes.cartesia import FakeCartesia
from vbgraph.testing.fakes.deepgram import FakeDeepgram
from vbgraph.testing.fakes.openai_chat import FakeOpenAI, Script

CONVERSATION = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "conversation.wav"
SAID = ["what time do you open", "do you have oat milk", "a flat white please", "thanks bye"]


def graph(dg: FakeDeepgram, primary: FakeOpenAI, backup: FakeOpenAI, car: FakeCartesia) -> str:
    return f"""
version: 1
name: cascade
nodes:
  mic: {{type: file.source, path: "{CONVERSATION}", realtime: true}}
  vad: {{type: vad.silero, start_ms: 200, stop_ms: 400}}
  stt: {{type: stt.deepgram, url: "{dg.url}", api_key: dg-test}}
  turn: {{type: turn, stop_ms: 600, max_delay_ms: 1500}}
  llm:
    type: fallback
    ttfb_timeout_ms: 4000
    providers:
      - {{type: llm.openai, base_url: "{primary.base_url}", api_key: sk-test}}
      - {{type: llm.openai, base_url: "{backup.base_url}", api_key: sk-test}}
  tts: {{type: tts.cartesia, url: "{car.url}", api_key: sk_car_test}}
  play: {{type: audio.playout}}
  out: {{type: recorder}}
edges:
  - mic -> vad -> stt -> turn.transcript
  - turn.text -> llm -> tts -> play -> out
"""


def test_a_failing_llm_mid_conversation_loses_no_user_turn() -> None:
    """The primary's 500 on turn two: the backup answers it; every turn is answered once."""

    async def main() -> tuple[list[Event], int, int, int]:
        seen: list[Event] = []
        async with asyncio.timeout(600):
            async with (
                FakeDeepgram(SAID) as dg,
                FakeOpenAI() as primary,
                FakeOpenAI() as backup,
                FakeCartesia() as car,
            ):
                primary.script(
                    Script(pieces=["We open ", "at eight."]),
                    Script(status=500, error={"message": "boom", "type": "server_error"}),
                    *[Script(pieces=["(primary) ", "ok."]) for _ in range(4)],
                )
                backup.script(*[Script(pieces=["(backup) ", "sure."]) for _ in range(5)])
                session = Session(loads(graph(dg, primary, backup, car)).compile())
                session.bus.subscribe(Event, "test", seen.append)
                result = await session.run()
                assert result.state.finished
                play = session.nodes["play"]
                assert isinstance(play, AudioPlayout)
                played = sum(play.played_by_epoch.values())
                return seen, len(primary.requests), len(backup.requests), played

    events, to_primary, to_backup, played = VirtualClock().run(main())
    assert played > 24000  # Cartesia's audio of the replies reached the playout
    heard = [e.text for e in events if isinstance(e, TranscriptReceived) and e.final]
    assert len(heard) >= 3  # the caller's turns, recognised by the fake from the audio
    switches = [e for e in events if isinstance(e, ProviderSwitched)]
    assert len(switches) == 1 and switches[0].to_node == "llm/1"
    assert "500" in switches[0].reason or "server_error" in switches[0].reason
    answered = [e for e in events if isinstance(e, AgentReplied) and not e.interrupted and e.text]
    by_primary = [e for e in answered if e.source == "llm/0"]
    by_backup = [e for e in answered if e.source == "llm/1"]
    assert by_primary[0].text == "We open at eight."
    assert by_backup and by_backup[0].text == "(backup) sure."
    assert to_primary == 2 and to_backup >= 1
    turns = [e for e in events if isinstance(e, TurnEnded)]
    assert len(turns) == len(answered)  # one reply per user turn: none lost, none doubled
