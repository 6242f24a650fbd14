"""The fake Realtime server checks what a client sends, as the service does (raw client)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.providers.openai_realtime.support import clip, virtual
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vbgraph.dsp.g711 import ulaw_decode, ulaw_encode
from vbgraph.testing.fakes.openai_realtime import (
    EMPTY_COMMIT_MESSAGE,
    FakeRealtime,
    Turn,
)

GA_SESSION: dict[str, Any] = {
    "type": "realtime",
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}},
}


class Client:
    """A bare Realtime client: JSON events over one connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = 0

    async def send(self, kind: str, **fields: Any) -> str:
        self.ids += 1
        event_id = f"c_{self.ids}"
        await self.ws.send(json.dumps({"type": kind, "event_id": event_id, **fields}))
        return event_id

    async def recv(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(await self.ws.recv())
        return event

    async def until(self, kind: str) -> list[dict[str, Any]]:
        """Events up to and including the first of type ``kind``."""
        events = [await self.recv()]
        while events[-1]["type"] != kind:
            events.append(await self.recv())
        return events

    async def error(self) -> dict[str, Any]:
        error: dict[str, Any] = (await self.until("error"))[-1]["error"]
        return error


def with_client(
    test: Callable[[FakeRealtime, Client], Awaitable[None]],
    session: dict[str, Any] | None = GA_SESSION,
    headers: dict[str, str] | None = None,
    **fake: Any,
) -> None:
    """Connect a raw client (session.created read, ``session`` configured) and run ``test``."""

    async def main() -> None:
        async with FakeRealtime(**fake) as server:
            auth = {"Authorization": "Bearer sk-test", **(headers or {})}
            async with connect(server.url + "?model=gpt-realtime", additional_headers=auth) as ws:
                client = Client(ws)
                assert (await client.recv())["type"] == "session.created"
                if session is not None:
                    await client.send("session.update", session=session)
                    assert (await client.recv())["type"] == "session.updated"
                await test(server, client)

    virtual(main)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestHandshake:
    """Auth, path, model, beta header."""

    def test_a_wrong_key_gets_an_error_event_and_close_3000(self) -> None:
        """As the service: the upgrade succeeds, then invalid_api_key and a close."""

        async def main() -> None:
            async with FakeRealtime() as server:
                auth = {"Authorization": "Bearer sk-nope"}
                async with connect(server.url + "?model=m", additional_headers=auth) as ws:
                    event = json.loads(await ws.recv())
                    assert event["type"] == "error"
                    assert event["error"]["code"] == "invalid_api_key"
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == 3000
                    assert closed.value.rcvd.reason == "invalid_request_error.invalid_api_key"

        virtual(main)

    def test_an_unknown_path_is_http_404(self) -> None:
        """Only /v1/realtime exists."""

        async def main() -> None:
            async with FakeRealtime() as server:
                with pytest.raises(InvalidStatus, match="404"):
                    async with connect(server.url.replace("realtime", "nope")):
                        pass

        virtual(main)

    def test_a_missing_model_is_refused(self) -> None:
        """No ?model=: an error event and a close."""

        async def main() -> None:
            async with FakeRealtime() as server:
                auth = {"Authorization": "Bearer sk-test"}
                async with connect(server.url, additional_headers=auth) as ws:
                    assert json.loads(await ws.recv())["error"]["code"] == "missing_model"

        virtual(main)

    def test_the_beta_header_selects_the_beta_shapes(self) -> None:
        """Beta session.update is flat; GA's nested shape is an unknown parameter there."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("session.update", session=GA_SESSION)
            error = await client.error()
            assert error["code"] == "unknown_parameter" and error["param"] == "session.type"
            await client.send("session.update", session={"input_audio_format": "g711_ulaw"})
            updated = await client.recv()
            assert updated["session"]["input_audio_format"] == "g711_ulaw"

        with_client(test, session=None, headers={"OpenAI-Beta": "realtime=v1"})


class TestSessionUpdate:
    """session.update is validated field by field."""

    @pytest.mark.parametrize(
        ("session", "code", "param"),
        [
            ({"audio": {}}, "missing_required_parameter", "session.type"),
            ({"type": "realtime", "colour": "red"}, "unknown_parameter", "session.colour"),
            (
                {
                    "type": "realtime",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                },
                "invalid_value",
                "session.audio.input.format",
            ),
            (
                {"type": "realtime", "audio": {"output": {"format": "pcm16"}}},
                "invalid_value",
                "session.audio.output.format",
            ),
            (
                {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "magic"}}}},
                "invalid_value",
                "session.audio.input.turn_detection.type",
            ),
            (
                {
                    "type": "realtime",
                    "tools": [{"type": "function", "name": "f", "parameters": {"type": "array"}}],
                },
                "invalid_value",
                "session.tools[0].parameters",
            ),
        ],
    )
    def test_a_bad_field_is_refused_with_its_param(
        self, session: dict[str, Any], code: str, param: str
    ) -> None:
        """The error names the code and the param, and answers our event_id."""

        async def test(server: FakeRealtime, client: Client) -> None:
            event_id = await client.send("session.update", session=session)
            error = await client.error()
            assert (error["code"], error["param"], error["event_id"]) == (code, param, event_id)

        with_client(test, session=None)


class TestInputAudio:
    """Appends, commits, server VAD."""

    def test_committing_less_than_100_ms_is_the_documented_error(self) -> None:
        """input_audio_buffer_commit_empty with the service's message."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("input_audio_buffer.append", audio=b64(bytes(2400)))  # 50 ms
            await client.send("input_audio_buffer.commit")
            error = await client.error()
            assert error["code"] == "input_audio_buffer_commit_empty"
            assert error["message"] == EMPTY_COMMIT_MESSAGE.format(ms=50)

        with_client(test)

    def test_bad_base64_and_partial_samples_are_refused(self) -> None:
        """Both invalid_value on 'audio'; nothing is buffered."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("input_audio_buffer.append", audio="%%%")
            assert (await client.error())["param"] == "audio"
            await client.send("input_audio_buffer.append", audio=b64(b"\x01\x02\x03"))
            assert "whole" in (await client.error())["message"]
            assert server.sessions[0].audio_in == b""

        with_client(test)

    def test_unknown_types_and_bad_json_are_errors_not_disconnects(self) -> None:
        """The connection stays open after each."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("response.teleport")
            assert (await client.error())["param"] == "type"
            await client.ws.send("{nope")
            assert (await client.error())["code"] == "invalid_json"
            await client.send("input_audio_buffer.clear")
            assert (await client.recv())["type"] == "input_audio_buffer.cleared"

        with_client(test)

    def test_server_vad_finds_real_speech_and_answers_the_turn(self) -> None:
        """speech_started/stopped at the clip's speech, committed, transcript, response."""
        speech = bytes(24000) + clip("0880") + bytes(48000)  # 0.5 s, speech, 1 s
        session = {**GA_SESSION, "audio": {"input": {"transcription": {"model": "whisper-1"}}}}

        async def test(server: FakeRealtime, client: Client) -> None:
            for k in range(0, len(speech), 4800):
                await client.send("input_audio_buffer.append", audio=b64(speech[k : k + 4800]))
            events = await client.until("response.done")
            kinds = [e["type"] for e in events]
            assert kinds[:4] == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
            ]
            started, stopped = events[0], events[1]
            assert 200 <= started["audio_start_ms"] <= 600
            assert stopped["audio_end_ms"] - 500 <= len(speech) * 1000 // 48000
            assert started["item_id"] == stopped["item_id"] == events[2]["item_id"]
            (transcript,) = [e for e in events if e["type"].endswith("transcription.completed")]
            assert transcript["transcript"] == "hello"
            audio = b"".join(
                base64.b64decode(e["delta"])
                for e in events
                if e["type"] == "response.output_audio.delta"
            )
            assert len(audio) // 48 == len("Hi there, friend.") * 1000 // 15
            done = [e for e in events if e["type"] == "response.output_audio_transcript.done"]
            assert done[0]["transcript"] == "Hi there, friend."

        with_client(test, session=session, turns=[Turn("hello", "Hi there, friend.")])

    def test_mulaw_in_is_decoded_for_the_vad_and_mulaw_comes_out(self) -> None:
        """G.711 both ways: the fake hears the speech and answers in μ-law."""
        pcm8 = clip("0880", rate=8000)
        mulaw = ulaw_encode(bytes(8000) + pcm8 + bytes(16000))
        session = {
            "type": "realtime",
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcmu"}},
            },
        }

        async def test(server: FakeRealtime, client: Client) -> None:
            for k in range(0, len(mulaw), 1600):
                await client.send("input_audio_buffer.append", audio=b64(mulaw[k : k + 1600]))
            events = await client.until("response.done")
            assert events[0]["type"] == "input_audio_buffer.speech_started"
            audio = b"".join(
                base64.b64decode(e["delta"]) for e in events if e["type"].endswith("audio.delta")
            )
            assert max(abs(v) for v in memoryview(ulaw_decode(audio)).cast("h")) > 3000
            assert server.sessions[0].audio_in == ulaw_decode(mulaw)

        with_client(test, session=session, turns=[Turn("", "Yes.")])


class TestResponses:
    """response.create / cancel, truncation, function calls."""

    def test_a_second_create_while_one_runs_and_a_cancel_with_none_are_errors(self) -> None:
        """conversation_already_has_active_response; response_cancel_not_active."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("response.create")
            await client.send("response.create")
            assert (await client.error())["code"] == "conversation_already_has_active_response"
            await client.until("response.done")
            await client.send("response.cancel")
            assert (await client.error())["code"] == "response_cancel_not_active"

        with_client(test, latency_s=0.05, turns=[Turn("", "A rather long answer indeed.")])

    def test_a_cancelled_response_ends_cancelled_and_can_be_truncated_within_its_audio(
        self,
    ) -> None:
        """Cancel mid-reply: response.done cancelled; truncate past the audio is refused."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("response.create")
            events = await client.until("response.output_audio.delta")
            item_id = events[-1]["item_id"]
            await client.send("response.cancel")
            done = (await client.until("response.done"))[-1]["response"]
            assert done["status"] == "cancelled"
            assert done["status_details"]["reason"] == "client_cancelled"
            await client.send(
                "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=100_000
            )
            assert (await client.error())["param"] == "audio_end_ms"
            await client.send(
                "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=50
            )
            truncated = (await client.until("conversation.item.truncated"))[-1]
            assert truncated["audio_end_ms"] == 50
            (cut,) = server.sessions[0].truncations
            assert cut.audio_end_ms == 50 and cut.generated_ms < 1000

        long = "word " * 100
        with_client(test, pace=1.0, delta_ms=50, turns=[Turn("", long)])

    def test_a_function_call_waits_for_its_output_before_the_reply(self) -> None:
        """Unknown call ids are refused; the right output reaches the spoken reply."""

        async def test(server: FakeRealtime, client: Client) -> None:
            await client.send("response.create")
            events = await client.until("response.done")
            (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
            assert done["arguments"] == '{"city": "Oslo"}' and "name" not in done  # GA
            item = {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}
            await client.send("conversation.item.create", item=item)
            assert (await client.error())["param"] == "item.call_id"
            item["call_id"] = done["call_id"]
            await client.send("conversation.item.create", item=item)
            await client.send("response.create")
            events = await client.until("response.done")
            (text,) = [e for e in events if e["type"].endswith("audio_transcript.done")]
            assert text["transcript"] == "It is {} there."

        turn = Turn("", "It is {output} there.", call=("get_weather", '{"city": "Oslo"}'))
        with_client(test, turns=[turn])
