"""The ``convert.g711`` node: G.711 μ-law / A-law ⇄ int16 PCM (telephony)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final, Literal

from pydantic import Field

from ..dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ..errors import AudioFormatError
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..typing import BytesLike
from ._params import typed

__all__ = ["ConvertG711"]

_KERNELS: Final[dict[tuple[Encoding, Encoding], Callable[[BytesLike], bytes]]] = {
    (Encoding.MULAW, Encoding.PCM_S16LE): ulaw_decode,
    (Encoding.ALAW, Encoding.PCM_S16LE): alaw_decode,
    (Encoding.PCM_S16LE, Encoding.MULAW): ulaw_encode,
    (Encoding.PCM_S16LE, Encoding.ALAW): alaw_encode,
}


@register
class ConvertG711(Node):
    """Example launch line::

        nodes:
          a: {type: tone, rate: 8000}
          u: {type: convert.g711, encoding: mulaw}
          b: {type: file.sink, path: tone_ulaw.wav}
        edges: [a -> u -> b]

    Encodes int16 PCM to G.711 μ-law or A-law, or decodes either back to int16,
    bit-exact to ITU-T G.711 (compiled kernels in :mod:`vbgraph.dsp.g711`; they
    replace the ``audioop`` module Python 3.13 removed). Rate and channels are
    kept. Negotiation inserts it where a telephony transport meets PCM nodes:
    decoding first, encoding last (after any resampling to 8 kHz). A frame
    already in the target encoding passes on as the same object.
    """

    type_name: ClassVar[str] = "convert.g711"

    class Params(NodeParams):
        """Parameters of ``convert.g711``."""

        encoding: Literal["pcm_s16le", "mulaw", "alaw"] = Field(
            description="The encoding to convert to: mulaw or alaw encode int16; "
            "pcm_s16le decodes mulaw or alaw."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(encodings=("pcm_s16le", "mulaw", "alaw"), doc="int16 PCM, μ-law or A-law.")
    }
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The converted audio.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._encoding = Encoding(typed(params, ConvertG711.Params).encoding)

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format with the new encoding; refuses G.711 → other G.711."""
        fmt = inputs.get("in")
        if fmt is None:
            return {}
        target = Encoding(typed(params, cls.Params).encoding)
        if fmt.encoding != target and (fmt.encoding, target) not in _KERNELS:
            raise AudioFormatError(
                f"convert.g711 converts between int16 and G.711, not {fmt.encoding.value} "
                f"to {target.value}",
            )
        return {"out": fmt.replace(encoding=target)}

    def process(self, port: str, frame: Frame) -> None:
        """Emit the frame in the target encoding."""
        if type(frame) is not AudioFrame or frame.fmt.encoding is self._encoding:
            self.emit("out", frame)
            return
        kernel = _KERNELS.get((frame.fmt.encoding, self._encoding))
        if kernel is None:
            raise AudioFormatError(
                f"convert.g711 '{self.id}': cannot convert {frame.fmt.encoding.value} to "
                f"{self._encoding.value}"
            )
        self.emit(
            "out", frame.with_data(kernel(frame.data), frame.fmt.replace(encoding=self._encoding))
        )
