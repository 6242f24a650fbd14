"""The WebSocket protocol, server side (sans-I/O): client messages, server messages, states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import IllegalTransitionError, ProviderProtocolError
from vbgraph.events import (
    BotSpeechStopped,
)
from vbgraph.formats import MULAW, AudioFormat
from vbgraph.testing.imports import assert_imports_without
from vbgraph.transports.websocket import (
    CLOSE_CODES,
    TRANSITIONS,
    Audio,
    End,
    Interrupt,
    MarkPlayed,
    ProtocolViolation,
    ServerProtocol,
    Start,
    Text,
    Trigger,
    WireState,
    apply,
)

DATA = Path(__file__).parent / "data"
DOC = Path(__file__).resolve().parents[3] / "docs" / "protocols" / "websocket.md"
PCM16K = AudioFormat(16000)
MULAW8K = AudioFormat(8000, 1, MULAW)


def golden(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def started(**start: Any) -> ServerProtocol:
    """A protocol that has received a start message (default: pcm_s16le 16 kHz)."""
    proto = ServerProtocol()
    msg = {"type": "start", "format": {"encoding": "pcm_s16le", "sample_rate": 16000}, **start}
    proto.receive_text(json.dumps(msg))
    return proto


def violation(proto: ServerProtocol, message: str | bytes) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        if isinstance(message, bytes):
            proto.receive_binary(message)
        else:
            proto.receive_text(message)
    assert proto.state is WireState.CLOSED
    return info.value


class TestStartMessage:
    """``start`` fixes the formats both ways and who is calling."""

    def test_the_golden_start_message_parses_to_every_field(self) -> None:
        """Formats, call id, metadata, event filter and playback marks are all read."""
        proto = ServerProtocol()
        event = proto.receive_text(golden("start.json"))
        assert event == Start(
            format=MULAW8K,
            output_format=PCM16K,
            call_id="order-4711",
            metadata={"user": "ada", "locale": "en-GB"},
            events=frozenset({"transcript", "agent_reply", "bot_speech_started"}),
            playback_marks=True,
        )
        assert proto.state is WireState.STREAMING and proto.start is event

    def test_a_minimal_start_gets_mono_and_the_same_format_back(self) -> None:
        """``channels`` defaults to 1 and ``output_format`` to ``format``."""
        event = ServerProtocol().receive_text(golden("start_minimal.json"))
        assert isinstance(event, Start)
        assert event.format == event.output_format == PCM16K
        assert event.call_id == "" and event.events is None and not event.playback_marks

    def test_the_invalid_golden_start_is_an_unsupported_format_closed_with_1003(self) -> None:
        """44.1 kHz is not one of the rates: the error names the field and the choices."""
        err = violation(ServerProtocol(), golden("start_invalid.json"))
        assert (err.code, err.close_code) == ("unsupported_format", 1003)
        assert "format.sample_rate" in str(err) and "16000" in str(err)

    def test_the_truncated_golden_start_is_bad_json(self) -> None:
        """A message cut short is not JSON: code bad_json, close 1008."""
        err = violation(ServerProtocol(), golden("start_truncated.json"))
        assert (err.code, err.close_code) == ("bad_json", 1008)

    @pytest.mark.parametrize(
        ("start", "code", "field"),
        [
            ({}, "bad_message", "format"),
            ({"format": "pcm"}, "bad_message", "format"),
            ({"format": {"encoding": "pcm_s16le"}}, "bad_message", "sample_rate"),
            ({"format": {"encoding": 16, "sample_rate": 16000}}, "bad_message", "encoding"),
            ({"format": {"encoding": "opus", "sample_rate": 48000}}, "unsupported_format", "opus"),
            (
                {"format": {"encoding": "pcm_s16le", "sample_rate": 16000.0}},
                "bad_message",
                "sample_rate",
            ),
            (
                {"format": {"encoding": "pcm_s16le", "sample_rate": True}},
                "bad_message",
                "sample_rate",
            ),
            (
                {"format": {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 2}},
                "unsupported_format",
                "channels",
            ),
            (
                {"format": {"encoding": "pcm_s16le", "sample_rate": 16000, "rate": 1}},
                "bad_message",
                "rate",
            ),
            (
                {
                    "format": {"encoding": "pcm_s16le", "sample_rate": 16000},
                    "output_format": {"encoding": "alaw", "sample_rate": 11025},
                },
                "unsupported_format",
                "output_format.sample_rate",
            ),
            (
                {"format": {"encoding": "mulaw", "sample_rate": 8000}, "metadata": {"a": 1}},
                "bad_message",
                "metadata",
            ),
            (
                {"format": {"encoding": "mulaw", "sample_rate": 8000}, "events": ["everything"]},
                "bad_message",
                "events",
            ),
            (
                {"format": {"encoding": "mulaw", "sample_rate": 8000}, "call_id": 7},
                "bad_message",
                "call_id",
            ),
            (
                {"format": {"encoding": "mulaw", "sample_rate": 8000}, "playback_marks": "yes"},
                "bad_message",
                "playback_marks",
            ),
            (
                {"format": {"encoding": "mulaw", "sample_rate": 8000}, "formt": {}},
                "bad_message",
                "formt",
            ),
        ],
    )
    def test_a_missing_or_invalid_field_is_an_error_naming_it(
        self, start: dict[str, Any], code: str, field: str
    ) -> None:
        """Every check of the start message fails with its code and the field's name."""
        err = violation(ServerProtocol(), json.dumps({"type": "start", **start}))
        assert err.code == code
        assert field in str(err)

    def test_a_second_start_is_an_unexpected_message(self) -> None:
        """One call per connection: start twice is refused."""
        err = violation(started(), golden("start_minimal.json"))
        assert err.code == "unexpected_message" and "after the start message" in str(err)


class TestAudioMessages:
    """Binary messages are raw audio in the start message's format."""

    def test_audio_of_whole_samples_is_accepted_at_any_size(self) -> None:
        """20 ms of the golden PCM, one sample, and nothing at all all parse."""
        proto = started()
        pcm = (DATA / "audio_pcm_s16le_16k.bin").read_bytes()
        assert proto.receive_binary(pcm) == Audio(pcm, 320)
        assert proto.receive_binary(pcm[:2]) == Audio(pcm[:2], 1)
        assert proto.receive_binary(b"") == Audio(b"", 0)

    def test_mulaw_audio_has_one_byte_samples(self) -> None:
        """Any byte count is whole samples of a G.711 format."""
        proto = started(format={"encoding": "mulaw", "sample_rate": 8000})
        mu = (DATA / "audio_mulaw_8k.bin").read_bytes()
        assert proto.receive_binary(mu[:77]) == Audio(mu[:77], 77)

    def test_the_truncated_golden_audio_is_a_partial_sample(self) -> None:
        """Half a 16-bit sample at the end: code partial_sample, close 1008."""
        err = violation(started(), (DATA / "audio_pcm_s16le_16k_truncated.bin").read_bytes())
        assert (err.code, err.close_code) == ("partial_sample", 1008)
        assert "639 bytes" in str(err)

    def test_audio_before_start_is_an_unexpected_message_with_a_hint(self) -> None:
        """The error tells the client to send start first."""
        err = violation(ServerProtocol(), b"\x00\x00")
        assert err.code == "unexpected_message" and '"type": "start"' in str(err)

    def test_audio_longer_than_the_limit_is_too_big_closed_with_1009(self) -> None:
        """More than ``max_audio_ms`` in one message is refused, not buffered."""
        proto = ServerProtocol(max_audio_ms=100)
        proto.receive_text(golden("start_minimal.json"))
        assert proto.receive_binary(bytes(3200)).samples == 1600
        err = violation(proto, bytes(3202))
        assert (err.code, err.close_code) == ("message_too_big", 1009)

    def test_audio_after_end_is_an_unexpected_message(self) -> None:
        """The caller said it was done."""
        proto = started()
        assert proto.receive_text(golden("end.json")) == End()
        err = violation(proto, bytes(2))
        assert err.code == "unexpected_message" and "after the end message" in str(err)


class TestControlMessages:
    """``interrupt``, ``mark``, ``text`` and ``end``, valid, invalid and truncated."""

    @pytest.mark.parametrize(
        ("name", "event"),
        [
            ("interrupt", Interrupt()),
            ("end", End()),
            ("text", Text("What time do you open?")),
        ],
    )
    def test_the_golden_control_messages_parse(self, name: str, event: object) -> None:
        """Each golden message gives its event."""
        assert started().receive_text(golden(f"{name}.json")) == event

    @pytest.mark.parametrize("name", ["interrupt", "end", "mark", "text"])
    def test_the_invalid_golden_control_messages_are_bad_messages(self, name: str) -> None:
        """An unknown field, an empty name, a list for a string: bad_message."""
        err = violation(started(playback_marks=True), golden(f"{name}_invalid.json"))
        assert (err.code, err.close_code) == ("bad_message", 1008)

    @pytest.mark.parametrize("name", ["interrupt", "end", "mark", "text"])
    def test_the_truncated_golden_control_messages_are_bad_json(self, name: str) -> None:
        """Cut short: bad_json."""
        err = violation(started(), golden(f"{name}_truncated.json"))
        assert err.code == "bad_json"

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("[]", "bad_json"),
            ('"start"', "bad_json"),
            ("{}", "bad_message"),
            ('{"type": 1}', "bad_message"),
            ('{"type": "media", "payload": ""}', "unknown_type"),
        ],
    )
    def test_messages_that_are_not_typed_objects_are_errors(self, text: str, code: str) -> None:
        """Not an object, no type, or an unknown type."""
        assert violation(started(), text).code == code

    def test_an_unknown_type_error_lists_the_known_ones(self) -> None:
        """The client learns what it could have sent."""
        err = violation(started(), '{"type": "hangup"}')
        assert "interrupt" in str(err) and "end" in str(err)

    def test_interrupt_and_mark_are_allowed_after_end_but_text_is_not(self) -> None:
        """The bot may still be speaking after end; the caller may still stop it."""
        proto = started(playback_marks=True)
        proto.receive_text(golden("end.json"))
        proto.send_mark("utterance-1", 480)
        assert proto.receive_text(golden("interrupt.json")) == Interrupt()
        assert proto.receive_text(golden("mark.json")) == MarkPlayed("utterance-1", 480)
        assert proto.state is WireState.ENDING
        assert violation(proto, golden("text.json")).code == "unexpected_message"

    def test_control_messages_before_start_are_unexpected(self) -> None:
        """Nothing but start comes first."""
        assert violation(ServerProtocol(), golden("interrupt.json")).code == "unexpected_message"

    def test_a_text_message_longer_than_the_limit_is_too_big(self) -> None:
        """The length check comes before JSON parsing."""
        proto = ServerProtocol(max_text_chars=64)
        err = violation(proto, json.dumps({"type": "text", "text": "x" * 100}))
        assert err.code == "message_too_big"


class TestMarks:
    """Playback marks: the server sends them, a client that asked echoes them."""

    def test_an_echoed_mark_reports_the_samples_sent_before_it(self) -> None:
        """The mark's sample count comes back once, in order of echo."""
        proto = started(playback_marks=True)
        assert json.loads(proto.send_mark("utterance-1", 320) or "") == json.loads(
            golden("server_mark.json")
        )
        proto.send_mark("utterance-2", 960)
        assert proto.receive_text(golden("mark.json")) == MarkPlayed("utterance-1", 320)
        assert violation(proto, golden("mark.json")).code == "unknown_mark"

    def test_marks_are_not_expected_back_unless_the_client_asked(self) -> None:
        """Without playback_marks an echo is an unknown mark."""
        proto = started()
        proto.send_mark("utterance-1", 320)
        assert violation(proto, golden("mark.json")).code == "unknown_mark"

    def test_unanswered_marks_are_bounded(self) -> None:
        """A client that never echoes cannot grow the server's memory."""
        proto = started(playback_marks=True)
        for i in range(3000):
            proto.send_mark(f"m{i}", i)
        assert len(proto._marks) == 1024
        assert proto.receive_text('{"type": "mark", "name": "m2999"}') == MarkPlayed("m2999", 2999)


class TestServerMessages:
    """The builders write exactly the golden server messages."""

    def test_started_echoes_the_formats_and_the_session(self) -> None:
        """Formats as negotiated, protocol version 1."""
        proto = ServerProtocol()
        proto.receive_text(golden("start.json"))
        sent = json.loads(proto.send_started("assistant-7") or "")
        assert sent == json.loads(golden("server_started.json"))

    def test_clear_end_and_error_match_their_goldens(self) -> None:
        """The simple messages, byte for byte after parsing."""
        proto = started()
        assert json.loads(proto.send_clear() or "") == json.loads(golden("server_clear.json"))
        assert json.loads(proto.send_end("client_end") or "") == json.loads(
            golden("server_end.json")
        )
        refused = ServerProtocol().send_error("server_full", "server is full: 100 of 100 calls")
        assert json.loads(refused) == json.loads(golden("server_error_server_full.json"))

    def test_nothing_is_sent_after_end_or_a_fatal_error(self) -> None:
        """Once closed, the builders return None."""
        proto = started()
        proto.send_end("graph_ended")
        assert proto.state is WireState.CLOSED
        assert proto.send_clear() is None and proto.send_end() is None
        assert proto.send_mark("m", 1) is None
        assert proto.send_event(BotSpeechStopped(pts=0)) is None
        assert proto.send_started("x") is None

    def test_started_before_start_is_a_usage_error(self) -> None:
        """The server cannot announce a session it has no formats for."""
        with pytest.raises(IllegalTransitionError):
            ServerProtocol().send_started("x")

    def test_a_non_fatal_error_keeps_the_connection_open(self) -> None:
        """``fatal: false`` is a warning; the state does not change."""
        proto = started()
        sent = json.loads(proto.send_error("unsupported", "text input is ignored", fatal=False))
        assert sent["fatal"] is False and proto.state is WireState.STREAMING

    def test_every_error_code_has_a_close_code(self) -> None:
        """The table the shell closes with covers the documented codes."""
        assert set(CLOSE_CODES.values()) == {1003, 1008, 1009, 1011, 1013}
        assert CLOSE_CODES["server_full"] == 1013


class TestTransitions:
    """The connection's life is the table; the docs show the same table."""

    def test_every_state_can_be_closed_by_either_side(self) -> None:
        """server_end, violation and close always lead to CLOSED."""
        for state in WireState:
            for trigger in (Trigger.SERVER_END, Trigger.VIOLATION, Trigger.CLOSE):
                assert apply(state, trigger) is WireState.CLOSED

    def test_an_illegal_transition_names_role_state_and_trigger(self) -> None:
        """The error is the project's IllegalTransitionError."""
        with pytest.raises(IllegalTransitionError, match="'audio' is not allowed in state"):
            apply(WireState.AWAIT_START, Trigger.AUDIO)

    def test_the_documented_table_is_the_transition_table(self) -> None:
        """Every row of TRANSITIONS appears in docs/protocols/websocket.md, and no other."""
        doc = DOC.read_text(encoding="utf-8")
        rows = {
            tuple(c.strip(" `") for c in line.strip("|").split("|"))
            for line in doc.splitlines()
            if line.startswith("| `")
        }
        table = {(s.value, t.value, n.value) for (s, t), n in TRANSITIONS.items()}
        states, triggers = {s.value for s in WireState}, {t.value for t in Trigger}
        assert {r for r in rows if len(r) == 3 and r[0] in states and r[1] in triggers} == table

    def test_a_violation_is_a_provider_protocol_error(self) -> None:
        """The remote side broke the protocol: the project's error tree says so."""
        assert issubclass(ProtocolViolation, ProviderProtocolError)


@settings(max_examples=300, deadline=None)
@given(
    first=st.one_of(st.text(max_size=200), st.binary(max_size=64)),
    rest=st.lists(st.one_of(st.text(max_size=100), st.binary(max_size=64)), max_size=5),
)
def test_any_input_is_parsed_or_a_documented_error(first: str | bytes, rest: list[Any]) -> None:
    """Fuzz: arbitrary messages after a start never raise anything but ProtocolViolation."""
    for proto in (ServerProtocol(), started()):
        for msg in [first, *rest]:
            try:
                if isinstance(msg, bytes):
                    proto.receive_binary(msg)
                else:
                    proto.receive_text(msg)
            except ProtocolViolation as exc:
                assert exc.code in CLOSE_CODES
                assert proto.state is WireState.CLOSED
                break


def test_the_protocol_package_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol, messages and events import no asyncio, aiohttp, websockets."""
    assert_imports_without(
        [
            "vbgraph.transports.websocket.protocol",
            "vbgraph.transports.websocket.messages",
            "vbgraph.transports.websocket",
        ]
    )
