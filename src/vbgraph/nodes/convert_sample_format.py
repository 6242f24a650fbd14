"""The ``convert.sample_format`` node: int16 ⇄ float32."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final, Literal

from pydantic import Field

from ..dsp.pcm import f32_to_s16, s16_to_f32
from ..errors import AudioFormatError
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..typing import BytesLike
from ._params import typed
from ._ports import pcm_in

__all__ = ["ConvertSampleFormat"]

_KERNELS: Final[dict[tuple[Encoding, Encoding], Callable[[BytesLike], bytes]]] = {
    (Encoding.PCM_S16LE, Encoding.PCM_F32LE): s16_to_f32,
    (Encoding.PCM_F32LE, Encoding.PCM_S16LE): f32_to_s16,
}


@register
class ConvertSampleFormat(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          c: {type: convert.sample_format, encoding: pcm_f32le}
          b: {type: log}
        edges: [a -> c -> b]

    Converts linear PCM between 16-bit integer and 32-bit float, keeping rate
    and channels: int16 → float32 divides by 32768 (exact, lossless);
    float32 → int16 scales by 32768, saturates and rounds half to even (see
    :mod:`vbgraph.dsp.pcm`). Negotiation inserts it where a consumer wants the
    other encoding; a frame already in the target encoding passes on as the
    same object.
    """

    type_name: ClassVar[str] = "convert.sample_format"

    class Params(NodeParams):
        """Parameters of ``convert.sample_format``."""

        encoding: Literal["pcm_s16le", "pcm_f32le"] = Field(
            description="The encoding to convert to."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": pcm_in("Linear PCM audio.")}
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(encodings=("pcm_s16le", "pcm_f32le"), doc="The converted audio.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._encoding = Encoding(typed(params, ConvertSampleFormat.Params).encoding)

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format with the new encoding."""
        fmt = inputs.get("in")
        if fmt is None:
            return {}
        return {"out": fmt.replace(encoding=typed(params, cls.Params).encoding)}

    def process(self, port: str, frame: Frame) -> None:
        """Emit the frame in the target encoding."""
        if type(frame) is not AudioFrame or frame.fmt.encoding is self._encoding:
            self.emit("out", frame)
            return
        kernel = _KERNELS.get((frame.fmt.encoding, self._encoding))
        if kernel is None:
            raise AudioFormatError(
                f"convert.sample_format '{self.id}': cannot convert {frame.fmt.encoding.value} "
                f"to {self._encoding.value}"
            )
        fmt = frame.fmt.replace(encoding=self._encoding)
        self.emit("out", frame.with_data(kernel(frame.data), fmt))
