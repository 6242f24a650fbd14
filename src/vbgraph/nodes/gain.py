"""The ``gain`` node: scale audio by a fixed gain in dB."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final

from pydantic import Field

from ..dsp.pcm import db_to_gain, gain_f32, gain_s16
from ..formats import Encoding
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..typing import BytesLike
from ._params import typed
from ._ports import PCM_ENCODINGS

__all__ = ["Gain"]

_KERNELS: Final[dict[Encoding, Callable[[BytesLike, float], bytes]]] = {
    Encoding.PCM_S16LE: gain_s16,
    Encoding.PCM_F32LE: gain_f32,
}


@register
class Gain(Node):
    """Example launch line::

        nodes:
          a: {type: tone, level_db: 0}
          g: {type: gain, db: -6}
          b: {type: file.sink, path: q.wav}
        edges: [a -> g -> b]

    Multiplies every sample by ``10 ** (db / 20)``: ``-6`` is about half the
    amplitude, ``-.inf`` mutes. int16 saturates at full scale and rounds half
    to even; float32 is not clipped (it may exceed full scale until it is
    converted to int16). See :mod:`vbgraph.dsp.pcm` for the exact numerics.

    ``db: 0`` passes each frame on as the same object, so a gain left at zero
    costs nothing.
    """

    type_name: ClassVar[str] = "gain"

    class Params(NodeParams):
        """Parameters of ``gain``."""

        db: float = Field(
            0,
            le=120,
            description="Gain in dB: negative attenuates, positive amplifies, -.inf mutes.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(encodings=PCM_ENCODINGS, doc="Audio to scale (int16 or float32).")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(same_as="in", doc="The scaled audio, in the input's format.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._gain = db_to_gain(typed(params, Gain.Params).db)

    def process(self, port: str, frame: Frame) -> None:
        """Emit the frame scaled (the frame itself when the gain is exactly 1)."""
        if self._gain == 1.0 or type(frame) is not AudioFrame:
            self.emit("out", frame)
            return
        kernel = _KERNELS[frame.fmt.encoding]
        self.emit("out", frame.with_data(kernel(frame.data, self._gain)))
