"""OpenTelemetry metrics as Prometheus families, for ``GET /metrics`` of ``vbgraph serve``.

The names follow the OpenTelemetry → Prometheus compatibility rules: dots and
other characters Prometheus does not allow become ``_``; the unit is appended
(``s`` → ``_seconds``; annotations such as ``{frame}`` are dropped); a
monotonic sum is a ``counter`` ending in ``_total``, any other sum and a gauge
are a ``gauge``; a histogram keeps its explicit buckets (made cumulative, as
``le`` buckets are). Attribute keys become label names the same way
(``node.id`` → ``node_id``). So ``vbgraph.node.process.duration`` (s) is
``vbgraph_node_process_duration_seconds`` and ``vbgraph.edge.dropped`` is
``vbgraph_edge_dropped_total``.

Families whose name the server already serves (``exclude``) are left out: the
server's own ``vbgraph_sessions_active`` and ``vbgraph_node_errors_total``
stay what they were. Exponential histograms are not rendered (vbgraph makes
none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import Gauge, Histogram, Metric, MetricsData, Sum

from ..serve.metrics import Family
from ..serve.metrics import Histogram as PromHistogram

__all__ = ["families", "label_name", "metric_name"]

_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
_UNITS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "Hz": "hertz",
    "%": "percent",
}


def _sanitize(name: str) -> str:
    out = _INVALID.sub("_", name).strip("_")
    return "_" + out if out[:1].isdigit() else out


def metric_name(name: str, unit: str | None, *, counter: bool, gauge_ratio: bool = False) -> str:
    """The Prometheus name of an OpenTelemetry metric (see the module docstring)."""
    base = _sanitize(name)
    suffix = ""
    if unit and not unit.startswith("{"):
        if unit == "1":
            suffix = "ratio" if gauge_ratio else ""
        else:
            suffix = _sanitize(_UNITS.get(unit, unit))
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if counter and not base.endswith("_total"):
        base += "_total"
    return base


def label_name(key: str) -> str:
    """An attribute key as a Prometheus label name (``node.id`` → ``node_id``)."""
    return _sanitize(key) or "_"


def _labels(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    return {label_name(k): str(v) for k, v in (attributes or {}).items()}


def _family(metric: Metric) -> Family | None:
    data = metric.data
    help_text = metric.description or metric.name
    if isinstance(data, Sum):
        counter = data.is_monotonic
        return Family(
            metric_name(metric.name, metric.unit, counter=counter),
            "counter" if counter else "gauge",
            help_text,
            [(_labels(p.attributes), float(p.value)) for p in data.data_points],
        )
    if isinstance(data, Gauge):
        return Family(
            metric_name(metric.name, metric.unit, counter=False, gauge_ratio=True),
            "gauge",
            help_text,
            [(_labels(p.attributes), float(p.value)) for p in data.data_points],
        )
    if isinstance(data, Histogram):
        hists: list[tuple[dict[str, str], PromHistogram]] = []
        for p in data.data_points:
            hist = PromHistogram(tuple(p.explicit_bounds))
            running = 0
            cumulative = []
            for n in p.bucket_counts[: len(p.explicit_bounds)]:
                running += n
                cumulative.append(running)
            hist.counts = cumulative
            hist.count = p.count
            hist.total = float(p.sum)
            hists.append((_labels(p.attributes), hist))
        return Family(
            metric_name(metric.name, metric.unit, counter=False),
            "histogram",
            help_text,
            histograms=hists,
        )
    return None  # exponential histograms: vbgraph records none


def families(data: MetricsData | None, exclude: set[str] | None = None) -> list[Family]:
    """Every metric in ``data`` as a :class:`~vbgraph.serve.metrics.Family`, by name.

    A name met twice (two scopes, or a name in ``exclude``) is rendered once:
    Prometheus refuses a text with a family repeated.
    """
    seen = set(exclude or ())
    out: list[Family] = []
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                fam = _family(metric)
                if fam is None or fam.name in seen:
                    continue
                seen.add(fam.name)
                out.append(fam)
    return sorted(out, key=lambda f: f.name)
