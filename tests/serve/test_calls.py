"""CallManager: admission before accept, a session per call, counters, graceful drain."""

from __future__ import annotations

import asyncio

import pytest

from vbgraph.formats import AudioFormat
from vbgraph.graph.load import loads
from vbgraph.graph.plan import Plan
from vbgraph.serve.calls import CallManager, CallRefused
from vbgraph.testing import VirtualClock
from vbgraph.transports.link import CallLink, OutboundAudio

PCM = AudioFormat(16000)
ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out}
edges: [caller -> gain -> speaker]
"""


def plan() -> Plan:
    return loads(ECHO).compile()


def link(call_id: str = "c") -> CallLink:
    return CallLink("test", PCM, PCM, call_id=call_id)


class TestAdmission:
    def test_a_full_server_refuses_with_a_reason_and_counts_it(self) -> None:
        """max_sessions admissions, then CallRefused('full') naming the limit."""
        calls = CallManager(plan(), max_sessions=2)
        first, _ = calls.admit(), calls.admit()
        with pytest.raises(CallRefused, match="2 of 2") as info:
            calls.admit()
        assert info.value.reason == "full"
        first.release()
        calls.admit()
        assert calls.counters().refused_full == 1 and calls.active == 2

    def test_releasing_twice_frees_one_slot(self) -> None:
        """A handshake failure frees its slot exactly once."""
        calls = CallManager(plan(), max_sessions=1)
        adm = calls.admit()
        adm.release()
        adm.release()
        assert calls.active == 0


class TestCalls:
    def test_a_call_runs_its_own_session_and_frees_its_slot(self) -> None:
        """run_call attaches the link, returns the result, closes the link's output."""
        calls = CallManager(plan(), max_sessions=4)
        lk = link()

        async def main() -> int:
            adm = calls.admit()
            task = asyncio.create_task(calls.run_call(adm, lk))
            for _ in range(10):
                lk.push_audio(b"\x10\x00" * 320)
                await asyncio.sleep(0.02)
            lk.end_input()
            result = await task
            assert result is not None and result.ok
            n = 0
            while (item := await lk.next_outbound()) is not None:
                n += isinstance(item, OutboundAudio)
            return n

        assert VirtualClock().run(main()) >= 10
        c = calls.counters()
        assert (c.active, c.started, c.ended, c.failed) == (0, 1, 1, 0)
        assert lk.output_closed and not calls.sessions

    def test_a_failing_call_is_counted_and_does_not_raise(self) -> None:
        """A session that fails at start (a 4-channel caller) is a failed call, not a crash."""
        calls = CallManager(plan())
        bad = CallLink("test", AudioFormat(16000, 4), PCM, call_id="bad")

        async def main() -> bool:
            result = await calls.run_call(calls.admit(), bad)
            return result is not None and result.ok

        assert VirtualClock().run(main()) is False
        assert calls.counters().failed == 1 and calls.active == 0


class TestDrain:
    def test_draining_refuses_new_calls_and_ends_live_ones_at_the_deadline(self) -> None:
        """drain(): new calls refused at once; a live call is ended cleanly after the deadline."""
        calls = CallManager(plan())
        lk = link()

        async def main() -> tuple[bool, float]:
            loop = asyncio.get_running_loop()
            task = asyncio.create_task(calls.run_call(calls.admit(), lk))
            await asyncio.sleep(0.1)
            t0 = loop.time()
            drain = asyncio.create_task(calls.drain(deadline_s=5.0))
            await asyncio.sleep(0)
            with pytest.raises(CallRefused) as info:
                calls.admit()
            assert info.value.reason == "draining"
            await drain
            result = await task
            return result is not None and result.state.finished, loop.time() - t0

        ended, took = VirtualClock().run(main())
        assert ended and took == pytest.approx(5.0, abs=0.1)
        assert calls.counters().refused_draining == 1

    def test_drain_returns_as_soon_as_the_last_call_ends(self) -> None:
        """Calls that end by themselves are not cut: drain waits only as long as needed."""
        calls = CallManager(plan())
        lk = link()

        async def main() -> float:
            loop = asyncio.get_running_loop()
            task = asyncio.create_task(calls.run_call(calls.admit(), lk))
            t0 = loop.time()
            drain = asyncio.create_task(calls.drain(deadline_s=30.0))
            await asyncio.sleep(1.0)
            lk.end_input()
            await drain
            await task
            return loop.time() - t0

        assert VirtualClock().run(main()) == pytest.approx(1.0, abs=0.1)
