"""The WebRTC signalling and data-channel protocol (sans-I/O), against golden messages.

The golden offers in ``data/`` are real: Chromium 150's offer with a microphone
and the ``events`` data channel (valid), its offer with the data channel only
(``_invalid``: no audio), and the valid body cut in the middle (``_truncated``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbgraph.errors import ProviderProtocolError
from vbgraph.events import (
    AgentReplied,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    Interrupt,
    Metric,
    NodeError,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.testing.imports import assert_imports_without
from vbgraph.transports.webrtc.protocol import (
    ChannelError,
    EndCommand,
    EventsChannel,
    InterruptCommand,
    LatencyReport,
    SignallingError,
    TurnLatency,
    answer_body,
    parse_offer,
    refusal_body,
)

DATA = Path(__file__).parent / "data"
MS = 1_000_000


def golden(name: str) -> bytes:
    return (DATA / name).read_bytes()


def offer_sdp() -> str:
    sdp: str = json.loads(golden("offer_chromium.json"))["sdp"]
    return sdp


def body(**fields: object) -> bytes:
    return json.dumps({"type": "offer", "sdp": offer_sdp(), **fields}).encode()


def refused(raw: bytes | str) -> SignallingError:
    with pytest.raises(SignallingError) as info:
        parse_offer(raw)
    return info.value


class TestGoldenOffers:
    def test_chromiums_offer_is_accepted_with_its_codecs_metadata_and_data_channel(self) -> None:
        """The valid golden offer parses: Opus first, the data channel seen, metadata kept."""
        offer = parse_offer(golden("offer_chromium.json"))
        assert offer.audio_codecs[0] == "opus"
        assert {"pcmu", "pcma", "telephone-event"} <= set(offer.audio_codecs)
        assert offer.data_channel is True
        assert offer.metadata == {"page": "/", "user_agent": "Chromium 150 (headless)"}
        assert offer.sdp.startswith("v=0\r\n") and "m=audio" in offer.sdp

    def test_an_offer_without_audio_is_refused_as_no_audio(self) -> None:
        """A data-channel-only offer (no microphone) is a 400 that says there is no audio."""
        err = refused(golden("offer_chromium_invalid.json"))
        assert (err.status, err.code) == (400, "no_audio")
        assert "m=audio" in str(err)

    def test_a_truncated_body_is_refused_as_not_json(self) -> None:
        """A body cut short is a 400 bad_offer naming JSON, never a crash."""
        err = refused(golden("offer_chromium_truncated.json"))
        assert (err.status, err.code) == (400, "bad_offer")
        assert "not JSON" in str(err)

    def test_every_prefix_of_a_good_offer_parses_or_raises_a_signalling_error(self) -> None:
        """Fuzz by truncation: each prefix gives an Offer or a SignallingError."""
        raw = golden("offer_chromium.json")
        for end in range(0, len(raw), 7):
            try:
                parse_offer(raw[:end])
            except SignallingError as exc:
                assert exc.status in (400, 413)

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_parse_or_raise_a_signalling_error(self, raw: bytes) -> None:
        """Fuzz: random bytes never raise anything but SignallingError."""
        with contextlib.suppress(SignallingError):
            parse_offer(raw)


class TestOfferErrors:
    @pytest.mark.parametrize(
        ("raw", "code", "words"),
        [
            (b"sdp=v%3D0", "bad_offer", "not JSON"),
            (b"[1, 2]", "bad_offer", "JSON object"),
            (json.dumps({"type": "offer"}).encode(), "bad_offer", '"sdp"'),
            (json.dumps({"type": "offer", "sdp": 42}).encode(), "bad_offer", '"sdp"'),
            (json.dumps({"type": "offer", "sdp": "  "}).encode(), "bad_offer", '"sdp"'),
            (json.dumps({"sdp": "v=0"}).encode(), "bad_offer", '"type"'),
            (json.dumps({"type": "answer", "sdp": "v=0"}).encode(), "bad_offer", '"answer"'),
            (json.dumps({"type": "offer", "sdp": "hello"}).encode(), "bad_sdp", "v=0"),
        ],
    )
    def test_a_malformed_body_is_a_400_with_a_message_naming_the_field(
        self, raw: bytes, code: str, words: str
    ) -> None:
        """Not JSON, missing sdp, wrong type, not an SDP: 400, a stable code, a clear message."""
        err = refused(raw)
        assert (err.status, err.code) == (400, code)
        assert words in str(err)

    def test_an_sdp_truncated_before_its_audio_line_has_no_audio(self) -> None:
        """An SDP string cut before m=audio is refused as no_audio."""
        sdp = offer_sdp()
        err = refused(json.dumps({"type": "offer", "sdp": sdp[: sdp.index("m=audio")]}))
        assert err.code == "no_audio"

    def test_a_disabled_audio_line_counts_as_no_audio(self) -> None:
        """Port 0 rejects a media section: such an offer has no audio to talk over."""
        sdp = offer_sdp().replace("m=audio 60037 ", "m=audio 0 ")
        assert refused(json.dumps({"type": "offer", "sdp": sdp})).code == "no_audio"

    def test_an_m_line_without_formats_is_a_bad_sdp(self) -> None:
        """A malformed m-line is quoted in the error."""
        sdp = offer_sdp().replace(
            "m=audio 60037 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=audio 9"
        )
        err = refused(json.dumps({"type": "offer", "sdp": sdp}))
        assert err.code == "bad_sdp" and "'m=audio 9'" in str(err)

    @pytest.mark.parametrize(
        ("metadata", "words"),
        [
            ([1], "object"),
            ({"user": 7}, "metadata.user"),
            ({"note": "x" * 2000}, "metadata.note"),
            ({f"k{i}": "v" for i in range(65)}, "65 keys"),
        ],
    )
    def test_metadata_must_be_a_small_object_of_strings(self, metadata: object, words: str) -> None:
        """Bad metadata is a 400 that names the field."""
        err = refused(body(metadata=metadata))
        assert err.code == "bad_offer" and words in str(err)

    def test_a_huge_body_is_refused_as_too_large_before_parsing(self) -> None:
        """More than MAX_OFFER_BYTES is a 413."""
        err = refused(b" " * (300 * 1024))
        assert (err.status, err.code) == (413, "offer_too_large")

    def test_signalling_errors_are_provider_protocol_errors_with_a_json_body(self) -> None:
        """The error tree places a bad offer under remote misbehaviour; body() is the JSON."""
        err = refused(b"{")
        assert isinstance(err, ProviderProtocolError)
        assert err.body() == {"error": {"code": "bad_offer", "message": str(err)}}


class TestAnswersAndRefusals:
    def test_the_answer_body_carries_sdp_type_and_session_id(self) -> None:
        """answer_body is the documented JSON."""
        assert answer_body("v=0\r\n", "web-1") == {
            "sdp": "v=0\r\n",
            "type": "answer",
            "session_id": "web-1",
        }

    def test_a_full_server_refuses_with_503_server_full(self) -> None:
        """CallRefused('full') maps to 503 and code server_full."""
        status, payload = refusal_body("full", "server is full: 1 of 1 calls")
        assert status == 503
        assert payload == {
            "error": {"code": "server_full", "message": "server is full: 1 of 1 calls"}
        }

    def test_a_draining_server_refuses_with_503_server_draining(self) -> None:
        """CallRefused('draining') maps to 503 and code server_draining."""
        assert refusal_body("draining", "bye")[1]["error"]["code"] == "server_draining"


def sent(channel: EventsChannel) -> list[dict[str, object]]:
    return [json.loads(m) for m in channel.data_to_send()]


class TestServerMessages:
    def test_bus_events_become_the_documented_messages(self) -> None:
        """Transcripts, replies, speech and interruptions map to one message each."""
        ch = EventsChannel()
        ch.send_session("web-7")
        ch.send_event(TranscriptReceived(text="hello there", pts=1500 * MS))
        ch.send_event(AgentReplied(text="Hi!", intent="greet", pts=1700 * MS))
        ch.send_event(BotSpeechStarted(pts=1800 * MS))
        ch.send_event(Interrupt(epoch=2, reason="barge-in", pts=2000 * MS))
        ch.send_event(BotSpeechStopped(interrupted=True, pts=2000 * MS))
        assert sent(ch) == [
            {"type": "session", "session_id": "web-7"},
            {
                "type": "transcript",
                "t_ms": 1500.0,
                "role": "user",
                "text": "hello there",
                "final": True,
            },
            {
                "type": "agent_reply",
                "t_ms": 1700.0,
                "role": "bot",
                "text": "Hi!",
                "interrupted": False,
            },
            {"type": "bot_speech_started", "t_ms": 1800.0},
            {"type": "interrupted", "t_ms": 2000.0, "epoch": 2, "reason": "barge-in"},
            {"type": "bot_speech_stopped", "t_ms": 2000.0, "interrupted": True},
        ]
        assert ch.data_to_send() == []

    def test_events_the_page_does_not_use_stay_on_the_server(self) -> None:
        """Metrics and barge-in events produce no message."""
        ch = EventsChannel()
        ch.send_event(Metric(metric="ttfb", value=1.0))
        ch.send_event(BargeInStarted())
        assert ch.data_to_send() == []

    def test_a_node_error_reaches_the_page_as_an_error_message(self) -> None:
        """NodeError → {"type": "error", "code": "node_error"} with the node named."""
        ch = EventsChannel()
        ch.send_event(NodeError(node_id="stt", phase="process", error_type="X", message="boom"))
        (msg,) = sent(ch)
        assert msg["type"] == "error" and msg["code"] == "node_error"
        assert "node 'stt'" in str(msg["message"]) and "boom" in str(msg["message"])

    def test_a_turn_yields_a_latency_message_after_bot_speech_started(self) -> None:
        """Stopped at 1.0 s, turn ended at 1.3 s, bot audio at 1.8 s: 800 ms, detection 300."""
        ch = EventsChannel()
        for event in (
            UserSpeechStarted(pts=200 * MS),
            UserSpeechStopped(pts=1000 * MS),
            TurnEnded(text="hi", pts=1300 * MS),
            BotSpeechStarted(pts=1800 * MS),
        ):
            ch.send_event(event)
        latency = [m for m in sent(ch) if m["type"] == "latency"]
        assert latency == [
            {
                "type": "latency",
                "turn": 1,
                "ms": 800.0,
                "from": "user_speech_stopped",
                "turn_detection_ms": 300.0,
            }
        ]

    def test_session_end_and_errors_have_their_own_messages(self) -> None:
        """send_error and send_session_ended queue the documented shapes."""
        ch = EventsChannel()
        ch.send_error("bad_message", "no")
        ch.send_session_ended("hangup")
        assert sent(ch) == [
            {"type": "error", "code": "bad_message", "message": "no"},
            {"type": "session_ended", "reason": "hangup"},
        ]


class TestTurnLatency:
    def feed(self, *events: object) -> list[LatencyReport]:
        tracker = TurnLatency()
        reports = [tracker.receive_event(e) for e in events]  # type: ignore[arg-type]
        return [r for r in reports if r is not None]

    def test_without_a_vad_the_turn_starts_when_the_turn_ended(self) -> None:
        """Only TurnEnded then BotSpeechStarted: measured from the turn's end."""
        (r,) = self.feed(TurnEnded(pts=500 * MS), BotSpeechStarted(pts=900 * MS))
        assert (r.latency_ns, r.measured_from, r.turn_detection_ns) == (
            400 * MS,
            "turn_ended",
            None,
        )

    def test_bot_speech_with_no_turn_pending_is_not_a_turn(self) -> None:
        """A greeting (bot speech before the user said anything) reports nothing."""
        assert self.feed(BotSpeechStarted(pts=0), BotSpeechStopped(pts=MS)) == []

    def test_the_last_stop_counts_and_speaking_again_discards_the_earlier_one(self) -> None:
        """Stop, start again, stop: latency from the second stop; turns are numbered."""
        reports = self.feed(
            UserSpeechStopped(pts=1000 * MS),
            UserSpeechStarted(pts=1100 * MS),
            UserSpeechStopped(pts=2000 * MS),
            BotSpeechStarted(pts=2600 * MS),
            UserSpeechStopped(pts=5000 * MS),
            BotSpeechStarted(pts=5250 * MS),
        )
        assert [(r.turn, r.latency_ns) for r in reports] == [(1, 600 * MS), (2, 250 * MS)]

    def test_one_stop_is_measured_once(self) -> None:
        """A second BotSpeechStarted (resumed after a pause) without a new stop adds nothing."""
        reports = self.feed(
            UserSpeechStopped(pts=MS), BotSpeechStarted(pts=2 * MS), BotSpeechStarted(pts=3 * MS)
        )
        assert len(reports) == 1


class TestPageMessages:
    def test_the_golden_interrupt_becomes_an_interrupt_command(self) -> None:
        """{"type": "interrupt"} → InterruptCommand; "end" → EndCommand, in order."""
        ch = EventsChannel()
        ch.receive_message(golden("page_interrupt.json").decode())
        ch.receive_message(b'{"type": "end"}')
        assert ch.events_received() == [InterruptCommand(), EndCommand()]
        assert ch.events_received() == [] and ch.received == 2

    def test_an_unknown_type_is_a_channel_error_listing_the_known_ones(self) -> None:
        """The _invalid golden (a typo) names what is accepted."""
        with pytest.raises(ChannelError, match=r"unknown message type 'interupt'.*end, interrupt"):
            EventsChannel().receive_message(golden("page_interrupt_invalid.json"))

    def test_a_truncated_message_is_a_channel_error(self) -> None:
        """The _truncated golden is not JSON: a ChannelError, never a crash."""
        with pytest.raises(ChannelError, match="not JSON"):
            EventsChannel().receive_message(golden("page_interrupt_truncated.json"))

    @pytest.mark.parametrize("raw", ['"interrupt"', "[]", '{"type": 1}', "{}", b"\xff\xfe"])
    def test_messages_that_are_not_typed_objects_are_channel_errors(self, raw: str | bytes) -> None:
        """Strings, lists, untyped objects and non-UTF-8 bytes are refused."""
        with pytest.raises(ChannelError):
            EventsChannel().receive_message(raw)

    def test_an_oversized_message_is_refused_before_parsing(self) -> None:
        """Messages over MAX_MESSAGE_BYTES are a ChannelError."""
        with pytest.raises(ChannelError, match="at most"):
            EventsChannel().receive_message("x" * 20_000)

    @given(st.text(max_size=60) | st.binary(max_size=60))
    def test_any_message_is_a_command_or_a_channel_error(self, raw: str | bytes) -> None:
        """Fuzz: nothing but ChannelError escapes receive_message."""
        with contextlib.suppress(ChannelError):
            EventsChannel().receive_message(raw)


def test_the_protocol_module_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol.py (and the package) import no asyncio, aiohttp, aiortc or av."""
    assert_imports_without(["vbgraph.transports.webrtc", "vbgraph.transports.webrtc.protocol"])
