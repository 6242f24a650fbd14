"""``vbgraph bench GRAPH.yaml --conversation FILE|DIR``: latency percentiles per stage and turn.

Runs scripted conversations through the graph (``--sessions`` at once, on the
virtual clock unless ``--clock real``), for every point of the ``--sweep``
grid, and prints per-stage percentiles; ``--report DIR`` writes
``report.json`` and a self-contained ``report.html``. Exit code 0 when every
session ended normally, 1 when one failed (the report is written anyway), 2
for an invalid graph or option. See ``docs/bench.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from typing import TYPE_CHECKING

from ..runner import freeze_startup_objects

if TYPE_CHECKING:  # the bench package is imported when the command runs, not at start-up
    from ..bench.runner import BenchResult, PointResult

__all__ = ["add_bench_parser", "cmd_bench"]


def add_bench_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The ``bench`` subcommand's arguments (the graph arguments are added by the caller)."""
    sp = sub.add_parser(
        "bench", help="run scripted conversations through a graph; latency per stage and turn"
    )
    sp.add_argument(
        "--conversation",
        required=True,
        metavar="FILE|DIR",
        help="the caller: a WAV (script beside it: same name .txt or .json), or a folder of them",
    )
    sp.add_argument(
        "--sessions", type=int, default=1, metavar="N", help="sessions at once (default 1)"
    )
    sp.add_argument(
        "--clock",
        choices=("virtual", "real"),
        default="virtual",
        help="virtual (default): waits take no time; real: measure this process under load",
    )
    sp.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NODE.PARAM=V1,V2,...",
        help="try each value (repeatable: every combination is run)",
    )
    sp.add_argument("--report", metavar="DIR", help="write report.json and report.html here")
    sp.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="spread session starts evenly over this long (default 0: all at once)",
    )
    sp.add_argument("--json", action="store_true", help="print the report JSON on stdout")
    sp.add_argument("--debug", action="store_true", help="asyncio debug mode (much slower)")
    sp.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    return sp


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the ``bench`` command; returns the exit code."""
    from ..bench.conversation import load_conversations
    from ..bench.report import report_data, write_report
    from ..bench.runner import BenchOptions, run_bench
    from ..bench.sweep import parse_sweep

    options = BenchOptions(
        sessions=args.sessions, clock=args.clock, stagger_s=args.stagger, debug=args.debug
    )
    sweeps = [parse_sweep(s) for s in args.sweep]
    conversations = load_conversations(args.conversation)
    if options.clock == "real":
        freeze_startup_objects()  # as `vbgraph run` does: no long GC pauses mid-call
    log = sys.stderr if args.json else sys.stdout

    def progress(i: int, total: int, point: PointResult) -> None:
        if args.quiet:
            return
        perceived = point.stages()["perceived"]
        print(
            f"point {i}/{total} {point.point.label}: {len(point.turns)} turns, perceived "
            f"p50 {_ms(perceived.p50)} p95 {_ms(perceived.p95)} ms "
            f"({point.resources.wall_s:.1f} s)",
            file=log,
            flush=True,
        )

    result = run_bench(
        args.graph,
        conversations,
        sweeps=sweeps,
        options=options,
        overrides=args.overrides,
        progress=progress,
    )
    if args.report:
        for path in write_report(result, args.report):
            if not args.quiet:
                print(f"wrote {path}", file=log)
    if args.json:
        print(json.dumps(report_data(result), indent=1, ensure_ascii=False))
    elif not args.quiet:
        print(summary_text(result))
    failed = [s for p in result.points for s in p.sessions if not s.ok]
    for s in failed[:5]:
        print(
            f"vbgraph bench: session {s.session} {s.state}: {'; '.join(s.errors)}", file=sys.stderr
        )
    return 0 if not failed else 1


def _ms(value: float) -> str:
    # "-" for a stage no turn reached (NaN percentile)
    return "-" if math.isnan(value) else f"{value:.0f}"


def summary_text(result: BenchResult) -> str:
    """The tables ``vbgraph bench`` prints: stages of each point, then the sweep."""
    from ..bench.stats import QUANTILES, TOTALS

    lines: list[str] = []
    head = f"{'stage':<16}{'n':>6}" + "".join(f"{f'p{q}':>8}" for q in QUANTILES)
    for point in result.points:
        lines.append(f"\n{point.point.label}  ({len(point.sessions)} sessions, ms)")
        lines.append(head)
        for name, s in point.stages().items():
            row = "".join(f"{_ms(getattr(s, f'p{q}')):>8}" for q in QUANTILES)
            if name == TOTALS[0]:
                lines.append("-" * len(head))
            lines.append(f"{name:<16}{s.n:>6}{row}")
        inter = point.interruptions
        if inter:
            silenced = point.interruption_stats()["silenced"]
            outcomes = Counter(i.outcome for i in inter)
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            lines.append(
                f"barge-ins {len(inter)} ({kinds}); caller speech to bot silent "
                f"p50 {_ms(silenced.p50)} p95 {_ms(silenced.p95)} ms"
            )
        drops = sum(s.drops for s in point.sessions)
        r = point.resources
        lines.append(
            f"drops {drops}; CPU {r.cpu_s:.2f} s ({r.cpu_per_audio_s * 100:.2f} % of a core per "
            f"call); peak RSS {r.peak_rss_mb:.0f} MB, {r.rss_per_session_kb:.0f} kB per session"
        )
    if len(result.points) > 1:
        lines.append("\nsweep: perceived latency (ms)")
        width = max(len(p.point.label) for p in result.points) + 2
        lines.append(f"{'point':<{width}}" + "".join(f"{f'p{q}':>8}" for q in QUANTILES))
        for point in result.points:
            s = point.stages()["perceived"]
            row = "".join(f"{_ms(getattr(s, f'p{q}')):>8}" for q in QUANTILES)
            lines.append(f"{point.point.label:<{width}}{row}")
    return "\n".join(lines)
