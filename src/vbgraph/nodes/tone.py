"""The ``tone`` node: a sine wave test signal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Final

import numpy as np
from pydantic import Field, model_validator

from ..dsp.pcm import db_to_gain, f32_to_s16
from ..formats import AudioFormat, Encoding
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._generator import GeneratorParams, PacedOutput, generate
from ._params import typed

__all__ = ["Tone"]

_TWO_PI: Final = 2.0 * math.pi


@register
class Tone(Node):
    """Example launch line::

        nodes:
          a: {type: tone, freq_hz: 440, level_db: -6}
          b: {type: file.sink, path: a4.wav}
        edges: [a -> b]

    A sine tone of ``freq_hz`` at ``level_db`` dBFS (peak: 0 dBFS is a sine
    touching full scale), the same on every channel, for ``duration_ms``.

    Each sample is computed from its absolute index, ``sin(2π·f·n/rate)`` with
    the phase reduced modulo one cycle in float64, so the wave is continuous
    across chunks and an hour-long tone has no phase drift. int16 output is
    the float signal converted by :func:`~vbgraph.dsp.pcm.f32_to_s16`. For a
    digital zero use ``silence``.
    """

    type_name: ClassVar[str] = "tone"

    class Params(GeneratorParams):
        """Parameters of ``tone``."""

        freq_hz: float = Field(
            440, gt=0, allow_inf_nan=False, description="Frequency in Hz, below rate / 2."
        )
        level_db: float = Field(
            -12,
            le=0,
            description="Peak level in dBFS (0 is full scale; -inf gives digital silence).",
        )

        @model_validator(mode="after")
        def _below_nyquist(self) -> Tone.Params:
            if self.freq_hz >= self.rate / 2:
                raise ValueError(
                    f"freq_hz={self.freq_hz} is not below half the sample rate ({self.rate / 2} Hz)"
                )
            return self

    params: Params
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(doc="The tone.")}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Tone.Params)
        self._fmt = p.format
        self._cycles_per_sample = p.freq_hz / p.rate
        self._amplitude = db_to_gain(p.level_db)

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Frames of ``chunk_ms`` (the last may be shorter)."""
        return {"out": typed(params, cls.Params).chunk_ms}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The format given by ``rate``, ``channels`` and ``encoding``."""
        return {"out": typed(params, cls.Params).format}

    def render(self, start: int, count: int) -> bytes:
        """The bytes of samples ``start .. start + count - 1`` of the tone."""
        index = np.arange(start, start + count, dtype=np.float64)
        phase = np.mod(index * self._cycles_per_sample, 1.0)
        wave = (self._amplitude * np.sin(_TWO_PI * phase)).astype("<f4")
        if self._fmt.channels > 1:
            wave = np.repeat(wave, self._fmt.channels)
        data = wave.tobytes()
        if self._fmt.encoding is Encoding.PCM_S16LE:
            return f32_to_s16(data)
        return data

    async def run(self) -> None:
        """Emit the tone chunk by chunk."""
        p = self.params
        out = PacedOutput(self, "out", self._fmt, realtime=p.realtime)
        await generate(out, p.total_samples, p.chunk_samples, self.render)
