"""Tests for ``tee``: dynamic outputs, every frame to each, name validation."""

from __future__ import annotations

import pytest
from nodes_support import Collect, run_graph, test_registry

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.nodes.tee import Tee


def test_each_output_gets_every_frame_as_the_same_object() -> None:
    """Three branches see the same 10 frame objects in the same order."""
    g = Graph("tee")
    t = g.add("tee", outputs=["x", "y", "z"])
    g.chain(g.add("tone", duration_ms=200), t)
    for name in ("x", "y", "z"):
        g.connect(t[name], g.add("test.collect", id=f"sink_{name}"))
    result, nodes = run_graph(g)
    assert result.ok
    sinks = [nodes[f"sink_{n}"] for n in ("x", "y", "z")]
    assert all(isinstance(s, Collect) for s in sinks)
    frames = [s.frames for s in sinks if isinstance(s, Collect)]
    assert len(frames[0]) == 10
    for i in range(10):
        assert frames[0][i] is frames[1][i] is frames[2][i]


def test_the_ports_are_the_names_in_outputs() -> None:
    """ports() gives one input 'in' and the listed outputs, in order."""
    inputs, outputs = Tee.ports(Tee.Params(outputs=["left", "right"]))
    assert list(inputs) == ["in"]
    assert list(outputs) == ["left", "right"]
    assert list(Tee.ports(Tee.Params())[1]) == ["a", "b"]


def test_each_branch_is_negotiated_on_its_own() -> None:
    """A branch into a 16 kHz mixer gets a resampler; the other branch keeps 8 kHz."""
    g = Graph("branches")
    t = g.add("tee")
    m = g.add("mixer", inputs=["only"], rate=16000)
    g.chain(g.add("tone", rate=8000), t)
    g.connect(t["a"], m["only"])
    g.connect(m, g.add("test.collect", id="mixed"))
    g.connect(t["b"], g.add("test.collect", id="raw"))
    plan = g.compile(test_registry())
    formats = {(e.src, e.dst): e.fmt for e in plan.edges}
    assert formats[("tee", "raw")] == AudioFormat(8000)
    assert formats[("tee~mixer.resample", "mixer")] == AudioFormat(16000)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([], "at least one"),
        (["a", "a"], "twice"),
        (["a b"], "not an identifier"),
        (["1x"], "not an identifier"),
    ],
)
def test_bad_output_names_are_config_errors(outputs: list[str], message: str) -> None:
    """Names must be unique identifiers, and there must be at least one."""
    g = Graph("bad")
    g.add("tee", id="t", outputs=outputs)
    with pytest.raises(ConfigError, match=message) as info:
        g.compile()
    assert info.value.field is not None and "outputs" in info.value.field
