"""The sans-I/O Realtime protocol: golden server events, client events, the state tables.

The golden files in ``data/`` are JSON lines, one server event each, in the
shapes of the SDK's GA and beta types (``openai-python`` ``types/realtime``,
``types/beta/realtime``) with values as the service sends them.
"""

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
from vbgraph.providers.openai_realtime.config import (
    Api,
    ServerVad,
    SessionConfig,
    connect_headers,
    connect_url,
)
from vbgraph.providers.openai_realtime.events import (
    AudioCodec,
    AudioDelta,
    FunctionCall,
    InputCommitted,
    ResponseCreated,
    ResponseDone,
    ServerError,
    ServerEvent,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    UserTranscript,
    codec_for,
)
from vbgraph.providers.openai_realtime.protocol import RealtimeProtocol
from vbgraph.providers.openai_realtime.states import (
    CONNECTION,
    RESPONSE,
    ConnState,
    ResponseState,
    mermaid,
)
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"
R = "resp_C9G5rDNZSHj3RQmGGQWkg"
U = "item_C9G5RTiOPfSH0b95ePJ7V"  # the user item
A = "item_C9G5rjy4C8OrFBeLGOZyh"  # the assistant item


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def ready(api: Api = Api.GA, config: SessionConfig | None = None) -> RealtimeProtocol:
    """A protocol past session.created and session.updated."""
    proto = RealtimeProtocol(api)
    proto.receive_message(json.dumps({"type": "session.created", "session": {}}))
    proto.send_session_update(config or SessionConfig())
    proto.receive_message(json.dumps({"type": "session.updated", "session": {}}))
    proto.events_received()
    proto.data_to_send()
    return proto


def feed(proto: RealtimeProtocol, messages: list[str]) -> tuple[list[ServerEvent], list[str]]:
    """Every event parsed and the message of every ProviderProtocolError, in order.

    Plays the client too: it answers session.created with a session.update.
    """
    events: list[ServerEvent] = []
    errors: list[str] = []
    for message in messages:
        try:
            proto.receive_message(message)
        except ProviderProtocolError as exc:
            errors.append(str(exc))
        new = proto.events_received()
        if any(isinstance(e, SessionCreated) for e in new):
            proto.send_session_update(SessionConfig())
        events += new
    return events, errors


def sent(proto: RealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(text) for text in proto.data_to_send()]


def payloads(events: list[ServerEvent]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, AudioDelta)]


TURN: list[type[Any]] = [
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    InputCommitted,
    ResponseCreated,
    UserTranscript,
    TranscriptDelta,
    AudioDelta,
    TranscriptDelta,
    AudioDelta,
    TranscriptDone,
    ResponseDone,
]


class TestGoldenServerEvents:
    """Server events as the service sends them (protocol notes: server -> client events)."""

    @pytest.mark.parametrize("name", ["ga_turn.jsonl", "beta_turn.jsonl"])
    def test_a_whole_turn_parses_the_same_in_ga_and_beta_names(self, name: str) -> None:
        """VAD, commit, transcript, audio and text deltas, done: the same values either way."""
        proto = RealtimeProtocol(Api.BETA if name.startswith("beta") else Api.GA)
        events, errors = feed(proto, lines(name))
        assert errors == []
        assert [type(e) for e in events] == TURN
        assert events[2] == SpeechStarted(1268, U)
        assert events[3] == SpeechStopped(2880, U)
        assert events[6] == UserTranscript(U, "Hello, how are you?")
        assert [e.delta for e in events if isinstance(e, TranscriptDelta)] == [
            "I'm",
            " fine, thanks.",
        ]
        assert [len(d) for d in payloads(events)] == [960, 1920]
        assert events[-2] == TranscriptDone(R, A, "I'm fine, thanks.")
        assert events[-1] == ResponseDone(R, "completed")
        assert proto.ignored >= 6 and not proto.unknown
        assert proto.response_state is ResponseState.IDLE

    def test_transcript_deltas_are_placed_on_the_audio_they_arrived_with(self) -> None:
        """The second piece arrives after 20 ms of audio (480 samples at 24 kHz)."""
        events, _ = feed(RealtimeProtocol(), lines("ga_turn.jsonl"))
        deltas = [e for e in events if isinstance(e, TranscriptDelta)]
        assert [d.audio_ms for d in deltas] == [0, 20]

    def test_the_last_audio_item_counts_what_was_generated(self) -> None:
        """60 ms of audio arrived for the assistant item: the truncation limit."""
        proto = RealtimeProtocol()
        feed(proto, lines("ga_turn.jsonl"))
        item = proto.last_audio_item
        assert item is not None
        assert (item.item_id, item.response_id, item.generated_ms) == (A, R, 60)

    def test_a_function_call_is_assembled_and_attached_to_response_done(self) -> None:
        """GA's arguments.done has no name: it comes from output_item.added."""
        proto = ready()
        events, errors = feed(proto, lines("ga_function_call.jsonl"))
        assert errors == []
        call = FunctionCall(
            "resp_C9G8M0M9Jnbw1QVGlbOoz",
            "item_C9G8MKYo2xvEn5wnjAL3g",
            "call_ZGtjQHnMgeCAfbKP",
            "get_weather",
            '{"city":"Paris"}',
        )
        assert events[-1] == ResponseDone("resp_C9G8M0M9Jnbw1QVGlbOoz", "completed", None, (call,))

    def test_error_events_keep_code_param_and_the_client_event_they_answer(self) -> None:
        """error.event_id names our event; 'answers' is its type when we sent it."""
        proto = ready()
        proto.send_clear()  # vbg_2
        proto.data_to_send()
        messages = lines("errors.jsonl")
        messages[1] = messages[1].replace('"vbg_1"', '"vbg_2"')
        events, errors = feed(proto, messages)
        assert errors == []
        assert [e.code for e in events if isinstance(e, ServerError)] == [
            "invalid_api_key",
            "input_audio_buffer_commit_empty",
            "unknown_parameter",
            "",
        ]
        assert isinstance(events[1], ServerError)
        assert events[1].answers == "input_audio_buffer.clear"
        assert isinstance(events[2], ServerError) and events[2].param == "session.colour"

    def test_unknown_events_are_ignored_and_counted_by_name(self) -> None:
        """Types the notes do not list change nothing; documented no-op events are not unknown."""
        proto = ready()
        events, errors = feed(proto, lines("unknown_events.jsonl"))
        assert events == [] and errors == []
        assert proto.unknown == {"response.mcp_call.in_progress": 2, "vbgraph.future.event": 1}
        assert proto.ignored == 2


class TestMalformedEvents:
    """``_invalid`` and ``_truncated`` variants: a documented error, never a crash."""

    def test_invalid_events_raise_protocol_errors_and_the_rest_still_parse(self) -> None:
        """Each broken line is one ProviderProtocolError naming the event and field."""
        proto = RealtimeProtocol()
        events, errors = feed(proto, lines("ga_turn_invalid.jsonl"))
        assert len(errors) == 8
        assert "'input_audio_buffer.speech_started' event: field 'audio_start_ms'" in errors[0]
        assert "not valid base64" in errors[1]
        assert "not whole samples" in errors[2]
        assert "field 'status'" in errors[3]
        assert "field 'item_id'" in errors[4]
        assert errors[5] == "openai realtime: a message is not a JSON object"
        assert errors[6] == "openai realtime: a message has no string 'type'"
        assert "not JSON" in errors[7]
        assert SpeechStopped(2880, U) in events
        assert payloads(events) == []
        # response.done was refused: the response is still running, nothing was lost
        assert proto.response_state is ResponseState.ACTIVE and proto.response_id == R

    def test_a_truncated_stream_leaves_the_response_running(self) -> None:
        """The cut line is an error; what came before it stands."""
        proto = RealtimeProtocol()
        events, errors = feed(proto, lines("ga_turn_truncated.jsonl"))
        assert len(errors) == 1 and "not JSON" in errors[0]
        assert [len(d) for d in payloads(events)] == [960]
        assert proto.response_state is ResponseState.ACTIVE

    def test_an_invalid_function_call_is_an_error_not_a_call(self) -> None:
        """A call without call_id, a done whose output lacks the name: both refused."""
        proto = ready()
        events, errors = feed(proto, lines("ga_function_call_invalid.jsonl"))
        assert len(errors) == 2
        assert "'call_id'" in errors[0] and "'name'" in errors[1]
        assert not any(isinstance(e, ResponseDone) for e in events)

    def test_a_truncated_function_call_never_reaches_response_done(self) -> None:
        """No call is reported for a response that did not finish."""
        proto = ready()
        events, errors = feed(proto, lines("ga_function_call_truncated.jsonl"))
        assert len(errors) == 1
        assert [type(e) for e in events] == [ResponseCreated]

    def test_malformed_error_events_are_protocol_errors(self) -> None:
        """An error whose 'error' is not an object, missing, or with a non-text message."""
        _, errors = feed(ready(), lines("errors_invalid.jsonl"))
        assert len(errors) == 3 and all("'error'" in e or "'message'" in e for e in errors)

    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(
                ["type", "response_id", "item_id", "delta", "audio_start_ms", "response", "error"]
            ),
            st.one_of(st.none(), st.integers(), st.text(max_size=8), st.booleans()),
        ),
        st.sampled_from(
            [
                "response.output_audio.delta",
                "response.done",
                "input_audio_buffer.speech_started",
                "error",
                "response.created",
                "conversation.item.truncated",
            ]
        ),
    )
    def test_any_event_is_parsed_or_a_protocol_error(self, obj: dict[str, Any], kind: str) -> None:
        """Fuzz: random fields under known types never raise anything else."""
        proto = ready()
        obj.setdefault("type", kind)
        with contextlib.suppress(ProviderProtocolError):
            proto.receive_message(json.dumps(obj))

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=64))
    def test_any_bytes_are_parsed_or_a_protocol_error(self, data: bytes) -> None:
        """Fuzz: arbitrary bytes as a message."""
        with contextlib.suppress(ProviderProtocolError):
            ready().receive_message(data)


class TestClientEvents:
    """What the client sends (protocol notes: client -> server events)."""

    def test_session_update_has_the_ga_nested_shape(self) -> None:
        """type realtime, audio.input/output formats, transcription, turn detection, tools."""
        config = SessionConfig(
            model="gpt-realtime",
            instructions="Be brief.",
            voice="marin",
            tools=[{"name": "get_weather", "parameters": {"type": "object"}}],
        )
        session = config.to_session(Api.GA)
        assert session == {
            "type": "realtime",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
            },
            "instructions": "Be brief.",
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "",
                    "parameters": {"type": "object"},
                }
            ],
            "tool_choice": "auto",
        }

    def test_session_update_has_the_beta_flat_shape_for_telephony(self) -> None:
        """g711_ulaw both ways, no turn detection, both modalities."""
        config = SessionConfig(
            input_codec=AudioCodec.PCMU,
            output_codec=AudioCodec.PCMU,
            turn_detection=None,
            transcription_model=None,
        )
        assert config.to_session(Api.BETA) == {
            "modalities": ["audio", "text"],
            "voice": "alloy",
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw",
            "input_audio_transcription": None,
            "turn_detection": None,
        }

    def test_the_url_gets_the_model_and_beta_gets_its_header(self) -> None:
        """?model= is added (other query kept); Bearer always, OpenAI-Beta only for beta."""
        assert connect_url("wss://api.openai.com/v1/realtime", "gpt-realtime") == (
            "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        )
        assert connect_url("ws://h/v1/realtime?x=1", "m") == "ws://h/v1/realtime?x=1&model=m"
        assert connect_headers("sk", Api.GA) == {"Authorization": "Bearer sk"}
        assert connect_headers("sk", Api.BETA)["OpenAI-Beta"] == "realtime=v1"

    def test_audio_is_appended_as_base64_without_an_event_id(self) -> None:
        """input_audio_buffer.append {audio}; the buffer counts what was appended."""
        proto = ready()
        pcm = bytes(range(256)) * 15  # 3840 bytes = 80 ms at 24 kHz
        proto.send_audio(pcm)
        (event,) = sent(proto)
        assert event == {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm).decode(),
        }
        assert proto.buffered_ms == 80

    def test_a_commit_of_less_than_100_ms_is_not_sent(self) -> None:
        """The server would refuse it (input_audio_buffer_commit_empty); it is counted."""
        proto = ready()
        proto.send_audio(bytes(3840))
        proto.data_to_send()
        assert proto.send_commit() is False and sent(proto) == []
        assert proto.skipped_commits == 1
        proto.send_audio(bytes(960))
        proto.data_to_send()
        assert proto.send_commit() is True
        assert [e["type"] for e in sent(proto)] == ["input_audio_buffer.commit"]
        assert proto.buffered_ms == 0

    def test_audio_that_is_not_whole_samples_is_local_misuse(self) -> None:
        """An odd byte count of pcm16 raises UsageError, nothing is sent."""
        proto = ready()
        with pytest.raises(UsageError, match="whole samples"):
            proto.send_audio(b"\x00\x01\x02")
        assert proto.data_to_send() == []

    def test_truncation_is_clamped_to_the_audio_generated(self) -> None:
        """audio_end_ms never exceeds what arrived for the item (the server would refuse)."""
        proto = RealtimeProtocol()
        feed(proto, lines("ga_turn.jsonl"))
        proto.data_to_send()
        assert proto.send_truncate(A, 5000) == 60
        assert sent(proto)[0] == {
            "event_id": sent_id(proto, 0),
            "type": "conversation.item.truncate",
            "item_id": A,
            "content_index": 0,
            "audio_end_ms": 60,
        }

    def test_a_function_output_is_a_conversation_item(self) -> None:
        """conversation.item.create with a function_call_output item."""
        proto = ready()
        proto.send_function_output("call_1", '{"sky": "blue"}')
        item = sent(proto)[0]["item"]
        assert item == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": '{"sky": "blue"}',
        }

    def test_a_response_without_tools_says_tool_choice_none(self) -> None:
        """response.create {response: {tool_choice: none}} for a last tool round."""
        proto = ready()
        proto.send_response_create(tool_choice="none")
        assert sent(proto)[0]["response"] == {"tool_choice": "none"}


def sent_id(proto: RealtimeProtocol, back: int) -> str:
    """The event_id of the client event ``back`` steps before the last one."""
    return f"vbg_{proto._next_id - back}"


class TestResponseStates:
    """The response state machine (states.RESPONSE)."""

    def created(self, proto: RealtimeProtocol, rid: str = "resp_1") -> None:
        proto.receive_message(json.dumps({"type": "response.created", "response": {"id": rid}}))

    def delta(self, proto: RealtimeProtocol, rid: str = "resp_1") -> None:
        proto.receive_message(
            json.dumps(
                {
                    "type": "response.output_audio.delta",
                    "response_id": rid,
                    "item_id": "i",
                    "content_index": 0,
                    "delta": "AAAAAA==",
                }
            )
        )

    def done(self, proto: RealtimeProtocol, rid: str = "resp_1", status: str = "completed") -> None:
        proto.receive_message(
            json.dumps({"type": "response.done", "response": {"id": rid, "status": status}})
        )

    def test_a_second_response_create_while_one_runs_is_an_illegal_transition(self) -> None:
        """The error names the role, the state and the event."""
        proto = ready()
        proto.send_response_create()
        with pytest.raises(
            IllegalTransitionError, match=r"realtime response.*response.create.*requested"
        ):
            proto.send_response_create()

    def test_cancel_sends_response_cancel_and_drops_later_deltas(self) -> None:
        """active -> cancelling: deltas in flight are stale, done returns to idle."""
        proto = ready()
        self.created(proto)
        assert proto.send_response_cancel() is True
        assert sent(proto)[0]["type"] == "response.cancel"
        self.delta(proto)
        assert proto.events_received() == [ResponseCreated("resp_1")]
        assert proto.stale_deltas == 1
        self.done(proto, status="cancelled")
        assert proto.response_state is ResponseState.IDLE
        assert proto.send_response_cancel() is False  # nothing to cancel

    def test_a_cancel_before_the_response_exists_goes_out_when_it_is_created(self) -> None:
        """requested -> cancel_requested -> (created) cancelling, with the response id."""
        proto = ready()
        proto.send_response_create()
        proto.data_to_send()
        assert proto.send_response_cancel() is True
        assert proto.data_to_send() == []
        self.created(proto, "resp_9")
        assert sent(proto)[0] == {
            "event_id": sent_id(proto, 0),
            "type": "response.cancel",
            "response_id": "resp_9",
        }
        assert proto.response_state is ResponseState.CANCELLING

    def test_an_error_answering_response_create_returns_to_idle(self) -> None:
        """conversation_already_has_active_response for our create: we may ask again later."""
        proto = ready()
        proto.send_response_create()
        (event,) = sent(proto)
        proto.receive_message(
            json.dumps(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "code": "conversation_already_has_active_response",
                        "message": "busy",
                        "event_id": event["event_id"],
                    },
                }
            )
        )
        assert proto.response_state is ResponseState.IDLE
        (error,) = proto.events_received()
        assert isinstance(error, ServerError) and error.answers == "response.create"

    def test_server_events_out_of_order_are_protocol_errors(self) -> None:
        """A delta with no response, a done for another response, a second created."""
        proto = ready()
        with pytest.raises(ProviderProtocolError, match="'delta' is not allowed in state 'idle'"):
            self.delta(proto)
        self.created(proto)
        with pytest.raises(ProviderProtocolError, match="'resp_2', but 'resp_1' runs"):
            self.done(proto, "resp_2")
        with pytest.raises(ProviderProtocolError, match=r"'response\.created' is not allowed"):
            self.created(proto, "resp_3")
        assert proto.response_id == "resp_1"

    def test_the_first_event_must_be_session_created(self) -> None:
        """Anything else first (an error excepted) breaks the protocol."""
        proto = RealtimeProtocol()
        with pytest.raises(ProviderProtocolError, match="first event"):
            proto.receive_message('{"type": "response.done", "response": {}}')
        proto.receive_message('{"type": "error", "error": {"message": "bad key"}}')
        assert proto.state is ConnState.CONNECTING

    def test_audio_before_the_session_is_configured_is_an_illegal_transition(self) -> None:
        """The connection table allows appends only once ready."""
        proto = RealtimeProtocol()
        with pytest.raises(IllegalTransitionError, match="connecting"):
            proto.send_audio(bytes(960))

    def test_a_refused_session_update_goes_back_to_open(self) -> None:
        """An error answering session.update: configuring -> open; a new update may follow."""
        proto = RealtimeProtocol()
        proto.receive_message('{"type": "session.created", "session": {}}')
        proto.send_session_update(SessionConfig())
        (event,) = sent(proto)
        proto.receive_message(
            json.dumps({"type": "error", "error": {"message": "no", "event_id": event["event_id"]}})
        )
        states = [proto.state]
        proto.send_session_update(SessionConfig(voice="marin"))
        states.append(proto.state)
        assert states == [ConnState.OPEN, ConnState.CONFIGURING]

    def test_close_ends_the_response_and_forbids_sending(self) -> None:
        """After receive_close nothing can be sent or received."""
        proto = ready()
        self.created(proto)
        proto.receive_close()
        assert proto.response_state is ResponseState.IDLE
        with pytest.raises(IllegalTransitionError):
            proto.send_audio(bytes(960))
        with pytest.raises(UsageError):
            proto.receive_message("{}")

    def test_the_tables_draw_as_state_diagrams(self) -> None:
        """mermaid() lists every response transition (the docs diagram comes from it)."""
        text = mermaid(RESPONSE)
        assert text.startswith("stateDiagram-v2")
        assert "active --> cancelling: response.cancel" in text
        assert "connecting --> open: session.created" in mermaid(CONNECTION)


class TestCodecs:
    """Audio formats (protocol notes: audio encodings)."""

    @pytest.mark.parametrize(
        ("wire", "codec"),
        [
            ({"type": "audio/pcm", "rate": 24000}, AudioCodec.PCM16),
            ({"type": "audio/pcmu"}, AudioCodec.PCMU),
            ({"type": "audio/pcma"}, AudioCodec.PCMA),
            ("pcm16", AudioCodec.PCM16),
            ("g711_ulaw", AudioCodec.PCMU),
            ("g711_alaw", AudioCodec.PCMA),
        ],
    )
    def test_ga_and_beta_format_names_map_to_one_codec(self, wire: Any, codec: AudioCodec) -> None:
        """Each wire name is one codec, and back again."""
        assert AudioCodec.from_wire(wire) is codec
        assert AudioCodec.from_wire(codec.ga_format()) is codec
        assert AudioCodec.from_wire(codec.beta_name) is codec

    def test_pcm_at_another_rate_is_refused(self) -> None:
        """Only 24 kHz PCM exists in the API."""
        with pytest.raises(ValueError, match="24000"):
            AudioCodec.from_wire({"type": "audio/pcm", "rate": 16000})

    def test_codecs_are_vbgraph_formats(self) -> None:
        """pcm16 is s16le 24 kHz mono; G.711 is 8 kHz one byte a sample."""
        assert AudioCodec.PCM16.fmt == AudioFormat(24000)
        assert AudioCodec.PCMA.fmt == AudioFormat(8000, 1, Encoding.ALAW)
        assert codec_for(AudioFormat(8000, 1, Encoding.MULAW)) is AudioCodec.PCMU
        with pytest.raises(ProviderProtocolError):
            codec_for(AudioFormat(16000))

    def test_mulaw_audio_counts_one_byte_a_sample(self) -> None:
        """buffered_ms follows the session's input codec."""
        proto = ready(config=SessionConfig(input_codec=AudioCodec.PCMU, turn_detection=ServerVad()))
        proto.send_audio(bytes(800))
        assert proto.buffered_ms == 100


def test_the_protocol_modules_import_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol, events, config, states and playback import no I/O library."""
    assert_imports_without(
        ["vbgraph.providers.openai_realtime.protocol", "vbgraph.providers.openai_realtime.playback"]
    )


def test_the_docs_show_both_state_tables() -> None:
    """docs/providers/openai-realtime.md draws the diagrams from states.py, row for row."""
    docs = (Path(__file__).parents[3] / "docs" / "providers" / "openai-realtime.md").read_text()
    assert mermaid(CONNECTION) in docs
    assert mermaid(RESPONSE) in docs
