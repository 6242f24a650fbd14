"""Bounded queues: policies, statistics, flushing; property-tested with hypothesis."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, EndFrame, TextFrame
from vbgraph.queue_policy import QueuePolicy
from vbgraph.runtime.edge import EdgeQueue, Inbox

FMT = AudioFormat(16000)


def frame(i: int) -> TextFrame:
    return TextFrame(str(i), pts=i)


def taken(inbox: Inbox) -> list[int]:
    out = []
    while inbox.items:
        edge, f = inbox.items.popleft()
        edge.on_taken(f)
        if isinstance(f, TextFrame):
            out.append(f.pts)
    return out


class TestPolicies:
    """What a full queue does, for any sequence of puts."""

    @given(st.integers(1, 20), st.integers(0, 60))
    def test_drop_oldest_keeps_the_newest_capacity_frames(self, capacity: int, n: int) -> None:
        """After n puts the queue holds the last min(n, capacity); the rest are counted drops."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=capacity, policy=QueuePolicy.DROP_OLDEST)
        for i in range(n):
            q.put(frame(i), None)
        kept = taken(inbox)
        assert kept == list(range(max(0, n - capacity), n))
        assert q.drops == max(0, n - capacity)
        assert q.depth == 0 and q.peak == min(n, capacity)

    @given(st.integers(1, 20), st.integers(0, 60))
    def test_drop_newest_keeps_the_first_capacity_frames(self, capacity: int, n: int) -> None:
        """The arriving frame is dropped once full; drops counted."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=capacity, policy=QueuePolicy.DROP_NEWEST)
        for i in range(n):
            q.put(frame(i), None)
        assert taken(inbox) == list(range(min(n, capacity)))
        assert q.drops == max(0, n - capacity)

    @given(st.integers(1, 20), st.integers(0, 60))
    def test_block_accepts_and_asks_the_producer_to_wait(self, capacity: int, n: int) -> None:
        """block never drops; each put over capacity registers a wait."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=capacity, policy=QueuePolicy.BLOCK)
        waits: list[EdgeQueue] = []
        for i in range(n):
            q.put(frame(i), waits.append)
        assert len(waits) == max(0, n - capacity)
        assert taken(inbox) == list(range(n)) and q.drops == 0

    @given(st.lists(st.sampled_from(["put", "take", "end"]), max_size=80), st.integers(1, 8))
    def test_statistics_stay_consistent(self, ops: list[str], capacity: int) -> None:
        """depth equals queued non-end frames; drops plus delivered account for every put."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=capacity, policy=QueuePolicy.DROP_OLDEST)
        puts = took = 0
        for op in ops:
            if op == "put":
                q.put(frame(puts), None)
                puts += 1
            elif op == "end":
                q.put(EndFrame(), None)
            elif inbox.items:
                edge, f = inbox.items.popleft()
                edge.on_taken(f)
                took += not isinstance(f, EndFrame)
            queued = sum(1 for _, f in inbox.items if not isinstance(f, EndFrame))
            assert q.depth == queued <= capacity
        assert took + q.depth + q.drops == puts


class TestEndAndFlush:
    """End markers are never dropped; flush removes frames but not ends."""

    def test_an_end_marker_is_queued_even_when_full(self) -> None:
        """EndFrame bypasses the policy."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=1, policy=QueuePolicy.DROP_NEWEST)
        q.put(frame(0), None)
        q.put(EndFrame(), None)
        assert [type(f) for _, f in inbox.items] == [TextFrame, EndFrame]
        assert q.drops == 0

    @given(st.integers(0, 600), st.booleans())
    def test_flush_removes_every_frame_and_keeps_the_end(self, n: int, end: bool) -> None:
        """flush() returns how many it removed and counts them as flushed."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=1000)
        for i in range(n):
            q.put(frame(i), None)
        if end:
            q.put(EndFrame(), None)
        assert q.flush() == n
        assert q.flushed == n and q.depth == 0
        assert [type(f) for _, f in inbox.items] == ([EndFrame] if end else [])

    def test_flush_leaves_other_edges_of_the_inbox_alone(self) -> None:
        """Two queues share an inbox; flushing one keeps the other's frames in order."""
        inbox = Inbox()
        a = EdgeQueue("a", inbox, capacity=10)
        b = EdgeQueue("b", inbox, capacity=10)
        for i in range(4):
            a.put(frame(i), None)
            b.put(frame(100 + i), None)
        a.flush()
        assert taken(inbox) == [100, 101, 102, 103]


class TestDurationLimit:
    """max_ms bounds queued audio by duration."""

    def test_max_ms_counts_audio_duration(self) -> None:
        """With max_ms=60, the fourth 20 ms frame makes drop_oldest drop one."""
        inbox = Inbox()
        q = EdgeQueue("e", inbox, capacity=100, policy=QueuePolicy.DROP_OLDEST, max_ms=60)
        chunk = b"\0\0" * 320
        for i in range(4):
            q.put(AudioFrame(chunk, FMT, pts=i), None)
        assert q.drops == 1 and q.depth == 3 and q.depth_ns == 60_000_000


class TestWaiting:
    """Producers blocked on a full queue wake when the consumer takes a frame."""

    def test_wait_room_returns_after_a_take(self) -> None:
        """wait_room waits while full and statistics count the waiter."""

        async def main() -> tuple[int, int]:
            inbox = Inbox()
            q = EdgeQueue("e", inbox, capacity=1)
            q.put(frame(0), None)
            waiter = asyncio.ensure_future(q.wait_room())
            await asyncio.sleep(0)
            waiting = q.statistics().waiting
            await inbox.get()
            await waiter
            return waiting, q.statistics().waiting

        assert asyncio.run(main()) == (1, 0)
