"""check_node: the conformance suite passes the built-ins and catches broken nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.node import Node, Port, audio_port
from vbgraph.registry import default_registry
from vbgraph.testing import check_node


@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("gain", {"db": -6}),
        ("passthrough", {}),
        ("convert.resample", {"rate": 48000}),
        ("convert.channels", {"channels": 2}),
        ("convert.sample_format", {"encoding": "pcm_f32le"}),
        ("tee", {}),
        ("mixer", {"inputs": ["a", "b"]}),
    ],
)
def test_built_in_nodes_conform(type_name: str, params: dict[str, Any]) -> None:
    """Negotiation, drain on end, reset on interrupt and bounded growth hold."""
    report = check_node(default_registry().get(type_name), params)
    assert report.frames_out and all(n > 0 for n in report.frames_out.values())


def test_the_resampler_reports_its_negotiated_output() -> None:
    """The report carries the output format negotiation fixed."""
    report = check_node(default_registry().get("convert.resample"), {"rate": 8000})
    assert report.output_formats == {"out": AudioFormat(8000)}


class Hoarder(Node):
    """Keeps every frame it sees: unbounded growth."""

    type_name = "test.hoarder"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.kept: list[bytes] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        self.kept.append(bytes(frame.data) * 8)
        self.emit("out", frame)


class WrongFormat(Node):
    """Declares same-as-input output but emits 8 kHz."""

    type_name = "test.wrong_format"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port(rates=(16000,))}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        self.emit("out", frame.with_data(frame.data, AudioFormat(8000)))


def test_unbounded_growth_is_caught() -> None:
    """A node that hoards frames fails the bounded-growth check."""
    with pytest.raises(AssertionError, match="bounded growth"):
        check_node(Hoarder, frames=100)


def test_a_format_that_differs_from_negotiation_is_caught() -> None:
    """Emitting another format than negotiated fails the negotiation check."""
    with pytest.raises(AssertionError, match="negotiation"):
        check_node(WrongFormat, bounded=False)
