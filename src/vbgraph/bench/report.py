"""The bench report: JSON for CI, and one self-contained HTML page for people.

``write_report(result, out_dir)`` writes:

* ``report.json``: everything, in the stable shape of :data:`REPORT_JSON_SCHEMA`
  (``schema: "vbgraph.bench/1"``; a field is only ever added, and a change of
  meaning gets a new schema name). Per point: each stage's percentiles
  (``stages_ms``), barge-in figures, losses, CPU and memory, and every
  session's turn records.
* ``report.html``: tables plus figures (a latency waterfall per turn, the CDF
  of every stage, and sweep curves when several points ran), the figures
  embedded as PNG ``data:`` URIs so the page is one file to attach or
  archive. Without matplotlib the page says so and shows the tables only.
* ``waterfall.png``, ``cdf.png`` (and ``sweep.png``) beside them when drawn.
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from . import figures
from .runner import BenchResult, PointResult
from .stats import QUANTILES, STAGES, TOTALS

__all__ = ["REPORT_JSON_SCHEMA", "REPORT_SCHEMA", "report_data", "write_report"]

REPORT_SCHEMA = "vbgraph.bench/1"
"""The ``schema`` field of ``report.json``."""

_SUMMARY = {
    "type": "object",
    "required": ["n", "p50", "p90", "p95", "p99", "mean", "min", "max"],
    "properties": {"n": {"type": "integer"}}
    | {k: {"type": ["number", "null"]} for k in ("p50", "p90", "p95", "p99", "mean", "min", "max")},
}
_POINT = {
    "type": "object",
    "required": [
        "label",
        "settings",
        "turns",
        "sessions_ok",
        "stages_ms",
        "interruptions",
        "losses",
        "resources",
        "sessions",
    ],
    "properties": {
        "label": {"type": "string"},
        "settings": {"type": "object", "additionalProperties": {"type": "string"}},
        "turns": {"type": "integer"},
        "sessions_ok": {"type": "integer"},
        "stages_ms": {
            "type": "object",
            "required": list(STAGES + TOTALS),
            "additionalProperties": _SUMMARY,
        },
        "interruptions": {
            "type": "object",
            "required": ["count", "outcomes", "silenced_ms", "interrupt_ms"],
            "properties": {"silenced_ms": _SUMMARY, "interrupt_ms": _SUMMARY},
        },
        "losses": {
            "type": "object",
            "required": ["drops", "lost", "stale", "flushed", "errors"],
            "additionalProperties": {"type": "integer"},
        },
        "resources": {
            "type": "object",
            "required": [
                "wall_s",
                "cpu_s",
                "audio_s",
                "cpu_per_audio_s",
                "peak_rss_mb",
                "rss_per_session_kb",
            ],
            "additionalProperties": {"type": "number"},
        },
        "sessions": {"type": "array", "items": {"type": "object"}},
    },
}
REPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "vbgraph bench report",
    "type": "object",
    "required": [
        "schema",
        "created",
        "vbgraph",
        "machine",
        "graph",
        "clock",
        "sessions",
        "overrides",
        "conversations",
        "sweep",
        "stages",
        "totals",
        "quantiles",
        "points",
    ],
    "properties": {
        "schema": {"const": REPORT_SCHEMA},
        "clock": {"enum": ["virtual", "real"]},
        "sessions": {"type": "integer", "minimum": 1},
        "points": {"type": "array", "minItems": 1, "items": _POINT},
    },
}
"""JSON Schema of ``report.json`` (checked by the tests; stable within a schema name)."""


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def _point_data(p: PointResult) -> dict[str, Any]:
    inter = p.interruptions
    istats = p.interruption_stats()
    r = p.resources
    sessions = p.sessions
    return {
        "label": p.point.label,
        "settings": dict(p.point.settings),
        "turns": len(p.turns),
        "sessions_ok": sum(s.ok for s in sessions),
        "stages_ms": {k: v.to_dict() for k, v in p.stages().items()},
        "interruptions": {
            "count": len(inter),
            "outcomes": dict(Counter(i.outcome for i in inter)),
            "silenced_ms": istats["silenced"].to_dict(),
            "interrupt_ms": istats["interrupt"].to_dict(),
        },
        "losses": {
            "drops": sum(s.drops for s in sessions),
            "lost": sum(s.lost for s in sessions),
            "stale": sum(s.stale for s in sessions),
            "flushed": sum(s.flushed for s in sessions),
            "errors": sum(len(s.errors) for s in sessions),
        },
        "resources": {
            "wall_s": round(r.wall_s, 3),
            "cpu_s": round(r.cpu_s, 3),
            "audio_s": round(r.audio_s, 3),
            "cpu_per_audio_s": round(r.cpu_per_audio_s, 5),
            "peak_rss_mb": round(r.peak_rss_mb, 1),
            "rss_per_session_kb": round(r.rss_per_session_kb, 1),
        },
        "sessions": [
            {
                "session": s.session,
                "conversation": s.conversation,
                "ok": s.ok,
                "state": s.state,
                "duration_s": round(s.duration_s, 3),
                "drops": s.drops,
                "lost": s.lost,
                "stale": s.stale,
                "flushed": s.flushed,
                "errors": s.errors,
                "turns": [t.to_dict() for t in s.turns],
                "interruptions": [i.to_dict() for i in s.interruptions],
            }
            for s in sessions
        ],
    }


def report_data(result: BenchResult) -> dict[str, Any]:
    """The report as plain data (what ``report.json`` holds)."""
    return {
        "schema": REPORT_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vbgraph": __version__,
        "machine": _machine(),
        "graph": result.graph,
        "clock": result.options.clock,
        "sessions": result.options.sessions,
        "stagger_s": result.options.stagger_s,
        "overrides": list(result.base_overrides),
        "conversations": [
            {
                "name": c.name,
                "wav": str(c.wav),
                "duration_s": round(c.duration_s, 3),
                "turns": len(c.turns),
                "script": None if c.script is None else str(c.script),
            }
            for c in result.conversations
        ],
        "sweep": [{"target": s.target, "values": list(s.values)} for s in result.sweeps],
        "stages": list(STAGES),
        "totals": list(TOTALS),
        "quantiles": list(QUANTILES),
        "points": [_point_data(p) for p in result.points],
    }


def write_report(result: BenchResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``report.json``, ``report.html`` and the figures; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(result)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
    pngs: dict[str, bytes] = {}
    if figures.available():
        first = result.points[0]
        pngs["waterfall"] = figures.waterfall_png(
            first.turns, f"Latency waterfall per turn ({first.point.label})"
        )
        pngs["cdf"] = figures.cdf_png(first, f"CDF per stage ({first.point.label})")
        if len(result.points) > 1:
            pngs["sweep"] = figures.sweep_png(result)
        for name, png in pngs.items():
            (out / f"{name}.png").write_bytes(png)
            written.append(out / f"{name}.png")
    page = out / "report.html"
    page.write_text(_html(data, pngs), encoding="utf-8")
    written.append(page)
    return written


# -- HTML -----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0 1.4em}td,th{padding:.25em .7em;text-align:right;
border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}
th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{background:#fff6d8;border:1px solid #e8d48a;padding:.6em 1em}code{background:#f4f4f4}
h2{margin-top:2em;border-bottom:1px solid #ccc}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return html.escape(str(value))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _html(data: dict[str, Any], pngs: dict[str, bytes]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>vbgraph bench: {e(data['graph'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>vbgraph bench: <code>{e(data['graph'])}</code></h1>",
        f"<p>{data['sessions']} session(s) at once per point, {e(data['clock'])} clock, "
        f"{len(data['points'])} point(s); conversations: "
        + ", ".join(
            f"<code>{e(c['name'])}</code> ({c['turns']} turns)" for c in data["conversations"]
        )
        + f". vbgraph {e(data['vbgraph'])}, {e(str(data['machine']['cpu']))}, "
        f"{data['machine']['cores']} cores, {e(data['machine']['python'])}; "
        f"{e(data['created'])}.</p>",
    ]
    if not pngs:
        parts.append(
            "<p class='note'>No figures: matplotlib is not installed here "
            "(<code>pip install 'vbgraph[bench]'</code>). The tables below have every figure.</p>"
        )
    if "sweep" in pngs:
        parts += ["<h2>Sweep</h2>", _img(pngs["sweep"], "sweep curves")]
        head = ["point", "turns", *(f"perceived p{q}" for q in QUANTILES), "barge-in p95", "drops"]
        rows = [
            [
                p["label"],
                p["turns"],
                *(p["stages_ms"]["perceived"][f"p{q}"] for q in QUANTILES),
                p["interruptions"]["silenced_ms"]["p95"],
                p["losses"]["drops"],
            ]
            for p in data["points"]
        ]
        parts.append(_table(head, rows))
    for i, p in enumerate(data["points"]):
        parts.append(f"<h2>Point {i + 1}: <code>{e(p['label'])}</code></h2>")
        if i == 0:
            for name, alt in (("waterfall", "latency waterfall"), ("cdf", "CDF per stage")):
                if name in pngs:
                    parts.append(_img(pngs[name], alt))
        head = ["stage", "n", *(f"p{q} ms" for q in QUANTILES), "mean", "max"]
        rows = [
            [name, s["n"], *(s[f"p{q}"] for q in QUANTILES), s["mean"], s["max"]]
            for name, s in p["stages_ms"].items()
        ]
        parts.append(_table(head, rows))
        inter = p["interruptions"]
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(inter["outcomes"].items())) or "none"
        parts.append(f"<p>Barge-ins: {inter['count']} ({e(outcomes)}).</p>")
        if inter["count"]:
            rows = [
                [k.replace("_ms", ""), s["n"], *(s[f"p{q}"] for q in QUANTILES)]
                for k, s in (
                    ("silenced_ms", inter["silenced_ms"]),
                    ("interrupt_ms", inter["interrupt_ms"]),
                )
            ]
            parts.append(
                _table(["caller speech → bot", "n", *(f"p{q} ms" for q in QUANTILES)], rows)
            )
        r, lo = p["resources"], p["losses"]
        parts.append(
            _table(
                [
                    "sessions ok",
                    "wall s",
                    "CPU s",
                    "CPU s per audio s",
                    "peak RSS MB",
                    "RSS per session kB",
                    "drops",
                    "lost",
                    "errors",
                ],
                [
                    [
                        f"{p['sessions_ok']}/{len(p['sessions'])}",
                        r["wall_s"],
                        r["cpu_s"],
                        f"{r['cpu_per_audio_s']:.4f}",
                        r["peak_rss_mb"],
                        r["rss_per_session_kb"],
                        lo["drops"],
                        lo["lost"],
                        lo["errors"],
                    ]
                ],
            )
        )
    parts.append(
        "<p>Stages: vad (end of speech → VAD stop published), stt (→ transcript), turn "
        "(→ turn end), llm (→ first token), tts (→ first synthesized audio), playout (→ bot "
        "audible); perceived = their sum, from the script's end of speech. See docs/bench.md."
        "</p></body></html>"
    )
    return "\n".join(parts)
