"""The ``stt.fake`` node: a modelled speech recogniser with a latency you choose."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..events import Event, Metric, TranscriptReceived, UserSpeechStarted, UserSpeechStopped
from ..frames import AudioFrame, Frame, TranscriptFrame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ..registry import register
from ._modelled import Faults, Latency, LatencySampler
from ._params import typed

__all__ = ["SttFake"]


@register
class SttFake(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav}
          vad: {type: vad.native}
          stt: {type: stt.fake, transcripts: ["What time do you open?"], ttfb: {p50_ms: 150}}
          out: {type: log}
        edges: [mic -> vad -> stt -> out]

    Stands in for a real STT in latency experiments and tests, at no cost.
    It segments like ``stt.whisper`` (the audio between the VAD's
    ``UserSpeechStarted`` and ``UserSpeechStopped``; without a VAD the whole
    input is one utterance) but does not listen: each utterance's text is the
    next line of ``transcripts`` (or ``transcript_file``, one line per
    utterance), cycling. The final ``TranscriptFrame`` leaves ``ttfb`` after
    the stop event, drawn per utterance from the latency model (see
    ``Latency``), and is published as ``TranscriptReceived`` with a
    ``Metric("stt.fake.ms")`` like a real recogniser. Swap it for
    ``stt.whisper`` or a cloud STT by changing ``type``.
    """

    type_name: ClassVar[str] = "stt.fake"

    class Params(NodeParams):
        """Parameters of ``stt.fake``."""

        transcripts: list[str] = Field(
            default_factory=lambda: ["Hello, can you help me?"],
            min_length=1,
            description="Text of each utterance in turn (cycled).",
        )
        transcript_file: GraphPath | None = Field(
            None, description="A text file with one utterance per line (instead of transcripts)."
        )
        ttfb: Latency = Field(
            default_factory=lambda: Latency(p50_ms=150, p95_ms=300),
            description="Delay from the end of speech to the transcript.",
        )
        faults: Faults = Field(
            default_factory=Faults, description="Failures to inject (testing fallbacks)."
        )
        seed: int = Field(0, description="Seed of the latency draws (with the session id).")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(channels=(1,), doc="The caller's audio (any rate).")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(TranscriptFrame, doc="One final transcript per utterance.")
    }
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (UserSpeechStarted, UserSpeechStopped)

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, SttFake.Params)
        if p.transcript_file is not None:
            lines = Path(p.transcript_file).read_text(encoding="utf-8").splitlines()
            self._texts = [line.strip() for line in lines if line.strip()] or [""]
        else:
            self._texts = list(p.transcripts)
        self._sampler: LatencySampler | None = None
        self._next = 0
        self._speech_t0: int | None = None
        self._heard_audio_t0: int | None = None
        self._vad_seen = False
        self._pending: set[asyncio.Task[None]] = set()
        self.transcribed = 0
        """Utterances transcribed so far."""

    def start(self) -> None:
        """Seed the latency draws for this session."""
        self._p.faults.check_start(self.id)
        self._sampler = LatencySampler(self._p.ttfb, self._p.seed, self.ctx.session_id)

    async def process(self, port: str, frame: Frame) -> None:
        """Note when audio began (the utterance start when there is no VAD)."""
        if isinstance(frame, AudioFrame) and self._heard_audio_t0 is None:
            self._heard_audio_t0 = frame.pts

    def on_event(self, event: Event) -> None:
        """Start and stop an utterance on the VAD's events."""
        if isinstance(event, UserSpeechStarted):
            self._vad_seen = True
            self._speech_t0 = event.pts
        elif isinstance(event, UserSpeechStopped) and self._speech_t0 is not None:
            self._transcribe_later(self._speech_t0)
            self._speech_t0 = None

    async def on_end(self) -> None:
        """Without a VAD the whole input was one utterance; wait for pending transcripts."""
        if not self._vad_seen and self._heard_audio_t0 is not None:
            self._transcribe_later(self._heard_audio_t0)
        if self._pending:
            await asyncio.gather(*self._pending)

    def _transcribe_later(self, t0_ns: int) -> None:
        task = asyncio.get_running_loop().create_task(self._transcribe(t0_ns))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _transcribe(self, t0_ns: int) -> None:
        try:
            await self._transcribe_one(t0_ns)
        except Exception as exc:  # a background task: report it like a process() failure
            self.ctx.report("transcribe", exc)

    async def _transcribe_one(self, t0_ns: int) -> None:
        assert self._sampler is not None
        delay = self._sampler.draw_s()
        text = self._texts[self._next % len(self._texts)]
        self._next += 1
        if not self._p.faults.check_request(self.id, self._next - 1):
            return
        await asyncio.sleep(delay)
        epoch = self.ctx.epoch
        self.transcribed += 1
        self.ctx.publish(Metric(metric="stt.fake.ms", value=delay * 1e3, unit="ms"))
        self.emit("out", TranscriptFrame(text, final=True, pts=t0_ns, epoch=epoch))
        self.ctx.publish(
            TranscriptReceived(text=text, final=True, speech_start_ns=t0_ns, epoch=epoch)
        )
