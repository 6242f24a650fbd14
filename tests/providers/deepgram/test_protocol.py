"""The sans-I/O Deepgram live protocol: handshake, control messages, server messages, lifecycle."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import IllegalTransitionError, ProviderProtocolError
from vbgraph.formats import Encoding
from vbgraph.providers.deepgram.messages import (
    CloseKind,
    Metadata,
    ServerError,
    SpeechStarted,
    StreamClosed,
    Transcript,
    UtteranceEnd,
    parse_message,
)
from vbgraph.providers.deepgram.protocol import (
    CLOSE_STREAM,
    DEFAULT_URL,
    ENCODINGS,
    FINALIZE,
    KEEP_ALIVE,
    TRANSITIONS,
    ConnectionState,
    ListenConnection,
    LiveOptions,
    auth_headers,
    handshake_rejection,
    listen_url,
)
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"
INVALID = sorted(p.name for p in DATA.glob("*_invalid.json"))
TRUNCATED = sorted(p.name for p in DATA.glob("*_truncated.json"))
VALID = sorted(
    p.name for p in DATA.glob("*.json") if p.stem.rsplit("_", 1)[-1] not in ("invalid", "truncated")
)


def golden(name: str) -> str:
    return (DATA / name).read_text()


def receive(*texts: str) -> tuple[ListenConnection, list[object]]:
    conn = ListenConnection()
    events: list[object] = []
    for text in texts:
        conn.receive_text(text)
        events += conn.events_received()
    return conn, events


def outcome(text: str) -> object:
    """The parsed event (or None), or the ProviderProtocolError raised."""
    try:
        return parse_message(text)
    except ProviderProtocolError as exc:
        return exc


EVENT_TYPES = (Transcript, SpeechStarted, UtteranceEnd, Metadata, ServerError, type(None))


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


class TestHandshake:
    """The URL query, the auth header and refused handshakes (protocol doc: Connection)."""

    def test_the_default_url_asks_for_raw_16k_linear16_with_interim_results(self) -> None:
        """Raw PCM needs encoding and sample_rate; booleans are 'true'/'false' strings."""
        url = listen_url(DEFAULT_URL, LiveOptions())
        assert url.startswith("wss://api.deepgram.com/v1/listen?")
        assert query_of(url) == [
            ("model", "nova-3"),
            ("language", "en-US"),
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
            ("channels", "1"),
            ("interim_results", "true"),
            ("endpointing", "300"),
            ("vad_events", "false"),
            ("smart_format", "true"),
        ]

    def test_optional_parameters_are_spelled_as_documented(self) -> None:
        """endpointing=false, utterance_end_ms, repeated keyterm and extra params pass through."""
        options = LiveOptions(
            encoding="mulaw",
            sample_rate=8000,
            endpointing=False,
            utterance_end_ms=1000,
            vad_events=True,
            punctuate=True,
            keyterms=("vbgraph", "café"),
            extra=(("diarize", "true"),),
        )
        query = query_of(listen_url("ws://127.0.0.1:1/v1/listen", options))
        assert ("encoding", "mulaw") in query and ("sample_rate", "8000") in query
        assert ("endpointing", "false") in query and ("utterance_end_ms", "1000") in query
        assert ("vad_events", "true") in query and ("punctuate", "true") in query
        assert [v for k, v in query if k == "keyterm"] == ["vbgraph", "café"]
        assert query[-1] == ("diarize", "true")

    def test_null_options_are_left_out_for_the_server_defaults(self) -> None:
        """None leaves language, endpointing and smart_format to Deepgram."""
        options = LiveOptions(language=None, endpointing=None, smart_format=None)
        keys = [k for k, _ in options.query()]
        assert "language" not in keys and "endpointing" not in keys
        assert "smart_format" not in keys

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            (LiveOptions(sample_rate=None), "sample_rate is required"),
            (LiveOptions(interim_results=False, utterance_end_ms=1000), "needs interim"),
            (LiveOptions(model=""), "model"),
            (LiveOptions(endpointing=True), "endpointing"),
        ],
    )
    def test_inconsistent_options_are_refused_locally(
        self, options: LiveOptions, match: str
    ) -> None:
        """What Deepgram would answer with HTTP 400 is a ValueError before connecting."""
        with pytest.raises(ValueError, match=match):
            options.query()

    def test_the_key_goes_in_a_token_authorization_header(self) -> None:
        """Authorization: Token <key>, or Bearer for temporary tokens; an empty key is refused."""
        assert auth_headers("dg-123") == {"Authorization": "Token dg-123"}
        assert auth_headers("jwt", "Bearer") == {"Authorization": "Bearer jwt"}
        with pytest.raises(ValueError):
            auth_headers("")

    def test_vbgraph_encodings_map_to_deepgram_names(self) -> None:
        """pcm_s16le is linear16; G.711 keeps its names."""
        assert ENCODINGS == {
            Encoding.PCM_S16LE: "linear16",
            Encoding.MULAW: "mulaw",
            Encoding.ALAW: "alaw",
        }

    def test_both_error_body_shapes_are_read(self) -> None:
        """{err_code, err_msg} and the newer {category, message} give a code and a message."""
        r401 = handshake_rejection(401, golden("handshake_401.json").encode())
        assert (r401.status, r401.code, r401.message) == (
            401,
            "INVALID_AUTH",
            "Invalid credentials.",
        )
        assert r401.request_id and str(r401) == "HTTP 401 INVALID_AUTH: Invalid credentials."
        r400 = handshake_rejection(400, golden("handshake_400.json").encode())
        assert r400.code == "INVALID_QUERY_PARAMETER" and "sample_rate" in r400.message

    def test_a_body_that_is_not_json_is_quoted(self) -> None:
        """A proxy's HTML page becomes the message, truncated; an empty body says so."""
        r = handshake_rejection(502, golden("handshake_invalid.txt").encode())
        assert r.code == "" and "502 Bad Gateway" in r.message
        assert handshake_rejection(500, b"").message == "no error body"


class TestControlMessages:
    """Client to server: binary audio and JSON text controls (protocol doc: Client -> server)."""

    def test_control_messages_are_the_documented_json(self) -> None:
        """KeepAlive, Finalize and CloseStream are {"type": ...} objects."""
        assert json.loads(KEEP_ALIVE) == {"type": "KeepAlive"}
        assert json.loads(FINALIZE) == {"type": "Finalize"}
        assert json.loads(CLOSE_STREAM) == {"type": "CloseStream"}

    def test_audio_goes_as_bytes_and_controls_as_text_in_order(self) -> None:
        """data_to_send keeps the order: audio, Finalize, audio, KeepAlive, CloseStream."""
        conn = ListenConnection()
        conn.send_audio(b"\x01\x00" * 160)
        conn.send_finalize()
        conn.send_audio(bytearray(b"\x02\x00"))
        conn.send_keepalive()
        conn.send_close_stream()
        out = conn.data_to_send()
        assert out == [b"\x01\x00" * 160, FINALIZE, b"\x02\x00", KEEP_ALIVE, CLOSE_STREAM]
        assert type(out[2]) is bytes and conn.audio_bytes == 322
        assert conn.data_to_send() == []

    def test_empty_audio_is_never_sent(self) -> None:
        """An empty binary frame means 'close stream' to Deepgram, so it is skipped."""
        conn = ListenConnection()
        conn.send_audio(b"")
        assert conn.data_to_send() == []

    def test_nothing_may_be_sent_after_close_stream(self) -> None:
        """The transition table refuses audio, KeepAlive and Finalize once closing."""
        conn = ListenConnection()
        conn.send_close_stream()
        assert conn.state is ConnectionState.CLOSING
        with pytest.raises(IllegalTransitionError, match="closing"):
            conn.send_audio(b"\0\0")
        for send in (conn.send_keepalive, conn.send_finalize):
            with pytest.raises(IllegalTransitionError, match="closing"):
                send()

    def test_the_transition_table_ends_every_state_in_closed(self) -> None:
        """Each non-closed state can receive a close; CLOSED accepts nothing."""
        for state in (ConnectionState.OPEN, ConnectionState.CLOSING):
            assert TRANSITIONS[(state, "receive close")] is ConnectionState.CLOSED
        assert not [key for key in TRANSITIONS if key[0] is ConnectionState.CLOSED]
        conn = ListenConnection()
        conn.receive_close(1000, "")
        with pytest.raises(IllegalTransitionError, match="deepgram listen connection"):
            conn.receive_text(golden("metadata.json"))

    def test_the_docs_table_is_the_transition_table(self) -> None:
        """docs/providers/deepgram.md lists exactly TRANSITIONS (STYLE rule 2)."""
        doc = (Path(__file__).parents[3] / "docs" / "providers" / "deepgram.md").read_text()
        table = doc.split("| state | input | next state |", 1)[1].split("\n\n", 1)[0]
        rows = [
            tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in table.strip().splitlines()[1:]
        ]
        assert rows == [(s.value, str(i), n.value) for (s, i), n in TRANSITIONS.items()]


class TestServerMessages:
    """Golden server messages (protocol doc: Server -> client)."""

    def test_an_interim_result_gives_its_text_words_and_span(self) -> None:
        """is_final false, times in seconds since the stream start, channel [0, 1]."""
        _, [t] = receive(golden("results_interim.json"))
        assert isinstance(t, Transcript)
        assert (t.text, t.is_final, t.speech_final, t.from_finalize) == (
            "hello there",
            False,
            False,
            False,
        )
        assert (t.start, t.duration, t.end) == (3.5, 1.02, 3.5 + 1.02)
        assert [(w.word, w.start, w.end) for w in t.words] == [
            ("hello", 3.52, 3.8),
            ("there", 3.84, 4.1),
        ]
        assert (t.channel, t.channels, t.request_id[:8]) == (0, 1, "4f4e2b6c")

    def test_finals_carry_punctuated_words_languages_and_speakers(self) -> None:
        """punctuated_word, languages and speaker are kept when present."""
        _, [final, speech_final] = receive(
            golden("results_final.json"), golden("results_speech_final.json")
        )
        assert isinstance(final, Transcript) and isinstance(speech_final, Transcript)
        assert final.is_final and not final.speech_final and final.languages == ("en",)
        assert [w.punctuated_word for w in final.words][:2] == ["Hello", "there,"]
        assert speech_final.speech_final and speech_final.words[0].speaker == 0
        assert final.words[0].speaker is None

    def test_a_finalize_answer_and_an_empty_silence_final_parse(self) -> None:
        """from_finalize is read; an empty transcript with no words is a valid final."""
        _, [fin, silence] = receive(
            golden("results_from_finalize.json"), golden("results_silence.json")
        )
        assert isinstance(fin, Transcript) and fin.from_finalize and fin.text == "Thanks"
        assert isinstance(silence, Transcript) and silence.is_final and silence.text == ""
        assert silence.words == () and not silence.from_finalize

    def test_vad_utterance_end_metadata_and_error_messages_parse(self) -> None:
        """SpeechStarted, UtteranceEnd, Metadata and Error become their events."""
        _, events = receive(
            golden("speech_started.json"),
            golden("utterance_end.json"),
            golden("metadata.json"),
            golden("error_schema.json"),
        )
        assert events == [
            SpeechStarted(3.48, 0),
            UtteranceEnd(6.4, 0),
            Metadata(
                "4f4e2b6c-3c1e-4a53-9e8c-2b0f1f0e6a01",
                12.3,
                1,
                "2024-10-23T14:57:23.420Z",
                "fc4ef741527af4eb3e4d0d7c81b8685111ac40c6fa806491a86c2b5ac137463f",
            ),
            ServerError("SchemaError", "Could not parse the client message."),
        ]

    def test_unknown_types_are_ignored_and_counted(self) -> None:
        """A future message type gives no event and does not break the stream."""
        conn, events = receive(golden("unknown_type.json"), golden("utterance_end.json"))
        assert conn.unknown == 1 and events == [UtteranceEnd(6.4, 0)]
        assert parse_message(golden("unknown_type.json")) is None

    @pytest.mark.parametrize("name", INVALID)
    def test_an_invalid_message_raises_a_protocol_error(self, name: str) -> None:
        """Mistyped fields raise ProviderProtocolError naming the message type; counted."""
        assert name.split("_")[0] in {"results", "metadata", "speech", "utterance"}
        conn = ListenConnection()
        with pytest.raises(ProviderProtocolError, match="deepgram"):
            conn.receive_text(golden(name))
        assert conn.malformed == 1 and conn.events_received() == []
        conn.receive_text(golden("utterance_end.json"))  # the connection is still usable
        assert conn.events_received() == [UtteranceEnd(6.4, 0)]

    @pytest.mark.parametrize("name", TRUNCATED)
    def test_a_truncated_message_raises_a_protocol_error(self, name: str) -> None:
        """Cut JSON is reported as not JSON, quoting its start."""
        with pytest.raises(ProviderProtocolError, match="not JSON"):
            ListenConnection().receive_text(golden(name))

    @pytest.mark.parametrize(
        "text",
        ["[]", '"Results"', "{}", '{"type": 3}', '{"type": "Results", "start": NaN}'],
    )
    def test_messages_without_a_type_or_with_bad_numbers_raise(self, text: str) -> None:
        """Not an object, no string type, or a NaN time: a protocol error, never a crash."""
        with pytest.raises(ProviderProtocolError):
            parse_message(text)

    def test_a_binary_frame_from_the_server_is_a_protocol_error(self) -> None:
        """/v1/listen sends only text frames."""
        with pytest.raises(ProviderProtocolError, match="binary"):
            ListenConnection().receive_binary(b"\x00\x01")


class TestClose:
    """How a close is classified (protocol doc: Errors; Deepgram's close codes)."""

    @pytest.mark.parametrize(
        ("closing", "code", "reason", "kind", "error_code"),
        [
            (True, 1000, "", CloseKind.COMPLETE, ""),
            (
                False,
                1011,
                "NET-0001: no audio within the timeout",
                CloseKind.IDLE_TIMEOUT,
                "NET-0001",
            ),
            (False, 1002, "DATA-0000", CloseKind.REFUSED, "DATA-0000"),
            (False, 1008, "policy", CloseKind.REFUSED, ""),
            (False, 1011, "NET-0000", CloseKind.DROPPED, "NET-0000"),
            (False, 1000, "", CloseKind.DROPPED, ""),
            (True, None, "", CloseKind.DROPPED, ""),
        ],
    )
    def test_close_codes_and_reasons_say_what_to_do(
        self, closing: bool, code: int | None, reason: str, kind: CloseKind, error_code: str
    ) -> None:
        """Complete only after CloseStream with 1000; NET-0001 idle; DATA/policy refused."""
        conn = ListenConnection()
        if closing:
            conn.send_close_stream()
        conn.receive_close(code, reason)
        [closed] = conn.events_received()
        assert closed == StreamClosed(1006 if code is None else code, reason, kind, error_code)
        assert conn.state is ConnectionState.CLOSED


class TestFuzz:
    """Every input is parsed or raises the documented error."""

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_arbitrary_text_parses_or_raises_a_protocol_error(self, text: str) -> None:
        """No other exception escapes parse_message."""
        assert isinstance(outcome(text), (*EVENT_TYPES, ProviderProtocolError))

    json_values = st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(["Results", "SpeechStarted", "UtteranceEnd", "Metadata", "Error"]),
        st.dictionaries(
            st.sampled_from(
                [
                    "start",
                    "duration",
                    "is_final",
                    "channel",
                    "channel_index",
                    "timestamp",
                    "last_word_end",
                    "request_id",
                    "channels",
                    "variant",
                    "description",
                ]
            ),
            json_values,
        ),
    )
    def test_known_types_with_random_fields_parse_or_raise(
        self, kind: str, fields: dict[str, object]
    ) -> None:
        """Random field values under a known type never crash the parser."""
        result = outcome(json.dumps({"type": kind, **fields}))
        assert isinstance(result, (*EVENT_TYPES, ProviderProtocolError))
        assert result is not None  # a known type is never skipped as unknown

    @settings(max_examples=100, deadline=None)
    @given(st.sampled_from([n for n in VALID if n.startswith("results_")]), st.data())
    def test_any_prefix_of_a_golden_message_parses_or_raises(
        self, name: str, data: st.DataObject
    ) -> None:
        """Truncated anywhere, a message is a protocol error, never a crash."""
        text = golden(name)
        cut = data.draw(st.integers(0, len(text)))
        result = outcome(text[:cut])
        if cut >= len(text.rstrip()):
            assert isinstance(result, Transcript)
        else:
            assert isinstance(result, ProviderProtocolError)


def test_the_protocol_modules_import_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol, messages and ledger import no asyncio, websockets or sockets."""
    assert_imports_without(
        [
            "vbgraph.providers.deepgram.protocol",
            "vbgraph.providers.deepgram.messages",
            "vbgraph.providers.deepgram.ledger",
        ]
    )
