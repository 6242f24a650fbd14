"""The client's messages: the envelope, the formats, the start fields, string fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.formats import ALAW, MULAW, PCM_S16LE, AudioFormat
from vbgraph.transports.websocket.messages import (
    CLOSE_CODES,
    ENCODINGS,
    MESSAGE_FIELDS,
    SAMPLE_RATES,
    ProtocolViolation,
    Start,
    decode,
    parse_format,
    parse_start,
    string_field,
)

NAMES = ("transcript", "agent_reply")


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ProtocolViolation) as info:
        call(*args, **kwargs)
    return info.value.code


class TestEnvelope:
    """Every text message is a JSON object with a known ``type`` and known fields."""

    def test_a_message_decodes_to_its_type_and_object(self) -> None:
        """The object comes back whole."""
        assert decode('{"type": "mark", "name": "m"}', 100) == (
            "mark",
            {"type": "mark", "name": "m"},
        )

    def test_every_message_type_allows_its_type_field(self) -> None:
        """The field table is consistent."""
        assert all("type" in fields for fields in MESSAGE_FIELDS.values())
        assert set(MESSAGE_FIELDS) == {"start", "interrupt", "mark", "text", "end"}

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ('{"type": "end"}' + " " * 100, "message_too_big"),
            ("{", "bad_json"),
            ("[" * 50_000 + "]" * 50_000, "bad_json"),
            ("null", "bad_json"),
            ('{"kind": "end"}', "bad_message"),
            ('{"type": "bye"}', "unknown_type"),
            ('{"type": "end", "now": true}', "bad_message"),
        ],
        ids=["too_big", "truncated", "deeply_nested", "not_object", "no_type", "unknown", "extra"],
    )
    def test_a_broken_envelope_is_a_documented_error(self, text: str, code: str) -> None:
        """Each failure has its code; deep nesting is not a RecursionError."""
        limit = 100 if code == "message_too_big" else 200_000
        assert code_of(decode, text, limit) == code

    def test_close_codes_follow_rfc_6455_meanings(self) -> None:
        """Policy 1008, unsupported data 1003, too big 1009, server error 1011, retry 1013."""
        assert ProtocolViolation("unsupported_format", "x").close_code == 1003
        assert ProtocolViolation("message_too_big", "x").close_code == 1009
        assert ProtocolViolation("bad_json", "x").close_code == 1008
        assert CLOSE_CODES["session_failed"] == 1011 and CLOSE_CODES["server_draining"] == 1013


class TestFormats:
    """``format`` and ``output_format`` objects."""

    @pytest.mark.parametrize("encoding", ENCODINGS)
    @pytest.mark.parametrize("rate", SAMPLE_RATES)
    def test_every_listed_encoding_and_rate_is_accepted(self, encoding: str, rate: int) -> None:
        """Twelve formats, all mono."""
        fmt = parse_format({"encoding": encoding, "sample_rate": rate, "channels": 1}, "format")
        assert fmt == AudioFormat(
            rate, 1, {"pcm_s16le": PCM_S16LE, "mulaw": MULAW, "alaw": ALAW}[encoding]
        )

    @pytest.mark.parametrize(
        ("obj", "code"),
        [
            ({"encoding": "pcm_f32le", "sample_rate": 16000}, "unsupported_format"),
            ({"encoding": "pcm_s16le", "sample_rate": 22050}, "unsupported_format"),
            ({"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 2}, "unsupported_format"),
            ({"encoding": "pcm_s16le", "sample_rate": "16000"}, "bad_message"),
            ({"encoding": "pcm_s16le", "sample_rate": 16000, "channels": True}, "bad_message"),
            ({"sample_rate": 16000}, "bad_message"),
            ([], "bad_message"),
        ],
    )
    def test_an_unusable_format_names_what_is_wrong(self, obj: object, code: str) -> None:
        """Values out of range are unsupported; wrong types are bad messages."""
        assert code_of(parse_format, obj, "output_format") == code


class TestStart:
    """The fields of ``start`` beyond the formats."""

    def test_the_output_format_defaults_to_the_input_format(self) -> None:
        """A client that says nothing gets its own format back."""
        start = parse_start({"format": {"encoding": "alaw", "sample_rate": 8000}}, NAMES)
        assert start == Start(AudioFormat(8000, 1, ALAW), AudioFormat(8000, 1, ALAW), metadata={})

    def test_events_must_come_from_the_given_names(self) -> None:
        """The error lists the names a client can ask for."""
        with pytest.raises(ProtocolViolation, match="transcript, agent_reply"):
            parse_start(
                {"format": {"encoding": "alaw", "sample_rate": 8000}, "events": ["x"]}, NAMES
            )

    def test_string_fields_are_bounded_and_required_ones_non_empty(self) -> None:
        """Absent optional → ""; empty required, too long or not a string → bad_message."""
        assert string_field({}, "start", "call_id", required=False, limit=4) == ""
        assert code_of(string_field, {"name": ""}, "mark", "name", required=True, limit=4) == (
            "bad_message"
        )
        assert code_of(string_field, {"id": "12345"}, "k", "id", required=False, limit=4) == (
            "bad_message"
        )
        assert code_of(string_field, {"id": 5}, "k", "id", required=False, limit=4) == "bad_message"


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(
        st.sampled_from(["type", "format", "output_format", "call_id", "metadata", "events"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=12), inner, max_size=3)
            ),
            max_leaves=6,
        ),
    )
)
def test_any_json_object_as_start_is_parsed_or_a_documented_error(obj: dict[str, Any]) -> None:
    """Fuzz the start message's structure: a Start or a ProtocolViolation."""
    obj["type"] = "start"
    try:
        kind, checked = decode(json.dumps(obj), 65_536)
        assert isinstance(parse_start(checked, NAMES), Start) and kind == "start"
    except ProtocolViolation as exc:
        assert exc.code in CLOSE_CODES
