"""A speech-to-speech call: transport.in -> s2s.openai_realtime -> transport.out, phone audio.

The caller is a simulated phone line (μ-law 8 kHz through a CallLink); the
model is the fake Realtime server. The graph is `graphs/realtime_server.yaml`
with its URL pointed at the fake.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from vbgraph.dsp.convert import FormatConverter
from vbgraph.dsp.g711 import ulaw_decode
from vbgraph.events import AgentReplied, Event, TranscriptReceived
from vbgraph.formats import AudioFormat
from vbgraph.graph.load import load
from vbgraph.io.wav import read_wav
from vbgraph.testing import VirtualClock, simulate_call
from vbgraph.testing.caller import CallRecording
from vbgraph.testing.fakes.openai_realtime import FakeRealtime, Turn

ROOT = Path(__file__).resolve().parents[2]
ULAW = AudioFormat(8000, 1, "mulaw")


def test_a_phone_caller_talks_to_the_realtime_model_through_the_transports() -> None:
    """The caller's question is transcribed, answered, and the answer is heard on the phone."""
    fmt, pcm = read_wav(ROOT / "graphs" / "samples" / "speech_16k.wav")
    to_phone = FormatConverter(fmt, ULAW)
    # A phone line keeps sending after the caller stops: 3 s of μ-law silence (0xFF), in
    # which the model's own VAD hears the end of the question.
    phone_audio = bytes(to_phone.process(pcm)) + to_phone.flush() + b"\xff" * 24000

    async def main() -> tuple[CallRecording, list[Event]]:
        async with asyncio.timeout(300):
            async with FakeRealtime(turns=[Turn("a question", "Here is the answer.")]) as fake:
                plan = load(
                    ROOT / "graphs" / "realtime_server.yaml",
                    overrides=[f"s2s.url={fake.url}", "s2s.api_key=sk-test"],
                ).compile()
                seen: list[Event] = []
                call = await simulate_call(
                    plan, phone_audio, caller_format=ULAW, tail_ms=4000, on_event=seen.append
                )
                return call, seen

    call, events = VirtualClock().run(main())
    assert call.result.errors == ()
    assert [e.text for e in events if isinstance(e, TranscriptReceived)] == ["a question"]
    assert [e.text for e in events if isinstance(e, AgentReplied)] == ["Here is the answer."]
    heard = np.frombuffer(ulaw_decode(call.bot_audio), "<i2").astype(float)
    assert len(heard) > 8000 * 0.5 and np.sqrt(np.mean(heard**2)) > 300
