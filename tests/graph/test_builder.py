"""Tests for the Python graph builder: add, connect, chain, round trips, equal plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.errors import ConfigError, UsageError
from vbgraph.graph.builder import Graph, NodeRef, PortRef
from vbgraph.graph.load import load, loads
from vbgraph.graph.plan import Plan
from vbgraph.graph.spec import Endpoint, QueueSpec
from vbgraph.queue_policy import QueuePolicy
from vbgraph.registry import Registry

DATA = Path(__file__).parent / "data"


def edges(g: Graph) -> list[tuple[str, str]]:
    return [(str(e.src), str(e.dst)) for e in g.to_spec().edges]


def plan_shape(plan: Plan) -> tuple[object, ...]:
    """What two plans of the same graph must share (locations aside)."""
    nodes = [
        (n.id, n.type_name, n.params, n.inserted_for, tuple(n.inputs), tuple(n.outputs))
        for n in plan.nodes.values()
    ]
    links = [(e.src, e.src_port, e.dst, e.dst_port, e.queue, e.fmt) for e in plan.edges]
    return plan.name, nodes, links


class TestAdd:
    def test_ids_default_to_the_types_last_part_numbered_from_two(self) -> None:
        """gain, gain2, gain3; file.source → source."""
        g = Graph()
        ids = [g.add(t).id for t in ("gain", "gain", "file.source", "gain")]
        assert ids == ["gain", "gain2", "source", "gain3"]

    def test_auto_ids_skip_ids_already_taken(self) -> None:
        """An explicit 'gain2' makes the next automatic one 'gain3'."""
        g = Graph()
        g.add("gain")
        g.add("gain", id="gain2")
        assert g.add("gain").id == "gain3"

    def test_auto_ids_are_valid_ids_whatever_the_type_name(self) -> None:
        """A type whose last part starts with a digit or has odd characters still gets an id."""
        g = Graph()
        assert g.add("tts.11labs").id == "_11labs"
        assert g.add("acme.de+noise").id == "de_noise"

    def test_add_returns_a_ref_to_the_node(self) -> None:
        """The ref knows its graph, id and type, and has no port (the default)."""
        g = Graph()
        ref = g.add("gain", id="g", db=-6)
        assert isinstance(ref, NodeRef)
        assert (ref.graph, ref.id, ref.type, ref.port) == (g, "g", "gain", None)
        assert g.to_spec().nodes["g"].params == {"db": -6}
        assert "g" in g and list(g) == ["g"] and len(g) == 1

    def test_a_repeated_id_is_refused(self) -> None:
        """Two nodes cannot share an id."""
        g = Graph()
        g.add("gain", id="g")
        with pytest.raises(ConfigError, match="node id 'g' is used twice"):
            g.add("tone", id="g")

    @pytest.mark.parametrize("node_id", ["9g", "a.b", "a b"])
    def test_an_invalid_id_is_a_config_error(self, node_id: str) -> None:
        """Ids follow the same rule as in YAML; the error is ConfigError, not pydantic's."""
        with pytest.raises(ConfigError, match="must start with a letter") as info:
            Graph().add("gain", id=node_id)
        assert info.value.node_id == node_id

    def test_an_empty_type_is_a_config_error(self) -> None:
        """The type is required."""
        with pytest.raises(ConfigError) as info:
            Graph().add("", id="x")
        assert (info.value.node_id, info.value.field) == ("x", "type")


class TestConnect:
    def test_refs_ports_and_strings_all_name_endpoints(self) -> None:
        """ref, ref['port'], ref.at('port') and 'node.port' are interchangeable."""
        g = Graph()
        a, b = g.add("t.source", id="a"), g.add("t.mix", id="b")
        g.connect(a, b["a"])
        g.connect("a.out", b.at("b"))
        assert edges(g) == [("a", "b.a"), ("a.out", "b.b")]
        assert isinstance(b["a"], PortRef) and b["a"].endpoint() == Endpoint(node="b", port="a")

    def test_queue_settings_make_a_queue_spec(self) -> None:
        """capacity, policy, max_ms and interruptible go into the edge's queue."""
        g = Graph()
        a, b = g.add("x"), g.add("y")
        g.connect(a, b, capacity=4, policy="drop_oldest", max_ms=60, interruptible=True)
        g.connect(a, b)
        queues = [e.queue for e in g.to_spec().edges]
        assert queues == [
            QueueSpec(capacity=4, policy=QueuePolicy.DROP_OLDEST, max_ms=60, interruptible=True),
            None,
        ]

    def test_bad_queue_settings_are_config_errors_naming_the_field(self) -> None:
        """An unknown policy is reported as field queue.policy."""
        g = Graph()
        a, b = g.add("x"), g.add("y")
        with pytest.raises(ConfigError) as info:
            g.connect(a, b, policy="drop_all")
        assert info.value.field == "queue.policy"
        assert g.to_spec().edges == []

    def test_unknown_nodes_and_foreign_refs_are_refused(self) -> None:
        """A string naming no node is a ConfigError; a ref of another graph a UsageError."""
        g, other = Graph("g"), Graph("other")
        a = g.add("x")
        stranger = other.add("y")
        with pytest.raises(ConfigError, match="no node 'zz' in graph 'g'"):
            g.connect(a, "zz")
        with pytest.raises(UsageError, match="belongs to another graph"):
            g.connect(a, stranger)
        with pytest.raises(ConfigError, match="not an edge endpoint"):
            g.connect(a, "x.y.z")
        with pytest.raises(UsageError, match="expected a node ref"):
            g.connect(a, 3)  # type: ignore[arg-type]


class TestChain:
    def test_chain_connects_consecutive_nodes(self) -> None:
        """chain(a, b, c) is a → b → c."""
        g = Graph()
        a, b, c = g.add("x", id="a"), g.add("y", id="b"), g.add("z", id="c")
        g.chain(a, b, c)
        assert edges(g) == [("a", "b"), ("b", "c")]

    def test_a_port_in_the_middle_is_the_input_as_in_yaml(self) -> None:
        """chain(a, b['in'], c) and chain('a', 'b.in', 'c') both mean a→b.in, b→c."""
        g = Graph()
        a, b, c = g.add("x", id="a"), g.add("y", id="b"), g.add("z", id="c")
        g.chain(a, b["in"], c)
        g.chain("a", "b.in", "c")
        assert edges(g) == [("a", "b.in"), ("b", "c")] * 2

    def test_a_port_on_the_first_ref_is_an_output(self) -> None:
        """chain(a['left'], b) starts from a's left output."""
        g = Graph()
        a, b = g.add("x", id="a"), g.add("y", id="b")
        g.chain(a["left"], b)
        assert edges(g) == [("a.left", "b")]

    def test_queue_settings_apply_to_every_edge_of_the_chain(self) -> None:
        """chain(..., capacity=2) sets the queue of each edge."""
        g = Graph()
        g.chain(g.add("x"), g.add("y"), g.add("z"), capacity=2)
        assert [e.queue for e in g.to_spec().edges] == [QueueSpec(capacity=2)] * 2

    def test_a_chain_needs_two_nodes(self) -> None:
        """chain(a) is misuse."""
        g = Graph()
        with pytest.raises(UsageError, match="at least two"):
            g.chain(g.add("x"))


class TestRoundTrip:
    def test_yaml_to_graph_to_yaml_and_back_gives_an_equal_spec(self) -> None:
        """A file with chains, ports, a queue and a description survives to_yaml."""
        graph = load(DATA / "good_chain.yaml", env={})
        again = loads(graph.to_yaml())
        assert again.to_spec() == graph.to_spec()
        assert again.to_spec().description == "a source through two gains into a mixer and a sink"

    def test_a_builder_graph_survives_to_yaml(self) -> None:
        """Queues with every setting, ports, nested params and unicode round-trip."""
        g = Graph("rt", description="ünïcode")
        a = g.add("t.source", rate=8000, extra={"k": [1, 2.5, None, True]})
        b = g.add("t.mix", id="m-1")
        c = g.add("t.sink", rates=[48000], label="größe")
        g.connect(a, b["a"], capacity=3, policy="drop_newest", max_ms=12.5, interruptible=False)
        g.chain(a, b["b"], c)
        assert loads(g.to_yaml()).to_spec() == g.to_spec()

    def test_params_that_are_not_plain_data_cannot_be_written(self) -> None:
        """to_yaml refuses objects YAML cannot hold, naming the graph."""
        g = Graph("odd")
        g.add("x", thing=object())
        with pytest.raises(UsageError, match="graph 'odd' cannot be written as YAML"):
            g.to_yaml()

    def test_a_loaded_graph_keeps_its_locations_after_additions(self, registry: Registry) -> None:
        """Nodes added to a loaded graph do not erase where the file's nodes were."""
        graph = load(DATA / "bad_param_type.yaml")
        graph.add("t.sink", id="extra")
        with pytest.raises(ConfigError) as info:
            graph.compile(registry=registry)
        assert info.value.location is not None and info.value.location.line == 4


class TestSamePlan:
    def test_builder_and_yaml_of_one_graph_compile_to_equal_plans(self, registry: Registry) -> None:
        """Same node ids, types, params, converters and edges with formats and queues."""
        from_yaml = load(DATA / "good_chain.yaml", env={}).compile(registry=registry)
        g = Graph("chain", description="a source through two gains into a mixer and a sink")
        src = g.add("t.source", id="src", rate=16000, frames=3)
        hi, lo = g.add("t.gain", id="hi", db=0), g.add("t.gain", id="lo", db=-6)
        mix = g.add("t.mix", id="mix")
        sink = g.add("t.sink", id="sink", rates=[48000], channels=[1, 2])
        g.chain(src, hi, mix["a"], sink)
        g.connect(src, lo)
        g.connect(lo["out"], mix["b"], capacity=4, policy="drop_oldest", max_ms=200)
        from_code = g.compile(registry=registry)
        assert plan_shape(from_code) == plan_shape(from_yaml)
        assert any(n.inserted_for for n in from_code.nodes.values())
        assert g.to_spec() == load(DATA / "good_chain.yaml", env={}).to_spec()
