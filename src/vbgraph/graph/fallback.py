"""Compile-time expansion of ``fallback`` slots (see :mod:`vbgraph.nodes.fallback`).

``stt: {type: fallback, providers: [A, B]}`` becomes, in the plan::

    (edges into stt) -> stt (route) -m0_in-> stt/0 (A) -out-> stt/out.m0_out
                                    -m1_in-> stt/1 (B) -out-> stt/out.m1_out -> (edges out of stt)

Each provider is an ordinary node of the plan, so negotiation gives it the
format it wants on its own edge, its errors are ordinary ``NodeError`` events,
and its start may fail without failing the session (``start_optional``).
Errors in a provider's params name the slot and the provider's index in
``providers`` (``node 'stt' field 'providers[1].model'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from pydantic import ValidationError

from ..errors import ConfigError, UnknownNodeTypeError
from ..formats import AudioCaps
from ..node import Port
from ..nodes._fallback_slot import FallbackMerge, member_port
from ..nodes.fallback import Fallback
from ..registry import Registry
from .parse import SpecLocations
from .plan import PlannedEdge, PlannedNode

__all__ = ["FallbackSlot", "expand_slots", "resolve_slot"]


@dataclass(frozen=True, slots=True)
class FallbackSlot:
    """A resolved slot: its route node, its providers, and the outputs edges may leave from."""

    route: PlannedNode
    members: tuple[PlannedNode, ...]
    outputs: Mapping[str, Port]
    """The union of the providers' outputs (what ``stt.out`` means in an edge)."""

    @property
    def merge_id(self) -> str:
        """The id of the slot's merge node."""
        return f"{self.route.id}/out"


def resolve_slot(
    nid: str,
    params: Fallback.Params,
    loc: SpecLocations,
    reg: Registry,
    base_dir: str | None,
) -> FallbackSlot:
    """Validate each provider of slot ``nid`` and build the route with its ports."""
    members: list[PlannedNode] = []
    for i, spec in enumerate(params.providers):
        where = loc.at(("nodes", nid, "providers", i))
        field = f"providers[{i}]"
        body = dict(spec)
        type_name = body.pop("type", None)
        if not isinstance(type_name, str):
            raise ConfigError(
                "each provider needs a 'type'", location=where, node_id=nid, field=field
            )
        if type_name == Fallback.type_name:
            raise ConfigError(
                "a fallback provider cannot itself be a fallback",
                location=where,
                node_id=nid,
                field=field,
            )
        try:
            cls = reg.get(type_name)
        except UnknownNodeTypeError as exc:
            raise ConfigError(
                exc.message, location=where, node_id=nid, field=f"{field}.type"
            ) from None
        try:
            member_params = cls.Params.model_validate(body, context={"base_dir": base_dir})
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(x) for x in first["loc"])
            raise ConfigError(
                f"{type_name}: {first['msg']}",
                location=loc.at(("nodes", nid, "providers", i, *first["loc"])),
                node_id=nid,
                field=f"{field}.{at}" if at else field,
            ) from None
        ins, outs = cls.ports(member_params)
        members.append(
            PlannedNode(f"{nid}/{i}", cls, member_params, ins, outs, where, start_optional=True)
        )
    outputs: dict[str, Port] = {}
    for m in members:
        for name, port in m.outputs.items():
            outputs.setdefault(name, port)
    route_params = params.model_copy()
    route_params._members = [(m.id, m.inputs, m.outputs) for m in members]
    ins, outs = Fallback.ports(route_params)
    route = PlannedNode(nid, Fallback, route_params, ins, outs, loc.node(nid))
    return FallbackSlot(route, tuple(members), outputs)


def as_edge_endpoint(slot: FallbackSlot) -> PlannedNode:
    """The slot as edges see it: the route's inputs, the providers' outputs."""
    return replace(slot.route, outputs=slot.outputs)


def expand_slots(
    nodes: Mapping[str, PlannedNode],
    edges: list[PlannedEdge],
    slots: Mapping[str, FallbackSlot],
) -> tuple[dict[str, PlannedNode], list[PlannedEdge]]:
    """Replace each slot by route, providers and merge; reroute the edges out of it."""
    if not slots:
        return dict(nodes), edges
    out_nodes: dict[str, PlannedNode] = {}
    for nid, node in nodes.items():
        slot = slots.get(nid)
        if slot is None:
            out_nodes[nid] = node
            continue
        out_nodes[nid] = slot.route
        for m in slot.members:
            out_nodes[m.id] = m
        out_nodes[slot.merge_id] = _merge_node(slot)
    out_edges: list[PlannedEdge] = []
    for e in edges:
        slot = slots.get(e.src)
        out_edges.append(replace(e, src=slot.merge_id) if slot is not None else e)
    for slot in slots.values():
        rid, where = slot.route.id, slot.route.location
        for i, m in enumerate(slot.members):
            out_edges.extend(
                PlannedEdge(rid, member_port(i, port), m.id, port, location=where)
                for port in m.inputs
            )
            out_edges.extend(
                PlannedEdge(m.id, port, slot.merge_id, member_port(i, port), location=where)
                for port in m.outputs
            )
    return out_nodes, out_edges


def _merge_node(slot: FallbackSlot) -> PlannedNode:
    inputs: dict[str, Port] = {}
    for i, m in enumerate(slot.members):
        for name, port in m.outputs.items():
            # Each provider's own format: the merge converts to the first one's itself.
            caps = AudioCaps() if port.carries_audio else None
            inputs[member_port(i, name)] = Port(kinds=port.kinds, caps=caps)
    sources: dict[str, str] = {}
    for name in slot.outputs:
        first = next(i for i, m in enumerate(slot.members) if name in m.outputs)
        sources[name] = member_port(first, name)
    params = FallbackMerge.Params(
        slot=slot.route.id,
        inputs={k: [kind.kind for kind in p.kinds] for k, p in inputs.items()},
        outputs={q: src for q, src in sources.items() if slot.outputs[q].carries_audio},
    )
    outputs = {
        name: Port(
            kinds=port.kinds, caps=port.caps, same_as=sources[name] if port.carries_audio else None
        )
        for name, port in slot.outputs.items()
    }
    return PlannedNode(slot.merge_id, FallbackMerge, params, inputs, outputs, slot.route.location)
