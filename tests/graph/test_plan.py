"""Tests for the compiled plan's queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.graph.plan import Plan, PlannedEdge, QueueSettings
from vbgraph.node import Node, NodeParams, Port, audio_port
from vbgraph.queue_policy import DEFAULT_CAPACITY, QueuePolicy
from vbgraph.registry import Registry


class Slow(Node):
    """Adds 5 ms of latency."""

    type_name: ClassVar[str] = "t.slow"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    @classmethod
    def latency_ns(cls, params: NodeParams, inputs: Mapping[str, AudioFormat] | None = None) -> int:
        return 5_000_000


@pytest.fixture
def plan(registry: Registry) -> Plan:
    registry.add(Slow)
    g = Graph("p")
    g.chain(g.add("t.source", id="a"), g.add("t.slow", id="s"), g.add("t.sink", id="z"))
    g.connect("a", "z")
    return g.compile(registry=registry)


class TestPlanQueries:
    def test_edges_into_and_from_a_node_keep_plan_order(self, plan: Plan) -> None:
        """The edges of one node, as the plan lists them."""
        assert [e.name for e in plan.edges_from("a")] == ["a.out -> s.in", "a.out -> z.in"]
        assert [e.name for e in plan.edges_into("z")] == ["s.out -> z.in", "a.out -> z.in"]
        assert plan.edges_into("a") == []

    def test_latency_of_a_path_sums_the_latency_queries(self, plan: Plan) -> None:
        """Only nodes that report latency add to the path's budget."""
        assert plan.latency_ns(["a", "s", "z"]) == 5_000_000
        assert plan.latency_ns(["a", "z"]) == 0

    def test_an_edge_is_named_by_both_ports(self) -> None:
        """src.port -> dst.port, with default queue settings."""
        edge = PlannedEdge("a", "out", "b", "in")
        assert edge.name == "a.out -> b.in"
        assert edge.queue == QueueSettings(DEFAULT_CAPACITY, QueuePolicy.BLOCK, None, None)
        assert edge.fmt is None and edge.location is None

    def test_plans_are_frozen(self, plan: Plan) -> None:
        """A plan is shared by every session made from it and cannot change."""
        with pytest.raises(AttributeError):
            plan.name = "q"  # type: ignore[misc]
