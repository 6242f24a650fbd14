"""Audio formats and the sets of formats a port accepts.

An :class:`AudioFormat` is fixed (one rate, one channel count, one encoding) and
describes a buffer. An :class:`AudioCaps` is what a port accepts: each field is
a set of allowed values or ``None`` for "any". Negotiation (``graph/negotiate``)
intersects a producer's fixed format with the consumer's caps and inserts
converters where they differ.

Timestamps are derived from integer sample counts, never accumulated, so a
stream keeps exact time over hours: see :func:`pts_ns`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import AudioFormatError

__all__ = [
    "ALAW",
    "MULAW",
    "OPUS",
    "PCM_F32LE",
    "PCM_S16LE",
    "AudioCaps",
    "AudioFormat",
    "Encoding",
    "pts_ns",
]


class Encoding(StrEnum):
    """How samples are stored in a buffer."""

    PCM_S16LE = "pcm_s16le"
    PCM_F32LE = "pcm_f32le"
    MULAW = "mulaw"
    ALAW = "alaw"
    OPUS = "opus"  # only at transport boundaries; frames carry whole packets

    @property
    def bytes_per_sample(self) -> int | None:
        """Bytes of one sample of one channel; ``None`` for packetised codecs."""
        return _BYTES_PER_SAMPLE[self]

    @property
    def is_pcm(self) -> bool:
        """True for linear PCM encodings (the ones nodes compute on)."""
        return self in (Encoding.PCM_S16LE, Encoding.PCM_F32LE)


PCM_S16LE = Encoding.PCM_S16LE
PCM_F32LE = Encoding.PCM_F32LE
MULAW = Encoding.MULAW
ALAW = Encoding.ALAW
OPUS = Encoding.OPUS

_BYTES_PER_SAMPLE: dict[Encoding, int | None] = {
    Encoding.PCM_S16LE: 2,
    Encoding.PCM_F32LE: 4,
    Encoding.MULAW: 1,
    Encoding.ALAW: 1,
    Encoding.OPUS: None,
}

_NS_PER_S = 1_000_000_000


def pts_ns(samples: int, rate: int, t0_ns: int = 0) -> int:
    """The timestamp of sample number ``samples`` of a stream that started at ``t0_ns``.

    Integer arithmetic from the sample count, so there is no drift however long
    the stream runs: ``pts_ns(rate * 3600, rate) == 3600 * 10**9`` exactly.
    """
    return t0_ns + samples * _NS_PER_S // rate


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One fixed audio format: sample rate in Hz, channel count, encoding.

    Example: ``AudioFormat(16000, 1, "pcm_s16le")`` is telephony-grade wideband
    mono, 640 bytes per 20 ms.
    """

    rate: int
    channels: int = 1
    encoding: Encoding = Encoding.PCM_S16LE
    # Bytes per sample frame, computed once: it is read for every frame on the
    # hot path (durations, queue limits). 0 for packet codecs.
    _frame_bytes: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rate, int) or self.rate <= 0:
            raise AudioFormatError(f"sample rate must be a positive integer, got {self.rate!r}")
        if not isinstance(self.channels, int) or not 1 <= self.channels <= 32:
            raise AudioFormatError(f"channels must be an integer 1..32, got {self.channels!r}")
        if not isinstance(self.encoding, Encoding):
            try:
                object.__setattr__(self, "encoding", Encoding(self.encoding))
            except ValueError:
                known = ", ".join(e.value for e in Encoding)
                raise AudioFormatError(
                    f"unknown encoding {self.encoding!r} (known: {known})"
                ) from None
        bps = _BYTES_PER_SAMPLE[self.encoding]
        object.__setattr__(self, "_frame_bytes", 0 if bps is None else bps * self.channels)

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample frame (one sample of every channel)."""
        size = self._frame_bytes
        if not size:
            raise AudioFormatError(f"{self.encoding} has no fixed sample size")
        return size

    def samples_in(self, nbytes: int) -> int:
        """Number of sample frames in a buffer of ``nbytes``; raises if it is not whole."""
        size = self.frame_bytes
        count, rest = divmod(nbytes, size)
        if rest:
            raise AudioFormatError(
                f"{nbytes} bytes is not a whole number of {size}-byte sample frames ({self})"
            )
        return count

    def bytes_for_ms(self, ms: float) -> int:
        """Bytes of ``ms`` milliseconds of audio, rounded down to whole sample frames."""
        return int(self.rate * ms // 1000) * self.frame_bytes

    def samples_for_ms(self, ms: float) -> int:
        """Sample frames in ``ms`` milliseconds (rounded down)."""
        return int(self.rate * ms // 1000)

    def duration_ns(self, nbytes: int) -> int:
        """Duration in nanoseconds of a buffer of ``nbytes``."""
        return self.samples_in(nbytes) * _NS_PER_S // self.rate

    def replace(
        self,
        *,
        rate: int | None = None,
        channels: int | None = None,
        encoding: Encoding | str | None = None,
    ) -> AudioFormat:
        """A copy with some fields changed."""
        return AudioFormat(
            self.rate if rate is None else rate,
            self.channels if channels is None else channels,
            self.encoding if encoding is None else Encoding(encoding),
        )

    def __str__(self) -> str:
        return f"{self.encoding.value}/{self.rate}Hz/{self.channels}ch"


def _frozen(values: Iterable[object] | None, kind: type) -> frozenset[object] | None:
    if values is None:
        return None
    out = frozenset(kind(v) for v in values)
    if not out:
        raise AudioFormatError("an accepted-format set may not be empty; use None for 'any'")
    return out


@dataclass(frozen=True, slots=True, init=False)
class AudioCaps:
    """The audio formats a port accepts. ``None`` in a field means "any value".

    ``AudioCaps(rates={16000}, channels={1}, encodings={"pcm_s16le"})`` accepts
    exactly 16 kHz mono int16; ``AudioCaps()`` accepts everything.
    """

    rates: frozenset[int] | None
    channels: frozenset[int] | None
    encodings: frozenset[Encoding] | None

    def __init__(
        self,
        rates: Iterable[int] | None = None,
        channels: Iterable[int] | None = None,
        encodings: Iterable[Encoding | str] | None = None,
    ) -> None:
        object.__setattr__(self, "rates", _frozen(rates, int))
        object.__setattr__(self, "channels", _frozen(channels, int))
        object.__setattr__(self, "encodings", _frozen(encodings, Encoding))

    @classmethod
    def exactly(cls, fmt: AudioFormat) -> AudioCaps:
        """Caps that accept only ``fmt``."""
        return cls({fmt.rate}, {fmt.channels}, {fmt.encoding})

    def accepts(self, fmt: AudioFormat) -> bool:
        """True if ``fmt`` satisfies every field."""
        return (
            (self.rates is None or fmt.rate in self.rates)
            and (self.channels is None or fmt.channels in self.channels)
            and (self.encodings is None or fmt.encoding in self.encodings)
        )

    def intersect(self, other: AudioCaps) -> AudioCaps | None:
        """Caps accepted by both, or ``None`` if nothing is."""

        def meet(a: frozenset[object] | None, b: frozenset[object] | None) -> object:
            if a is None:
                return b
            if b is None:
                return a
            both = a & b
            return both if both else _EMPTY

        rates = meet(self.rates, other.rates)
        channels = meet(self.channels, other.channels)
        encodings = meet(self.encodings, other.encodings)
        if _EMPTY in (rates, channels, encodings):
            return None
        return AudioCaps(rates, channels, encodings)  # type: ignore[arg-type]

    def fixate(self, near: AudioFormat) -> AudioFormat:
        """The accepted format closest to ``near``: same value where allowed, else nearest.

        Rates prefer the smallest accepted rate at or above ``near.rate`` (no
        information lost), else the highest below it. Channels prefer the
        nearest count. Encodings prefer ``near``'s, then int16, then float32.
        """
        rate = near.rate
        if self.rates is not None and rate not in self.rates:
            above = sorted(r for r in self.rates if r >= rate)
            rate = above[0] if above else max(self.rates)
        channels = near.channels
        if self.channels is not None and channels not in self.channels:
            channels = min(self.channels, key=lambda c: (abs(c - near.channels), c))
        encoding = near.encoding
        if self.encodings is not None and encoding not in self.encodings:
            for preferred in (Encoding.PCM_S16LE, Encoding.PCM_F32LE):
                if preferred in self.encodings:
                    encoding = preferred
                    break
            else:
                encoding = sorted(self.encodings)[0]
        return AudioFormat(rate, channels, encoding)

    def __str__(self) -> str:
        def show(values: frozenset[object] | None) -> str:
            return "any" if values is None else "|".join(sorted(str(v) for v in values))

        return f"{show(self.encodings)}/{show(self.rates)}Hz/{show(self.channels)}ch"


_EMPTY = frozenset({object()})
