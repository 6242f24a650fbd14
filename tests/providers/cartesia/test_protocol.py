"""The sans-I/O Cartesia TTS protocol: requests, contexts, server messages, errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import IllegalTransitionError, ProviderProtocolError
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.providers.cartesia.protocol import (
    CONTEXT_TRANSITIONS,
    AudioChunk,
    ContextDone,
    ContextEvent,
    ContextState,
    FlushDone,
    ServerError,
    TtsConnection,
    TtsEvent,
    TtsSettings,
    WordTimestamps,
    handshake_headers,
    next_state,
)
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"
VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
SETTINGS = TtsSettings(model_id="sonic-3", voice_id=VOICE, max_buffer_delay_ms=0)


def golden(name: str) -> str:
    return (DATA / name).read_text()


def opened(*contexts: str, settings: TtsSettings = SETTINGS) -> TtsConnection:
    """A connection with ``contexts`` opened (their requests already taken)."""
    conn = TtsConnection(settings)
    for cid in contexts:
        conn.send_text(cid, "Hello, ")
    conn.data_to_send()
    return conn


def receive(conn: TtsConnection, *messages: str) -> list[TtsEvent]:
    events: list[TtsEvent] = []
    for message in messages:
        conn.receive_message(message)
        events += conn.events_received()
    return events


def sent(conn: TtsConnection) -> list[dict[str, Any]]:
    return [json.loads(m) for m in conn.data_to_send()]


class TestRequests:
    """Client messages (protocol notes: generation request, cancel, headers)."""

    def test_the_handshake_carries_the_key_and_the_version(self) -> None:
        """X-API-Key and Cartesia-Version, nothing else."""
        assert handshake_headers("sk_car_1", "2025-04-16") == {
            "X-API-Key": "sk_car_1",
            "Cartesia-Version": "2025-04-16",
        }

    def test_streamed_text_is_a_request_with_continue_true(self) -> None:
        """The first piece matches the golden request, field for field."""
        conn = TtsConnection(SETTINGS)
        conn.send_text("ctx-1", "Hello, ")
        assert sent(conn) == [json.loads(golden("request_text.json"))]
        assert conn.state("ctx-1") is ContextState.STREAMING

    def test_the_input_is_closed_with_an_empty_transcript_and_continue_false(self) -> None:
        """end_input sends the same context with transcript '' and continue: false."""
        conn = opened("ctx-1")
        conn.end_input("ctx-1")
        assert sent(conn) == [json.loads(golden("request_end.json"))]
        assert conn.state("ctx-1") is ContextState.CLOSING

    def test_cancel_sends_the_cancel_message_once_and_nothing_after_done(self) -> None:
        """A live context is cancelled on the wire; a finished one costs no message."""
        conn = opened("ctx-1", "ctx-2")
        conn.cancel("ctx-1")
        assert sent(conn) == [json.loads(golden("request_cancel.json"))]
        conn.cancel("ctx-1")
        assert sent(conn) == []
        receive(conn, golden("done.json").replace("ctx-1", "ctx-2"))
        conn.cancel("ctx-2")
        assert sent(conn) == []

    def test_text_after_the_input_was_closed_is_local_misuse(self) -> None:
        """The transition table forbids it: IllegalTransitionError naming the context."""
        conn = opened("ctx-1")
        conn.end_input("ctx-1")
        with pytest.raises(IllegalTransitionError, match="ctx-1"):
            conn.send_text("ctx-1", "more ")
        with pytest.raises(ValueError, match="end_input"):
            conn.send_text("ctx-2", "")

    def test_optional_fields_are_sent_only_when_set(self) -> None:
        """generation_config, max_buffer_delay_ms and language follow the settings."""
        plain = TtsSettings("sonic-2", VOICE, language=None).request("c", "x ", True)
        assert "generation_config" not in plain and "max_buffer_delay_ms" not in plain
        assert "language" not in plain
        tuned = TtsSettings("sonic-2", VOICE, speed=1.2, volume=0.8, max_buffer_delay_ms=500)
        body = tuned.request("c", "x ", True)
        assert body["generation_config"] == {"speed": 1.2, "volume": 0.8}
        assert body["max_buffer_delay_ms"] == 500

    @pytest.mark.parametrize(
        ("encoding", "rate", "fmt"),
        [
            ("pcm_s16le", 24000, AudioFormat(24000, 1, Encoding.PCM_S16LE)),
            ("pcm_f32le", 44100, AudioFormat(44100, 1, Encoding.PCM_F32LE)),
            ("pcm_mulaw", 8000, AudioFormat(8000, 1, Encoding.MULAW)),
            ("pcm_alaw", 8000, AudioFormat(8000, 1, Encoding.ALAW)),
        ],
    )
    def test_each_raw_encoding_maps_to_a_vbgraph_format(
        self, encoding: str, rate: int, fmt: AudioFormat
    ) -> None:
        """The output format negotiated is exactly what the server is asked for."""
        settings = TtsSettings("sonic-3", VOICE, encoding=encoding, sample_rate=rate)
        assert settings.fmt == fmt
        assert settings.request("c", "x ", True)["output_format"] == {
            "container": "raw",
            "encoding": encoding,
            "sample_rate": rate,
        }

    @pytest.mark.parametrize(
        "bad", [{"encoding": "mp3"}, {"sample_rate": 12345}, {"model_id": ""}, {"voice_id": ""}]
    )
    def test_settings_cartesia_does_not_offer_are_refused(self, bad: dict[str, Any]) -> None:
        """A format or id the service would reject is a ValueError before any socket."""
        fields: dict[str, Any] = {"model_id": "sonic-3", "voice_id": VOICE, **bad}
        with pytest.raises(ValueError):
            TtsSettings(**fields)


class TestGoldenMessages:
    """Server messages as the protocol notes show them (tests/providers/cartesia/data)."""

    def test_a_chunk_gives_its_audio_decoded(self) -> None:
        """The base64 data becomes whole int16 samples."""
        (event,) = receive(opened("ctx-1"), golden("chunk.json"))
        assert isinstance(event, AudioChunk)
        assert event.data == base64.b64decode(json.loads(golden("chunk.json"))["data"])
        assert len(event.data) == 480

    def test_timestamps_give_words_with_start_and_end(self) -> None:
        """word_timestamps' three lists become one event."""
        events = receive(opened("ctx-1"), golden("timestamps.json"))
        assert events == [WordTimestamps("ctx-1", ("Hello,", "world."), (0.0, 0.42), (0.38, 0.9))]

    def test_flush_done_and_done(self) -> None:
        """flush_done keeps the context open; done finishes it."""
        conn = opened("ctx-1")
        events = receive(conn, golden("flush_done.json"), golden("done.json"))
        assert events == [FlushDone("ctx-1", 1), ContextDone("ctx-1")]
        assert conn.state("ctx-1") is ContextState.DONE
        assert conn.open_contexts == []

    def test_an_error_fails_its_context_with_every_field_kept(self) -> None:
        """status, title, message, error_code and request_id reach the caller."""
        conn = opened("ctx-1")
        (event,) = receive(conn, golden("error.json"))
        assert event == ServerError(
            "ctx-1",
            400,
            "Voice 'nope' was not found.",
            "Invalid Request",
            "voice_not_found",
            "req_01J2ZB7K3T",
        )
        assert conn.state("ctx-1") is ContextState.FAILED
        text = str(event)
        assert "HTTP 400" in text and "voice_not_found" in text and "req_01J2ZB7K3T" in text

    def test_a_whole_context_streams_in_order_and_split_samples_are_rejoined(self) -> None:
        """stream.jsonl: a chunk ends inside a sample; the byte waits for the next chunk."""
        lines = golden("stream.jsonl").splitlines()
        events = receive(opened("ctx-1"), *lines)
        kinds = [type(e).__name__ for e in events]
        assert kinds == [
            "WordTimestamps",
            "AudioChunk",
            "WordTimestamps",
            "AudioChunk",
            "ContextDone",
        ]
        audio = b"".join(e.data for e in events if isinstance(e, AudioChunk))
        assert all(len(e.data) % 2 == 0 for e in events if isinstance(e, AudioChunk))
        raw = b"".join(base64.b64decode(json.loads(line)["data"]) for line in lines[1:4:2])
        assert audio == raw

    @pytest.mark.parametrize(
        "name",
        [
            "chunk_invalid.json",
            "timestamps_invalid.json",
            "flush_done_invalid.json",
            "done_invalid.json",
            "error_invalid.json",
            "chunk_truncated.json",
            "timestamps_truncated.json",
            "flush_done_truncated.json",
            "done_truncated.json",
            "error_truncated.json",
        ],
    )
    def test_invalid_and_truncated_messages_raise_the_documented_error(self, name: str) -> None:
        """Each is parsed or raises ProviderProtocolError, never anything else."""
        with pytest.raises(ProviderProtocolError, match="cartesia"):
            receive(opened("ctx-1"), golden(name))

    @pytest.mark.parametrize("name", ["stream_invalid.jsonl", "stream_truncated.jsonl"])
    def test_invalid_and_truncated_streams_raise_at_the_bad_message(self, name: str) -> None:
        """Audio after done, or a message cut short, breaks the protocol."""
        conn = opened("ctx-1")
        lines = golden(name).splitlines()
        receive(conn, *lines[:-1])
        with pytest.raises(ProviderProtocolError):
            receive(conn, lines[-1])

    def test_unknown_types_are_ignored_and_counted(self) -> None:
        """A new message type is no error; phoneme timestamps (never asked for) are not counted."""
        conn = opened("ctx-1")
        assert receive(conn, golden("unknown.json"), golden("phoneme_timestamps.json")) == []
        assert conn.unknown_messages == 1


class TestContexts:
    """The per-context state table (CONTEXT_TRANSITIONS)."""

    def test_output_for_a_cancelled_context_is_dropped_and_counted(self) -> None:
        """Chunks generated before the cancel arrived are stale, as is their done."""
        conn = opened("ctx-1")
        conn.cancel("ctx-1")
        events = receive(conn, golden("chunk.json"), golden("timestamps.json"), golden("done.json"))
        assert events == []
        assert conn.stale_messages == 3
        assert receive(conn, golden("error.json")) == []
        assert conn.stale_messages == 4

    def test_output_for_a_context_never_opened_breaks_the_protocol(self) -> None:
        """The server may only answer contexts the client opened."""
        with pytest.raises(ProviderProtocolError, match="ctx-1"):
            receive(TtsConnection(SETTINGS), golden("chunk.json"))

    def test_an_error_without_a_known_context_is_about_the_connection(self) -> None:
        """No context id (or an unknown one): a ServerError with context_id None."""
        conn = opened("ctx-2")
        (event,) = receive(conn, golden("error.json"))
        assert isinstance(event, ServerError) and event.context_id is None
        assert conn.state("ctx-2") is ContextState.STREAMING

    def test_every_live_state_can_be_cancelled_and_only_sends_are_local_errors(self) -> None:
        """The table: cancel is always allowed once opened; illegal sends vs receives differ."""
        for state in ContextState:
            assert (state, ContextEvent.SEND_CANCEL) in CONTEXT_TRANSITIONS
        with pytest.raises(IllegalTransitionError, match="send_text"):
            next_state("c", ContextState.DONE, ContextEvent.SEND_TEXT)
        with pytest.raises(ProviderProtocolError, match="output"):
            next_state("c", ContextState.DONE, ContextEvent.RECV_OUTPUT)

    def test_finished_contexts_are_forgotten_after_a_while(self) -> None:
        """Memory stays bounded over thousands of turns."""
        conn = TtsConnection(SETTINGS)
        for i in range(1000):
            conn.send_text(f"c{i}", "Hi ")
            conn.end_input(f"c{i}")
            conn.receive_message(json.dumps({"type": "done", "context_id": f"c{i}"}))
        assert len(conn._states) <= 64
        assert conn.state("c999") is ContextState.DONE

    def test_a_dangling_half_sample_is_dropped_at_done(self) -> None:
        """An odd byte left when the context ends cannot be played."""
        conn = opened("ctx-1")
        odd = json.dumps({"type": "chunk", "context_id": "ctx-1", "data": "AAAA"})  # 3 bytes
        events = receive(conn, odd, golden("done.json"))
        assert events == [AudioChunk("ctx-1", b"\x00\x00"), ContextDone("ctx-1")]


class TestRobustness:
    """Any input is parsed or raises ProviderProtocolError (STYLE rule 17)."""

    @pytest.mark.parametrize(
        "raw", [b"\xff\xfe", "not json", "[1, 2]", '{"type": 5}', '{"no": "type"}', "null"]
    )
    def test_messages_that_are_not_typed_objects_raise(self, raw: str | bytes) -> None:
        """Not UTF-8, not JSON, not an object, no string type."""
        with pytest.raises(ProviderProtocolError):
            opened("ctx-1").receive_message(raw)

    def test_json_in_a_binary_frame_is_accepted(self) -> None:
        """Some gateways send text in binary frames."""
        events = receive(opened("ctx-1"), golden("done.json").encode())  # type: ignore[arg-type]
        assert events == [ContextDone("ctx-1")]

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )

    @settings(max_examples=300, deadline=None)
    @given(
        kind=st.sampled_from(["chunk", "timestamps", "flush_done", "done", "error", "other"]),
        fields=st.dictionaries(
            st.sampled_from(
                ["context_id", "data", "word_timestamps", "flush_id", "status_code", "message"]
            ),
            json_values,
        ),
        cid=st.sampled_from(["ctx-1", "ctx-2", None]),
    )
    def test_fuzzed_messages_parse_or_raise_the_documented_error(
        self, kind: str, fields: dict[str, Any], cid: str | None
    ) -> None:
        """hypothesis builds messages of every type with arbitrary field values."""
        message: dict[str, Any] = {"type": kind, **fields}
        if cid is not None:
            message["context_id"] = cid
        conn = opened("ctx-1")
        try:
            conn.receive_message(json.dumps(message))
        except ProviderProtocolError:
            return
        for event in conn.events_received():
            assert isinstance(
                event, AudioChunk | WordTimestamps | FlushDone | ContextDone | ServerError
            )


def test_the_protocol_module_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol.py imports no asyncio, ssl, socket or websockets."""
    assert_imports_without(["vbgraph.providers.cartesia.protocol"])
