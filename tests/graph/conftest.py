"""Small node types for the graph tests, registered in a private registry.

The registry's parent is the default one, so the real converters
(``convert.*``) are found there; stand-ins are registered only when a real one
is missing (the built-in nodes are written in parallel with the graph layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import create_model

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.frames import AudioFrame, Frame
from vbgraph.node import GraphPath, Node, NodeParams, Port, audio_port, frame_port, text_port
from vbgraph.registry import Registry, default_registry

DATA = Path(__file__).parent / "data"


class Source(Node):
    """Emits ``frames`` chunks of 10 ms of silence in a fixed format."""

    type_name: ClassVar[str] = "t.source"

    class Params(NodeParams):
        rate: int = 16000
        channels: int = 1
        encoding: Encoding = Encoding.PCM_S16LE
        frames: int = 2

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port()}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        assert isinstance(params, Source.Params)
        return {"out": AudioFormat(params.rate, params.channels, params.encoding)}

    async def run(self) -> None:
        assert isinstance(self.params, Source.Params)
        fmt = AudioFormat(self.params.rate, self.params.channels, self.params.encoding)
        for i in range(self.params.frames):
            self.emit("out", AudioFrame(bytes(fmt.bytes_for_ms(10)), fmt, pts=i * 10_000_000))
            await self.ctx.drain()


class TextSource(Node):
    """Emits nothing; its only output carries text."""

    type_name: ClassVar[str] = "t.text"
    outputs: ClassVar[Mapping[str, Port]] = {"out": text_port()}


class Sink(Node):
    """Accepts audio in the formats its params allow (all when a field is left out)."""

    type_name: ClassVar[str] = "t.sink"

    class Params(NodeParams):
        rates: list[int] | None = None
        channels: list[int] | None = None
        encodings: list[Encoding] | None = None
        path: GraphPath = ""

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        assert isinstance(params, Sink.Params)
        if params.rates == []:
            raise ConfigError("rates may not be empty", field="rates")
        port = audio_port(
            None if params.rates is None else tuple(params.rates),
            None if params.channels is None else tuple(params.channels),
            None if params.encodings is None else tuple(params.encodings),
        )
        return {"in": port}, {}


class Gain(Node):
    """One audio input, one output in the input's format."""

    type_name: ClassVar[str] = "t.gain"

    class Params(NodeParams):
        db: float = 0.0

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def process(self, port: str, frame: Frame) -> None:
        self.emit("out", frame)


class Mix(Node):
    """Two inputs (``a``, ``b``) and no default among them: one output like ``a``."""

    type_name: ClassVar[str] = "t.mix"
    inputs: ClassVar[Mapping[str, Port]] = {"a": audio_port(), "b": audio_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="a")}


class Split(Node):
    """One input, two outputs (``left``, ``right``) and no default among them."""

    type_name: ClassVar[str] = "t.split"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"left": frame_port(), "right": frame_port()}


TEST_NODES: tuple[type[Node], ...] = (Source, TextSource, Sink, Gain, Mix, Split)


def _standin(type_name: str, field_name: str) -> type[Node]:
    """A converter that only negotiates (for when the real one is not written yet)."""
    model = create_model("Params", __base__=NodeParams, **{field_name: (int | str, ...)})
    attrs = {
        "__doc__": f"Stand-in for {type_name}.",
        "type_name": type_name,
        "Params": model,
        "inputs": {"in": audio_port()},
        "outputs": {"out": audio_port()},
    }
    return type("StandIn", (Node,), attrs)


def make_registry() -> Registry:
    """A private registry holding the test nodes (and stand-in converters if needed)."""
    reg = Registry(load_entry_points=False, parent=default_registry())
    for cls in TEST_NODES:
        reg.add(cls)
    for name, field_name in (
        ("convert.resample", "rate"),
        ("convert.channels", "channels"),
        ("convert.sample_format", "encoding"),
    ):
        if name not in default_registry():
            reg.add(_standin(name, field_name))
    return reg


@pytest.fixture
def registry() -> Registry:
    """The private registry of the test nodes."""
    return make_registry()


@pytest.fixture(scope="module")
def module_registry() -> Registry:
    """A registry of the test nodes shared by one module (for hypothesis tests)."""
    return make_registry()


@pytest.fixture
def test_nodes() -> tuple[type[Node], ...]:
    """The test node classes (for tests that build their own registry)."""
    return TEST_NODES
