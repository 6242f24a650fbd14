"""Byte ring buffer and rechunker: fixed-size buffering on the audio path.

:class:`RingBuffer` is a FIFO of bytes with a fixed capacity, for jitter and
playout buffers: its memory is allocated once, and when it is full the caller
picks the policy per call, :meth:`~RingBuffer.write` (keep what fits, report
how much) or :meth:`~RingBuffer.write_overwrite` (drop the oldest bytes, report
how many). :class:`Rechunker` turns a stream arriving in pieces of any size
(TTS output, network reads) into frames of exactly ``frame_bytes`` bytes, such
as 20 ms transport frames, handing out memoryviews without copying wherever the
input allows it.

Both count bytes, not samples: a piece may end in the middle of a sample (a
websocket message of 1001 bytes of int16 audio), and the next piece completes
it. Size frames as ``rate * ms // 1000 * channels * sample_bytes``; 20 ms of
16 kHz mono int16 is 640 bytes. Neither is thread-safe: use one from one thread
(or one task) at a time.

``IMPLEMENTATION`` says which code runs: ``"c"`` (csrc/ring.c) or ``"python"``
(the pure-Python reference, used when the compiled module is missing, with a
``RuntimeWarning`` once at import).
"""

from __future__ import annotations

import operator
import sys
from typing import Final, Protocol, final

from ..errors import UsageError
from ..typing import BytesLike
from ._backend import load_backend
from .pcm import _samples

__all__ = ["IMPLEMENTATION", "Rechunker", "RingBuffer"]


class _Ring(Protocol):
    @property
    def capacity(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def space(self) -> int: ...
    def write(self, data: BytesLike, /) -> int: ...
    def write_overwrite(self, data: BytesLike, /) -> int: ...
    def read(self, n: int, /) -> bytes: ...
    def peek(self, n: int, /) -> bytes: ...
    def skip(self, n: int, /) -> int: ...
    def reset(self) -> None: ...


class _Chunker(Protocol):
    @property
    def frame_bytes(self) -> int: ...
    @property
    def pending(self) -> int: ...
    def push(self, data: BytesLike, /) -> list[memoryview]: ...
    def flush(self, pad: bool, /) -> bytes | None: ...
    def reset(self) -> None: ...


class _Backend(Protocol):
    """What ``_ring_c`` and ``_ring_ref`` both provide."""

    def RingBuffer(self, capacity: int, /) -> _Ring: ...  # a class
    def Rechunker(self, frame_bytes: int, /) -> _Chunker: ...  # a class


# Looked up as a module global when an object is made, so that the tests can run
# one test class against each implementation (tests/dsp/test_ring.py).

_impl: _Backend
IMPLEMENTATION: str
_impl, IMPLEMENTATION = load_backend("ring", "python")

_MAX_SIZE: Final = sys.maxsize


def _count(n: int, func: str, *, least: int = 0) -> int:
    """``n`` as an int of at least ``least``, or a UsageError naming ``func``."""
    try:
        value = operator.index(n)
    except TypeError:
        raise UsageError(f"{func}: expected an int, got {type(n).__name__}") from None
    if not least <= value <= _MAX_SIZE:
        raise UsageError(f"{func}: expected an int from {least} to {_MAX_SIZE}, got {value}")
    return value


@final
class RingBuffer:
    """A FIFO of at most ``capacity`` bytes, allocated once.

    Choose the capacity from the latency it may add: a playout buffer of 200 ms
    of 8 kHz mu-law holds 1600 bytes, and at worst delays audio by those 200 ms.
    Reads and writes move bytes in and out by copying (the memory is reused, so
    it cannot be lent out); nothing is allocated after construction except the
    ``bytes`` that :meth:`read` and :meth:`peek` return.
    """

    __slots__ = ("_ring",)

    def __init__(self, capacity: int) -> None:
        self._ring = _impl.RingBuffer(_count(capacity, "RingBuffer", least=1))

    def __repr__(self) -> str:
        return f"RingBuffer(size={self.size}, capacity={self.capacity})"

    def __len__(self) -> int:
        """The bytes stored, as :attr:`size`."""
        return self._ring.size

    @property
    def capacity(self) -> int:
        """The most bytes the ring can hold."""
        return self._ring.capacity

    @property
    def size(self) -> int:
        """The bytes stored, readable now."""
        return self._ring.size

    @property
    def space(self) -> int:
        """The bytes :meth:`write` can take now: ``capacity - size``."""
        return self._ring.space

    def write(self, data: BytesLike) -> int:
        """Append as much of ``data`` as fits; returns how many bytes were taken.

        When the result is less than ``len(data)``, the rest was not stored: keep
        it for later, or count it as dropped. Use :meth:`write_overwrite` to drop
        old bytes instead of new ones.
        """
        return self._ring.write(_samples(data, 1, "RingBuffer.write"))

    def write_overwrite(self, data: BytesLike) -> int:
        """Append all of ``data``, dropping the oldest bytes to make room; returns how many.

        For a playout buffer that must stay current rather than complete. If
        ``data`` is longer than the capacity, only its last ``capacity`` bytes are
        kept, and its first ones count as dropped too, so that
        ``size`` grows by ``len(data) - dropped``.
        """
        return self._ring.write_overwrite(_samples(data, 1, "RingBuffer.write_overwrite"))

    def read(self, n: int) -> bytes:
        """Remove and return the oldest ``min(n, size)`` bytes (``b""`` when empty)."""
        return self._ring.read(_count(n, "RingBuffer.read"))

    def peek(self, n: int) -> bytes:
        """Return the oldest ``min(n, size)`` bytes without removing them."""
        return self._ring.peek(_count(n, "RingBuffer.peek"))

    def skip(self, n: int) -> int:
        """Drop the oldest ``min(n, size)`` bytes; returns how many were dropped."""
        return self._ring.skip(_count(n, "RingBuffer.skip"))

    def reset(self) -> None:
        """Empty the ring, as on an interruption. The capacity stays allocated."""
        self._ring.reset()


@final
class Rechunker:
    """Cuts a byte stream into frames of exactly ``frame_bytes`` bytes.

    Feed it pieces of any size with :meth:`push`, which returns the frames the
    piece completes; any split of a stream gives the same frames as one push.
    Bytes short of a frame wait in the rechunker (at most ``frame_bytes - 1``,
    which is the latency it adds) until the next push, :meth:`flush` at the end
    of the stream, or :meth:`reset` on interruption.

    Zero-copy contract of :meth:`push`: every frame is a read-only
    ``memoryview`` of exactly ``frame_bytes`` bytes, and

    - a frame lying wholly inside an immutable input (``bytes``, or a
      memoryview of ``bytes``) is a view of that input, no copy
      (``frame.obj is data``);
    - a frame straddling two pushes is assembled into new memory: one frame's
      worth of copying, because its bytes live in two buffers;
    - the frames of a mutable input (``bytearray``, numpy array, a memoryview of
      either) are copied once, into one new ``bytes`` that they all view,
      because the caller may change or resize its buffer after the call;
    - the trailing partial frame is copied into the rechunker, so no input is
      held once :meth:`push` returns.
    """

    __slots__ = ("_chunker",)

    def __init__(self, frame_bytes: int) -> None:
        self._chunker = _impl.Rechunker(_count(frame_bytes, "Rechunker", least=1))

    def __repr__(self) -> str:
        return f"Rechunker(frame_bytes={self.frame_bytes}, pending={self.pending})"

    @property
    def frame_bytes(self) -> int:
        """The size of every frame :meth:`push` returns."""
        return self._chunker.frame_bytes

    @property
    def pending(self) -> int:
        """Bytes waiting for the next frame, ``0 .. frame_bytes - 1``."""
        return self._chunker.pending

    def push(self, data: BytesLike) -> list[memoryview]:
        """Append ``data`` to the stream; returns the frames now complete, oldest first.

        The list is empty while less than a frame has arrived. See the class
        docstring for which frames are views of ``data`` and which are copies.
        """
        return self._chunker.push(_samples(data, 1, "Rechunker.push"))

    def flush(self, pad: bool = False) -> bytes | None:
        """End of stream: return the pending bytes and empty the rechunker.

        ``None`` when nothing is pending. With ``pad=True`` the remainder is
        filled up to a whole frame with zero bytes, which is silence for
        ``pcm_s16le`` and ``pcm_f32le`` (not for G.711, where silence is 0xFF or
        0xD5).
        """
        return self._chunker.flush(bool(pad))

    def reset(self) -> None:
        """Drop the pending bytes, as on an interruption."""
        self._chunker.reset()
