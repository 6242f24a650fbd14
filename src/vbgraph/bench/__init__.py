"""``vbgraph bench``: latency tuning with scripted conversations and modelled providers.

Run scripted callers (:mod:`~vbgraph.bench.conversation`) through a graph,
many sessions at once, on the virtual or the real clock
(:mod:`~vbgraph.bench.runner`), over a grid of parameter values
(:mod:`~vbgraph.bench.sweep`); get per-stage latency percentiles per turn
(:mod:`~vbgraph.bench.stats`) as JSON and a self-contained HTML page
(:mod:`~vbgraph.bench.report`). See ``docs/bench.md``.
"""

from .conversation import (
    Conversation,
    ScriptedTurn,
    load_conversation,
    load_conversations,
    synthesize,
)
from .report import REPORT_JSON_SCHEMA, REPORT_SCHEMA, report_data, write_report
from .runner import (
    BenchOptions,
    BenchResult,
    PointResult,
    Resources,
    SessionOutcome,
    plan_for,
    run_bench,
    run_point,
)
from .stats import (
    QUANTILES,
    STAGES,
    TOTALS,
    InterruptionRecord,
    Summary,
    TurnRecord,
    percentile,
    summarize,
)
from .sweep import Sweep, SweepPoint, parse_sweep, sweep_points

__all__ = [
    "QUANTILES",
    "REPORT_JSON_SCHEMA",
    "REPORT_SCHEMA",
    "STAGES",
    "TOTALS",
    "BenchOptions",
    "BenchResult",
    "Conversation",
    "InterruptionRecord",
    "PointResult",
    "Resources",
    "ScriptedTurn",
    "SessionOutcome",
    "Summary",
    "Sweep",
    "SweepPoint",
    "TurnRecord",
    "load_conversation",
    "load_conversations",
    "parse_sweep",
    "percentile",
    "plan_for",
    "report_data",
    "run_bench",
    "run_point",
    "summarize",
    "sweep_points",
    "synthesize",
    "write_report",
]
