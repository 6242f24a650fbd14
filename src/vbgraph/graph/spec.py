"""The graph spec: what a YAML graph file (or the builder) says, validated.

A spec is the template as written: node ids with a type and raw params, and
edges between ``node`` or ``node.port`` endpoints. It is not yet checked
against node classes; ``graph/compile.py`` does that and makes a ``Plan``.

YAML form::

    version: 1
    name: example
    nodes:
      src:  {type: file.source, path: in.wav}
      gain: {type: gain, db: -6}
      sink: {type: file.sink, path: out.wav}
    edges:
      - src -> gain -> sink                       # a chain: default ports
      - {from: src.out, to: sink.in, queue: {capacity: 8, policy: drop_oldest}}

Every key of a node other than ``type`` is a parameter of that node type. A
chain ``a -> b.in -> c`` is shorthand for the edges ``a -> b.in`` and
``b -> c``: an endpoint names the port it refers to on that side of the arrow.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..queue_policy import DEFAULT_CAPACITY, QueuePolicy

__all__ = [
    "NODE_ID_PATTERN",
    "EdgeSpec",
    "Endpoint",
    "GraphSpec",
    "NodeSpec",
    "QueueSpec",
    "node_id_problem",
    "parse_chain",
    "parse_endpoint",
]

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_ID = re.compile(NODE_ID_PATTERN)
_ENDPOINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class QueueSpec(_Model):
    """Queue settings of an edge into an async node.

    ``capacity`` in frames; ``max_ms`` also bounds queued audio by duration;
    ``policy`` is what a full queue does: ``block`` (backpressure),
    ``drop_oldest`` (live audio) or ``drop_newest``. ``interruptible`` forces
    stale-frame dropping and flushing on interrupt on or off for this edge.
    """

    capacity: int = Field(DEFAULT_CAPACITY, ge=1, le=1_000_000)
    policy: QueuePolicy = QueuePolicy.BLOCK
    max_ms: float | None = Field(None, gt=0)
    interruptible: bool | None = None


class Endpoint(_Model):
    """One end of an edge: a node id and optionally a port (``None``: the default port)."""

    node: str
    port: str | None = None

    def __str__(self) -> str:
        return self.node if self.port is None else f"{self.node}.{self.port}"


class EdgeSpec(_Model):
    """One data edge: ``from`` → ``to``, with optional queue settings."""

    src: Endpoint = Field(alias="from")
    dst: Endpoint = Field(alias="to")
    queue: QueueSpec | None = None

    @field_validator("src", "dst", mode="before")
    @classmethod
    def _endpoint(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_endpoint(value)
        return value

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


class NodeSpec(_Model):
    """A node as written: its type and raw params (validated later by the type)."""

    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> NodeSpec:
        """``{type: x, a: 1}`` → ``NodeSpec(type="x", params={"a": 1})``."""
        rest = {k: v for k, v in data.items() if k != "type"}
        return cls(type=data.get("type", ""), params=rest)

    def to_mapping(self) -> dict[str, Any]:
        """The flat YAML form (``{type: x, a: 1}``).

        A node type with a param called ``params`` is written in the nested
        form ``{type: x, params: {...}}`` instead, since the flat form would
        read back as that nested form.
        """
        if "params" in self.params:
            return {"type": self.type, "params": dict(self.params)}
        return {"type": self.type, **self.params}


class GraphSpec(_Model):
    """A whole graph as written."""

    version: Literal[1] = 1
    name: str = "graph"
    description: str = ""
    nodes: dict[str, NodeSpec] = Field(default_factory=dict)
    edges: list[EdgeSpec] = Field(default_factory=list)

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any) -> Any:
        # The flat form {type: x, a: 1} becomes {type: x, params: {a: 1}} here, as
        # plain data, so pydantic reports errors at ("nodes", id, "type") and not
        # at the whole mapping. Without "type" the key is left out: "Field required".
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, node in value.items():
            if isinstance(node, dict) and "params" not in node:
                flat = {k: v for k, v in node.items() if k != "type"}
                out[key] = {"params": flat}
                if "type" in node:
                    out[key]["type"] = node["type"]
            else:
                out[key] = node
        return out

    @field_validator("nodes")
    @classmethod
    def _node_ids(cls, value: dict[str, NodeSpec]) -> dict[str, NodeSpec]:
        for key in value:
            problem = node_id_problem(key)
            if problem is not None:
                raise ValueError(problem)
        return value

    def to_data(self) -> dict[str, Any]:
        """The plain-data (YAML) form, with edges written as ``from``/``to`` mappings."""
        data: dict[str, Any] = {"version": self.version, "name": self.name}
        if self.description:
            data["description"] = self.description
        data["nodes"] = {k: n.to_mapping() for k, n in self.nodes.items()}
        edges: list[Any] = []
        for e in self.edges:
            item: dict[str, Any] = {"from": str(e.src), "to": str(e.dst)}
            if e.queue is not None:
                item["queue"] = e.queue.model_dump(exclude_defaults=True, mode="json")
            edges.append(item)
        data["edges"] = edges
        return data


def node_id_problem(node_id: str) -> str | None:
    """Why ``node_id`` is not a valid node id, or ``None`` if it is."""
    if _ID.fullmatch(node_id):
        return None
    return (
        f"node id {node_id!r} must start with a letter or '_' and contain only "
        "letters, digits, '_' and '-'"
    )


def parse_endpoint(text: str) -> Endpoint:
    """``"mic"`` or ``"mic.audio"`` → :class:`Endpoint`; raises ``ValueError`` otherwise."""
    m = _ENDPOINT.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not an edge endpoint (expected 'node' or 'node.port')")
    return Endpoint(node=m.group(1), port=m.group(2))


def parse_chain(text: str) -> list[tuple[Endpoint, Endpoint]]:
    """``"a -> b.in -> c"`` → pairs of endpoints, one per arrow.

    In the middle of a chain an endpoint with a port names the input port when
    read as a target and is used with its default output when read as a source
    (``a -> b.in -> c`` is ``a → b.in`` and ``b → c``).
    """
    parts = [p.strip() for p in text.split("->")]
    if len(parts) < 2 or any(not p for p in parts):
        raise ValueError(f"{text!r} is not a chain (expected 'a -> b', 'a.out -> b.in -> c')")
    points = [parse_endpoint(p) for p in parts]
    pairs: list[tuple[Endpoint, Endpoint]] = []
    for i in range(len(points) - 1):
        src = points[i]
        if i > 0:
            src = Endpoint(node=src.node)  # inner node: default output port
        pairs.append((src, points[i + 1]))
    return pairs
