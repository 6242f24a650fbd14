"""Test node types for the CLI, registered in the default registry for one test.

The CLI compiles with the default registry, so the nodes go there; the
``cli_nodes`` fixture puts the registry's table back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.node import Node, NodeParams, Port, audio_port, text_port
from vbgraph.registry import default_registry


class Beeps(Node):
    """Emits a few 20 ms chunks of 16 kHz mono silence."""

    type_name: ClassVar[str] = "cli.beeps"

    class Params(NodeParams):
        count: int = 3

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=AudioFormat(16000))}

    async def run(self) -> None:
        assert isinstance(self.params, Beeps.Params)
        fmt = AudioFormat(16000)
        for i in range(self.params.count):
            self.emit("out", AudioFrame(bytes(640), fmt, pts=i * 20_000_000))
            await self.ctx.drain()


class Words(Node):
    """A text output that never speaks."""

    type_name: ClassVar[str] = "cli.words"
    outputs: ClassVar[Mapping[str, Port]] = {"out": text_port()}


class Speaker(Node):
    """Accepts 48 kHz int16 only, so a resampler goes in front of it."""

    type_name: ClassVar[str] = "cli.speaker"

    class Params(NodeParams):
        volume: float = 1.0

    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(rates=(48000,), encodings=("pcm_s16le",))
    }

    def process(self, port: str, frame: Frame) -> None:
        return None


class Broken(Node):
    """Raises on every frame."""

    type_name: ClassVar[str] = "cli.broken"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def process(self, port: str, frame: Frame) -> None:
        raise RuntimeError("broken on purpose")


CLI_NODES: tuple[type[Node], ...] = (Beeps, Words, Speaker, Broken)


@pytest.fixture
def cli_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register the CLI test nodes in the default registry for one test."""
    reg = default_registry()
    reg.names()  # load the built-ins first, so they are in the table we restore
    monkeypatch.setattr(reg, "_types", dict(reg._types))
    for cls in CLI_NODES:
        reg.add(cls, replace=True)
    yield


WriteGraph = Callable[[str], Path]


@pytest.fixture
def write_graph(tmp_path: Path) -> WriteGraph:
    """Write YAML text to ``tmp_path/g.yaml`` and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "g.yaml"
        path.write_text(text)
        return path

    return write
