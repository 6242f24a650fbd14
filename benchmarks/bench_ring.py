"""Benchmarks for vbgraph.dsp.ring: the rechunker and the ring buffer.

Run with ``pytest benchmarks/bench_ring.py`` (pytest-benchmark; ``-s`` prints a
per-frame figure). Nothing here asserts a speed.

The rechunker case is the one the issue names: a TTS-like stream, pieces of
random size between 1 and 8 KB, cut into 20 ms frames of 16 kHz mono int16
(640 bytes). One round pushes 10 s of audio (320 000 bytes, 500 frames) and
flushes. Three rechunkers are compared:

- ``c``: vbgraph.dsp.ring.Rechunker over the compiled module;
- ``python``: the same public class over the pure-Python reference, which
  keeps the same zero-copy contract with memoryviews;
- ``bytearray``: the rechunker people write by hand (append to a bytearray,
  slice a frame off as ``bytes``, delete it), the baseline.

Pieces come as ``bytes`` (frames are views of them, no copy) or as
``bytearray`` (frames are copied once, see the Rechunker docstring). The ring
case moves 20 ms frames through a 200 ms jitter buffer, write then read.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vbgraph.dsp import _ring_ref

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # reported as a skip below
    from vbgraph.dsp import ring

_ring_c: types.ModuleType | None
try:
    from vbgraph.dsp import _ring_c
except ImportError:
    _ring_c = None

FRAME = 640  # 20 ms of 16 kHz mono int16
STREAM_BYTES = 16_000 * 2 * 10  # 10 s
COMPILED = pytest.mark.skipif(_ring_c is None, reason="compiled module not built")


def tts_pieces(mutable: bool) -> list[bytes] | list[bytearray]:
    """10 s of audio bytes in pieces of 1 to 8 KB, the same on every run."""
    rng = np.random.default_rng(1234)
    stream = rng.integers(0, 256, STREAM_BYTES, dtype=np.uint8).tobytes()
    pieces: list[bytes] = []
    position = 0
    while position < len(stream):
        size = int(rng.integers(1024, 8193))
        pieces.append(stream[position : position + size])
        position += size
    return [bytearray(p) for p in pieces] if mutable else pieces


class BytearrayRechunker:
    """The hand-written baseline: a growing bytearray, frames sliced off as bytes."""

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self.buffer = bytearray()

    def push(self, data: bytes | bytearray) -> list[bytes]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= self.frame_bytes:
            frames.append(bytes(self.buffer[: self.frame_bytes]))
            del self.buffer[: self.frame_bytes]
        return frames

    def flush(self, pad: bool) -> bytes | None:
        if not self.buffer:
            return None
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


@pytest.fixture(
    params=[
        pytest.param("c", marks=COMPILED),
        pytest.param("python"),
        pytest.param("bytearray"),
    ]
)
def make_rechunker(request: pytest.FixtureRequest) -> Iterator[tuple[str, Callable[[], object]]]:
    """A factory of rechunkers of one kind, with its name."""
    kind = request.param
    saved = ring._impl
    if kind == "c":
        ring._impl = _ring_c  # type: ignore[assignment]
        factory: Callable[[], object] = lambda: ring.Rechunker(FRAME)  # noqa: E731
    elif kind == "python":
        ring._impl = _ring_ref
        factory = lambda: ring.Rechunker(FRAME)  # noqa: E731
    else:
        factory = lambda: BytearrayRechunker(FRAME)  # noqa: E731
    yield kind, factory
    ring._impl = saved


def rechunk(factory: Callable[[], object], pieces: list[bytes] | list[bytearray]) -> int:
    """Push every piece through a new rechunker and flush; returns the frame count."""
    chunker = factory()
    frames = 0
    for piece in pieces:
        frames += len(chunker.push(piece))  # type: ignore[attr-defined]
    chunker.flush(False)  # type: ignore[attr-defined]
    return frames


@pytest.mark.parametrize("pieces_are", ["bytes", "bytearray"])
def test_rechunk_tts_stream(
    benchmark: BenchmarkFixture,
    make_rechunker: tuple[str, Callable[[], object]],
    pieces_are: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kind, factory = make_rechunker
    pieces = tts_pieces(mutable=pieces_are == "bytearray")
    benchmark.group = f"rechunk 10 s of {pieces_are} pieces into 20 ms frames"
    frames = benchmark(rechunk, factory, pieces)
    assert benchmark.stats is not None
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(frames=frames, pieces=len(pieces))
    with capsys.disabled():
        print(
            f"\nrechunk {pieces_are} [{kind}]: {median * 1e6:.0f} us per 10 s stream, "
            f"{median / frames * 1e9:.0f} ns per frame ({len(pieces)} pieces)"
        )


@pytest.mark.parametrize(
    "backend",
    [pytest.param("c", marks=COMPILED), pytest.param("python")],
)
def test_jitter_buffer_frame_round_trip(benchmark: BenchmarkFixture, backend: str) -> None:
    """One 20 ms frame written into and read out of a 200 ms ring."""
    saved = ring._impl
    ring._impl = _ring_c if backend == "c" else _ring_ref  # type: ignore[assignment]
    try:
        rb = ring.RingBuffer(10 * FRAME)
    finally:
        ring._impl = saved
    rb.write(bytes(3 * FRAME + 17))  # a partly full ring, not aligned to frames
    frame = bytes(FRAME)

    def round_trip() -> bytes:
        rb.write(frame)
        return rb.read(FRAME)

    benchmark.group = "ring write + read of one 20 ms frame"
    benchmark(round_trip)
