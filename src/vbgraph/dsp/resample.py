"""Sample-rate conversion of audio streams, with low delay.

:class:`Resampler` converts one stream of linear PCM (int16 or float32,
interleaved, 1 to 8 channels) between any two of :data:`SUPPORTED_RATES`. It is
a polyphase windowed-sinc (Kaiser) filter, compiled C with a numpy fallback,
built for the audio path of a live call:

- **Low delay.** Output lags input by the filter's half-length only:
  :attr:`Resampler.latency_ns` is under 1.9 ms at ``high`` quality when both
  rates are 16 kHz or more, 3.75 ms when one is 8 kHz (a filter's length grows
  as its transition band narrows, and 8 kHz has half of 16 kHz's).
- **No batching.** Each call returns every output sample its input makes
  possible: after ``n`` input frames of a stream, ``ceil((n - R) * L / M)``
  output frames have come out in total, where ``L / M`` is ``out_rate /
  in_rate`` in lowest terms and ``R = latency_frames``. A 20 ms chunk in gives
  20 ms out (give or take one frame), from the second chunk on.
- **Chunking does not matter.** Any split of a stream into calls, down to one
  frame per call, gives the same output bytes as one call.
- **Aligned output.** Output frame ``k`` stands for input instant
  ``k * in_rate / out_rate``, so output timestamps are ``t0 + k * 1e9 //
  out_rate`` from the stream's first input frame, as soxr's are. The stream is
  taken as silent before its first frame.
- **Length.** :meth:`Resampler.flush` at the end of a stream returns the tail
  and completes the output to ``round(n * out_rate / in_rate)`` frames (halves
  round up), the length soxr's one-shot resampling gives; it also resets.

Quality presets (``low``, ``medium``, ``high``) keep the passband flat to 0.9
of the lower rate's Nyquist frequency and attenuate from 1.1 of it on, by 55,
75 and 93 dB; ``high`` tracks soxr's very-high-quality output to within about
-95 dB in that passband. Aliases of content between 1.0 and 1.1 of the
Nyquist frequency land above 0.9 of it, outside the passband, which is what
lets the filter stay short. docs/resampler.md has the figures.

Rate pairs outside :data:`SUPPORTED_RATES` raise :class:`AudioFormatError`;
soxr (the ``convert.resample`` node) covers them. ``IMPLEMENTATION`` says
which implementation runs: ``"c"`` or ``"numpy"`` (the reference, used when the
compiled module is missing; it gives the same bytes, slowly).
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from ..errors import AudioFormatError, ConfigError, UsageError
from ..formats import Encoding
from ..typing import BytesLike
from ._backend import FALLBACK_WARNING, load_backend

__all__ = [
    "IMPLEMENTATION",
    "QUALITIES",
    "SUPPORTED_RATES",
    "Quality",
    "Resampler",
    "is_supported",
]

_FALLBACK_WARNING: Final = FALLBACK_WARNING

SUPPORTED_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates in Hz; any pair of them (either way) is supported."""

Quality = Literal["low", "medium", "high"]
QUALITIES: Final[tuple[Quality, ...]] = ("low", "medium", "high")
"""Quality presets, cheapest first; the index is the C preset number."""

MAX_CHANNELS: Final = 8  # VB_RESAMPLE_MAX_CHANNELS
_FORMATS: Final = {Encoding.PCM_S16LE: (0, 2), Encoding.PCM_F32LE: (1, 4)}  # C code, bytes


class _Stream(Protocol):
    """What ``_resample_c.Resampler`` and ``_resample_ref.Resampler`` both provide."""

    def process(self, data: BytesLike, /) -> bytes: ...
    def flush(self) -> bytes: ...
    def reset(self) -> None: ...
    def out_frames(self, in_frames: int, /) -> int: ...
    @property
    def latency_frames(self) -> int: ...
    @property
    def latency_ns(self) -> int: ...


class _Backend(Protocol):
    """A module with a ``Resampler`` class: ``_resample_c`` or ``_resample_ref``."""

    def Resampler(  # a class, seen as a factory
        self, in_rate: int, out_rate: int, channels: int, sample_format: int, quality: int, /
    ) -> _Stream: ...


# Looked up as a module global when a Resampler is made, so the tests can run
# one test class against each implementation (tests/dsp/test_resample.py).

_backend: _Backend
IMPLEMENTATION: str
_backend, IMPLEMENTATION = load_backend("resample")

_RATES: Final = frozenset(SUPPORTED_RATES)


def is_supported(in_rate: int, out_rate: int) -> bool:
    """Whether :class:`Resampler` converts ``in_rate`` to ``out_rate`` (both in Hz)."""
    return in_rate in _RATES and out_rate in _RATES


def _check_int(value: object, name: str) -> int:
    if type(value) is not int:  # bool is an int subclass, and wrong here
        raise UsageError(f"Resampler: {name} must be an int, got {type(value).__name__}")
    return value


class Resampler:
    """A streaming resampler for one stream of interleaved linear PCM.

    ``Resampler(48000, 16000)`` takes int16 mono at 48 kHz and gives 16 kHz.
    Feed it with :meth:`process` as audio arrives, call :meth:`flush` at the end
    of the stream (or :meth:`reset` to drop it on interruption), and reuse it
    for the next stream. Not thread-safe: one stream, one thread at a time.

    With ``in_rate == out_rate`` it is a passthrough: :meth:`process` returns
    its input (the same object when given ``bytes``) and the latency is 0.
    """

    __slots__ = ("_frame_bytes", "_impl", "channels", "encoding", "in_rate", "out_rate", "quality")

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        *,
        channels: int = 1,
        encoding: Encoding | str = Encoding.PCM_S16LE,
        quality: Quality = "high",
    ) -> None:
        _check_int(in_rate, "in_rate")
        _check_int(out_rate, "out_rate")
        _check_int(channels, "channels")
        if not is_supported(in_rate, out_rate):
            rates = ", ".join(str(r) for r in SUPPORTED_RATES)
            raise AudioFormatError(
                f"Resampler: {in_rate} -> {out_rate} Hz is not supported: both rates must be "
                f"among {rates} Hz; soxr (the convert.resample node) covers other pairs"
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioFormatError(
                f"Resampler: channels must be 1 to {MAX_CHANNELS}, got {channels}"
            )
        try:
            fmt = Encoding(encoding)
            code, sample_bytes = _FORMATS[fmt]
        except (ValueError, KeyError):
            raise AudioFormatError(
                f"Resampler: encoding must be pcm_s16le or pcm_f32le, got {encoding!r}"
            ) from None
        if quality not in QUALITIES:
            raise ConfigError(
                f"Resampler: quality must be 'low', 'medium' or 'high', got {quality!r}"
            )
        self.in_rate: Final = in_rate
        self.out_rate: Final = out_rate
        self.channels: Final = channels
        self.encoding: Final = fmt
        self.quality: Final[Quality] = quality
        self._frame_bytes = sample_bytes * channels
        self._impl: _Stream | None = None
        if in_rate != out_rate:
            self._impl = _backend.Resampler(
                in_rate, out_rate, channels, code, QUALITIES.index(quality)
            )

    def __repr__(self) -> str:
        return (
            f"Resampler({self.in_rate}, {self.out_rate}, channels={self.channels}, "
            f"encoding={self.encoding.value!r}, quality={self.quality!r})"
        )

    @property
    def passthrough(self) -> bool:
        """True when the rates are equal and audio goes through untouched."""
        return self._impl is None

    @property
    def latency_frames(self) -> int:
        """The algorithmic delay in input frames (0 for a passthrough).

        Output frame ``k`` comes out once input frame ``floor(k * in_rate /
        out_rate) + latency_frames`` has gone in.
        """
        return 0 if self._impl is None else self._impl.latency_frames

    @property
    def latency_ns(self) -> int:
        """The same delay in nanoseconds, ``latency_frames * 1e9 / in_rate`` rounded."""
        return 0 if self._impl is None else self._impl.latency_ns

    def out_frames(self, in_frames: int) -> int:
        """Exactly how many frames :meth:`process` returns for ``in_frames`` more frames."""
        if _check_int(in_frames, "in_frames") < 0:
            raise AudioFormatError(f"Resampler.out_frames: in_frames must be >= 0, got {in_frames}")
        return in_frames if self._impl is None else self._impl.out_frames(in_frames)

    def process(self, data: BytesLike) -> bytes:
        """Resample the next part of the stream; returns every output frame now ready.

        ``data`` is any contiguous buffer (``bytes``, ``bytearray``,
        ``memoryview``, a numpy array) of whole interleaved frames, possibly
        empty. It is read, kept as history as needed (copied), and may be
        reused after the call. The result is a new ``bytes`` of
        ``out_frames(len(data) // frame_bytes)`` frames, maybe empty.
        """
        if type(data) is bytes or type(data) is bytearray:  # the hot path: no view needed
            nbytes = len(data)
        else:
            data = _as_bytes_view(data, "Resampler.process")
            nbytes = data.nbytes
        if nbytes % self._frame_bytes:
            raise AudioFormatError(
                f"Resampler.process: buffer length {nbytes} bytes is not a whole number of "
                f"{self._frame_bytes}-byte frames ({self.channels} x {self.encoding.value})"
            )
        impl = self._impl
        if impl is None:
            return data if type(data) is bytes else bytes(data)
        return impl.process(data)

    def flush(self) -> bytes:
        """End the stream: return its tail and reset for the next stream.

        The tail is what the filter still owed (the last ``latency_frames`` of
        input, with silence after them); with it the stream's output has
        ``round(n * out_rate / in_rate)`` frames in all, halves rounding up.
        """
        return b"" if self._impl is None else self._impl.flush()

    def reset(self) -> None:
        """Drop the stream (history and pending output): the next frame starts a new one."""
        if self._impl is not None:
            self._impl.reset()


def _as_bytes_view(data: object, func: str) -> memoryview:
    """``data`` as a flat, contiguous memoryview of bytes."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(
            f"{func}: expected bytes, bytearray or memoryview, got {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        raise AudioFormatError(f"{func}: the buffer is not contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view
