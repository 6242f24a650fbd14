"""The :class:`CallManager`: admission, one session per call, counters, graceful drain.

Theory of operation
-------------------
A transport shell asks :meth:`CallManager.admit` *before* it accepts a
connection, so a full or draining server refuses at the protocol level (HTTP
503, WebSocket close 1013) instead of accepting and then hanging up. The
returned :class:`Admission` holds the slot; :meth:`CallManager.run_call`
turns it into a session (a fresh instance of the plan with the call's
:class:`~vbgraph.transports.link.CallLink` attached), runs it to its end and
frees the slot, whatever happens. A failing session is counted and reported,
never raised into the server: one bad call never takes down the others.

:meth:`CallManager.drain` is the SIGTERM path: refuse new calls, let live ones
finish until a deadline, then end them cleanly (sources stop, queued audio
drains) and finally cancel what still runs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import VbgraphError
from ..graph.plan import Plan
from ..runtime.session import Session, SessionObserver, SessionResult
from ..transports.link import CallLink
from .metrics import DURATION_BUCKETS_S, Family, Histogram

__all__ = ["Admission", "CallCounters", "CallManager", "CallRefused"]

log = logging.getLogger("vbgraph.serve")
_ids = itertools.count(1)


class CallRefused(VbgraphError):
    """The server cannot take a call now; ``reason`` is ``"full"`` or ``"draining"``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CallCounters:
    """What ``/metrics`` and ``/health`` report about calls."""

    active: int
    max_sessions: int
    started: int
    ended: int
    failed: int
    """Sessions that ended with node errors or failed to start."""
    refused_full: int
    refused_draining: int
    draining: bool


class Admission:
    """A reserved call slot; give it to :meth:`CallManager.run_call` or :meth:`release` it."""

    __slots__ = ("_manager", "_used", "call_id")

    def __init__(self, manager: CallManager, call_id: str) -> None:
        self._manager = manager
        self._used = False
        self.call_id = call_id

    def release(self) -> None:
        """Give the slot back without running a call (the handshake failed)."""
        if not self._used:
            self._used = True
            manager = self._manager
            manager._active -= 1
            if manager._active == 0:
                manager._idle.set()  # else drain() waits its deadline for a call that never ran


OnSession = Callable[[Session], Awaitable[None] | None]


class CallManager:
    """Runs the calls of one graph in one process; see the module docstring."""

    def __init__(
        self,
        plan: Plan,
        *,
        max_sessions: int = 100,
        debug: bool = False,
        observer: SessionObserver | None = None,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.plan = plan
        self.observer = observer
        """Watches every call's session (metrics, traces; ``vbgraph.observability``)."""
        self.max_sessions = max_sessions
        self.debug = debug
        self.sessions: dict[str, Session] = {}
        """Live sessions by id."""
        self._active = 0
        self._started = 0
        self._ended = 0
        self._failed = 0
        self._refused_full = 0
        self._refused_draining = 0
        self._draining = False
        self._links: dict[str, CallLink] = {}
        # Totals of ended calls, for /metrics (live calls are read when scraped).
        self._by_transport: Counter[tuple[str, str]] = Counter()
        self._ended_lost_frames = 0
        self._ended_link_drops: Counter[str] = Counter()
        self._errors_by_type: Counter[str] = Counter()
        self._durations = Histogram(DURATION_BUCKETS_S)
        self._idle = asyncio.Event()
        self._idle.set()

    # -- admission ---------------------------------------------------------------------

    def admit(self) -> Admission:
        """Reserve a slot for a new call, or raise :class:`CallRefused`."""
        if self._draining:
            self._refused_draining += 1
            raise CallRefused("draining", "server is shutting down: no new calls")
        if self._active >= self.max_sessions:
            self._refused_full += 1
            raise CallRefused(
                "full", f"server is full: {self._active} of {self.max_sessions} calls"
            )
        self._active += 1
        self._idle.clear()
        return Admission(self, f"{self.plan.name}-{next(_ids)}")

    async def run_call(
        self, admission: Admission, link: CallLink, on_session: OnSession | None = None
    ) -> SessionResult | None:
        """Run the call's session to its end; returns its result (``None`` if it never ran).

        ``on_session`` is called once the session has started (a shell
        subscribes to its events there). The slot is freed at the end, and the
        link's output closed so the shell's sender stops.
        """
        if admission._used:
            raise VbgraphError(f"admission {admission.call_id} was already used")
        admission._used = True
        session = Session(
            self.plan,
            session_id=admission.call_id,
            debug=self.debug,
            attachments=[link],
            observer=self.observer,
        )
        self.sessions[session.session_id] = session
        self._links[session.session_id] = link
        self._started += 1
        self._by_transport[(link.transport, "started")] += 1
        result: SessionResult | None = None
        try:
            await session.start()
            if on_session is not None:
                maybe = on_session(session)
                if maybe is not None:
                    await maybe
            result = await session.wait()
        except asyncio.CancelledError:
            result = await session.cancel("server cancelled the call")
            raise
        except Exception:
            log.exception("call %s failed", session.session_id)
            result = await session.cancel("call failed")
        finally:
            link.close_output()
            del self.sessions[session.session_id]
            del self._links[session.session_id]
            self._active -= 1
            self._ended += 1
            self._by_transport[(link.transport, "ended")] += 1
            if result is None or not result.ok:
                self._failed += 1
                self._by_transport[(link.transport, "failed")] += 1
            self._account(link, result)
            if self._active == 0:
                self._idle.set()
        return result

    def _account(self, link: CallLink, result: SessionResult | None) -> None:
        stats = link.statistics()
        self._ended_link_drops["inbound_bytes"] += stats.inbound_dropped_bytes
        self._ended_link_drops["outbound_chunks"] += stats.outbound_dropped_chunks
        if result is None:
            return
        self._ended_lost_frames += result.frames_lost
        self._durations.observe(result.duration_ns / 1e9)
        for err in result.errors:
            planned = self.plan.nodes.get(err.node_id)
            self._errors_by_type[planned.cls.type_name if planned else "?"] += 1

    def metric_families(self) -> list[Family]:
        """What ``/metrics`` shows about calls (see :mod:`vbgraph.serve.metrics`)."""
        c = self.counters()
        live_lost = sum(
            e.lost for s in self.sessions.values() for e in s.edge_statistics().values()
        )
        link_drops = Counter(self._ended_link_drops)
        active: Counter[str] = Counter()
        for link in self._links.values():
            st = link.statistics()
            link_drops["inbound_bytes"] += st.inbound_dropped_bytes
            link_drops["outbound_chunks"] += st.outbound_dropped_chunks
            active[link.transport] += 1

        def by_transport(what: str) -> list[tuple[dict[str, str], float]]:
            return [
                ({"transport": t}, n)
                for (t, w), n in sorted(self._by_transport.items())
                if w == what
            ]

        return [
            Family(
                "vbgraph_sessions_active",
                "gauge",
                "Calls running now.",
                [({}, c.active)] + [({"transport": t}, n) for t, n in sorted(active.items())],
            ),
            Family(
                "vbgraph_sessions_max",
                "gauge",
                "Most concurrent calls (max_sessions).",
                [({}, c.max_sessions)],
            ),
            Family(
                "vbgraph_calls_started_total", "counter", "Calls started.", by_transport("started")
            ),
            Family("vbgraph_calls_ended_total", "counter", "Calls ended.", by_transport("ended")),
            Family(
                "vbgraph_calls_failed_total",
                "counter",
                "Calls that ended with node errors or failed to start.",
                by_transport("failed"),
            ),
            Family(
                "vbgraph_calls_refused_total",
                "counter",
                "Calls refused, by reason.",
                [
                    ({"reason": "full"}, c.refused_full),
                    ({"reason": "draining"}, c.refused_draining),
                ],
            ),
            Family(
                "vbgraph_frames_lost_total",
                "counter",
                "Frames that did not reach their consumer (queue drops, stale, flushed, failed).",
                [({}, self._ended_lost_frames + live_lost)],
            ),
            Family(
                "vbgraph_transport_dropped_total",
                "counter",
                "Audio dropped at the transport buffers (inbound bytes, outbound chunks).",
                [
                    ({"direction": "inbound", "unit": "bytes"}, link_drops["inbound_bytes"]),
                    ({"direction": "outbound", "unit": "chunks"}, link_drops["outbound_chunks"]),
                ],
            ),
            Family(
                "vbgraph_node_errors_total",
                "counter",
                "Node errors, by node type.",
                [({"node_type": t}, n) for t, n in sorted(self._errors_by_type.items())],
            ),
            Family(
                "vbgraph_draining",
                "gauge",
                "1 while the server drains for shutdown.",
                [({}, int(c.draining))],
            ),
            Family(
                "vbgraph_call_duration_seconds",
                "histogram",
                "Duration of ended calls.",
                histograms=[({}, self._durations)],
            ),
        ]

    # -- shutdown ----------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` was called: new calls are refused."""
        return self._draining

    @property
    def active(self) -> int:
        """Calls running now (including admitted ones still in their handshake)."""
        return self._active

    async def drain(self, deadline_s: float, grace_s: float = 5.0) -> None:
        """Refuse new calls; wait up to ``deadline_s`` for live calls, then end them.

        Ending a call stops its sources (the caller's audio) so what is queued
        drains through; calls still running ``grace_s`` later are cancelled.
        """
        self._draining = True
        if await self._wait_idle(deadline_s):
            return
        for session in list(self.sessions.values()):
            session.end()
        if await self._wait_idle(grace_s):
            return
        for session in list(self.sessions.values()):
            await session.cancel("server shutdown")
        await self._wait_idle(grace_s)

    async def _wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def counters(self) -> CallCounters:
        """A snapshot for ``/health`` and ``/metrics``."""
        return CallCounters(
            active=self._active,
            max_sessions=self.max_sessions,
            started=self._started,
            ended=self._ended,
            failed=self._failed,
            refused_full=self._refused_full,
            refused_draining=self._refused_draining,
            draining=self._draining,
        )
