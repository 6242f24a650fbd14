"""``--sweep node.param=v1,v2,...``: the parameter grid a bench runs.

Each ``--sweep`` names one parameter (``llm.ttft.p95_ms``: nested fields are
dotted, as with ``--set``) and the values to try. Several ``--sweep`` options
make a grid: every combination (the cartesian product) is one *point*, run
with those values applied as ``--set`` overrides on top of the graph's own.
Values are read as YAML like ``--set`` values, so they may be lists or
mappings; commas inside ``[...]``, ``{...}`` or quotes do not split::

    --sweep turn.stop_ms=300,600,900
    --sweep 'llm.replies=["Yes."],["Sure, let me check that for you."]'

Points are ordered with the last ``--sweep`` varying fastest, like nested loops.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Sweep", "SweepPoint", "parse_sweep", "sweep_points"]


@dataclass(frozen=True, slots=True)
class Sweep:
    """One swept parameter: ``target`` (``node.param[.field]``) and its values as written."""

    target: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One combination of swept values: ``(target, value)`` pairs in ``--sweep`` order."""

    settings: tuple[tuple[str, str], ...] = ()

    @property
    def overrides(self) -> list[str]:
        """The ``node.param=value`` overrides of this point."""
        return [f"{target}={value}" for target, value in self.settings]

    @property
    def label(self) -> str:
        """A short name: ``llm.ttft.p95_ms=800 turn.stop_ms=300`` (``baseline`` if none)."""
        return " ".join(self.overrides) or "baseline"


def parse_sweep(text: str) -> Sweep:
    """Parse ``node.param=v1,v2,...``; raises :class:`ConfigError` naming the option."""
    target, sep, raw = text.partition("=")
    target = target.strip()
    parts = target.split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--sweep {text!r}: expected NODE.PARAM=V1,V2,...")
    values = tuple(v.strip() for v in _split_values(raw))
    if not values or any(not v for v in values):
        raise ConfigError(f"--sweep {text!r}: needs one or more values, separated by commas")
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {text!r}: a value is listed twice")
    return Sweep(target, values)


def sweep_points(sweeps: Sequence[Sweep]) -> list[SweepPoint]:
    """Every combination of the sweeps' values (one empty point without sweeps)."""
    targets = [s.target for s in sweeps]
    if len(set(targets)) != len(targets):
        raise ConfigError("--sweep: the same parameter is swept twice")
    combos: Iterable[tuple[str, ...]] = itertools.product(*(s.values for s in sweeps))
    return [SweepPoint(tuple(zip(targets, combo, strict=True))) for combo in combos]


def _split_values(raw: str) -> list[str]:
    """Split on commas that are not inside brackets, braces or quotes."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for ch in raw:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return out
