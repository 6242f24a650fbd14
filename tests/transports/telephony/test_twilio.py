"""The Twilio Media Streams wire and the shared stream state machine (sans-I/O)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import UsageError
from vbgraph.formats import MULAW, AudioFormat
from vbgraph.transports.telephony import (
    TWILIO,
    CallStarted,
    DtmfReceived,
    MarkCleared,
    MarkPlayed,
    MediaReceived,
    MediaStream,
    PlaybackCleared,
    RemoteError,
    State,
    StreamConnected,
    StreamProtocolError,
    StreamStopped,
)
from vbgraph.transports.telephony._common import MarkEchoed
from vbgraph.transports.telephony.stream import TRANSITIONS
from vbgraph.transports.telephony.twilio import connect_twiml, hangup_request, stream_url

from .goldens import feed, golden, started

SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
DOC = Path(__file__).resolve().parents[3] / "docs" / "protocols" / "telephony.md"


def sent(stream: MediaStream) -> list[dict[str, Any]]:
    return [json.loads(m) for m in stream.data_to_send()]


class TestReceivingTheGoldenCall:
    """The documented message sequence, decoded."""

    def test_every_documented_message_becomes_its_typed_event(self) -> None:
        """connected, start, media, dtmf, mark, stop → the events, in order."""
        stream = MediaStream(TWILIO)
        events = [e for m in golden("twilio") for e in feed(stream, m)]
        kinds = [type(e) for e in events]
        assert kinds == [StreamConnected, CallStarted, MediaReceived, DtmfReceived, StreamStopped]
        connected, start, media, dtmf, stop = events
        assert connected == StreamConnected("Call", "1.0.0")
        assert isinstance(start, CallStarted) and isinstance(media, MediaReceived)
        assert start.stream_id == SID and start.call_id.startswith("CA")
        assert start.account_id.startswith("AC") and start.tracks == ("inbound",)
        assert start.parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}
        assert start.caller_format == start.bot_format == AudioFormat(8000, 1, MULAW)
        assert len(media.payload) == 160 and media.inbound
        assert (media.track, media.chunk, media.timestamp_ms) == ("inbound", 1, 5)
        assert dtmf == DtmfReceived("1") and stop == StreamStopped("stop")
        assert stream.state is State.STOPPED

    def test_an_echo_of_a_mark_we_never_sent_is_counted_not_reported(self) -> None:
        """The golden 'my label' mark: no event, ``marks_unknown`` is 1."""
        stream = MediaStream(TWILIO)
        for message in golden("twilio"):
            feed(stream, message)
        stats = stream.statistics()
        assert stats.marks_unknown == 1 and stats.marks_played == 0
        assert stats.messages == 6 and stats.media_bytes == 160

    def test_the_outbound_track_is_decoded_but_not_inbound(self) -> None:
        """A both-tracks stream: outbound media is an event the shell skips."""
        stream = started("twilio")
        media = golden("twilio")[2]
        media["media"]["track"] = "outbound"
        (event,) = feed(stream, media)
        assert isinstance(event, MediaReceived) and not event.inbound


class TestOrder:
    """The transition table: what may come when."""

    def test_the_docs_table_is_the_transition_table(self) -> None:
        """docs/protocols/telephony.md lists exactly the pairs of TRANSITIONS."""
        names = {
            StreamConnected: "connected",
            CallStarted: "start",
            MediaReceived: "media",
            DtmfReceived: "dtmf",
            MarkEchoed: "mark",
            PlaybackCleared: "cleared",
            RemoteError: "error",
            StreamStopped: "stop",
        }
        table = {
            (state.value, names[kind], following.value)
            for state, row in TRANSITIONS.items()
            for kind, following in row.items()
        }
        doc = DOC.read_text(encoding="utf-8")
        rows = re.findall(r"^\| (\w+) \| (\w+) \| (\w+) \|$", doc, re.MULTILINE)
        assert set(rows) == table and len(rows) == len(table)

    def test_the_table_allows_media_only_while_streaming(self) -> None:
        """MediaReceived is listed for STREAMING alone; STOPPED has no entry (all ignored)."""
        allowed = [state for state, row in TRANSITIONS.items() if MediaReceived in row]
        assert allowed == [State.STREAMING] and State.STOPPED not in TRANSITIONS

    @pytest.mark.parametrize("index", [2, 3, 4])
    def test_media_dtmf_or_mark_before_start_is_a_protocol_error(self, index: int) -> None:
        """The error names the event and says it came before the start."""
        stream = MediaStream(TWILIO)
        message = golden("twilio")[index]
        with pytest.raises(StreamProtocolError, match="before the stream's start") as info:
            feed(stream, message)
        assert info.value.event == message["event"] and stream.state is State.FAILED

    def test_a_second_start_is_a_protocol_error_before_its_fields_are_read(self) -> None:
        """Even an empty second start is refused as out of order, not as malformed."""
        stream = started("twilio")
        with pytest.raises(StreamProtocolError, match="'start' is not allowed after"):
            feed(stream, {"event": "start", "streamSid": SID})

    def test_a_stop_before_the_start_ends_the_stream(self) -> None:
        """A call that ends during set-up: stop is accepted."""
        stream = MediaStream(TWILIO)
        assert feed(stream, golden("twilio")[5]) == [StreamStopped("stop")]
        assert stream.state is State.STOPPED

    def test_unknown_events_are_ignored_and_counted(self) -> None:
        """Providers add events: one we do not know changes nothing."""
        stream = started("twilio")
        assert feed(stream, {"event": "transcription", "streamSid": SID, "text": "hi"}) == []
        assert stream.statistics().ignored == 1 and stream.state is State.STREAMING

    def test_messages_after_stop_are_ignored_as_late(self) -> None:
        """Media after the stop is neither decoded nor an error."""
        stream = MediaStream(TWILIO)
        for message in golden("twilio"):
            feed(stream, message)
        assert feed(stream, golden("twilio")[2]) == [] and stream.statistics().late == 1

    def test_a_failed_stream_refuses_more_input(self) -> None:
        """After a protocol error, feeding more is local misuse."""
        stream = MediaStream(TWILIO)
        with pytest.raises(StreamProtocolError):
            stream.receive_text("not json")
        with pytest.raises(UsageError, match="failed earlier"):
            stream.receive_text(json.dumps(golden("twilio")[0]))

    def test_binary_frames_are_a_protocol_error_on_twilio(self) -> None:
        """Twilio sends text only."""
        with pytest.raises(StreamProtocolError, match="binary"):
            started("twilio").receive_binary(b"\xff" * 160)

    def test_out_of_order_chunks_are_counted(self) -> None:
        """chunk 3 then chunk 2: counted, both delivered."""
        stream = started("twilio")
        for chunk in ("3", "2"):
            media = golden("twilio")[2]
            media["media"]["chunk"] = chunk
            feed(stream, media)
        assert stream.statistics().out_of_order == 1


class TestSending:
    """What we send: media, marks that tell the position, clear."""

    def test_media_mark_and_clear_have_the_documented_shape(self) -> None:
        """media {streamSid, media.payload}, mark {streamSid, mark.name}, clear {streamSid}."""
        stream = started("twilio", mark_interval_ms=0)
        stream.send_audio(b"\x7f" * 160, 160)
        name = stream.send_mark("utterance-1")
        stream.send_clear()
        media, mark, clear = sent(stream)
        assert media == {
            "event": "media",
            "streamSid": SID,
            "media": {"payload": media["media"]["payload"]},
        }
        assert base64.b64decode(media["media"]["payload"]) == b"\x7f" * 160
        assert mark == {"event": "mark", "streamSid": SID, "mark": {"name": "utterance-1@160"}}
        assert name == "utterance-1@160"
        assert clear == {"event": "clear", "streamSid": SID}

    def test_a_position_mark_follows_every_200_ms_of_audio(self) -> None:
        """1 s in 20 ms chunks: marks audio@1600 to audio@8000, each after the chunk reaching it."""
        stream = started("twilio")
        for n in range(1, 51):
            stream.send_audio(b"\x7f" * 160, 160 * n)
        out = sent(stream)
        marks = [(i, m["mark"]["name"]) for i, m in enumerate(out) if m["event"] == "mark"]
        assert [name for _, name in marks] == [f"audio@{1600 * k}" for k in range(1, 6)]
        assert all(
            sum(m["event"] == "media" for m in out[:i]) * 160 == int(name[6:]) for i, name in marks
        )

    def test_an_echo_reports_the_position_played(self) -> None:
        """Echo of audio@1600: MarkPlayed(1600); played_position follows."""
        stream = started("twilio")
        for n in range(1, 11):
            stream.send_audio(b"\x7f" * 160, 160 * n)
        stream.data_to_send()
        echo = {"event": "mark", "streamSid": SID, "mark": {"name": "audio@1600"}}
        assert feed(stream, echo) == [MarkPlayed("audio@1600", 1600)]
        assert stream.played_position == 1600 and stream.statistics().marks_played == 1

    def test_marks_returned_after_a_clear_do_not_count_as_played(self) -> None:
        """Twilio returns pending marks when it clears: MarkCleared, position unchanged."""
        stream = started("twilio", mark_interval_ms=0)
        stream.send_audio(b"\x7f" * 160, 160)
        first = stream.send_mark("utterance-1")
        stream.send_audio(b"\x7f" * 160, 320)
        second = stream.send_mark("utterance-2")
        feed(stream, {"event": "mark", "streamSid": SID, "mark": {"name": first}})
        stream.send_clear()
        events = feed(stream, {"event": "mark", "streamSid": SID, "mark": {"name": second}})
        assert events == [MarkCleared(second, 320)]
        assert stream.played_position == 160 and stream.statistics().marks_cleared == 1

    def test_nothing_can_be_sent_before_the_start(self) -> None:
        """The call's stream id is not known yet: local misuse."""
        with pytest.raises(UsageError, match="before start"):
            MediaStream(TWILIO).send_audio(b"\x7f" * 160, 160)

    def test_after_the_stop_sending_is_a_quiet_no_op(self) -> None:
        """Audio still flowing out of the graph after a hang-up is dropped."""
        stream = MediaStream(TWILIO)
        for message in golden("twilio"):
            feed(stream, message)
        stream.send_audio(b"\x7f" * 160, 160)
        assert stream.send_mark("utterance-1") == ""
        stream.send_clear()
        assert stream.data_to_send() == []

    def test_pending_marks_are_bounded(self) -> None:
        """A peer that never echoes: at most 256 marks remembered; a forgotten echo is unknown."""
        stream = started("twilio", mark_interval_ms=0)
        names = []
        for n in range(1, 301):
            stream.send_audio(b"\x7f" * 160, 160 * n)
            names.append(stream.send_mark("m"))
        assert feed(stream, {"event": "mark", "streamSid": SID, "mark": {"name": names[0]}}) == []
        assert feed(stream, {"event": "mark", "streamSid": SID, "mark": {"name": names[-1]}})
        assert stream.statistics().marks_unknown == 1


class TestSetUp:
    """TwiML, the stream URL and the REST hang-up."""

    @pytest.mark.parametrize(
        ("base", "url"),
        [
            ("https://voice.example.com", "wss://voice.example.com/twilio"),
            ("https://voice.example.com/", "wss://voice.example.com/twilio"),
            ("voice.example.com:8443", "wss://voice.example.com:8443/twilio"),
            ("https://example.com/bot", "wss://example.com/bot/twilio"),
        ],
    )
    def test_the_stream_url_is_wss_on_the_public_host(self, base: str, url: str) -> None:
        """Twilio connects over wss only; a path prefix is kept."""
        assert stream_url(base) == url

    def test_connect_twiml_streams_to_the_url_with_escaped_parameters(self) -> None:
        """<Connect><Stream url> with <Parameter> pairs, attribute values escaped."""
        twiml = connect_twiml("wss://h/twilio", {"from": "+1555", "q": 'a"<b>'})
        assert twiml == (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            '<Stream url="wss://h/twilio"><Parameter name="from" value="+1555"/>'
            '<Parameter name="q" value="a&quot;&lt;b&gt;"/></Stream></Connect></Response>'
        )

    def test_the_hangup_request_completes_the_call_with_basic_auth(self) -> None:
        """POST .../Accounts/{AC}/Calls/{CA}.json, Status=completed, Basic AC:token."""
        req = hangup_request("AC123", "CA456", "secret")
        assert req.method == "POST"
        assert req.url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Calls/CA456.json"
        assert urllib.parse.parse_qs(req.body.decode()) == {"Status": ["completed"]}
        scheme, _, token = req.headers["Authorization"].partition(" ")
        assert scheme == "Basic" and base64.b64decode(token) == b"AC123:secret"


BLOCKER = """
import builtins, sys
import vbgraph.transports  # the parent package (CallLink uses asyncio) is not under test
BLOCKED = {"asyncio", "aiohttp", "websockets", "aiortc", "ssl", "socket"}
seen = []
real_import = builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.split(".")[0] in BLOCKED:
        seen.append((globals or {}).get("__name__", "?") + " -> " + name)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = spy
for name in BLOCKED - set(sys.modules):
    sys.modules[name] = None  # not loaded yet: a fresh import of these fails outright
import vbgraph.transports.telephony
import vbgraph.transports.telephony.twilio, vbgraph.transports.telephony.telnyx
import vbgraph.transports.telephony.plivo, vbgraph.transports.telephony.exotel
import vbgraph.transports.telephony.vonage, vbgraph.transports.telephony.signature
import vbgraph.transports.telephony.stream
assert not seen, seen
print("ok")
"""


def test_the_protocol_modules_import_no_asyncio_or_network_library() -> None:
    """STYLE rule 1: no import of asyncio, aiohttp, websockets ... runs in their import."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_text_is_parsed_or_a_protocol_error(text: str) -> None:
    """Fuzz: arbitrary text never raises anything but StreamProtocolError."""
    stream = started("twilio")
    with contextlib.suppress(StreamProtocolError):
        stream.receive_text(text)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["event", "streamSid", "media", "mark", "start", "dtmf"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=8,
        ),
    )
)
def test_any_json_object_is_parsed_or_a_protocol_error(body: dict[str, Any]) -> None:
    """Fuzz: arbitrary JSON objects (right keys, wrong values) never crash the decoder."""
    for stream in (MediaStream(TWILIO), started("twilio")):
        with contextlib.suppress(StreamProtocolError):
            stream.receive_text(json.dumps(body))
