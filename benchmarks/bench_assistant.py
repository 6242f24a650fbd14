"""Benchmark of the offline assistant (graphs/assistant.yaml): voice-to-voice latency, cold start.

Run with ``python benchmarks/bench_assistant.py [--runs N]``; prints a table. Nothing
here asserts a speed. Needs ``pip install '.[local,piper,silero]'``.

What is measured:

- ``voice to voice``: per user turn of the bundled conversation, from the end of the
  caller's speech (``UserSpeechStopped``, stamped at the last speech frame) to the first
  bot audio played (``BotSpeechStarted``), and its parts as ``log.turns`` writes them:
  ``stt`` (speech end to transcript: the VAD's stop_ms hangover plus Whisper),
  ``whisper`` (the model call alone, wall time), ``endpointing`` (speech end to turn end),
  ``agent`` (turn end to reply) and ``tts`` (reply to first audio: piper's first clause
  plus the playout tick). ``turn to voice`` is voice to voice without the endpointing
  wait (turn end to first audio). Medians over every turn of ``--runs`` sessions, run one
  after the other in one process on the real clock (models loaded once, shared);
- ``cold start``: a fresh ``python`` process, from its launch to the session being ready
  (vbgraph imported, graph compiled, session started: Whisper and the piper voice loaded),
  as ``vbgraph run graphs/assistant.yaml`` does before the first audio frame. Median of
  ``--cold`` processes, with the import and compile steps apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GRAPH = ROOT / "graphs" / "assistant.yaml"

COLD = r"""
import asyncio, json, sys, time
t0 = float(sys.argv[1])
t_import0 = time.time()
from vbgraph.graph.load import load
from vbgraph.runtime.session import Session
from vbgraph.runner import new_event_loop
t_import = time.time()
plan = load(sys.argv[2], env={"OUTPUT": sys.argv[3], "QUIET": "true"}).compile()
t_compile = time.time()

async def main():
    session = Session(plan)
    await session.start()
    ready = time.time()
    await session.cancel()
    return ready

loop = new_event_loop()
ready = loop.run_until_complete(main())
print(json.dumps({"interpreter": t_import0 - t0, "import": t_import - t_import0,
                  "compile": t_compile - t_import, "start": ready - t_compile,
                  "total": ready - t0}))
"""

PARTS = (
    ("voice to voice", "voice_to_voice_ms"),
    ("turn to voice (no endpointing)", "turn_to_voice_ms"),
    ("  stt (speech end -> transcript)", "stt_ms"),
    ("  whisper call", "stt_compute_ms"),
    ("  endpointing (speech end -> turn end)", "endpointing_ms"),
    ("  agent (turn end -> reply)", "agent_ms"),
    ("  tts (reply -> first audio)", "tts_ms"),
)


def conversation_turns(runs: int) -> list[dict[str, Any]]:
    """Every log.turns line of ``runs`` sessions of the assistant on the bundled conversation."""
    from vbgraph.clock import run_on_loop
    from vbgraph.graph.load import load
    from vbgraph.nodes.log_turns import LogTurns
    from vbgraph.runner import new_event_loop
    from vbgraph.runtime.session import Session

    turns: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as out:
        plan = load(GRAPH, env={"OUTPUT": out, "QUIET": "true"}).compile()
        for _ in range(runs):

            async def main() -> list[dict[str, Any]]:
                session = Session(plan)
                result = await session.run()
                assert result.ok, result.errors
                node = session.nodes["turns"]
                assert isinstance(node, LogTurns)
                return node.turns

            turns += run_on_loop(new_event_loop(), main())
    return turns


def cold_start(n: int) -> list[dict[str, float]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n):
            t0 = time.time()
            proc = subprocess.run(
                [sys.executable, "-c", COLD, repr(t0), str(GRAPH), tmp],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONASYNCIODEBUG": ""},
            )
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="conversation sessions (~26 s each)")
    ap.add_argument("--cold", type=int, default=3, help="cold-start processes")
    args = ap.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    colds = cold_start(args.cold)
    print(f"\ncold start of a fresh process to ready, median of {len(colds)}:")
    for key in ("interpreter", "import", "compile", "start", "total"):
        print(f"  {key:<12} {median([c[key] for c in colds]) * 1000:8.0f} ms")

    turns = conversation_turns(args.runs)
    print(f"\nper-turn latency, {len(turns)} turns of {args.runs} runs (ms):")
    print(f"  {'':<40} {'median':>7} {'min':>7} {'max':>7}")
    for label, key in PARTS:
        values = [float(t[key]) for t in turns if t.get(key) is not None]
        if values:
            print(f"  {label:<40} {median(values):7.0f} {min(values):7.0f} {max(values):7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
