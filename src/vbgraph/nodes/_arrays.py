"""numpy views of audio payloads for the nodes that compute on samples (not public API).

Zero-copy contract: :func:`samples_of` is a read-only view over the frame's
buffer (frames are shared, nobody may write to them), and :func:`buffer_of`
hands a freshly computed array out as a byte ``memoryview`` without copying.
Such an array is owned by the frame from then on: nothing writes to it again.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import AudioFormatError
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame

__all__ = ["buffer_of", "dtype_of", "samples_of"]

_DTYPES: Final[dict[Encoding, np.dtype[np.generic]]] = {
    Encoding.PCM_S16LE: np.dtype("<i2"),
    Encoding.PCM_F32LE: np.dtype("<f4"),
}


def dtype_of(fmt: AudioFormat) -> np.dtype[np.generic]:
    """The numpy dtype of one sample of ``fmt`` (linear PCM only)."""
    try:
        return _DTYPES[fmt.encoding]
    except KeyError:
        raise AudioFormatError(f"{fmt.encoding.value} is not linear PCM") from None


def samples_of(frame: AudioFrame) -> npt.NDArray[np.generic]:
    """The frame's samples as a read-only ``(frames, channels)`` array over its buffer."""
    fmt = frame.fmt
    flat = np.frombuffer(frame.data, dtype=dtype_of(fmt))
    return flat.reshape(-1, fmt.channels)


def buffer_of(array: npt.NDArray[np.generic]) -> memoryview:
    """A byte view of ``array`` (made contiguous if it is not) for a frame payload."""
    if array.size == 0:
        return memoryview(b"")  # memoryview refuses to cast a view with a zero in its shape
    return np.ascontiguousarray(array).data.cast("B")
