"""Frame-level voice activity detection (VAD) for 8 and 16 kHz int16 audio.

:class:`Vad` decides, for each frame of 10, 20 or 30 ms, whether it holds
speech. It is a small compiled kernel (csrc/vad.c, a few microseconds per
frame) with a numpy fallback that gives the same decisions. The ``vad.native``
node wraps it; use this class directly to run a VAD outside a graph.

How it decides (csrc/vad.h has the details): the audio is brought to 8 kHz and
analysed every 10 ms over a 16 ms window; six sub-band log energies
(125 Hz - 3.75 kHz) are compared with a per-band noise floor that falls at once
to quieter input and rises slowly (more slowly during speech), so steady noise
of any level and colour becomes the new floor. The score adds the mean
per-band SNR (dB above the floor) and the "tonality" of the spectrum whitened
by the floor (how far its flatness falls below that of noise), since speech is
peaky where noise is flat. A hop is speech when the score passes the
aggressiveness preset's threshold; a hangover keeps speech on for a few hops
after a run of speech hops, so word endings are not cut. A frame is speech if
any of its hops is.

``aggressiveness`` 0 to 3 (as in webrtcvad) raises the threshold and shortens
the hangover: 0 misses the least speech, 3 flags the least noise. On
noise-only input a higher preset never flags more frames than a lower one.

``IMPLEMENTATION`` says which code runs: ``"c"`` or ``"numpy"``.
"""

from __future__ import annotations

from typing import Final, Protocol

from ..errors import AudioFormatError, ConfigError, UsageError
from ..typing import BytesLike
from ._backend import load_backend

__all__ = ["AGGRESSIVENESS", "FRAME_MS", "IMPLEMENTATION", "RATES", "Vad"]

RATES: Final = (8000, 16000)
"""Sample rates in Hz the VAD accepts."""

FRAME_MS: Final = (10, 20, 30)
"""Frame lengths in ms."""

AGGRESSIVENESS: Final = (0, 1, 2, 3)
"""Presets, from most speech kept to most noise rejected."""


class _Stream(Protocol):
    """What ``_vad_c.Vad`` and ``_vad_ref.Vad`` both provide."""

    @property
    def probability(self) -> float: ...
    @property
    def volume_db(self) -> float: ...
    def process(self, data: BytesLike, /) -> bool: ...
    def reset(self) -> None: ...


class _Backend(Protocol):
    def Vad(self, rate: int, frame_samples: int, aggressiveness: int, /) -> _Stream: ...  # a class


# Looked up as a module global when a Vad is made, so the tests can run one test
# class against each implementation (tests/dsp/test_vad.py).

_backend: _Backend
IMPLEMENTATION: str
_backend, IMPLEMENTATION = load_backend("vad")


class Vad:
    """A VAD for one stream of mono int16 frames of ``frame_ms`` at ``rate`` Hz.

    ``Vad(16000)`` takes 20 ms frames (320 samples, 640 bytes) at 16 kHz.
    :meth:`process` returns the frame's decision; :attr:`probability` and
    :attr:`volume_db` describe the same frame. The state (noise floor,
    hangover) carries from frame to frame, so feed one stream, in order, and
    :meth:`reset` before another. Not thread-safe.
    """

    __slots__ = ("_impl", "aggressiveness", "frame_bytes", "frame_ms", "frame_samples", "rate")

    def __init__(self, rate: int = 16000, frame_ms: int = 20, aggressiveness: int = 2) -> None:
        for name, value, allowed in (
            ("rate", rate, RATES),
            ("frame_ms", frame_ms, FRAME_MS),
            ("aggressiveness", aggressiveness, AGGRESSIVENESS),
        ):
            if type(value) is not int:
                raise UsageError(f"Vad: {name} must be an int, got {type(value).__name__}")
            if value not in allowed:
                error = AudioFormatError if name == "rate" else ConfigError
                choices = ", ".join(str(v) for v in allowed)
                raise error(f"Vad: {name} must be one of {choices}, got {value}")
        self.rate: Final = rate
        self.frame_ms: Final = frame_ms
        self.aggressiveness: Final = aggressiveness
        self.frame_samples: Final = rate * frame_ms // 1000
        self.frame_bytes: Final = 2 * self.frame_samples
        self._impl = _backend.Vad(rate, self.frame_samples, aggressiveness)

    def __repr__(self) -> str:
        return f"Vad({self.rate}, frame_ms={self.frame_ms}, aggressiveness={self.aggressiveness})"

    def process(self, frame: BytesLike) -> bool:
        """Whether ``frame`` (exactly ``frame_bytes`` of int16 samples) holds speech."""
        if type(frame) is not bytes or len(frame) != self.frame_bytes:
            frame = self._check(frame)
        return self._impl.process(frame)

    def _check(self, frame: object) -> BytesLike:
        try:
            view = memoryview(frame)  # type: ignore[arg-type]
        except TypeError:
            raise UsageError(
                f"Vad.process: expected bytes, bytearray or memoryview, got {type(frame).__name__}"
            ) from None
        if not view.c_contiguous:
            raise AudioFormatError("Vad.process: the buffer is not contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if view.nbytes != self.frame_bytes:
            raise AudioFormatError(
                f"Vad.process: a frame must be {self.frame_bytes} bytes ({self.frame_ms} ms of "
                f"int16 mono at {self.rate} Hz), got {view.nbytes}"
            )
        return view

    @property
    def probability(self) -> float:
        """The last frame's speech probability, 0 to 1 (before the hangover)."""
        return self._impl.probability

    @property
    def volume_db(self) -> float:
        """The last frame's RMS level in dBFS (-120 for digital silence)."""
        return self._impl.volume_db

    def reset(self) -> None:
        """Forget the stream (noise floor, hangover): the next frame starts a new one."""
        self._impl.reset()
