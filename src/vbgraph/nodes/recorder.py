"""The ``recorder`` node: a tap that passes frames on and records the audio it sees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..errors import AudioFormatError, UsageError
from ..formats import AudioFormat
from ..frames import AudioFrame, Frame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port
from ..registry import register
from ._params import typed
from ._ports import any_frames
from ._wav_output import WavOutput

__all__ = ["Recorder"]


@register
class Recorder(Node):
    """Example launch line::

        nodes:
          a: {type: tone}
          r: {type: recorder, path: t.wav}
          b: {type: file.sink, path: o.wav}
        edges: [a -> r -> b]

    A tap: every frame goes on through ``out`` unchanged (the same object),
    and the audio among them is also recorded: written to ``path`` as WAV if
    one is given, and kept in memory with ``keep: true``. Counters ``frames``
    (every frame seen) and ``samples`` (audio sample frames seen) are always
    kept; tests read them from ``session.nodes[...]``. Use ``file.sink`` at the
    end of a path and ``recorder`` in its middle.

    ``keep`` holds references to the frames, not copies; :meth:`audio` joins
    them. It grows without bound, so it is meant for tests and short runs.
    """

    type_name: ClassVar[str] = "recorder"

    class Params(NodeParams):
        """Parameters of ``recorder``."""

        path: GraphPath | None = Field(
            None, description="A WAV file to write the audio to (none: do not write a file)."
        )
        keep: bool = Field(
            False, description="Keep the audio in memory for recorder.audio() (tests)."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": any_frames(doc="Frames to record.")}
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": any_frames(same_as="in", doc="The same frames, unchanged.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Recorder.Params)
        self._file = None if p.path is None else WavOutput(p.path)
        self.kept: list[AudioFrame] | None = [] if p.keep else None
        """With ``keep``: the audio frames seen, in order (the objects, not copies)."""
        self.format: AudioFormat | None = None
        """The format of the audio seen (the first audio frame's)."""
        self.frames = 0
        """Frames seen, of every kind."""
        self.samples = 0
        """Audio sample frames seen."""

    def process(self, port: str, frame: Frame) -> None:
        """Pass ``frame`` on, then record it."""
        self.emit("out", frame)
        self.frames += 1
        if type(frame) is not AudioFrame:
            return
        if self.format is None:
            self.format = frame.fmt
        elif frame.fmt != self.format:
            raise AudioFormatError(
                f"recorder '{self.id}': frame in {frame.fmt} after audio in {self.format}"
            )
        self.samples += frame.samples
        if self.kept is not None:
            self.kept.append(frame)
        if self._file is not None:
            self._file.write(frame)

    @property
    def written_path(self) -> Path | None:
        """The WAV file written, once a frame has created it (``vbgraph run`` prints it)."""
        f = self._file
        return None if f is None or f.format is None else Path(f.path)

    def audio(self) -> bytes:
        """The audio seen so far, as one buffer (needs ``keep: true``)."""
        if self.kept is None:
            raise UsageError(f"recorder '{self.id}': audio() needs the param keep: true")
        return b"".join(f.data for f in self.kept)

    def on_end(self) -> None:
        """Finish the file, if one is written."""
        self._close()

    def stop(self) -> None:
        """Close the file if ``on_end`` did not (the session was cancelled)."""
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
