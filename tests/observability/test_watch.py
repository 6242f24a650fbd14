"""The per-node processing-time probes: swapped in for one frame, swapped out, own work only."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar

import pytest
from obs_support import histogram, memory_telemetry, metrics, run
from pydantic import Field

from vbgraph.errors import UsageError
from vbgraph.frames import Frame
from vbgraph.graph.builder import Graph
from vbgraph.graph.plan import Plan
from vbgraph.node import Node, NodeParams, Port, frame_port
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session


class Spin(Node):
    """Test node: busy for ``ms`` of CPU per frame, then passes it on (sync, fused)."""

    type_name: ClassVar[str] = "test.spin"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port()}

    class Params(NodeParams):
        ms: float = Field(0.0, ge=0)

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(self.params, Spin.Params)
        until = time.perf_counter_ns() + self.params.ms * 1e6
        while time.perf_counter_ns() < until:
            pass
        self.emit("out", frame)


class Sink(Node):
    """Test node: counts frames."""

    type_name: ClassVar[str] = "test.sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def process(self, port: str, frame: Frame) -> None:
        pass


def chain(*spins: float, frames_ms: int = 200) -> Plan:
    """tone (20 ms chunks, paced on the session clock) → spin nodes (``ms`` each) → sink."""
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Spin)
    reg.add(Sink)
    g = Graph("spin")
    nodes = [g.add("tone", id="src", duration_ms=frames_ms, chunk_ms=20, realtime=True)]
    nodes += [g.add("test.spin", id=f"s{i}", ms=ms) for i, ms in enumerate(spins)]
    nodes.append(g.add("test.sink", id="sink"))
    g.chain(*nodes)
    return g.compile(reg)


def test_a_probe_times_one_frame_then_gives_the_fast_path_back() -> None:
    """Armed 0.6 s into a 1 s session: one timed frame per node; its own process restored."""
    telemetry, reader, _ = memory_telemetry(node_sample_interval_s=0.6)
    done = run(chain(0, 0, frames_ms=1000), telemetry)
    metric = metrics(reader)["vbgraph.node.process.duration"]
    for nid, kind in (("s0", "test.spin"), ("s1", "test.spin"), ("sink", "test.sink")):
        assert histogram(metric, node__id=nid, node__type=kind).count == 1
        node = done.session.nodes[nid]
        assert done.session.swap_process(nid, node.process) == node.process
    assert done.result.edges["s0.out -> s1.in"].delivered == 50  # every frame still went through


def test_a_session_shorter_than_the_interval_is_not_probed() -> None:
    """The first samples come one interval in: a short session pays for no probe."""
    telemetry, reader, _ = memory_telemetry(node_sample_interval_s=1.0)
    run(chain(0, 0, frames_ms=200), telemetry)
    assert "vbgraph.node.process.duration" not in metrics(reader)


def test_a_node_is_timed_for_its_own_work_not_for_the_sync_nodes_it_feeds() -> None:
    """s0 feeds a 3 ms node through a fused call: s0's time excludes those 3 ms."""
    telemetry, reader, _ = memory_telemetry(node_sample_interval_s=0)
    run(chain(0, 3.0), telemetry)
    metric = metrics(reader)["vbgraph.node.process.duration"]
    fast = histogram(metric, node__id="s0", node__type="test.spin")
    slow = histogram(metric, node__id="s1", node__type="test.spin")
    assert fast.count == slow.count == 10
    assert slow.min >= 0.003
    assert fast.max < 0.003 / 2  # without the subtraction it would be above 3 ms


def test_swap_process_needs_an_observer() -> None:
    """Unobserved sessions are wired without the hooks a swap needs: a clear error."""
    session = Session(chain(0))
    with pytest.raises(UsageError, match="swap_process needs an observer"):
        session.swap_process("s0", session.nodes["s0"].process)
    telemetry, _, _ = memory_telemetry()
    observed = Session(chain(0), observer=telemetry)
    with pytest.raises(UsageError, match="unknown node 'nope'"):
        observed.swap_process("nope", observed.nodes["s0"].process)
