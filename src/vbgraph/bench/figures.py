"""The report's figures, drawn with matplotlib (``pip install 'vbgraph[bench]'``).

Optional: :func:`available` says whether matplotlib can be imported, and the
report shows tables alone, with a note, when it cannot. matplotlib is used
through its object API (``Figure`` + the Agg canvas), never ``pyplot``, so
drawing a report changes no global state of the program that asked for it.
Each function returns PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .stats import QUANTILES, STAGES, TurnRecord

if TYPE_CHECKING:
    from .runner import BenchResult, PointResult

__all__ = ["available", "cdf_png", "sweep_png", "waterfall_png"]

COLORS = {
    "vad": "#8da0cb",
    "stt": "#66c2a5",
    "turn": "#e5c494",
    "llm": "#fc8d62",
    "tts": "#e78ac3",
    "playout": "#a6d854",
    "perceived": "#333333",
    "voice_to_voice": "#777777",
}
MAX_WATERFALL_TURNS = 40


def available() -> bool:
    """Whether matplotlib can be imported here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def waterfall_png(turns: Sequence[TurnRecord], title: str) -> bytes:
    """One bar per turn (the first ``MAX_WATERFALL_TURNS``), stages stacked in path order."""
    shown = list(turns)[:MAX_WATERFALL_TURNS]
    fig = _figure(9, 1.2 + 0.28 * max(1, len(shown)))
    ax = fig.add_subplot()
    labels = [f"{t.session} #{t.index}" for t in shown]
    right = 1.0
    for row, turn in enumerate(shown):
        left = 0.0
        for stage in STAGES:
            width = turn.stages.get(stage)
            if width is None:
                continue
            ax.barh(row, width, left=left, color=COLORS[stage], edgecolor="white", linewidth=0.5)
            left += width
        perceived = turn.stages.get("perceived")
        if perceived is not None and perceived > left + 1:  # stages not seen: unattributed
            ax.barh(row, perceived - left, left=left, color="#dddddd", edgecolor="white")
        right = max(right, left, perceived or 0.0)
    ax.set_xlim(0, right * 1.03)
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms from the end of the caller's speech to the bot's first audio")
    ax.set_title(title, fontsize=10)
    handles = [_patch(COLORS[s], s) for s in STAGES] + [_patch("#dddddd", "not seen")]
    fig.legend(handles=handles, ncols=7, fontsize=7, loc="outside lower center")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def cdf_png(point: PointResult, title: str) -> bytes:
    """The empirical CDF of every stage and of ``perceived``, over all turns of ``point``."""
    fig = _figure(9, 4.2)
    ax = fig.add_subplot()
    for name in (*STAGES, "perceived"):
        values = sorted(v for t in point.turns if (v := t.stages.get(name)) is not None)
        if not values:
            continue
        ys = [(i + 1) / len(values) for i in range(len(values))]
        width = 2.2 if name == "perceived" else 1.4
        ax.step(values, ys, where="post", color=COLORS[name], label=name, linewidth=width)
    for q in QUANTILES:
        ax.axhline(q / 100, color="#bbbbbb", linewidth=0.6, linestyle=":")
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of turns")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def sweep_png(result: BenchResult) -> bytes:
    """Percentiles of ``perceived`` and the p95 of each stage, per sweep point."""
    points = result.points
    xs, xlabel, ticks = _sweep_axis(result)
    fig = _figure(9, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    summaries = [p.stages() for p in points]
    for q in QUANTILES:
        ys = [getattr(s["perceived"], f"p{q}") for s in summaries]
        top.plot(xs, ys, marker="o", label=f"perceived p{q}")
    silenced = [p.interruption_stats()["silenced"].p95 for p in points]
    if any(not math.isnan(v) for v in silenced):
        top.plot(xs, silenced, marker="s", linestyle="--", color="#555555", label="barge-in p95")
    top.set_ylabel("ms")
    top.set_title("What the caller waits, per sweep point", fontsize=10)
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    for stage in STAGES:
        ys = [s[stage].p95 for s in summaries]
        bottom.plot(xs, ys, marker=".", color=COLORS[stage], label=f"{stage} p95")
    bottom.set_ylabel("ms")
    bottom.set_xlabel(xlabel)
    bottom.legend(fontsize=8, ncols=3)
    bottom.grid(alpha=0.3)
    if ticks is not None:
        bottom.set_xticks(xs, ticks, rotation=20, ha="right", fontsize=7)
    return _png(fig)


def _sweep_axis(result: BenchResult) -> tuple[list[float], str, list[str] | None]:
    """Numeric x values for a single numeric sweep; point indices with labels otherwise."""
    if len(result.sweeps) == 1:
        sweep = result.sweeps[0]
        try:
            return [float(v) for v in sweep.values], sweep.target, None
        except ValueError:
            pass
    labels = [p.point.label for p in result.points]
    return [float(i) for i in range(len(labels))], "sweep point", labels
