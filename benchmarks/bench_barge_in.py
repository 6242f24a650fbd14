"""Benchmark of the barge-in path: how much bot audio leaves after the interrupt decision.

Run with ``pytest benchmarks/bench_barge_in.py -s`` from the repo root (or
``PYTHONPATH=. python benchmarks/bench_barge_in.py``). Nothing here asserts a speed.

Setup, as in the issue: a TTS stand-in sends a 2.5 s utterance in 100 ms bursts
(faster than real time) into ``audio.playout`` (16 kHz mono int16, 20 ms
chunks); 300 ms into playback, with 2.2 s still queued, ``session.interrupt()``
is called. Two figures:

- **audio after the decision**: samples of the old epoch that reach the
  output at or after the decision, on the virtual clock (target: at most one
  20 ms chunk; the playout clears its buffer inside ``on_interrupt``, so the
  expected figure is 0);
- **interrupt wall time**: real time spent inside ``session.interrupt()`` (epoch
  bump, queue flushes, cancelling in-flight work, every node's
  ``on_interrupt``, the ``Interrupt`` event), median and p99 over the rounds.
"""

from __future__ import annotations

import statistics
import time

from pytest_benchmark.fixture import BenchmarkFixture
from tests.conversation_support import MS, Sink, registry

from vbgraph.clock import VirtualClock
from vbgraph.graph.builder import Graph
from vbgraph.nodes.audio_playout import AudioPlayout
from vbgraph.runtime.session import Session

ROUNDS = 200
DECISION_MS = 300


def graph() -> Graph:
    g = Graph("barge_in_bench")
    bot = g.add("test.bot", id="bot", utterance_ms=2500, burst_ms=100)
    play = g.add("audio.playout", id="play", chunk_ms=20)
    sink = g.add("test.turn_sink", id="sink")
    g.chain(bot, play, sink)
    return g


async def one_round(session: Session) -> tuple[int, int, float]:
    """(queued bytes at the decision, old-epoch samples after it, wall ns of interrupt())."""
    await session.start()
    await session.clock.sleep_until_ns(DECISION_MS * MS)
    play = session.nodes["play"]
    assert isinstance(play, AudioPlayout)
    queued = play.statistics().buffered_bytes
    decided = session.clock.now_ns()
    t0 = time.perf_counter_ns()
    session.interrupt("bench")
    wall = time.perf_counter_ns() - t0
    await session.wait()
    sink = session.nodes["sink"]
    assert isinstance(sink, Sink)
    after = sum(f.samples for t, f in sink.audio if f.epoch == 0 and t >= decided)
    return queued, after, wall


def measure(rounds: int = ROUNDS) -> dict[str, float]:
    """Run ``rounds`` fresh sessions and summarise."""
    plan = graph().compile(registry())
    queued: list[int] = []
    after: list[int] = []
    walls: list[float] = []
    for _ in range(rounds):
        q, a, w = VirtualClock().run(one_round(Session(plan)))
        queued.append(q)
        after.append(a)
        walls.append(w / 1000)
    walls.sort()
    return {
        "queued_ms_at_decision": min(queued) / 32,
        "max_audio_after_decision_ms": max(after) / 16,
        "interrupt_us_median": statistics.median(walls),
        "interrupt_us_p99": walls[int(len(walls) * 0.99) - 1],
    }


def test_audio_after_the_interrupt_decision(benchmark: BenchmarkFixture) -> None:
    """Reports the figures above; the timed body is one whole round."""
    figures = measure()
    benchmark.extra_info.update(figures)
    print()
    for name, value in figures.items():
        print(f"  {name:32s} {value:10.2f}")
    plan = graph().compile(registry())
    benchmark(lambda: VirtualClock().run(one_round(Session(plan))))


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:32s} {value:10.2f}")
