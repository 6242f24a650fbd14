"""A WAV file written from a stream of audio frames, opened on the first one (not public API).

Shared by ``file.sink`` and ``recorder``. The file's format is the first
frame's: negotiation fixes an edge's format before the session starts, so
every later frame must match it, and a frame that does not is an
:class:`~vbgraph.errors.AudioFormatError` rather than a corrupted file.
"""

from __future__ import annotations

from ..errors import AudioFormatError
from ..formats import AudioFormat
from ..frames import AudioFrame
from ..io.wav import WavWriter

__all__ = ["WavOutput"]


class WavOutput:
    """Writes audio frames to ``path``; the writer is created lazily, closed idempotently."""

    __slots__ = ("_writer", "closed", "format", "frames_written", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.format: AudioFormat | None = None
        """The format of the file, once the first frame has fixed it."""
        self.frames_written = 0
        """Audio frames (chunks, not samples) written so far."""
        self.closed = False
        self._writer: WavWriter | None = None

    @property
    def samples_written(self) -> int:
        """Sample frames written so far."""
        return 0 if self._writer is None else self._writer.frames_written

    def write(self, frame: AudioFrame) -> None:
        """Append ``frame``'s samples, creating the file on the first frame."""
        if self.closed:
            raise AudioFormatError(f"{self.path}: frame arrived after the file was closed")
        writer = self._writer
        if writer is None:
            writer = self._writer = WavWriter(self.path, frame.fmt)
            self.format = frame.fmt
        elif frame.fmt != self.format:
            raise AudioFormatError(
                f"{self.path}: frame in {frame.fmt} but the file is {self.format}"
            )
        writer.write(frame.data)
        self.frames_written += 1

    def close(self) -> None:
        """Patch the header sizes and close the file; safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.close()
