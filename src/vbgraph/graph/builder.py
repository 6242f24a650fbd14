"""The Python graph builder: the same graphs as YAML, written in code.

.. code-block:: python

    import vbgraph as vb

    g = vb.Graph("example")
    src = g.add("file.source", path="in.wav")
    gain = g.add("gain", db=-6)
    sink = g.add("file.sink", path="out.wav")
    g.chain(src, gain, sink)
    result = vb.run(g)

A :class:`Graph` holds a spec (``to_spec``); ``compile`` validates it into a
plan exactly as a YAML file would be, and ``to_yaml`` writes the YAML that
loads back into the same spec.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError, UsageError
from ..queue_policy import QueuePolicy
from ..registry import Registry
from .compile import compile_spec
from .parse import SpecLocations, config_error_from_validation
from .plan import Plan
from .spec import (
    EdgeSpec,
    Endpoint,
    GraphSpec,
    NodeSpec,
    QueueSpec,
    node_id_problem,
    parse_endpoint,
)

__all__ = ["Graph", "NodeRef", "PortRef"]


class PortRef:
    """A node's port in a builder graph: ``ref["audio"]`` or ``ref.at("audio")``."""

    __slots__ = ("node", "port")

    def __init__(self, node: NodeRef, port: str | None) -> None:
        self.node = node
        self.port = port

    def endpoint(self) -> Endpoint:
        """As an edge endpoint."""
        return Endpoint(node=self.node.id, port=self.port)

    def __repr__(self) -> str:
        return f"PortRef({self.endpoint()})"


class NodeRef(PortRef):
    """A node added to a builder graph; usable wherever an endpoint is (default port)."""

    __slots__ = ("graph", "id", "type")
    # ``port`` (the slot inherited from PortRef) is None: the default port.

    def __init__(self, graph: Graph, node_id: str, type_name: str) -> None:
        self.graph = graph
        self.id = node_id
        self.type = type_name
        super().__init__(self, None)

    def __getitem__(self, port: str) -> PortRef:
        return PortRef(self, port)

    def at(self, name: str) -> PortRef:
        """The port ``name`` of this node (same as ``ref[name]``)."""
        return PortRef(self, name)

    def __repr__(self) -> str:
        return f"NodeRef({self.id!r}, type={self.type!r})"


class Graph:
    """A graph under construction. See the module docstring."""

    def __init__(self, name: str = "graph", description: str = "") -> None:
        self.name = name
        self.description = description
        self._nodes: dict[str, NodeSpec] = {}
        self._edges: list[EdgeSpec] = []
        self._last_number: dict[str, int] = {}
        self.source: str | None = None
        self.base_dir: str | None = None
        self.locations: SpecLocations | None = None

    @classmethod
    def from_spec(
        cls, spec: GraphSpec, locations: SpecLocations | None = None, source: str | None = None
    ) -> Graph:
        """A builder holding ``spec`` (as loaded from YAML)."""
        g = cls(spec.name, spec.description)
        g._nodes = dict(spec.nodes)
        g._edges = list(spec.edges)
        g.locations = locations
        g.source = source
        return g

    def add(self, type_name: str, id: str | None = None, **params: Any) -> NodeRef:
        """Add a node of ``type_name`` with ``params`` and return a reference to it.

        The id defaults to the type's last part (``file.source`` → ``source``),
        numbered from 2 when taken (``gain``, ``gain2``, ``gain3``). Params are
        checked against the node type only by :meth:`compile`, as for YAML.
        """
        if id is None:
            id = self._free_id(type_name)
        elif id in self._nodes:
            raise ConfigError(f"node id '{id}' is used twice", node_id=id)
        problem = node_id_problem(id)
        if problem is not None:
            raise ConfigError(problem, node_id=id)
        try:
            spec = GraphSpec.model_validate({"nodes": {id: {"type": type_name, **params}}})
        except ValidationError as exc:
            raise config_error_from_validation(exc, SpecLocations(), prefix=()) from None
        # Locations of a loaded graph stay valid: new nodes and edges are appended
        # and simply have none.
        self._nodes[id] = spec.nodes[id]
        return NodeRef(self, id, type_name)

    def _free_id(self, type_name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", type_name.rsplit(".", 1)[-1]) or "node"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "_" + base
        # Numbers only grow, from where the last search for this base stopped, so
        # generating n nodes of one type is O(n), not O(n²).
        node_id, n = base, self._last_number.get(base, 1)
        if node_id in self._nodes:
            n += 1
            node_id = f"{base}{n}"
            while node_id in self._nodes:
                n += 1
                node_id = f"{base}{n}"
            self._last_number[base] = n
        return node_id

    def connect(
        self,
        src: PortRef | str,
        dst: PortRef | str,
        *,
        capacity: int | None = None,
        policy: QueuePolicy | str | None = None,
        max_ms: float | None = None,
        interruptible: bool | None = None,
    ) -> None:
        """Add the edge ``src → dst``, optionally with queue settings.

        ``src`` and ``dst`` are node refs (default port), ``ref["port"]``, or
        ``"node"`` / ``"node.port"`` strings.
        """
        settings = {
            k: v
            for k, v in (
                ("capacity", capacity),
                ("policy", policy),
                ("max_ms", max_ms),
                ("interruptible", interruptible),
            )
            if v is not None
        }
        src_end, dst_end = self._endpoint(src), self._endpoint(dst)
        try:
            queue = QueueSpec.model_validate(settings) if settings else None
        except ValidationError as exc:
            raise config_error_from_validation(exc, SpecLocations(), prefix=("queue",)) from None
        self._edges.append(EdgeSpec(src=src_end, dst=dst_end, queue=queue))

    def chain(
        self,
        *refs: PortRef | str,
        capacity: int | None = None,
        policy: QueuePolicy | str | None = None,
        max_ms: float | None = None,
        interruptible: bool | None = None,
    ) -> None:
        """Connect ``refs`` one after another: ``chain(a, b, c)`` is ``a → b → c``.

        As in a YAML chain, a port named in the middle (``b["in"]``, ``"b.in"``)
        is the input the previous node feeds; ``b`` then feeds ``c`` from its
        default output. Queue settings apply to every edge of the chain.
        """
        if len(refs) < 2:
            raise UsageError("chain() needs at least two nodes")
        for i, (a, b) in enumerate(itertools.pairwise(refs)):
            src = self._endpoint(a)
            if i > 0:
                src = Endpoint(node=src.node)  # inner endpoint: its default output
            self.connect(
                src.node if src.port is None else f"{src.node}.{src.port}",
                b,
                capacity=capacity,
                policy=policy,
                max_ms=max_ms,
                interruptible=interruptible,
            )

    def _endpoint(self, ref: PortRef | str) -> Endpoint:
        if isinstance(ref, str):
            try:
                end = parse_endpoint(ref)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        elif isinstance(ref, PortRef):
            if ref.node.graph is not self:
                raise UsageError(f"node '{ref.node.id}' belongs to another graph")
            end = ref.endpoint()
        else:
            raise UsageError(f"expected a node ref, ref['port'] or 'node.port', got {ref!r}")
        if end.node not in self._nodes:
            raise ConfigError(f"no node '{end.node}' in graph '{self.name}'", node_id=end.node)
        return end

    def to_spec(self) -> GraphSpec:
        """The spec this builder holds."""
        return GraphSpec(
            name=self.name, description=self.description, nodes=self._nodes, edges=self._edges
        )

    def to_yaml(self) -> str:
        """YAML that loads back into an equal spec.

        Param values must be plain data (str, numbers, bools, None, lists,
        mappings); anything else raises :class:`UsageError` naming it.
        """
        try:
            return yaml.safe_dump(self.to_spec().to_data(), sort_keys=False, allow_unicode=True)
        except yaml.representer.RepresenterError as exc:
            raise UsageError(f"graph '{self.name}' cannot be written as YAML: {exc}") from None

    def compile(self, registry: Registry | None = None) -> Plan:
        """Validate and negotiate into a :class:`Plan` (raises :class:`ConfigError`)."""
        return compile_spec(
            self.to_spec(),
            self.locations,
            registry=registry,
            source=self.source,
            base_dir=self.base_dir,
        )

    def __iter__(self) -> Iterator[str]:
        """The node ids, in the order they were added."""
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes
