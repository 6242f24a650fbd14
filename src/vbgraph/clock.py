"""Session clocks: real time in production, virtual time in tests and benchmarks.

Theory of operation
-------------------
Every timer in vbgraph goes through the running event loop (``loop.time()``,
``asyncio.sleep``, ``loop.call_at``). A :class:`Clock` reads session time from
that loop, so the same node code runs on real time or on virtual time depending
only on which loop runs it.

:class:`VirtualClock` makes an event loop whose time is a number it controls.
Whenever the loop would block waiting for its next timer and no real I/O is
ready, the clock jumps straight to that timer ("autojump", as trio's
``MockClock(autojump_threshold=0)``). A 60 s conversation paced at real time
therefore runs in milliseconds, in the same order every time.

Real I/O still works on the virtual loop: sockets are polled before each jump,
and ``autojump_threshold`` (real seconds) lets a test wait a little for a real
peer before time jumps. While a call runs in an executor thread
(``loop.run_in_executor``, ``asyncio.to_thread``: speech models), time does not
jump at all: thread work takes zero virtual time. If every task waits and
there is no timer and no I/O to wake anything, the loop raises
:class:`~vbgraph.errors.SessionError` after ``deadlock_after`` real seconds
instead of hanging.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from .errors import SessionError

__all__ = ["Clock", "LoopClock", "VirtualClock", "VirtualEventLoop", "run_on_loop"]

T = TypeVar("T")
_NS = 1_000_000_000


class Clock(Protocol):
    """What nodes read time from. Times are integer nanoseconds since session start."""

    def now_ns(self) -> int:
        """Session time now."""
        ...

    async def sleep_until_ns(self, t_ns: int) -> None:
        """Return once session time has reached ``t_ns`` (at once if it has)."""
        ...


class LoopClock:
    """Session time read from the running event loop (real or virtual).

    ``t0`` is taken when :meth:`reset` is called (session start).
    """

    __slots__ = ("_loop", "_t0")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._t0 = 0.0

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def reset(self) -> None:
        """Make now the session's time zero."""
        self._t0 = self._get_loop().time()

    def now_ns(self) -> int:
        """Session time now, in ns."""
        # round, not truncate: after sleep_until_ns(t) the clock must read t, not t - 1
        return round((self._get_loop().time() - self._t0) * _NS)

    async def sleep_until_ns(self, t_ns: int) -> None:
        """Sleep until the session time ``t_ns``."""
        delay = t_ns / _NS - (self._get_loop().time() - self._t0)
        if delay > 0:
            await asyncio.sleep(delay)


class _AutojumpSelector(selectors.BaseSelector):
    """Wraps the loop's real selector; turns "block for T" into "jump T ahead"."""

    def __init__(self, real: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._real = real
        self._clock = clock
        self.next_timer: Any = None  # set by the loop: returns the earliest timer's time
        self.threads_busy: Any = lambda: False  # set by the loop: executor work in flight?

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        clock = self._clock
        if timeout is not None and timeout <= 0:
            return self._real.select(0)
        ready = self._real.select(clock.autojump_threshold)
        if ready:
            return ready
        if self.threads_busy():
            # Work is running in an executor thread (a speech model, say): time
            # must not jump past it. Wait for real until it posts its result
            # (the loop's self-pipe wakes this select).
            return self._real.select(clock.deadlock_after)
        if timeout is None:
            # No timer at all: only real I/O (or another thread) can wake us.
            ready = self._real.select(clock.deadlock_after)
            if not ready:
                raise SessionError(
                    "virtual clock: every task is waiting and no timer or I/O can wake "
                    f"them (deadlock, nothing happened for {clock.deadlock_after} s)"
                )
            return ready
        # Jump exactly to the earliest timer, so its callback is due and time
        # does not pick up rounding from "now + timeout".
        when = self.next_timer() if self.next_timer is not None else None
        if when is None:
            clock.advance(timeout)
        else:
            clock.jump_to(when)
        return []

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is a :class:`VirtualClock`."""

    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_clock = clock
        self._in_executor: int = 0
        selector = _AutojumpSelector(selectors.DefaultSelector(), clock)
        super().__init__(selector)
        selector.next_timer = self._earliest_timer
        selector.threads_busy = lambda: self._in_executor > 0

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Any, *args: Any
    ) -> asyncio.Future[Any]:
        """As the base loop; virtual time holds still while the call runs in its thread.

        Threads run in real time, so jumping ahead while one works would make
        a 400 ms model call take no time at all and reorder everything after
        it. Holding time still instead makes thread work take zero virtual
        time: runs stay deterministic in order, not in measured duration.
        """
        future = super().run_in_executor(executor, func, *args)
        self._in_executor += 1

        def done(_: asyncio.Future[Any]) -> None:
            self._in_executor -= 1

        future.add_done_callback(done)
        return future

    def _earliest_timer(self) -> float | None:
        # asyncio keeps timers in the heap ``_scheduled`` (stable since 3.4) and
        # drops cancelled ones from its head before computing the select timeout.
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        return scheduled[0].when() if scheduled else None

    def time(self) -> float:
        return self._virtual_clock.time


class VirtualClock:
    """Virtual time for tests and benchmarks, with autojump.

    >>> clock = VirtualClock()
    >>> async def talk() -> float:
    ...     await asyncio.sleep(60)
    ...     return asyncio.get_running_loop().time()
    >>> clock.run(talk())
    60.0

    The sleep took no real time. ``clock.run`` makes a fresh loop, runs the
    coroutine, cancels what is left and closes the loop.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        autojump_threshold: float = 0.0,
        deadlock_after: float = 5.0,
    ) -> None:
        self._time = float(start)
        self.autojump_threshold = autojump_threshold
        self.deadlock_after = deadlock_after
        self.jumps = 0

    @property
    def time(self) -> float:
        """Virtual time in seconds."""
        return self._time

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (never back)."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._time += seconds
        self.jumps += 1

    def jump_to(self, when: float) -> None:
        """Set virtual time to ``when`` if that is later than now."""
        if when > self._time:
            self._time = when
        self.jumps += 1

    def new_event_loop(self) -> VirtualEventLoop:
        """A new event loop driven by this clock."""
        return VirtualEventLoop(self)

    def run(self, main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
        """Run ``main`` to completion on a fresh virtual-time loop and return its result."""
        return run_on_loop(self.new_event_loop(), main, debug=debug)


def run_on_loop(
    loop: asyncio.AbstractEventLoop,
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    grace: float = 2.0,
) -> T:
    """Run ``main`` on ``loop``, then cancel leftovers and close the loop; never hangs.

    Unlike ``asyncio.run``, tasks that ignore cancellation do not keep the
    process alive: they get ``grace`` seconds (loop time) and are then left
    behind when the loop closes.
    """
    if debug is not None:
        loop.set_debug(debug)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=grace))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
