"""The two engines behind ``convert.resample``: ours (compiled) and soxr.

Both take and return raw PCM bytes of one fixed format, so the node does not
care which one runs. Ours is preferred: it is low-delay (≤ 2 ms at ``high``
for rates ≥ 16 kHz), emits each chunk's share at once, and is bit-exact under
any chunking. soxr stays for rate pairs ours does not support, for ``vhq``,
and as the quality reference in tests.
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np
import soxr

from ..dsp.resample import Resampler, is_supported
from ..formats import AudioFormat
from ..typing import BytesLike
from ._arrays import dtype_of

__all__ = ["ResampleBackend", "open_backend", "uses_compiled"]

_SOXR_QUALITY: Final = {"low": "LQ", "medium": "MQ", "high": "HQ", "vhq": "VHQ"}


class ResampleBackend(Protocol):
    """What the node needs from a resampling engine."""

    name: str

    def process(self, data: BytesLike) -> bytes:
        """Resample a chunk; returns what is ready (maybe nothing)."""
        ...

    def flush(self) -> bytes:
        """The held-back tail, at the end of the stream."""
        ...

    def reset(self) -> None:
        """Forget history (interruption)."""
        ...

    @property
    def latency_ns(self) -> int:
        """Algorithmic delay of the engine."""
        ...


def uses_compiled(in_rate: int, out_rate: int, quality: str, engine: str) -> bool:
    """True if ``convert.resample`` runs our compiled resampler for this conversion."""
    if engine == "soxr" or quality == "vhq":
        return False
    return is_supported(in_rate, out_rate)


class _Compiled:
    name = "vbgraph"

    def __init__(self, fmt: AudioFormat, rate: int, quality: str) -> None:
        self._r = Resampler(
            fmt.rate,
            rate,
            channels=fmt.channels,
            encoding=fmt.encoding.value,
            quality=quality,  # type: ignore[arg-type]
        )

    def process(self, data: BytesLike) -> bytes:
        return self._r.process(data)

    def flush(self) -> bytes:
        return self._r.flush()

    def reset(self) -> None:
        self._r.reset()

    @property
    def latency_ns(self) -> int:
        return self._r.latency_ns


class _Soxr:
    name = "soxr"

    def __init__(self, fmt: AudioFormat, rate: int, quality: str) -> None:
        self._dtype = dtype_of(fmt)
        self._channels = fmt.channels
        self._stream = soxr.ResampleStream(
            fmt.rate, rate, fmt.channels, dtype=self._dtype.name, quality=_SOXR_QUALITY[quality]
        )

    def _shape(self, data: BytesLike) -> np.ndarray:
        samples = np.frombuffer(data, dtype=self._dtype)
        return samples if self._channels == 1 else samples.reshape(-1, self._channels)

    def process(self, data: BytesLike) -> bytes:
        return self._stream.resample_chunk(self._shape(data)).tobytes()  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        out = self._stream.resample_chunk(self._shape(b""), last=True)
        return out.tobytes()  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._stream.clear()

    @property
    def latency_ns(self) -> int:
        # soxr reports its delay only from a live stream, in output samples.
        return 0


def open_backend(fmt: AudioFormat, rate: int, quality: str, engine: str) -> ResampleBackend:
    """The engine for converting ``fmt`` to ``rate``."""
    if uses_compiled(fmt.rate, rate, quality, engine):
        return _Compiled(fmt, rate, quality)
    return _Soxr(fmt, rate, quality)
