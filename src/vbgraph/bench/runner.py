"""Run scripted conversations through a graph, many sessions at once, on either clock.

Theory of operation
-------------------
For every sweep point and conversation the graph file is loaded with, in
order, the user's ``--set`` overrides, the point's swept values, and the
conversation's wiring: every ``file.source`` plays the conversation's WAV at
real time, every ``stt.fake`` "recognises" the script's words, and every
``log.turns`` is made quiet and file-less (N sessions would write over one
file; the report keeps the turns). A graph without ``log.turns`` gets one.

``sessions`` sessions of those plans then run together on one event loop,
session ``i`` playing conversation ``i mod len(conversations)``. Session ids
are ``bench-0``, ``bench-1`` ... at every point, and the modelled providers
seed their latency draws with the session id: session ``i`` gets the same
dice at every point, so the difference between two points is the swept
parameter's, not chance (common random numbers).

On the virtual clock (the default) waiting takes no time: a 30 s call costs
only the CPU its frames need, and the figures are exactly what the graph's
timing rules and the modelled latencies produce, with zero processing time.
On the real clock the same figures include this process's scheduling and
CPU load: that is the capacity test (how many sessions before p99 suffers).
CPU time, wall time and resident memory are measured around each point.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..clock import VirtualClock, run_on_loop
from ..errors import ConfigError
from ..graph.load import load
from ..graph.plan import Plan
from ..nodes.log_turns import LogTurns
from ..runner import new_event_loop
from ..runtime.session import Session, SessionResult
from .conversation import Conversation
from .probe import SessionProbe
from .stats import InterruptionRecord, Summary, TurnRecord, summarize, summarize_stages
from .sweep import Sweep, SweepPoint, sweep_points

__all__ = [
    "BenchOptions",
    "BenchResult",
    "ClockKind",
    "PointResult",
    "Resources",
    "SessionOutcome",
    "plan_for",
    "run_bench",
    "run_point",
]

ClockKind = Literal["virtual", "real"]
_RSS_EVERY_S = 0.5
_EXTRA_DRAIN_S = 120.0
"""A session may run this much longer than its conversation before it is cut."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """How to run: ``sessions`` at once, on which clock, starts spread over ``stagger_s``.

    ``debug`` runs the loop in asyncio debug mode (slow callbacks are logged,
    ~10x slower): off by default even under ``PYTHONASYNCIODEBUG``, since a
    bench measures.
    """

    sessions: int = 1
    clock: ClockKind = "virtual"
    stagger_s: float = 0.0
    debug: bool = False

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ConfigError(f"--sessions must be at least 1 (got {self.sessions})")
        if self.clock not in ("virtual", "real"):
            raise ConfigError(f"--clock must be virtual or real (got {self.clock!r})")
        if self.stagger_s < 0:
            raise ConfigError("--stagger must not be negative")


@dataclass(slots=True)
class SessionOutcome:
    """One session's turns, barge-ins and losses."""

    session: str
    conversation: str
    ok: bool
    state: str
    duration_s: float
    turns: list[TurnRecord]
    interruptions: list[InterruptionRecord]
    drops: int = 0
    lost: int = 0
    stale: int = 0
    flushed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Resources:
    """What a point cost this process: CPU and wall seconds, audio seconds, memory."""

    wall_s: float
    cpu_s: float
    audio_s: float
    peak_rss_mb: float
    rss_per_session_kb: float

    @property
    def cpu_per_audio_s(self) -> float:
        """CPU seconds per second of conversation (1.0: one core per real-time call)."""
        return self.cpu_s / self.audio_s if self.audio_s else 0.0


@dataclass(slots=True)
class PointResult:
    """The sessions of one sweep point."""

    point: SweepPoint
    sessions: list[SessionOutcome]
    resources: Resources

    @property
    def turns(self) -> list[TurnRecord]:
        """Every turn of every session."""
        return [t for s in self.sessions for t in s.turns]

    @property
    def interruptions(self) -> list[InterruptionRecord]:
        """Every barge-in of every session."""
        return [i for s in self.sessions for i in s.interruptions]

    def stages(self) -> dict[str, Summary]:
        """Percentiles of every stage and total over all turns."""
        return summarize_stages(self.turns)

    def interruption_stats(self) -> dict[str, Summary]:
        """Percentiles of ``silenced_ms`` and ``interrupt_ms`` over the barge-ins."""
        found = self.interruptions
        return {
            "silenced": summarize(i.silenced_ms for i in found),
            "interrupt": summarize(i.interrupt_ms for i in found),
        }


@dataclass(slots=True)
class BenchResult:
    """A whole ``vbgraph bench`` run."""

    graph: str
    conversations: list[Conversation]
    options: BenchOptions
    sweeps: list[Sweep]
    base_overrides: list[str]
    points: list[PointResult]


def plan_for(
    graph: str | os.PathLike[str], conversation: Conversation, overrides: Sequence[str] = ()
) -> Plan:
    """The graph wired to play ``conversation`` (see the module docstring)."""
    env = dict(os.environ)
    env["QUIET"] = "true"
    spec = load(graph, overrides=overrides, env=env).to_spec()
    types = {node_id: node.type for node_id, node in spec.nodes.items()}
    sources = [n for n, t in types.items() if t == "file.source"]
    if not sources:
        raise ConfigError(
            f"{graph}: vbgraph bench plays the conversation through a file.source node and "
            "this graph has none (see graphs/modelled.yaml)"
        )
    wiring: list[str] = []
    for node_id, type_name in types.items():
        if type_name == "file.source":
            wav = json.dumps(str(conversation.wav.resolve()))
            wiring += [f"{node_id}.path={wav}", f"{node_id}.realtime=true"]
        elif type_name == "stt.fake" and conversation.turns:
            wiring += [
                f"{node_id}.transcripts={json.dumps(conversation.texts)}",
                f"{node_id}.transcript_file=null",
            ]
        elif type_name == "log.turns":
            wiring += [f"{node_id}.quiet=true", f"{node_id}.path=null"]
    builder = load(graph, overrides=[*overrides, *wiring], env=env)
    if "log.turns" not in types.values():
        builder.add("log.turns", "bench_turns", quiet=True)
    return builder.compile()


def run_point(
    graph: str | os.PathLike[str],
    conversations: Sequence[Conversation],
    point: SweepPoint | None = None,
    *,
    options: BenchOptions | None = None,
    overrides: Sequence[str] = (),
) -> PointResult:
    """Run ``options.sessions`` sessions of one sweep point and collect their records."""
    if not conversations:
        raise ConfigError("vbgraph bench needs at least one conversation")
    options = options or BenchOptions()
    point = point or SweepPoint()
    all_overrides = [*overrides, *point.overrides]
    plans = [plan_for(graph, conv, all_overrides) for conv in conversations]
    main = _run_sessions(plans, list(conversations), options)
    rss0 = _rss_kb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if options.clock == "virtual":
        outcomes, peak_kb = VirtualClock().run(main, debug=options.debug)
    else:
        outcomes, peak_kb = run_on_loop(new_event_loop(), main, debug=options.debug)
    resources = Resources(
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        audio_s=sum(o.duration_s for o in outcomes),
        peak_rss_mb=max(peak_kb, _rss_kb()) / 1024,
        rss_per_session_kb=max(0.0, peak_kb - rss0) / options.sessions,
    )
    return PointResult(point, outcomes, resources)


def run_bench(
    graph: str | os.PathLike[str],
    conversations: Sequence[Conversation],
    *,
    sweeps: Sequence[Sweep] = (),
    options: BenchOptions | None = None,
    overrides: Sequence[str] = (),
    progress: Callable[[int, int, PointResult], None] | None = None,
) -> BenchResult:
    """Run every sweep point in turn (``progress(i, total, result)`` after each)."""
    options = options or BenchOptions()
    points = sweep_points(sweeps)
    results: list[PointResult] = []
    for i, point in enumerate(points):
        result = run_point(graph, conversations, point, options=options, overrides=overrides)
        results.append(result)
        if progress is not None:
            progress(i + 1, len(points), result)
    return BenchResult(
        str(graph), list(conversations), options, list(sweeps), list(overrides), results
    )


async def _run_sessions(
    plans: list[Plan], conversations: list[Conversation], options: BenchOptions
) -> tuple[list[SessionOutcome], float]:
    """Run the sessions together; their outcomes and the peak RSS (kB) seen meanwhile."""
    n = options.sessions
    sessions: list[Session] = []
    probes: list[SessionProbe] = []
    for i in range(n):
        k = i % len(plans)
        timeout = conversations[k].duration_s + _EXTRA_DRAIN_S
        session = Session(plans[k], session_id=f"bench-{i}", drain_timeout=timeout)
        sessions.append(session)
        probes.append(SessionProbe(session, conversations[k]))

    async def one(i: int) -> SessionResult:
        if options.stagger_s and i:
            await asyncio.sleep(options.stagger_s * i / n)
        return await sessions[i].run()

    peak = [_rss_kb()]
    sampler = asyncio.create_task(_sample_rss(peak))
    try:
        results = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    outcomes = [
        _outcome(session, probe, result, conversations[i % len(plans)].name)
        for i, (session, probe, result) in enumerate(zip(sessions, probes, results, strict=True))
    ]
    return outcomes, max(peak[0], _rss_kb())


async def _sample_rss(peak: list[float]) -> None:
    while True:
        await asyncio.sleep(_RSS_EVERY_S)
        peak[0] = max(peak[0], _rss_kb())


def _outcome(
    session: Session, probe: SessionProbe, result: SessionResult, conversation: str
) -> SessionOutcome:
    probe.finish()
    logs = [n for n in session.nodes.values() if isinstance(n, LogTurns)]
    records = probe.turn_records(logs[0].turns) if logs else []
    edges = result.edges.values()
    return SessionOutcome(
        session=result.session_id,
        conversation=conversation,
        ok=result.ok,
        state=result.state.value,
        duration_s=result.duration_ns / 1e9,
        turns=records,
        interruptions=list(probe.interruptions),
        drops=sum(e.drops for e in edges),
        lost=result.frames_lost,
        stale=sum(e.stale for e in edges),
        flushed=sum(e.flushed for e in edges),
        errors=[str(e) for e in result.errors],
    )


def _rss_kb() -> float:
    """Resident memory now, in kB (the peak so far where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
