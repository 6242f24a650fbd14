"""fallback slots: the next provider takes over a turn when one fails; nothing is lost."""

from __future__ import annotations

import pytest
from nodes_support import SPEECH

from vbgraph.errors import ConfigError
from vbgraph.events import AgentReplied, Event, ProviderSwitched, TranscriptReceived
from vbgraph.graph.load import loads
from vbgraph.nodes._fallback_slot import FallbackMerge
from vbgraph.nodes.fallback import Fallback
from vbgraph.nodes.recorder import Recorder
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock

CONVERSATION = SPEECH.parent / "conversation.wav"
"""A caller's side of a call: several turns with pauses (graphs/samples/)."""


def graph(llm_slot: str) -> str:
    return f"""
version: 1
name: fallback-test
nodes:
  mic: {{type: file.source, path: "{CONVERSATION}", realtime: true}}
  vad: {{type: vad.native}}
  stt: {{type: stt.fake, transcripts: ["turn one", "turn two", "turn three", "turn four"],
         ttfb: {{dist: fixed, p50_ms: 50}}}}
  turn: {{type: turn}}
  llm:
{llm_slot}
  out: {{type: recorder}}
edges:
  - mic -> vad -> stt -> turn.transcript
  - turn.text -> llm
  - llm.text -> out
"""


def slot(primary_extra: str = "", backup_extra: str = "", **opts: object) -> str:
    extra = "".join(f"\n    {k}: {v}" for k, v in opts.items())
    fixed = "ttft: {dist: fixed, p50_ms: 100}"
    return f"""    type: fallback
    providers:
      - {{type: llm.fake, replies: ["primary: {{text}}"], {fixed}{primary_extra}}}
      - {{type: llm.fake, replies: ["backup: {{text}}"], {fixed}{backup_extra}}}{extra}"""


def run(text: str) -> tuple[list[Event], Session]:
    async def main() -> tuple[list[Event], Session]:
        session = Session(loads(text).compile())
        seen: list[Event] = []
        session.bus.subscribe(Event, "test", seen.append)
        await session.run()
        return seen, session

    return VirtualClock().run(main())


def replies(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, AgentReplied) and not e.interrupted]


def user_turns(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, TranscriptReceived)]


class TestCompile:
    def test_a_slot_becomes_route_providers_and_merge(self) -> None:
        """llm -> llm/0, llm/1 -> llm/out; edges out of the slot leave from the merge."""
        plan = loads(graph(slot())).compile()
        assert plan.nodes["llm"].cls is Fallback
        assert plan.nodes["llm/out"].cls is FallbackMerge
        assert plan.nodes["llm/0"].type_name == plan.nodes["llm/1"].type_name == "llm.fake"
        assert all(plan.nodes[f"llm/{i}"].start_optional for i in (0, 1))
        names = {e.name for e in plan.edges}
        assert "llm.m0_in -> llm/0.in" in names and "llm/1.text -> llm/out.m1_text" in names
        assert "llm/out.text -> out.in" in names

    def test_a_bad_provider_param_names_the_slot_and_the_provider(self) -> None:
        """The error points at providers[1] of node 'llm', with its YAML line."""
        with pytest.raises(ConfigError) as info:
            loads(graph(slot(backup_extra=", tokens_per_s: -1"))).compile()
        err = info.value
        assert err.node_id == "llm" and err.field is not None
        assert err.field.startswith("providers[1].tokens_per_s")
        assert err.location is not None and err.location.line > 10

    def test_an_unknown_provider_type_is_a_config_error(self) -> None:
        """A typo in a provider's type is found at compile time."""
        with pytest.raises(ConfigError, match=r"llm\.fakee"):
            loads(
                graph(
                    slot().replace(
                        'type: llm.fake, replies: ["backup', 'type: llm.fakee, replies: ["backup'
                    )
                )
            ).compile()


class TestSwitching:
    def test_with_no_failures_the_primary_answers_everything(self) -> None:
        """The backup is never used; no switch events."""
        events, _ = run(graph(slot()))
        assert replies(events) and all(r.startswith("primary:") for r in replies(events))
        assert not [e for e in events if isinstance(e, ProviderSwitched)]

    def test_an_error_mid_conversation_hands_that_turn_to_the_backup(self) -> None:
        """Request 1 of the primary fails: turn two is answered by the backup, none is lost."""
        events, _ = run(graph(slot(primary_extra=", faults: {error_turns: [1]}")))
        switched = [e for e in events if isinstance(e, ProviderSwitched)]
        assert switched and switched[0].from_node == "llm/0" and switched[0].to_node == "llm/1"
        assert "ModelledFault" in switched[0].reason and switched[0].replayed >= 1
        said = user_turns(events)
        answered = replies(events)
        assert answered[0] == "primary: turn one"
        assert answered[1] == "backup: turn two"
        assert len(answered) == len(said)  # every user turn got an answer

    def test_a_provider_that_never_answers_is_left_after_the_ttfb_timeout(self) -> None:
        """A stalled primary: after ttfb_timeout_ms the backup answers the same turn."""
        events, _ = run(
            graph(slot(primary_extra=", faults: {stall_turns: [0]}", ttfb_timeout_ms=800))
        )
        switched = [e for e in events if isinstance(e, ProviderSwitched)]
        assert switched and "no output within 800 ms" in switched[0].reason
        assert replies(events)[0] == "backup: turn one"
        gap = switched[0].pts - next(e.pts for e in events if isinstance(e, TranscriptReceived))
        assert gap >= 800_000_000

    def test_a_primary_that_fails_to_start_is_skipped_from_the_first_turn(self) -> None:
        """A refused connection at start: the backup serves the whole call."""
        events, _ = run(graph(slot(primary_extra=", faults: {start: true}")))
        switched = [e for e in events if isinstance(e, ProviderSwitched)]
        assert switched and switched[0].reason.startswith("start failed")
        assert replies(events) and all(r.startswith("backup:") for r in replies(events))

    def test_the_primary_is_taken_back_once_it_has_rested(self) -> None:
        """retry_after_s 0: after failing turn one, the primary answers the next turn again."""
        events, _ = run(graph(slot(primary_extra=", faults: {error_turns: [0]}", retry_after_s=0)))
        reasons = [e.reason for e in events if isinstance(e, ProviderSwitched)]
        assert reasons[-1] == "recovered"
        answered = replies(events)
        assert answered[0] == "backup: turn one" and answered[1] == "primary: turn two"

    def test_late_output_of_a_provider_switched_away_from_is_dropped_and_counted(self) -> None:
        """A slow primary (ttft 3 s) answers after the switch: not passed on, counted."""
        events, session = run(
            graph(
                slot(
                    primary_extra=", ttft: {dist: fixed, p50_ms: 3000}", ttfb_timeout_ms=500
                ).replace("ttft: {dist: fixed, p50_ms: 100}, ttft", "ttft")
            )
        )
        route, out = session.nodes["llm"], session.nodes["out"]
        assert isinstance(route, Fallback) and isinstance(out, Recorder)
        # The primary's late reply to turn one: its three tokens and its whole text.
        assert route.state.dropped_outputs == 4
        # Only the backup's replies went on (the late one is still on the bus, from llm/0).
        from_backup = [e for e in events if isinstance(e, AgentReplied) and e.source == "llm/1"]
        assert out.frames == len(from_backup) == len(user_turns(events))


@pytest.mark.model
def test_an_stt_slot_hands_the_failed_utterance_to_whisper() -> None:
    """A recogniser fails on the second utterance: its audio is replayed to Whisper, which
    cuts it by the VAD events it heard all along and transcribes it: the turn is not lost."""
    pytest.importorskip("faster_whisper")
    text = f"""
version: 1
name: stt-fallback
nodes:
  mic: {{type: file.source, path: "{CONVERSATION}", realtime: true}}
  vad: {{type: vad.silero, start_ms: 200, stop_ms: 400}}
  stt:
    type: fallback
    ttfb_timeout_ms: 3000
    providers:
      - {{type: stt.fake, transcripts: ["scripted one", "scripted two", "scripted three"],
         ttfb: {{dist: fixed, p50_ms: 50}}, faults: {{error_turns: [1]}}}}
      - {{type: stt.whisper, word_timestamps: false}}
  out: {{type: recorder}}
edges:
  - mic -> vad -> stt -> out
"""
    events, _ = run(text)
    heard = [(e.source, e.text) for e in events if isinstance(e, TranscriptReceived)]
    switched = [e for e in events if isinstance(e, ProviderSwitched)]
    assert switched and switched[0].to_node == "stt/1" and switched[0].replayed > 10
    assert heard[0] == ("stt/0", "scripted one")
    # The second utterance, recognised by Whisper from the replayed audio.
    assert heard[1][0] == "stt/1" and len(heard[1][1].split()) >= 2
