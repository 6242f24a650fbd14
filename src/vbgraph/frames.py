"""Typed frames: the values that travel along data edges.

Frames are small immutable values (frozen, ``__slots__``): a node never changes
a frame it received, it emits a new one (``frame.with_data(...)``) or passes the
same object on. Every frame carries

* ``pts`` — presentation time on the session clock, in integer nanoseconds, and
* ``epoch`` — the turn it belongs to. When the session is interrupted its epoch
  grows and frames of older epochs are dropped on sight by interruptible nodes
  (see ``runtime/session.py``), so nothing queued before a barge-in is played.

Audio payloads are buffers (``bytes`` or ``memoryview``), never Python lists;
numpy views are made only by the nodes that need them.

Users do not subclass frames: nodes dispatch on ``type(frame)`` through tables,
and the set of frame kinds is part of the port contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .formats import AudioFormat
from .typing import BytesLike

__all__ = [
    "FRAME_KINDS",
    "AudioFrame",
    "EndFrame",
    "Frame",
    "ImageFrame",
    "LLMTokenFrame",
    "TextFrame",
    "ToolCallFrame",
    "TranscriptFrame",
    "Word",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """Base of every frame. Holds the session time and the turn epoch."""

    kind: ClassVar[str] = "frame"
    pts: int = field(default=0, kw_only=True)
    epoch: int = field(default=0, kw_only=True)


@dataclass(frozen=True, slots=True)
class AudioFrame(Frame):
    """A chunk of audio: a byte buffer in a fixed :class:`AudioFormat`.

    ``AudioFrame(data, AudioFormat(16000), pts=0, epoch=0)``. The buffer is held,
    not copied; pass ``bytes`` (or a ``memoryview`` over memory nobody will
    change) since frames are shared between nodes.
    """

    kind: ClassVar[str] = "audio"
    data: BytesLike
    fmt: AudioFormat

    @property
    def samples(self) -> int:
        """Sample frames in this chunk (per channel)."""
        return len(self.data) // self.fmt.frame_bytes

    @property
    def duration_ns(self) -> int:
        """Duration of the chunk in nanoseconds (from its sample count)."""
        fmt = self.fmt
        return len(self.data) // fmt.frame_bytes * 1_000_000_000 // fmt.rate

    def with_data(self, data: BytesLike, fmt: AudioFormat | None = None) -> AudioFrame:
        """The same chunk (pts, epoch) with a new payload and optionally a new format."""
        return AudioFrame(data, self.fmt if fmt is None else fmt, pts=self.pts, epoch=self.epoch)


@dataclass(frozen=True, slots=True)
class TextFrame(Frame):
    """Text for the next stage: an agent's reply going to TTS, a prompt, a message."""

    kind: ClassVar[str] = "text"
    text: str


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its timing (session clock, ns) and confidence."""

    text: str
    start_ns: int
    end_ns: int
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class TranscriptFrame(Frame):
    """Recognised speech. ``final=False`` marks an interim hypothesis that may change."""

    kind: ClassVar[str] = "transcript"
    text: str
    final: bool = True
    confidence: float = 1.0
    words: tuple[Word, ...] = ()
    language: str | None = None


@dataclass(frozen=True, slots=True)
class LLMTokenFrame(Frame):
    """A piece of streamed model output (one or more tokens of text)."""

    kind: ClassVar[str] = "llm_token"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallFrame(Frame):
    """A model's request to call a tool; ``arguments`` is the JSON text as received."""

    kind: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ImageFrame(Frame):
    """An encoded image (for multimodal models)."""

    kind: ClassVar[str] = "image"
    data: bytes
    mime: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class EndFrame(Frame):
    """End of stream on one edge. A node ends once every input has ended; then its
    outputs end. The runtime sends and routes these; nodes rarely see them."""

    kind: ClassVar[str] = "end"
    reason: str = "end of stream"


FRAME_KINDS: dict[str, type[Frame]] = {
    cls.kind: cls
    for cls in (
        AudioFrame,
        TextFrame,
        TranscriptFrame,
        LLMTokenFrame,
        ToolCallFrame,
        ImageFrame,
        EndFrame,
    )
}
"""Frame classes by their ``kind`` name, as ports and docs spell them."""
