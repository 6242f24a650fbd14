"""The ``passthrough`` node: frames in, the same frames out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..frames import Frame
from ..node import Node, NodeParams, Port
from ..registry import register
from ._ports import any_frames

__all__ = ["Passthrough"]


@register
class Passthrough(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          p: {type: passthrough}
          b: {type: file.sink, path: same.wav}
        edges: [a -> p -> b]

    Emits every frame it receives, of any kind, as the same object: a
    placeholder to keep a graph's shape while a stage is switched off, and the
    cheapest possible hop for measuring the runtime's per-hop cost.
    """

    type_name: ClassVar[str] = "passthrough"

    class Params(NodeParams):
        """``passthrough`` has no parameters."""

    inputs: ClassVar[Mapping[str, Port]] = {"in": any_frames(doc="Any frames.")}
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": any_frames(same_as="in", doc="The same frames, unchanged.")
    }

    def process(self, port: str, frame: Frame) -> None:
        """Emit ``frame`` unchanged."""
        self.emit("out", frame)
