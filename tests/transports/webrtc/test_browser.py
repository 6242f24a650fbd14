"""The talk page in a real browser: headless Chromium (Debian's) calls a real Server.

Chromium's fake microphone plays a LibriVox clip (``--use-file-for-fake-audio-capture``,
a 16-bit PCM WAV written here); the test clicks Talk and reads what the page itself
measured (``window.vbgraphStats``: the level of the bot's audio from a WebAudio
AnalyserNode on the received stream) and shows (the ``#transcript`` list).

* The echo graph (``transport.in -> gain -> transport.out``): the caller's speech
  comes back, so the page must hear loud audio.
* The offline assistant (``graphs/assistant.yaml``'s VAD → Whisper → turn → rules
  agent → Piper chain between transport.in and transport.out, marker ``model``):
  the page must show what the caller said, the bot's reply, and the turn's latency.

Never a downloaded browser: ``/usr/bin/chromium`` (CI installs it with apt) or skip.
"""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tests.conftest import ROOT, TESTDATA

from vbgraph.graph.load import loads
from vbgraph.graph.plan import Plan
from vbgraph.serve import ServeConfig, Server

CHROMIUM = "/usr/bin/chromium"
if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run "
        "the browser tests; Playwright's downloaded browsers are never used",
        allow_module_level=True,
    )
async_api = pytest.importorskip(
    "playwright.async_api", reason="playwright (Python) is not installed: pip install playwright"
)
pytest.importorskip("aiortc")

CLIP = TESTDATA / "sense_and_sensibility_01_austen_64kb-0880.wav"  # "he was not an ill ..."
ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in, sample_rate: 16000, transports: [webrtc]}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out, chunk_ms: 20}
edges: [caller -> gain -> speaker]
"""
TIMEOUT_MS = 30_000


def fake_microphone(path: Path, lead_s: float = 0.0, tail_s: float = 0.0) -> Path:
    """The clip as Chromium's fake microphone wants it: a 16-bit PCM WAV, with silence around."""
    with wave.open(str(CLIP), "rb") as src:
        assert src.getsampwidth() == 2 and src.getnchannels() == 1
        rate = src.getframerate()
        speech = np.frombuffer(src.readframes(src.getnframes()), "<i2")
    pcm = np.concatenate(
        [np.zeros(int(rate * lead_s), "<i2"), speech, np.zeros(int(rate * tail_s), "<i2")]
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


@asynccontextmanager
async def browser_page(mic: Path, *, loop_audio: bool = True) -> AsyncIterator[Any]:
    """A page in headless Chromium with the fake microphone playing ``mic``."""
    capture = str(mic) if loop_audio else f"{mic}%noloop"
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={capture}",
                "--autoplay-policy=no-user-gesture-required",
                # Loopback ICE candidates too (see conftest.py): the server has no other.
                "--allow-loopback-in-peer-connection",
            ],
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert not errors, f"JavaScript errors on the page: {errors}"
        finally:
            await browser.close()


async def talk(server: Server, page: Any, until: str) -> dict[str, Any]:
    """Open the page, press Talk, wait for the JS condition ``until``; the page's stats."""
    await page.goto(server.url + "/")
    await page.click("#talk")
    # The snapshot is taken in the same JS evaluation that found the condition true: the
    # live level (rms) may have dropped again by the time a second evaluate ran.
    handle = await page.wait_for_function(
        f"({until}) ? JSON.parse(JSON.stringify(window.vbgraphStats)) : false",
        timeout=TIMEOUT_MS,
        polling=100,
    )
    stats: dict[str, Any] = await handle.json_value()
    return stats


async def hang_up(server: Server, page: Any) -> None:
    """Press Hang up; wait until the page shows the end and the server's call is over."""
    await page.click("#hangup")
    await page.wait_for_function("window.vbgraphStats.state === 'ended'", timeout=TIMEOUT_MS)
    tasks = list(server.context.tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=TIMEOUT_MS / 1000)


def run_served(plan: Plan, body: Callable[[Server], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Server(plan, ServeConfig(port=0, drain_timeout_s=5)) as server:
            return await body(server)

    return asyncio.run(main())


def test_the_page_hears_the_echo_of_its_microphone(tmp_path: Path) -> None:
    """Talk → the bot's audio (the clip, echoed) is loud in the page; events are listed;
    Interrupt and Hang up reach the server."""
    mic = fake_microphone(tmp_path / "mic.wav")

    async def body(server: Server) -> tuple[dict[str, Any], str, int]:
        async with browser_page(mic) as page:
            stats = await talk(
                server,
                page,
                "window.vbgraphStats.rms > 0.02 && window.vbgraphStats.sessionId !== null",
            )
            await page.click("#interrupt")
            await page.wait_for_function(
                "window.vbgraphStats.events.includes('interrupted')", timeout=TIMEOUT_MS
            )
            shown = await page.inner_text("#transcript")
            await hang_up(server, page)
            shown_after = await page.inner_text("#transcript")
        return stats, shown + "\n" + shown_after, server.calls.counters().ended

    stats, shown, ended = run_served(loads(ECHO).compile(), body)
    assert stats["rms"] > 0.02 and stats["peak"] > 0.05
    assert stats["framesReceived"] > 0
    assert "bot_speech_started" in stats["events"]
    assert f"Connected (session {stats['sessionId']})" in shown
    assert "Interrupted." in shown
    assert "Call ended: end." in shown
    assert ended == 1


def assistant_plan() -> Plan:
    """graphs/assistant.yaml's chain, with the caller and speaker on the network."""
    graphs = ROOT / "graphs"
    doc = yaml.safe_load((graphs / "assistant.yaml").read_text(encoding="utf-8"))
    nodes = {k: v for k, v in doc["nodes"].items() if k in ("vad", "stt", "turn", "agent", "tts")}
    nodes["caller"] = {"type": "transport.in", "sample_rate": 16000, "transports": ["webrtc"]}
    nodes["speaker"] = {"type": "transport.out"}
    data = {
        "version": 1,
        "name": "assistant-webrtc",
        "nodes": nodes,
        "edges": [
            "caller -> vad",
            "vad -> stt",
            "stt -> turn.transcript",
            "turn.text -> agent",
            "agent -> tts -> speaker",
        ],
    }
    return loads(yaml.safe_dump(data, sort_keys=False), base_dir=graphs).compile()


@pytest.mark.model
def test_the_page_shows_a_real_conversation_with_its_latency(tmp_path: Path) -> None:
    """The assistant hears the clip: the page lists what was said and the bot's reply,
    plays the reply and shows the turn's latency."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("piper")
    # The caller speaks once the bot's greeting (~2.5 s from connecting) is over.
    mic = fake_microphone(tmp_path / "mic.wav", lead_s=4.5, tail_s=30.0)
    plan = assistant_plan()

    async def body(server: Server) -> tuple[dict[str, Any], str]:
        async with browser_page(mic, loop_audio=False) as page:
            stats = await talk(
                server,
                page,
                "window.vbgraphStats.latencies.length > 0 && window.vbgraphStats.rms > 0.01"
                " && window.vbgraphStats.transcripts.map(t => t.role).join().includes('user,bot')",
            )
            shown = await page.inner_text("#transcript")
            latency = await page.inner_text("#latency")
            await hang_up(server, page)
        return stats, shown + "\n" + latency

    stats, shown = run_served(plan, body)
    user = [t["text"] for t in stats["transcripts"] if t["role"] == "user"]
    bot = [t["text"] for t in stats["transcripts"] if t["role"] == "bot"]
    assert any("young man" in u.lower() or "ill" in u.lower() for u in user), user
    assert bot[0] == "Hi, Bluebird Cafe. How can I help?"  # the greeting, then the reply
    assert len(bot) >= 2 and bot[1].strip()
    assert f"You:{user[0]}" in shown.replace("\n", "").replace("You: ", "You:")
    assert "Turn 1:" in shown and 0 < stats["latencies"][0] < 10_000
