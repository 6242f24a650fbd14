"""The sans-I/O ElevenLabs protocol: URL, client messages, server events, closes, alignment."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import IllegalTransitionError, ProviderProtocolError, UsageError
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.providers.elevenlabs.protocol import (
    CONTEXT_TRANSITIONS,
    MAX_CONTEXTS,
    Alignment,
    AudioChunk,
    CloseKind,
    ContextEvent,
    ContextFinal,
    ContextState,
    ElevenLabsClient,
    ServerError,
    SpokenText,
    audio_format,
    build_url,
    classify_close,
    handshake_headers,
    parse_server_message,
)
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"
SETTINGS = {"stability": 0.5, "similarity_boost": 0.8}


def golden(name: str) -> str:
    return (DATA / name).read_text()


def sent(client: ElevenLabsClient) -> list[dict[str, Any]]:
    return [json.loads(m) for m in client.data_to_send()]


def opened(*ids: str) -> ElevenLabsClient:
    client = ElevenLabsClient()
    for cid in ids:
        client.open_context(cid)
    client.data_to_send()
    return client


class TestConnection:
    """URL, query and auth header (protocol doc: Connection)."""

    def test_the_multi_stream_url_carries_voice_model_and_format(self) -> None:
        """Path /v1/text-to-speech/{voice}/multi-stream-input; query model_id, output_format."""
        url = build_url(
            "wss://api.elevenlabs.io/",
            "voice 1",
            model_id="eleven_flash_v2_5",
            output_format="ulaw_8000",
            inactivity_timeout_s=60,
            language_code="de",
        )
        assert url == (
            "wss://api.elevenlabs.io/v1/text-to-speech/voice%201/multi-stream-input"
            "?model_id=eleven_flash_v2_5&output_format=ulaw_8000&sync_alignment=true"
            "&inactivity_timeout=60&language_code=de"
        )

    def test_the_single_stream_url_uses_stream_input(self) -> None:
        """multi=False selects stream-input; auto_mode is passed as true/false."""
        url = build_url(
            "ws://127.0.0.1:9",
            "v",
            model_id="m",
            output_format="pcm_16000",
            multi=False,
            sync_alignment=False,
            auto_mode=False,
        )
        assert url == (
            "ws://127.0.0.1:9/v1/text-to-speech/v/stream-input"
            "?model_id=m&output_format=pcm_16000&auto_mode=false"
        )

    @pytest.mark.parametrize(
        ("base", "voice", "fmt"),
        [("https://api.elevenlabs.io", "v", "pcm_16000"), ("wss://x", "", "pcm_16000"),
         ("wss://x", "v", "mp3_44100_128"), ("wss://", "v", "pcm_16000")],
    )  # fmt: skip
    def test_a_bad_url_voice_or_format_is_a_value_error(
        self, base: str, voice: str, fmt: str
    ) -> None:
        """Only ws(s) URLs with a host, a voice and a raw output format."""
        with pytest.raises(ValueError):
            build_url(base, voice, model_id="m", output_format=fmt)

    def test_the_key_goes_in_the_xi_api_key_header(self) -> None:
        """Header auth, as the documented clients do."""
        assert handshake_headers("xi-123") == {"xi-api-key": "xi-123"}

    @pytest.mark.parametrize(
        ("name", "fmt"),
        [("pcm_8000", AudioFormat(8000)), ("pcm_44100", AudioFormat(44100)),
         ("pcm_48000", AudioFormat(48000)), ("ulaw_8000", AudioFormat(8000, 1, Encoding.MULAW)),
         ("alaw_8000", AudioFormat(8000, 1, Encoding.ALAW))],
    )  # fmt: skip
    def test_raw_output_formats_map_to_mono_audio_formats(
        self, name: str, fmt: AudioFormat
    ) -> None:
        """pcm_N is int16 LE mono at N Hz; ulaw/alaw_8000 are G.711 at 8 kHz."""
        assert audio_format(name) == fmt


class TestClientMessages:
    """What the client sends (protocol doc: multi-context table, single-context 1-3)."""

    def test_initialising_a_context_matches_the_documented_message(self) -> None:
        """{"text": " ", voice_settings, context_id} opens the first context."""
        client = ElevenLabsClient(voice_settings=SETTINGS)
        client.open_context("conv-1")
        assert sent(client) == [json.loads(golden("client_init.json"))]
        assert client.state("conv-1") is ContextState.OPEN

    def test_voice_settings_go_only_in_the_sockets_first_initialisation(self) -> None:
        """Later contexts inherit them (sending them again risks a 1008)."""
        client = ElevenLabsClient(
            voice_settings=SETTINGS, generation_config={"chunk_length_schedule": [50]}
        )
        client.open_context("a")
        client.open_context("b")
        first, second = sent(client)
        assert first["voice_settings"] == SETTINGS
        assert first["generation_config"] == {"chunk_length_schedule": [50]}
        assert second == {"text": " ", "context_id": "b"}

    def test_text_flush_keepalive_and_close_match_the_documented_messages(self) -> None:
        """Text gets its trailing space; each message names its context."""
        client = opened("conv-1")
        client.send_text("conv-1", "Hello world.", flush=True)
        client.send_text("conv-1", "Legacy\n", try_trigger_generation=True)
        client.flush("conv-1")
        client.keep_alive("conv-1")
        client.keep_alive()
        client.close_context("conv-1")
        client.close_context("conv-1")  # a second close sends nothing
        client.close_socket()
        names = ["text", "flush", "keepalive", "keepalive_socket", "close_context", "close_socket"]
        messages = sent(client)
        assert messages.pop(1) == {
            "text": "Legacy\n",
            "try_trigger_generation": True,
            "context_id": "conv-1",
        }
        assert messages == [json.loads(golden(f"client_{n}.json")) for n in names]
        assert client.state("conv-1") is ContextState.CLOSING

    def test_the_single_stream_sends_bos_text_and_eos_without_context_ids(self) -> None:
        """stream-input: BOS " ", text chunks, EOS ""."""
        client = ElevenLabsClient(multi=False, voice_settings=SETTINGS)
        client.open_context(None)
        client.send_text(None, "Hi ")
        client.close_context(None)
        messages = sent(client)
        assert messages[0] == json.loads(golden("client_bos_single.json"))
        assert messages[1] == {"text": "Hi "}
        assert messages[2] == json.loads(golden("client_eos_single.json"))

    def test_the_single_stream_has_one_context_and_no_keepalive(self) -> None:
        """A second BOS, a context id or an empty keep-alive text are usage errors."""
        client = ElevenLabsClient(multi=False)
        with pytest.raises(UsageError):
            client.open_context("c1")
        client.open_context(None)
        with pytest.raises(UsageError):
            client.open_context(None)
        with pytest.raises(UsageError):
            client.keep_alive()

    def test_sending_on_a_context_that_is_not_open_names_context_and_state(self) -> None:
        """Local misuse raises IllegalTransitionError (rule 2)."""
        client = opened("c1")
        with pytest.raises(IllegalTransitionError, match=r"context 'nope'.*not open"):
            client.send_text("nope", "hi")
        client.close_context("c1")
        with pytest.raises(IllegalTransitionError, match=r"context 'c1'.*send_text.*'closing'"):
            client.send_text("c1", "hi")
        with pytest.raises(UsageError):
            client.send_text("c1", "")

    def test_more_than_five_open_contexts_are_refused(self) -> None:
        """The documented limit of concurrent contexts on one socket."""
        client = opened(*[f"c{i}" for i in range(MAX_CONTEXTS)])
        with pytest.raises(UsageError, match="at most 5"):
            client.open_context("one-too-many")
        with pytest.raises(UsageError, match="already open"):
            client.open_context("c0")


class TestServerEvents:
    """What the server sends (protocol doc: Server, multi-context server messages)."""

    def test_an_audio_message_decodes_audio_and_both_alignments(self) -> None:
        """Base64 audio, alignment and normalizedAlignment, contextId."""
        events = parse_server_message(golden("audio_multi.json"))
        assert events is not None
        [chunk] = events
        assert isinstance(chunk, AudioChunk)
        assert chunk.context_id == "conv-1"
        assert len(chunk.audio) == 96 and chunk.audio[2:4] != b"\0\0"
        assert chunk.alignment == Alignment(
            ("H", "e", "l", "l", "o", " "), (0, 70, 116, 151, 186, 232), (70, 46, 35, 35, 46, 58)
        )
        assert chunk.normalized_alignment is not None
        assert chunk.normalized_alignment.text == " hello "

    def test_final_and_error_messages_become_their_events(self) -> None:
        """isFinal with contextId; {"message","error","code"} errors."""
        assert parse_server_message(golden("final_multi.json")) == [ContextFinal("conv-1")]
        assert parse_server_message(golden("final_single.json")) == [ContextFinal(None)]
        [timeout] = parse_server_message(golden("error_timeout.json")) or []
        assert isinstance(timeout, ServerError)
        assert (timeout.error, timeout.code, timeout.is_auth) == (
            "input_timeout_exceeded",
            1008,
            False,
        )
        [auth] = parse_server_message(golden("error_auth.json")) or []
        assert isinstance(auth, ServerError) and auth.is_auth

    def test_single_stream_audio_without_alignment_is_one_chunk(self) -> None:
        """isFinal null and alignment null are fine."""
        [chunk] = parse_server_message(golden("audio_single.json")) or []
        assert chunk == AudioChunk(
            None, base64.b64decode(json.loads(golden("audio_single.json"))["audio"])
        )

    def test_audio_and_is_final_in_one_message_give_both_events_in_order(self) -> None:
        """Audio first, then the final."""
        msg = json.dumps({"audio": "AAA=", "isFinal": True, "contextId": "c"})
        assert parse_server_message(msg) == [AudioChunk("c", b"\0\0"), ContextFinal("c")]

    @pytest.mark.parametrize(
        "name",
        [
            "audio_multi_invalid.json",
            "audio_multi_truncated.json",
            "audio_base64_invalid.json",
            "final_multi_invalid.json",
            "final_multi_truncated.json",
            "error_invalid.json",
        ],
    )
    def test_invalid_and_truncated_messages_raise_the_documented_error(self, name: str) -> None:
        """ProviderProtocolError, never another exception."""
        with pytest.raises(ProviderProtocolError, match="ElevenLabs"):
            parse_server_message(golden(name))

    def test_unknown_messages_are_counted_and_ignored(self) -> None:
        """A shape without audio, isFinal or error is not an error."""
        client = opened("c1")
        client.receive_message(golden("unknown_usage.json"))
        assert client.events_received() == []
        assert client.unknown_messages == 1

    def test_audio_for_a_closing_context_still_arrives_then_final_ends_it(self) -> None:
        """Flushed text keeps generating after close_context; isFinal ends the context."""
        client = opened("conv-1")
        client.close_context("conv-1")
        client.receive_message(golden("audio_multi.json"))
        client.receive_message(golden("final_multi.json"))
        events = client.events_received()
        assert [type(e) for e in events] == [AudioChunk, ContextFinal]
        assert client.state("conv-1") is None

    def test_messages_for_unknown_or_finished_contexts_are_stray(self) -> None:
        """Counted and dropped, not raised: late messages are normal around a barge-in."""
        client = opened("conv-1")
        client.receive_message(golden("final_multi.json"))
        client.receive_message(golden("audio_multi.json"))
        client.receive_message(golden("final_multi.json"))
        assert [type(e) for e in client.events_received()] == [ContextFinal]
        assert client.stray_messages == 2

    def test_a_malformed_message_leaves_the_client_usable(self) -> None:
        """Every message stands alone."""
        client = opened("conv-1")
        with pytest.raises(ProviderProtocolError):
            client.receive_message(golden("audio_multi_truncated.json"))
        client.receive_message(golden("audio_multi.json"))
        assert len(client.events_received()) == 1

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200) | st.text(max_size=200))
    def test_any_bytes_are_parsed_or_raise_the_documented_error(self, data: bytes | str) -> None:
        """Fuzz: arbitrary input never crashes the parser."""
        with contextlib.suppress(ProviderProtocolError):
            parse_server_message(data)

    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(["audio", "isFinal", "alignment", "contextId", "error", "message"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(["chars", "charStartTimesMs", "charDurationsMs"]), inner
                    )
                ),
                max_leaves=8,
            ),
        )
    )
    def test_any_json_shaped_like_a_message_is_parsed_or_raises(self, msg: dict[str, Any]) -> None:
        """Fuzz on the known keys with values of every type."""
        with contextlib.suppress(ProviderProtocolError):
            parse_server_message(json.dumps(msg))


class TestContextStates:
    """The context transition table (STYLE rule 2)."""

    def test_every_event_not_in_the_table_is_illegal(self) -> None:
        """Sending on a closing context is refused; the table is the only authority."""
        for state in (ContextState.OPEN, ContextState.CLOSING):
            for event in (ContextEvent.SEND_TEXT, ContextEvent.FLUSH, ContextEvent.KEEP_ALIVE):
                allowed = (state, event) in CONTEXT_TRANSITIONS
                assert allowed == (state is ContextState.OPEN)
        assert all(s is not ContextState.DONE for s, _ in CONTEXT_TRANSITIONS)


class TestCloses:
    """What a close means (protocol doc: Errors)."""

    @pytest.mark.parametrize(
        ("code", "reason", "kind"),
        [
            (1000, "", CloseKind.NORMAL),
            (1008, "input_timeout_exceeded: Have not received a new text", CloseKind.IDLE_TIMEOUT),
            (1008, "Have not received a new text input within 20 s", CloseKind.IDLE_TIMEOUT),
            (1008, "Invalid API key", CloseKind.AUTH),
            (1008, "This request exceeds your quota", CloseKind.AUTH),
            (1008, "voice_settings field must be provided in the first message", CloseKind.POLICY),
            (1006, "", CloseKind.DROPPED),
            (None, "", CloseKind.DROPPED),
            (1011, "internal error", CloseKind.DROPPED),
        ],
    )  # fmt: skip
    def test_close_codes_and_reasons_are_classified(
        self, code: int | None, reason: str, kind: CloseKind
    ) -> None:
        """Idle timeout and drops reconnect; a refused key does not."""
        assert classify_close(code, reason) is kind


class TestSpokenText:
    """Alignment to heard words (times relative to each chunk, accumulated by offset)."""

    def test_only_whole_words_spoken_by_the_time_count(self) -> None:
        """A word counts once its last character has ended."""
        spoken = SpokenText()
        spoken.add(Alignment(tuple("Hi there"), tuple(range(0, 80, 10)), (10,) * 8), 0)
        assert spoken.text_until(0) == ""
        assert spoken.text_until(20) == "Hi"
        assert spoken.text_until(75) == "Hi"
        assert spoken.text_until(80) == "Hi there"
        assert spoken.text == "Hi there"

    def test_chunk_offsets_place_later_chunks_after_earlier_audio(self) -> None:
        """The second chunk's times start at the first chunk's audio length."""
        spoken = SpokenText()
        spoken.add(Alignment(tuple("One "), (0, 10, 20, 30), (10,) * 4), 0)
        spoken.add(Alignment(tuple("two"), (0, 10, 20), (10,) * 3), 40)
        assert spoken.text_until(65) == "One"
        assert spoken.text_until(70) == "One two"

    def test_a_new_context_starts_a_new_word(self) -> None:
        """separate=True keeps "Hello." and "How" apart."""
        spoken = SpokenText()
        spoken.add(Alignment(tuple("Hello."), (0,) * 6, (1,) * 6), 0)
        spoken.add(Alignment(tuple("How"), (0,) * 3, (1,) * 3), 10, separate=True)
        assert spoken.text == "Hello. How"
        spoken.reset()
        assert not spoken


def test_the_protocol_module_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol.py imports no asyncio, websockets, aiohttp, ssl or socket."""
    assert_imports_without(["vbgraph.providers.elevenlabs.protocol"])
