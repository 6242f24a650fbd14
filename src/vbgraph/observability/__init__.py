"""OpenTelemetry metrics and traces for vbgraph sessions: off by default, and then free.

Switch it on with ``--otel console|otlp|prometheus`` on ``vbgraph run``/``serve``,
``VBGRAPH_OTEL=...`` in the environment, or in Python::

    from vbgraph.observability import ObservabilityConfig, Telemetry
    telemetry = Telemetry.from_config(ObservabilityConfig(exporter="otlp"))
    result = vb.run("graph.yaml", observer=telemetry)
    telemetry.shutdown()

See ``docs/observability.md`` for the metric and span names. This package
imports OpenTelemetry only when a :class:`Telemetry` is made: ``config`` and
``turns`` are plain Python, and every name here is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import EXPORTERS, ObservabilityConfig
    from .telemetry import Telemetry, shared_telemetry
    from .traces import TraceContextFilter
    from .turns import ProviderCall, Turn, TurnTracker, classify_metric

__all__ = [
    "EXPORTERS",
    "ObservabilityConfig",
    "ProviderCall",
    "Telemetry",
    "TraceContextFilter",
    "Turn",
    "TurnTracker",
    "classify_metric",
    "shared_telemetry",
]

# Every name is loaded on first use: log.turns imports .turns, which runs this
# file, and ``import vbgraph.nodes`` should pay for nothing more.
_LAZY = {
    "EXPORTERS": "config",
    "ObservabilityConfig": "config",
    "ProviderCall": "turns",
    "Turn": "turns",
    "TurnTracker": "turns",
    "classify_metric": "turns",
    "Telemetry": "telemetry",
    "shared_telemetry": "telemetry",
    "TraceContextFilter": "traces",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vbgraph.observability' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
