"""The ``convert.channels`` node: down-mix and up-mix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ..dsp.pcm import (
    mono_to_stereo_f32,
    mono_to_stereo_s16,
    stereo_to_mono_f32,
    stereo_to_mono_s16,
)
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..typing import BytesLike
from ._arrays import buffer_of, samples_of
from ._params import typed
from ._ports import pcm_in

__all__ = ["ConvertChannels"]


@register
class ConvertChannels(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          c: {type: convert.channels, channels: 2}
          b: {type: log}
        edges: [a -> c -> b]

    Changes the channel count of linear PCM (int16 or float32), keeping rate
    and encoding:

    * **down to mono**: the average of all channels (int16: exact sum, then
      rounded half to even, so it never clips);
    * **mono up to N**: the mono signal copied to every channel;
    * **any other M → N** (stereo → 4, 6 → 2 ...): averaged to mono, then
      copied to the N channels. This keeps loudness and never clips, but
      throws the stereo image away; a proper down-mix matrix (5.1 → stereo
      with centre and surround weights) is not implemented yet.

    Negotiation inserts it where a consumer wants another channel count; a
    frame already at ``channels`` passes on as the same object.
    """

    type_name: ClassVar[str] = "convert.channels"

    class Params(NodeParams):
        """Parameters of ``convert.channels``."""

        channels: int = Field(ge=1, le=32, description="The channel count to convert to.")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": pcm_in("Linear PCM audio.")}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The re-channelled audio.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._channels = typed(params, ConvertChannels.Params).channels

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format with the new channel count."""
        fmt = inputs.get("in")
        if fmt is None:
            return {}
        return {"out": fmt.replace(channels=typed(params, cls.Params).channels)}

    def process(self, port: str, frame: Frame) -> None:
        """Emit the frame with ``channels`` channels."""
        if type(frame) is not AudioFrame or frame.fmt.channels == self._channels:
            self.emit("out", frame)
            return
        fmt = frame.fmt.replace(channels=self._channels)
        kernel = _KERNELS.get((frame.fmt.channels, self._channels, frame.fmt.encoding))
        if kernel is not None:  # the common 1 <-> 2 cases: compiled, one pass
            self.emit("out", frame.with_data(kernel(frame.data), fmt))
            return
        samples = samples_of(frame)
        mono = samples if frame.fmt.channels == 1 else _average(samples, frame.fmt.encoding)
        out = mono if self._channels == 1 else np.repeat(mono, self._channels, axis=1)
        self.emit("out", frame.with_data(buffer_of(out), fmt))


_KERNELS: Final[dict[tuple[int, int, Encoding], Callable[[BytesLike], bytes]]] = {
    (2, 1, Encoding.PCM_S16LE): stereo_to_mono_s16,
    (2, 1, Encoding.PCM_F32LE): stereo_to_mono_f32,
    (1, 2, Encoding.PCM_S16LE): mono_to_stereo_s16,
    (1, 2, Encoding.PCM_F32LE): mono_to_stereo_f32,
}
"""Compiled kernels for (from channels, to channels, encoding); same numerics as below."""


def _average(samples: npt.NDArray[np.generic], encoding: Encoding) -> npt.NDArray[np.generic]:
    """The mean over channels as an ``(n, 1)`` array of the same dtype."""
    if encoding is Encoding.PCM_S16LE:
        # float64 holds the int16 sum of up to 32 channels exactly, so the mean
        # is rounded once; the mean of int16 values is always within int16.
        total: npt.NDArray[np.float64] = samples.sum(axis=1, dtype=np.float64, keepdims=True)
        mean_s16: npt.NDArray[np.int16] = np.rint(total / samples.shape[1]).astype("<i2")
        return mean_s16
    mean: npt.NDArray[np.float32] = samples.mean(axis=1, dtype=np.float32, keepdims=True)
    return mean
