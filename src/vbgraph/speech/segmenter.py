"""Turning per-frame speech decisions into speech segments (start / stop).

Theory of operation
-------------------
A VAD says, frame by frame, "speech" or "not speech". Users want segments:
speech started (after ``start_ms`` of speech, so a click does not count) and
speech stopped (after ``stop_ms`` of non-speech, so a breath between words does
not end the segment). Frames quieter than ``min_volume`` (dBFS RMS) count as
non-speech whatever the VAD said, which keeps far-away talkers and line noise
out.

The segmenter is a two-state machine driven by the table ``TRANSITIONS``; the
counters of consecutive speech/non-speech time decide when a transition fires.
Times are in integer nanoseconds from the frames' ``pts`` and durations, so the
reported start of speech is exact: the pts of the first frame of the run that
reached ``start_ms`` (not the frame where it was confirmed), and the stop is the
end of the last speech frame.

Both VAD nodes (``vad.native``, ``vad.silero``) hold one of these; it has no
I/O and no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from ..errors import IllegalTransitionError
from ..node import NodeParams

__all__ = ["TRANSITIONS", "SegmenterState", "SpeechSegmenter", "VadParams", "VadTransition"]


class VadParams(NodeParams):
    """Segmentation params shared by every VAD node."""

    start_ms: float = Field(
        200, ge=0, le=5000, description="Speech must last this long before it counts as started."
    )
    stop_ms: float = Field(
        400,
        ge=0,
        le=10_000,
        description="Non-speech must last this long before speech counts as stopped.",
    )
    min_volume: float = Field(
        -60.0,
        le=0,
        description="Frames quieter than this (dBFS RMS) count as non-speech.",
    )


class SegmenterState(StrEnum):
    """Whether the segmenter is inside a speech segment."""

    QUIET = "quiet"
    SPEAKING = "speaking"


TRANSITIONS: dict[tuple[SegmenterState, str], SegmenterState] = {
    (SegmenterState.QUIET, "speech_confirmed"): SegmenterState.SPEAKING,
    (SegmenterState.SPEAKING, "silence_confirmed"): SegmenterState.QUIET,
    (SegmenterState.QUIET, "reset"): SegmenterState.QUIET,
    (SegmenterState.SPEAKING, "reset"): SegmenterState.QUIET,
}


@dataclass(frozen=True, slots=True)
class VadTransition:
    """A segment boundary: ``started`` or ``stopped`` at session time ``at_ns``."""

    kind: str
    at_ns: int


class SpeechSegmenter:
    """Feeds on (is_speech, volume, pts, duration) per frame; returns segment boundaries."""

    __slots__ = (
        "_run_ns",
        "_run_start",
        "_start_ns",
        "_stop_ns",
        "last_speech_end",
        "min_volume",
        "state",
    )

    def __init__(self, params: VadParams) -> None:
        self._start_ns = int(params.start_ms * 1_000_000)
        self._stop_ns = int(params.stop_ms * 1_000_000)
        self.min_volume = params.min_volume
        self.state = SegmenterState.QUIET
        self._run_ns = 0  # length of the current run of frames disagreeing with the state
        self._run_start = 0  # pts where that run began
        self.last_speech_end = 0

    def _apply(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalTransitionError("speech segmenter", self.state.value, event) from None

    def update(
        self, is_speech: bool, volume_db: float, pts: int, duration_ns: int
    ) -> VadTransition | None:
        """One frame's decision; returns a transition when a segment starts or stops."""
        speech = is_speech and volume_db >= self.min_volume
        if self.state is SegmenterState.QUIET:
            if not speech:
                self._run_ns = 0
                return None
            if self._run_ns == 0:
                self._run_start = pts
            self._run_ns += duration_ns
            self.last_speech_end = pts + duration_ns
            if self._run_ns >= self._start_ns:
                self._apply("speech_confirmed")
                self._run_ns = 0
                return VadTransition("started", self._run_start)
            return None
        if speech:
            self._run_ns = 0
            self.last_speech_end = pts + duration_ns
            return None
        self._run_ns += duration_ns
        if self._run_ns >= self._stop_ns:
            self._apply("silence_confirmed")
            self._run_ns = 0
            return VadTransition("stopped", self.last_speech_end)
        return None

    def reset(self) -> None:
        """Forget any run in progress and return to quiet."""
        self._apply("reset")
        self._run_ns = 0
