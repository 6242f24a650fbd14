"""Shared tools of the observability tests: a modelled conversation on virtual time, read back.

The graph is ``tests/nodes/test_modelled.py``'s cascade on the four-turn
``graphs/samples/conversation.wav``, with fixed latencies, so every number the
telemetry reports can be predicted from the configuration or from the events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from vbgraph.events import Event
from vbgraph.graph.load import loads
from vbgraph.graph.plan import Plan
from vbgraph.observability import ObservabilityConfig, Telemetry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.testing import VirtualClock

CONVERSATION = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "conversation.wav"
"""Four caller turns, ~27 s (see graphs/samples/README.md)."""

STT_MS, LLM_MS, TTS_MS = 200, 300, 100
TRANSCRIPTS = ["what time do you open", "book a table", "my name is peter", "goodbye"]

GRAPH = f"""
version: 1
name: conversation
nodes:
  mic: {{type: file.source, path: "{CONVERSATION}", realtime: true}}
  vad: {{type: vad.native}}
  stt: {{type: stt.fake, transcripts: {TRANSCRIPTS},
         ttfb: {{dist: fixed, p50_ms: {STT_MS}}}}}
  turn: {{type: turn}}
  llm: {{type: llm.fake, replies: ["Sure. You said {{text}}."],
         ttft: {{dist: fixed, p50_ms: {LLM_MS}}}, tokens_per_s: 50 {{faults}}}}
  tts: {{type: tts.fake, ttfb: {{dist: fixed, p50_ms: {TTS_MS}}}, sample_rate: 16000}}
  play: {{type: audio.playout}}
  turns: {{type: log.turns, quiet: true}}
edges:
  - mic -> vad -> stt -> turn.transcript
  - turn.text -> llm -> tts -> play -> turns
"""


def conversation_plan(faults: str = "") -> Plan:
    """The graph; ``faults``: llm.fake's faults, e.g. ``{error_turns: [1]}``."""
    return loads(GRAPH.replace("{faults}", f", faults: {faults}" if faults else "")).compile()


def memory_telemetry(**config: Any) -> tuple[Telemetry, InMemoryMetricReader, InMemorySpanExporter]:
    """A Telemetry on the SDK's in-memory reader and exporter."""
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(
        ObservabilityConfig(**config),
        meter_provider=MeterProvider(metric_readers=[reader]),
        tracer_provider=tracer_provider,
    )
    return telemetry, reader, spans


@dataclass
class Run:
    """One session's result, its events and its session object."""

    result: SessionResult
    events: list[Event]
    session: Session
    extra: dict[str, Any] = field(default_factory=dict)


def run(plan: Plan, telemetry: Telemetry | None) -> Run:
    """Run one session of ``plan`` on virtual time, watched by ``telemetry``."""

    async def main() -> Run:
        session = Session(plan, observer=telemetry)
        events: list[Event] = []
        session.bus.subscribe(Event, "test", events.append)
        result = await session.run()
        return Run(result, events, session)

    return VirtualClock().run(main())


def metrics(reader: InMemoryMetricReader) -> dict[str, Metric]:
    """The collected metrics by name."""
    data = reader.get_metrics_data()
    out: dict[str, Metric] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = m
    return out


def points(metric: Metric) -> Iterator[Any]:
    """Its data points."""
    yield from metric.data.data_points


def by_attrs(metric: Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    """Its data points keyed by their attributes."""
    return {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points}


def histogram(metric: Metric, **attrs: str) -> HistogramDataPoint:
    """The one histogram point with exactly these attributes."""
    want = {k.replace("__", "."): v for k, v in attrs.items()}
    found = [p for p in metric.data.data_points if dict(p.attributes or {}) == want]
    assert len(found) == 1, (metric.name, want, [dict(p.attributes) for p in points(metric)])
    point = found[0]
    assert isinstance(point, HistogramDataPoint)
    return point


def value(metric: Metric, attrs: Mapping[str, str] | None = None) -> float:
    """The one number point with these attributes."""
    for p in metric.data.data_points:
        if dict(p.attributes or {}) == dict(attrs or {}):
            assert isinstance(p, NumberDataPoint)
            return float(p.value)
    raise AssertionError(f"{metric.name}: no point with {attrs}")


def span_tree(spans: tuple[ReadableSpan, ...]) -> dict[int | None, list[ReadableSpan]]:
    """Spans by their parent's span id (None: roots)."""
    tree: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        tree.setdefault(parent, []).append(span)
    return tree


def attrs(item: Any) -> dict[str, Any]:
    """A span's, event's or data point's attributes as a plain dict."""
    return dict(item.attributes or {})


def start(span: ReadableSpan) -> int:
    """Its start time (ns)."""
    assert span.start_time is not None
    return span.start_time


def end(span: ReadableSpan) -> int:
    """Its end time (ns)."""
    assert span.end_time is not None
    return span.end_time
