"""The fake ElevenLabs server follows the protocol notes: validation, generation, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vbgraph.clock import VirtualClock
from vbgraph.dsp.g711 import ulaw_encode
from vbgraph.providers.elevenlabs.protocol import build_url
from vbgraph.testing.fakes.elevenlabs import FakeElevenLabs, synthesize


@dataclass
class Talk:
    """What one connection got back: messages, close code and reason, time of the close."""

    messages: list[dict[str, Any]]
    code: int | None
    reason: str
    closed_at: float

    def audio(self) -> bytes:
        return b"".join(base64.b64decode(m["audio"]) for m in self.messages if m.get("audio"))

    def chars(self) -> str:
        return "".join(
            "".join(m["alignment"]["chars"]) for m in self.messages if m.get("alignment")
        )


def talk(
    messages: Sequence[dict[str, Any]],
    *,
    multi: bool = True,
    fmt: str = "pcm_16000",
    key: str | None = "xi-test",
    fake: dict[str, Any] | None = None,
    **query: Any,
) -> Talk:
    """Connect, send ``messages``, read until the server closes (virtual time)."""

    async def main() -> Talk:
        async with FakeElevenLabs(**(fake or {})) as server:
            url = build_url(server.url, "v1", model_id="m", output_format=fmt, multi=multi, **query)
            headers = {"xi-api-key": key} if key is not None else {}
            received: list[dict[str, Any]] = []
            async with connect(url, additional_headers=headers) as ws:
                with contextlib.suppress(ConnectionClosed):  # the server may close first
                    for msg in messages:
                        await ws.send(json.dumps(msg))
                try:
                    async with asyncio.timeout(600):
                        while True:  # until the close (kept: a comprehension would lose all)
                            received.append(json.loads(await ws.recv()))
                except ConnectionClosed:
                    pass
                loop = asyncio.get_running_loop()
                return Talk(received, ws.close_code, ws.close_reason or "", loop.time())

    return VirtualClock().run(main(), debug=True)


def refused(fake: dict[str, Any] | None = None, path: str = "", **kwargs: Any) -> int:
    """The HTTP status of a refused handshake."""

    async def main() -> int:
        async with FakeElevenLabs(**(fake or {})) as server:
            url = build_url(server.url, "v1", model_id="m", output_format="pcm_16000")
            try:
                async with connect(url.replace("/v1/", path or "/v1/"), **kwargs):
                    pass
            except InvalidStatus as exc:
                return exc.response.status_code
            return 101

    return VirtualClock().run(main(), debug=True)


INIT = {"text": " ", "context_id": "c1"}


class TestGeneration:
    """Audio, alignment and isFinal (protocol doc: Server)."""

    def test_the_single_stream_speaks_between_bos_and_eos_then_closes(self) -> None:
        """BOS, text, EOS: audio of the text, alignment of its characters, isFinal, 1000."""
        t = talk([{"text": " "}, {"text": "Hello there. "}, {"text": ""}], multi=False)
        assert t.audio() == synthesize("Hello there. ", 16000, 60)
        assert t.chars() == "Hello there. "
        assert t.messages[-1] == {"isFinal": True, "audio": None}
        assert (t.code, len(t.messages)) == (1000, 9)  # 780 ms in 100 ms chunks, then final

    def test_alignment_times_are_relative_to_each_chunk(self) -> None:
        """sync_alignment=true: each chunk's characters start within its 100 ms."""
        t = talk([INIT, {"text": "abcdefgh ", "context_id": "c1", "flush": True},
                  {"close_socket": True}])  # fmt: skip
        starts = [m["alignment"]["charStartTimesMs"] for m in t.messages if m.get("audio")]
        assert starts == [[0, 60], [20, 80], [40], [0, 60], [20, 80], []]  # 540 ms of audio
        assert all(m.get("contextId") == "c1" for m in t.messages)

    def test_without_sync_alignment_the_first_chunk_holds_it_all(self) -> None:
        """Times then count from the generation's start; later chunks have none."""
        t = talk([INIT, {"text": "abc ", "context_id": "c1", "flush": True},
                  {"close_socket": True}], sync_alignment=False)  # fmt: skip
        audio = [m for m in t.messages if m.get("audio")]
        assert audio[0]["alignment"]["charStartTimesMs"] == [0, 60, 120, 180]
        assert all(m["alignment"] is None for m in audio[1:])

    def test_text_waits_for_the_chunk_schedule_or_a_flush(self) -> None:
        """Under 120 characters nothing generates; flush and the schedule trigger it."""
        t = talk(
            [
                {
                    "text": " ",
                    "context_id": "a",
                    "generation_config": {"chunk_length_schedule": [50]},
                },
                {"text": "short ", "context_id": "a"},
                {"text": "x" * 50 + " ", "context_id": "a"},
                {"text": " ", "context_id": "b"},
                {"text": "held ", "context_id": "b"},
                {"close_context": True, "context_id": "b"},
                {"close_socket": True},
            ]
        )
        assert t.chars() == "short " + "x" * 50 + " "  # b's text was never flushed: dropped
        finals = [m["contextId"] for m in t.messages if m.get("isFinal")]
        assert sorted(finals) == ["a", "b"]

    def test_a_closed_context_still_speaks_what_was_flushed_then_finals(self) -> None:
        """close_context after a flush: the audio still comes, then isFinal."""
        t = talk([INIT, {"text": "late ", "context_id": "c1", "flush": True},
                  {"close_context": True, "context_id": "c1"}, {"close_socket": True}])  # fmt: skip
        assert t.chars() == "late "
        assert t.messages[-1] == {"isFinal": True, "contextId": "c1"}

    def test_ulaw_output_is_the_g711_encoding_of_the_same_speech(self) -> None:
        """ulaw_8000: one byte per sample."""
        t = talk([INIT, {"text": "hi ", "context_id": "c1", "flush": True},
                  {"close_socket": True}], fmt="ulaw_8000")  # fmt: skip
        assert t.audio() == ulaw_encode(synthesize("hi ", 8000, 60))


class TestValidation:
    """What the fake refuses (protocol doc: Fake server must emulate)."""

    @pytest.mark.parametrize(
        ("messages", "needle"),
        [
            ([{"text": "Hello ", "context_id": "c1"}], 'first message must be {"text": " "}'),
            ([INIT, {"text": "x", "context_id": "c1", "speed": 2}], "unknown message schema"),
            ([INIT, {"flush": True, "context_id": "c2"}], "'c2' was not initialised"),
            ([{"text": " ", "voice_settings": {"stability": 3}}], "voice_settings.stability"),
            ([INIT, {"text": " ", "context_id": "c2", "voice_settings": {"speed": 1.0}}],
             "voice_settings field must be provided in the first message"),
            ([INIT] + [{"text": " ", "context_id": f"c{i}"} for i in range(2, 7)],
             "more than 5 contexts"),
        ],
    )  # fmt: skip
    def test_broken_rules_get_an_error_message_and_a_1008_close(
        self, messages: list[dict[str, Any]], needle: str
    ) -> None:
        """{"error": ..., "message": ..., "code": 1008} then close 1008."""
        t = talk(messages)
        [error] = [m for m in t.messages if "error" in m]
        assert needle in error["message"] and error["code"] == 1008
        assert t.code == 1008

    def test_unchanged_voice_settings_may_come_again(self) -> None:
        """The rule is "not provided or not change"."""
        settings = {"stability": 0.5, "speed": 1.1}
        t = talk([{**INIT, "voice_settings": settings},
                  {"text": " ", "context_id": "c2", "voice_settings": settings},
                  {"close_socket": True}])  # fmt: skip
        assert t.code == 1000 and not [m for m in t.messages if "error" in m]

    @pytest.mark.parametrize(
        "first", [{"xi_api_key": "xi-test"}, {"xi-api-key": "xi-test"},
                  {"authorization": "Bearer xi-test"}],
    )  # fmt: skip
    def test_without_the_header_the_first_message_may_carry_the_key(
        self, first: dict[str, str]
    ) -> None:
        """First-message auth, in each documented spelling."""
        t = talk([{**INIT, **first}, {"close_socket": True}], key=None)
        assert t.code == 1000

    @pytest.mark.parametrize("key", [None, "wrong"])
    def test_a_missing_or_wrong_key_is_refused_with_1008(self, key: str | None) -> None:
        """invalid_api_key error, then close 1008 "Invalid API key"."""
        t = talk([INIT], key=key)
        assert t.messages == [
            {"message": "Invalid API key", "error": "invalid_api_key", "code": 1008}
        ]
        assert (t.code, t.reason) == (1008, "Invalid API key")

    def test_bad_handshakes_get_http_errors(self) -> None:
        """Unknown path 404, non-raw format 400, wrong key 401 when asked to."""
        assert refused(path="/v2/") == 404
        assert (
            refused({"reject_bad_key_at_handshake": True}, additional_headers={"xi-api-key": "x"})
            == 401
        )
        assert refused() == 101

    def test_an_idle_socket_is_closed_after_the_inactivity_timeout(self) -> None:
        """inactivity_timeout=5: close 1008 input_timeout_exceeded at 5 s (virtual)."""
        t = talk([INIT], inactivity_timeout_s=5)
        assert t.code == 1008 and t.reason.startswith("input_timeout_exceeded")
        assert t.closed_at == pytest.approx(5, abs=0.01)

    def test_drop_after_cuts_the_connection_without_a_close_frame(self) -> None:
        """A mid-stream disconnect: the client sees 1006 after N chunks."""

        async def main() -> tuple[int, int | None]:
            async with FakeElevenLabs() as server:
                server.drop_after(2)
                url = build_url(server.url, "v", model_id="m", output_format="pcm_16000")
                chunks = 0
                async with connect(url, additional_headers={"xi-api-key": "xi-test"}) as ws:
                    await ws.send(json.dumps(INIT))
                    await ws.send(
                        json.dumps({"text": "a long text ", "context_id": "c1", "flush": True})
                    )
                    with pytest.raises(ConnectionClosed):
                        async for _ in ws:
                            chunks += 1
                    await server.wait_until(lambda: server.connections[0].dropped)
                    return chunks, ws.close_code

        assert VirtualClock().run(main(), debug=True) == (2, 1006)
