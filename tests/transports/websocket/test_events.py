"""Bus events as ``event`` messages: the documented subset, fields and per-turn latency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Metric,
    NodeError,
    SessionStateChanged,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.events import Interrupt as InterruptEvent
from vbgraph.formats import MULAW, AudioFormat
from vbgraph.transports.websocket import EventEncoder, ServerProtocol, format_json

DATA = Path(__file__).parent / "data"


def golden(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def started(**start: Any) -> ServerProtocol:
    proto = ServerProtocol()
    msg = {"type": "start", "format": {"encoding": "pcm_s16le", "sample_rate": 16000}, **start}
    proto.receive_text(json.dumps(msg))
    return proto


def test_formats_are_written_as_the_protocol_names_them() -> None:
    """encoding, sample_rate, channels."""
    assert format_json(AudioFormat(8000, 1, MULAW)) == {
        "encoding": "mulaw",
        "sample_rate": 8000,
        "channels": 1,
    }


class TestEvents:
    """Bus events become ``event`` messages: a documented subset, with turn latency."""

    def test_the_golden_event_messages_are_what_the_encoder_writes(self) -> None:
        """Transcript, agent reply and bot speech with latency, field for field."""
        proto = started()
        transcript = TranscriptReceived(
            text="what time do you open",
            confidence=0.92,
            language="en",
            speech_start_ns=4_060_000_000,
            epoch=2,
            pts=5_412_500_000,
        )
        assert json.loads(proto.send_event(transcript) or "") == json.loads(
            golden("server_event_transcript.json")
        )
        reply = AgentReplied(text="We open at 8.", intent="hours", epoch=2, pts=5_800_000_000)
        assert json.loads(proto.send_event(reply) or "") == json.loads(
            golden("server_event_agent_reply.json")
        )

    def test_bot_speech_started_carries_the_turns_latency_once(self) -> None:
        """User stop → first bot audio, and turn end → first bot audio; null next time."""
        enc = EventEncoder()
        enc.encode(UserSpeechStarted(pts=1_000_000_000))
        enc.encode(UserSpeechStopped(pts=5_000_000_000))
        enc.encode(TurnEnded(text="hi", pts=5_750_000_000))
        first = enc.encode(BotSpeechStarted(pts=6_100_000_000))
        assert first is not None
        assert {"type": "event", **first} == json.loads(
            golden("server_event_bot_speech_started.json")
        )
        assert (first["voice_to_voice_ms"], first["turn_to_voice_ms"]) == (1100.0, 350.0)
        again = enc.encode(BotSpeechStarted(pts=9_000_000_000))
        assert again is not None and again["voice_to_voice_ms"] is None

    def test_a_user_who_starts_again_resets_the_latency(self) -> None:
        """The bot answering while the user speaks has no voice-to-voice latency."""
        enc = EventEncoder()
        enc.encode(UserSpeechStopped(pts=1_000_000_000))
        enc.encode(UserSpeechStarted(pts=1_200_000_000))
        fields = enc.encode(BotSpeechStarted(pts=1_500_000_000))
        assert fields is not None and fields["voice_to_voice_ms"] is None

    def test_a_turn_that_ends_while_the_bot_speaks_has_no_latency(self) -> None:
        """The reply queued behind a greeting: the next start is not its first audio."""
        enc = EventEncoder()
        enc.encode(BotSpeechStarted(pts=2_000_000_000))
        enc.encode(UserSpeechStopped(pts=1_600_000_000))
        enc.encode(TurnEnded(text="what time", pts=4_000_000_000))
        enc.encode(BotSpeechStopped(pts=8_500_000_000))
        fields = enc.encode(BotSpeechStarted(pts=8_600_000_000))
        assert fields is not None
        assert fields["voice_to_voice_ms"] is None and fields["turn_to_voice_ms"] is None

    @pytest.mark.parametrize(
        ("event", "name", "fields"),
        [
            (UserSpeechStarted(), "user_speech_started", {}),
            (UserSpeechStopped(), "user_speech_stopped", {}),
            (TurnEnded(text="yes"), "turn_ended", {"text": "yes"}),
            (BotSpeechStopped(interrupted=True), "bot_speech_stopped", {"interrupted": True}),
            (InterruptEvent(epoch=3, reason="barge-in"), "interrupt", {"epoch": 3}),
            (Metric(metric="llm.ttft_ms", value=212.5, unit="ms"), "metric", {"value": 212.5}),
            (
                NodeError(node_id="tts", phase="process", error_type="X", message="boom"),
                "node_error",
                {"node_id": "tts", "message": "boom"},
            ),
        ],
    )
    def test_each_forwarded_event_has_its_name_time_and_fields(
        self, event: object, name: str, fields: dict[str, Any]
    ) -> None:
        """Names as documented; ``time_ms`` always present."""
        encoded = EventEncoder().encode(event)
        assert encoded is not None
        assert encoded["event"] == name and "time_ms" in encoded
        assert fields.items() <= encoded.items()

    def test_internal_events_are_not_forwarded(self) -> None:
        """Session state changes and non-events are left out."""
        proto = started()
        assert proto.send_event(SessionStateChanged(old="a", new="b")) is None
        assert proto.send_event("not an event") is None

    def test_the_start_message_filters_events_by_name(self) -> None:
        """Only the listed events are sent."""
        proto = started(events=["bot_speech_stopped"])
        assert proto.send_event(BotSpeechStarted(pts=0)) is None
        assert proto.send_event(BotSpeechStopped(pts=0)) is not None
