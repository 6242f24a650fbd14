"""The session runtime: fusion, queues, end, cancel, errors, interruption, events."""

from __future__ import annotations

import asyncio

import pytest
from tests.runtime.nodes_for_tests import (
    Boom,
    Listener,
    Sink,
    Slow,
    SlowInterruptible,
    Source,
    make_registry,
)

from vbgraph.clock import VirtualClock
from vbgraph.events import Interrupt, NodeError, SessionStateChanged, UserSpeechStarted
from vbgraph.frames import AudioFrame
from vbgraph.graph.builder import Graph
from vbgraph.graph.plan import Plan
from vbgraph.runtime.lifecycle import SessionState
from vbgraph.runtime.session import Session, SessionResult

REG = make_registry()


def plan(*types: str | tuple[str, dict[str, object]], **edge: object) -> Plan:
    """A chain of nodes; each item is a type name or (type name, params)."""
    g = Graph("test")
    refs = []
    for i, item in enumerate(types):
        name, params = (item, {}) if isinstance(item, str) else item
        refs.append(g.add(name, id=f"n{i}", **params))
    g.chain(*refs, **edge)
    return g.compile(REG)


def run(p: Plan, debug: bool = True) -> tuple[Session, SessionResult]:
    async def main() -> tuple[Session, SessionResult]:
        session = Session(p)
        return session, await session.run()

    return VirtualClock().run(main(), debug=debug)


class TestFusion:
    """Sync nodes are called directly; async nodes get a task and a queue."""

    def test_a_sync_chain_runs_inside_the_source_task(self) -> None:
        """Frames reach a fused sink inside the source's emit call, in order."""
        p = plan(("t.source", {"frames": 25}), "t.pass", "t.pass", "t.sink")
        assert all(e.dst != "n3" or True for e in p.edges)
        session, result = run(p)
        sink = session.nodes["n3"]
        assert isinstance(sink, Sink)
        assert [f.pts for f in sink.frames] == [i * 20_000_000 for i in range(25)]
        assert result.ok
        assert all(s.kind == "direct" for s in result.edges.values())

    def test_an_async_node_gets_a_bounded_queue(self) -> None:
        """An edge into an async node is a queue with the declared capacity."""
        p = plan(("t.source", {"frames": 5}), "t.slow", "t.sink", capacity=4)
        _, result = run(p)
        queue = result.edges["n0.out -> n1.in"]
        assert queue.kind == "queue" and queue.capacity == 4
        assert queue.delivered == 5 and queue.lost == 0

    def test_a_passthrough_hands_on_the_same_frame_object(self) -> None:
        """Fused hops do not copy frames."""
        session, _ = run(plan(("t.source", {"frames": 3}), "t.pass", "t.sink"))
        sink = session.nodes["n2"]
        assert isinstance(sink, Sink)
        assert len({id(f.data) for f in sink.frames}) == 1


class TestGracefulEnd:
    """EndFrame drains: everything queued is processed before the session ends."""

    def test_every_frame_is_delivered_before_the_end(self) -> None:
        """A slow async stage still delivers all frames and then ends its outputs."""
        p = plan(
            ("t.source", {"frames": 40, "paced": False}),
            ("t.slow", {"delay_ms": 5}),
            "t.sink",
            capacity=3,
        )
        session, result = run(p)
        sink = session.nodes["n2"]
        assert isinstance(sink, Sink)
        assert len(sink.frames) == 40 and sink.ended
        assert result.state is SessionState.ENDED
        assert result.frames_lost == 0

    def test_block_policy_bounds_the_queue_by_backpressure(self) -> None:
        """An unpaced source feeding a slow node never overfills a block queue by more than one."""
        p = plan(
            ("t.source", {"frames": 100, "paced": False}),
            ("t.slow", {"delay_ms": 10}),
            "t.sink",
            capacity=5,
            policy="block",
        )
        _, result = run(p)
        queue = result.edges["n0.out -> n1.in"]
        assert queue.peak <= 5 + 1
        assert queue.drops == 0 and queue.delivered == 100

    def test_drop_oldest_counts_what_it_drops(self) -> None:
        """drop_oldest keeps the newest frames and counts every drop."""
        p = plan(
            ("t.source", {"frames": 50, "paced": False}),
            ("t.slow", {"delay_ms": 10}),
            "t.sink",
            capacity=4,
            policy="drop_oldest",
        )
        session, result = run(p)
        sink = session.nodes["n2"]
        assert isinstance(sink, Sink)
        queue = result.edges["n0.out -> n1.in"]
        assert queue.drops > 0
        assert queue.delivered + queue.drops == 50
        assert sink.frames[-1].pts == 49 * 20_000_000

    def test_end_stops_sources_and_drains_the_rest(self) -> None:
        """session.end() stops a long source; what it sent still arrives."""

        async def main() -> tuple[Session, SessionResult]:
            session = Session(plan(("t.source", {"frames": 10_000}), "t.slow", "t.sink"))
            await session.start()
            await asyncio.sleep(1.0)
            session.end()
            return session, await session.wait()

        session, result = VirtualClock().run(main())
        source, sink = session.nodes["n0"], session.nodes["n2"]
        assert isinstance(source, Source) and isinstance(sink, Sink)
        assert result.state is SessionState.ENDED
        assert 40 <= source.emitted < 10_000
        assert len(sink.frames) == source.emitted

    def test_sixty_seconds_of_paced_audio_take_virtual_time_only(self) -> None:
        """A 60 s real-time conversation runs on the virtual clock deterministically."""
        p = plan(("t.source", {"frames": 3000}), "t.pass", "t.slow", "t.sink")
        _, first = run(p, debug=False)  # debug mode tracks every future: slow
        _, second = run(p, debug=False)
        assert first.duration_ns == second.duration_ns
        assert 60_000_000_000 <= first.duration_ns < 60_100_000_000


class TestErrors:
    """A failing node becomes a NodeError event, not a crash."""

    def test_a_raising_node_is_reported_with_its_id_and_the_session_goes_on(self) -> None:
        """Every second frame fails; the others pass and the session ends."""
        session, result = run(
            plan(("t.source", {"frames": 10}), ("t.boom", {"fail_every": 2}), "t.sink")
        )
        sink = session.nodes["n2"]
        assert isinstance(sink, Sink)
        assert len(sink.frames) == 5
        assert len(result.errors) == 5
        err = result.errors[0]
        assert err.node_id == "n1" and err.phase == "process" and err.port == "in"
        assert err.error_type == "ValueError"
        assert result.edges["n0.out -> n1.in"].failed == 5
        assert result.state is SessionState.ENDED and not result.ok

    def test_a_failing_start_fails_the_session_before_frames_flow(self) -> None:
        """start() raising gives state failed and a NodeError in phase start."""

        class BadStart(Sink):
            type_name = "t.bad_start"

            def start(self) -> None:
                raise OSError("device busy")

        reg = make_registry()
        reg.add(BadStart)
        g = Graph("bad")
        g.chain(g.add("t.source", id="src"), g.add("t.bad_start", id="dev"))
        _, result = run(g.compile(reg))
        assert result.state is SessionState.FAILED
        assert result.errors[0].node_id == "dev" and result.errors[0].phase == "start"
        assert result.nodes["dev"].frames_in == 0

    def test_one_sessions_failure_does_not_touch_another(self) -> None:
        """Two sessions on one loop: errors in one leave the other's result clean."""

        async def main() -> tuple[SessionResult, SessionResult]:
            bad = Session(plan(("t.source", {"frames": 10}), ("t.boom", {"fail_every": 1})))
            good = Session(plan(("t.source", {"frames": 10}), "t.sink"))
            return await asyncio.gather(bad.run(), good.run())

        bad, good = VirtualClock().run(main())
        assert len(bad.errors) == 10
        assert good.ok and good.nodes["n1"].frames_in == 10


class TestCancel:
    """cancel() is bounded in time and reports nodes that ignore it."""

    def test_a_node_that_ignores_cancellation_is_abandoned_and_reported(self) -> None:
        """The stubborn node's task is left behind after cancel_timeout; cancel returns."""

        async def main() -> SessionResult:
            session = Session(plan(("t.source", {"frames": 100}), "t.stubborn"), cancel_timeout=1.0)
            await session.start()
            await asyncio.sleep(0.5)
            return await session.cancel()

        result = VirtualClock().run(main())
        assert result.state is SessionState.CANCELLED
        assert result.abandoned == ("n1",)
        assert any(e.phase == "cancel" and e.node_id == "n1" for e in result.errors)

    def test_a_drain_timeout_turns_into_a_cancel(self) -> None:
        """wait() with drain_timeout never hangs on a stuck node."""

        async def main() -> SessionResult:
            session = Session(
                plan(("t.source", {"frames": 3}), "t.stubborn"),
                cancel_timeout=0.5,
                drain_timeout=5.0,
            )
            return await session.run()

        result = VirtualClock().run(main())
        assert result.state is SessionState.CANCELLED
        assert result.abandoned == ("n1",)


class TestInterruption:
    """Epochs: stale frames are dropped on sight, interruptible work cancelled, queues flushed."""

    def test_no_stale_frame_reaches_an_interruptible_sink(self) -> None:
        """After an interrupt mid-stream, the interruptible sink sees only the new epoch."""
        p = plan(
            ("t.source", {"frames": 60, "paced": False, "interrupt_at": 30}),
            ("t.slow", {"delay_ms": 5}),
            "t.sink_interruptible",
            capacity=100,
        )
        session, result = run(p)
        sink = session.nodes["n2"]
        assert isinstance(sink, Sink)
        for frame, epoch_now in zip(sink.frames, sink.epochs_at_arrival, strict=True):
            assert frame.epoch == epoch_now
        assert result.interrupts == 1
        assert result.edges["n1.out -> n2.in"].stale > 0
        assert sum(1 for f in sink.frames if f.epoch == 1) == 30

    def test_an_interrupt_flushes_queues_and_cancels_inflight_work(self) -> None:
        """Queued frames are flushed (counted) and the running process() is cancelled quietly."""

        async def main() -> tuple[Session, SessionResult, int]:
            session = Session(
                plan(
                    ("t.source", {"frames": 20, "paced": False}),
                    ("t.slow_interruptible", {"delay_ms": 100}),
                    "t.sink",
                    capacity=50,
                )
            )
            await session.start()
            await asyncio.sleep(0.25)  # two frames done, third in flight, rest queued
            queued = session.edge_statistics()["n0.out -> n1.in"].depth
            session.interrupt("barge-in")
            return session, await session.wait(), queued

        session, result, queued = VirtualClock().run(main())
        node = session.nodes["n1"]
        sink = session.nodes["n2"]
        assert isinstance(node, SlowInterruptible) and isinstance(sink, Sink)
        assert node.interrupted_epochs == [1]
        edge = result.edges["n0.out -> n1.in"]
        assert queued == 17 and edge.flushed == queued
        assert len(sink.frames) == 2  # the in-flight third frame never came out
        assert result.ok  # cancellation by interruption is not an error

    def test_the_interrupt_event_reaches_listeners_with_the_new_epoch(self) -> None:
        """Interrupt is published on the bus with epoch and reason."""

        async def main() -> list[object]:
            session = Session(plan(("t.source", {"frames": 5, "interrupt_at": 2}), "t.sink"))
            events = session.events()
            await session.run()
            return [e for e in events.drain() if isinstance(e, Interrupt)]

        (event,) = VirtualClock().run(main())
        assert isinstance(event, Interrupt)
        assert event.epoch == 1 and event.reason == "test" and event.source == "n0"


class TestBus:
    """Control events reach subscribed nodes and external listeners."""

    def test_a_node_receives_only_the_events_it_subscribes_to(self) -> None:
        """Listener subscribes to UserSpeechStarted and gets exactly that."""
        session, _ = run(plan(("t.source", {"frames": 5}), "t.listener"))
        node = session.nodes["n1"]
        assert isinstance(node, Listener)
        assert [type(e) for e in node.events] == [UserSpeechStarted]
        assert node.events[0].source == "n1" and node.events[0].pts == 40_000_000

    def test_listeners_see_the_lifecycle_in_order(self) -> None:
        """State changes are published: starting, running, ended."""

        async def main() -> list[str]:
            session = Session(plan(("t.source", {"frames": 2}), "t.sink"))
            events = session.events()
            await session.run()
            return [e.new for e in events.drain() if isinstance(e, SessionStateChanged)]

        assert VirtualClock().run(main()) == ["starting", "running", "ended"]

    def test_node_errors_are_events_too(self) -> None:
        """A NodeError is published for every failure."""

        async def main() -> int:
            session = Session(plan(("t.source", {"frames": 4}), ("t.boom", {"fail_every": 1})))
            events = session.events()
            await session.run()
            return sum(isinstance(e, NodeError) for e in events.drain())

        assert VirtualClock().run(main()) == 4


class TestWiring:
    """Outputs with no edge and frames with unknown ports are not silent."""

    def test_frames_on_an_unconnected_port_are_counted(self) -> None:
        """A passthrough whose output goes nowhere counts what it emitted."""
        g = Graph("t")
        g.chain(g.add("t.source", id="s", frames=7), g.add("t.pass", id="p"))
        _, result = run(g.compile(REG))
        assert result.nodes["p"].unconnected == 7

    def test_emitting_on_an_unknown_port_is_a_node_error(self) -> None:
        """emit() on a port the node does not declare raises UsageError inside process."""

        class Typo(Sink):
            type_name = "t.typo"

            def process(self, port: str, frame: object) -> None:
                self.emit("ouch", frame)  # type: ignore[arg-type]

        reg = make_registry()
        reg.add(Typo)
        g = Graph("t")
        g.chain(g.add("t.source", id="s", frames=1), g.add("t.typo", id="x"))
        _, result = run(g.compile(reg))
        assert result.errors[0].error_type == "UsageError"
        assert "ouch" in result.errors[0].message


@pytest.mark.parametrize("sessions", [1, 20])
def test_many_sessions_share_one_loop_with_isolated_state(sessions: int) -> None:
    """N sessions of one plan each get their own nodes and full output."""
    p = plan(("t.source", {"frames": 50}), "t.pass", "t.slow", "t.sink")

    async def main() -> list[int]:
        runs = [Session(p) for _ in range(sessions)]
        await asyncio.gather(*(s.run() for s in runs))
        counts = []
        for s in runs:
            sink = s.nodes["n3"]
            assert isinstance(sink, Sink)
            counts.append(len(sink.frames))
        return counts

    assert VirtualClock().run(main()) == [50] * sessions
    assert isinstance(AudioFrame, type) and Slow.type_name == "t.slow" and Boom
