"""The vbgraph side: the comparison's pipelines as vbgraph graphs (public node API).

Two shapes of the same K-stage pass-through, because vbgraph offers both:

* ``fused``: each stage is a node with a synchronous ``process`` (vbgraph's
  default for work that does not wait): the hop is a function call in the
  upstream task, no queue.
* ``async``: each stage has ``async def process``, so it gets its own task
  and bounded input queue: the same shape as a Pipecat ``FrameProcessor``.

The pass-through stages are ``bench.pass_sync`` / ``bench.pass_async`` from
``benchmarks/_nodes.py`` (what ``bench_graph.py`` measures); the sources and
sinks here carry the comparison's probes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _nodes

from _cmp_common import FRAME_BYTES, PERIOD_NS, RATE, WARMUP_NS, LoadStats, PingPong, rss_kb

from _nodes import PassAsync, PassSync
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.graph.builder import Graph
from vbgraph.graph.plan import Plan
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.registry import Registry
from vbgraph.runtime.session import Session

__all__ = ["hop_latency", "interrupt_latency", "load", "memory_per_session", "throughput"]

FMT = AudioFormat(RATE)
PCM = bytes(FRAME_BYTES)
REGISTRY = Registry(load_entry_points=False)


class PingSource(Node):
    """Pushes ``frames`` frames, one at a time: the next once the sink has the last."""

    type_name: ClassVar[str] = "cmp.ping_source"

    class Params(NodeParams):
        frames: int = 1000

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.probe = PingPong()

    async def run(self) -> None:
        probe = self.probe
        for i in range(self.params.frames):  # type: ignore[attr-defined]
            frame = AudioFrame(PCM, FMT, pts=i * PERIOD_NS)
            arrived = probe.expect()
            self.emit("out", frame)
            await arrived


class BurstSource(Node):
    """Pushes ``frames`` fresh frames as fast as the graph takes them."""

    type_name: ClassVar[str] = "cmp.burst_source"

    class Params(NodeParams):
        frames: int = 1000

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.t0 = 0

    async def run(self) -> None:
        self.t0 = time.perf_counter_ns()
        emit, drain = self.emit, self.ctx.drain
        for i in range(self.params.frames):  # type: ignore[attr-defined]
            emit("out", AudioFrame(PCM, FMT, pts=i * PERIOD_NS))
            await drain()


class PacedSource(Node):
    """A microphone: frame ``i`` leaves at ``phase + i * 20 ms`` (absolute deadlines)."""

    type_name: ClassVar[str] = "cmp.paced_source"

    class Params(NodeParams):
        frames: int = 50

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.phase_ns = 0
        """Set by the harness per session (one compiled plan for every phase)."""

    async def run(self) -> None:
        clock = self.ctx.clock
        for i in range(self.params.frames):  # type: ignore[attr-defined]
            due = self.phase_ns + i * PERIOD_NS
            await clock.sleep_until_ns(due)
            self.emit("out", AudioFrame(PCM, FMT, pts=due))
            await self.ctx.drain()


class Sink(Node):
    """Counts arrivals; with ``ping`` set, releases the ping source; with ``load``, times them."""

    type_name: ClassVar[str] = "cmp.sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.count = 0
        self.t_last = 0
        self.ping: PingPong | None = None
        self.load: LoadStats | None = None

    def process(self, port: str, frame: Frame) -> None:
        self.count += 1
        if self.ping is not None:
            self.ping.arrived()
        elif self.load is not None:
            self.load.received += 1
            if frame.pts >= WARMUP_NS:
                self.load.latency.append(self.ctx.now_ns() - frame.pts)
        else:
            self.t_last = time.perf_counter_ns()


class InterruptSource(Node):
    """Fills the sink's queue, then interrupts and times the first fresh frame's arrival."""

    type_name: ClassVar[str] = "cmp.interrupt_source"

    class Params(NodeParams):
        backlog: int = 500

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.sink: StallSink | None = None
        self.call_ns = 0
        self.ready_ns = 0
        self.done = asyncio.Event()

    async def run(self) -> None:
        sink = self.sink
        assert sink is not None
        for _ in range(self.params.backlog + 1):  # type: ignore[attr-defined]
            self.emit("out", AudioFrame(PCM, FMT, epoch=self.ctx.epoch))
            await self.ctx.drain()
        await sink.stalled.wait()  # the sink holds frame 1; `backlog` are queued
        arrived = sink.fresh = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter_ns()
        self.ctx.interrupt("barge-in")  # what the turn node does on a confirmed barge-in
        self.call_ns = time.perf_counter_ns() - t0
        self.emit("out", AudioFrame(PCM, FMT, epoch=self.ctx.epoch))
        await arrived
        self.ready_ns = time.perf_counter_ns() - t0
        self.done.set()


class StallSink(Node):
    """An interruptible playout stuck on its first frame; counts stale frames that reach it."""

    type_name: ClassVar[str] = "cmp.stall_sink"
    interruptible: ClassVar[bool] = True
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.seen = 0
        self.stale = 0
        self.stalled = asyncio.Event()
        self.fresh: asyncio.Future[None] | None = None

    async def process(self, port: str, frame: Frame) -> None:
        self.seen += 1
        if self.seen == 1:
            self.stalled.set()
            await asyncio.Event().wait()  # only an interruption ends this
        elif self.fresh is not None and frame.epoch == self.ctx.epoch:
            self.fresh.set_result(None)
        elif self.fresh is not None:
            self.stale += 1


for _cls in (PingSource, BurstSource, PacedSource, Sink, InterruptSource, StallSink):
    REGISTRY.add(_cls)
for _cls in (PassSync, PassAsync):
    REGISTRY.add(_cls)


def _chain(name: str, source: str, k: int, sync: bool, sink: str = "cmp.sink", **sp: int) -> Plan:
    g = Graph(name)
    stages = [g.add(source, id="src", **sp)]
    stages += [g.add("bench.pass_sync" if sync else "bench.pass_async") for _ in range(k)]
    end = g.add(sink, id="sink")
    g.chain(*stages)
    # The sink's queue holds a whole interruption backlog (block: nothing is lost).
    g.connect(stages[-1], end, capacity=1024, policy="block")
    return g.compile(registry=REGISTRY)


async def hop_latency(k: int, sync: bool, frames: int) -> list[int]:
    """Latency (ns) of each of ``frames`` frames through an idle ``k``-stage pipeline."""
    session = Session(_chain("ping", "cmp.ping_source", k, sync, frames=frames))
    source, sink = session.nodes["src"], session.nodes["sink"]
    assert isinstance(source, PingSource) and isinstance(sink, Sink)
    sink.ping = source.probe
    result = await session.run()
    assert result.ok and sink.count == frames, (result.errors, sink.count)
    return list(source.probe.latency)


async def throughput(k: int, sync: bool, frames: int) -> float:
    """Frames per second through ``k`` stages, pushed as fast as they are taken."""
    session = Session(_chain("burst", "cmp.burst_source", k, sync, frames=frames))
    source, sink = session.nodes["src"], session.nodes["sink"]
    assert isinstance(source, BurstSource) and isinstance(sink, Sink)
    result = await session.run()
    assert result.ok and sink.count == frames, (result.errors, sink.count)
    return frames * 1e9 / (sink.t_last - source.t0)


async def load(n: int, k: int, sync: bool, seconds: float, stats: LoadStats) -> bool:
    """``n`` paced sessions at once for ``seconds``; False if they could not keep up."""
    frames = round((seconds * 1e9 + WARMUP_NS) / PERIOD_NS)
    plan = _chain("load", "cmp.paced_source", k, sync, frames=frames)
    sessions = []
    for j in range(n):
        session = Session(plan)
        source, sink = session.nodes["src"], session.nodes["sink"]
        assert isinstance(source, PacedSource) and isinstance(sink, Sink)
        source.phase_ns = j * PERIOD_NS // n  # calls start at random times, not all at once
        sink.load = stats
        sessions.append(session)
    for session in sessions:
        await session.start()
    waits = asyncio.gather(*(s.wait() for s in sessions))
    try:
        results = await asyncio.wait_for(asyncio.shield(waits), 2 * seconds + 5)
    except TimeoutError:
        for session in sessions:
            session.end()
        await waits
        return False
    return all(r.ok for r in results) and stats.received == n * frames


async def memory_per_session(n: int, k: int, sync: bool) -> float:
    """RSS growth (kB) per started, idle session (each source waits an hour)."""
    plan = _chain("idle", "cmp.paced_source", k, sync, frames=2)
    before = rss_kb()
    sessions = [Session(plan) for _ in range(n)]
    for session in sessions:
        source = session.nodes["src"]
        assert isinstance(source, PacedSource)
        source.phase_ns = 3600 * 10**9  # idle: the first frame is an hour away
        await session.start()
    await asyncio.sleep(0.2)  # every task has run up to its first wait
    grown = (rss_kb() - before) / n
    for session in sessions:
        await session.cancel()
    return grown


async def interrupt_latency(k: int, sync: bool, backlog: int) -> tuple[float, float, int]:
    """Interrupt with ``backlog`` frames queued: (call µs, fresh frame through µs, stale seen)."""
    session = Session(
        _chain("interrupt", "cmp.interrupt_source", k, sync, sink="cmp.stall_sink", backlog=backlog)
    )
    source, sink = session.nodes["src"], session.nodes["sink"]
    assert isinstance(source, InterruptSource) and isinstance(sink, StallSink)
    source.sink = sink
    await session.start()
    await source.done.wait()
    await session.cancel()
    return source.call_ns / 1e3, source.ready_ns / 1e3, sink.stale
