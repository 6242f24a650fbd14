"""The fake Cartesia server checks what clients send and answers as the notes document."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from vbgraph.clock import VirtualClock
from vbgraph.dsp.g711 import ulaw_decode
from vbgraph.testing.fakes.cartesia import FakeCartesia, synthesize, word_timestamps

KEY = "sk_car_test"
VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
HEADERS = {"X-API-Key": KEY, "Cartesia-Version": "2025-04-16"}
RAW16K = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}


def request(cid: str, text: str, more: bool, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "context_id": cid,
        "model_id": "sonic-3",
        "transcript": text,
        "continue": more,
        "voice": {"mode": "id", "id": VOICE},
        "output_format": RAW16K,
        "add_timestamps": True,
    }
    body.update(overrides)
    return json.dumps(body)


async def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Messages received up to and including the first of type ``kind``."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["type"] != kind:
        got.append(json.loads(await ws.recv()))
    return got


def run(test: Callable[[FakeCartesia], Awaitable[None]], **fake: Any) -> None:
    async def main() -> None:
        async with asyncio.timeout(60), FakeCartesia(KEY, **fake) as server:
            await test(server)

    VirtualClock().run(main(), debug=True)


class TestHandshake:
    """Upgrade checks: path, version, key (HTTP 401 as Cartesia answers)."""

    @pytest.mark.parametrize(
        ("headers", "path", "status", "why"),
        [
            ({"X-API-Key": "wrong", "Cartesia-Version": "2025-04-16"}, "", 401, "Invalid API key"),
            ({"Cartesia-Version": "2025-04-16"}, "", 401, "API key is required"),
            ({"X-API-Key": KEY}, "", 400, "Cartesia-Version is required"),
            ({"X-API-Key": KEY, "Cartesia-Version": "yesterday"}, "", 400, "bad version"),
            (HEADERS, "/elsewhere", 404, "no route"),
        ],
    )
    def test_bad_upgrades_are_refused_with_the_status_cartesia_uses(
        self, headers: dict[str, str], path: str, status: int, why: str
    ) -> None:
        """Each refusal is an HTTP error on the upgrade, recorded with its reason."""

        async def test(fake: FakeCartesia) -> None:
            url = fake.url.replace("/tts/websocket", path) if path else fake.url
            with pytest.raises(InvalidStatus) as caught:
                await connect(url, additional_headers=headers)
            assert caught.value.response.status_code == status
            assert why in fake.rejected[0] and fake.connections == 0

        run(test)

    def test_bearer_and_query_parameters_are_accepted_too(self) -> None:
        """Authorization: Bearer, or ?api_key= with ?cartesia_version= (browser style)."""

        async def test(fake: FakeCartesia) -> None:
            bearer = {"Authorization": f"Bearer {KEY}", "Cartesia-Version": "2025-04-16"}
            async with connect(fake.url, additional_headers=bearer):
                pass
            async with connect(f"{fake.url}?api_key={KEY}&cartesia_version=2025-04-16"):
                pass
            await fake.wait_for(lambda: len(fake.handshakes) == 2)

        run(test)


class TestValidation:
    """Each request is checked; violations get the documented error message."""

    @pytest.mark.parametrize(
        ("overrides", "code", "text"),
        [
            ({"model_id": "sonic-9"}, "invalid_model_id", "model_id"),
            ({"voice": {"mode": "id", "id": "nope"}}, "invalid_voice", "UUID"),
            ({"output_format": {**RAW16K, "sample_rate": 12345}}, "invalid_request", "sample_rate"),
            ({"output_format": {**RAW16K, "encoding": "mp3"}}, "invalid_request", "encoding"),
            ({"output_format": {**RAW16K, "container": "wav"}}, "invalid_request", "raw"),
            ({"transcript": ""}, "invalid_request", "empty"),
            ({"continue": "yes"}, "invalid_request", "continue"),
            ({"max_buffer_delay_ms": 9000}, "invalid_request", "max_buffer_delay_ms"),
            ({"generation_config": {"speed": 3}}, "invalid_request", "speed"),
        ],
    )
    def test_a_bad_request_gets_an_error_naming_the_problem(
        self, overrides: dict[str, Any], code: str, text: str
    ) -> None:
        """status_code, title, message, error_code, request_id, doc_url, done: true."""

        async def test(fake: FakeCartesia) -> None:
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "Hello ", True, **overrides))
                (error,) = await until(ws, "error")
            assert error["context_id"] == "c1" and error["done"] is True
            assert error["error_code"] == code and text in error["message"]
            assert error["status_code"] == 400 and error["request_id"] and error["doc_url"]

        run(test)

    def test_text_after_the_input_was_closed_is_an_error(self) -> None:
        """A context is not reused once continue: false was sent."""

        async def test(fake: FakeCartesia) -> None:
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "Hi.", False))
                await until(ws, "done")
                await ws.send(request("c1", "again ", True))
                error = (await until(ws, "error"))[-1]
            assert error["error_code"] == "context_closed"

        run(test)

    def test_changing_the_format_within_a_context_is_an_error(self) -> None:
        """model, voice and output_format are fixed by the context's first request."""

        async def test(fake: FakeCartesia) -> None:
            fmt = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "Hello ", True))
                await ws.send(request("c1", "there ", True, output_format=fmt))
                error = (await until(ws, "error"))[-1]
            assert "must not change" in error["message"]

        run(test)


class TestSpeech:
    """Audio and timestamps as the notes document them."""

    def test_audio_is_the_fake_voice_and_timestamps_match_its_durations(self) -> None:
        """Chunks decode to synthesize(); word ends lie where each word's audio ends."""

        async def test(fake: FakeCartesia) -> None:
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "Hello big ", True))
                await ws.send(request("c1", "world.", True))
                await ws.send(request("c1", "", False))
                got = await until(ws, "done")
            chunks = [m for m in got if m["type"] == "chunk"]
            assert len(chunks) > 3 and all(m["status_code"] == 200 for m in chunks)
            audio = b"".join(base64.b64decode(m["data"]) for m in chunks)
            expected = synthesize("Hello big ", 16000)
            tail = synthesize("world.", 16000)
            pcm = (np.concatenate([expected, tail]) * 32767).round().astype("<i2").tobytes()
            assert audio == pcm
            words: list[str] = []
            ends: list[float] = []
            for m in got:
                if m["type"] == "timestamps":
                    words += m["word_timestamps"]["words"]
                    ends += m["word_timestamps"]["end"]
            assert words == ["Hello", "big", "world."]
            assert ends == [w[2] for w in word_timestamps("Hello big world.", 16000)]
            assert ends[-1] == pytest.approx(len(audio) / 2 / 16000, abs=0.06)

        run(test)

    def test_mulaw_output_is_real_g711(self) -> None:
        """pcm_mulaw at 8 kHz decodes to the fake voice (not silence)."""

        async def test(fake: FakeCartesia) -> None:
            fmt = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "Telephone.", False, output_format=fmt))
                got = await until(ws, "done")
            audio = b"".join(base64.b64decode(m["data"]) for m in got if m["type"] == "chunk")
            assert len(audio) == 10 * 400  # one byte per sample, 50 ms per character
            pcm = np.frombuffer(ulaw_decode(audio), "<i2").astype(float)
            assert np.sqrt(np.mean(pcm**2)) > 1000

        run(test)

    def test_cancel_stops_a_context_without_done(self) -> None:
        """After cancel, nothing more of that context; other contexts go on."""

        async def test(fake: FakeCartesia) -> None:
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "A rather long sentence here. ", True))
                first = json.loads(await ws.recv())
                await ws.send(json.dumps({"context_id": "c1", "cancel": True}))
                await ws.send(request("c2", "Next.", False))
                rest = await until(ws, "done")
            assert first["context_id"] == "c1"
            assert rest[-1]["context_id"] == "c2" and fake.completed == ["c2"]
            assert fake.cancelled == ["c1"]
            late = [m for m in rest if m["context_id"] == "c1"]
            assert len(late) < 5  # at most what was in flight

        run(test, chunk_interval_ms=20)

    def test_flush_gives_flush_done_with_increasing_ids(self) -> None:
        """flush: true generates what is buffered, then flush_done 1, 2 ..."""

        async def test(fake: FakeCartesia) -> None:
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                await ws.send(request("c1", "One", True, flush=True))
                first = (await until(ws, "flush_done"))[-1]
                await ws.send(request("c1", " two", True, flush=True))
                second = (await until(ws, "flush_done"))[-1]
            assert (first["flush_id"], second["flush_id"]) == (1, 2)

        run(test)

    def test_latency_and_idle_timeout_run_on_session_time(self) -> None:
        """The first chunk comes first_chunk_latency_ms later; a silent socket is closed."""

        async def test(fake: FakeCartesia) -> None:
            loop = asyncio.get_running_loop()
            async with connect(fake.url, additional_headers=HEADERS) as ws:
                t0 = loop.time()
                await ws.send(request("c1", "Hi.", False))
                await until(ws, "chunk")
                assert loop.time() - t0 == pytest.approx(0.3)
                await until(ws, "done")
                await ws.wait_closed()
                assert ws.close_code == 1000 and ws.close_reason == "idle timeout"

        run(test, first_chunk_latency_ms=300, idle_timeout_s=5)
