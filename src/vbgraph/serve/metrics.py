"""``GET /metrics``: the server's counters in the Prometheus text format (version 0.0.4).

Names start with ``vbgraph_``; counters end in ``_total``; durations are in
seconds, as Prometheus' naming rules ask. Each worker process answers for
itself (label ``worker``): a scraper behind ``--workers N`` sees one worker
per request, so scrape each worker's own port or sum over ``worker``.

What is counted: calls (active, started, ended, failed, refused by reason),
per transport; frames lost on the graphs' edges and audio dropped at the
transports' buffers, over live and ended calls (drops are never silent);
node errors by node type; a histogram of call durations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DURATION_BUCKETS_S", "Family", "Histogram", "render"]

DURATION_BUCKETS_S: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
"""Call duration buckets, seconds."""


@dataclass(slots=True)
class Histogram:
    """A cumulative histogram in the Prometheus sense (``le`` buckets, sum, count)."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.buckets) != sorted(self.buckets):
            raise ValueError("histogram buckets must be increasing")
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        """Add one observation."""
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1


Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its samples (labels → value) or a histogram."""

    name: str
    kind: str
    """``counter``, ``gauge`` or ``histogram``."""
    help: str
    samples: Sequence[tuple[Labels, float]] = ()
    histograms: Sequence[tuple[Labels, Histogram]] = ()


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels | None = None) -> str:
    merged = {**labels, **(extra or {})}
    if not merged:
        return ""
    inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in sorted(merged.items()))
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family], common: Labels | None = None) -> str:
    """The exposition text of ``families``; ``common`` labels go on every sample."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, value in fam.samples:
            lines.append(f"{fam.name}{_labels(labels, common)} {_number(value)}")
        for labels, hist in fam.histograms:
            for bound, n in zip(hist.buckets, hist.counts, strict=True):
                le = {"le": _number(bound)}
                lines.append(f"{fam.name}_bucket{_labels({**labels, **le}, common)} {n}")
            inf = {"le": "+Inf"}
            lines.append(f"{fam.name}_bucket{_labels({**labels, **inf}, common)} {hist.count}")
            lines.append(f"{fam.name}_sum{_labels(labels, common)} {_number(hist.total)}")
            lines.append(f"{fam.name}_count{_labels(labels, common)} {hist.count}")
    return "\n".join(lines) + "\n"
