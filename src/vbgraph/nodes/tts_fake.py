"""The ``tts.fake`` node: a modelled TTS with the time to first audio and speed you choose."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ..events import Metric
from ..formats import AudioFormat, pts_ns
from ..frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from ..node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ..registry import register
from ..speech.text_aggregator import TextAggregator
from ._modelled import Faults, Latency, LatencySampler
from ._params import typed

__all__ = ["TtsFake"]


def _voice(samples: int, rate: int, offset: int) -> bytes:
    """A vowel-like buzz (140 Hz and harmonics, syllable envelope): not silent, not speech."""
    n = np.arange(offset, offset + samples, dtype=np.float64)
    t = n / rate
    tone = sum(np.sin(2 * math.pi * 140 * k * t) / k for k in (1, 2, 3, 5))
    envelope = 0.55 + 0.45 * np.sin(2 * math.pi * 4 * t)  # ~4 syllables a second
    return (tone * envelope * 5000).astype("<i2").tobytes()


@register
class TtsFake(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts: {type: tts.fake, ttfb: {p50_ms: 120, p95_ms: 250}, sample_rate: 24000}
          out: {type: log}
        edges: [agent -> tts -> out]

    Stands in for a TTS in latency experiments and tests, at no cost: the
    same ports as ``tts.piper``. Text is cut into speakable pieces like the
    real nodes do; each piece's audio starts ``ttfb`` after it was ready
    (drawn from the latency model) and is synthesized at ``rtf`` times real
    time (0.2: five times faster than it plays), in ``chunk_ms`` frames. The
    audio is a voiced buzz as long as the text would take to say at
    ``words_per_minute``. ``Metric("tts.fake.ttfb_ms")`` reports each draw.
    Interruptible: an interruption drops the text and audio of the old turn.
    """

    type_name: ClassVar[str] = "tts.fake"
    interruptible: ClassVar[bool] = True

    class Params(NodeParams):
        """Parameters of ``tts.fake``."""

        ttfb: Latency = Field(
            default_factory=lambda: Latency(p50_ms=120, p95_ms=250),
            description="Delay from a piece of text to its first audio.",
        )
        rtf: float = Field(
            0.2, gt=0, le=10, description="Synthesis time over audio time (below 1: faster)."
        )
        words_per_minute: float = Field(
            165, gt=10, le=600, description="Speaking rate the audio length follows."
        )
        sample_rate: Literal[8000, 16000, 22050, 24000, 44100, 48000] = Field(
            24000, description="Output rate (int16 mono)."
        )
        chunk_ms: float = Field(40, gt=0, le=1000, description="Length of each output frame.")
        flush_after_ms: float = Field(
            150, ge=0, le=5000, description="Speak held streamed text after this long a pause."
        )
        faults: Faults = Field(
            default_factory=Faults, description="Failures to inject (testing fallbacks)."
        )
        seed: int = Field(0, description="Seed of the latency draws (with the session id).")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(
            TextFrame, LLMTokenFrame, doc="Text to speak: whole messages or streamed tokens."
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(channels=(1,), encodings=("pcm_s16le",), doc="Speech-like audio.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, TtsFake.Params)
        self._fmt = AudioFormat(p.sample_rate)
        self._aggregator = TextAggregator()
        self._pieces: deque[tuple[str, int]] = deque()
        self._sampler: LatencySampler | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._last_text_s = 0.0
        self._epoch = 0
        self._samples = 0  # samples emitted since the session started (output pts)
        self.spoken = 0
        """Pieces of text spoken so far."""
        self._requests = 0

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """int16 mono at ``sample_rate``."""
        return {"out": AudioFormat(typed(params, cls.Params).sample_rate)}

    def start(self) -> None:
        """Seed the latency draws; make the loop's events."""
        self._p.faults.check_start(self.id)
        self._sampler = LatencySampler(self._p.ttfb, self._p.seed, self.ctx.session_id)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def process(self, port: str, frame: Frame) -> None:
        """Queue the pieces the text completes (a ``TextFrame`` ends the utterance)."""
        assert self._wake is not None and self._idle is not None
        if isinstance(frame, TextFrame):
            pieces = self._aggregator.push(frame.text) + self._aggregator.flush()
        elif isinstance(frame, LLMTokenFrame):
            pieces = self._aggregator.push(frame.text)
        else:
            return
        self._epoch = frame.epoch
        self._pieces.extend((piece, frame.epoch) for piece in pieces)
        self._last_text_s = asyncio.get_running_loop().time()
        self._idle.clear()
        self._wake.set()

    def on_interrupt(self, epoch: int) -> None:
        """Drop the old turn's text; the piece being spoken stops at its next chunk."""
        self._aggregator.reset()
        self._pieces.clear()

    async def on_end(self) -> None:
        """Speak what is held and wait until everything queued was spoken."""
        assert self._wake is not None and self._idle is not None
        self._pieces.extend((piece, self._epoch) for piece in self._aggregator.flush())
        if self._pieces:
            self._idle.clear()
            self._wake.set()
        await self._idle.wait()

    async def run(self) -> None:
        """Speak queued pieces; flush held streamed text after a pause."""
        wake = self._wake
        assert wake is not None and self._idle is not None
        loop = asyncio.get_running_loop()
        while True:
            if self._pieces:
                text, epoch = self._pieces.popleft()
                try:
                    await self._speak(text, epoch)
                except Exception as exc:  # one failed piece, reported; the next may work
                    self.ctx.report("synthesize", exc)
                continue
            if self._aggregator.held.strip():
                wait = self._last_text_s + self._p.flush_after_ms / 1000 - loop.time()
                if wait <= 0:
                    flushed = self._aggregator.flush()
                    self._pieces.extend((piece, self._epoch) for piece in flushed)
                    continue
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)
                continue
            self._idle.set()
            wake.clear()
            await wake.wait()

    async def _speak(self, text: str, epoch: int) -> None:
        assert self._sampler is not None
        p, fmt = self._p, self._fmt
        words = max(1, len(text.split()))
        total = round(words * 60 / p.words_per_minute * fmt.rate)
        chunk = max(1, fmt.samples_for_ms(p.chunk_ms))
        ttfb = self._sampler.draw_s()
        self._requests += 1
        if not self._p.faults.check_request(self.id, self._requests - 1):
            return
        await asyncio.sleep(ttfb)
        if epoch != self.ctx.epoch:
            return
        self.ctx.publish(Metric(metric="tts.fake.ttfb_ms", value=ttfb * 1e3, unit="ms"))
        self.spoken += 1
        done = 0
        while done < total and epoch == self.ctx.epoch:
            n = min(chunk, total - done)
            data = _voice(n, fmt.rate, done)
            frame = AudioFrame(data, fmt, pts=pts_ns(self._samples, fmt.rate), epoch=epoch)
            self._samples += n
            done += n
            self.emit("out", frame)
            await self.ctx.drain()
            if done < total:
                await asyncio.sleep(n / fmt.rate * p.rtf)
