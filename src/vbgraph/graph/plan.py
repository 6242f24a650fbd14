"""A plan: a validated, negotiated graph, ready to be instantiated as sessions.

The compiler (``graph/compile.py``) turns a spec into a :class:`Plan`: node
classes resolved, params validated, ports checked, formats negotiated and
converter nodes inserted, nodes in topological order. A plan is immutable and
shared by every session made from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import SourceLocation
from ..formats import AudioFormat
from ..node import Node, NodeParams, Port
from ..queue_policy import DEFAULT_CAPACITY, QueuePolicy

__all__ = ["Plan", "PlannedEdge", "PlannedNode", "QueueSettings"]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Queue settings of one edge (used only when its consumer is async).

    ``interruptible=None`` means "decided by the consumer": edges into nodes
    with ``interruptible = True`` drop stale frames and are flushed on interrupt.
    """

    capacity: int = DEFAULT_CAPACITY
    policy: QueuePolicy = QueuePolicy.BLOCK
    max_ms: float | None = None
    interruptible: bool | None = None


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One node of a plan: its class, validated params and ports."""

    id: str
    cls: type[Node]
    params: NodeParams
    inputs: Mapping[str, Port]
    outputs: Mapping[str, Port]
    location: SourceLocation | None = None
    inserted_for: str | None = None
    """For a converter the compiler inserted: the name of the edge it serves."""
    start_optional: bool = False
    """A failing ``start`` is reported but does not fail the session (fallback providers)."""

    @property
    def type_name(self) -> str:
        """The node's registered type name."""
        return self.cls.type_name


@dataclass(frozen=True, slots=True)
class PlannedEdge:
    """One data edge of a plan, with the negotiated audio format if it carries audio."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    queue: QueueSettings = field(default_factory=QueueSettings)
    fmt: AudioFormat | None = None
    location: SourceLocation | None = None

    @property
    def name(self) -> str:
        """``src.port -> dst.port``, as errors and statistics name the edge."""
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled graph. ``nodes`` is in topological order (sources first)."""

    name: str
    nodes: Mapping[str, PlannedNode]
    edges: tuple[PlannedEdge, ...]
    source: str | None = None
    """The file the graph came from, if any."""

    def edges_into(self, node_id: str) -> list[PlannedEdge]:
        """Edges whose consumer is ``node_id``, in plan order."""
        return [e for e in self.edges if e.dst == node_id]

    def edges_from(self, node_id: str) -> list[PlannedEdge]:
        """Edges whose producer is ``node_id``, in plan order."""
        return [e for e in self.edges if e.src == node_id]

    def latency_ns(self, path: list[str]) -> int:
        """The latency the nodes on ``path`` add, from their latency queries."""
        return sum(
            self.nodes[n].cls.latency_ns(self.nodes[n].params, self.input_formats(n)) for n in path
        )

    def input_formats(self, node_id: str) -> dict[str, AudioFormat]:
        """The negotiated audio format of each input port of ``node_id``."""
        return {e.dst_port: e.fmt for e in self.edges_into(node_id) if e.fmt is not None}
