"""Tests for graph data → spec: chain expansion, overrides, placed validation errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vbgraph.errors import ConfigError, SourceLocation
from vbgraph.graph.load import load
from vbgraph.graph.parse import (
    SpecLocations,
    apply_overrides,
    format_field,
    override_paths,
    spec_from_data,
)
from vbgraph.graph.spec import Endpoint, QueueSpec
from vbgraph.graph.yaml_loader import load_graph_text
from vbgraph.queue_policy import QueuePolicy
from vbgraph.registry import Registry

DATA = Path(__file__).parent / "data"


def at(name: str, line: int, column: int) -> SourceLocation:
    return SourceLocation(str(DATA / name), line, column)


def spec_error(name: str, overrides: tuple[str, ...] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(DATA / name, env={}, overrides=overrides)
    return info.value


def text_error(text: str) -> ConfigError:
    doc = load_graph_text(text, name="g.yaml", env={})
    with pytest.raises(ConfigError) as info:
        spec_from_data(doc.data, doc.source_map)
    return info.value


def graph_data() -> dict[str, Any]:
    return {"nodes": {"gain": {"type": "gain", "db": -6}, "out": {"type": "sink"}}}


class TestChainsAndMappings:
    def test_chains_expand_to_one_edge_per_arrow_in_order(self) -> None:
        """'a -> b.in -> c' becomes a→b.in then b→c, between the edges around it."""
        spec, _ = spec_from_data(
            {
                "nodes": {n: {"type": "x"} for n in "abcd"},
                "edges": ["d -> a", "a -> b.in -> c", {"from": "c.out", "to": "d.in"}],
            }
        )
        assert [(str(e.src), str(e.dst)) for e in spec.edges] == [
            ("d", "a"),
            ("a", "b.in"),
            ("b", "c"),
            ("c.out", "d.in"),
        ]

    def test_every_expanded_edge_remembers_where_it_was_written(self) -> None:
        """Both edges of one chain map back to the chain's place in the file."""
        text = "nodes: {}\nedges:\n  - a -> b -> c\n  - {from: c, to: a}\n"
        doc = load_graph_text(text, name="g.yaml")
        _, locations = spec_from_data(doc.data, doc.source_map)
        assert locations.edge_paths == [("edges", 0), ("edges", 0), ("edges", 1)]
        assert locations.edge(1) == SourceLocation("g.yaml", 3, 5)
        assert locations.edge(2, "to") == SourceLocation("g.yaml", 4, 19)
        assert locations.edge(1, "to") == SourceLocation("g.yaml", 3, 5)
        assert locations.edge(7) is None

    def test_mapping_edges_carry_their_queue(self) -> None:
        """{from, to, queue} keeps the queue settings on that edge only."""
        spec, _ = spec_from_data(
            {
                "nodes": {"a": {"type": "x"}, "b": {"type": "y"}},
                "edges": [
                    {"from": "a", "to": "b", "queue": {"capacity": 4, "policy": "drop_oldest"}},
                    "a -> b",
                ],
            }
        )
        assert spec.edges[0].queue == QueueSpec(capacity=4, policy=QueuePolicy.DROP_OLDEST)
        assert spec.edges[0].dst == Endpoint(node="b")
        assert spec.edges[1].queue is None

    def test_missing_or_null_edges_mean_no_edges(self) -> None:
        """A graph of lone nodes needs no edges key."""
        assert spec_from_data({"nodes": {}})[0].edges == []
        assert spec_from_data({"nodes": {}, "edges": None})[0].edges == []

    def test_include_is_not_part_of_the_spec(self) -> None:
        """The loader has merged includes already; the key is dropped."""
        spec, _ = spec_from_data({"include": ["x.yaml"], "nodes": {}})
        assert spec.nodes == {}

    def test_locations_of_a_builder_graph_are_all_none(self) -> None:
        """Without a source map every lookup returns None."""
        locations = SpecLocations()
        assert locations.node("a") is None and locations.at(("edges", 0)) is None


class TestOverrides:
    def test_set_replaces_a_param_with_the_value_read_as_yaml(self) -> None:
        """gain.db=-3 sets the float -3.0; out.path=x.wav sets a string."""
        data = apply_overrides(graph_data(), ["gain.db=-3.0", "out.path=x.wav"])
        assert data["nodes"]["gain"] == {"type": "gain", "db": -3.0}
        assert data["nodes"]["out"] == {"type": "sink", "path": "x.wav"}

    def test_set_reads_lists_booleans_and_empty_values(self) -> None:
        """Values are YAML: [1, 2], true, and an empty value is the empty string."""
        data = apply_overrides(graph_data(), ["out.rates=[1, 2]", "out.on=true", "out.tag="])
        assert data["nodes"]["out"] == {"type": "sink", "rates": [1, 2], "on": True, "tag": ""}

    def test_set_may_reach_into_a_nested_param(self) -> None:
        """a.b.c=1 sets c inside param b, creating b when needed."""
        data = apply_overrides(graph_data(), ["out.opts.level=2", "out.opts.name=x"])
        assert data["nodes"]["out"]["opts"] == {"level": 2, "name": "x"}

    def test_set_writes_into_the_nested_node_form(self) -> None:
        """For {type: x, params: {...}} the override lands inside params."""
        data = {"nodes": {"n": {"type": "x", "params": {"a": 1}}}}
        assert apply_overrides(data, ["n.a=2"])["nodes"]["n"]["params"] == {"a": 2}

    def test_a_value_may_contain_an_equals_sign(self) -> None:
        """Only the first '=' separates target and value."""
        data = apply_overrides(graph_data(), ["out.expr=a=b"])
        assert data["nodes"]["out"]["expr"] == "a=b"

    @pytest.mark.parametrize(
        ("item", "message"),
        [
            ("gain", "expected NODE.PARAM=VALUE"),
            ("gain=1", "expected NODE.PARAM=VALUE"),
            ("gain..db=1", "expected NODE.PARAM=VALUE"),
            ("mic.db=1", "no node 'mic' in the graph \\(nodes: gain, out\\)"),
            ("gain.type=tone", "type cannot be overridden"),
            ("gain.db=[1", "not valid YAML"),
        ],
    )
    def test_bad_overrides_name_themselves(self, item: str, message: str) -> None:
        """Each malformed --set raises ConfigError quoting it and saying why."""
        with pytest.raises(ConfigError, match=message) as info:
            apply_overrides(graph_data(), [item])
        assert repr(item) in str(info.value)

    def test_override_paths_maps_each_set_to_its_place(self) -> None:
        """The paths are where in the document each override wrote."""
        assert override_paths(["a.b=1", "a.c.d=2", "junk"]) == {
            ("nodes", "a", "b"): "a.b=1",
            ("nodes", "a", "c", "d"): "a.c.d=2",
        }

    def test_load_applies_overrides_before_validation(self) -> None:
        """load(path, overrides=...) gives the spec with the new values."""
        graph = load(DATA / "good_chain.yaml", env={}, overrides=["lo.db=-12", "src.frames=5"])
        spec = graph.to_spec()
        assert spec.nodes["lo"].params == {"db": -12}
        assert spec.nodes["src"].params["frames"] == 5

    def test_an_error_in_an_overridden_value_names_the_override(self, registry: Registry) -> None:
        """A bad --set value is reported with the --set text, at the param's key."""
        graph = load(DATA / "good_chain.yaml", env={}, overrides=["lo.db=loud"])
        with pytest.raises(ConfigError) as info:
            graph.compile(registry=registry)
        err = info.value
        assert (err.location, err.node_id, err.field) == (
            at("good_chain.yaml", 11, 24),
            "lo",
            "db",
        )
        assert err.message.endswith("(got 'loud') (from --set 'lo.db=loud')")

    def test_an_unknown_param_set_on_the_command_line_is_placed_at_its_node(
        self, registry: Registry
    ) -> None:
        """A param the file does not have is placed at the node it was set on."""
        graph = load(DATA / "good_chain.yaml", env={}, overrides=["lo.dbb=1"])
        with pytest.raises(ConfigError) as info:
            graph.compile(registry=registry)
        assert info.value.location == at("good_chain.yaml", 11, 9)
        assert info.value.message == "unknown field (allowed: db) (from --set 'lo.dbb=1')"

    def test_environment_variables_flow_into_params(self) -> None:
        """${SRC_RATE:-16000} takes the environment's value, typed as an int."""
        spec = load(DATA / "good_chain.yaml", env={"SRC_RATE": "8000"}).to_spec()
        assert spec.nodes["src"].params["rate"] == 8000
        spec = load(DATA / "good_chain.yaml", env={}).to_spec()
        assert spec.nodes["src"].params["rate"] == 16000


class TestPlacedErrors:
    def test_a_node_without_type_is_placed_at_the_node(self) -> None:
        """The error names the node and field 'type', at the node's mapping."""
        err = spec_error("bad_missing_type.yaml")
        assert err.location == at("bad_missing_type.yaml", 4, 5)
        assert (err.node_id, err.field) == ("src", "type")
        assert "Field required" in err.message

    def test_a_bad_node_id_is_placed_at_the_key(self) -> None:
        """An id edges could not name is reported where the key is written."""
        err = spec_error("bad_node_id.yaml")
        assert err.location == at("bad_node_id.yaml", 4, 3)
        assert err.node_id == "2nd sink"
        assert "must start with a letter" in err.message

    def test_a_malformed_chain_is_placed_at_the_chain(self) -> None:
        """The chain string's start, with field edges[i]."""
        err = spec_error("bad_chain.yaml")
        assert err.location == at("bad_chain.yaml", 6, 5)
        assert (err.node_id, err.field) == (None, "edges[0]")
        assert "'src -> -> sink' is not a chain" in err.message

    def test_a_bad_queue_policy_is_placed_at_the_value_and_lists_the_choices(self) -> None:
        """The policy value, field edges[0].queue.policy, the allowed policies."""
        err = spec_error("bad_queue_policy.yaml")
        assert err.location == at("bad_queue_policy.yaml", 8, 34)
        assert err.field == "edges[0].queue.policy"
        assert "'block', 'drop_oldest' or 'drop_newest'" in err.message
        assert "(got 'drop_everything')" in err.message
        assert str(err).startswith(f"{at('bad_queue_policy.yaml', 8, 34)}: field ")

    def test_an_unknown_top_level_key_lists_the_allowed_ones(self) -> None:
        """A typo at the top level is placed at its key."""
        err = text_error("nodes: {}\nedgse: []\n")
        assert err.location == SourceLocation("g.yaml", 2, 1)
        assert err.field == "edgse"
        assert "allowed: version, name, description, include, nodes, edges" in err.message

    def test_an_unknown_edge_key_lists_from_to_queue(self) -> None:
        """A typo in an edge mapping is placed at its key."""
        err = text_error("nodes: {}\nedges:\n  - {from: a, to: b, queu: {}}\n")
        assert err.location == SourceLocation("g.yaml", 3, 22)
        assert err.field == "edges[0].queu"
        assert "(allowed: from, to, queue)" in err.message

    def test_an_unknown_queue_key_lists_the_queue_settings(self) -> None:
        """A typo inside queue names capacity, policy, max_ms, interruptible."""
        err = text_error("nodes: {}\nedges:\n  - {from: a, to: b, queue: {size: 2}}\n")
        assert err.location == SourceLocation("g.yaml", 3, 30)
        assert "(allowed: capacity, policy, max_ms, interruptible)" in err.message

    def test_errors_in_later_edges_map_back_through_chains(self) -> None:
        """An edge after a chain is named by its index in the file, not the expanded one."""
        err = text_error("nodes: {}\nedges:\n  - a -> b -> c\n  - {from: a.x.y, to: b}\n")
        assert err.field == "edges[1].from"
        assert err.location == SourceLocation("g.yaml", 4, 12)
        assert "'a.x.y' is not an edge endpoint" in err.message
        assert "got" not in err.message

    def test_a_node_that_is_not_a_mapping_says_so(self) -> None:
        """A scalar where a node belongs is placed at it, in YAML terms."""
        err = text_error("nodes:\n  mic: 3\n")
        assert (err.location, err.node_id) == (SourceLocation("g.yaml", 2, 8), "mic")
        assert "valid dictionary (got 3)" in err.message
        assert "NodeSpec" not in err.message

    def test_edges_that_are_not_a_list_are_refused(self) -> None:
        """edges: must be a list."""
        err = text_error("nodes: {}\nedges: a -> b\n")
        assert (err.location, err.field) == (SourceLocation("g.yaml", 2, 8), "edges")

    def test_only_the_first_error_is_spelt_out_and_the_rest_counted(self) -> None:
        """Several problems give one message and 'and N more errors'."""
        err = text_error("nodes:\n  a: {type: 1}\n  b: {type: 2}\n  c: {type: 3}\n")
        assert err.message.endswith("; and 2 more errors")


class TestFormatField:
    def test_fields_read_like_python_access(self) -> None:
        """Keys join with dots, indexes go in brackets."""
        assert format_field(("edges", 2, "queue", "policy")) == "edges[2].queue.policy"
        assert format_field(("names", 0)) == "names[0]"
        assert format_field(()) == ""
