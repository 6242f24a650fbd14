"""What observability costs: hop throughput with metrics and traces off vs on.

Two ways to run it::

    PYTHONPATH=src python benchmarks/bench_observability.py [--quick]
    PYTHONPATH=src python -m pytest benchmarks/bench_observability.py

The chains are ``bench_graph.py``'s: ``bench.source`` re-emits one 20 ms frame
through K pass-through nodes (fused sync calls, or async nodes behind queues)
into a sink, so the runtime's own cost is all there is to measure, and any
instrumentation cost shows at its largest. Three configurations, interleaved
within each repeat so that drifts of the shared machine hit all alike:

* ``off``: ``Session(plan)``, no observer (the default);
* ``on``: ``Session(plan, observer=telemetry)`` with metrics and traces on,
  per-node processing time sampled once a second per node (the default
  ``node_sample_interval_s``), an in-memory metric reader and a span exporter
  that counts and drops (so no export I/O is measured);
* ``every frame``: the same with ``node_sample_interval_s=0`` (every frame of
  every node timed), for reference: what sampling saves.

The standalone runner also measures the fixed cost per session (a one-frame
chain, created and run), which the hop figures leave out. ``docs/observability.md``
quotes a run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from pytest_benchmark.fixture import BenchmarkFixture

_ROOT = Path(__file__).resolve().parent.parent
try:
    import vbgraph  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(_ROOT / "src"))

from _nodes import BenchSink, chain_plan  # noqa: E402
from vbgraph.graph.plan import Plan  # noqa: E402
from vbgraph.observability import ObservabilityConfig, Telemetry  # noqa: E402
from vbgraph.runtime.session import Session  # noqa: E402

KS = (1, 7, 20)
MODES = ("off", "on", "every frame")
TARGET_RATIO = 1.05
"""The brief: enabling metrics costs at most 5 % of hop throughput."""


class CountingExporter(SpanExporter):
    """Counts finished spans and keeps none (kept spans would grow the heap run by run)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def telemetry(sample_s: float = 1.0) -> Telemetry:
    """Metrics and traces on, exported in memory (no exporter I/O in the measurement)."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(CountingExporter()))
    return Telemetry(
        ObservabilityConfig(node_sample_interval_s=sample_s),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        tracer_provider=tracer_provider,
    )


def observers() -> dict[str, Telemetry | None]:
    """One observer per mode, made once (as a process makes its telemetry once)."""
    return {"off": None, "on": telemetry(1.0), "every frame": telemetry(0.0)}


async def run_chain(plan: Plan, frames: int, observer: Telemetry | None) -> int:
    """One session through the chain; CPU ns from start to end (creation excluded).

    CPU time of this process, not wall time: the machine is shared, and time
    other processes take from this one must not count against either mode.
    """
    session = Session(plan, observer=observer)
    t0 = time.process_time_ns()
    result = await session.run()
    dt = time.process_time_ns() - t0
    sink = session.nodes["sink"]
    assert isinstance(sink, BenchSink)
    assert result.ok and sink.count == frames, (result.errors, sink.count)
    return dt


async def run_sessions(plan: Plan, n: int, observer: Telemetry | None) -> int:
    """``n`` one-frame sessions, created and run one after the other; CPU ns in all."""
    t0 = time.process_time_ns()
    for _ in range(n):
        assert (await Session(plan, observer=observer).run()).ok
    return time.process_time_ns() - t0


@dataclass
class HopRow:
    """One chain's figures: µs per frame by mode, and on/off ratios paired per repeat."""

    per_frame_ns: dict[str, float]
    ratios: list[float]

    @property
    def ratio(self) -> float:
        """Median of the per-repeat on/off ratios."""
        return statistics.median(self.ratios)


def bench_hops(
    frames: int, repeats: int, ks: tuple[int, ...] = KS, every_frame: bool = True
) -> dict[tuple[bool, int], HopRow]:
    """Time per frame through each chain, off and on back to back in each repeat.

    The machine is shared and drifts by ±20 % between runs, so the ratio is
    taken per repeat (off and on run one after the other, in alternating
    order) and its median quoted. Runs are long (``frames``), so what a
    session costs to start and stop (:func:`bench_session_cost`) is a small
    share of them; ``every frame`` runs a twentieth of the frames (it is slow).
    """
    obs = observers()
    modes = MODES if every_frame else MODES[:2]
    rows: dict[tuple[bool, int], HopRow] = {}
    loop = asyncio.new_event_loop()
    try:
        for sync in (True, False):
            for k in ks:
                counts = {m: frames // 20 if m == "every frame" else frames for m in modes}
                plans = {n: chain_plan(k, sync=sync, frames=n) for n in set(counts.values())}
                samples: dict[str, list[float]] = {m: [] for m in modes}
                ratios = []
                for r in range(repeats):
                    got: dict[str, float] = {}
                    for mode in modes if r % 2 else modes[::-1]:
                        gc.collect()
                        n = counts[mode]
                        ns = loop.run_until_complete(run_chain(plans[n], n, obs[mode]))
                        got[mode] = ns / n
                        samples[mode].append(ns / n)
                    ratios.append(got["on"] / got["off"])
                rows[(sync, k)] = HopRow(
                    {m: statistics.median(v) for m, v in samples.items()}, ratios
                )
    finally:
        loop.close()
    return rows


def bench_session_cost(n: int, repeats: int) -> dict[str, float]:
    """Median µs per one-frame session (K = 7 fused), creation and run included."""
    obs = observers()
    plan = chain_plan(7, sync=True, frames=1)
    samples: dict[str, list[float]] = {}
    loop = asyncio.new_event_loop()
    try:
        for r in range(repeats):
            for mode in MODES[r % 3 :] + MODES[: r % 3]:
                gc.collect()
                ns = loop.run_until_complete(run_sessions(plan, n, obs[mode]))
                samples.setdefault(mode, []).append(ns / n / 1e3)
    finally:
        loop.close()
    return {mode: statistics.median(v) for mode, v in samples.items()}


def machine() -> str:
    """CPU model and core count, as ``lscpu`` would say."""
    import os
    import platform

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores; {python}"


def print_report(quick: bool) -> None:
    """Markdown tables of medians on stdout."""
    frames, repeats = (20_000, 5) if quick else (100_000, 15)
    print(f"# Observability overhead ({'quick' if quick else 'full'} mode)\n")
    print(f"- {machine()}")
    print(
        f"- {time.strftime('%Y-%m-%d %H:%M')}; {frames} frames a run ({frames // 20} with "
        f"every frame timed), {repeats} repeats, medians\n"
    )
    rows = bench_hops(frames, repeats)
    print("| chain | K | off µs/frame | on µs/frame | on / off | every frame µs | every / off |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for (sync, k), row in rows.items():
        off, on, every = (row.per_frame_ns[m] for m in MODES)
        worst = max(worst, row.ratio)
        print(
            f"| {'fused (sync)' if sync else 'async'} | {k} | {off / 1e3:.2f} | "
            f"{on / 1e3:.2f} | {row.ratio:.3f} | {every / 1e3:.1f} | {every / off:.0f}x |"
        )
    verdict = "met" if worst <= TARGET_RATIO else "**not met**"
    print(f"\nWorst on/off ratio {worst:.3f} (target ≤ {TARGET_RATIO}): {verdict}.\n")
    per = bench_session_cost(100 if quick else 300, repeats)
    print("| per session (K = 7, one frame) | off | on | every frame |")
    print("|---|---:|---:|---:|")
    print(
        f"| µs, created and run | {per['off']:.0f} | {per['on']:.0f} | {per['every frame']:.0f} |"
    )
    extra = per["on"] - per["off"]
    shortest = min(row.per_frame_ns["off"] for row in rows.values()) * frames / 1e3
    print(
        f"\nOn adds {extra:.0f} µs per session: {extra / shortest:.1%} of the shortest run "
        f"above ({shortest / 1e3:.1f} ms), included in its ratio."
    )


# -- pytest-benchmark ---------------------------------------------------------------------

PYTEST_FRAMES = 10_000


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def obs() -> dict[str, Telemetry | None]:
    return observers()


def _pedantic(benchmark: BenchmarkFixture, fn: Callable[[], object]) -> None:
    benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chain", ["sync", "async"])
def test_chain_k7(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    obs: dict[str, Telemetry | None],
    chain: str,
    mode: str,
) -> None:
    """Frames through source → 7 pass-through nodes → sink, observability off or on."""
    plan = chain_plan(7, sync=chain == "sync", frames=PYTEST_FRAMES)
    benchmark.extra_info["frames"] = PYTEST_FRAMES
    _pedantic(benchmark, lambda: loop.run_until_complete(run_chain(plan, PYTEST_FRAMES, obs[mode])))


def test_overhead_ratio(benchmark: BenchmarkFixture) -> None:
    """Paired off/on runs at K = 7: the median on/off ratio of time per frame."""
    rows: dict[tuple[bool, int], HopRow] = {}

    def measure() -> None:
        rows.update(bench_hops(20_000, 7, ks=(7,), every_frame=False))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for (sync, _), row in rows.items():
        name = "sync" if sync else "async"
        benchmark.extra_info[f"{name}_on_off_ratio"] = round(row.ratio, 4)
        print(f"\n{name} K=7: on/off = {row.ratio:.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    print_report(ap.parse_args().quick)
