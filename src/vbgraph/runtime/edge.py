"""Edges: how frames cross from one node to the next.

Theory of operation
-------------------
An edge into a *sync* node is a direct call (:class:`DirectEdge`): no queue, no
task switch; the frame is processed before ``emit`` returns. An edge into an
*async* node is an :class:`EdgeQueue`: a bounded FIFO with an overflow policy.
All queues of one async node share an :class:`Inbox`, a single FIFO in arrival
order, so a node with several inputs sees frames in the order they were sent.

Policies when a queue is full:

``block``
    The frame is accepted and the producing task must wait for room before it
    sends again (``await ctx.drain()``; the runtime does this between frames for
    the tasks it drives). A queue overshoots its capacity by at most what one
    ``process`` call or one source step emits. Default for text and control.
``drop_oldest``
    The oldest queued frame of this edge is dropped. For live audio: stale
    audio is worthless, fresh audio is what the listener needs.
``drop_newest``
    The arriving frame is dropped.

Capacity can be given in frames and, for audio, in milliseconds (``max_ms``):
a frame is "over capacity" when either limit is reached. Why the default is
small: a queue in steady state is empty; its capacity only bounds the latency
added when the consumer stalls, so 16 frames of 20 ms audio (320 ms) is the
most a stall adds before the policy acts.

Every frame that does not reach its consumer is counted: ``drops`` (overflow),
``stale`` (older epoch than the session's), ``flushed`` (cleared by an
interruption), ``failed`` (the consumer raised). Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..frames import AudioFrame, EndFrame, Frame
from ..queue_policy import DEFAULT_CAPACITY, QueuePolicy

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_CAPACITY",
    "DirectEdge",
    "EdgeQueue",
    "EdgeStatistics",
    "Inbox",
    "QueuePolicy",
]


@dataclass(frozen=True, slots=True)
class EdgeStatistics:
    """A snapshot of one edge: depth and capacity now, and counters since start.

    ``depth``/``capacity``/``peak`` are in frames (0 for direct edges); ``waiting``
    counts tasks blocked on this edge (producers waiting for room plus a consumer
    waiting for frames).
    """

    name: str
    kind: str
    depth: int
    capacity: int
    peak: int
    delivered: int
    drops: int
    stale: int
    flushed: int
    failed: int
    waiting: int

    @property
    def lost(self) -> int:
        """Frames that did not reach the consumer's ``process``, for any reason."""
        return self.drops + self.stale + self.flushed + self.failed


class _EdgeBase:
    """Counters shared by both edge kinds (plain ints: this is the hot path)."""

    __slots__ = (
        "delivered",
        "drops",
        "failed",
        "flushed",
        "interruptible",
        "name",
        "port",
        "stale",
    )

    def __init__(self, name: str, interruptible: bool, port: str = "in") -> None:
        self.name = name
        self.port = port  # the consumer's input port
        self.interruptible = interruptible
        self.delivered = 0
        self.drops = 0
        self.stale = 0
        self.flushed = 0
        self.failed = 0


class DirectEdge(_EdgeBase):
    """An edge into a sync node: a direct call, counted."""

    __slots__ = ()

    def statistics(self) -> EdgeStatistics:
        """A frozen snapshot of the counters."""
        return EdgeStatistics(
            name=self.name,
            kind="direct",
            depth=0,
            capacity=0,
            peak=0,
            delivered=self.delivered,
            drops=self.drops,
            stale=self.stale,
            flushed=self.flushed,
            failed=self.failed,
            waiting=0,
        )


class Inbox:
    """The input side of an async node: one FIFO shared by its input queues.

    Items are ``(edge, frame)`` in arrival order. ``get`` waits until one is there.
    """

    __slots__ = ("_getter", "edges", "items")

    def __init__(self) -> None:
        self.items: deque[tuple[EdgeQueue, Frame]] = deque()
        self.edges = 0  # how many queues feed this inbox
        self._getter: asyncio.Future[None] | None = None

    def notify(self) -> None:
        """Wake the consumer if it waits."""
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    @property
    def consumer_waiting(self) -> bool:
        """True while the consumer task waits for a frame."""
        return self._getter is not None and not self._getter.done()

    async def get(self) -> tuple[EdgeQueue, Frame]:
        """The next ``(edge, frame)``, waiting if there is none."""
        items = self.items
        while not items:
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                self._getter = None
        edge, frame = items.popleft()
        edge.on_taken(frame)
        return edge, frame


class EdgeQueue(_EdgeBase):
    """A bounded queue into an async node. See the module docstring for policies."""

    __slots__ = (
        "_inbox",
        "_putters",
        "capacity",
        "depth",
        "depth_ns",
        "ends",
        "max_ns",
        "peak",
        "policy",
    )

    def __init__(
        self,
        name: str,
        inbox: Inbox,
        *,
        capacity: int = DEFAULT_CAPACITY,
        policy: QueuePolicy = QueuePolicy.BLOCK,
        max_ms: float | None = None,
        interruptible: bool = False,
        port: str = "in",
    ) -> None:
        super().__init__(name, interruptible, port)
        if capacity < 1:
            raise ValueError(f"edge {name}: capacity must be at least 1, got {capacity}")
        self._inbox = inbox
        inbox.edges += 1
        self.ends = 0  # end markers queued (never dropped or flushed)
        self.capacity = capacity
        self.policy = QueuePolicy(policy)
        self.max_ns = None if max_ms is None else int(max_ms * 1_000_000)
        self.depth = 0
        self.depth_ns = 0
        self.peak = 0
        self._putters: list[asyncio.Future[None]] = []

    # -- producer side -----------------------------------------------------------

    def full(self) -> bool:
        """True if one more frame would exceed a limit."""
        if self.depth >= self.capacity:
            return True
        return self.max_ns is not None and self.depth_ns >= self.max_ns

    def put(self, frame: Frame, register_wait: Callable[[EdgeQueue], None] | None) -> None:
        """Queue ``frame`` (policy applies when full). ``EndFrame`` is always queued.

        With policy ``block`` and a full queue, ``register_wait(self)`` is called
        so the producing task waits for room before its next frame.
        """
        if self.full() and type(frame) is not EndFrame:
            policy = self.policy
            if policy is QueuePolicy.DROP_NEWEST:
                self.drops += 1
                return
            if policy is QueuePolicy.DROP_OLDEST:
                self._drop_oldest()
            elif register_wait is not None:
                register_wait(self)
        if type(frame) is EndFrame:
            self.ends += 1  # end markers are not counted in depth
        else:
            self.depth += 1
            if self.max_ns is not None and type(frame) is AudioFrame:
                self.depth_ns += frame.duration_ns
            if self.depth > self.peak:
                self.peak = self.depth
        inbox = self._inbox
        inbox.items.append((self, frame))
        inbox.notify()

    def _drop_oldest(self) -> None:
        items = self._inbox.items
        for i, (edge, frame) in enumerate(items):
            if edge is self and type(frame) is not EndFrame:
                del items[i]
                self._forget(frame)
                self.drops += 1
                return

    async def wait_room(self) -> None:
        """Wait until the queue is below its limits (producer backpressure)."""
        while self.full():
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            finally:
                if fut in self._putters:
                    self._putters.remove(fut)

    # -- consumer side -------------------------------------------------------------

    def _forget(self, frame: Frame) -> None:
        if type(frame) is EndFrame:
            self.ends -= 1
            return
        self.depth -= 1
        if self.max_ns is not None and type(frame) is AudioFrame:
            self.depth_ns -= frame.duration_ns

    def on_taken(self, frame: Frame) -> None:
        """Bookkeeping when the consumer takes ``frame``; wakes a blocked producer."""
        self._forget(frame)
        if self._putters and not self.full():
            for fut in self._putters:
                if not fut.done():
                    fut.set_result(None)
            self._putters.clear()

    def flush(self) -> int:
        """Remove every queued frame of this edge except end markers; returns how many."""
        items = self._inbox.items
        if not self.depth:
            return 0
        if self._inbox.edges == 1 and not self.ends:
            # Fast path (the common case): this edge owns the whole inbox.
            removed = self.depth
            items.clear()
            self.depth = 0
            self.depth_ns = 0
            self.flushed += removed
            self.on_taken_bulk()
            return removed
        kept: deque[tuple[EdgeQueue, Frame]] = deque()
        removed = 0
        for item in items:
            edge, frame = item
            if edge is self and type(frame) is not EndFrame:
                self._forget(frame)
                removed += 1
            else:
                kept.append(item)
        items.clear()
        items.extend(kept)
        self.flushed += removed
        if removed:
            self.on_taken_bulk()
        return removed

    def on_taken_bulk(self) -> None:
        """Wake blocked producers after a flush."""
        for fut in self._putters:
            if not fut.done():
                fut.set_result(None)
        self._putters.clear()

    def statistics(self) -> EdgeStatistics:
        """A frozen snapshot: depth, capacity, peak, counters, waiting tasks."""
        waiting = sum(1 for f in self._putters if not f.done())
        if self._inbox.consumer_waiting:
            waiting += 1
        return EdgeStatistics(
            name=self.name,
            kind="queue",
            depth=self.depth,
            capacity=self.capacity,
            peak=self.peak,
            delivered=self.delivered,
            drops=self.drops,
            stale=self.stale,
            flushed=self.flushed,
            failed=self.failed,
            waiting=waiting,
        )
