"""Run a graph: ``vb.run(graph)`` in scripts, ``await vb.arun(graph)`` in async code."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterable

from .clock import VirtualClock, run_on_loop
from .graph.builder import Graph
from .graph.load import load
from .graph.plan import Plan
from .runtime.session import Session, SessionObserver, SessionResult

__all__ = [
    "GraphLike",
    "arun",
    "env_observer",
    "freeze_startup_objects",
    "new_event_loop",
    "plan_of",
    "run",
]

GraphLike = Graph | Plan | str | os.PathLike[str]


def plan_of(graph: GraphLike, overrides: Iterable[str] = ()) -> Plan:
    """Compile whatever describes a graph (a file path, a builder graph, a plan)."""
    if isinstance(graph, Plan):
        return graph
    if isinstance(graph, Graph):
        return graph.compile()
    return load(graph, overrides=overrides).compile()


def freeze_startup_objects() -> None:
    """Move everything allocated so far (modules, classes, plans) out of the GC's sight.

    Imports leave ~40k long-lived objects that every full collection would walk
    again; with hundreds of sessions that made collections pause for 90-175 ms
    (longer than a live audio queue holds). Call once after compiling graphs and
    before starting sessions; sessions made later are collected as usual.
    """
    gc.collect()
    gc.freeze()


async def arun(
    graph: GraphLike,
    *,
    debug: bool = False,
    drain_timeout: float | None = None,
    session_id: str | None = None,
    observer: SessionObserver | None = None,
) -> SessionResult:
    """Run one session of ``graph`` to its end on the running loop.

    ``observer`` watches it (``vbgraph.observability.Telemetry``: metrics and
    traces); without one, ``$VBGRAPH_OTEL`` (if set to an exporter) gives the
    process's shared telemetry, else nothing watches and nothing is imported.
    """
    if observer is None:
        observer = env_observer()
    session = Session(
        plan_of(graph),
        debug=debug,
        drain_timeout=drain_timeout,
        session_id=session_id,
        observer=observer,
    )
    return await session.run()


def env_observer() -> SessionObserver | None:
    """The shared telemetry when ``$VBGRAPH_OTEL`` names an exporter, else None (no import)."""
    if os.environ.get("VBGRAPH_OTEL", "").strip().lower() in ("", "none"):
        return None
    from .observability import shared_telemetry

    return shared_telemetry()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop ``run`` and ``vbgraph run`` use: uvloop when installed.

    uvloop keeps timers and callbacks in C, which is what per-session pacing
    costs most (see docs/benchmarks.md). ``VBGRAPH_LOOP=asyncio`` forces the
    standard loop.
    """
    if os.environ.get("VBGRAPH_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(
    graph: GraphLike,
    *,
    virtual_time: bool = False,
    debug: bool = False,
    drain_timeout: float | None = None,
    observer: SessionObserver | None = None,
) -> SessionResult:
    """Run one session of ``graph`` to its end in a new event loop.

    With ``virtual_time=True`` the loop runs on a :class:`VirtualClock`: a graph
    paced at real time finishes as fast as the CPU allows, deterministically.
    ``observer``: see :func:`arun`.
    """
    main = arun(graph, debug=debug, drain_timeout=drain_timeout, observer=observer)
    if virtual_time:
        return VirtualClock().run(main, debug=debug or None)
    return run_on_loop(new_event_loop(), main, debug=debug or None)
