"""Node types and graphs used by the runtime benchmarks (``bench_graph.py``).

Every node here is a pass-through or a counter, so what the benchmarks measure
is the runtime (emit, edges, queues, tasks, timers), not node work. The types
live in a private :data:`REGISTRY` so they never clash with real node types.

Instrumentation does not go through params (they are frozen, validated values
shared by every session of a plan): the harness attaches a :class:`Probe` to
the source and sink *instances* of a session (``session.nodes[...]``) after
building it. A probe carries a side table ``pts → perf_counter_ns() at emit``
that the sink reads to get source-to-sink latency.
"""

from __future__ import annotations

import asyncio
import time
from array import array

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.graph.builder import Graph
from vbgraph.graph.plan import Plan
from vbgraph.node import Node, NodeContext, NodeParams, audio_port, frame_port
from vbgraph.registry import Registry

__all__ = [
    "FMT",
    "PCM_20MS",
    "PERIOD_NS",
    "REGISTRY",
    "BenchSink",
    "BenchSource",
    "InterruptSink",
    "InterruptSource",
    "PacedSource",
    "PassAsync",
    "PassSync",
    "Probe",
    "Stats",
    "TickedSource",
    "Ticker",
    "chain_plan",
    "interrupt_plan",
    "voice_plan",
]

FMT = AudioFormat(16000)
PERIOD_NS = 20_000_000
PCM_20MS = bytes(640)
"""20 ms of 16 kHz mono s16le silence (320 samples)."""

REGISTRY = Registry(load_entry_points=False)


class Stats:
    """Samples pooled over every session of one run (ns).

    Kept in ``array('q')``, not lists: a list of a million ints is a GC-tracked
    container whose every item a full collection visits (a cache miss each),
    which made the harness itself add ~25 ms to every gen-2 pause at N = 400.
    """

    __slots__ = ("latency", "lateness")

    def __init__(self) -> None:
        self.latency = array("q")
        self.lateness = array("q")


class Probe:
    """Per-session instrumentation shared by a session's source and sink.

    ``warmup_ns``: frames with a smaller pts are not sampled (session start-up).
    ``phase_ns``: a paced source starts its 20 ms grid this late, so that many
    sessions do not all tick at the same instant (calls start at random times).
    """

    __slots__ = ("emitted", "phase_ns", "stats", "ticker", "warmup_ns")

    def __init__(
        self,
        stats: Stats,
        *,
        phase_ns: int = 0,
        warmup_ns: int = 0,
        ticker: Ticker | None = None,
    ) -> None:
        self.stats = stats
        self.emitted: dict[int, int] = {}
        self.phase_ns = phase_ns
        self.warmup_ns = warmup_ns
        self.ticker = ticker


class Ticker:
    """One task that pulses every ``period_ns``; :class:`TickedSource` nodes wait on it.

    ``phase_ns`` shifts its grid, so several tickers can spread sessions over
    the period instead of waking them all at once.

    A pulse resolves one shared future (a one-shot event): a tick costs one
    future plus one callback per waiting source, where ``asyncio.Event`` would
    create a future per waiter. Tick ``k`` is due at ``t0 + k * period``
    (loop time), computed from ``k``, never accumulated.
    """

    def __init__(self, period_ns: int = PERIOD_NS, phase_ns: int = 0) -> None:
        self.period = period_ns / 1e9
        self.phase = phase_ns / 1e9
        self.count = 0
        self.t0 = 0.0
        self.lateness: list[float] = []
        self._future: asyncio.Future[None] | None = None

    def due(self, k: int) -> float:
        """Loop time at which tick ``k`` is due."""
        return self.t0 + k * self.period

    def wait(self) -> asyncio.Future[None]:
        """A future resolved at the next tick (shared by every waiter)."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    async def run(self) -> None:
        """Tick until cancelled."""
        loop = asyncio.get_running_loop()
        self.t0 = loop.time() + self.phase
        k = 0
        while True:
            k += 1
            due = self.due(k)
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lateness.append(loop.time() - due)
            self.count = k
            future, self._future = self._future, None
            if future is not None:
                future.set_result(None)


# -- nodes ----------------------------------------------------------------------------


class BenchSource(Node):
    """Emit one pre-built 20 ms frame ``frames`` times as fast as the graph takes it.

    Calls ``ctx.drain()`` after each emit, as any well-behaved source does, so a
    full ``block`` queue paces it.
    """

    type_name = "bench.source"

    class Params(NodeParams):
        frames: int = 1000

    outputs = {"out": audio_port(fixed=FMT)}

    async def run(self) -> None:
        frame = AudioFrame(PCM_20MS, FMT)
        emit = self.emit
        drain = self.ctx.drain
        for _ in range(self.params.frames):
            emit("out", frame)
            await drain()


class PacedSource(Node):
    """Emit a 20 ms frame every 20 ms on the session clock (its own timer per session).

    Frame ``i`` has ``pts = phase + i * 20 ms``; its emit time goes into the
    probe's side table and how late the timer fired into ``stats.lateness``.
    """

    type_name = "bench.paced_source"

    class Params(NodeParams):
        frames: int = 50

    outputs = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.probe: Probe | None = None

    async def run(self) -> None:
        clock = self.ctx.clock
        probe = self.probe
        phase = probe.phase_ns if probe is not None else 0
        perf = time.perf_counter_ns
        for i in range(self.params.frames):
            due = phase + i * PERIOD_NS
            await clock.sleep_until_ns(due)
            frame = AudioFrame(PCM_20MS, FMT, pts=due, epoch=self.ctx.epoch)
            if probe is not None and due >= probe.warmup_ns:
                probe.stats.lateness.append(clock.now_ns() - due)
                probe.emitted[due] = perf()
            self.emit("out", frame)
            await self.ctx.drain()


class TickedSource(Node):
    """Emit a 20 ms frame on each pulse of a shared :class:`Ticker` (``probe.ticker``).

    Consumes ticks one by one: a source that fell behind emits its backlog
    rather than skipping frames, like a real capture buffer would.
    """

    type_name = "bench.ticked_source"

    class Params(NodeParams):
        frames: int = 50

    outputs = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.probe: Probe | None = None

    async def run(self) -> None:
        probe = self.probe
        assert probe is not None and probe.ticker is not None, "attach a Probe with a ticker"
        ticker = probe.ticker
        loop = asyncio.get_running_loop()
        perf = time.perf_counter_ns
        first = ticker.count + 1
        for i in range(self.params.frames):
            k = first + i
            while ticker.count < k:
                await ticker.wait()
            pts = i * PERIOD_NS
            if pts >= probe.warmup_ns:
                probe.stats.lateness.append(int((loop.time() - ticker.due(k)) * 1e9))
                probe.emitted[pts] = perf()
            self.emit("out", AudioFrame(PCM_20MS, FMT, pts=pts, epoch=self.ctx.epoch))
            await self.ctx.drain()


class PassSync(Node):
    """Pass every frame on (fused: runs inside the upstream task's ``emit``)."""

    type_name = "bench.pass_sync"
    inputs = {"in": frame_port()}
    outputs = {"out": frame_port()}

    def process(self, port: str, frame: Frame) -> None:
        self.emit("out", frame)


class PassAsync(Node):
    """Pass every frame on from its own task (bounded input queue)."""

    type_name = "bench.pass_async"
    inputs = {"in": frame_port()}
    outputs = {"out": frame_port()}

    async def process(self, port: str, frame: Frame) -> None:
        self.emit("out", frame)


class BenchSink(Node):
    """Count frames; with a probe attached, record source-to-sink latency."""

    type_name = "bench.sink"
    inputs = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.count = 0
        self.probe: Probe | None = None

    def process(self, port: str, frame: Frame) -> None:
        self.count += 1
        probe = self.probe
        if probe is not None:
            sent = probe.emitted.pop(frame.pts, None)
            if sent is not None:
                probe.stats.latency.append(time.perf_counter_ns() - sent)


class InterruptSource(Node):
    """Fill the sink's queue, then wait for the harness (``gate``) and send more.

    Phase 1: ``backlog + 1`` frames in epoch 0 (the sink takes one and stalls on
    it, ``backlog`` stay queued). Phase 2, after the gate opens: ``after``
    frames still stamped with epoch 0 (stale by then) and ``after`` frames in
    the current epoch.
    """

    type_name = "bench.interrupt_source"

    class Params(NodeParams):
        backlog: int = 500
        after: int = 10

    outputs = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.gate = asyncio.Event()

    async def run(self) -> None:
        old = AudioFrame(PCM_20MS, FMT, epoch=0)
        for _ in range(self.params.backlog + 1):
            self.emit("out", old)
        await self.gate.wait()
        fresh = AudioFrame(PCM_20MS, FMT, epoch=self.ctx.epoch)
        for _ in range(self.params.after):
            self.emit("out", old)
            self.emit("out", fresh)
        await self.ctx.drain()


class InterruptSink(Node):
    """An interruptible async sink that stalls on its first frame (playout stuck).

    Counts frames of an older epoch than the session's that reach ``process``
    (``stale_seen``, must stay 0) and how often ``on_interrupt`` ran.
    """

    type_name = "bench.interrupt_sink"
    interruptible = True
    inputs = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.seen = 0
        self.stale_seen = 0
        self.interrupted = 0
        self.stalled = asyncio.Event()

    async def process(self, port: str, frame: Frame) -> None:
        self.seen += 1
        if frame.epoch < self.ctx.epoch:
            self.stale_seen += 1
        if self.seen == 1:
            self.stalled.set()
            await asyncio.Event().wait()  # never set: only an interruption ends it

    def on_interrupt(self, epoch: int) -> None:
        self.interrupted += 1


for _cls in (
    BenchSource,
    PacedSource,
    TickedSource,
    PassSync,
    PassAsync,
    BenchSink,
    InterruptSource,
    InterruptSink,
):
    REGISTRY.add(_cls)


# -- graphs -----------------------------------------------------------------------------


def chain_plan(k: int, *, sync: bool, frames: int) -> Plan:
    """``bench.source → k pass-through nodes → bench.sink``."""
    g = Graph(f"chain-{'sync' if sync else 'async'}-{k}")
    stages = [g.add("bench.source", id="src", frames=frames)]
    stages += [g.add("bench.pass_sync" if sync else "bench.pass_async") for _ in range(k)]
    stages.append(g.add("bench.sink", id="sink"))
    g.chain(*stages)
    return g.compile(registry=REGISTRY)


def voice_plan(frames: int, *, ticked: bool = False) -> Plan:
    """The voice-shaped graph: paced source → 5 sync → 1 async → sink (8 nodes).

    The edge into the async stage is what a live audio edge should be:
    ``drop_oldest`` with at most 100 ms queued, so an overloaded process shows
    up as drops instead of an ever-growing delay.
    """
    g = Graph("voice-ticked" if ticked else "voice")
    src = g.add("bench.ticked_source" if ticked else "bench.paced_source", id="src", frames=frames)
    syncs = [g.add("bench.pass_sync") for _ in range(5)]
    stage = g.add("bench.pass_async", id="async")
    sink = g.add("bench.sink", id="sink")
    g.chain(src, *syncs)
    g.connect(syncs[-1], stage, policy="drop_oldest", max_ms=100)
    g.connect(stage, sink)
    return g.compile(registry=REGISTRY)


def interrupt_plan(backlog: int = 500, after: int = 10) -> Plan:
    """Source → 5 sync → interruptible async sink whose queue holds ``backlog`` frames."""
    g = Graph("interrupt")
    src = g.add("bench.interrupt_source", id="src", backlog=backlog, after=after)
    syncs = [g.add("bench.pass_sync") for _ in range(5)]
    sink = g.add("bench.interrupt_sink", id="sink")
    g.chain(src, *syncs)
    g.connect(syncs[-1], sink, capacity=max(600, backlog + 2 * after + 1), policy="block")
    return g.compile(registry=REGISTRY)
