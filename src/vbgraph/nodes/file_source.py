"""The ``file.source`` node: audio read from a file, chunk by chunk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from ..errors import ConfigError, UsageError, VbgraphError
from ..formats import AudioFormat
from ..io.wav import WavReader
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._generator import PacedOutput
from ._params import typed

__all__ = ["FileSource"]


@register
class FileSource(Node):
    """Example launch line::

        nodes:
          a: {type: file.source, path: speech.wav}
          b: {type: file.sink, path: copy.wav}
        edges: [a -> b]

    Plays an audio file into the graph in frames of ``chunk_ms`` (the last one
    may be shorter), in the file's own format: negotiation inserts converters
    where a consumer needs another. ``pts`` counts from 0 at the first sample
    and is computed from the sample count, so it never drifts; with ``loop`` the
    file plays several times and ``pts`` runs on.

    By default frames go out as fast as downstream takes them (a ``block``
    queue paces the reader, so memory stays bounded): right for batch runs and
    tests. ``realtime: true`` emits each frame no earlier than its ``pts`` on
    the session clock, as a microphone would deliver it.

    Reads WAV (16-bit PCM, 32-bit float, A-law, mu-law; see
    :mod:`vbgraph.io.wav`). A missing or unreadable file fails when the graph
    is compiled, naming the path.
    """

    type_name: ClassVar[str] = "file.source"

    class Params(NodeParams):
        """Parameters of ``file.source``."""

        path: GraphPath = Field(
            description="The audio file (WAV); relative paths start at the graph file's folder."
        )
        chunk_ms: float = Field(
            20,
            gt=0,
            allow_inf_nan=False,
            description="Length of each frame in ms (rounded down to whole samples).",
        )
        realtime: bool = Field(
            False,
            description="Pace frames at real time on the session clock: a frame is emitted "
            "no earlier than its pts. Off, frames go out as fast as downstream takes them.",
        )
        loop: int = Field(
            1, ge=1, description="How many times to play the file; pts continue across loops."
        )

    params: Params
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(doc="The file's audio, in the file's format.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        typed(params, FileSource.Params)
        self._reader: WavReader | None = None

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Frames of ``chunk_ms`` (the last may be shorter), when the file plays once."""
        p = typed(params, cls.Params)
        return {"out": p.chunk_ms} if p.loop == 1 else {}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """The file's format, read from its header; :class:`ConfigError` if it cannot be."""
        p = typed(params, cls.Params)
        with _open(p.path) as reader:
            fmt = reader.format
        if fmt.samples_for_ms(p.chunk_ms) < 1:
            raise ConfigError(
                f"chunk_ms={p.chunk_ms} is less than one sample of '{p.path}' ({fmt})",
                field="chunk_ms",
            )
        return {"out": fmt}

    def start(self) -> None:
        """Open the file (a file gone since compile time fails the session start)."""
        self._reader = _open(self.params.path)

    async def run(self) -> None:
        """Read and emit the file chunk by chunk, ``loop`` times."""
        reader = self._reader
        if reader is None:  # the runtime calls start() first; anything else is misuse
            raise UsageError(f"file.source '{self.id}': run() called before start()")
        p = self.params
        out = PacedOutput(self, "out", reader.format, realtime=p.realtime)
        chunk = reader.format.samples_for_ms(p.chunk_ms)
        for _ in range(p.loop):
            reader.seek_frame(0)
            while data := reader.read(chunk):
                await out.send(data)

    def stop(self) -> None:
        """Close the file."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


def _open(path: str) -> WavReader:
    """A reader for ``path``, or a :class:`ConfigError` on ``path`` saying why not."""
    try:
        return WavReader(path)
    except FileNotFoundError:
        raise ConfigError(f"audio file '{path}' does not exist", field="path") from None
    except (OSError, VbgraphError) as exc:
        raise ConfigError(f"cannot read audio file '{path}': {exc}", field="path") from None
