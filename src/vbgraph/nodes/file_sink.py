"""The ``file.sink`` node: audio written to a file."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Final, Literal

from pydantic import Field

from ..errors import UsageError
from ..formats import Encoding
from ..frames import AudioFrame, Frame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed
from ._wav_output import WavOutput

__all__ = ["FileSink"]

_log = logging.getLogger(__name__)

_WAV_ENCODINGS: Final = (Encoding.PCM_S16LE, Encoding.PCM_F32LE, Encoding.MULAW, Encoding.ALAW)


@register
class FileSink(Node):
    """Example launch line::

        nodes:
          a: {type: tone, duration_ms: 2000}
          b: {type: file.sink, path: out/tone.wav}
        edges: [a -> b]

    Writes the audio it receives to a WAV file in the negotiated format of its
    input (int16, float32, A-law or mu-law at any rate and channel count, so
    nothing is converted on the way in). Folders are created; an existing
    file is replaced.

    ``rate``, ``channels`` and ``encoding`` pin the file's format (a caps
    filter, in GStreamer terms): the input then accepts only that, and
    negotiation inserts the converters in front. ``{type: file.sink, path:
    out.wav, rate: 48000}`` writes 48 kHz whatever the graph produces.

    The file is created on the first frame and its header is patched when the
    input ends (or the session stops), so a run that crashes still leaves a
    playable file. An input that ends without a single frame writes no file,
    since the node only learns the format from a frame: a warning on the
    ``vbgraph.nodes.file_sink`` logger says so. Writing is a plain blocking
    write in the producer's task (one ``write`` per frame, buffered by the OS).
    """

    type_name: ClassVar[str] = "file.sink"

    class Params(NodeParams):
        """Parameters of ``file.sink``."""

        path: GraphPath = Field(
            description="The WAV file to write; relative paths start at the graph file's folder."
        )
        rate: int | None = Field(
            None, gt=0, le=768_000, description="Write at this rate in Hz (default: as received)."
        )
        channels: int | None = Field(
            None, ge=1, le=32, description="Write this many channels (default: as received)."
        )
        encoding: Literal["pcm_s16le", "pcm_f32le", "mulaw", "alaw"] | None = Field(
            None,
            description="Write in this encoding (default: as received). Converters exist "
            "between pcm_s16le and pcm_f32le only.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": audio_port(encodings=_WAV_ENCODINGS, doc="Audio to write.")
    }

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """The input ``in``, narrowed to ``rate``/``channels``/``encoding`` where they are set."""
        p = typed(params, cls.Params)
        if p.rate is None and p.channels is None and p.encoding is None:
            return cls.inputs, cls.outputs
        port = audio_port(
            rates=None if p.rate is None else (p.rate,),
            channels=None if p.channels is None else (p.channels,),
            encodings=_WAV_ENCODINGS if p.encoding is None else (p.encoding,),
            doc="Audio to write, converted to the pinned format.",
        )
        return {"in": port}, cls.outputs

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._out = WavOutput(typed(params, FileSink.Params).path)

    @property
    def written_path(self) -> Path | None:
        """The file written, once a frame has created it (``vbgraph run`` prints it)."""
        return None if self._out.format is None else Path(self._out.path)

    @property
    def frames_written(self) -> int:
        """Audio frames (chunks) written so far."""
        return self._out.frames_written

    @property
    def samples_written(self) -> int:
        """Sample frames written so far."""
        return self._out.samples_written

    def process(self, port: str, frame: Frame) -> None:
        """Append the frame's samples to the file."""
        if type(frame) is not AudioFrame:  # the port carries audio only: a runtime bug
            raise UsageError(f"file.sink '{self.id}': {frame.kind} frame on its audio input")
        self._out.write(frame)

    def on_end(self) -> None:
        """Finish the file: patch its header and close it."""
        self._close()

    def stop(self) -> None:
        """Close the file if ``on_end`` did not (the session was cancelled)."""
        self._close()

    def _close(self) -> None:
        if not self._out.closed and self._out.format is None:
            _log.warning(
                "file.sink '%s': no audio arrived, so %s was not written", self.id, self._out.path
            )
        self._out.close()
