"""Clocks: virtual time with autojump, deadlock detection, bounded shutdown."""

from __future__ import annotations

import asyncio

import pytest

from vbgraph.clock import LoopClock, VirtualClock
from vbgraph.errors import SessionError


class TestVirtualClock:
    """Time jumps to the next timer when every task waits."""

    def test_a_minute_of_sleeps_takes_a_minute_of_virtual_time(self) -> None:
        """3000 sleeps of 20 ms end at 60 s virtual time."""

        async def main() -> float:
            for _ in range(3000):
                await asyncio.sleep(0.02)
            return asyncio.get_running_loop().time()

        assert VirtualClock().run(main()) == pytest.approx(60.0, abs=1e-9)

    def test_interleaved_timers_fire_in_time_order(self) -> None:
        """Two tasks' timers interleave by virtual time, deterministically."""

        async def ticker(name: str, period: float, out: list[tuple[float, str]]) -> None:
            loop = asyncio.get_running_loop()
            for _ in range(3):
                await asyncio.sleep(period)
                out.append((round(loop.time(), 6), name))

        async def main() -> list[tuple[float, str]]:
            out: list[tuple[float, str]] = []
            await asyncio.gather(ticker("a", 0.3, out), ticker("b", 0.2, out))
            return out

        expected = [(0.2, "b"), (0.3, "a"), (0.4, "b"), (0.6, "a"), (0.6, "b"), (0.9, "a")]
        first, second = VirtualClock().run(main()), VirtualClock().run(main())
        assert sorted(first) == expected and first == second

    def test_a_deadlock_raises_instead_of_hanging(self) -> None:
        """Waiting on an event nobody sets is reported as a deadlock."""

        async def main() -> None:
            await asyncio.Event().wait()

        with pytest.raises(SessionError, match="deadlock"):
            VirtualClock(deadlock_after=0.05).run(main())

    def test_a_task_that_ignores_cancellation_does_not_keep_run_alive(self) -> None:
        """run() returns even when a leftover task swallows every cancel."""

        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    continue

        async def main() -> str:
            asyncio.get_running_loop().create_task(stubborn())
            await asyncio.sleep(1)
            return "done"

        assert VirtualClock().run(main()) == "done"

    def test_advance_never_goes_backwards(self) -> None:
        """A negative advance is refused."""
        with pytest.raises(ValueError):
            VirtualClock().advance(-1)


class TestLoopClock:
    """Session time is loop time since reset, in integer ns."""

    def test_now_counts_from_reset(self) -> None:
        """After reset and a 1.5 s sleep, now_ns is 1.5e9."""

        async def main() -> tuple[int, int]:
            clock = LoopClock()
            await asyncio.sleep(10)
            clock.reset()
            start = clock.now_ns()
            await clock.sleep_until_ns(1_500_000_000)
            return start, clock.now_ns()

        assert VirtualClock().run(main()) == (0, 1_500_000_000)


class TestThreads:
    """Virtual time holds still while executor threads work."""

    def test_a_timer_does_not_overtake_a_running_thread(self) -> None:
        """A CPU-bound thread call finishes before a timer due at 1 ms virtual time fires."""

        def work() -> str:
            sum(range(3_000_000))  # tens of ms of real CPU time, no sleeping
            return "thread"

        async def main() -> list[str]:
            loop = asyncio.get_running_loop()
            order: list[str] = []
            loop.call_later(0.001, order.append, "timer")
            order.append(await loop.run_in_executor(None, work))
            await asyncio.sleep(0.01)
            return order

        assert VirtualClock().run(main()) == ["thread", "timer"]
