"""The :class:`Telemetry` object: OpenTelemetry providers and exporters, and the session observer.

One per process (``vbgraph run``/``serve`` make it from ``--otel`` or
``$VBGRAPH_OTEL``; :func:`shared_telemetry` gives the one ``vb.run`` uses).
It implements :class:`~vbgraph.runtime.session.SessionObserver`: pass it as
``Session(plan, observer=telemetry)`` (or ``vb.run(graph, observer=...)``) and
each session gets a :class:`~vbgraph.observability.watch.SessionWatch`.

Importing this module imports the OpenTelemetry SDK (the ``otel`` extra);
nothing else in vbgraph imports it unless observability is switched on.
"""

from __future__ import annotations

import atexit
import contextvars
import sys
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .. import __version__
from ..errors import ConfigError
from .config import ObservabilityConfig
from .metrics import Instruments, LiveSessions
from .watch import SessionWatch

if TYPE_CHECKING:
    from ..runtime.session import Session
    from ..serve.metrics import Family

__all__ = ["Telemetry", "shared_telemetry"]

SCOPE = "vbgraph"
"""The instrumentation scope of every meter and tracer vbgraph makes."""


class Telemetry:
    """Metrics and traces of the sessions it watches (a ``SessionObserver``).

    Make it with :meth:`from_config` (exporters chosen by the config), or give
    your own providers (tests: an ``InMemoryMetricReader`` and an
    ``InMemorySpanExporter``; an application that configured OpenTelemetry
    itself: its providers). A provider left ``None`` switches that signal off.
    """

    def __init__(
        self,
        config: ObservabilityConfig | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        pull_reader: InMemoryMetricReader | None = None,
        owned: bool = False,
    ) -> None:
        self.config = config or ObservabilityConfig()
        self.meter_provider = meter_provider
        self.tracer_provider = tracer_provider
        self.pull_reader = pull_reader
        """The reader ``GET /metrics`` of ``vbgraph serve`` collects from, if any."""
        self.memory_reader: InMemoryMetricReader | None = None
        """With ``exporter="memory"``: the metrics, collected on demand."""
        self.memory_spans: InMemorySpanExporter | None = None
        """With ``exporter="memory"``: the finished spans."""
        self.live = LiveSessions()
        self.instruments: Instruments | None = None
        if meter_provider is not None and self.config.metrics:
            self.instruments = Instruments(meter_provider.get_meter(SCOPE, __version__), self.live)
        self.tracer = (
            tracer_provider.get_tracer(SCOPE, __version__)
            if tracer_provider is not None and self.config.traces
            else None
        )
        self._owned = owned
        self._watches: weakref.WeakKeyDictionary[Session, SessionWatch] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_config(cls, config: ObservabilityConfig, *, pull: bool = False) -> Telemetry:
        """Providers and exporters as ``config`` says; ``pull`` adds the ``/metrics`` reader.

        Raises :class:`~vbgraph.errors.ConfigError` when the exporter's package
        is missing (``otlp``: ``pip install 'vbgraph[otlp]'``).
        """
        resource = Resource.create({"service.name": config.service_name})
        readers: list[MetricReader] = []
        processors: list[SpanProcessor] = []
        memory_reader: InMemoryMetricReader | None = None
        memory_spans: InMemorySpanExporter | None = None
        pull_reader: InMemoryMetricReader | None = None
        interval_ms = config.export_interval_s * 1000
        if config.exporter == "console":
            readers.append(
                PeriodicExportingMetricReader(
                    ConsoleMetricExporter(out=sys.stderr), export_interval_millis=interval_ms
                )
            )
            processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        elif config.exporter == "otlp":
            metric_exporter, span_exporter = _otlp_exporters(config.otlp_endpoint)
            readers.append(
                PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval_ms)
            )
            processors.append(BatchSpanProcessor(span_exporter))
        elif config.exporter == "memory":
            memory_reader = InMemoryMetricReader()
            readers.append(memory_reader)
            memory_spans = InMemorySpanExporter()
            processors.append(SimpleSpanProcessor(memory_spans))
        if pull or config.exporter == "prometheus":
            pull_reader = InMemoryMetricReader()
            readers.append(pull_reader)
        meter_provider = (
            MeterProvider(metric_readers=readers, resource=resource)
            if readers and config.metrics
            else None
        )
        tracer_provider: TracerProvider | None = None
        if processors and config.traces:
            tracer_provider = TracerProvider(resource=resource)
            for processor in processors:
                tracer_provider.add_span_processor(processor)
        telemetry = cls(
            config,
            meter_provider=meter_provider,
            tracer_provider=tracer_provider,
            pull_reader=pull_reader if meter_provider is not None else None,
            owned=True,
        )
        telemetry.memory_reader = memory_reader
        telemetry.memory_spans = memory_spans
        return telemetry

    # -- SessionObserver -------------------------------------------------------------------

    def attach(self, session: Session) -> None:
        """Start watching ``session`` (called by the session once it is wired)."""
        if self.instruments is None and self.tracer is None:
            return
        self._watches[session] = SessionWatch(self, session)

    def task_context(self, session: Session) -> contextvars.Context | None:
        """The context of one of ``session``'s tasks: its span is the current span there."""
        watch = self._watches.get(session)
        return None if watch is None or self.tracer is None else watch.task_context()

    # -- reading and closing ----------------------------------------------------------------

    def watch(self, session: Session) -> SessionWatch | None:
        """The watch of ``session`` (its turn tracker, span), if it is watched."""
        return self._watches.get(session)

    def prometheus_families(self, exclude: Iterable[str] = ()) -> list[Family]:
        """The metrics as Prometheus families for ``GET /metrics`` (empty without a pull reader).

        ``exclude``: family names already served (the server's own win).
        """
        if self.pull_reader is None:
            return []
        from .prometheus import families

        return families(self.pull_reader.get_metrics_data(), exclude=set(exclude))

    def shutdown(self) -> None:
        """Flush and stop the exporters this object made (providers given to it are left)."""
        if not self._owned:
            return
        self._owned = False
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def _otlp_exporters(endpoint: str | None) -> tuple[MetricExporter, SpanExporter]:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(
            "observability: the otlp exporter needs the OTLP/HTTP exporter package: "
            "pip install 'vbgraph[otlp]' (opentelemetry-exporter-otlp-proto-http)"
        ) from exc
    if endpoint is None:  # the exporters read $OTEL_EXPORTER_OTLP_ENDPOINT themselves
        return OTLPMetricExporter(), OTLPSpanExporter()
    base = endpoint.rstrip("/")
    return (
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
    )


_shared: Telemetry | None = None


def shared_telemetry(config: ObservabilityConfig | None = None) -> Telemetry | None:
    """The process's telemetry: made on first call (from ``config``, else ``$VBGRAPH_OTEL*``).

    ``None`` when observability is off. The exporters are flushed at exit.
    Later calls return the same object, whatever ``config`` they pass.
    """
    global _shared
    if _shared is None:
        cfg = config if config is not None else ObservabilityConfig.from_env()
        if not cfg.enabled:
            return None
        _shared = Telemetry.from_config(cfg)
        atexit.register(_shared.shutdown)
    return _shared
