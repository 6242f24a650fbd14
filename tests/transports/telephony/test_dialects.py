"""The Telnyx, Plivo, Exotel and Vonage wires, and what every dialect shares (sans-I/O)."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.formats import ALAW, AudioFormat
from vbgraph.transports.telephony import (
    CallStarted,
    DtmfReceived,
    MarkPlayed,
    MediaReceived,
    MediaStream,
    PlaybackCleared,
    RemoteError,
    StreamConnected,
    StreamProtocolError,
    StreamStopped,
)
from vbgraph.transports.telephony._common import Framer, Framing
from vbgraph.transports.telephony.plivo import parse_extra_headers
from vbgraph.transports.telephony.vonage import parse_content_type

from .goldens import DIALECTS, feed, golden, invalid_cases, started, truncated_lines

KINDS: dict[str, list[type]] = {
    "twilio": [StreamConnected, CallStarted, MediaReceived, DtmfReceived, StreamStopped],
    "telnyx": [
        StreamConnected,
        CallStarted,
        MediaReceived,
        DtmfReceived,
        RemoteError,
        StreamStopped,
    ],
    "plivo": [CallStarted, MediaReceived, DtmfReceived, PlaybackCleared],
    "exotel": [StreamConnected, CallStarted, MediaReceived, DtmfReceived, StreamStopped],
    "vonage": [CallStarted, MediaReceived, DtmfReceived, PlaybackCleared],
}
"""The events of each golden call (its 'my label' mark echo is unknown to us: no event)."""

NAMES = sorted(DIALECTS)


def cases() -> list[Any]:
    return [
        pytest.param(name, case, id=f"{name}: {case['why']}")
        for name in NAMES
        for case in invalid_cases(name)
    ]


class TestEveryDialect:
    """Golden, invalid and truncated messages of all five dialects."""

    @pytest.mark.parametrize("name", NAMES)
    def test_the_golden_call_decodes_to_its_events(self, name: str) -> None:
        """Each documented message of the provider becomes the expected event."""
        stream = MediaStream(DIALECTS[name])
        events = [e for m in golden(name) for e in feed(stream, m)]
        assert [type(e) for e in events] == KINDS[name]
        stats = stream.statistics()
        assert stats.marks_unknown == 1 and stats.ignored == 0

    @pytest.mark.parametrize(("name", "case"), cases())
    def test_an_invalid_message_is_a_protocol_error_naming_event_and_field(
        self, name: str, case: dict[str, Any]
    ) -> None:
        """Each case of ``<dialect>_invalid.json`` raises with the documented event and field."""
        stream = started(name) if case["after_start"] else MediaStream(DIALECTS[name])
        message: dict[str, Any] | str = case["text"] if "text" in case else case["message"]
        with pytest.raises(StreamProtocolError) as info:
            feed(stream, message)
        err = info.value
        assert (err.dialect, err.event, err.field) == (name, case["event"], case["field"])
        assert str(err).startswith(f"{name} media stream")

    @pytest.mark.parametrize("name", NAMES)
    def test_a_truncated_message_is_a_protocol_error(self, name: str) -> None:
        """Every line of ``<dialect>_truncated.txt``: not JSON, a clear error."""
        for line in truncated_lines(name):
            with pytest.raises(StreamProtocolError, match="not JSON"):
                started(name).receive_text(line)

    @pytest.mark.parametrize("name", NAMES)
    def test_every_prefix_of_a_golden_message_parses_or_raises_the_documented_error(
        self, name: str
    ) -> None:
        """No cut of a message crashes the decoder."""
        for message in golden(name):
            if "$binary" in message:
                continue
            text = json.dumps(message)
            for end in range(0, len(text), 7):
                with contextlib.suppress(StreamProtocolError):
                    started(name).receive_text(text[:end])

    @pytest.mark.parametrize("name", NAMES)
    def test_marks_echo_as_played_positions(self, name: str) -> None:
        """Whatever the wire calls it (mark, checkpoint, notify), the echo confirms the position."""
        stream = started(name, mark_interval_ms=0)
        assert stream.call is not None
        fmt = stream.call.bot_format
        chunk = fmt.bytes_for_ms(20)
        for n in range(1, 11):
            stream.send_audio(b"\x00" * chunk, n * fmt.samples_for_ms(20))
        mark = stream.send_mark("utterance-1")
        stream.data_to_send()
        echoes: dict[str, dict[str, Any]] = {
            "twilio": {"event": "mark", "mark": {"name": mark}},
            "telnyx": {"event": "mark", "mark": {"name": mark}},
            "exotel": {"event": "mark", "mark": {"name": mark}},
            "plivo": {"event": "playedStream", "name": mark},
            "vonage": {"event": "websocket:notify", "payload": {"mark": mark}},
        }
        echo = echoes[name]
        position = 10 * fmt.samples_for_ms(20)
        assert feed(stream, echo) == [MarkPlayed(f"utterance-1@{position}", position)]


class TestTelnyx:
    """Snake case, PCMU/PCMA, error frames."""

    def test_the_start_gives_the_codec_and_the_call_control_id(self) -> None:
        """PCMA 8 kHz both ways; from/to/client_state as parameters."""
        call = started("telnyx").call
        assert call is not None and call.call_id.startswith("v3:")
        assert call.caller_format == call.bot_format == AudioFormat(8000, 1, ALAW)
        assert call.parameters["from"] == "+13122010094" and "client_state" in call.parameters

    def test_an_error_frame_is_reported_not_fatal(self) -> None:
        """error → RemoteError(code, detail); the stream goes on."""
        stream = started("telnyx")
        (event,) = feed(stream, golden("telnyx")[5])
        assert event == RemoteError("100003", "The provided frame is malformed")

    def test_outgoing_messages_carry_no_stream_id(self) -> None:
        """media {media.payload}, mark {mark.name}, clear."""
        stream = started("telnyx", mark_interval_ms=0)
        stream.send_audio(b"\xd5" * 160, 160)
        stream.send_mark("m")
        stream.send_clear()
        media, mark, clear = (json.loads(m) for m in stream.data_to_send())
        assert media == {
            "event": "media",
            "media": {"payload": base64.b64encode(b"\xd5" * 160).decode()},
        }
        assert mark == {"event": "mark", "mark": {"name": "m@160"}}
        assert clear == {"event": "clear"}


class TestPlivo:
    """No connected; playAudio in the stream's format; checkpoints; clearAudio."""

    def test_the_start_gives_the_content_type_and_extra_headers(self) -> None:
        """audio/x-l16 at 16 kHz; extra_headers split into parameters."""
        call = started("plivo").call
        assert call is not None and call.caller_format == AudioFormat(16000)
        assert call.parameters == {"userId": "12345", "sessionId": "abc-xyz"}
        assert parse_extra_headers("a=1,b=2;c") == {"a": "1", "b": "2", "c": ""}

    def test_outgoing_audio_is_play_audio_in_the_stream_format(self) -> None:
        """playAudio {contentType, sampleRate, payload}, checkpoint {name}, clearAudio."""
        stream = started("plivo", mark_interval_ms=0)
        stream.send_audio(b"\x01\x00" * 320, 320)
        stream.send_mark("greeting")
        stream.send_clear()
        play, checkpoint, clear = (json.loads(m) for m in stream.data_to_send())
        sid = "87654321-4321-4321-4321-cba987654321"
        assert play["event"] == "playAudio" and play["streamId"] == sid
        assert (
            play["media"]["contentType"] == "audio/x-l16" and play["media"]["sampleRate"] == 16000
        )
        assert base64.b64decode(play["media"]["payload"]) == b"\x01\x00" * 320
        assert checkpoint == {"event": "checkpoint", "streamId": sid, "name": "greeting@320"}
        assert clear == {"event": "clearAudio", "streamId": sid}

    def test_cleared_audio_forgets_the_checkpoints_it_dropped(self) -> None:
        """After clearedAudio, a late playedStream for a cleared checkpoint is unknown."""
        stream = started("plivo", mark_interval_ms=0)
        stream.send_audio(b"\x01\x00" * 320, 320)
        name = stream.send_mark("greeting")
        stream.send_clear()
        assert feed(stream, {"event": "clearedAudio"}) == [PlaybackCleared()]
        assert feed(stream, {"event": "played", "name": name}) == []
        assert stream.statistics().marks_unknown == 1


class TestExotel:
    """PCM16 at 8 kHz, chunks of 320-byte multiples and at least 3.2 kB."""

    def test_the_start_gives_pcm_and_custom_parameters(self) -> None:
        """audio/x-raw 8000 16-bit → PCM16 8 kHz; custom parameters plus from/to."""
        call = started("exotel").call
        assert call is not None and call.caller_format == AudioFormat(8000)
        assert call.parameters == {"key1": "value1", "from": "+919876543210", "to": "+918047491899"}
        stop = feed(started("exotel"), golden("exotel")[-1])
        assert stop == [StreamStopped("callended")]

    def test_20_ms_chunks_are_gathered_into_3200_byte_messages(self) -> None:
        """Ten 320-byte chunks → one 3200-byte media; a mark flushes the rest padded to 320."""
        stream = started("exotel", mark_interval_ms=0)
        for n in range(1, 13):
            stream.send_audio(b"\x01\x00" * 160, 160 * n)
        stream.send_mark("end")
        out = [json.loads(m) for m in stream.data_to_send()]
        sizes = [len(base64.b64decode(m["media"]["payload"])) for m in out if m["event"] == "media"]
        assert sizes == [3200, 640]
        assert out[-1] == {
            "event": "mark",
            "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
            "mark": {"name": "end@1920"},
        }

    def test_a_clear_drops_audio_held_for_framing(self) -> None:
        """Held bytes are dropped and counted; the clear names the stream."""
        stream = started("exotel")
        stream.send_audio(b"\x01\x00" * 160, 160)
        stream.send_clear()
        assert [json.loads(m)["event"] for m in stream.data_to_send()] == ["clear"]
        assert stream.statistics().held_bytes_dropped == 320

    def test_position_marks_count_only_audio_that_went_out(self) -> None:
        """With 200 ms held back, the first position mark follows the first 3200-byte message."""
        stream = started("exotel")
        for n in range(1, 11):
            stream.send_audio(b"\x01\x00" * 160, 160 * n)
        events = [json.loads(m)["event"] for m in stream.data_to_send()]
        assert events == ["media", "mark"]


class TestVonage:
    """Binary PCM frames of exactly 20 ms; notify and clear actions."""

    def test_the_start_gives_the_rate_and_the_headers(self) -> None:
        """websocket:connected audio/l16;rate=16000 → PCM16 16 kHz; other keys are parameters."""
        call = started("vonage").call
        assert call is not None and call.caller_format == AudioFormat(16000)
        assert call.parameters == {"language": "en-GB", "callerID": "447700900123"}
        assert parse_content_type("audio/l16; rate=8000") == AudioFormat(8000)

    def test_audio_goes_out_in_binary_frames_of_exactly_20_ms(self) -> None:
        """1000 bytes → one 640-byte frame (360 held); a notify flushes them padded to 640."""
        stream = started("vonage", mark_interval_ms=0)
        stream.send_audio(b"\x01\x00" * 500, 500)
        stream.send_mark("end")
        stream.send_clear()
        out = stream.data_to_send()
        assert [len(m) if isinstance(m, bytes) else json.loads(m) for m in out] == [
            640,
            640,
            {"action": "notify", "payload": {"mark": "end@500"}},
            {"action": "clear"},
        ]
        assert out[1] == b"\x01\x00" * 180 + b"\x00" * 280

    def test_binary_audio_is_media_in_the_stream_format(self) -> None:
        """A 640-byte binary frame → MediaReceived with those bytes."""
        (event,) = feed(started("vonage"), golden("vonage")[1])
        assert isinstance(event, MediaReceived) and len(event.payload) == 640


class TestFramer:
    """Cutting outgoing audio as a dialect asks."""

    def test_without_framing_a_chunk_goes_out_unchanged(self) -> None:
        """The default framing passes every chunk through as it is."""
        data = b"\x01\x02" * 80
        assert Framer(Framing(), AudioFormat(8000)).push(data) == [data]

    def test_a_framing_that_splits_samples_is_refused(self) -> None:
        """A 3-byte unit cannot hold whole PCM16 samples."""
        with pytest.raises(ValueError, match="whole sample frames"):
            Framer(Framing(unit=3), AudioFormat(8000))

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.integers(0, 800).map(lambda n: n * 2), max_size=20),
        st.sampled_from([(320, 3200, 99_840), (640, 640, 640), (0, 0, 0)]),
    )
    def test_any_chunking_gives_the_same_bytes_in_legal_messages(
        self, sizes: list[int], rule: tuple[int, int, int]
    ) -> None:
        """Property: messages keep unit/min/max; their bytes are the input (padded at flush)."""
        unit, minimum, maximum = rule
        framer = Framer(Framing(unit, minimum, maximum), AudioFormat(16000))
        data = bytes(i % 251 for i in range(sum(sizes)))
        out: list[bytes] = []
        offset = 0
        for size in sizes:
            out += framer.push(data[offset : offset + size])
            offset += size
        flushed = framer.flush()
        for message in out + flushed:
            assert not unit or len(message) % unit == 0
            assert not maximum or len(message) <= maximum
        for message in out:
            assert len(message) >= minimum or maximum == minimum
        joined = b"".join(out + flushed)
        assert joined[: len(data)] == data and not joined[len(data) :].strip(b"\x00")
        assert framer.held_samples == 0
