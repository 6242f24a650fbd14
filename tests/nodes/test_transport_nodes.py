"""transport.in / transport.out: a caller's audio through a graph and back, paced, clearable."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from vbgraph.dsp.g711 import ulaw_decode, ulaw_encode
from vbgraph.errors import ConfigError
from vbgraph.events import DtmfPressed, Event
from vbgraph.formats import AudioFormat
from vbgraph.graph.load import loads
from vbgraph.graph.plan import Plan
from vbgraph.runner import run
from vbgraph.runtime.session import Session
from vbgraph.testing import VirtualClock, simulate_call
from vbgraph.transports.link import CallLink, OutboundAudio, OutboundClear

ULAW = AudioFormat(8000, 1, "mulaw")
PCM16K = AudioFormat(16000)

ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in, sample_rate: 16000}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out, chunk_ms: 20}
edges: [caller -> gain -> speaker]
"""


def echo_plan() -> Plan:
    return loads(ECHO).compile()


def tone(hz: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * rate / len(x))


class TestRoundTrip:
    def test_a_phone_callers_audio_comes_back_in_the_phone_format(self) -> None:
        """μ-law in → 16 kHz graph → μ-law out: same length (± the resampler tail), same tone."""
        audio = ulaw_encode(tone(440, 8000, 1.0))
        call = VirtualClock().run(simulate_call(echo_plan(), audio, caller_format=ULAW))
        assert call.result.ok, call.result.errors
        back = call.bot_audio
        assert abs(len(back) - len(audio)) <= 160
        assert dominant_hz(ulaw_decode(back), 8000) == pytest.approx(440, abs=10)
        assert call.link.statistics().inbound_dropped_bytes == 0

    def test_bot_audio_leaves_in_20ms_packets_one_per_20ms(self) -> None:
        """Pacing: every packet is exactly chunk_ms long and packets are chunk_ms apart."""
        audio = ulaw_encode(tone(300, 8000, 0.5))
        plan = echo_plan()
        call = VirtualClock().run(simulate_call(plan, audio, caller_format=ULAW, tail_ms=0))
        packets = [(t, o) for t, o in call.outbound if isinstance(o, OutboundAudio)]
        assert len(packets) >= 24
        assert all(o.samples == 160 and len(o.payload) == 160 for _, o in packets)
        gaps = {round((b - a) / 1e6) for (a, _), (b, _) in itertools.pairwise(packets)}
        assert gaps == {20}


class TestInterruption:
    def test_an_interrupt_clears_the_far_end_and_no_old_audio_follows(self) -> None:
        """Audio buffered before the interrupt never reaches the caller afterwards."""
        plan = loads(
            """
version: 1
name: talker
nodes:
  caller: {type: transport.in}
  bot: {type: tone, duration_ms: 3000, chunk_ms: 500, freq_hz: 500, rate: 16000}
  speaker: {type: transport.out}
edges: [bot -> speaker]
"""
        ).compile()
        link = CallLink("test", ULAW, ULAW, call_id="CA1")

        async def main() -> list[object]:
            session = Session(plan, attachments=[link])
            await session.start()
            got: list[object] = []
            while len([o for o in got if isinstance(o, OutboundAudio)]) < 10:
                item = await link.next_outbound()
                assert item is not None
                got.append(item)
            session.interrupt("caller spoke")
            link.end_input()
            await session.wait()
            link.close_output()
            while (item := await link.next_outbound()) is not None:
                got.append(item)
            return got

        got = VirtualClock().run(main())
        clear_at = next(i for i, o in enumerate(got) if isinstance(o, OutboundClear))
        after = [o for o in got[clear_at:] if isinstance(o, OutboundAudio)]
        assert all(o.epoch >= 1 for o in after)
        assert link.statistics().sent_samples < 3 * 8000


class TestWithoutAServer:
    def test_running_a_transport_graph_standalone_says_to_serve_it(self) -> None:
        """vbgraph run on a served graph fails at start with an error naming the node.

        Nodes start sinks first, so the first to find no caller is transport.out.
        """
        result = run(echo_plan(), virtual_time=True)
        assert not result.ok
        messages = " ".join(str(e.message) for e in result.errors)
        assert "vbgraph serve" in messages and "'speaker'" in messages

    def test_unknown_transport_names_are_config_errors(self) -> None:
        """transports: only known names; the error names the field."""
        with pytest.raises(ConfigError, match="transports"):
            loads(ECHO.replace("sample_rate: 16000", "transports: [carrier_pigeon]")).compile()


def test_two_calls_on_one_plan_are_isolated() -> None:
    """Two concurrent sessions of one plan: each caller gets only its own audio back."""
    plan = echo_plan()

    async def main() -> tuple[bytes, bytes]:
        a, b = await asyncio.gather(
            simulate_call(plan, ulaw_encode(tone(300, 8000, 0.6)), caller_format=ULAW),
            simulate_call(plan, ulaw_encode(tone(1200, 8000, 0.6)), caller_format=ULAW),
        )
        return a.bot_audio, b.bot_audio

    a, b = VirtualClock().run(main())
    assert dominant_hz(ulaw_decode(a), 8000) == pytest.approx(300, abs=15)
    assert dominant_hz(ulaw_decode(b), 8000) == pytest.approx(1200, abs=15)


def test_caller_events_are_published_on_the_bus() -> None:
    """A DTMF key pushed by a telephony shell reaches the bus through transport.in."""
    link = CallLink("test", ULAW, ULAW, call_id="CA1")
    seen: list[Event] = []

    async def main() -> None:
        session = Session(echo_plan(), attachments=[link])
        session.bus.subscribe(DtmfPressed, "test", seen.append)
        await session.start()
        link.push_audio(b"\xff" * 160)
        link.push_event(DtmfPressed(digit="#"))
        link.end_input()
        await session.wait()

    VirtualClock().run(main())
    assert [e.digit for e in seen if isinstance(e, DtmfPressed)] == ["#"]
    assert seen[0].source == "caller"


def test_a_hang_up_drops_the_rest_of_the_bot_audio_at_once() -> None:
    """Output closed mid-reply: the session ends without playing 3 s to nobody; counted."""
    plan = loads(
        """
version: 1
name: talker
nodes:
  caller: {type: transport.in}
  bot: {type: tone, duration_ms: 3000, chunk_ms: 500, freq_hz: 500, rate: 16000}
  speaker: {type: transport.out}
edges: [bot -> speaker]
"""
    ).compile()
    link = CallLink("test", ULAW, ULAW, call_id="CA1")

    async def main() -> float:
        loop = asyncio.get_running_loop()
        session = Session(plan, attachments=[link])
        await session.start()
        for _ in range(5):
            await link.next_outbound()
        t0 = loop.time()
        link.end_input()
        link.close_output()
        await session.wait()
        return loop.time() - t0

    assert VirtualClock().run(main()) < 0.1
    assert link.statistics().outbound_dropped_chunks >= 100
