"""Tests for compiling a spec into a plan: types, params, ports, kinds, cycles, placement."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.errors import (
    ConfigError,
    FormatNegotiationError,
    GraphCycleError,
    SourceLocation,
    UnknownNodeTypeError,
    UnknownPortError,
)
from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.graph.load import load, loads
from vbgraph.graph.plan import QueueSettings
from vbgraph.queue_policy import QueuePolicy
from vbgraph.registry import Registry

DATA = Path(__file__).parent / "data"


def at(name: str, line: int, column: int) -> SourceLocation:
    return SourceLocation(str(DATA / name), line, column)


def compile_error(name: str, registry: Registry) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(DATA / name, env={}).compile(registry=registry)
    return info.value


# Every bad graph: the error class, where, which node and field, and what it says.
BAD = [
    (
        "bad_unknown_type.yaml",
        UnknownNodeTypeError,
        (5, 16),
        "gain",
        "type",
        "unknown node type 't.gian' (did you mean 't.gain'",
    ),
    (
        "bad_unknown_param.yaml",
        ConfigError,
        (6, 5),
        "gain",
        "dbb",
        "unknown field (allowed: db)",
    ),
    (
        "bad_param_type.yaml",
        ConfigError,
        (4, 28),
        "gain",
        "db",
        "Input should be a valid number, unable to parse string as a number (got 'loud')",
    ),
    (
        "bad_edge_unknown_node.yaml",
        ConfigError,
        (6, 21),
        "snik",
        "to",
        "edge 'src -> snik' refers to unknown node 'snik' (did you mean 'sink'? nodes: src, sink)",
    ),
    (
        "bad_unknown_port.yaml",
        UnknownPortError,
        (8, 12),
        "gain",
        "from",
        "node 'gain' has no output port 'output' (outputs: out)",
    ),
    (
        "bad_ambiguous_port.yaml",
        UnknownPortError,
        (7, 5),
        "mix",
        "to",
        "node 'mix' has several input ports (a, b); name one, e.g. 'mix.a'",
    ),
    (
        "bad_frame_kinds.yaml",
        ConfigError,
        (6, 5),
        "sink",
        "to",
        "edge 'words -> sink': words.out produces text but sink.in accepts audio",
    ),
    (
        "bad_duplicate_edge.yaml",
        ConfigError,
        (7, 5),
        "sink",
        "to",
        "edge 'src.out -> sink.in' is written twice (first at {data}/bad_duplicate_edge.yaml:6:5)",
    ),
    (
        "bad_cycle.yaml",
        GraphCycleError,
        (10, 5),
        "a",
        "to",
        "data edges form a cycle: a -> b -> c -> a (send feedback as bus events instead)",
    ),
    (
        "bad_format.yaml",
        FormatNegotiationError,
        (6, 5),
        "asr",
        "to",
        "edge phone.out -> asr.in: opus/8000Hz/1ch does not fit what 'asr.in' accepts "
        "(pcm_s16le/anyHz/anych): no converter handles opus (packet codecs stay at transports)",
    ),
    (
        "bad_port_params.yaml",
        ConfigError,
        (4, 31),
        "sink",
        "rates",
        "rates may not be empty",
    ),
]


class TestErrorsNameThePlace:
    @pytest.mark.parametrize(
        ("name", "kind", "line_col", "node_id", "field", "message"),
        BAD,
        ids=[b[0].removesuffix(".yaml") for b in BAD],
    )
    def test_each_bad_graph_fails_at_file_line_column_with_node_and_field(
        self,
        registry: Registry,
        name: str,
        kind: type[ConfigError],
        line_col: tuple[int, int],
        node_id: str,
        field: str,
        message: str,
    ) -> None:
        """The error's class, location, node id, field and message are all exact."""
        err = compile_error(name, registry)
        assert type(err) is kind
        assert err.location == at(name, *line_col)
        assert (err.node_id, err.field) == (node_id, field)
        assert err.message.startswith(message.format(data=DATA))
        assert str(err) == (
            f"{at(name, *line_col)}: node '{node_id}' field '{field}': {err.message}"
        )

    def test_errors_are_value_errors_too(self, registry: Registry) -> None:
        """Callers that catch ValueError still catch graph errors."""
        with pytest.raises(ValueError):
            load(DATA / "bad_cycle.yaml", env={}).compile(registry=registry)

    def test_a_cycle_through_one_node_shows_the_short_path(self, registry: Registry) -> None:
        """A node feeding itself is the cycle 'a -> a'."""
        graph = loads("nodes:\n  a: {type: t.mix}\nedges:\n  - a -> a.b\n", name="g.yaml")
        with pytest.raises(GraphCycleError, match="cycle: a -> a "):
            graph.compile(registry=registry)

    def test_a_long_generated_graph_is_checked_without_recursion(self, registry: Registry) -> None:
        """Thousands of nodes in a chain compile, and a cycle at the end is still found."""
        g = Graph()
        refs = [g.add("t.source"), *(g.add("t.gain") for _ in range(3000))]
        g.chain(*refs)
        assert len(g.compile(registry=registry).nodes) == 3001
        g.connect(refs[-1], refs[-2])
        with pytest.raises(GraphCycleError, match="cycle: gain2999 -> gain3000 -> gain2999 "):
            g.compile(registry=registry)

    def test_an_unknown_type_gets_no_hint_when_nothing_is_close(self, registry: Registry) -> None:
        """A type far from every registered name is just unknown."""
        graph = loads("nodes:\n  a: {type: qqqqqqqq}\n", name="g.yaml")
        with pytest.raises(UnknownNodeTypeError) as info:
            graph.compile(registry=registry)
        assert info.value.message == "unknown node type 'qqqqqqqq'"

    def test_did_you_mean_covers_types_of_the_parent_registry(self, registry: Registry) -> None:
        """A typo of a built-in type is suggested even from a private registry."""
        graph = loads("nodes:\n  a: {type: convert.resampel}\n", name="g.yaml")
        with pytest.raises(UnknownNodeTypeError, match=r"did you mean 'convert\.resample'"):
            graph.compile(registry=registry)

    def test_builder_graphs_fail_with_node_and_field_but_no_location(
        self, registry: Registry
    ) -> None:
        """Without a file there is no location; the node and field remain."""
        g = Graph()
        g.add("t.gain", id="g", db="loud")
        with pytest.raises(ConfigError) as info:
            g.compile(registry=registry)
        assert (info.value.location, info.value.node_id, info.value.field) == (None, "g", "db")
        assert str(info.value).startswith("node 'g' field 'db': ")

    def test_a_param_on_a_type_without_params_says_so(self, registry: Registry) -> None:
        """An unknown field on a node type with no params does not list graph keys."""
        graph = loads("nodes:\n  m: {type: t.mix, level: 1}\n", name="g.yaml")
        with pytest.raises(ConfigError) as info:
            graph.compile(registry=registry)
        assert info.value.message == "unknown field (this node type takes no params)"
        assert info.value.location == SourceLocation("g.yaml", 2, 20)


class TestPorts:
    def test_a_bare_node_uses_its_only_port(self, registry: Registry) -> None:
        """t.split has one input, so 'x -> split' needs no port name."""
        g = Graph()
        src, split = g.add("t.source"), g.add("t.split")
        g.connect(src, split)
        plan = g.compile(registry=registry)
        assert [(e.src_port, e.dst_port) for e in plan.edges] == [("out", "in")]

    def test_an_ambiguous_output_is_refused_too(self, registry: Registry) -> None:
        """t.split has two outputs and none is called out."""
        g = Graph()
        src, split, sink = g.add("t.source"), g.add("t.split"), g.add("t.sink")
        g.chain(src, split, sink)
        with pytest.raises(UnknownPortError, match="several output ports \\(left, right\\)"):
            g.compile(registry=registry)

    def test_named_ports_are_used_as_given(self, registry: Registry) -> None:
        """split.right -> sink connects the right output."""
        g = Graph()
        src, split, sink = g.add("t.source"), g.add("t.split"), g.add("t.sink")
        g.chain(src, split)
        g.connect(split["right"], sink)
        plan = g.compile(registry=registry)
        assert plan.edges_into("sink")[0].src_port == "right"

    def test_a_node_without_inputs_cannot_be_fed(self, registry: Registry) -> None:
        """An edge into a source says it has no input ports."""
        g = Graph()
        a, b = g.add("t.source"), g.add("t.source")
        g.connect(a, b)
        with pytest.raises(UnknownPortError, match="node 'source2' has no input ports"):
            g.compile(registry=registry)

    def test_any_frame_port_takes_audio_and_text(self, registry: Registry) -> None:
        """A port of every kind accepts text and audio producers."""
        g = Graph()
        g.connect(g.add("t.text"), g.add("t.split"))
        g.compile(registry=registry)


class TestPlan:
    def test_the_good_graph_compiles_in_topological_order(self, registry: Registry) -> None:
        """Sources first, every producer before its consumers, converters after producers."""
        plan = load(DATA / "good_chain.yaml", env={}).compile(registry=registry)
        order = list(plan.nodes)
        assert order == ["src", "hi", "lo", "mix", "mix~sink.resample", "sink"]
        for edge in plan.edges:
            assert order.index(edge.src) < order.index(edge.dst)
        assert plan.name == "chain"
        assert plan.source == str(DATA / "good_chain.yaml")

    def test_queue_settings_reach_the_planned_edge(self, registry: Registry) -> None:
        """The {from, to, queue} edge keeps its queue; the others get the defaults."""
        plan = load(DATA / "good_chain.yaml", env={}).compile(registry=registry)
        (lo_mix,) = [e for e in plan.edges if e.src == "lo" and e.dst == "mix"]
        assert lo_mix.queue == QueueSettings(4, QueuePolicy.DROP_OLDEST, 200.0, None)
        (hi_mix,) = [e for e in plan.edges if e.src == "hi"]
        assert hi_mix.queue == QueueSettings()

    def test_every_planned_edge_knows_where_it_was_written(self, registry: Registry) -> None:
        """Both edges of a chain point at the chain; a converter's edges at the edge it serves."""
        plan = load(DATA / "good_chain.yaml", env={}).compile(registry=registry)
        chain = at("good_chain.yaml", 15, 5)
        assert {e.location for e in plan.edges if e.src in ("src", "hi") and e.dst != "lo"} == {
            chain
        }
        assert plan.nodes["mix~sink.resample"].location == chain

    def test_params_are_validated_into_the_type_model(self, registry: Registry) -> None:
        """Raw YAML values become the typed params the node will see."""
        plan = load(DATA / "good_chain.yaml", env={}).compile(registry=registry)
        assert plan.nodes["lo"].params.model_dump() == {"db": -6.0}
        assert plan.nodes["src"].type_name == "t.source"

    def test_relative_paths_resolve_against_the_graph_file(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        """A GraphPath param is joined to the graph file's folder; absolute ones stay."""
        graph_file = tmp_path / "g.yaml"
        graph_file.write_text(
            "nodes:\n  a: {type: t.sink, path: out/a.wav}\n  b: {type: t.sink, path: /abs.wav}\n"
        )
        plan = load(graph_file).compile(registry=registry)
        assert plan.nodes["a"].params.model_dump()["path"] == str(tmp_path / "out" / "a.wav")
        assert plan.nodes["b"].params.model_dump()["path"] == "/abs.wav"

    def test_loads_resolves_paths_against_base_dir(self, registry: Registry) -> None:
        """Text graphs resolve relative paths against the base_dir they were given."""
        plan = loads("nodes:\n  a: {type: t.sink, path: x.wav}\n", base_dir="/srv").compile(
            registry=registry
        )
        assert plan.nodes["a"].params.model_dump()["path"] == "/srv/x.wav"

    def test_unconnected_nodes_are_planned_too(self, registry: Registry) -> None:
        """A node with no edges is still part of the plan."""
        plan = loads("nodes:\n  a: {type: t.source}\n").compile(registry=registry)
        assert list(plan.nodes) == ["a"] and plan.edges == ()

    def test_audio_edges_carry_the_negotiated_format(self, registry: Registry) -> None:
        """An audio edge's format is its producer's; same_as outputs repeat their input."""
        plan = load(DATA / "good_chain.yaml", env={"SRC_RATE": "8000"}).compile(registry=registry)
        fmts = {e.name: e.fmt for e in plan.edges}
        assert fmts["src.out -> hi.in"] == AudioFormat(8000)
        assert fmts["hi.out -> mix.a"] == AudioFormat(8000)
        assert fmts["mix~sink.resample.out -> sink.in"] == AudioFormat(48000)

    def test_text_edges_have_no_format(self, registry: Registry) -> None:
        """Only audio is negotiated."""
        g = Graph()
        g.connect(g.add("t.text"), g.add("t.split"))
        (edge,) = g.compile(registry=registry).edges
        assert edge.fmt is None
