"""Tests for ``passthrough``: same objects out, any kind, formats carried on."""

from __future__ import annotations

from nodes_support import Collect, run_graph, test_registry

from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.nodes.recorder import Recorder


def test_every_frame_goes_on_as_the_same_object() -> None:
    """The frames after passthrough are the very frames before it."""
    g = Graph("pass")
    g.chain(
        g.add("tone", duration_ms=200),
        g.add("recorder", id="before", keep=True),
        g.add("passthrough"),
        g.add("test.collect", id="after"),
    )
    result, nodes = run_graph(g)
    before, after = nodes["before"], nodes["after"]
    assert isinstance(before, Recorder) and isinstance(after, Collect)
    assert before.kept is not None
    assert result.ok and len(after.frames) == 10
    assert all(a is b for a, b in zip(after.frames, before.kept, strict=True))


def test_text_frames_pass_too() -> None:
    """Frames of any kind go through."""
    g = Graph("text")
    g.chain(g.add("test.texts", count=3), g.add("passthrough"), g.add("test.collect", id="sink"))
    _, nodes = run_graph(g)
    sink = nodes["sink"]
    assert isinstance(sink, Collect)
    assert [getattr(f, "text", None) for f in sink.frames] == ["t0", "t1", "t2"]


def test_the_audio_format_is_carried_on_for_negotiation() -> None:
    """Behind a passthrough, an 8 kHz stream still gets a resampler in front of a 16 kHz mixer."""
    g = Graph("negotiate")
    m = g.add("mixer", inputs=["a"], rate=16000)
    g.chain(g.add("tone", rate=8000), g.add("passthrough"), m["a"])
    g.connect(m, g.add("test.collect"))
    plan = g.compile(test_registry())
    assert "passthrough~mixer.resample" in plan.nodes
    (edge,) = [e for e in plan.edges if e.dst == "mixer"]
    assert edge.fmt == AudioFormat(16000)
