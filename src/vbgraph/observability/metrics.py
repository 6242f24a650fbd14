"""The metric instruments: names, units, buckets and attributes, in one table.

Names follow the OpenTelemetry semantic conventions where one exists (the
``gen_ai.*`` client metrics for LLM calls, ``error.type``); the rest are
``vbgraph.*``. Durations are histograms in seconds (``s``), counts carry a
UCUM annotation (``{frame}``, ``{session}``). Attribute values come from the
graph (node ids and types, edge names), so cardinality is bounded by the graph,
never by callers or what they say.

Queue depth and drops are *observed*: read from the live sessions' edge
statistics when a reader collects, so the hot path does no metric work at all.
Drops are cumulative over ended sessions too (they are folded in when a
session ends), so the counter never goes down.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ..runtime.edge import EdgeStatistics

if TYPE_CHECKING:
    from ..runtime.session import Session

__all__ = [
    "DROP_REASONS",
    "LATENCY_BUCKETS_S",
    "NODE_BUCKETS_S",
    "Instruments",
    "LiveSessions",
]

NODE_BUCKETS_S: tuple[float, ...] = (
    1e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Per-node processing time: a pass-through takes ~1 µs, a speech model ~100 ms."""

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.6,
    0.75,
    1.0,
    1.25,
    1.5,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
)
"""Time to first byte, end-of-turn delay, voice to voice: a good turn answers in 0.5 to 1 s."""

GEN_AI_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""The buckets the GenAI conventions advise for ``gen_ai.client.operation.duration``."""

TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))
"""The buckets the GenAI conventions advise for ``gen_ai.client.token.usage`` (1 … 4^13)."""

DROP_REASONS: Mapping[str, str] = {
    "drops": "overflow",
    "stale": "stale",
    "flushed": "flushed",
    "failed": "failed",
}
"""EdgeStatistics counter → ``reason`` attribute of ``vbgraph.edge.dropped``."""


class LiveSessions:
    """The sessions a :class:`~vbgraph.observability.Telemetry` watches, for observed metrics.

    Weak references: a session nobody holds any more drops out by itself. A
    periodic exporter collects from its own thread, so the set is copied under
    a lock (sessions come and go on the event loop's thread meanwhile).
    """

    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[Session] = weakref.WeakSet()
        self._ended_drops: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, session: Session) -> None:
        """Watch ``session``'s edges from now on."""
        with self._lock:
            self._sessions.add(session)

    def ended(self, session: Session) -> None:
        """``session`` finished: keep its drop counts, stop reading it."""
        with self._lock:
            if session not in self._sessions:
                return
            self._sessions.discard(session)
            for stats in session.edge_statistics().values():
                for key, value in _drops(stats):
                    self._ended_drops[key] += value

    def __len__(self) -> int:
        return len(self._sessions)

    def _snapshot(self) -> tuple[list[Session], Counter[tuple[str, str]]]:
        with self._lock:
            return list(self._sessions), Counter(self._ended_drops)

    def queue_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        """Frames queued now on each queue edge, summed over live sessions."""
        depth: Counter[str] = Counter()
        for session in self._snapshot()[0]:
            for name, stats in session.edge_statistics().items():
                if stats.kind == "queue":
                    depth[name] += stats.depth
        return [Observation(n, {"edge.name": name}) for name, n in sorted(depth.items())]

    def dropped(self, options: CallbackOptions) -> Iterable[Observation]:
        """Frames that did not reach their consumer, by edge and reason, since start."""
        sessions, total = self._snapshot()
        for session in sessions:
            for stats in session.edge_statistics().values():
                for key, value in _drops(stats):
                    total[key] += value
        return [
            Observation(n, {"edge.name": edge, "reason": reason})
            for (edge, reason), n in sorted(total.items())
            if n
        ]


def _drops(stats: EdgeStatistics) -> Iterable[tuple[tuple[str, str], int]]:
    for field, reason in DROP_REASONS.items():
        value: int = getattr(stats, field)
        if value:
            yield (stats.name, reason), value


class Instruments:
    """Every instrument vbgraph records, made from one meter."""

    def __init__(self, meter: Meter, live: LiveSessions) -> None:
        h = meter.create_histogram
        self.node_duration = h(
            "vbgraph.node.process.duration",
            unit="s",
            description="Time a node spent on one frame (sampled; own work, without the "
            "sync nodes it feeds; awaits included for async nodes).",
            explicit_bucket_boundaries_advisory=NODE_BUCKETS_S,
        )
        self.stt_ttfb = h(
            "vbgraph.stt.ttfb",
            unit="s",
            description="Speech-to-text: end of the user's audio to the transcript.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.tts_ttfb = h(
            "vbgraph.tts.ttfb",
            unit="s",
            description="Text-to-speech: request to the first audio byte.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.llm_duration = h(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS_S,
        )
        self.llm_ttfc = h(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk, from when the client issues the "
            "generation request.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.token_usage = h(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.end_of_turn_delay = h(
            "vbgraph.turn.end_of_turn_delay",
            unit="s",
            description="End of the user's speech to the end of their turn (VAD hangover, "
            "transcription, endpointing).",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.voice_to_voice = h(
            "vbgraph.turn.voice_to_voice",
            unit="s",
            description="End of the user's speech to the bot's first audio, per turn.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.interruptions = meter.create_counter(
            "vbgraph.interruptions",
            unit="{interruption}",
            description="Barge-ins: the bot's reply was cut off.",
        )
        self.node_errors = meter.create_counter(
            "vbgraph.node.errors", unit="{error}", description="Errors raised by nodes."
        )
        self.sessions_active = meter.create_up_down_counter(
            "vbgraph.sessions.active", unit="{session}", description="Sessions running now."
        )
        self.queue_depth = meter.create_observable_gauge(
            "vbgraph.edge.queue.depth",
            callbacks=[live.queue_depth],
            unit="{frame}",
            description="Frames waiting in each queue edge (summed over live sessions).",
        )
        self.dropped = meter.create_observable_counter(
            "vbgraph.edge.dropped",
            callbacks=[live.dropped],
            unit="{frame}",
            description="Frames that did not reach their consumer, by reason: overflow "
            "(queue policy), stale (older epoch), flushed (interruption), failed "
            "(the consumer raised).",
        )
