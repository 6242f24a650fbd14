"""The WebRTC shell end to end: a Python aiortc peer calls a real Server over loopback.

The peer plays the browser's part exactly: it opens the ``events`` data channel,
sends a microphone track (a 440 Hz tone, paced at real time like a microphone),
posts its offer to ``/offer`` and applies the answer. The server runs an echo
graph (``transport.in -> gain -> transport.out``), so what comes back is the
peer's own tone after two Opus trips. ICE uses host candidates only.
"""

from __future__ import annotations

import asyncio
import fractions
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest

from vbgraph.graph.load import loads
from vbgraph.serve import ServeConfig, Server

pytest.importorskip("aiortc")
pytest.importorskip("av")

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from vbgraph.transports.webrtc.shell import WebRTCHandler

ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in, sample_rate: 16000, transports: [webrtc]}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out, chunk_ms: 20}
edges: [caller -> gain -> speaker]
"""
RATE = 48_000
FRAME = 960
TIMEOUT = 20.0


class ToneMicrophone(MediaStreamTrack):
    """A microphone playing a tone: 20 ms frames at real time, like a sound card."""

    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self.hz = hz
        self.samples = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        else:
            # A microphone delivers a frame every 20 ms; this is its clock.
            await asyncio.sleep(max(0.0, self.start + self.samples / RATE - loop.time()))
        t = (self.samples + np.arange(FRAME)) / RATE
        pcm = (8000 * np.sin(2 * np.pi * self.hz * t)).astype("<i2")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, RATE)
        self.samples += FRAME
        return frame


class Peer:
    """One browser-like caller: peer connection, data channel, what it heard."""

    def __init__(self, *, channel: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneMicrophone())
        self.dc = self.pc.createDataChannel("events") if channel else None
        self.messages: list[dict[str, Any]] = []
        self.heard = bytearray()  # the bot's audio, 48 kHz stereo s16 as decoded
        self.loud_ms = 0
        self.loud = asyncio.Event()
        """Set once 300 ms of non-silent bot audio arrived."""
        self._got: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None
        if self.dc is not None:
            self.dc.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, data: str) -> None:
        msg = json.loads(data)
        self.messages.append(msg)
        self._got.setdefault(msg["type"], asyncio.Event()).set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            samples = frame.to_ndarray()
            self.heard.extend(samples.tobytes())
            pcm = samples.astype(np.float64).ravel()
            if np.sqrt(np.mean(pcm**2)) > 500:
                self.loud_ms += 20
                if self.loud_ms >= 300:
                    self.loud.set()

    async def wait_for(self, kind: str) -> dict[str, Any]:
        """The first message of type ``kind`` (waits for it)."""
        await asyncio.wait_for(self._got.setdefault(kind, asyncio.Event()).wait(), TIMEOUT)
        return next(m for m in self.messages if m["type"] == kind)

    def send(self, message: object) -> None:
        assert self.dc is not None
        self.dc.send(message if isinstance(message, str) else json.dumps(message))

    async def offer(self) -> dict[str, Any]:
        """The offer body (aiortc gathers every candidate in setLocalDescription)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer", "metadata": {"who": "test"}}

    async def call(self, http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        """Post the offer and apply the answer; returns the answer body."""
        async with http.post(f"{url}/offer", json=await self.offer()) as resp:
            answer: dict[str, Any] = await resp.json()
            assert resp.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return answer

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()


@asynccontextmanager
async def serving(
    max_sessions: int = 4, handler: WebRTCHandler | None = None
) -> AsyncIterator[tuple[Server, WebRTCHandler, aiohttp.ClientSession]]:
    handler = handler or WebRTCHandler()
    config = ServeConfig(port=0, max_sessions=max_sessions, drain_timeout_s=5)
    async with (
        Server(loads(ECHO).compile(), config, [handler]) as server,
        aiohttp.ClientSession() as http,
    ):
        yield server, handler, http


async def all_calls_done(server: Server) -> None:
    """Wait for every call task of the server to finish (they close their peers)."""
    tasks = list(server.context.tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=TIMEOUT)


def dominant_hz(stereo_s16: bytes) -> float:
    x = np.frombuffer(stereo_s16, "<i2").reshape(-1, 2)[:, 0].astype(float)
    return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * RATE / len(x))


class TestEchoCall:
    def test_the_callers_tone_comes_back_and_the_data_channel_carries_events(self) -> None:
        """Audio in → echo graph → audio out (440 Hz after Opus); session + speech events."""

        async def main() -> tuple[Peer, dict[str, Any], dict[str, Any], int]:
            async with serving() as (server, handler, http):
                peer = Peer()
                answer = await peer.call(http, server.url)
                await asyncio.wait_for(peer.loud.wait(), TIMEOUT)
                session = await peer.wait_for("session")
                await peer.wait_for("bot_speech_started")
                link = handler.calls[answer["session_id"]].link
                assert link.metadata == {"who": "test"}
                inbound = link.statistics().inbound_bytes
                peer.send({"type": "end"})
                ended = await peer.wait_for("session_ended")
                await all_calls_done(server)
                await peer.close()
                return peer, answer, session | {"ended": ended}, inbound

        peer, answer, info, inbound = asyncio.run(main())
        assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
        candidates = [line for line in answer["sdp"].splitlines() if "a=candidate" in line]
        assert candidates and all(" 127.0.0.1 " in c for c in candidates)  # loopback only
        assert info["session_id"] == answer["session_id"]
        assert info["ended"]["reason"] == "end"
        assert inbound > 0
        loud = bytes(peer.heard[-RATE * 4 // 2 :])  # the last 0.5 s: the tone, echoed
        assert dominant_hz(loud) == pytest.approx(440, abs=15)

    def test_an_interrupt_command_interrupts_the_session(self) -> None:
        """{"type": "interrupt"} from the page → the session's Interrupt → "interrupted"."""

        async def main() -> dict[str, Any]:
            async with serving() as (server, _, http):
                peer = Peer()
                await peer.call(http, server.url)
                await peer.wait_for("bot_speech_started")
                peer.send({"type": "interrupt"})
                msg = await peer.wait_for("interrupted")
                await peer.close()
                await all_calls_done(server)
                return msg

        msg = asyncio.run(main())
        assert msg["epoch"] == 1 and "interrupt" in msg["reason"]

    def test_a_failing_command_handler_ends_only_that_call(self) -> None:
        """An unexpected error while handling a page message is contained: the call ends
        with the reason recorded; nothing escapes into aiortc and the server goes on."""

        async def main() -> tuple[str, int]:
            async with serving() as (server, handler, http):
                peer = Peer()
                answer = await peer.call(http, server.url)
                await peer.wait_for("session")
                call = handler.calls[answer["session_id"]]
                session = call.session
                assert session is not None

                def broken(reason: str = "", source: str | None = None) -> int:
                    raise RuntimeError("boom")

                session.interrupt = broken  # type: ignore[method-assign]
                peer.send({"type": "interrupt"})
                await all_calls_done(server)
                await peer.close()
                return call.end_reason, server.calls.counters().active

        reason, active = asyncio.run(main())
        assert reason == "internal error: RuntimeError" and active == 0

    def test_a_peer_that_closes_ends_its_session_and_frees_the_slot(self) -> None:
        """Closing the peer connection is a hang-up: the call ends, nothing stays active."""

        async def main() -> tuple[int, int, str]:
            async with serving() as (server, handler, http):
                peer = Peer()
                answer = await peer.call(http, server.url)
                await peer.wait_for("session")
                call = handler.calls[answer["session_id"]]
                await peer.close()
                await all_calls_done(server)
                c = server.calls.counters()
                return c.active, c.ended, call.end_reason

        active, ended, reason = asyncio.run(main())
        assert (active, ended) == (0, 1)
        assert reason == "hangup"

    def test_a_server_shutdown_ends_the_call_and_tells_the_peer(self) -> None:
        """Drain with live calls: the session ends, the page gets session_ended, the peer
        connection is closed by the server."""

        async def main() -> tuple[dict[str, Any], str, int]:
            config = ServeConfig(port=0, drain_timeout_s=0)
            server = Server(loads(ECHO).compile(), config, [WebRTCHandler()])
            await server.start()
            async with aiohttp.ClientSession() as http:
                peer = Peer()
                closed = asyncio.Event()

                @peer.pc.on("connectionstatechange")
                def _state() -> None:
                    if peer.pc.connectionState in ("closed", "failed"):
                        closed.set()

                await peer.call(http, server.url)
                await peer.wait_for("bot_speech_started")
                await server.stop()
                ended = await peer.wait_for("session_ended")
                await asyncio.wait_for(closed.wait(), TIMEOUT)
                state = peer.pc.connectionState
                await peer.close()
            return ended, state, server.calls.counters().ended

        ended, state, count = asyncio.run(main())
        assert ended["reason"] == "the session ended"
        assert state in ("closed", "failed")
        assert count == 1


class TestRefusals:
    def test_a_full_server_refuses_the_next_offer_with_503_json(self) -> None:
        """max_sessions=1: the second offer gets 503 server_full; the first call goes on."""

        async def main() -> tuple[int, dict[str, Any], bool]:
            async with serving(max_sessions=1) as (server, _, http):
                first = Peer()
                await first.call(http, server.url)
                await first.wait_for("session")
                second = Peer()
                async with http.post(f"{server.url}/offer", json=await second.offer()) as resp:
                    status, body = resp.status, await resp.json()
                await asyncio.wait_for(first.loud.wait(), TIMEOUT)
                await second.close()
                await first.close()
                await all_calls_done(server)
                return status, body, first.loud.is_set()

        status, body, first_fine = asyncio.run(main())
        assert status == 503
        assert body["error"]["code"] == "server_full"
        assert "1 of 1" in body["error"]["message"]
        assert first_fine

    def test_a_bad_offer_is_a_400_json_error_and_takes_no_slot(self) -> None:
        """Not JSON → 400 bad_offer before admission (no call is counted)."""

        async def main() -> tuple[int, dict[str, Any], int]:
            async with (
                serving() as (server, _, http),
                http.post(f"{server.url}/offer", data=b"v=0") as resp,
            ):
                return resp.status, await resp.json(), server.calls.counters().started

        status, body, started = asyncio.run(main())
        assert status == 400 and body["error"]["code"] == "bad_offer"
        assert started == 0

    def test_an_offer_the_webrtc_stack_refuses_is_a_400_and_frees_its_slot(self) -> None:
        """Valid shape, unusable SDP (no ICE credentials): 400 offer_rejected, slot given back."""

        async def main() -> tuple[int, dict[str, Any], int]:
            sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            sdp += "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"  # no ice-ufrag, no fingerprint
            async with serving() as (server, _, http):
                offer = {"type": "offer", "sdp": sdp}
                async with http.post(f"{server.url}/offer", json=offer) as resp:
                    return resp.status, await resp.json(), server.calls.active

        status, body, active = asyncio.run(main())
        assert status == 400 and body["error"]["code"] == "offer_rejected"
        assert active == 0

    def test_a_peer_that_never_connects_gives_its_slot_back(self) -> None:
        """Answered but never connected (the peer ignored the answer): freed after the timeout."""

        async def main() -> tuple[int, int]:
            handler = WebRTCHandler(connect_timeout_s=1.0)
            async with serving(handler=handler) as (server, _, http):
                peer = Peer()
                async with http.post(f"{server.url}/offer", json=await peer.offer()) as resp:
                    assert resp.status == 200
                await all_calls_done(server)
                await peer.close()
                return server.calls.active, server.calls.counters().started

        assert asyncio.run(main()) == (0, 0)


class TestIsolation:
    def test_a_peer_breaking_the_channel_protocol_ends_only_its_own_call(self) -> None:
        """Garbage on one data channel: that peer gets an error and its call ends; the other
        peer keeps hearing its echo."""

        async def main() -> tuple[dict[str, Any], dict[str, Any], bool]:
            async with serving() as (server, _, http):
                good, bad = Peer(), Peer()
                await good.call(http, server.url)
                await bad.call(http, server.url)
                await bad.wait_for("session")
                bad.send("{not json")
                error = await bad.wait_for("error")
                ended = await bad.wait_for("session_ended")
                good.loud.clear()
                good.loud_ms = 0
                await asyncio.wait_for(good.loud.wait(), TIMEOUT)  # still echoing
                still = server.calls.active == 1
                await good.close()
                await bad.close()
                await all_calls_done(server)
                return error, ended, still

        error, ended, still = asyncio.run(main())
        assert error["code"] == "bad_message" and "not JSON" in error["message"]
        assert ended["reason"].startswith("protocol error")
        assert still


class TestPage:
    def test_the_page_and_its_assets_are_served_and_nothing_else(self) -> None:
        """GET / is the talk page; /static/ serves app.js and style.css only."""

        async def main() -> list[tuple[int, str, str]]:
            out = []
            async with serving() as (server, _, http):
                for path in ("/", "/static/app.js", "/static/style.css", "/static/..%2fshell.py"):
                    async with http.get(server.url + path) as resp:
                        out.append((resp.status, resp.content_type, await resp.text()))
            return out

        (page, js, css, other) = asyncio.run(main())
        assert page[:2] == (200, "text/html") and 'id="transcript"' in page[2]
        assert js[0] == 200 and "javascript" in js[1] and "vbgraphStats" in js[2]
        assert css[:2] == (200, "text/css")
        assert other[0] == 404
        assert "http://" not in page[2] + js[2] + css[2]  # no external assets
