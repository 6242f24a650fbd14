"""A session: one live instance of a plan (one call, one browser tab).

Theory of operation
-------------------
*Wiring.* Each node of the plan is instantiated with its own
:class:`~vbgraph.node.NodeContext`. Every edge becomes either a direct call
(consumer is sync: the frame is processed inside the producer's ``emit``) or a
bounded queue into the consumer's inbox (consumer is async: it gets a task that
takes frames one at a time). ``node.emit`` is a closure over a table of
outlets, so a hop costs a dict lookup and one or two calls.

*Tasks.* One task per source (``run``), one per async node (its consumer loop),
one per node that overrides ``run`` for background work. Each task has a
*driver* (in a context variable) that collects the ``block`` queues it
overfilled; the task waits for room before its next frame.

*End.* A source ends when ``run`` returns; the runtime then sends end markers
on its outputs. A node ends once every connected input has ended: ``on_end``
drains it, then its outputs end. The session has ended when every node has.
``end()`` asks the sources to stop (their ``run`` is cancelled) and lets the
rest drain; ``cancel()`` cancels every task, waits a bounded time, abandons
and reports tasks that ignore cancellation, and never hangs.

*Interruption.* ``interrupt()`` raises the epoch, flushes the queues into
interruptible nodes, cancels their in-flight ``process`` calls (they are not
errors), calls every node's ``on_interrupt`` and publishes ``Interrupt``.
Frames of older epochs arriving at interruptible edges afterwards are dropped
on sight and counted as stale.

*Errors.* A node that raises in ``process``, ``on_event``, ``on_end``,
``run`` or ``stop`` produces a ``NodeError`` event naming it; the frame is
counted as failed and the session goes on. A failing ``start`` fails the
session before any frame flows (other started nodes are stopped).

*Observers.* ``Session(plan, observer=...)`` (see :class:`SessionObserver`;
``vbgraph.observability`` implements one) is attached once the session is
wired. Only then do deliveries read each node's ``process`` from its state, so
that :meth:`Session.swap_process` can route one frame through a timing probe;
without an observer the wiring is exactly the one above.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from contextvars import Context, ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..clock import LoopClock
from ..errors import SessionError, UsageError
from ..events import Event, Interrupt, NodeError, SessionStateChanged
from ..formats import AudioFormat
from ..frames import EndFrame, Frame
from ..node import Node, NodeContext, overrides
from .bus import EventBus, Listener
from .edge import DirectEdge, EdgeQueue, EdgeStatistics, Inbox
from .lifecycle import SessionEvent, SessionState, apply

if TYPE_CHECKING:
    from ..graph.plan import Plan, PlannedNode

__all__ = ["NodeStatistics", "Session", "SessionObserver", "SessionResult"]

_END = EndFrame()
_INTERRUPT_MSG = "vbgraph: interrupted"
_session_ids = itertools.count(1)


class _Driver:
    """Per-task record of ``block`` queues that this task overfilled."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: list[EdgeQueue] = []

    async def wait(self) -> None:
        while self.pending:
            await self.pending.pop().wait_room()


_current_driver: ContextVar[_Driver | None] = ContextVar("vbgraph_driver", default=None)


def _register_wait(edge: EdgeQueue) -> None:
    driver = _current_driver.get()
    if driver is not None:
        driver.pending.append(edge)
    # Outside any driven task (a loop callback) there is nobody to pause: the
    # queue overshoots and ``peak`` shows by how much.


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """Per-node counters of a session."""

    id: str
    type: str
    frames_in: int
    errors: int
    unconnected: int
    """Frames emitted on an output port that has no edge (counted, not silent)."""
    ended: bool


@dataclass(frozen=True, slots=True)
class SessionResult:
    """What a finished session reports: final state, statistics and errors."""

    session_id: str
    graph: str
    state: SessionState
    duration_ns: int
    nodes: Mapping[str, NodeStatistics]
    edges: Mapping[str, EdgeStatistics]
    errors: tuple[NodeError, ...]
    abandoned: tuple[str, ...]
    interrupts: int
    events_published: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if the session ended normally and no node reported an error."""
        return self.state is SessionState.ENDED and not self.errors

    @property
    def frames_lost(self) -> int:
        """Frames that did not reach their consumer, over all edges."""
        return sum(e.lost for e in self.edges.values())


class SessionObserver(Protocol):
    """Watches sessions from outside: metrics, traces (``vbgraph.observability.Telemetry``).

    One observer may watch many sessions; it keeps its per-session state itself.
    """

    def attach(self, session: Session) -> None:
        """Called once, when ``session`` is wired and before it starts."""

    def task_context(self, session: Session) -> Context | None:
        """The context each of the session's tasks runs in (a copy each time), or None."""


class _NodeState:
    """Runtime bookkeeping for one node instance."""

    __slots__ = (
        "busy",
        "direct_sites",
        "driver",
        "ended",
        "errors",
        "in_edges",
        "inbox",
        "interrupt_cancels",
        "is_async",
        "is_source",
        "node",
        "open_inputs",
        "out_ends",
        "planned",
        "process",
        "run_task",
        "task",
        "unconnected",
    )

    def __init__(self, planned: PlannedNode, node: Node, has_inputs: bool) -> None:
        self.planned = planned
        self.node = node
        self.is_async = planned.cls.is_async()
        self.is_source = not has_inputs and overrides(planned.cls, "run")
        self.inbox: Inbox | None = Inbox() if self.is_async else None
        self.in_edges: list[DirectEdge | EdgeQueue] = []
        self.open_inputs: set[int] = set()
        self.out_ends: list[Callable[[], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.run_task: asyncio.Task[None] | None = None
        self.driver = _Driver()
        self.busy = False
        self.interrupt_cancels = 0
        self.ended = False
        self.errors = 0
        self.unconnected = 0
        self.process: Callable[[str, Frame], Any] = node.process
        # Observed sessions only: the fused emit tables that call this node's process.
        self.direct_sites: list[tuple[_DirectTable, str]] = []


_DirectTable: TypeAlias = (
    "dict[str, tuple[DirectEdge, Callable[[str, Frame], object], str, _NodeState]]"
)
"""A fused ``emit``'s table: port → (edge, consumer's process, consumer port, consumer)."""


class Session:
    """One live instance of a :class:`~vbgraph.graph.plan.Plan`.

    Use ``result = await Session(plan).run()``, or start it, feed or watch it,
    and end it yourself::

        session = Session(plan)
        events = session.events()
        await session.start()
        ...
        result = await session.wait()
    """

    def __init__(
        self,
        plan: Plan,
        *,
        session_id: str | None = None,
        debug: bool = False,
        cancel_timeout: float = 2.0,
        drain_timeout: float | None = None,
        attachments: Iterable[object] = (),
        observer: SessionObserver | None = None,
    ) -> None:
        self.plan = plan
        self.observer = observer
        """Who watches this session (metrics, traces); ``None``: nobody, no cost."""
        self.attachments: Mapping[type, object] = {type(a): a for a in attachments}
        """Per-session objects for the nodes (``NodeContext.attachment``), by type."""
        self.shared: dict[str, object] = {}
        """Objects node groups share within this session (``NodeContext.shared``)."""
        self.session_id = session_id or f"{plan.name}-{next(_session_ids)}"
        self.debug = debug
        self.cancel_timeout = cancel_timeout
        self.drain_timeout = drain_timeout
        self.clock = LoopClock()
        self.epoch = 0
        self.state = SessionState.CREATED
        self.bus = EventBus(self._handler_failed)
        self.errors: list[NodeError] = []
        self.abandoned: list[str] = []
        self.interrupts = 0
        self._open_nodes = 0
        self._done: asyncio.Event | None = None
        self._started_at = 0
        self._ended_at: int | None = None
        self._states: dict[str, _NodeState] = {}
        self._interruptible_queues: list[EdgeQueue] = []
        self._interruptible_async: list[_NodeState] = []
        self._edges: dict[str, DirectEdge | EdgeQueue] = {}
        self._cancelling = False
        self._build()
        if observer is not None:
            observer.attach(self)

    # -- public API ---------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, Node]:
        """The node instances of this session, by id."""
        return {nid: st.node for nid, st in self._states.items()}

    def events(self, capacity: int = 1024) -> Listener:
        """An async iterator over the bus events published from now on."""
        return self.bus.listen(capacity)

    def publish(self, event: Event, source: str | None = None) -> None:
        """Publish ``event`` on the bus, stamping time and source if unset."""
        if event.pts < 0:
            now = self.clock.now_ns() if self._done is not None else 0
            object.__setattr__(event, "pts", now)
        if event.source is None and source is not None:
            object.__setattr__(event, "source", source)
        self.bus.publish(event)

    def drain(self) -> Awaitable[None]:
        """Wait for room in the ``block`` queues the current task overfilled.

        Returns a ready awaitable (no coroutine made) when nothing is full.
        """
        driver = _current_driver.get()
        if driver is not None and driver.pending:
            return driver.wait()
        return _READY

    def output_format(self, node_id: str, port: str) -> AudioFormat | None:
        """The negotiated format of ``node_id``'s output ``port``, if it carries audio."""
        for pe in self.plan.edges:
            if pe.src == node_id and pe.src_port == port and pe.fmt is not None:
                return pe.fmt
        return None

    def edge_statistics(self) -> dict[str, EdgeStatistics]:
        """A snapshot of every edge."""
        return {name: edge.statistics() for name, edge in self._edges.items()}

    def swap_process(
        self, node_id: str, process: Callable[[str, Frame], Any]
    ) -> Callable[[str, Frame], Any]:
        """Deliver ``node_id``'s next frames to ``process`` instead; returns what was there.

        For instrumentation (``vbgraph.observability`` times one frame in a
        while this way, then swaps the node's own ``process`` back): the swap
        costs nothing on the frames in between. Only sessions made with an
        ``observer`` support it.
        """
        if self.observer is None:
            raise UsageError(f"session {self.session_id}: swap_process needs an observer")
        st = self._states.get(node_id)
        if st is None:
            raise UsageError(f"swap_process() for unknown node {node_id!r}")
        old = st.process
        st.process = process
        for table, port in st.direct_sites:
            edge, _, dst_port, dst = table[port]
            table[port] = (edge, process, dst_port, dst)
        return old

    async def start(self) -> None:
        """Start every node (sinks first) and the tasks; frames flow after this."""
        self._transition(SessionEvent.START)
        self._done = asyncio.Event()
        self.clock.reset()
        self._started_at = self.clock.now_ns()
        started: list[_NodeState] = []
        for st in reversed(list(self._states.values())):
            try:
                await _maybe_await(st.node.start())
            except Exception as exc:
                self._report(st, "start", exc)
                if st.planned.start_optional:
                    # A fallback provider: its slot switches away; the session goes on.
                    started.append(st)
                    continue
                for other in started:
                    await self._stop_node(other)
                self._transition(SessionEvent.START_FAILED)
                self._finish()
                return
            started.append(st)
        self._transition(SessionEvent.STARTED)
        self._spawn_tasks()

    async def wait(self) -> SessionResult:
        """Wait until every node has ended (or the session was cancelled) and stop."""
        if self.state is SessionState.CREATED:
            raise SessionError(f"session {self.session_id}: wait() before start()")
        if self.state is not SessionState.FAILED:
            assert self._done is not None
            try:
                if self.drain_timeout is None:
                    await self._done.wait()
                else:
                    await asyncio.wait_for(self._done.wait(), self.drain_timeout)
            except TimeoutError:
                await self.cancel(reason="drain timeout")
            except asyncio.CancelledError:
                await self.cancel(reason="caller cancelled")
                raise
            if not self.state.finished:
                if self._cancelling:
                    await self.cancel()
                else:
                    await self._shutdown()
        return self.result()

    async def run(self) -> SessionResult:
        """Start, wait for the graph to end, stop; returns the :class:`SessionResult`."""
        await self.start()
        return await self.wait()

    def end(self) -> None:
        """Graceful end: stop the sources; everything queued drains through."""
        if self.state.finished:
            return
        self._transition(SessionEvent.END)
        for st in self._states.values():
            if st.is_source and st.run_task is not None and not st.run_task.done():
                st.run_task.cancel("vbgraph: session ending")

    async def cancel(self, reason: str = "cancelled") -> SessionResult:
        """Cancel every task, wait at most ``cancel_timeout``, stop nodes; never hangs.

        A task still running after the timeout (it ignored cancellation) is
        abandoned and reported as a ``NodeError`` in phase ``cancel``.
        """
        if self.state.finished:
            return self.result()
        self._cancelling = True
        self._transition(SessionEvent.CANCEL)
        tasks: dict[asyncio.Task[None], _NodeState] = {}
        current = asyncio.current_task()
        for st in self._states.values():
            for task in (st.task, st.run_task):
                if task is not None and not task.done() and task is not current:
                    task.cancel(f"vbgraph: {reason}")
                    tasks[task] = st
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.cancel_timeout)
            for task in pending:
                st = tasks[task]
                self.abandoned.append(st.planned.id)
                self._report(
                    st,
                    "cancel",
                    SessionError(f"ignored cancellation; abandoned after {self.cancel_timeout} s"),
                )
        await self._stop_all()
        self._transition(SessionEvent.CANCELLED)
        self._finish()
        return self.result()

    def report(self, node_id: str, phase: str, exc: BaseException) -> None:
        """Record a node's failure outside ``process`` (a background task, a callback).

        It counts like any other: a ``NodeError`` event and an entry in
        ``SessionResult.errors``.
        """
        st = self._states.get(node_id)
        if st is None:
            raise UsageError(f"report() for unknown node {node_id!r}")
        self._report(st, phase, exc)

    def interrupt(self, reason: str = "", source: str | None = None) -> int:
        """Barge-in: new epoch, flush and cancel interruptible work; returns the epoch."""
        self.epoch += 1
        epoch = self.epoch
        self.interrupts += 1
        for edge in self._interruptible_queues:
            edge.flush()
        for st in self._interruptible_async:
            task = st.task
            if st.busy and task is not None and not task.done():
                st.interrupt_cancels += 1
                task.cancel(_INTERRUPT_MSG)
        for st in self._states.values():
            try:
                st.node.on_interrupt(epoch)
            except Exception as exc:
                self._report(st, "on_interrupt", exc)
        self.publish(Interrupt(epoch=epoch, reason=reason), source)
        return epoch

    def result(self) -> SessionResult:
        """The statistics so far (final once the session has finished)."""
        nodes: dict[str, NodeStatistics] = {}
        for nid, st in self._states.items():
            nodes[nid] = NodeStatistics(
                id=nid,
                type=st.planned.type_name,
                frames_in=sum(e.delivered for e in st.in_edges),
                errors=st.errors,
                unconnected=st.unconnected,
                ended=st.ended,
            )
        end = self._ended_at if self._ended_at is not None else self._now()
        return SessionResult(
            session_id=self.session_id,
            graph=self.plan.name,
            state=self.state,
            duration_ns=max(0, end - self._started_at),
            nodes=nodes,
            edges=self.edge_statistics(),
            errors=tuple(self.errors),
            abandoned=tuple(self.abandoned),
            interrupts=self.interrupts,
            events_published=self.bus.published,
        )

    # -- wiring -------------------------------------------------------------------------

    def _build(self) -> None:
        plan = self.plan
        for nid, planned in plan.nodes.items():
            ctx = NodeContext(self, nid, self.debug)
            node = planned.cls(nid, planned.params, ctx)
            has_inputs = any(e.dst == nid for e in plan.edges)
            st = _NodeState(planned, node, has_inputs)
            self._states[nid] = st
            if planned.cls.interruptible and st.is_async:
                self._interruptible_async.append(st)
            if overrides(planned.cls, "on_event"):
                for event_type in planned.cls.subscribes or (Event,):
                    self.bus.subscribe(event_type, nid, node.on_event)
        inline: dict[tuple[str, str], tuple[DirectEdge, _NodeState, str]] = {}
        outlets: dict[str, dict[str, list[Callable[[Frame], None]]]] = {
            nid: {port: [] for port in st.planned.outputs} for nid, st in self._states.items()
        }
        for index, pe in enumerate(plan.edges):
            dst = self._states[pe.dst]
            src = self._states[pe.src]
            interruptible = (
                pe.queue.interruptible
                if pe.queue.interruptible is not None
                else dst.planned.cls.interruptible
            )
            edge: DirectEdge | EdgeQueue
            if dst.is_async:
                assert dst.inbox is not None
                edge = EdgeQueue(
                    pe.name,
                    dst.inbox,
                    capacity=pe.queue.capacity,
                    policy=pe.queue.policy,
                    max_ms=pe.queue.max_ms,
                    interruptible=interruptible,
                    port=pe.dst_port,
                )
                deliver = self._queue_deliver(edge)
                end = _queue_end(edge)
                if interruptible:
                    self._interruptible_queues.append(edge)
            else:
                edge = DirectEdge(pe.name, interruptible, pe.dst_port)
                deliver = self._direct_deliver(edge, dst, pe.dst_port)
                end = self._direct_end(dst, index, pe.dst_port)
            self._edges[pe.name] = edge
            dst.in_edges.append(edge)
            dst.open_inputs.add(index if not dst.is_async else id(edge))
            outlets[pe.src][pe.src_port].append(deliver)
            src.out_ends.append(end)
            if isinstance(edge, DirectEdge) and not interruptible:
                inline[(pe.src, pe.src_port)] = (edge, dst, pe.dst_port)
        for nid, st in self._states.items():
            st.node.emit = self._make_emit(st, outlets[nid], inline)
        self._open_nodes = len(self._states)

    def _make_emit(
        self,
        st: _NodeState,
        ports: dict[str, list[Callable[[Frame], None]]],
        inline: dict[tuple[str, str], tuple[DirectEdge, _NodeState, str]],
    ) -> Callable[[str, Frame], None]:
        table: dict[str, Callable[[Frame], None]] = {}
        for port, delivers in ports.items():
            table[port] = _fan_out(st, delivers)
        node_id = st.planned.id
        failed = self._process_failed

        def unknown(port: str) -> UsageError:
            return UsageError(
                f"node '{node_id}' emitted on unknown output port {port!r} "
                f"(ports: {', '.join(table) or 'none'})"
            )

        # The common case: every output port feeds exactly one sync node and no
        # epoch check is needed. Then emit calls the consumer's process itself:
        # one Python frame less per hop (~50 ns, and long fused chains stay
        # clear of CPython 3.11's frame-chunk boundary, gh-142183).
        direct: dict[str, tuple[DirectEdge, Callable[[str, Frame], object], str, _NodeState]] = {}
        for port, delivers in ports.items():
            target = inline.get((node_id, port))
            if target is not None and len(delivers) == 1:
                edge, dst, dst_port = target
                direct[port] = (edge, dst.node.process, dst_port, dst)
        if direct and len(direct) == len(table):
            if self.observer is not None:
                for port, (_, _, _, dst) in direct.items():
                    dst.direct_sites.append((direct, port))

            def emit_direct(port: str, frame: Frame) -> None:
                try:
                    edge, process, dst_port, dst = direct[port]
                except KeyError:
                    raise unknown(port) from None
                edge.delivered += 1
                try:
                    process(dst_port, frame)
                except Exception as exc:
                    edge.failed += 1
                    failed(dst, dst_port, exc)

            return emit_direct

        def emit(port: str, frame: Frame) -> None:
            try:
                out = table[port]
            except KeyError:
                raise unknown(port) from None
            out(frame)

        return emit

    def _direct_deliver(
        self, edge: DirectEdge, st: _NodeState, port: str
    ) -> Callable[[Frame], None]:
        process = st.node.process
        session = self
        failed = self._process_failed

        if self.observer is not None:
            # Observed: read the process on each frame, so swap_process can probe it.
            def deliver_observed(frame: Frame) -> None:
                if edge.interruptible and frame.epoch < session.epoch:
                    edge.stale += 1
                    return
                edge.delivered += 1
                try:
                    st.process(port, frame)
                except Exception as exc:
                    edge.failed += 1
                    failed(st, port, exc)

            return deliver_observed

        if edge.interruptible:

            def deliver_checked(frame: Frame) -> None:
                if frame.epoch < session.epoch:
                    edge.stale += 1
                    return
                edge.delivered += 1
                try:
                    process(port, frame)
                except Exception as exc:
                    edge.failed += 1
                    failed(st, port, exc)

            return deliver_checked

        def deliver(frame: Frame) -> None:
            edge.delivered += 1
            try:
                process(port, frame)
            except Exception as exc:
                edge.failed += 1
                failed(st, port, exc)

        return deliver

    def _queue_deliver(self, edge: EdgeQueue) -> Callable[[Frame], None]:
        put = edge.put
        session = self
        if edge.interruptible:

            def deliver_checked(frame: Frame) -> None:
                if frame.epoch < session.epoch:
                    edge.stale += 1
                    return
                put(frame, _register_wait)

            return deliver_checked

        def deliver(frame: Frame) -> None:
            put(frame, _register_wait)

        return deliver

    def _direct_end(self, st: _NodeState, key: int, port: str) -> Callable[[], None]:
        def end() -> None:
            st.open_inputs.discard(key)
            self._input_ended(st, port)
            if not st.open_inputs and not st.ended:
                self._end_sync_node(st)

        return end

    def _input_ended(self, st: _NodeState, port: str) -> None:
        try:
            st.node.on_input_end(port)
        except Exception as exc:
            self._report(st, "on_input_end", exc, port)

    # -- tasks ----------------------------------------------------------------------------

    def _spawn_tasks(self) -> None:
        observer = self.observer

        def context() -> Context | None:
            return None if observer is None else observer.task_context(self)

        for st in self._states.values():
            nid = st.planned.id
            if st.is_async:
                st.task = asyncio.create_task(
                    self._consume(st), name=f"{nid}:consume", context=context()
                )
            if st.is_source:
                st.run_task = asyncio.create_task(
                    self._run_source(st), name=f"{nid}:run", context=context()
                )
            elif overrides(st.planned.cls, "run"):
                st.run_task = asyncio.create_task(
                    self._run_background(st), name=f"{nid}:bg", context=context()
                )
        # Nodes with declared inputs but nothing connected end at once.
        for st in self._states.values():
            if not st.in_edges and not st.is_source and not st.ended:
                if st.is_async:
                    assert st.task is not None
                    st.task.cancel("vbgraph: no inputs")
                    self._end_outputs(st)
                else:
                    self._end_sync_node(st)

    async def _run_source(self, st: _NodeState) -> None:
        _current_driver.set(st.driver)
        try:
            await st.node.run()
        except asyncio.CancelledError:
            if self._cancelling:
                raise
            # end(): a source asked to stop ends its stream normally.
        except Exception as exc:
            self._report(st, "run", exc)
        await st.driver.wait()
        self._end_outputs(st)

    async def _run_background(self, st: _NodeState) -> None:
        _current_driver.set(st.driver)
        try:
            await st.node.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report(st, "run", exc)

    async def _consume(self, st: _NodeState) -> None:
        _current_driver.set(st.driver)
        inbox = st.inbox
        assert inbox is not None
        node = st.node
        driver = st.driver
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                edge, frame = await inbox.get()
                if type(frame) is EndFrame:
                    st.open_inputs.discard(id(edge))
                    self._input_ended(st, edge.port)
                    if not st.open_inputs:
                        break
                    continue
                if edge.interruptible and frame.epoch < self.epoch:
                    edge.stale += 1
                    continue
                edge.delivered += 1
                st.busy = True
                try:
                    # st.process, not a local: swap_process may route one frame
                    # through a probe (a slot read, ~1 ns of a ~1 us hop).
                    await st.process(edge.port, frame)
                except asyncio.CancelledError:
                    if not st.interrupt_cancels or self._cancelling:
                        raise
                    # An interruption cancelled stale work: not an error.
                except Exception as exc:
                    edge.failed += 1
                    self._process_failed(st, edge.port, exc)
                finally:
                    st.busy = False
                    while st.interrupt_cancels:
                        st.interrupt_cancels -= 1
                        task.uncancel()
                if driver.pending:
                    await driver.wait()
            try:
                await _maybe_await(node.on_end())
            except Exception as exc:
                self._report(st, "on_end", exc)
            await driver.wait()
        finally:
            if not self._cancelling:
                self._end_outputs(st)

    # -- ending -----------------------------------------------------------------------------

    def _end_sync_node(self, st: _NodeState) -> None:
        try:
            result = st.node.on_end()
            if inspect.isawaitable(result):
                _close_awaitable(result)
                raise UsageError("a sync node's on_end must not be async")
        except Exception as exc:
            self._report(st, "on_end", exc)
        self._end_outputs(st)

    def _end_outputs(self, st: _NodeState) -> None:
        if st.ended:
            return
        st.ended = True
        for end in st.out_ends:
            end()
        self._open_nodes -= 1
        if self._open_nodes == 0 and self._done is not None:
            self._done.set()

    async def _shutdown(self) -> None:
        await self._stop_all()
        self._transition(SessionEvent.DRAINED)
        self._finish()

    async def _stop_all(self) -> None:
        for st in self._states.values():
            task = st.run_task
            if task is not None and not task.done():
                task.cancel("vbgraph: node stopping")
                try:
                    await asyncio.wait_for(asyncio.shield(task), self.cancel_timeout)
                except (asyncio.CancelledError, TimeoutError):
                    if not task.done():
                        self.abandoned.append(st.planned.id)
                        self._report(
                            st,
                            "stop",
                            SessionError(
                                f"background task ignored cancellation; abandoned after "
                                f"{self.cancel_timeout} s"
                            ),
                        )
        for st in self._states.values():
            await self._stop_node(st)

    async def _stop_node(self, st: _NodeState) -> None:
        try:
            result = st.node.stop()
            if inspect.isawaitable(result):
                await asyncio.wait_for(_as_coroutine(result), self.cancel_timeout)
        except Exception as exc:
            self._report(st, "stop", exc)

    def _finish(self) -> None:
        self._ended_at = self._now()
        self.bus.close()

    # -- errors and state -------------------------------------------------------------------

    def _process_failed(self, st: _NodeState, port: str, exc: BaseException) -> None:
        self._report(st, "process", exc, port)

    def _report(
        self, st: _NodeState, phase: str, exc: BaseException, port: str | None = None
    ) -> None:
        st.errors += 1
        event = NodeError(
            node_id=st.planned.id,
            phase=phase,
            port=port,
            error_type=type(exc).__name__,
            message=str(exc),
        )
        self.errors.append(event)
        self.publish(event, st.planned.id)

    def _handler_failed(self, owner: str, exc: BaseException, event: Event) -> None:
        st = self._states.get(owner)
        if st is not None:
            self._report(st, f"on_event({event.name})", exc)

    def _transition(self, event: SessionEvent) -> None:
        old = self.state
        new = apply(old, event, role=f"session {self.session_id}")
        self.state = new
        if new is not old:
            self.publish(SessionStateChanged(old=old.value, new=new.value))

    def _now(self) -> int:
        try:
            return self.clock.now_ns()
        except RuntimeError:
            return self._started_at

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self.state.finished:
            if exc_info[0] is None:
                await self.wait()
            else:
                await self.cancel(reason="context exited with an error")

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()


class _Ready:
    """An awaitable that is already done (cheaper than a coroutine)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover - makes this a generator function


_READY = _Ready()


def _queue_end(edge: EdgeQueue) -> Callable[[], None]:
    def end() -> None:
        edge.put(_END, None)

    return end


def _fan_out(st: _NodeState, delivers: list[Callable[[Frame], None]]) -> Callable[[Frame], None]:
    if len(delivers) == 1:
        return delivers[0]
    if not delivers:

        def unconnected(frame: Frame) -> None:
            st.unconnected += 1

        return unconnected
    targets = tuple(delivers)

    def fan_out(frame: Frame) -> None:
        for deliver in targets:
            deliver(frame)

    return fan_out


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None and inspect.isawaitable(value):
        await value


async def _as_coroutine(value: Awaitable[None]) -> None:
    await value


def _close_awaitable(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()
