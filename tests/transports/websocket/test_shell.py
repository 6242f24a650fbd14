"""The WebSocket transport end to end: a real server on loopback, ``websockets`` clients."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from vbgraph.dsp.convert import FormatConverter
from vbgraph.formats import MULAW, AudioFormat
from vbgraph.graph.load import loads
from vbgraph.nodes.transport_out import TransportOut
from vbgraph.serve import ServeConfig, Server, TransportHandler
from vbgraph.transports.link import CallLink
from vbgraph.transports.websocket.shell import WebSocketHandler

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocols" / "websocket.md"
ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in, sample_rate: 16000, transports: [websocket]}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out}
edges: [caller -> gain -> speaker]
"""
PACKET = 640  # 20 ms of pcm_s16le at 16 kHz
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
    """Run a test's client on a fresh loop; a hang fails the test instead of the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def tone(freq: float, seconds: float, rate: int = 16000, amp: float = 6000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def spectrum(pcm: bytes, rate: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x = np.frombuffer(pcm, "<i2").astype(float)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate), mag


def dominant(pcm: bytes, rate: int = 16000) -> float:
    freqs, mag = spectrum(pcm, rate)
    return float(freqs[int(np.argmax(mag))])


def share_near(pcm: bytes, freq: float, rate: int = 16000, width: float = 40) -> float:
    """Fraction of the spectrum's magnitude within ``width`` Hz of ``freq``."""
    freqs, mag = spectrum(pcm, rate)
    return float(mag[np.abs(freqs - freq) < width].sum() / max(mag.sum(), 1e-9))


def start(encoding: str = "pcm_s16le", rate: int = 16000, **more: Any) -> str:
    return json.dumps(
        {"type": "start", "format": {"encoding": encoding, "sample_rate": rate}, **more}
    )


END = json.dumps({"type": "end"})


@dataclass
class Received:
    """Everything a client got, in order."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None

    @property
    def bot_audio(self) -> bytes:
        return b"".join(self.audio)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.of_type("event") if m["event"] == name]


async def collect(ws: ClientConnection, got: Received | None = None) -> Received:
    """Read until the server closes."""
    got = got or Received()
    try:
        async for message in ws:
            note(got, message)
    except ConnectionClosed:
        pass
    got.close_code, got.close_reason = ws.close_code, ws.close_reason
    return got


def note(got: Received, message: str | bytes) -> None:
    if isinstance(message, bytes):
        got.audio.append(message)
        got.order.append("audio")
    else:
        msg = json.loads(message)
        got.messages.append(msg)
        got.order.append(msg["type"])


async def recv_json(ws: ClientConnection, got: Received, kind: str) -> dict[str, Any]:
    """Read (noting everything) until a message of type ``kind``."""
    while True:
        message = await ws.recv()
        note(got, message)
        if isinstance(message, str) and got.messages[-1]["type"] == kind:
            return got.messages[-1]


async def recv_audio(ws: ClientConnection, got: Received) -> None:
    """Read (noting everything) until a binary message."""
    while True:
        message = await ws.recv()
        note(got, message)
        if isinstance(message, bytes):
            return


@asynccontextmanager
async def serving(
    max_sessions: int = 4, handler: WebSocketHandler | None = None
) -> AsyncIterator[tuple[Server, str]]:
    handlers: list[TransportHandler] | None = None if handler is None else [handler]
    srv = Server(loads(ECHO).compile(), ServeConfig(port=0, max_sessions=max_sessions), handlers)
    async with srv:
        yield srv, f"ws://127.0.0.1:{srv.port}/ws"


async def settled(srv: Server) -> None:
    """Wait until every connection handler has finished."""
    tasks = list(srv.context.tasks)
    if tasks:
        await asyncio.wait(tasks)


async def echo_call(url: str, audio: bytes, first: str | None = None) -> Received:
    """One whole call: start, all audio in one message, end, read to the close."""
    async with connect(url) as ws:
        await ws.send(first or start())
        await ws.send(audio)
        await ws.send(END)
        return await collect(ws)


class TestCall:
    """A call from start to end."""

    def test_a_call_echoes_the_audio_and_ends_with_end_and_close_1000(self) -> None:
        """started, the caller's audio back byte for byte, events, mark, end, 1000."""
        audio = tone(440, 0.5)

        async def main() -> tuple[Received, int]:
            async with serving() as (srv, url):
                got = await echo_call(url, audio)
                return got, srv.calls.counters().ended

        got, ended = run(main())
        assert got.order[0] == "started" and got.order[-1] == "end"
        first = got.messages[0]
        assert first["session_id"].startswith("echo-") and first["version"] == 1
        fmt = {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}
        assert first["format"] == first["output_format"] == fmt
        assert got.bot_audio[: len(audio)] == audio
        assert not got.bot_audio[len(audio) :].strip(b"\x00")
        assert got.of_type("end") == [{"type": "end", "reason": "client_end"}]
        assert (got.close_code, got.close_reason) == (1000, "call ended")
        assert [m["name"] for m in got.of_type("mark")] == ["utterance-1"]
        assert len(got.events("bot_speech_started")) == 1
        assert got.events("bot_speech_stopped")[0]["interrupted"] is False
        assert not got.of_type("error") and ended == 1

    def test_bot_audio_is_paced_in_20_ms_packets_in_order(self) -> None:
        """One 500 ms message comes back as 25 packets of 20 ms, before end."""

        async def main() -> Received:
            async with serving() as (_, url):
                return await echo_call(url, tone(440, 0.5))

        got = run(main())
        assert [len(p) for p in got.audio] == [PACKET] * 25
        audio_at = [i for i, kind in enumerate(got.order) if kind == "audio"]
        assert got.order.index("started") < audio_at[0] and audio_at[-1] < got.order.index("end")

    def test_the_server_converts_between_the_clients_two_formats(self) -> None:
        """μ-law 8 kHz in, PCM 24 kHz out: same tone, same length."""
        mu = FormatConverter(AudioFormat(8000), AudioFormat(8000, 1, MULAW))
        audio = bytes(mu.process(tone(600, 0.4, rate=8000)))
        first = start("mulaw", 8000, output_format={"encoding": "pcm_s16le", "sample_rate": 24000})

        async def main() -> Received:
            async with serving() as (_, url):
                return await echo_call(url, audio, first)

        got = run(main())
        assert got.messages[0]["output_format"]["sample_rate"] == 24000
        assert {len(p) for p in got.audio} == {960}  # 20 ms at 24 kHz
        back = got.bot_audio
        assert abs(len(back) // 2 - 0.4 * 24000) <= 960
        assert abs(dominant(back, 24000) - 600) < 15

    def test_server_shutdown_ends_a_live_call_with_end_and_1000(self) -> None:
        """Draining the server plays out what is queued, then end and a clean close."""

        async def main() -> Received:
            srv = Server(loads(ECHO).compile(), ServeConfig(port=0))
            await srv.start()
            try:
                async with connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    got = Received()
                    await ws.send(start())
                    await ws.send(tone(440, 0.3))
                    await recv_audio(ws, got)
                    stopping = asyncio.create_task(srv.stop(drain_timeout_s=0))
                    await collect(ws, got)
                    await stopping
                    return got
            finally:
                await srv.stop()

        got = run(main())
        assert got.of_type("end") == [{"type": "end", "reason": "server_shutdown"}]
        assert got.close_code == 1000
        assert len(got.bot_audio) >= len(tone(440, 0.3))

    def test_a_client_that_hangs_up_frees_its_slot(self) -> None:
        """Closing the socket mid-call ends the session (input ends, output dropped)."""

        async def main() -> tuple[int, int]:
            async with serving() as (srv, url):
                async with connect(url) as ws:
                    await ws.send(start())
                    await ws.send(tone(440, 0.3))
                    await recv_audio(ws, Received())
                await settled(srv)
                c = srv.calls.counters()
                return c.active, c.ended

        assert run(main()) == (0, 1)


class TestInterrupt:
    """``interrupt`` from the client: the bot stops, ``clear`` says drop what is buffered."""

    def test_interrupt_sends_clear_and_no_old_audio_follows(self) -> None:
        """After clear only audio sent after the interrupt comes back."""

        async def main() -> tuple[Received, int, Received]:
            async with serving() as (_, url), connect(url) as ws:
                before = Received()
                await ws.send(start())
                await ws.send(tone(440, 1.0))
                await recv_audio(ws, before)
                await ws.send(json.dumps({"type": "interrupt"}))
                await recv_json(ws, before, "clear")
                await ws.send(tone(1000, 0.3))
                await ws.send(END)
                return before, len(before.audio), await collect(ws)

        before, packets_before_clear, after = run(main())
        # Paced: the interrupt arrived while most of the second was still to be sent.
        assert packets_before_clear < 50
        assert abs(dominant(after.bot_audio) - 1000) < 20
        assert share_near(after.bot_audio, 440) < 0.01
        assert all(share_near(p, 440) < 0.2 for p in after.audio if any(p))
        events = before.of_type("event") + after.of_type("event")
        assert any(e["event"] == "interrupt" and e["reason"] == "client interrupt" for e in events)
        stops = [e["interrupted"] for e in events if e["event"] == "bot_speech_stopped"]
        assert stops[0] is True and after.close_code == 1000


MALFORMED = [
    ("binary_first", [b"\x00\x00"], "unexpected_message", 1008),
    ("bad_json", ["{nope"], "bad_json", 1008),
    ("unsupported_format", [start(rate=44100)], "unsupported_format", 1003),
    ("missing_format", ['{"type": "start"}'], "bad_message", 1008),
    ("truncated_audio", [start(), tone(440, 0.1)[:-1]], "partial_sample", 1008),
    ("second_start", [start(), start()], "unexpected_message", 1008),
    ("unknown_type", [start(), '{"type": "hangup"}'], "unknown_type", 1008),
    ("too_big", [start(), bytes(64000)], "message_too_big", 1009),
]


class TestProtocolErrors:
    """A client that breaks the protocol gets an error and a close code; nobody else notices."""

    @pytest.mark.parametrize(
        ("messages", "code", "close_code"),
        [case[1:] for case in MALFORMED],
        ids=[case[0] for case in MALFORMED],
    )
    def test_a_malformed_client_is_closed_while_another_call_goes_on(
        self, messages: list[str | bytes], code: str, close_code: int
    ) -> None:
        """error (code, message), close with its code; the concurrent call is intact."""
        audio = tone(440, 0.4)

        async def main() -> tuple[Received, Received]:
            async with serving() as (_, url), connect(url) as good:
                mine = Received()
                await good.send(start())
                await good.send(audio)
                await recv_json(good, mine, "started")
                async with connect(url) as bad:
                    for message in messages:
                        await bad.send(message)
                    broken = await collect(bad)
                await good.send(END)
                return broken, await collect(good, mine)

        broken, good = run(main())
        errors = broken.of_type("error")
        assert len(errors) == 1 and errors[0]["code"] == code and errors[0]["fatal"] is True
        assert broken.order[-1] == "error"
        assert broken.close_code == close_code
        assert broken.close_reason and broken.close_reason in errors[0]["message"]
        assert good.bot_audio[: len(audio)] == audio
        assert not good.of_type("error") and good.close_code == 1000

    def test_a_message_over_the_socket_limit_is_closed_1009_by_the_websocket_layer(
        self,
    ) -> None:
        """Over max_msg_size aiohttp closes at once (documented: no error message)."""

        async def main() -> tuple[Received, int]:
            async with serving() as (srv, url), connect(url, max_size=None) as ws:
                await ws.send(start())
                await ws.send(bytes(2 << 20))
                got = await collect(ws)
                await settled(srv)
                return got, srv.calls.counters().active

        got, active = run(main())
        assert got.close_code == 1009 and not got.of_type("error") and active == 0

    def test_a_client_that_sends_no_start_is_closed_after_the_timeout(self) -> None:
        """start_timeout, close 1008, and the slot is free again."""

        async def main() -> tuple[Received, int]:
            async with (
                serving(handler=WebSocketHandler(start_timeout_s=0.2)) as (srv, url),
                connect(url) as ws,
            ):
                got = await collect(ws)
                await settled(srv)
                return got, srv.calls.counters().active

        got, active = run(main())
        assert got.of_type("error")[0]["code"] == "start_timeout"
        assert got.close_code == 1008 and active == 0

    def test_text_input_is_a_non_fatal_error_and_the_call_goes_on(self) -> None:
        """``text`` is answered with unsupported, fatal false; the call ends normally."""

        async def main() -> Received:
            async with serving() as (_, url), connect(url) as ws:
                await ws.send(start())
                await ws.send(json.dumps({"type": "text", "text": "hello"}))
                await ws.send(tone(440, 0.1))
                await ws.send(END)
                return await collect(ws)

        got = run(main())
        assert [(e["code"], e["fatal"]) for e in got.of_type("error")] == [("unsupported", False)]
        assert got.close_code == 1000 and len(got.bot_audio) >= 3200

    def test_a_plain_http_get_is_told_to_upgrade(self) -> None:
        """426 with a JSON error, no call admitted."""

        async def main() -> tuple[int, dict[str, Any], int]:
            async with (
                serving() as (srv, url),
                aiohttp.ClientSession() as http,
                http.get(url.replace("ws://", "http://")) as resp,
            ):
                return resp.status, await resp.json(), srv.calls.counters().started

        status, body, started = run(main())
        assert status == 426 and body["error"]["code"] == "upgrade_required" and started == 0


class TestAdmission:
    """A full server refuses at the protocol level."""

    def test_a_full_server_sends_server_full_and_closes_1013(self) -> None:
        """The second caller of a one-call server is refused with a clear message."""

        async def main() -> tuple[Received, Received, int]:
            async with serving(max_sessions=1) as (srv, url), connect(url) as first:
                mine = Received()
                await first.send(start())
                await recv_json(first, mine, "started")
                async with connect(url) as second:
                    refused = await collect(second)
                await first.send(tone(440, 0.1))
                await first.send(END)
                return refused, await collect(first, mine), srv.calls.counters().refused_full

        refused, first, count = run(main())
        assert refused.messages == [
            {
                "type": "error",
                "code": "server_full",
                "message": "server is full: 1 of 1 calls",
                "fatal": True,
            }
        ]
        assert (refused.close_code, refused.close_reason) == (1013, "server is full: 1 of 1 calls")
        assert first.close_code == 1000 and count == 1

    def test_a_draining_server_refuses_new_calls_with_server_draining(self) -> None:
        """During a graceful drain a new caller gets server_draining and 1013."""

        async def main() -> tuple[Received, Received]:
            async with serving() as (srv, url), connect(url) as first:
                mine = Received()
                await first.send(start())
                await recv_json(first, mine, "started")
                draining = asyncio.create_task(srv.calls.drain(30.0))
                async with connect(url) as second:
                    refused = await collect(second)
                await first.send(tone(440, 0.1))
                await first.send(END)
                await collect(first, mine)
                await draining
                return refused, mine

        refused, first = run(main())
        assert [m["code"] for m in refused.messages] == ["server_draining"]
        assert refused.close_code == 1013
        assert first.close_code == 1000 and first.of_type("end")[0]["reason"] == "client_end"

    def test_a_graph_that_cannot_start_is_session_failed_1011(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The error names the failing node; the slot is freed."""

        def broken(self: TransportOut) -> None:
            raise RuntimeError("no sound card")

        monkeypatch.setattr(TransportOut, "start", broken)

        async def main() -> tuple[Received, int]:
            async with serving() as (srv, url):
                async with connect(url) as ws:
                    await ws.send(start())
                    got = await collect(ws)
                await settled(srv)
                return got, srv.calls.counters().active

        got, active = run(main())
        assert [m["code"] for m in got.of_type("error")] == ["session_failed"]
        assert "speaker" in got.messages[-1]["message"]
        assert "no sound card" in got.messages[-1]["message"]
        assert not got.of_type("started") and got.close_code == 1011 and active == 0


class TestIsolation:
    """Concurrent calls never see each other's audio."""

    def test_two_clients_each_get_only_their_own_tone_back(self) -> None:
        """440 Hz and 1250 Hz at the same time: each hears its own, not the other."""

        async def main() -> list[Received]:
            async with serving() as (_, url):
                return list(
                    await asyncio.gather(
                        echo_call(url, tone(440, 0.5)), echo_call(url, tone(1250, 0.5))
                    )
                )

        low, high = run(main())
        assert abs(dominant(low.bot_audio) - 440) < 20
        assert abs(dominant(high.bot_audio) - 1250) < 20
        assert share_near(low.bot_audio, 1250) < 0.01 and share_near(high.bot_audio, 440) < 0.01
        assert low.messages[0]["session_id"] != high.messages[0]["session_id"]


class TestMarksAndEvents:
    """Playback marks and the event filter, as a client uses them."""

    def test_an_echoed_mark_reports_playback_and_the_event_filter_applies(self) -> None:
        """The link learns what was heard; only the requested events are sent."""
        audio = tone(440, 0.2)

        async def main() -> tuple[Received, int]:
            async with serving() as (srv, url), connect(url) as ws:
                got = Received()
                await ws.send(start(events=["bot_speech_stopped"], playback_marks=True))
                await ws.send(audio)
                session_id = (await recv_json(ws, got, "started"))["session_id"]
                mark = await recv_json(ws, got, "mark")
                await ws.send(json.dumps({"type": "mark", "name": mark["name"]}))
                # The server answers text in order, so the echo has been handled when the
                # (non-fatal) error arrives.
                await ws.send(json.dumps({"type": "text", "text": "sync"}))
                await recv_json(ws, got, "error")
                link = srv.calls.sessions[session_id].attachments[CallLink]
                assert isinstance(link, CallLink)
                played = link.played_samples
                await ws.send(END)
                return await collect(ws, got), played

        got, played = run(main())
        assert played == len(audio) // 2
        assert {e["event"] for e in got.of_type("event")} == {"bot_speech_stopped"}
        assert got.close_code == 1000


def doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/protocols/websocket.md has no python example"
    return str(blocks[0])


def test_the_documented_python_client_really_works(capsys: pytest.CaptureFixture[str]) -> None:
    """The example in docs/protocols/websocket.md talks to a real server."""
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    exec(compile(doc_example(), str(DOC), "exec"), namespace)
    audio = tone(440, 0.3)

    async def main() -> bytes:
        async with serving() as (_, url):
            result: bytes = await namespace["talk"](url, audio, 16000)
            return result

    back = run(main())
    assert back[: len(audio)] == audio
    assert '"type":"started"' in capsys.readouterr().out


ASSISTANT = """
version: 1
name: served_assistant
nodes:
  caller: {type: transport.in, sample_rate: 16000, transports: [websocket]}
  vad: {type: vad.silero, start_ms: 200, stop_ms: 400}
  stt: {type: stt.whisper, language: en, word_timestamps: false}
  turn: {type: turn, stop_ms: 600, min_delay_ms: 100, max_delay_ms: 1500}
  agent: {type: agent.rules, intents: INTENTS}
  tts: {type: tts.piper}
  speaker: {type: transport.out}
edges:
  - caller -> vad -> stt
  - stt -> turn.transcript
  - turn.text -> agent
  - agent -> tts -> speaker
"""
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.model
def test_a_spoken_question_gets_a_spoken_answer_with_events_and_latency() -> None:
    """The offline assistant over the wire: transcript, reply, bot audio, voice-to-voice."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("piper")
    from vbgraph.io.wav import read_wav

    graph = ASSISTANT.replace("INTENTS", str(ROOT / "graphs" / "intents.yaml"))
    fmt, clip = read_wav(ROOT / "graphs" / "samples" / "conversation.wav")
    assert fmt == AudioFormat(16000)
    question = bytes(clip)[4_500 * 32 : 8_000 * 32]  # "What time do you open tomorrow?"

    async def main() -> Received:
        srv = Server(loads(graph).compile(), ServeConfig(port=0))
        async with srv, connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
            got = Received()
            await ws.send(start())
            while (await recv_json(ws, got, "event"))["event"] != "bot_speech_stopped":
                pass  # the greeting has played: now the caller speaks

            async def speak() -> None:
                # A microphone: 20 ms packets at real time, then a second of silence.
                audio = question + bytes(32_000)
                for i in range(0, len(audio), PACKET):
                    await ws.send(audio[i : i + PACKET])
                    await asyncio.sleep(0.02)

            speaker = asyncio.create_task(speak())
            while (await recv_json(ws, got, "event"))["event"] != "agent_reply":
                pass
            while (await recv_json(ws, got, "event"))["event"] != "bot_speech_stopped":
                pass
            await speaker
            await ws.send(END)
            return await collect(ws, got)

    got = run(main())
    assert "open" in got.events("transcript")[0]["text"].lower()
    replies = got.events("agent_reply")
    assert replies[0]["intent"] == "greeting" and replies[1]["intent"] == "hours"
    greeting, answer = got.events("bot_speech_started")[:2]
    assert greeting["voice_to_voice_ms"] is None
    assert 0 < answer["turn_to_voice_ms"] < answer["voice_to_voice_ms"] < 10_000
    assert len(got.bot_audio) > 2 * 16000 * 2  # greeting and answer, seconds of speech
    assert got.of_type("end")[0]["reason"] == "client_end" and got.close_code == 1000
