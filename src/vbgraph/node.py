"""The node base class, its parameters and its ports.

A node type is a small final class:

.. code-block:: python

    class Gain(Node):
        \"\"\"Scale audio by a gain in dB. Example: ``{type: gain, db: -6}``\"\"\"

        type_name = "gain"

        class Params(NodeParams):
            db: float = 0.0

        inputs = {"in": audio_port(encodings=("pcm_s16le",))}
        outputs = {"out": audio_port(same_as="in")}

        def process(self, port: str, frame: Frame) -> None:
            ...
            self.emit("out", frame.with_data(new_data))

Theory of operation
-------------------
* ``process`` written as a plain ``def`` is *fused*: the runtime calls it
  directly from the task of whoever emitted the frame (a GStreamer chain
  function). It must not block. ``async def process`` gets its own task and a
  bounded input queue per edge.
* ``emit(port, frame)`` is synchronous in both cases. When it feeds a full
  queue whose policy is ``block``, the frame is accepted and the emitting task
  waits for room before its next frame (backpressure at task granularity; a
  queue overshoots its capacity by at most what one ``process`` call emits).
* A node with no input ports is a *source*: the runtime runs ``run()`` in a
  task and ends the node's outputs when it returns. Any other node may also
  override ``run()`` for background work; it is cancelled when the node stops.
* A node ends when every connected input has ended: ``on_end()`` drains what
  it holds (flush a resampler's tail, say) and then its outputs end.
* ``on_interrupt(epoch)`` resets state the way GStreamer's FLUSH_STOP does.
  Nodes with ``interruptible = True`` also have in-flight ``process`` calls
  cancelled, their queues flushed, and stale frames dropped before they see them.
* Negotiation happens before any instance exists, on the class and its
  validated params: :meth:`Node.ports`, :meth:`Node.output_formats`,
  :meth:`Node.latency_ns`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from .errors import ConfigError, UsageError
from .formats import AudioCaps, AudioFormat, Encoding
from .frames import AudioFrame, Frame, TextFrame

if TYPE_CHECKING:
    from .clock import Clock
    from .events import Event

__all__ = [
    "GraphPath",
    "Node",
    "NodeContext",
    "NodeParams",
    "Port",
    "audio_port",
    "frame_port",
    "text_port",
]


_T = TypeVar("_T")


class NodeParams(BaseModel):
    """Base of every node's ``Params`` model: unknown fields are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_graph_path(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if base and value and not os.path.isabs(value):
        return os.path.normpath(os.path.join(base, value))
    return value


GraphPath = Annotated[str, AfterValidator(_resolve_graph_path)]
"""A file path param: relative paths are resolved against the graph file's folder."""


@dataclass(frozen=True, slots=True)
class Port:
    """An input or output port: the frame kinds it carries and, for audio, its formats.

    For an input, ``caps`` is what it accepts. For an output, ``fixed`` is the
    format it always produces, or ``same_as`` names the input whose negotiated
    format it repeats; a node whose output depends on its params overrides
    :meth:`Node.output_formats` instead.
    """

    kinds: tuple[type[Frame], ...]
    caps: AudioCaps | None = None
    same_as: str | None = None
    fixed: AudioFormat | None = None
    doc: str = ""
    chunk_ms: float | None = None
    """On an input: the port needs audio frames of exactly this many ms (a
    transport's 20 ms packets, a VAD's window); negotiation inserts
    ``convert.rechunk`` unless the producer promises that size. On an output:
    the size this port promises (see :meth:`Node.output_chunk_ms`)."""

    @property
    def carries_audio(self) -> bool:
        """True if audio frames may travel through this port."""
        return any(issubclass(AudioFrame, k) for k in self.kinds)

    def describe(self) -> str:
        """One line for ``vbgraph nodes``: kinds and formats."""
        kinds = "|".join(k.kind for k in self.kinds)
        if self.fixed is not None:
            return f"{kinds} ({self.fixed})"
        if self.same_as is not None:
            return f"{kinds} (same format as input '{self.same_as}')"
        if self.caps is not None:
            return f"{kinds} ({self.caps})"
        return kinds


def audio_port(
    rates: tuple[int, ...] | None = None,
    channels: tuple[int, ...] | None = None,
    encodings: tuple[Encoding | str, ...] | None = None,
    *,
    same_as: str | None = None,
    fixed: AudioFormat | None = None,
    chunk_ms: float | None = None,
    doc: str = "",
) -> Port:
    """A port for audio frames; ``None`` means any value. See :class:`Port`."""
    return Port(
        kinds=(AudioFrame,),
        caps=AudioCaps(rates, channels, encodings),
        same_as=same_as,
        fixed=fixed,
        doc=doc,
        chunk_ms=chunk_ms,
    )


def text_port(doc: str = "") -> Port:
    """A port for text frames."""
    return Port(kinds=(TextFrame,), doc=doc)


def frame_port(*kinds: type[Frame], doc: str = "") -> Port:
    """A port for the given frame kinds (all kinds if none are given)."""
    if not kinds:
        kinds = (Frame,)
    caps = AudioCaps() if any(issubclass(AudioFrame, k) for k in kinds) else None
    return Port(kinds=kinds, caps=caps, doc=doc)


class NodeContext:
    """What a running node may ask of its session. One per node instance.

    The runtime provides it; node code reads ``ctx.epoch``, ``ctx.clock`` and
    calls ``ctx.publish(event)`` or ``ctx.interrupt(reason)``.
    """

    __slots__ = ("_session", "debug", "node_id")

    def __init__(self, session: _SessionLike, node_id: str, debug: bool = False) -> None:
        self._session = session
        self.node_id = node_id
        self.debug = debug

    @property
    def epoch(self) -> int:
        """The session's current turn epoch: stamp new frames with it."""
        return self._session.epoch

    @property
    def clock(self) -> Clock:
        """The session clock (real or virtual)."""
        return self._session.clock

    @property
    def session_id(self) -> str:
        """The id of the session this node runs in."""
        return self._session.session_id

    def now_ns(self) -> int:
        """Session time now, in ns."""
        return self._session.clock.now_ns()

    def attachment(self, kind: type[_T]) -> _T | None:
        """The object of type ``kind`` the session's owner attached, if any.

        A server attaches per-connection objects (a transport's
        :class:`~vbgraph.transports.link.CallLink`) when it makes the session;
        the transport nodes of the graph find their caller this way.
        """
        found = self._session.attachments.get(kind)
        return found if isinstance(found, kind) else None

    def shared(self, key: str, factory: Callable[[], _T]) -> _T:
        """A per-session object shared by the nodes that ask for ``key`` (made once).

        For node types that work as a group (the route and merge of a
        ``fallback`` slot); ordinary nodes talk over edges and the bus.
        """
        store = self._session.shared
        if key not in store:
            store[key] = factory()
        value: _T = store[key]  # type: ignore[assignment]
        return value

    def output_format(self, port: str) -> AudioFormat | None:
        """The negotiated audio format of this node's output ``port`` (None if not audio)."""
        return self._session.output_format(self.node_id, port)

    def publish(self, event: Event) -> None:
        """Publish ``event`` on the session bus (stamped with this node's id if unset)."""
        self._session.publish(event, self.node_id)

    def interrupt(self, reason: str) -> int:
        """Interrupt the session (barge-in); returns the new epoch."""
        return self._session.interrupt(reason, source=self.node_id)

    def report(self, phase: str, exc: BaseException) -> None:
        """Report a failure outside ``process`` (background task, loop callback).

        The session counts it like an exception from ``process``: a
        ``NodeError`` event naming this node and ``phase``, and an entry in
        ``SessionResult.errors``.
        """
        self._session.report(self.node_id, phase, exc)

    def drain(self) -> Awaitable[None]:
        """Wait until the ``block`` queues this task overfilled have room again.

        Sources call it after emitting (``self.emit(...); await self.ctx.drain()``)
        so a fast producer is paced by its slowest consumer. Returns at once
        when nothing is full.
        """
        return self._session.drain()


class _SessionLike(Protocol):
    """The part of a session a :class:`NodeContext` uses (the runtime's ``Session``)."""

    epoch: int
    session_id: str
    attachments: Mapping[type, object]
    shared: dict[str, object]

    @property
    def clock(self) -> Clock: ...

    def output_format(self, node_id: str, port: str) -> AudioFormat | None: ...

    def publish(self, event: Event, source: str | None = None) -> None: ...

    def interrupt(self, reason: str, source: str | None = None) -> int: ...

    def report(self, node_id: str, phase: str, exc: BaseException) -> None: ...

    def drain(self) -> Awaitable[None]: ...


def _emit_unwired(port: str, frame: Frame) -> None:
    raise UsageError(f"emit({port!r}, ...) called before the node was wired into a session")


class Node:
    """Base class of every node. Keep subclasses final; compose helpers, don't inherit.

    Class attributes a node type sets: ``type_name`` (the YAML ``type``),
    ``Params`` (a :class:`NodeParams` model), ``inputs`` and ``outputs`` (port
    name → :class:`Port`), and ``interruptible``.
    """

    type_name: ClassVar[str] = ""
    Params: ClassVar[type[NodeParams]] = NodeParams
    inputs: ClassVar[Mapping[str, Port]] = {}
    outputs: ClassVar[Mapping[str, Port]] = {}
    interruptible: ClassVar[bool] = False
    """True for nodes whose work an interruption makes stale (LLM, TTS, playout)."""
    subscribes: ClassVar[tuple[type[Event], ...] | None] = None
    """Event types routed to :meth:`on_event`; ``None`` means all if it is overridden."""

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        self.id = node_id
        self.params = params
        self.ctx = ctx
        # Replaced by the runtime with a table lookup into the wired outlets.
        self.emit: Callable[[str, Frame], None] = _emit_unwired

    # -- negotiation (class level, before instances exist) -------------------

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """The node's input and output ports for these params (default: the class's)."""
        return cls.inputs, cls.outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """Fixed formats of the audio outputs, given the negotiated input formats.

        The default follows each output port's ``fixed`` or ``same_as``. Raise
        :class:`~vbgraph.errors.ConfigError` (with ``field``) if params make it
        impossible.
        """
        out: dict[str, AudioFormat] = {}
        for name, port in cls.ports(params)[1].items():
            if not port.carries_audio:
                continue
            if port.fixed is not None:
                out[name] = port.fixed
            elif port.same_as is not None and port.same_as in inputs:
                out[name] = inputs[port.same_as]
        return out

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Output ports that emit audio frames of one fixed length (ms), all but maybe the last.

        The default reads each output port's ``chunk_ms``. Negotiation uses it
        to leave out a rechunker the consumer would otherwise need.
        """
        return {
            name: port.chunk_ms
            for name, port in cls.ports(params)[1].items()
            if port.chunk_ms is not None
        }

    @classmethod
    def latency_ns(cls, params: NodeParams, inputs: Mapping[str, AudioFormat] | None = None) -> int:
        """Latency this node adds to a path (GStreamer's latency query); default 0.

        ``inputs`` are the negotiated input formats when known (a resampler's
        delay depends on its input rate).
        """
        return 0

    @classmethod
    def is_async(cls) -> bool:
        """True if ``process`` is a coroutine function (the node gets its own task)."""
        return inspect.iscoroutinefunction(cls.process)

    @classmethod
    def is_source(cls, params: NodeParams) -> bool:
        """True if the node has no inputs and produces frames from ``run``."""
        return not cls.ports(params)[0]

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> Awaitable[None] | None:
        """Prepare resources (open files, connect). Called before any frame flows."""
        return None

    def process(self, port: str, frame: Frame) -> Awaitable[None] | None:
        """Handle one frame that arrived on input ``port``."""
        return None

    async def run(self) -> None:
        """Produce frames (sources) or do background work. Sources end when it returns."""
        return None

    def on_event(self, event: Event) -> None:
        """Handle a bus event this node subscribes to. Must not block."""
        return None

    def on_interrupt(self, epoch: int) -> None:
        """Drop state that belongs to the interrupted turn (buffers, partial text)."""
        return None

    def on_input_end(self, port: str) -> None:
        """One connected input edge into ``port`` has ended (others may go on)."""
        return None

    def on_end(self) -> Awaitable[None] | None:
        """Every input has ended: emit what is still held. Outputs end afterwards."""
        return None

    def stop(self) -> Awaitable[None] | None:
        """Release resources. Called once, after the node ended or was cancelled."""
        return None


def check_node_class(cls: type[Node]) -> None:
    """Raise :class:`ConfigError` if ``cls`` is not a well-formed node type."""
    name = getattr(cls, "type_name", "")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"node class {cls.__qualname__} has no type_name")
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, NodeParams)):
        raise ConfigError(f"node type '{name}': Params must subclass NodeParams")
    for hook in ("start", "on_end", "stop"):
        fn = getattr(cls, hook)
        if cls.is_async() is False and hook == "on_end" and inspect.iscoroutinefunction(fn):
            raise ConfigError(
                f"node type '{name}': on_end is async but process is not; a fused "
                "(sync) node must drain synchronously"
            )
    if not inspect.iscoroutinefunction(cls.run):
        raise ConfigError(f"node type '{name}': run must be 'async def'")
    if inspect.iscoroutinefunction(cls.on_event) or inspect.iscoroutinefunction(cls.on_interrupt):
        raise ConfigError(f"node type '{name}': on_event and on_interrupt must not be async")


def overrides(cls: type[Node], method: str) -> bool:
    """True if ``cls`` overrides ``Node.method``."""
    return getattr(cls, method) is not getattr(Node, method)
