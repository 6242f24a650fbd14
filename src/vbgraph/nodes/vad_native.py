"""The ``vad.native`` node: our compiled frame-level VAD, with speech segments and events."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from ..dsp.ring import Rechunker
from ..dsp.vad import Vad
from ..events import UserSpeechStarted, UserSpeechStopped
from ..formats import AudioFormat, pts_ns
from ..frames import AudioFrame, Frame
from ..node import Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ..speech.segmenter import SegmenterState, SpeechSegmenter, VadParams
from ._params import typed

__all__ = ["VadNative"]


@register
class VadNative(Node):
    """Example launch line::

        nodes:
          mic: {type: file.source, path: speech.wav}
          vad: {type: vad.native, aggressiveness: 2, start_ms: 200, stop_ms: 400}
          rec: {type: file.sink, path: speech_only.wav}
        edges: [mic -> vad, vad.speech -> rec]

    Detects speech in mono int16 audio at 8 or 16 kHz (other formats are
    converted on the way in by negotiation) with the compiled VAD of
    :mod:`vbgraph.dsp.vad`: a few microseconds per frame, no model. The input
    is cut into ``frame_ms`` frames internally, whatever its chunk sizes; each
    frame's decision feeds the shared speech segmenter, which publishes
    ``UserSpeechStarted`` once speech has lasted ``start_ms`` (stamped with the
    pts where that speech began) and ``UserSpeechStopped`` once non-speech has
    lasted ``stop_ms`` (stamped with the end of the last speech frame). Frames
    quieter than ``min_volume`` dBFS never count as speech.

    Outputs: ``out`` passes every input frame on unchanged (the same object),
    at once; ``speech`` carries only the audio inside speech segments, in
    ``frame_ms`` frames: the run of frames that confirmed the start (held until
    then, at most ``start_ms`` of audio) and every frame up to the segment's
    end. Non-speech frames inside a segment are held (at most ``stop_ms``) until
    speech resumes, so a segment's trailing silence is never sent.

    ``aggressiveness`` 0 to 3 trades missed speech for false alarms, as in
    webrtcvad (docs/vad.md has the measured figures). An interruption changes
    nothing here: the user's audio is never stale. At the end of the stream an
    open segment is closed with ``UserSpeechStopped``.
    """

    type_name: ClassVar[str] = "vad.native"

    class Params(VadParams):
        """Parameters of ``vad.native``."""

        aggressiveness: int = Field(
            2,
            ge=0,
            le=3,
            description="0 keeps the most speech, 3 rejects the most noise (as webrtcvad).",
        )
        frame_ms: Literal[10, 20, 30] = Field(
            20, description="Length in ms of each frame the VAD decides on: 10, 20 or 30."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(
            rates=(8000, 16000),
            channels=(1,),
            encodings=("pcm_s16le",),
            doc="Mono int16 audio at 8 or 16 kHz.",
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(same_as="in", doc="Every input frame, unchanged."),
        "speech": audio_port(same_as="in", doc="Only the audio inside speech segments."),
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._p = typed(params, VadNative.Params)
        self._segmenter = SpeechSegmenter(self._p)
        self._fmt: AudioFormat | None = None
        self._vad: Vad | None = None
        self._rechunker: Rechunker | None = None
        self._t0 = 0
        self._frames = 0  # VAD frames since t0
        self._epoch = 0
        # Frames of the speech run not yet confirmed as a start (QUIET), or of
        # the non-speech run not yet confirmed as a stop (SPEAKING).
        self._held: deque[AudioFrame] = deque()

    def process(self, port: str, frame: Frame) -> None:
        """Pass the frame on, then run the VAD on every whole frame it completes."""
        self.emit("out", frame)
        if type(frame) is not AudioFrame:
            return
        rechunker = self._rechunker
        if rechunker is None or frame.fmt != self._fmt:
            rechunker = self._open(frame.fmt, frame.pts)
        self._epoch = frame.epoch
        for chunk in rechunker.push(frame.data):
            self._decide(chunk)

    def on_end(self) -> None:
        """Close an open segment: publish ``UserSpeechStopped`` at the last speech."""
        segmenter = self._segmenter
        if segmenter.state is SegmenterState.SPEAKING:
            self.ctx.publish(UserSpeechStopped(pts=segmenter.last_speech_end))
        segmenter.reset()
        self._held.clear()

    def _open(self, fmt: AudioFormat, pts: int) -> Rechunker:
        """Start a VAD stream for ``fmt`` anchored at ``pts`` (the first frame, or a new format)."""
        if self._segmenter.state is SegmenterState.SPEAKING:
            self.on_end()
        self._fmt = fmt
        self._vad = Vad(fmt.rate, self._p.frame_ms, self._p.aggressiveness)
        self._rechunker = Rechunker(self._vad.frame_bytes)
        self._t0 = pts
        self._frames = 0
        self._segmenter.reset()
        self._held.clear()
        return self._rechunker

    def _decide(self, chunk: memoryview) -> None:
        vad, fmt = self._vad, self._fmt
        assert vad is not None and fmt is not None
        n = vad.frame_samples
        pts = pts_ns(self._frames * n, fmt.rate, self._t0)
        end = pts_ns((self._frames + 1) * n, fmt.rate, self._t0)
        self._frames += 1
        is_speech = vad.process(chunk)
        volume = vad.volume_db
        segmenter = self._segmenter
        counts = is_speech and volume >= segmenter.min_volume
        frame = AudioFrame(chunk, fmt, pts=pts, epoch=self._epoch)
        speaking = segmenter.state is SegmenterState.SPEAKING
        transition = segmenter.update(is_speech, volume, pts, end - pts)
        held = self._held
        if transition is not None and transition.kind == "started":
            self.ctx.publish(UserSpeechStarted(pts=transition.at_ns))
            while held:
                self.emit("speech", held.popleft())
            self.emit("speech", frame)
        elif transition is not None:  # stopped: the held non-speech tail is dropped
            self.ctx.publish(UserSpeechStopped(pts=transition.at_ns))
            held.clear()
        elif speaking and counts:  # speech resumed inside the segment
            while held:
                self.emit("speech", held.popleft())
            self.emit("speech", frame)
        elif counts or speaking:  # a run that may yet start or stop a segment
            held.append(frame)
        else:
            held.clear()
