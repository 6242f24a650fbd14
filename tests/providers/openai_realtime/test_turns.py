"""Turn bookkeeping (sans-I/O): manual commits, deferred responses, tool rounds, quiet."""

from __future__ import annotations

import json
from typing import Any

from vbgraph.providers.openai_realtime.config import SessionConfig
from vbgraph.providers.openai_realtime.protocol import RealtimeProtocol
from vbgraph.providers.openai_realtime.turns import Turns

MS = 1_000_000
FRAME = bytes(960)  # 20 ms at 24 kHz


def ready() -> RealtimeProtocol:
    proto = RealtimeProtocol()
    proto.receive_message('{"type": "session.created", "session": {}}')
    proto.send_session_update(SessionConfig(turn_detection=None))
    proto.receive_message('{"type": "session.updated", "session": {}}')
    proto.data_to_send()
    return proto


def sent(proto: RealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(t) for t in proto.data_to_send() if "append" not in t]


def append(turns: Turns, proto: RealtimeProtocol, start_ms: int, count: int) -> None:
    for k in range(count):
        proto.send_audio(FRAME)
        turns.audio_sent((start_ms + 20 * (k + 1)) * MS, proto, 0)


class TestManualTurns:
    """turn_detection none: the node commits on the local VAD's stop."""

    def test_the_commit_waits_for_the_audio_the_stop_refers_to(self) -> None:
        """Stop at 400 ms while audio only reached 300: commit once 400 is appended."""
        proto, turns = ready(), Turns(manual=True, max_tool_rounds=2)
        append(turns, proto, 0, 15)  # up to 300 ms
        turns.local_stop(400 * MS, proto, now=0)
        assert sent(proto) == [] and turns.commit_at == 400 * MS
        append(turns, proto, 300, 5)  # up to 400 ms
        assert [e["type"] for e in sent(proto)] == [
            "input_audio_buffer.commit",
            "response.create",
        ]
        assert turns.awaiting and not turns.quiet(proto)

    def test_speech_resuming_before_the_audio_arrives_cancels_the_commit(self) -> None:
        """A new start drops the pending commit: the turn goes on."""
        proto, turns = ready(), Turns(manual=True, max_tool_rounds=2)
        append(turns, proto, 0, 10)
        turns.local_stop(400 * MS, proto, now=0)
        turns.local_start()
        append(turns, proto, 200, 20)
        assert sent(proto) == [] and turns.commit_at is None

    def test_a_turn_under_100_ms_is_not_committed(self) -> None:
        """commit() returns False and asks for nothing."""
        proto, turns = ready(), Turns(manual=True, max_tool_rounds=2)
        append(turns, proto, 0, 4)  # 80 ms
        assert turns.commit(proto, now=0) is False
        assert sent(proto) == [] and turns.quiet(proto)


class TestResponses:
    """When response.create goes out."""

    def test_a_create_waits_for_the_cancelled_response_to_end(self) -> None:
        """Cancelling: the create is held, then sent on response.done."""
        proto, turns = ready(), Turns(manual=True, max_tool_rounds=2)
        proto.receive_message('{"type": "response.created", "response": {"id": "r1"}}')
        proto.send_response_cancel()
        proto.data_to_send()
        turns.ask(proto)
        assert sent(proto) == [] and turns.create_after_done and not turns.quiet(proto)
        proto.receive_message(
            '{"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}'
        )
        turns.response_done(proto)
        assert [e["type"] for e in sent(proto)] == ["response.create"]

    def test_past_the_tool_round_limit_the_model_answers_without_tools(self) -> None:
        """Round 1 of 2 may call again; round 2 says tool_choice none."""
        proto, turns = ready(), Turns(manual=False, max_tool_rounds=2)
        turns.tools_answered(proto)
        assert "response" not in sent(proto)[0]
        proto.receive_message('{"type": "response.created", "response": {"id": "r1"}}')
        proto.receive_message(
            '{"type": "response.done", "response": {"id": "r1", "status": "completed"}}'
        )
        turns.tools_answered(proto)
        assert sent(proto)[0]["response"] == {"tool_choice": "none"}

    def test_the_time_to_first_audio_is_counted_once_per_turn(self) -> None:
        """From the commit to the first audio; later audio of the turn gives nothing."""
        turns = Turns(manual=False, max_tool_rounds=2)
        turns.committed(1000 * MS, server_answers=True)
        assert turns.awaiting
        assert turns.first_audio(1350 * MS) == 350
        assert turns.first_audio(1400 * MS) is None

    def test_server_vad_speech_in_progress_is_not_quiet(self) -> None:
        """Its turn is still to come; losing the connection forgets everything."""
        turns = Turns(manual=False, max_tool_rounds=2)
        turns.speech(started=True)
        assert not turns.quiet(None)
        turns.lost()
        assert turns.quiet(None)
