"""Compile a :class:`GraphSpec` into a :class:`Plan`.

Checks, in order, each failing with a :class:`ConfigError` that names the
place (file:line:column when the graph came from YAML), the node and the field:

1. every node's ``type`` is registered, and its params validate against the
   type's ``Params`` model;
2. every edge names existing nodes and ports (a bare ``node`` means its only
   port, or the port called ``out``/``in``), the producer's frame kinds can
   enter the consumer's port, and no edge is written twice;
3. data edges form no cycle (feedback goes over the session bus);
4. formats negotiate (``graph/negotiate.py``), inserting converters.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping

from pydantic import ValidationError

from ..errors import (
    ConfigError,
    GraphCycleError,
    SourceLocation,
    UnknownNodeTypeError,
    UnknownPortError,
)
from ..node import Port
from ..nodes.fallback import Fallback
from ..registry import Registry, default_registry
from .fallback import FallbackSlot, as_edge_endpoint, expand_slots, resolve_slot
from .negotiate import negotiate
from .parse import SpecLocations, config_error_from_validation
from .plan import Plan, PlannedEdge, PlannedNode, QueueSettings
from .spec import Endpoint, GraphSpec

__all__ = ["compile_spec"]


def compile_spec(
    spec: GraphSpec,
    locations: SpecLocations | None = None,
    *,
    registry: Registry | None = None,
    source: str | None = None,
    base_dir: str | None = None,
) -> Plan:
    """Validate ``spec`` against the node types and negotiate formats.

    ``base_dir`` is where relative file paths in params point (the graph
    file's folder); it defaults to that of ``source``, else the working folder.
    """
    reg = registry or default_registry()
    loc = locations or SpecLocations()
    if base_dir is None and source is not None and os.path.exists(source):
        base_dir = os.path.dirname(os.path.abspath(source))
    slots: dict[str, FallbackSlot] = {}
    nodes = _resolve_nodes(spec, loc, reg, base_dir, slots)
    endpoints = {
        nid: as_edge_endpoint(slots[nid]) if nid in slots else n for nid, n in nodes.items()
    }
    edges = _resolve_edges(spec, loc, endpoints)
    nodes, edges = expand_slots(nodes, edges, slots)
    order = _topological_order(nodes, edges)
    planned_nodes, planned_edges = negotiate(nodes, edges, order, reg.get)
    return Plan(
        name=spec.name,
        nodes=planned_nodes,
        edges=tuple(planned_edges),
        source=source,
    )


def _resolve_nodes(
    spec: GraphSpec,
    loc: SpecLocations,
    reg: Registry,
    base_dir: str | None,
    slots: dict[str, FallbackSlot],
) -> dict[str, PlannedNode]:
    nodes: dict[str, PlannedNode] = {}
    for nid, ns in spec.nodes.items():
        try:
            cls = reg.get(ns.type)
        except UnknownNodeTypeError as exc:
            raise UnknownNodeTypeError(
                _with_suggestions(exc.message, ns.type, reg),
                location=loc.at(("nodes", nid, "type")),
                node_id=nid,
                field="type",
            ) from None
        try:
            params = cls.Params.model_validate(ns.params, context={"base_dir": base_dir})
        except ValidationError as exc:
            raise config_error_from_validation(
                exc,
                loc,
                prefix=("nodes", nid),
                node_id=nid,
                allowed=list(cls.Params.model_fields),
            ) from None
        if isinstance(params, Fallback.Params):
            slots[nid] = resolve_slot(nid, params, loc, reg, base_dir)
            nodes[nid] = slots[nid].route
            continue
        try:
            inputs, outputs = cls.ports(params)
        except ConfigError as exc:
            raise type(exc)(
                exc.message,
                location=loc.node(nid, re.split(r"[.\[]", exc.field)[0] if exc.field else None),
                node_id=nid,
                field=exc.field,
            ) from None
        nodes[nid] = PlannedNode(nid, cls, params, inputs, outputs, loc.node(nid))
    return nodes


def _with_suggestions(message: str, name: str, reg: Registry) -> str:
    """Add a did-you-mean over every name ``reg`` knows (its parents' too)."""
    if "did you mean" in message or "entry point" in message:  # the registry explained
        return message
    close = difflib.get_close_matches(name, reg.names(), n=3)
    if not close:
        return message
    return f"{message} (did you mean {', '.join(repr(c) for c in close)}?)"


def _pick_port(
    end: Endpoint,
    ports: Mapping[str, Port],
    direction: str,
    default: str,
    location: SourceLocation | None,
    field: str,
) -> str:
    if end.port is not None:
        if end.port not in ports:
            known = ", ".join(ports) or "none"
            raise UnknownPortError(
                f"node '{end.node}' has no {direction} port '{end.port}' ({direction}s: {known})",
                location=location,
                node_id=end.node,
                field=field,
            )
        return end.port
    if len(ports) == 1:
        return next(iter(ports))
    if default in ports:
        return default
    if not ports:
        raise UnknownPortError(
            f"node '{end.node}' has no {direction} ports",
            location=location,
            node_id=end.node,
            field=field,
        )
    raise UnknownPortError(
        f"node '{end.node}' has several {direction} ports ({', '.join(ports)}); "
        f"name one, e.g. '{end.node}.{next(iter(ports))}'",
        location=location,
        node_id=end.node,
        field=field,
    )


def _resolve_edges(
    spec: GraphSpec, loc: SpecLocations, nodes: Mapping[str, PlannedNode]
) -> list[PlannedEdge]:
    edges: list[PlannedEdge] = []
    first_seen: dict[tuple[str, str, str, str], SourceLocation | None] = {}
    for i, es in enumerate(spec.edges):
        where = loc.edge(i)
        for end, name in ((es.src, "from"), (es.dst, "to")):
            if end.node not in nodes:
                known = ", ".join(nodes) or "none"
                close = difflib.get_close_matches(end.node, list(nodes), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ConfigError(
                    f"edge '{es}' refers to unknown node '{end.node}' ({hint}nodes: {known})",
                    location=loc.edge(i, name),
                    node_id=end.node,
                    field=name,
                )
        src, dst = nodes[es.src.node], nodes[es.dst.node]
        src_port = _pick_port(es.src, src.outputs, "output", "out", loc.edge(i, "from"), "from")
        dst_port = _pick_port(es.dst, dst.inputs, "input", "in", loc.edge(i, "to"), "to")
        produced = src.outputs[src_port].kinds
        accepted = dst.inputs[dst_port].kinds
        if not any(issubclass(p, a) or issubclass(a, p) for p in produced for a in accepted):
            raise ConfigError(
                f"edge '{es}': {src.id}.{src_port} produces "
                f"{'|'.join(k.kind for k in produced)} but {dst.id}.{dst_port} accepts "
                f"{'|'.join(k.kind for k in accepted)}",
                location=loc.edge(i, "to"),
                node_id=dst.id,
                field="to",
            )
        key = (src.id, src_port, dst.id, dst_port)
        if key in first_seen:
            before = first_seen[key]
            also = f" (first at {before})" if before is not None and before != where else ""
            raise ConfigError(
                f"edge '{src.id}.{src_port} -> {dst.id}.{dst_port}' is written twice{also}",
                location=where,
                node_id=dst.id,
                field="to",
            )
        first_seen[key] = where
        q = es.queue
        queue = (
            QueueSettings()
            if q is None
            else QueueSettings(q.capacity, q.policy, q.max_ms, q.interruptible)
        )
        edges.append(PlannedEdge(src.id, src_port, dst.id, dst_port, queue, None, where))
    return edges


def _topological_order(nodes: Mapping[str, PlannedNode], edges: list[PlannedEdge]) -> list[str]:
    """Nodes in dependency order (stable: declaration order among equals)."""
    succ: dict[str, list[PlannedEdge]] = {n: [] for n in nodes}
    indeg = dict.fromkeys(nodes, 0)
    for e in edges:
        succ[e.src].append(e)
        indeg[e.dst] += 1
    _check_acyclic(nodes, succ)
    order: list[str] = []
    ready = [n for n in nodes if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for e in succ[n]:
            indeg[e.dst] -= 1
            if indeg[e.dst] == 0:
                ready.append(e.dst)
    return order


def _check_acyclic(nodes: Mapping[str, PlannedNode], succ: Mapping[str, list[PlannedEdge]]) -> None:
    """Raise :class:`GraphCycleError` showing the path of the first cycle a DFS finds.

    Iterative, so a generated graph of thousands of nodes cannot hit the
    recursion limit. ``stack`` is the current DFS path; ``path[i]`` is the
    edge from ``stack[i]`` to ``stack[i + 1]``.
    """
    done: set[str] = set()
    for root in nodes:
        if root in done:
            continue
        stack: list[tuple[str, Iterator[PlannedEdge]]] = [(root, iter(succ[root]))]
        on_path = {root: 0}
        path: list[PlannedEdge] = []
        while stack:
            node, todo = stack[-1]
            edge = next(todo, None)
            if edge is None:
                stack.pop()
                del on_path[node]
                done.add(node)
                if path:
                    path.pop()
                continue
            if edge.dst in on_path:
                cycle = [*path[on_path[edge.dst] :], edge]
                shown = " -> ".join([cycle[0].src, *(c.dst for c in cycle)])
                raise GraphCycleError(
                    f"data edges form a cycle: {shown} (send feedback as bus events instead)",
                    location=edge.location,
                    node_id=edge.dst,
                    field="to",
                )
            if edge.dst not in done:
                on_path[edge.dst] = len(stack)
                path.append(edge)
                stack.append((edge.dst, iter(succ[edge.dst])))
