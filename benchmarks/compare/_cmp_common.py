"""What the vbgraph and Pipecat sides of the comparison share: the load, the probes, the maths.

Both sides build the *same* thing with their framework's public API and are
measured by the same code here:

* a 20 ms frame of 16 kHz mono int16 audio (640 bytes), made fresh for every
  push, as a capture source would;
* a source that pushes frames from its own task (a transport input), K
  pass-through stages, and a sink that timestamps arrivals;
* latencies from ``time.perf_counter_ns`` (or the loop clock for paced
  sessions, where the due time is a loop time), pooled in ``array('q')`` so
  the probe itself adds no GC-tracked objects.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FRAME_BYTES",
    "KS",
    "PERIOD_NS",
    "RATE",
    "WARMUP_NS",
    "LoadStats",
    "PingPong",
    "machine",
    "pct",
    "rss_kb",
    "slope",
]

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
FRAME_BYTES = 640
"""20 ms of 16 kHz mono int16."""
PERIOD_NS = 20_000_000
KS = (1, 7, 20)
"""Pipeline depths (pass-through stages between source and sink)."""
WARMUP_NS = 250_000_000
"""Paced frames due in a session's first 250 ms are not sampled (start-up of all sessions)."""


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, interpolating linearly (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return num / sum((x - mx) ** 2 for x in xs)


def rss_kb() -> float:
    """Resident memory of this process now, kB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def machine() -> dict[str, str]:
    """CPU (the first lines of ``lscpu``), Python and the two frameworks' versions."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = [ln for ln in lscpu.splitlines() if ln.split(":")[0].strip() in _LSCPU_KEYS]
    except OSError:
        cpu = [platform.processor()]
    info = {
        "cpu": "; ".join(" ".join(ln.split()) for ln in cpu),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "loop": "asyncio (default selector loop) for both",
    }
    try:
        import vbgraph

        info["vbgraph"] = vbgraph.__version__
    except ImportError:  # pragma: no cover - run from a checkout without the package
        info["vbgraph"] = "?"
    try:
        from importlib.metadata import version

        info["pipecat-ai"] = version("pipecat-ai")
    except Exception:
        info["pipecat-ai"] = "not installed"
    return info


_LSCPU_KEYS = {"Architecture", "CPU(s)", "Model name", "Thread(s) per core", "CPU max MHz"}


class PingPong:
    """One frame in flight at a time: the driver pushes, the sink's arrival releases it.

    Measures the latency of an idle pipeline (every stage waiting), which is
    what a single caller sees between frames.
    """

    __slots__ = ("_arrived", "latency", "t0")

    def __init__(self) -> None:
        self.latency = array("q")
        self.t0 = 0
        self._arrived: asyncio.Future[None] | None = None

    def expect(self) -> asyncio.Future[None]:
        """Arm for the next frame; stamp the send time. Await the result after pushing."""
        fut = self._arrived = asyncio.get_running_loop().create_future()
        self.t0 = time.perf_counter_ns()
        return fut

    def arrived(self) -> None:
        """Called by the sink: one frame is through."""
        self.latency.append(time.perf_counter_ns() - self.t0)
        fut = self._arrived
        if fut is not None and not fut.done():
            fut.set_result(None)


@dataclass
class LoadStats:
    """Pooled over every session of one load run (ns)."""

    latency: array[int] = field(default_factory=lambda: array("q"))
    """Sink arrival minus the frame's due time (timer lateness + pipeline)."""
    received: int = 0


def child_cmd(*args: str) -> list[str]:
    """A command line running this harness's entry point with ``args`` in a fresh process."""
    return [sys.executable, str(Path(__file__).with_name("run.py")), *args]
