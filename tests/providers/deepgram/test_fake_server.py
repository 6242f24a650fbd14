"""The fake Deepgram server follows the protocol notes, driven by a plain websockets client."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from vbgraph.clock import VirtualClock
from vbgraph.dsp import g711
from vbgraph.testing.fakes.deepgram import FakeDeepgram

from .support import clip, pcm, text

RAW = "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300"
SILENCE = bytes(640)  # 20 ms of 16 kHz linear16


def serve(test: Callable[[FakeDeepgram], Awaitable[Any]], *script: str, **options: Any) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(120):  # virtual seconds; a guard against hangs
            async with FakeDeepgram(script, **options) as fake:
                return await test(fake)

    return VirtualClock().run(main(), debug=True)


async def open_ws(fake: FakeDeepgram, query: str = RAW, key: str = "Token dg-test") -> Any:
    return await connect(f"{fake.url}?{query}", additional_headers={"Authorization": key})


async def stream(ws: ClientConnection, audio: bytes, chunk: int = 640) -> None:
    for i in range(0, len(audio), chunk):
        await ws.send(audio[i : i + chunk])


async def messages(ws: ClientConnection) -> list[dict[str, Any]]:
    """Everything the server sends until it closes (with any code)."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosedError):
        async for m in ws:  # a loop, not a comprehension: keep what came before an error
            out.append(json.loads(m))  # noqa: PERF401
    return out


def transcripts(msgs: list[dict[str, Any]], final: bool) -> list[str]:
    return [
        m["channel"]["alternatives"][0]["transcript"]
        for m in msgs
        if m["type"] == "Results" and m["is_final"] is final
    ]


class TestHandshake:
    """Auth header and query checks answer as Deepgram does: HTTP errors before the upgrade."""

    @pytest.mark.parametrize("key", ["Token wrong", "dg-test", "Basic dg-test", ""])
    def test_a_bad_or_missing_key_is_a_401_with_a_json_body(self, key: str) -> None:
        """Only 'Token <key>' or 'Bearer <key>' with the right key pass."""

        async def test(fake: FakeDeepgram) -> tuple[int, dict[str, Any]]:
            with pytest.raises(InvalidStatus) as caught:
                await open_ws(fake, key=key)
            response = caught.value.response
            assert response.headers["Content-Type"] == "application/json"
            return response.status_code, json.loads(bytes(response.body))

        status, body = serve(test)
        assert status == 401 and body["err_code"] == "INVALID_AUTH"

    def test_a_bearer_token_is_accepted(self) -> None:
        """Temporary tokens use the Bearer scheme."""

        async def test(fake: FakeDeepgram) -> str:
            ws = await open_ws(fake, key="Bearer dg-test")
            await ws.close()
            return fake.connections[0].scheme

        assert serve(test) == "Bearer"

    @pytest.mark.parametrize(
        ("query", "why"),
        [
            ("encoding=linear16", "sample_rate is required"),
            ("sample_rate=16000", "raw audio only"),
            ("encoding=opus&sample_rate=48000", "linear16, mulaw or alaw"),
            ("encoding=linear16&sample_rate=abc", "integer"),
            ("encoding=linear16&sample_rate=16000&interim_results=yes", "true or false"),
            ("encoding=linear16&sample_rate=16000&utterance_end_ms=1000", "interim_results"),
            ("encoding=linear16&sample_rate=16000&endpointing=soon", "integer"),
        ],
    )
    def test_bad_query_parameters_are_a_400(self, query: str, why: str) -> None:
        """Raw audio needs encoding and sample_rate; values are checked."""

        async def test(fake: FakeDeepgram) -> tuple[int, str]:
            with pytest.raises(InvalidStatus) as caught:
                await open_ws(fake, query)
            response = caught.value.response
            return response.status_code, json.loads(bytes(response.body))["err_msg"]

        status, message = serve(test)
        assert status == 400 and why in message

    def test_another_path_is_a_404(self) -> None:
        """Only /v1/listen exists."""

        async def test(fake: FakeDeepgram) -> int:
            with pytest.raises(InvalidStatus) as caught:
                await connect(
                    fake.url.replace("/v1/listen", "/v2/listen"),
                    additional_headers={"Authorization": "Token dg-test"},
                )
            return caught.value.response.status_code

        assert serve(test) == 404


class TestRecognition:
    """Utterances are found in the audio itself, not taken from the client."""

    def test_a_clip_gives_speech_started_interims_a_speech_final_and_utterance_end(self) -> None:
        """The documented order with vad_events and utterance_end_ms."""

        async def test(fake: FakeDeepgram) -> list[dict[str, Any]]:
            ws = await open_ws(fake, RAW + "&vad_events=true&utterance_end_ms=1000")
            await stream(ws, pcm(clip(880)) + SILENCE * 100)
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await messages(ws)

        msgs = serve(test, text(880))
        kinds = [m["type"] for m in msgs]
        assert kinds[0] == "SpeechStarted" and kinds[-1] == "Metadata"
        assert transcripts(msgs, final=True)[0] == text(880)
        interims = transcripts(msgs, final=False)
        assert interims and all(text(880).startswith(t) and t != text(880) for t in interims)
        final = next(m for m in msgs if m["type"] == "Results" and m["is_final"])
        assert final["speech_final"] and not final["from_finalize"]
        ue = next(m for m in msgs if m["type"] == "UtteranceEnd")
        words = final["channel"]["alternatives"][0]["words"]
        assert ue["last_word_end"] == words[-1]["end"]
        assert kinds.index("UtteranceEnd") > kinds.index("Results")

    def test_silence_gives_no_utterance_only_periodic_empty_finals(self) -> None:
        """12 s of digital silence: empty finals every silence_final_s, nothing scripted used."""

        async def test(fake: FakeDeepgram) -> list[dict[str, Any]]:
            ws = await open_ws(fake)
            await stream(ws, SILENCE * 600)
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await messages(ws)

        msgs = serve(test, "never said")
        finals = [m for m in msgs if m["type"] == "Results"]
        assert [(m["start"], m["duration"]) for m in finals[:2]] == [(0.0, 5.0), (5.0, 5.0)]
        assert set(transcripts(msgs, final=True)) == {""}

    @pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
    def test_g711_audio_is_decoded_before_listening(self, encoding: str) -> None:
        """The same clip as 8 kHz G.711 is heard as one utterance."""
        samples = np.frombuffer(pcm(clip(930)), "<i2")[::2].tobytes()  # crude 16 -> 8 kHz
        encode = g711.ulaw_encode if encoding == "mulaw" else g711.alaw_encode

        async def test(fake: FakeDeepgram) -> list[dict[str, Any]]:
            ws = await open_ws(fake, f"encoding={encoding}&sample_rate=8000&endpointing=300")
            await stream(ws, encode(samples + bytes(16000)), chunk=160)
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await messages(ws)

        msgs = serve(test, text(930))
        assert transcripts(msgs, final=True)[0] == text(930)

    def test_an_exhausted_script_gives_empty_transcripts_and_counts(self) -> None:
        """Two utterances, one scripted text: the second is empty and counted."""

        async def test(fake: FakeDeepgram) -> tuple[list[str], int]:
            ws = await open_ws(fake)
            await stream(ws, pcm(clip(880)) + SILENCE * 50 + pcm(clip(930)) + SILENCE * 50)
            await ws.send(json.dumps({"type": "CloseStream"}))
            return transcripts(await messages(ws), final=True), fake.unscripted

        finals, unscripted = serve(test, "only one")
        assert finals[0] == "only one" and unscripted == 1 and "" in finals[1:]


class TestControl:
    """KeepAlive, Finalize, CloseStream and invalid messages."""

    def test_finalize_flushes_the_open_utterance_with_from_finalize(self) -> None:
        """Endpointing off: the final only comes on Finalize; a second Finalize gets nothing."""

        async def test(fake: FakeDeepgram) -> list[dict[str, Any]]:
            ws = await open_ws(fake, RAW.replace("endpointing=300", "endpointing=false"))
            await stream(ws, pcm(clip(930)))
            await ws.send(json.dumps({"type": "Finalize"}))
            await ws.send(json.dumps({"type": "Finalize"}))
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await messages(ws)

        msgs = serve(test, text(930))
        finals = [m for m in msgs if m["type"] == "Results" and m["is_final"]]
        assert len(finals) == 1 and finals[0]["from_finalize"]
        assert finals[0]["channel"]["alternatives"][0]["transcript"] == text(930)

    def test_close_stream_sends_metadata_then_closes_1000(self) -> None:
        """Metadata carries the audio's duration and sha256; audio after it is a violation."""
        audio = SILENCE * 50

        async def test(fake: FakeDeepgram) -> tuple[list[dict[str, Any]], int | None, list[str]]:
            ws = await open_ws(fake)
            await stream(ws, audio)
            await ws.send(json.dumps({"type": "CloseStream"}))
            await ws.send(SILENCE)
            msgs = await messages(ws)
            await fake.wait_for(lambda: fake.connections[0].closed)
            return msgs, ws.close_code, fake.connections[0].violations

        msgs, code, violations = serve(test)
        meta = msgs[-1]
        assert meta["type"] == "Metadata" and meta["duration"] == 1.0 and meta["channels"] == 1
        assert meta["sha256"] == hashlib.sha256(audio).hexdigest()
        assert code == 1000 and violations == ["message after CloseStream"]

    def test_an_unparsable_text_message_gets_a_schema_error(self) -> None:
        """Deepgram answers Error with variant SchemaError; the stream goes on."""

        async def test(fake: FakeDeepgram) -> list[dict[str, Any]]:
            ws = await open_ws(fake)
            await ws.send('{"type": "Finalise"}')
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await messages(ws)

        msgs = serve(test)
        assert msgs[0]["type"] == "Error" and msgs[0]["variant"] == "SchemaError"
        assert msgs[-1]["type"] == "Metadata"

    def test_no_message_for_the_idle_timeout_closes_with_net_0001(self) -> None:
        """KeepAlive holds the connection; then silence on the wire closes 1011 NET-0001."""

        async def test(fake: FakeDeepgram) -> tuple[int | None, str | None, float]:
            loop = asyncio.get_running_loop()
            ws = await open_ws(fake)
            t0 = loop.time()
            for _ in range(3):
                await asyncio.sleep(1.5)  # virtual time: a client pausing between KeepAlives
                await ws.send(json.dumps({"type": "KeepAlive"}))
            await messages(ws)
            return ws.close_code, ws.close_reason, loop.time() - t0

        code, reason, lasted = serve(test, idle_timeout_s=2.0)
        assert code == 1011 and reason is not None and reason.startswith("NET-0001")
        assert lasted == pytest.approx(4.5 + 2.0)

    def test_a_dropped_connection_gives_its_unfinished_text_back(self) -> None:
        """An abort mid-utterance: the text waits for the next connection, which hears it."""

        async def test(fake: FakeDeepgram) -> tuple[int | None, list[str]]:
            fake.drop_after(1.5)
            ws = await open_ws(fake)
            with pytest.raises(ConnectionClosedError):
                await stream(ws, pcm(clip(880)))
                while True:  # interim results may come first; the close comes
                    await ws.recv()
            again = await open_ws(fake)
            await stream(again, pcm(clip(880)) + SILENCE * 50)
            await again.send(json.dumps({"type": "CloseStream"}))
            return fake.connections[0].close_code, transcripts(await messages(again), True)

        code, finals = serve(test, text(880))
        assert code == 1006 and finals[0] == text(880)

    def test_latency_delays_every_message(self) -> None:
        """With latency_s, a result leaves that long after the audio that caused it."""

        async def test(fake: FakeDeepgram) -> float:
            loop = asyncio.get_running_loop()
            ws = await open_ws(fake, RAW.replace("endpointing=300", "endpointing=false"))
            await stream(ws, pcm(clip(930)))
            sent = loop.time()
            await ws.send(json.dumps({"type": "Finalize"}))
            msg = json.loads(await ws.recv())
            while not msg.get("from_finalize"):
                msg = json.loads(await ws.recv())
            return loop.time() - sent

        assert serve(test, text(930), latency_s=0.4) == pytest.approx(0.4)
