"""pytest-benchmark view of the vbgraph-Pipecat comparison (the full one is ``run.py``).

    python -m pytest benchmarks/compare/ --benchmark-columns=median,iqr

Times 500 frames, one in flight, and a burst of 5,000 frames through the same
7-stage pass-through in vbgraph (fused and async stages) and in Pipecat. The
Pipecat cases are skipped, saying so, when ``pipecat-ai`` is not installed.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cmp_vbgraph as vb

K = 7
PING_FRAMES = 500
BURST_FRAMES = 5000
SKIP_PIPECAT = (
    "pipecat-ai is not installed: pip install pipecat-ai to compare (see benchmarks/README.md)"
)


def _pipecat() -> Any:
    with warnings.catch_warnings():
        # pipecat 1.14 imports the deprecated audioop: not ours to fix, not an error here
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pipecat", reason=SKIP_PIPECAT)
        import _cmp_pipecat

    return _cmp_pipecat


def _timed(benchmark: BenchmarkFixture, make: Callable[[], Awaitable[Any]]) -> Any:
    def once() -> Any:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(make())
        finally:
            loop.close()

    return benchmark.pedantic(once, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("stages", ["fused", "async"])
def test_vbgraph_frames_one_at_a_time(benchmark: BenchmarkFixture, stages: str) -> None:
    """500 frames, each pushed when the last arrived, through 7 vbgraph stages."""
    lat = _timed(benchmark, lambda: vb.hop_latency(K, stages == "fused", PING_FRAMES))
    assert len(lat) == PING_FRAMES


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pipecat_frames_one_at_a_time(benchmark: BenchmarkFixture) -> None:
    """The same through 7 Pipecat processors."""
    pc = _pipecat()
    lat = _timed(benchmark, lambda: pc.hop_latency(K, PING_FRAMES))
    assert len(lat) == PING_FRAMES


@pytest.mark.parametrize("stages", ["fused", "async"])
def test_vbgraph_burst(benchmark: BenchmarkFixture, stages: str) -> None:
    """5,000 frames as fast as 7 vbgraph stages take them."""
    rate = _timed(benchmark, lambda: vb.throughput(K, stages == "fused", BURST_FRAMES))
    assert rate > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pipecat_burst(benchmark: BenchmarkFixture) -> None:
    """The same through 7 Pipecat processors."""
    pc = _pipecat()
    rate = _timed(benchmark, lambda: pc.throughput(K, BURST_FRAMES))
    assert rate > 0
