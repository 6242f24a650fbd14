"""The ``mixer`` node: several audio inputs summed into one output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, Field

from ..errors import AudioFormatError, UsageError
from ..formats import AudioFormat, Encoding, pts_ns
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._arrays import buffer_of
from ._params import check_port_names, typed

__all__ = ["Mixer"]


@register
class Mixer(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          s: {type: silence}
          m: {type: mixer}
          b: {type: log}
        edges: [a -> m.a, s -> m.b, m -> b]

    Sums its inputs, one port per name in ``inputs``, sample by sample into one
    output of ``rate``/``channels``/``encoding``. Every input accepts exactly
    that format, so negotiation puts converters in front of the inputs that
    differ. int16 is summed in int32 and saturated to full scale; float32 is
    summed in float32 and not clipped (as ``gain`` does).

    Inputs are aligned by sample count from their first frame, not by ``pts``:
    output is produced as soon as every input that has not ended has audio
    buffered, so the mix advances at the pace of the slowest input and an input
    that stops sending without ending holds the mix back (and the others'
    audio in memory) until it sends again or ends. An ended input counts as
    silence. When every input has ended the remainder is mixed and emitted.
    Output ``pts`` count output samples from the first frame to arrive.

    ``on_interrupt`` drops buffered input (audio of the old turn) and keeps the
    output clock running.
    """

    type_name: ClassVar[str] = "mixer"

    class Params(NodeParams):
        """Parameters of ``mixer``."""

        inputs: Annotated[list[str], AfterValidator(check_port_names)] = Field(
            default_factory=lambda: ["a", "b"],
            description="Names of the input ports (identifiers, unique, at least one).",
        )
        rate: int = Field(16000, gt=0, le=768_000, description="Sample rate of the mix, in Hz.")
        channels: int = Field(1, ge=1, le=32, description="Channel count of the mix.")
        encoding: Literal["pcm_s16le", "pcm_f32le"] = Field(
            "pcm_s16le", description="Sample encoding of the mix (inputs are converted to it)."
        )

        @property
        def format(self) -> AudioFormat:
            """The format of every input and of the output."""
            return AudioFormat(self.rate, self.channels, Encoding(self.encoding))

    params: Params
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The mix.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Mixer.Params)
        self._fmt = p.format
        self._frame_bytes = self._fmt.frame_bytes
        self._s16 = self._fmt.encoding is Encoding.PCM_S16LE
        self._pending: dict[str, bytearray] = {name: bytearray() for name in p.inputs}
        self._ended: set[str] = set()
        self._t0: int | None = None
        self._sent = 0  # output sample frames emitted

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """One input per name in ``inputs``, each accepting exactly the mix format."""
        p = typed(params, cls.Params)
        fmt = p.format
        port = audio_port((fmt.rate,), (fmt.channels,), (fmt.encoding,), doc="Audio to mix.")
        return dict.fromkeys(p.inputs, port), cls.outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The mix format."""
        return {"out": typed(params, cls.Params).format}

    def process(self, port: str, frame: Frame) -> None:
        """Buffer the frame's audio and emit what every open input can contribute."""
        if type(frame) is not AudioFrame:  # the ports carry audio only: a runtime bug
            raise UsageError(f"mixer '{self.id}': {frame.kind} frame on audio input '{port}'")
        if frame.fmt != self._fmt:
            raise AudioFormatError(
                f"mixer '{self.id}': input '{port}' sent {frame.fmt}, the mix is {self._fmt}"
            )
        if self._t0 is None:
            self._t0 = frame.pts
        self._pending[port] += frame.data
        self._mix_ready()

    def on_input_end(self, port: str) -> None:
        """Input ``port`` has ended: from now on it counts as silence."""
        self._ended.add(port)
        self._mix_ready()

    def on_end(self) -> None:
        """Every input has ended: mix and emit what is left, padding with silence."""
        self._ended.update(self._pending)
        longest = max(len(buf) for buf in self._pending.values())
        if longest:
            self._mix(longest // self._frame_bytes)

    def on_interrupt(self, epoch: int) -> None:
        """Drop buffered input: it belongs to the interrupted turn."""
        for buf in self._pending.values():
            buf.clear()

    def _mix_ready(self) -> None:
        open_inputs = [buf for name, buf in self._pending.items() if name not in self._ended]
        if not open_inputs:  # every input ended one by one: on_end mixes the rest
            return
        ready = min(len(buf) for buf in open_inputs) // self._frame_bytes
        if ready:
            self._mix(ready)

    def _mix(self, count: int) -> None:
        """Sum the next ``count`` sample frames of every input and emit them."""
        nbytes = count * self._frame_bytes
        sample_bytes = self._frame_bytes // self._fmt.channels
        dtype = "<i2" if self._s16 else "<f4"
        acc = np.zeros(count * self._fmt.channels, dtype=np.int32 if self._s16 else np.float32)
        for buf in self._pending.values():
            take = min(len(buf), nbytes)  # an ended input may hold less: the rest is silence
            if take:
                part = np.frombuffer(buf, dtype=dtype, count=take // sample_bytes)
                acc[: part.size] += part
                del part  # release the view: a bytearray with exports cannot shrink
                del buf[:take]
        out: npt.NDArray[np.generic] = (
            np.clip(acc, -32768, 32767).astype("<i2") if self._s16 else acc
        )
        assert self._t0 is not None  # set by the first frame, before any audio is buffered
        pts = pts_ns(self._sent, self._fmt.rate, self._t0)
        self._sent += count
        self.emit("out", AudioFrame(buffer_of(out), self._fmt, pts=pts, epoch=self.ctx.epoch))
