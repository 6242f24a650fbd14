"""Benchmarks for vbgraph.dsp.pcm, compiled kernels against the numpy reference.

Run with ``pytest benchmarks/bench_pcm.py`` (pytest-benchmark; add ``-s`` to see
the printed thread-scaling lines, or ``--benchmark-columns=median`` to trim the
table). Nothing here asserts a speed: benchmarks are measurements, not tests.

Sizes are mono 16 kHz int16: a 20 ms frame (320 samples, the usual unit on the
audio path) and 10 s (160 000 samples). The calls go through the public module,
so the timings include its argument checks, as users pay them.

The thread test backs STYLE.md rule 8: with the GIL released around the C call,
four threads converting long buffers should finish about min(4, cores) times as
much work per second as one. Short frames keep the GIL on purpose (see
``NOGIL_MIN_BYTES`` in ``_pcm_c.pyx``), so they are not expected to scale.
"""

from __future__ import annotations

import os
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vbgraph.dsp import _pcm_ref

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # reported as a skip below
    from vbgraph.dsp import pcm

_pcm_c: types.ModuleType | None
try:
    from vbgraph.dsp import _pcm_c
except ImportError:
    _pcm_c = None

RATE = 16_000
SIZES = {"20ms": RATE * 20 // 1000, "10s": RATE * 10}
IMPLEMENTATIONS = [
    pytest.param(
        ("c", _pcm_c),
        id="c",
        marks=pytest.mark.skipif(_pcm_c is None, reason="compiled module not built"),
    ),
    pytest.param(("numpy", _pcm_ref), id="numpy"),
]
THREADS = 4


def audio(samples: int) -> bytes:
    """Speech-level noise as int16 bytes, the same on every run."""
    rng = np.random.default_rng(20)
    return (rng.standard_normal(samples) * 3000).astype("<i2").tobytes()


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Route vbgraph.dsp.pcm through one implementation for the test; yields its name."""
    name, module = request.param
    saved = pcm._impl
    pcm._impl = module
    yield name
    pcm._impl = saved


@pytest.mark.parametrize("size", list(SIZES))
def test_gain_s16(benchmark: BenchmarkFixture, implementation: str, size: str) -> None:
    data = audio(SIZES[size])
    benchmark.group = f"gain_s16 {size}"
    benchmark(pcm.gain_s16, data, 0.5)


@pytest.mark.parametrize("size", list(SIZES))
def test_s16_to_f32(benchmark: BenchmarkFixture, implementation: str, size: str) -> None:
    data = audio(SIZES[size])
    benchmark.group = f"s16_to_f32 {size}"
    benchmark(pcm.s16_to_f32, data)


@pytest.mark.parametrize("size", list(SIZES))
def test_f32_to_s16(benchmark: BenchmarkFixture, implementation: str, size: str) -> None:
    data = pcm.s16_to_f32(audio(SIZES[size]))
    benchmark.group = f"f32_to_s16 {size}"
    benchmark(pcm.f32_to_s16, data)


def calls_per_second(threads: int, call: Callable[[], object], calls_each: int) -> float:
    """Total calls per second when ``threads`` threads each make ``calls_each`` calls."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls_each):
            call()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * calls_each / (time.perf_counter() - start)


@pytest.mark.parametrize("size", list(SIZES))
def test_threads_scale_when_the_gil_is_released(
    benchmark: BenchmarkFixture,
    implementation: str,
    size: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = audio(SIZES[size])
    calls_each = 400 if size == "10s" else 40_000

    def call() -> bytes:
        return pcm.gain_s16(data, 0.5)

    call()  # warm up
    one = max(calls_per_second(1, call, calls_each) for _ in range(3))
    many = max(calls_per_second(THREADS, call, calls_each) for _ in range(3))
    ratio = many / one
    benchmark.group = f"gain_s16 {size} on {THREADS} threads"
    benchmark.extra_info.update(one_thread_calls_per_s=one, scaling=ratio)
    benchmark.pedantic(calls_per_second, args=(THREADS, call, calls_each), rounds=3)
    with capsys.disabled():
        print(
            f"\ngain_s16 {size} [{implementation}]: {THREADS} threads do {ratio:.2f}x the work "
            f"of 1 thread per second ({os.cpu_count()} CPUs)"
        )
