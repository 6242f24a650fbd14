"""One session under watch: its bus events become metrics and spans; its nodes are probed.

Theory of operation
-------------------
A :class:`SessionWatch` subscribes to every event of its session's bus (after
the nodes, so it sees what they published). Session state changes start and
end the session span and move ``vbgraph.sessions.active``; ``NodeError`` and
``Interrupt`` are counted and become events of the session span; providers'
``Metric`` events are recorded as time-to-first-byte histograms; a
:class:`~vbgraph.observability.turns.TurnTracker` assembles turns, and each
finished turn gives its latency histograms and spans.

*Per-node processing time* is sampled, because timing every frame would cost
more than the frame (a fused hop is ~170 ns; one histogram record is several
µs). A :class:`_Probe` is swapped in for a node's ``process``
(:meth:`~vbgraph.runtime.session.Session.swap_process`): the next frame goes
through it, is timed, and the node's own ``process`` is swapped back; a timer
re-arms the probe ``node_sample_interval_s`` later. The frames in between
take the normal path and cost nothing extra. The first samples are taken one
interval after the session starts. With an interval of 0 the probes are in
place from the start and stay: every frame is timed.

What a probe measures is the node's own work: while it runs, the node's
``emit`` is wrapped so time spent in the sync nodes it feeds (fused calls) is
subtracted. For an async node, the time from taking the frame to the end of
``process``, awaits included (an LLM node's whole reply; on a virtual clock
the modelled time); the sync work its own emits start is subtracted too. A
node that keeps ``self.emit`` in a local variable is timed with its
downstream work included.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from ..events import (
    AgentReplied,
    Event,
    Interrupt,
    Metric,
    NodeError,
    SessionStateChanged,
)
from ..frames import Frame
from .traces import client_span_name, turn_spans
from .turns import ProviderCall, Turn, TurnTracker, classify_metric, metric_ns

if TYPE_CHECKING:
    from ..runtime.session import Session
    from .telemetry import Telemetry

__all__ = ["OWNER", "SessionWatch"]

OWNER = "vbgraph.observability"
"""The owner name of the watch's bus subscription."""

_TERMINAL = frozenset({"ended", "cancelled", "failed"})
Process = Callable[[str, Frame], Any]


class SessionWatch:
    """Metrics and spans of one session; made by ``Telemetry.attach``."""

    def __init__(self, telemetry: Telemetry, session: Session) -> None:
        self._telemetry = telemetry
        self._session = weakref.ref(session)
        self._instruments = telemetry.instruments
        self._tracer = telemetry.tracer
        self.graph = session.plan.name
        self.session_id = session.session_id
        self.node_attrs: dict[str, dict[str, str]] = {}
        self._models: dict[str, str | None] = {}
        for nid, planned in session.plan.nodes.items():
            self.node_attrs[nid] = {"node.id": nid, "node.type": planned.cls.type_name}
            model = getattr(planned.params, "model", None)
            self._models[nid] = model if isinstance(model, str) else None
        self.tracker = TurnTracker(on_finished=self._turn_finished)
        self.wall0: int | None = None
        self.span: Span | None = None
        self._llm_started: dict[str | None, int] = {}
        self._probes: list[_Probe] = []
        self._first_arm: asyncio.TimerHandle | None = None
        self.closed = False
        session.bus.subscribe(Event, OWNER, self.on_event)

    # -- the session's side ----------------------------------------------------------------

    def task_context(self) -> contextvars.Context:
        """A context for one of the session's tasks: the current one, with the session span."""
        ctx = contextvars.copy_context()
        if self.span is not None:
            ctx.run(otel_context.attach, trace.set_span_in_context(self.span))
        return ctx

    def wall(self, t_ns: int) -> int:
        """Session time → wall-clock ns (for span times)."""
        return (self.wall0 if self.wall0 is not None else time.time_ns()) + t_ns

    def on_event(self, event: Event) -> None:
        """Everything the session publishes comes through here."""
        kind = type(event)
        if kind is SessionStateChanged:
            assert isinstance(event, SessionStateChanged)
            if event.new == "starting":
                self._started()
            elif event.new in _TERMINAL:
                self._finished(event)
            return
        if kind is Metric:
            assert isinstance(event, Metric)
            self._metric(event)
        elif kind is AgentReplied:
            start = self._llm_started.pop(event.source, None)
            if start is not None and self._instruments is not None:
                self._instruments.llm_duration.record(
                    (event.pts - start) / 1e9, self._gen_ai(event.source)
                )
        elif kind is NodeError:
            assert isinstance(event, NodeError)
            self._error(event)
        elif kind is Interrupt:
            assert isinstance(event, Interrupt)
            if self._instruments is not None:
                self._instruments.interruptions.add(1)
            if self.span is not None:
                self.span.add_event(
                    "interrupt",
                    {"vbgraph.epoch": event.epoch, "vbgraph.reason": event.reason},
                    timestamp=self.wall(event.pts),
                )
        self.tracker.feed(event)

    # -- lifecycle -------------------------------------------------------------------------

    def _started(self) -> None:
        self.wall0 = time.time_ns()
        session = self._session()
        if self._instruments is not None:
            self._instruments.sessions_active.add(1)
        if session is not None:
            self._telemetry.live.add(session)
        if self._tracer is not None:
            self.span = self._tracer.start_span(
                "session",
                context=otel_context.Context(),  # a root: never a child of whatever was current
                attributes={"session.id": self.session_id, "graph.name": self.graph},
                start_time=self.wall0,
            )
        interval = self._telemetry.config.node_sample_interval_s
        if session is not None and self._instruments is not None:
            for nid, planned in session.plan.nodes.items():
                if any(e.dst == nid for e in session.plan.edges):
                    self._probes.append(
                        _Probe(self, session, nid, planned.cls.is_async(), interval)
                    )
            if interval == 0:
                self._arm_all()
            else:
                # The first samples one interval in: a session's first frames are
                # not typical (cold caches, lazy set-up), and a short session then
                # costs no probe at all.
                loop = asyncio.get_running_loop()
                self._first_arm = loop.call_later(interval, self._arm_all)

    def _arm_all(self) -> None:
        self._first_arm = None
        for probe in self._probes:
            probe.arm()

    def _finished(self, event: SessionStateChanged) -> None:
        if self.closed:
            return
        self.closed = True
        self.tracker.finish()
        if self._first_arm is not None:
            self._first_arm.cancel()
        for probe in self._probes:
            probe.close()
        session = self._session()
        if session is not None:
            self._telemetry.live.ended(session)
        if self.wall0 is None:
            return  # never started: nothing was counted or opened
        if self._instruments is not None:
            self._instruments.sessions_active.add(-1)
        if self.span is not None:
            self.span.set_attribute("vbgraph.session.state", event.new)
            if event.new == "failed":
                self.span.set_status(Status(StatusCode.ERROR, "session failed to start"))
            self.span.end(end_time=self.wall(max(event.pts, 0)))

    # -- events ----------------------------------------------------------------------------

    def _metric(self, event: Metric) -> None:
        stage = classify_metric(event.metric)
        if stage is None:
            return
        if stage == "llm":
            self._llm_started[event.source] = event.pts - metric_ns(event)
        inst = self._instruments
        if inst is None:
            return
        if stage in ("input_tokens", "output_tokens"):
            attrs = {**self._gen_ai(event.source), "gen_ai.token.type": stage.split("_")[0]}
            inst.token_usage.record(event.value, attrs)
            return
        seconds = metric_ns(event) / 1e9
        if stage == "llm":
            inst.llm_ttfc.record(seconds, self._gen_ai(event.source))
        else:
            hist = inst.stt_ttfb if stage == "stt" else inst.tts_ttfb
            hist.record(seconds, self._node(event.source, event.metric))

    def _error(self, event: NodeError) -> None:
        attrs = {**self._node(event.node_id, ""), "error.type": event.error_type}
        if self._instruments is not None:
            self._instruments.node_errors.add(1, attrs)
            start = self._llm_started.pop(event.node_id, None)
            if start is not None:  # the LLM call failed: its duration, with the error
                self._instruments.llm_duration.record(
                    (event.pts - start) / 1e9,
                    {**self._gen_ai(event.node_id), "error.type": event.error_type},
                )
        if self.span is not None:
            self.span.add_event(
                "node_error",
                {
                    **attrs,
                    "vbgraph.phase": event.phase,
                    "exception.type": event.error_type,
                    "exception.message": event.message,
                },
                timestamp=self.wall(max(event.pts, 0)),
            )

    def _turn_finished(self, turn: Turn) -> None:
        inst = self._instruments
        if inst is not None:
            for hist, value in (
                (inst.end_of_turn_delay, turn.end_of_turn_delay_ns),
                (inst.voice_to_voice, turn.voice_to_voice_ns),
            ):
                if value is not None and value >= 0:
                    hist.record(value / 1e9)
        if self._tracer is not None and self.span is not None:
            turn_spans(
                self._tracer,
                trace.set_span_in_context(self.span),
                turn,
                self.wall,
                attributes={"session.id": self.session_id},
                call_attributes=self._call_attributes,
                record_text=self._telemetry.config.record_text,
            )

    # -- attributes ------------------------------------------------------------------------

    def _node(self, node_id: str | None, metric: str) -> dict[str, str]:
        attrs = self.node_attrs.get(node_id or "")
        if attrs is not None:
            return attrs
        # A provider inside a fallback slot ("slot/0") or a node the plan does not list.
        kind = ".".join(metric.split(".")[:2]) if metric else "unknown"
        return {"node.id": node_id or "", "node.type": kind}

    def _gen_ai(self, node_id: str | None) -> dict[str, str]:
        node_type = self._node(node_id, "llm.unknown")["node.type"]
        provider = node_type.split(".", 1)[1] if "." in node_type else node_type
        model = self._models.get(node_id or "") or node_type
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,  # the name before semantic conventions 1.37
            "gen_ai.request.model": model,
        }

    def _call_attributes(self, call: ProviderCall) -> tuple[str, dict[str, Any]]:
        attrs: dict[str, Any] = dict(self._node(call.source, call.metric))
        model = None
        if call.stage == "llm":
            attrs.update(self._gen_ai(call.source))
            model = attrs["gen_ai.request.model"]
            if call.input_tokens is not None:
                attrs["gen_ai.usage.input_tokens"] = call.input_tokens
            if call.output_tokens is not None:
                attrs["gen_ai.usage.output_tokens"] = call.output_tokens
            attrs["vbgraph.interrupted"] = call.interrupted
        attrs["vbgraph.time_to_first_result"] = call.latency_ns / 1e9
        return client_span_name(call, model), attrs


class _Probe:
    """Times one frame of one node now and then (see the module docstring)."""

    def __init__(
        self, watch: SessionWatch, session: Session, node_id: str, is_async: bool, every_s: float
    ) -> None:
        self.watch = watch
        self.session = session
        self.node_id = node_id
        self.node = session.nodes[node_id]
        self.is_async = is_async
        self.every_s = every_s
        self.attrs = watch.node_attrs[node_id]
        assert watch._instruments is not None
        self.record = watch._instruments.node_duration.record
        self.original: Process = self.node.process
        self.timer: asyncio.TimerHandle | None = None
        self.armed = False

    def arm(self) -> None:
        """Route the node's next frame through the probe."""
        self.timer = None
        if self.watch.closed or self.armed:
            return
        self.armed = True
        self.original = self.session.swap_process(
            self.node_id, self._timed_async if self.is_async else self._timed
        )

    def close(self) -> None:
        """The session finished: no more re-arming."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fired(self) -> None:
        if self.every_s == 0:
            return  # stays in place: every frame is timed
        self.session.swap_process(self.node_id, self.original)
        self.armed = False
        if not self.watch.closed:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.every_s, self.arm)

    def _timed(self, port: str, frame: Frame) -> Any:
        self._fired()
        node = self.node
        emit = node.emit
        inner = 0

        def counting(p: str, f: Frame) -> None:
            nonlocal inner
            t = time.perf_counter_ns()
            try:
                emit(p, f)
            finally:
                inner += time.perf_counter_ns() - t

        node.emit = counting
        t0 = time.perf_counter_ns()
        try:
            return self.original(port, frame)
        finally:
            elapsed = time.perf_counter_ns() - t0
            node.emit = emit
            self.record(max(0, elapsed - inner) / 1e9, self.attrs)

    async def _timed_async(self, port: str, frame: Frame) -> None:
        self._fired()
        node = self.node
        emit = node.emit
        task = asyncio.current_task()
        clock = self.session.clock
        inner = 0

        def counting(p: str, f: Frame) -> None:
            nonlocal inner
            if asyncio.current_task() is not task:
                emit(p, f)  # another task of the node (its run loop): not this frame's work
                return
            t = time.perf_counter_ns()
            try:
                emit(p, f)
            finally:
                inner += time.perf_counter_ns() - t

        node.emit = counting
        t0, p0 = clock.now_ns(), time.perf_counter_ns()
        try:
            await self.original(port, frame)
        finally:
            # On real time both clocks agree. On a virtual clock an await can take
            # modelled time (the session clock shows it) while CPU work takes none
            # (only perf_counter shows it): the larger is what this frame cost.
            elapsed = max(clock.now_ns() - t0, time.perf_counter_ns() - p0)
            if node.emit is counting:
                node.emit = emit
            self.record(max(0, elapsed - inner) / 1e9, self.attrs)
