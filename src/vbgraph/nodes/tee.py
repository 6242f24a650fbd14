"""The ``tee`` node: every frame to several outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from ..frames import Frame
from ..node import Node, NodeContext, NodeParams, Port
from ..registry import register
from ._params import check_port_names, typed
from ._ports import any_frames

__all__ = ["Tee"]


@register
class Tee(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          t: {type: tee}
          x: {type: file.sink, path: x.wav}
          y: {type: log}
        edges: [a -> t, t.a -> x, t.b -> y]

    Sends every frame it receives to each of its outputs, one port per name in
    ``outputs``, as the same object (frames are immutable, so sharing is safe
    and nothing is copied). Outputs are served in the order listed; each
    carries the input's audio format, and negotiation converts per branch.

    An edge may also leave one output port several times; ``tee`` is for
    making the branches explicit and named.
    """

    type_name: ClassVar[str] = "tee"

    class Params(NodeParams):
        """Parameters of ``tee``."""

        outputs: Annotated[list[str], AfterValidator(check_port_names)] = Field(
            default_factory=lambda: ["a", "b"],
            description="Names of the output ports (identifiers, unique, at least one).",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": any_frames(doc="Any frames.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._outputs = tuple(typed(params, Tee.Params).outputs)

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """One input ``in`` and one output per name in ``outputs``."""
        port = any_frames(same_as="in", doc="Every input frame, unchanged.")
        return cls.inputs, dict.fromkeys(typed(params, cls.Params).outputs, port)

    def process(self, port: str, frame: Frame) -> None:
        """Emit ``frame`` on every output."""
        emit = self.emit
        for name in self._outputs:
            emit(name, frame)
