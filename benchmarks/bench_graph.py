"""Runtime benchmarks: hop cost, paced latency, sessions per process, interruption,
idle memory and import time.

Two ways to run it::

    PYTHONPATH=src python benchmarks/bench_graph.py [--quick] [--only hops,sessions]
    PYTHONPATH=src python -m pytest benchmarks/           # hop cost and interruption only

The standalone runner prints markdown tables of medians (and the machine) to
stdout; ``docs/benchmarks.md`` holds a run of it with a reading of the figures.

Every node is a pass-through (``_nodes.py``), so the figures are the runtime's
own cost: what is left for real node work is what these numbers leave over.
The machine is usually small and shared, so the runner repeats, interleaves
the configurations across repeats and quotes medians; compare ratios (vbgraph
hop vs plain call vs bare ``asyncio.Queue``) rather than absolute values.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

_ROOT = Path(__file__).resolve().parent.parent
try:
    import vbgraph
except ImportError:  # run from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(_ROOT / "src"))
    import vbgraph

from _nodes import (  # noqa: E402  (after the path fallback above)
    FMT,
    PCM_20MS,
    PERIOD_NS,
    BenchSink,
    InterruptSink,
    InterruptSource,
    Probe,
    Stats,
    Ticker,
    chain_plan,
    interrupt_plan,
    voice_plan,
)
from vbgraph.frames import AudioFrame, Frame  # noqa: E402
from vbgraph.graph.plan import Plan  # noqa: E402
from vbgraph.runtime.edge import EdgeStatistics  # noqa: E402
from vbgraph.runtime.session import Session, SessionResult  # noqa: E402

KS = (1, 7, 20)
PHASE_GROUPS = 20
"""Phased-ticker variant: this many tickers, 1 ms apart."""
WARMUP_NS = 250_000_000
"""Frames due in a session's first 250 ms are not sampled (start-up of all sessions)."""

TARGETS = {  # from the project brief
    "fused_hop_ns": 1_000,
    "async_hop_ns": 5_000,
    "interrupt_us": 100,
    "idle_mb": 0.05,
    "import_ms": 100,
}


# -- small helpers ----------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``."""
    mx = statistics.fmean(xs)
    my = statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den


def machine() -> dict[str, str]:
    """CPU model, cores, Python and vbgraph versions."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "vbgraph": getattr(vbgraph, "__version__", "?"),
    }


class GcPauses:
    """Collects the duration of every garbage collection while active."""

    def __init__(self) -> None:
        self.pauses: list[int] = []
        self._t = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter_ns()
        else:
            self.pauses.append(time.perf_counter_ns() - self._t)

    @contextmanager
    def active(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


def _sink(session: Session) -> BenchSink:
    node = session.nodes["sink"]
    assert isinstance(node, BenchSink)
    return node


# -- 1. hop cost ---------------------------------------------------------------------------


async def run_chain(plan: Plan, frames: int) -> int:
    """Push ``frames`` frames through one session of a chain plan; ns taken."""
    session = Session(plan)
    t0 = time.perf_counter_ns()
    result = await session.run()
    dt = time.perf_counter_ns() - t0
    got = _sink(session).count
    assert result.ok and got == frames, (result.state, result.errors, got)
    return dt


def run_call_chain(k: int, frames: int) -> int:
    """Reference: ``k`` plain Python functions, each calling the next; ns taken."""
    count = 0

    def sink(frame: Frame) -> None:
        nonlocal count
        count += 1

    def link(nxt: Callable[[Frame], None]) -> Callable[[Frame], None]:
        def hop(frame: Frame) -> None:
            nxt(frame)

        return hop

    head = sink
    for _ in range(k):
        head = link(head)
    frame = AudioFrame(PCM_20MS, FMT)
    t0 = time.perf_counter_ns()
    for _ in range(frames):
        head(frame)
    dt = time.perf_counter_ns() - t0
    assert count == frames
    return dt


async def run_queue_chain(k: int, frames: int) -> int:
    """Reference: ``k`` tasks joined by bare ``asyncio.Queue(16)``s; ns taken."""
    queues: list[asyncio.Queue[Frame | None]] = [asyncio.Queue(16) for _ in range(k)]
    count = 0

    async def stage(i: int) -> None:
        nonlocal count
        get = queues[i].get
        if i + 1 < k:
            put = queues[i + 1].put
            while True:
                item = await get()
                await put(item)
                if item is None:
                    return
        while await get() is not None:
            count += 1

    tasks = [asyncio.create_task(stage(i)) for i in range(k)]
    frame = AudioFrame(PCM_20MS, FMT)
    put0 = queues[0].put
    t0 = time.perf_counter_ns()
    for _ in range(frames):
        await put0(frame)
    await put0(None)
    await asyncio.gather(*tasks)
    dt = time.perf_counter_ns() - t0
    assert count == frames
    return dt


@dataclass
class HopRow:
    name: str
    per_frame_ns: dict[int, float] = field(default_factory=dict)

    @property
    def hop_ns(self) -> float:
        ks = sorted(self.per_frame_ns)
        return slope(ks, [self.per_frame_ns[k] for k in ks])

    def fps(self, k: int) -> float:
        return 1e9 / self.per_frame_ns[k]


def bench_hops(frames: int, repeats: int) -> list[HopRow]:
    """Per-frame time at K = 1, 7, 20 for the four chain kinds (medians)."""
    plans = {
        (sync, k): chain_plan(k, sync=sync, frames=frames) for sync in (True, False) for k in KS
    }
    call_frames = frames * 10  # a plain call is ~100x cheaper: more frames for resolution
    samples: dict[tuple[str, int], list[float]] = {}

    async def one_repeat() -> None:
        # Interleave every configuration within a repeat so drifts hit all alike.
        for k in KS:
            for sync in (True, False):
                ns = await run_chain(plans[sync, k], frames)
                name = "vbgraph fused (sync)" if sync else "vbgraph async"
                samples.setdefault((name, k), []).append(ns / frames)
            ns = await run_queue_chain(k, frames)
            samples.setdefault(("bare asyncio.Queue", k), []).append(ns / frames)
            ns = run_call_chain(k, call_frames)
            samples.setdefault(("plain function call", k), []).append(ns / call_frames)

    async def main() -> None:
        await one_repeat()  # warm-up, discarded
        samples.clear()
        for _ in range(repeats):
            await one_repeat()

    asyncio.run(main())
    rows: dict[str, HopRow] = {}
    for (name, k), values in samples.items():
        rows.setdefault(name, HopRow(name)).per_frame_ns[k] = statistics.median(values)
    return list(rows.values())


def bench_depth_step(frames: int, repeats: int) -> tuple[int | None, float, float]:
    """Find the fused-chain depth where per-frame cost steps up.

    CPython 3.11/3.12 keep Python frames in 16 kB chunks and free a chunk as
    soon as it empties, so a call chain that crosses a chunk boundary once per
    frame pays an mmap + munmap (+ page faults) per frame (CPython gh-142183).
    A fused chain is one call chain per frame, three Python frames per hop.
    Returns (first K past the step or None, extra µs per frame there, ns/hop).
    """
    ks = list(range(4, 61, 4))
    per: dict[int, float] = {}

    async def main() -> None:
        for k in ks:
            plan = chain_plan(k, sync=True, frames=frames)
            await run_chain(plan, frames)
            per[k] = statistics.median([await run_chain(plan, frames) for _ in range(repeats)])
            per[k] /= frames

    asyncio.run(main())
    low = [k for k in ks if k <= 16]
    hop = slope(low, [per[k] for k in low])
    base = statistics.fmean(per[k] - k * hop for k in low)
    for k in ks:
        excess = per[k] - (base + k * hop)
        if excess > 2_000:
            return k, excess / 1e3, hop
    return None, 0.0, hop


# -- 2 and 3. paced sessions ---------------------------------------------------------------


@dataclass
class SessionsRow:
    n: int
    variant: str
    seconds: float
    latency: Sequence[int]
    lateness: Sequence[int]
    drops: int
    lost: int
    cpu: float
    cpu_per_frame_ns: float
    wall: float
    gc_max_ns: int
    gc_total_ns: int
    overran: bool

    @property
    def ok(self) -> bool:
        return pct(self.latency, 99) < 20e6 and self.drops == 0 and not self.overran


PACINGS = {
    "timers": "per-session timers",
    "ticker": "one shared ticker",
    "phased": f"{PHASE_GROUPS} phased tickers",
    "bare": "reference: bare asyncio, 2 tasks + Queue",
}


async def run_sessions(
    n: int, seconds: float, *, pacing: str = "timers", freeze: bool = False
) -> SessionsRow:
    """``n`` concurrent voice-graph sessions paced at 20 ms, for ``seconds``.

    ``pacing``: ``timers``: each source sleeps on its own timer; session ``j``
    ticks at phase ``j * 20 ms / n``, as calls that started at random times
    would. ``ticker``: one task pulses every source at once. ``phased``:
    ``PHASE_GROUPS`` tickers 20 ms / ``PHASE_GROUPS`` apart, session ``j`` on
    ticker ``j % PHASE_GROUPS``. ``freeze``: ``gc.freeze()`` once all sessions
    have started.
    """
    frames = round(seconds * 1e9 / PERIOD_NS) + WARMUP_NS // PERIOD_NS
    ticked = pacing != "timers"
    plan = voice_plan(frames, ticked=ticked)
    stats = Stats()
    groups = {"timers": 0, "ticker": 1, "phased": PHASE_GROUPS}[pacing]
    tickers = [Ticker(phase_ns=g * PERIOD_NS // groups) for g in range(groups)]
    sessions = [Session(plan) for _ in range(n)]
    for j, session in enumerate(sessions):
        phase = 0 if ticked else j * PERIOD_NS // n
        ticker = tickers[j % groups] if ticked else None
        probe = Probe(stats, phase_ns=phase, warmup_ns=WARMUP_NS + phase, ticker=ticker)
        nodes = session.nodes
        nodes["src"].probe = probe  # type: ignore[attr-defined]
        nodes["sink"].probe = probe  # type: ignore[attr-defined]
    gc.collect()
    deadline = 2 * (seconds + WARMUP_NS / 1e9) + 2
    with GcPauses().active() as gcp:
        wall0 = time.perf_counter()
        ticker_tasks = [asyncio.create_task(t.run()) for t in tickers]
        for session in sessions:
            await session.start()
        if freeze:
            # Move everything alive now (imports, plans, the started sessions) out
            # of the collector's reach: full collections then only walk new objects.
            gc.freeze()
        waits = asyncio.gather(*(s.wait() for s in sessions))
        window = asyncio.create_task(_steady_window(seconds, stats))
        overran = False
        try:
            results: list[SessionResult] = await asyncio.wait_for(asyncio.shield(waits), deadline)
        except TimeoutError:
            overran = True  # overloaded: stop the sources, let what is queued drain
            for session in sessions:
                session.end()
            results = await waits
        wall = time.perf_counter() - wall0
        cpu_window, wall_window, frames_window = await window
        for task in ticker_tasks:
            task.cancel()
        if freeze:
            gc.unfreeze()
    drops = sum(e.drops for r in results for e in r.edges.values())
    lost = sum(r.frames_lost for r in results)
    assert all(not r.errors for r in results), [r.errors for r in results if r.errors][:1]
    return SessionsRow(
        n=n,
        variant=PACINGS[pacing] + (" + gc.freeze()" if freeze else ""),
        seconds=seconds,
        latency=stats.latency,
        lateness=stats.lateness,
        drops=drops,
        lost=lost,
        cpu=cpu_window / wall_window,
        cpu_per_frame_ns=cpu_window * 1e9 / max(1, frames_window),
        wall=wall,
        gc_max_ns=max(gcp.pauses, default=0),
        gc_total_ns=sum(gcp.pauses),
        overran=overran,
    )


async def run_bare_sessions(n: int, seconds: float) -> SessionsRow:
    """Reference: the asyncio floor under a session, with no vbgraph at all.

    Each "session" is two tasks: a producer paced by its own timer (same
    phases as ``pacing="timers"``) and a consumer behind an ``asyncio.Queue``
    of 5 frames (100 ms, dropping the oldest), the same task shape as the
    voice graph's source and async stage without the six other nodes.
    """
    frames = round(seconds * 1e9 / PERIOD_NS) + WARMUP_NS // PERIOD_NS
    stats = Stats()
    drops = 0
    loop = asyncio.get_running_loop()
    frame = AudioFrame(PCM_20MS, FMT)

    async def one(phase_ns: int) -> None:
        nonlocal drops
        queue: asyncio.Queue[tuple[int, Frame] | None] = asyncio.Queue(5)
        warmup = WARMUP_NS + phase_ns

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                sent, _ = item
                if sent:
                    stats.latency.append(time.perf_counter_ns() - sent)

        consumer = asyncio.create_task(consume())
        t0 = loop.time()
        for i in range(frames):
            due = phase_ns + i * PERIOD_NS
            delay = t0 + due / 1e9 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = 0
            if due >= warmup:
                stats.lateness.append(int((loop.time() - t0) * 1e9) - due)
                sent = time.perf_counter_ns()
            if queue.full():
                queue.get_nowait()
                drops += 1
            queue.put_nowait((sent, frame))
        await queue.put(None)
        await consumer

    gc.collect()
    with GcPauses().active() as gcp:
        wall0 = time.perf_counter()
        tasks = [asyncio.create_task(one(j * PERIOD_NS // n)) for j in range(n)]
        window = asyncio.create_task(_steady_window(seconds, stats))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - wall0
        cpu_window, wall_window, frames_window = await window
    return SessionsRow(
        n=n,
        variant=PACINGS["bare"],
        seconds=seconds,
        latency=stats.latency,
        lateness=stats.lateness,
        drops=drops,
        lost=drops,
        cpu=cpu_window / wall_window,
        cpu_per_frame_ns=cpu_window * 1e9 / max(1, frames_window),
        wall=wall,
        gc_max_ns=max(gcp.pauses, default=0),
        gc_total_ns=sum(gcp.pauses),
        overran=False,
    )


async def _steady_window(seconds: float, stats: Stats) -> tuple[float, float, int]:
    """CPU s, wall s and frames emitted between 0.5 s and ``seconds`` after start.

    Leaves out start-up (every session starting at once) and the drain at the
    end, so CPU per frame is the steady-state cost.
    """
    await asyncio.sleep(0.5)
    cpu0, wall0, frames0 = time.process_time(), time.perf_counter(), len(stats.lateness)
    await asyncio.sleep(max(0.25, seconds - 0.5))
    return (
        time.process_time() - cpu0,
        time.perf_counter() - wall0,
        len(stats.lateness) - frames0,
    )


VARIANTS = (
    ("timers", False),
    ("ticker", False),
    ("phased", False),
    ("timers", True),
    ("bare", False),
)
"""(pacing, gc.freeze()) pairs the sessions sweep runs."""


def bench_sessions(ns: Sequence[int], seconds: float) -> list[SessionsRow]:
    """Sweep ``ns`` for each pacing variant, interleaved so drifts hit all alike.

    A variant that overran (sources could not keep up) is not run at larger N.
    """
    rows: list[SessionsRow] = []
    saturated: set[tuple[str, bool]] = set()
    for n in ns:
        for variant in VARIANTS:
            if variant in saturated:
                continue
            pacing, freeze = variant
            if pacing == "bare":
                row = asyncio.run(run_bare_sessions(n, seconds))
            else:
                row = asyncio.run(run_sessions(n, seconds, pacing=pacing, freeze=freeze))
            rows.append(row)
            print(
                f"  ... {row.variant} N={n}: p99 {pct(row.latency, 99) / 1e6:.2f} ms, "
                f"cpu {row.cpu:.0%}",
                file=sys.stderr,
            )
            if row.overran:
                saturated.add(variant)
    order = {PACINGS[p] + (" + gc.freeze()" if f else ""): i for i, (p, f) in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (order[r.variant], r.n))
    return rows


# -- 4. interruption -----------------------------------------------------------------------


@dataclass
class InterruptRun:
    interrupt_ns: int
    flushed: int
    stale_dropped: int
    stale_seen: int
    fresh_seen: int


async def prepare_interrupt(backlog: int = 500) -> Session:
    """A started session whose interruptible sink is stalled with ``backlog`` frames queued."""
    session = Session(interrupt_plan(backlog))
    await session.start()
    sink = session.nodes["sink"]
    assert isinstance(sink, InterruptSink)
    await sink.stalled.wait()
    stats = _sink_edge(session)
    assert stats.depth == backlog, stats
    return session


def _sink_edge(session: Session) -> EdgeStatistics:
    (stats,) = [s for name, s in session.edge_statistics().items() if name.endswith("sink.in")]
    return stats


async def finish_interrupt(session: Session, interrupt_ns: int) -> InterruptRun:
    """Let the source send its post-interrupt frames, end, and count what the sink saw."""
    src = session.nodes["src"]
    sink = session.nodes["sink"]
    assert isinstance(src, InterruptSource) and isinstance(sink, InterruptSink)
    src.gate.set()
    result = await session.wait()
    assert result.ok, (result.state, result.errors)
    (edge,) = [s for name, s in result.edges.items() if name.endswith("sink.in")]
    assert sink.interrupted == 1
    return InterruptRun(
        interrupt_ns=interrupt_ns,
        flushed=edge.flushed,
        stale_dropped=edge.stale,
        stale_seen=sink.stale_seen,
        fresh_seen=sink.seen - 1,
    )


async def run_interrupt(backlog: int = 500) -> InterruptRun:
    """One barge-in: time ``session.interrupt`` with ``backlog`` frames queued."""
    session = await prepare_interrupt(backlog)
    t0 = time.perf_counter_ns()
    session.interrupt("bench")
    dt = time.perf_counter_ns() - t0
    return await finish_interrupt(session, dt)


def bench_interrupt(repeats: int) -> list[InterruptRun]:
    async def main() -> list[InterruptRun]:
        await run_interrupt()  # warm-up
        return [await run_interrupt() for _ in range(repeats)]

    return asyncio.run(main())


# -- 5. idle memory and import time ----------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class MemoryResult:
    n: int
    traced_per_session: float
    rss_per_session: float
    top: list[tuple[str, float]]


async def _idle_sessions(n: int, plan: Plan) -> list[Session]:
    stats = Stats()
    sessions = [Session(plan) for _ in range(n)]
    for session in sessions:
        # An hour's phase: the source emits nothing and waits on its timer.
        session.nodes["src"].probe = Probe(stats, phase_ns=3600 * 10**9)  # type: ignore[attr-defined]
        await session.start()
    for _ in range(3):
        await asyncio.sleep(0)  # let every task reach its first wait
    return sessions


async def _close_all(sessions: list[Session]) -> None:
    for session in sessions:
        await session.cancel("bench done")


def rss_per_idle_session(n: int) -> float:
    """RSS growth per idle session, bytes (meaningful only in a fresh process).

    In a process that already ran other benchmarks the allocator reuses freed
    memory and RSS does not move; :func:`bench_memory` runs this in a child.
    """
    plan = voice_plan(frames=10)

    async def measure() -> float:
        warm = await _idle_sessions(50, plan)  # first-use allocations (caches, interning)
        await _close_all(warm)
        del warm
        gc.collect()
        rss0 = _rss_bytes()
        sessions = await _idle_sessions(n, plan)
        gc.collect()
        rss = (_rss_bytes() - rss0) / n
        await _close_all(sessions)
        return rss

    return asyncio.run(measure())


def bench_memory(n: int = 1000) -> MemoryResult:
    """tracemalloc per idle session (here) and RSS per idle session (in a fresh child)."""
    plan = voice_plan(frames=10)
    code = (
        f"import sys; sys.path[:0] = [{str(_ROOT / 'benchmarks')!r}, {str(_ROOT / 'src')!r}]; "
        f"import bench_graph; print(bench_graph.rss_per_idle_session({n}))"
    )
    child = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    rss = float(child.stdout.split()[-1])

    async def measure() -> MemoryResult:
        gc.collect()
        tracemalloc.start(1)
        try:
            snap0 = tracemalloc.take_snapshot()
            sessions = await _idle_sessions(n, plan)
            gc.collect()
            snap1 = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        diff = snap1.compare_to(snap0, "lineno")
        traced = sum(d.size_diff for d in diff) / n
        top = [
            (
                f"{Path(d.traceback[0].filename).name}:{d.traceback[0].lineno}",
                d.size_diff / n,
            )
            for d in diff[:6]
        ]
        await _close_all(sessions)
        return MemoryResult(n, traced, rss, top)

    return asyncio.run(measure())


def _median_run_ms(args: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, env=env, capture_output=True)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@dataclass
class ImportResult:
    bare_ms: float
    practical_ms: float
    python_ms: float
    top: list[tuple[str, float]]


PRACTICAL_IMPORT = "import vbgraph.graph.builder, vbgraph.runtime.session"
"""What a program that builds and runs a graph imports (``vbgraph`` itself is tiny)."""


def bench_import(runs: int = 7) -> ImportResult:
    """``import vbgraph`` (and the practical import) minus interpreter start-up, medians."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT / "src"), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    _median_run_ms(["-c", PRACTICAL_IMPORT], 1, env)  # compile the .pyc files once
    python, bare, practical = [], [], []
    for _ in range(runs):  # interleaved, one of each per round
        python.append(_median_run_ms(["-c", "pass"], 1, env))
        bare.append(_median_run_ms(["-c", "import vbgraph"], 1, env))
        practical.append(_median_run_ms(["-c", PRACTICAL_IMPORT], 1, env))
    base = statistics.median(python)
    # Where the practical import's time goes: self time summed by root package.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PRACTICAL_IMPORT],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    top: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].split(":")[-1].strip().isdigit():
            continue
        root = parts[2].strip().split(".")[0]
        top[root] = top.get(root, 0) + int(parts[0].split(":")[-1]) / 1e3
    ranked = sorted(top.items(), key=lambda kv: -kv[1])[:5]
    return ImportResult(
        bare_ms=statistics.median(bare) - base,
        practical_ms=statistics.median(practical) - base,
        python_ms=base,
        top=ranked,
    )


# -- the standalone runner --------------------------------------------------------------


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f}"


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def print_report(quick: bool, only: set[str]) -> None:
    out = print
    m = machine()
    out(f"# vbgraph runtime benchmarks ({'quick' if quick else 'full'} mode)\n")
    out(f"- CPU: {m['cpu']}, {m['cores']} cores ({m['platform']})")
    out(f"- Python: {m['python']}; vbgraph {m['vbgraph']}")
    out(f"- Date: {time.strftime('%Y-%m-%d %H:%M')}\n")
    summary: list[tuple[str, str, str, str]] = []

    if "hops" in only:
        frames, repeats = (4_000, 5) if quick else (20_000, 5)
        rows = bench_hops(frames, repeats)
        out(f"## 1. Hop cost ({frames} frames of 20 ms audio per run, median of {repeats})\n")
        out("| chain | µs/frame K=1 | K=7 | K=20 | frames/s K=7 | ns per hop (slope) |")
        out("|---|---:|---:|---:|---:|---:|")
        for row in rows:
            cells = " | ".join(f"{row.per_frame_ns[k] / 1e3:.2f}" for k in KS)
            out(f"| {row.name} | {cells} | {row.fps(7):,.0f} | {row.hop_ns:,.0f} |")
        out("")
        step_k, step_us, _ = bench_depth_step(2_000, 3)
        if step_k is None:
            out("Fused depth step: none up to K = 60.\n")
        else:
            out(
                f"Fused depth step: from K ≈ {step_k} on, every frame costs "
                f"{step_us:.1f} µs more (CPython frame-stack chunk alloc/free per frame, "
                "gh-142183; the K at which it starts depends on how deep the loop runs).\n"
            )
        by = {r.name: r for r in rows}
        fused, aio = by["vbgraph fused (sync)"].hop_ns, by["vbgraph async"].hop_ns
        summary.append(
            (
                "fused hop",
                f"{fused:,.0f} ns",
                "≤ 1,000 ns",
                _verdict(fused <= TARGETS["fused_hop_ns"]),
            )
        )
        summary.append(
            ("async hop", f"{aio:,.0f} ns", "≤ 5,000 ns", _verdict(aio <= TARGETS["async_hop_ns"]))
        )

    if "latency" in only:
        seconds = 2.0 if quick else 10.0
        row = asyncio.run(run_sessions(1, seconds))
        out(f"## 2. Paced latency, one session, {seconds:g} s of real time\n")
        out("Source paced at 20 ms → 5 sync → 1 async → sink (8 nodes); perf_counter at")
        out("sink minus at emit. Lateness: how late the source's 20 ms timer fired.\n")
        out("| frames | latency p50 µs | p99 µs | max µs | lateness p50 µs | p99 µs |")
        out("|---:|---:|---:|---:|---:|---:|")
        lat, late = row.latency, row.lateness
        out(
            f"| {len(lat)} | {pct(lat, 50) / 1e3:.1f} | {pct(lat, 99) / 1e3:.1f} | "
            f"{max(lat) / 1e3:.1f} | {pct(late, 50) / 1e3:.1f} | {pct(late, 99) / 1e3:.1f} |\n"
        )
        summary.append(("1-session latency p99", f"{pct(lat, 99) / 1e3:.0f} µs", "—", ""))

    if "sessions" in only:
        ns = (50, 200, 700) if quick else (50, 100, 200, 400, 600, 800, 1000, 1500)
        seconds = 1.5 if quick else 5.0
        rows_s = bench_sessions(ns, seconds)
        out(f"## 3. Sessions per process ({seconds:g} s each, 20 ms frames, real clock)\n")
        out("Latency and lateness pooled over every frame of every session (first 250 ms")
        out("of each session excluded). CPU = process CPU time / wall time (100% = one core)")
        out("over the steady part of the run (from 0.5 s to the end of the sources).\n")
        out(
            "| pacing | N | latency p50 ms | p99 ms | lateness p50 ms | p99 ms | drops "
            "| CPU | CPU µs/frame | max GC pause ms | p99 < 20 ms, no drops |"
        )
        out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows_s:
            note = " (overran, sources stopped)" if r.overran else ""
            out(
                f"| {r.variant} | {r.n} | {_ms(pct(r.latency, 50))} | {_ms(pct(r.latency, 99))} "
                f"| {_ms(pct(r.lateness, 50))} | {_ms(pct(r.lateness, 99))} | {r.drops} "
                f"| {r.cpu:.0%} | {r.cpu_per_frame_ns / 1e3:.1f} | {_ms(r.gc_max_ns)} "
                f"| {_verdict(r.ok)}{note} |"
            )
        out("")
        out("CPU µs/frame: steady-state process CPU time / frames emitted, for the whole")
        out("8-node path of one frame (timer, emit, 5 fused hops, a queue hop, sink).\n")
        for variant in dict.fromkeys(r.variant for r in rows_s):
            mine = [r for r in rows_s if r.variant == variant]
            knee = max((r.n for r in mine if r.ok), default=0)
            strict = max((r.n for r in mine if r.ok and pct(r.lateness, 99) < 20e6), default=0)
            out(
                f"- Knee, {variant}: **N = {knee}** (largest N tested with p99 < 20 ms and "
                f"no drops); N = {strict} if source lateness p99 must also stay < 20 ms"
            )
            summary.append((f"knee ({variant})", f"N = {knee}", "—", ""))
        out("")

    if "interrupt" in only:
        repeats = 7 if quick else 25
        runs = bench_interrupt(repeats)
        times = [r.interrupt_ns / 1e3 for r in runs]
        stale = sum(r.stale_seen for r in runs)
        out(f"## 4. Interruption (7 nodes, 500 frames queued at the sink, {repeats} runs)\n")
        out(
            "| interrupt() median µs | max µs | flushed per run | stale dropped after | "
            "stale delivered | fresh delivered |"
        )
        out("|---:|---:|---:|---:|---:|---:|")
        r0 = runs[0]
        out(
            f"| {statistics.median(times):.1f} | {max(times):.1f} | {r0.flushed} | "
            f"{r0.stale_dropped} | {stale} | {r0.fresh_seen} |\n"
        )
        med = statistics.median(times)
        summary.append(
            ("interrupt()", f"{med:.0f} µs", "≤ 100 µs", _verdict(med <= TARGETS["interrupt_us"]))
        )
        summary.append(("stale frames after interrupt", str(stale), "0", _verdict(stale == 0)))

    if "memory" in only:
        mem = bench_memory(1000)
        imp = bench_import(7)
        out("## 5. Idle memory and import time\n")
        out("| measure | value |")
        out("|---|---:|")
        out(
            f"| tracemalloc per idle session (N = {mem.n}) "
            f"| {mem.traced_per_session / 1e3:.1f} kB |"
        )
        out(f"| RSS delta per idle session (N = {mem.n}) | {mem.rss_per_session / 1e3:.1f} kB |")
        out(f"| `import vbgraph` (minus `python -c pass`) | {imp.bare_ms:.1f} ms |")
        out(f"| `{PRACTICAL_IMPORT}` | {imp.practical_ms:.1f} ms |")
        out(f"| `python -c pass` | {imp.python_ms:.1f} ms |\n")
        out("Largest allocation sites per idle session (tracemalloc):\n")
        for site, size in mem.top:
            out(f"- `{site}`: {size:.0f} B")
        out("\nPractical import, `-X importtime` self time by root package:\n")
        for name, ms in imp.top:
            out(f"- `{name}`: {ms:.1f} ms")
        out("")
        mb = mem.traced_per_session / 1e6
        summary.append(
            ("idle session", f"{mb:.3f} MB", "≤ 0.05 MB", _verdict(mb <= TARGETS["idle_mb"]))
        )
        summary.append(
            (
                "import vbgraph",
                f"{imp.bare_ms:.1f} ms",
                "≤ 100 ms",
                _verdict(imp.bare_ms <= TARGETS["import_ms"]),
            )
        )
        summary.append(
            (
                "import builder + session",
                f"{imp.practical_ms:.0f} ms",
                "≤ 100 ms",
                _verdict(imp.practical_ms <= TARGETS["import_ms"]),
            )
        )

    out("## Summary\n")
    out("| figure | measured | target | met |")
    out("|---|---:|---:|---|")
    for name, value, target, ok in summary:
        out(f"| {name} | {value} | {target} | {ok} |")


SECTIONS = ("hops", "latency", "sessions", "interrupt", "memory")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (< 1 min)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop for every run (uvloop: pip install uvloop, as vbgraph run uses)",
    )
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"Event loop: {args.loop}\n")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    t0 = time.perf_counter()
    print_report(args.quick, only)
    print(f"\n_Run took {time.perf_counter() - t0:.0f} s._")


# -- pytest-benchmark: hop cost and interruption (short) ---------------------------------

PYTEST_FRAMES = 2_000


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _pedantic(benchmark: BenchmarkFixture, fn: Callable[[], object], rounds: int = 5) -> None:
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chain(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, mode: str, k: int
) -> None:
    """Push frames through source → k pass-through nodes → sink (fused or async)."""
    plan = chain_plan(k, sync=mode == "sync", frames=PYTEST_FRAMES)

    def run() -> int:
        return loop.run_until_complete(run_chain(plan, PYTEST_FRAMES))

    benchmark.extra_info["frames"] = PYTEST_FRAMES
    _pedantic(benchmark, run)


@pytest.mark.parametrize("k", KS)
def test_reference_queue(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, k: int
) -> None:
    """Reference: the same frames through k tasks joined by bare asyncio.Queue."""

    def run() -> int:
        return loop.run_until_complete(run_queue_chain(k, PYTEST_FRAMES))

    benchmark.extra_info["frames"] = PYTEST_FRAMES
    _pedantic(benchmark, run)


@pytest.mark.parametrize("k", KS)
def test_reference_call(benchmark: BenchmarkFixture, k: int) -> None:
    """Reference: the same frames through k plain Python function calls."""
    benchmark.extra_info["frames"] = PYTEST_FRAMES
    _pedantic(benchmark, lambda: run_call_chain(k, PYTEST_FRAMES))


def test_interrupt(benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop) -> None:
    """session.interrupt() with 500 frames queued; no stale frame reaches the sink after."""
    prepared: list[Session] = []

    def setup() -> tuple[tuple[Session], dict[str, object]]:
        session = loop.run_until_complete(prepare_interrupt())
        prepared.append(session)
        return (session,), {}

    def interrupt(session: Session) -> int:
        return session.interrupt("bench")

    benchmark.pedantic(interrupt, setup=setup, rounds=10, warmup_rounds=1)
    for session in prepared:
        run = loop.run_until_complete(finish_interrupt(session, 0))
        assert run.stale_seen == 0
        assert run.flushed == 500
        assert run.fresh_seen == 10


if __name__ == "__main__":
    main()
