"""Tests for the graph spec models: endpoints, chains, nodes, edges, queues."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vbgraph.graph.spec import (
    EdgeSpec,
    Endpoint,
    GraphSpec,
    NodeSpec,
    QueueSpec,
    node_id_problem,
    parse_chain,
    parse_endpoint,
)
from vbgraph.queue_policy import DEFAULT_CAPACITY, QueuePolicy


def ep(node: str, port: str | None = None) -> Endpoint:
    return Endpoint(node=node, port=port)


class TestEndpoints:
    def test_a_bare_node_name_means_its_default_port(self) -> None:
        """'mic' is the endpoint of node mic with no port named."""
        assert parse_endpoint("mic") == ep("mic")

    def test_node_dot_port_names_the_port(self) -> None:
        """'mic.audio' names port audio of node mic; surrounding blanks are ignored."""
        assert parse_endpoint("  mic.audio ") == ep("mic", "audio")

    @pytest.mark.parametrize("text", ["", "a.b.c", "1mic", "mic.", ".in", "a b", "mic.in-1"])
    def test_anything_else_is_not_an_endpoint(self, text: str) -> None:
        """Malformed endpoints raise ValueError quoting the text."""
        with pytest.raises(ValueError, match="not an edge endpoint"):
            parse_endpoint(text)

    def test_an_endpoint_prints_as_written(self) -> None:
        """str() gives back 'node' or 'node.port'."""
        assert str(ep("mic")) == "mic"
        assert str(ep("mic", "audio")) == "mic.audio"


class TestChains:
    def test_a_chain_is_one_edge_per_arrow(self) -> None:
        """'a -> b -> c' is a→b and b→c on default ports."""
        assert parse_chain("a -> b -> c") == [(ep("a"), ep("b")), (ep("b"), ep("c"))]

    def test_a_port_in_the_middle_is_the_input_fed_and_the_node_feeds_on(self) -> None:
        """'a -> b.in -> c' is a→b.in and b→c (b's default output)."""
        assert parse_chain("a -> b.in -> c") == [(ep("a"), ep("b", "in")), (ep("b"), ep("c"))]

    def test_ports_at_both_ends_are_kept(self) -> None:
        """The first endpoint's port is an output, the last's an input."""
        assert parse_chain("a.left->b.right") == [(ep("a", "left"), ep("b", "right"))]

    @pytest.mark.parametrize("text", ["a", "a ->", "-> b", "a -> -> b", "a -> b c"])
    def test_malformed_chains_raise_value_error(self, text: str) -> None:
        """A chain needs at least two endpoints and nothing empty between arrows."""
        with pytest.raises(ValueError):
            parse_chain(text)


class TestNodes:
    def test_the_flat_form_splits_type_from_params(self) -> None:
        """{type: x, a: 1} is type x with params {a: 1}, and writes back the same."""
        node = NodeSpec.from_mapping({"type": "gain", "db": -6})
        assert node == NodeSpec(type="gain", params={"db": -6})
        assert node.to_mapping() == {"type": "gain", "db": -6}

    def test_a_param_called_params_is_written_in_the_nested_form(self) -> None:
        """The flat form cannot hold a param named 'params', so the nested form is used."""
        node = NodeSpec(type="x", params={"params": 1, "b": 2})
        assert node.to_mapping() == {"type": "x", "params": {"params": 1, "b": 2}}
        spec = GraphSpec.model_validate({"nodes": {"n": node.to_mapping()}})
        assert spec.nodes["n"] == node

    @pytest.mark.parametrize("node_id", ["mic", "_x", "a-b", "A9_"])
    def test_valid_node_ids(self, node_id: str) -> None:
        """Ids start with a letter or '_' and hold letters, digits, '_' and '-'."""
        assert node_id_problem(node_id) is None

    @pytest.mark.parametrize("node_id", ["9a", "a.b", "a b", "", "a\n", "-a"])
    def test_invalid_node_ids_are_explained(self, node_id: str) -> None:
        """Other ids get a reason naming the id."""
        problem = node_id_problem(node_id)
        assert problem is not None and repr(node_id) in problem

    def test_graph_spec_rejects_a_bad_node_id(self) -> None:
        """The spec model itself refuses ids that edges could not name."""
        with pytest.raises(ValidationError, match="node id"):
            GraphSpec.model_validate({"nodes": {"a.b": {"type": "x"}}})

    def test_a_node_without_type_is_refused_at_its_type_field(self) -> None:
        """The missing type is reported at nodes.<id>.type."""
        with pytest.raises(ValidationError) as info:
            GraphSpec.model_validate({"nodes": {"mic": {"rate": 1}}})
        assert info.value.errors()[0]["loc"] == ("nodes", "mic", "type")


class TestEdgesAndQueues:
    def test_an_edge_reads_from_and_to_strings(self) -> None:
        """{from: 'a.out', to: b} validates into endpoints."""
        edge = EdgeSpec.model_validate({"from": "a.out", "to": "b"})
        assert (edge.src, edge.dst, edge.queue) == (ep("a", "out"), ep("b"), None)
        assert str(edge) == "a.out -> b"

    def test_queue_defaults_are_bounded_and_block(self) -> None:
        """A queue without settings has the default capacity and the block policy."""
        q = QueueSpec()
        assert (q.capacity, q.policy, q.max_ms, q.interruptible) == (
            DEFAULT_CAPACITY,
            QueuePolicy.BLOCK,
            None,
            None,
        )

    @pytest.mark.parametrize(
        "settings", [{"capacity": 0}, {"max_ms": 0}, {"policy": "drop_all"}, {"size": 3}]
    )
    def test_bad_queue_settings_are_refused(self, settings: dict[str, object]) -> None:
        """Capacity ≥ 1, max_ms > 0, a known policy, no unknown keys."""
        with pytest.raises(ValidationError):
            QueueSpec.model_validate(settings)

    def test_spec_models_are_frozen(self) -> None:
        """Specs are values: they cannot be changed after validation."""
        spec = GraphSpec()
        with pytest.raises(ValidationError):
            spec.name = "other"  # type: ignore[misc]


class TestToData:
    def test_to_data_writes_nodes_flat_and_edges_as_mappings(self) -> None:
        """The plain-data form is what YAML files hold, defaults left out of queues."""
        spec = GraphSpec.model_validate(
            {
                "name": "g",
                "description": "d",
                "nodes": {"a": {"type": "x", "k": 1}, "b": {"type": "y"}},
                "edges": [
                    {"from": "a", "to": "b.in"},
                    {"from": "a.o", "to": "b", "queue": {"capacity": 2, "policy": "drop_oldest"}},
                ],
            }
        )
        assert spec.to_data() == {
            "version": 1,
            "name": "g",
            "description": "d",
            "nodes": {"a": {"type": "x", "k": 1}, "b": {"type": "y"}},
            "edges": [
                {"from": "a", "to": "b.in"},
                {"from": "a.o", "to": "b", "queue": {"capacity": 2, "policy": "drop_oldest"}},
            ],
        }

    def test_to_data_validates_back_into_an_equal_spec(self) -> None:
        """model_validate(to_data()) is the identity on specs."""
        spec = GraphSpec.model_validate(
            {
                "nodes": {"a": {"type": "x"}, "b": {"type": "y", "p": [1, 2]}},
                "edges": [{"from": "a", "to": "b", "queue": {"max_ms": 40}}],
            }
        )
        assert GraphSpec.model_validate(spec.to_data()) == spec
