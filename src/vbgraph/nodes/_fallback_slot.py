"""The state a ``fallback`` slot's route and merge share, and the merge node.

A slot ``stt: {type: fallback, providers: [A, B]}`` compiles to a route
(``stt``, the :class:`~vbgraph.nodes.fallback.Fallback` node), the provider
nodes ``stt/0`` (A) and ``stt/1`` (B), and a merge ``stt/out``. The route sends
input to the active provider and remembers the unanswered turn; the merge
passes on output of the active provider only (late output of one switched
away from is dropped and counted) and tells the shared :class:`SlotState` that
the turn was answered. Both find the state with ``ctx.shared("fallback:<slot>")``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from ..dsp.convert import FormatConverter
from ..events import ProviderSwitched
from ..formats import AudioFormat
from ..frames import AudioFrame, Frame, TranscriptFrame
from ..node import Node, NodeContext, NodeParams

__all__ = ["FallbackMerge", "SlotState", "member_port", "split_member_port"]


def member_port(index: int, port: str) -> str:
    """The route's output (or merge's input) port for provider ``index``'s ``port``."""
    return f"m{index}_{port}"


def split_member_port(name: str) -> tuple[int, str]:
    """The inverse of :func:`member_port`."""
    head, _, port = name.partition("_")
    return int(head[1:]), port


@dataclass(eq=False)
class SlotState:
    """Which provider of a slot is active, which are resting after a failure, what to replay."""

    slot: str
    members: list[str]
    ttfb_timeout_s: float
    retry_after_s: float
    replay_max: int
    active: int = 0
    down_until: list[float] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    replay: deque[tuple[str, Frame]] = field(default_factory=deque)
    expecting_since: float | None = None
    switches: int = 0
    replay_overflow: int = 0
    """Frames of an unanswered turn beyond ``replay_max`` (could not be replayed)."""
    dropped_outputs: int = 0
    """Output frames of a provider that was no longer active (dropped, counted)."""
    timer: asyncio.TimerHandle | None = None
    resend: Callable[[int, str, Frame], None] | None = None
    """Set by the route: emit a frame to provider ``index``'s input ``port``."""

    def __post_init__(self) -> None:
        n = len(self.members)
        self.down_until = [0.0] * n
        self.failures = [0] * n

    def remember(self, port: str, frame: Frame) -> None:
        """Keep an input frame of the unanswered turn for a replay (bounded, counted)."""
        if len(self.replay) >= self.replay_max:
            self.replay.popleft()
            self.replay_overflow += 1
        self.replay.append((port, frame))

    def answered(self, index: int, frame: Frame) -> None:
        """Provider ``index`` produced output: the turn is answered unless it was interim."""
        if index != self.active:
            return
        self.expecting_since = None
        self._cancel_timer()
        if not (isinstance(frame, TranscriptFrame) and not frame.final):
            self.replay.clear()

    def expect(self, now: float, on_timeout: Callable[[], None]) -> None:
        """The active provider owes output from now on (unless it already did)."""
        if self.expecting_since is not None:
            return
        self.expecting_since = now
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.ttfb_timeout_s, on_timeout)

    def fail(self, index: int, now: float) -> None:
        """Provider ``index`` failed: rest it with exponential backoff."""
        self.failures[index] += 1
        delay = min(self.retry_after_s * 2 ** (self.failures[index] - 1), 3600.0)
        self.down_until[index] = now + delay

    def pick(self, now: float, exclude: int | None = None) -> int:
        """The most preferred provider that is not resting (else the soonest back)."""
        for i in range(len(self.members)):
            if i != exclude and self.down_until[i] <= now:
                return i
        candidates = [i for i in range(len(self.members)) if i != exclude] or [self.active]
        return min(candidates, key=lambda i: self.down_until[i])

    def switch(self, to: int, reason: str, publish: Callable[[ProviderSwitched], None]) -> None:
        """Make ``to`` active and replay the unanswered turn to it."""
        old = self.active
        self.active = to
        self.switches += 1
        self.expecting_since = None
        self._cancel_timer()
        replayed = 0
        if self.resend is not None:
            for port, frame in list(self.replay):
                self.resend(to, port, frame)
                replayed += 1
        publish(
            ProviderSwitched(
                slot=self.slot,
                from_node=self.members[old],
                to_node=self.members[to],
                reason=reason,
                replayed=replayed,
            )
        )

    def reset_turn(self) -> None:
        """An interruption: the unanswered turn is stale; nothing to replay or wait for."""
        self.replay.clear()
        self.expecting_since = None
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class FallbackMerge(Node):
    """The output side of a ``fallback`` slot (made by the compiler, not written in YAML)."""

    type_name: ClassVar[str] = "fallback.merge"

    class Params(NodeParams):
        """Parameters the compiler sets."""

        slot: str = Field(description="The slot's node id.")
        inputs: dict[str, list[str]] = Field(
            description="Input port → frame kinds (member_port names)."
        )
        outputs: dict[str, str] = Field(
            description="Output port → the input port whose format it repeats."
        )

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, FallbackMerge.Params)
        self._p = params
        self._state: SlotState | None = None
        self._formats: dict[str, AudioFormat | None] = {}
        self._converters: dict[tuple[str, AudioFormat], FormatConverter] = {}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """Each output repeats the format of the first provider's matching output."""
        assert isinstance(params, cls.Params)
        return {q: inputs[src] for q, src in params.outputs.items() if src in inputs}

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """No promise: providers differ."""
        return {}

    def start(self) -> None:
        """Note the negotiated output formats."""
        self._formats = {q: self.ctx.output_format(q) for q in self._p.outputs}

    def process(self, port: str, frame: Frame) -> None:
        """Pass on the active provider's output; drop (and count) anyone else's."""
        state = self._state
        if state is None:  # the route (upstream) starts after us, so look it up now
            state = self._state = self.ctx.shared(f"fallback:{self._p.slot}", _missing_route)
        index, out = split_member_port(port)
        if index != state.active:
            state.dropped_outputs += 1
            return
        state.answered(index, frame)
        want = self._formats.get(out)
        if isinstance(frame, AudioFrame) and want is not None and frame.fmt != want:
            conv = self._converters.get((port, frame.fmt))
            if conv is None:
                conv = self._converters[(port, frame.fmt)] = FormatConverter(frame.fmt, want)
            data = conv.process(frame.data)
            if not len(data):
                return
            frame = frame.with_data(data, want)
        self.emit(out, frame)

    def on_interrupt(self, epoch: int) -> None:
        """Drop what the converters hold of the stale turn."""
        for conv in self._converters.values():
            conv.reset()


def _missing_route() -> SlotState:
    raise RuntimeError("fallback.merge started before its route made the slot state")
