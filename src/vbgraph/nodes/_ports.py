"""Port shapes shared by the built-in nodes (not public API)."""

from __future__ import annotations

from typing import Final

from ..formats import AudioCaps, Encoding
from ..frames import AudioFrame, Frame
from ..node import Port

__all__ = ["PCM_ENCODINGS", "any_frames", "pcm_in"]

PCM_ENCODINGS: Final = (Encoding.PCM_S16LE, Encoding.PCM_F32LE)
"""The linear encodings nodes compute on."""

# ``AudioFrame`` is listed next to ``Frame`` on purpose: ``Port.carries_audio``
# tests ``AudioFrame in kinds``, so a port of plain ``Frame`` would not pass the
# negotiated audio format on, and converters would not be inserted behind a
# passthrough, tee, log or recorder. Listing both keeps every kind accepted.
_ANY: Final[tuple[type[Frame], ...]] = (AudioFrame, Frame)


def any_frames(*, same_as: str | None = None, doc: str = "") -> Port:
    """A port for frames of every kind, any audio format (an output may repeat an input's)."""
    return Port(kinds=_ANY, caps=AudioCaps(), same_as=same_as, doc=doc)


def pcm_in(doc: str = "") -> Port:
    """An audio input accepting linear PCM (int16 or float32) at any rate and channel count."""
    return Port(kinds=(AudioFrame,), caps=AudioCaps(encodings=PCM_ENCODINGS), doc=doc)
