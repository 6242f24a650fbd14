"""How observability is switched on: :class:`ObservabilityConfig`, from flags or the environment.

Off is the default and costs nothing: no OpenTelemetry module is imported, no
session gets an observer, and the runtime's wiring is the one without hooks.
Three ways to switch it on, from the most to the least specific:

* Python: ``vb.run(graph, observer=Telemetry.from_config(ObservabilityConfig(exporter="otlp")))``
  (or pass ``observer=`` to :class:`~vbgraph.runtime.session.Session` yourself);
* command line: ``vbgraph run graph.yaml --otel console``,
  ``vbgraph serve graph.yaml --otel otlp``;
* environment: ``VBGRAPH_OTEL=console`` (read by ``vbgraph run``/``serve`` when
  ``--otel`` is not given, and by ``vb.run``/``vb.arun`` when no observer is).

The other ``VBGRAPH_OTEL_*`` variables fill the remaining fields (see
:meth:`ObservabilityConfig.from_env`); the OTLP exporter also reads the
standard ``OTEL_EXPORTER_OTLP_*`` variables itself.

This module imports pydantic only, never OpenTelemetry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = ["ENV_PREFIX", "EXPORTERS", "Exporter", "ObservabilityConfig", "command_config"]

Exporter = Literal["none", "console", "otlp", "prometheus", "memory"]
EXPORTERS: tuple[str, ...] = get_args(Exporter)
"""The exporter names ``--otel`` and ``VBGRAPH_OTEL`` accept."""

ENV_PREFIX = "VBGRAPH_OTEL"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ObservabilityConfig(BaseModel):
    """What to measure and where to send it.

    ``exporter``:

    * ``none``: off (the default); nothing is measured, nothing imported.
    * ``console``: metrics and spans printed to stderr (spans as they end,
      metrics every ``export_interval_s`` and at shutdown); for a quick look.
    * ``otlp``: metrics and spans pushed over OTLP/HTTP to a collector
      (``otlp_endpoint`` or ``$OTEL_EXPORTER_OTLP_ENDPOINT``, default
      ``http://localhost:4318``); needs the ``otlp`` extra.
    * ``prometheus``: metrics only, pulled by ``GET /metrics`` of ``vbgraph
      serve`` (serve adds its pull reader whatever the exporter is).
    * ``memory``: kept in memory (``Telemetry.memory_reader`` and
      ``Telemetry.memory_spans``): for tests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    exporter: Exporter = Field("none", description="Where metrics and spans go (none: off).")
    service_name: str = Field(
        "vbgraph", min_length=1, description="The OpenTelemetry resource's service.name."
    )
    metrics: bool = Field(True, description="Record metrics.")
    traces: bool = Field(True, description="Record spans (session, turns, stages, providers).")
    node_sample_interval_s: float = Field(
        1.0,
        ge=0,
        description="Per-node processing time: time one frame per node this often "
        "(0: every frame; costs a probe call per frame).",
    )
    export_interval_s: float = Field(
        60.0, gt=0, description="How often pushing exporters send metrics."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="Collector base URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT or "
        "http://localhost:4318).",
    )
    record_text: bool = Field(
        False,
        description="Put what the user and the bot said on turn spans (off: transcripts "
        "are personal data).",
    )

    @property
    def enabled(self) -> bool:
        """True unless the exporter is ``none``."""
        return self.exporter != "none"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ObservabilityConfig:
        """The configuration ``VBGRAPH_OTEL*`` describe; ``overrides`` win (``None`` ignored).

        ``VBGRAPH_OTEL`` (exporter), ``VBGRAPH_OTEL_SERVICE_NAME`` (else
        ``OTEL_SERVICE_NAME``), ``VBGRAPH_OTEL_METRICS``, ``VBGRAPH_OTEL_TRACES``,
        ``VBGRAPH_OTEL_SAMPLE_S``, ``VBGRAPH_OTEL_EXPORT_INTERVAL_S``,
        ``VBGRAPH_OTEL_ENDPOINT``, ``VBGRAPH_OTEL_RECORD_TEXT``. A bad value is a
        :class:`~vbgraph.errors.ConfigError` naming the variable.
        """
        env = os.environ if environ is None else environ
        fields: dict[str, Any] = {}
        names = {
            "exporter": ENV_PREFIX,
            "service_name": f"{ENV_PREFIX}_SERVICE_NAME",
            "metrics": f"{ENV_PREFIX}_METRICS",
            "traces": f"{ENV_PREFIX}_TRACES",
            "node_sample_interval_s": f"{ENV_PREFIX}_SAMPLE_S",
            "export_interval_s": f"{ENV_PREFIX}_EXPORT_INTERVAL_S",
            "otlp_endpoint": f"{ENV_PREFIX}_ENDPOINT",
            "record_text": f"{ENV_PREFIX}_RECORD_TEXT",
        }
        for field, var in names.items():
            raw = env.get(var)
            if raw is None and field == "service_name":
                raw = env.get("OTEL_SERVICE_NAME")
            if raw is None:
                continue
            raw = raw.strip()
            if field == "exporter":
                fields[field] = raw.lower() or "none"
            elif field in ("metrics", "traces", "record_text"):
                fields[field] = _flag(var, raw)
            else:
                fields[field] = raw
        fields.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            source = names.get(field, field)
            if field in overrides:
                source = f"--otel ({field})" if field == "exporter" else field
            raise ConfigError(f"observability: {source}: {err['msg']}") from None


def _flag(var: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"observability: {var}={raw!r}: expected 1/0, true/false, yes/no, on/off")


def command_config(flag: str | None, *, serve: bool) -> ObservabilityConfig:
    """The config of ``vbgraph run``/``serve``: ``--otel`` (``flag``) over ``$VBGRAPH_OTEL*``.

    ``prometheus`` and ``memory`` only make sense where something reads them:
    ``prometheus`` is for ``serve`` (``GET /metrics``), ``memory`` for tests.
    """
    config = ObservabilityConfig.from_env(exporter=flag)
    if config.exporter == "memory" or (config.exporter == "prometheus" and not serve):
        where = "`vbgraph serve` (GET /metrics)" if config.exporter == "prometheus" else "tests"
        raise ConfigError(
            f"observability: exporter {config.exporter!r} is only for {where}; "
            "use console or otlp here"
        )
    return config
