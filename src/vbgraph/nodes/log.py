"""The ``log`` node: one line per frame, for watching a graph run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import ClassVar, Final, Literal, cast

from pydantic import Field

from ..frames import (
    AudioFrame,
    EndFrame,
    Frame,
    ImageFrame,
    LLMTokenFrame,
    TextFrame,
    ToolCallFrame,
    TranscriptFrame,
)
from ..node import Node, NodeContext, NodeParams, Port
from ..registry import register
from ._params import typed
from ._ports import any_frames

__all__ = ["Log"]

_logger = logging.getLogger("vbgraph.log")


def _audio(frame: Frame) -> str:
    f = cast(AudioFrame, frame)
    return f"{f.fmt} {f.samples} samples"


def _text(frame: Frame) -> str:
    f = cast("TextFrame | LLMTokenFrame", frame)
    return repr(f.text)


def _transcript(frame: Frame) -> str:
    f = cast(TranscriptFrame, frame)
    return f"{f.text!r} {'final' if f.final else 'interim'} confidence={f.confidence:.2f}"


def _tool_call(frame: Frame) -> str:
    f = cast(ToolCallFrame, frame)
    return f"{f.name}({f.arguments}) id={f.call_id}"


def _image(frame: Frame) -> str:
    f = cast(ImageFrame, frame)
    return f"{f.mime} {f.width}x{f.height} {len(f.data)} bytes"


def _end(frame: Frame) -> str:
    f = cast(EndFrame, frame)
    return repr(f.reason)


# Each describer is only ever called with the type it is filed under.
_DESCRIBE: Final[dict[type[Frame], Callable[[Frame], str]]] = {
    AudioFrame: _audio,
    TextFrame: _text,
    LLMTokenFrame: _text,
    TranscriptFrame: _transcript,
    ToolCallFrame: _tool_call,
    ImageFrame: _image,
    EndFrame: _end,
}
"""What each frame kind shows between its kind and its pts (a table, not isinstance)."""


def _line(label: str, frame: Frame) -> str:
    """The log line for ``frame``, e.g. ``[mic] audio pcm_s16le/16000Hz/1ch 320 samples ...``."""
    detail = _DESCRIBE.get(type(frame))
    middle = f" {detail(frame)}" if detail is not None else ""
    return f"[{label}] {frame.kind}{middle} pts={frame.pts / 1e9:.3f}s epoch={frame.epoch}"


@register
class Log(Node):
    """Example launch line::

        nodes:
          a: {type: tone, duration_ms: 100}
          l: {type: log, every: 2}
        edges: [a -> l]

    Prints one line per frame (or per ``every``-th frame) and passes every
    frame on through ``out`` unchanged, so it can sit anywhere in a chain::

        [mic] audio pcm_s16le/16000Hz/1ch 320 samples pts=0.020s epoch=0
        [agent] text 'Hello there.' pts=1.480s epoch=1

    ``to: logger`` sends the lines to the ``vbgraph.log`` logger at INFO
    instead of stdout. A line is only formatted when it will be written (the
    ``every`` count and the logger's level are checked first), so a quiet
    ``log`` costs a counter increment per frame. ``out`` may be left
    unconnected; the session then counts the frames as unconnected.
    """

    type_name: ClassVar[str] = "log"

    class Params(NodeParams):
        """Parameters of ``log``."""

        every: int = Field(1, ge=1, description="Log every N-th frame (1: every frame).")
        to: Literal["stdout", "logger"] = Field(
            "stdout", description="Where lines go: stdout, or the logger 'vbgraph.log' (INFO)."
        )
        label: str | None = Field(
            None, description="The name in brackets at the start of each line (default: node id)."
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {"in": any_frames(doc="Frames to log.")}
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": any_frames(same_as="in", doc="The same frames, unchanged (optional).")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Log.Params)
        self._label = node_id if p.label is None else p.label
        self._every = p.every
        self._to_logger = p.to == "logger"
        self.seen = 0
        """Frames received."""

    def process(self, port: str, frame: Frame) -> None:
        """Log the frame if it is its turn, then pass it on."""
        seen = self.seen
        self.seen = seen + 1
        if seen % self._every == 0:
            if self._to_logger:
                if _logger.isEnabledFor(logging.INFO):
                    _logger.info("%s", _line(self._label, frame))
            else:
                sys.stdout.write(_line(self._label, frame) + "\n")
        self.emit("out", frame)
