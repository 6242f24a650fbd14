"""Pure-Python reference for the ring buffer and rechunker of csrc/ring.c.

The compiled module is tested against the same specification, and
:mod:`vbgraph.dsp.ring` uses these classes when it is missing. They keep the
same zero-copy contract as ``_ring_c.Rechunker`` (its docstring says where a
copy happens), so the identity tests run against both. No numpy: a
``bytearray`` is the natural model of a byte FIFO.

Private, with the caller's contract of ``_ring_c``: sizes are ints >= 1, counts
ints >= 0, and ``data`` is bytes, bytearray, or a contiguous 1-D memoryview of
format ``"B"`` (what ring.py passes on).
"""

from __future__ import annotations

from typing import final

from ..typing import BytesLike

__all__ = ["Rechunker", "RingBuffer"]


@final
class RingBuffer:
    """A fixed-capacity FIFO of bytes (see ring.py for the contract)."""

    __slots__ = ("_capacity", "_data")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._data = bytearray()  # oldest byte first

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def space(self) -> int:
        return self._capacity - len(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def write(self, data: BytesLike) -> int:
        view = memoryview(data)
        count = min(len(view), self.space)
        self._data += view[:count]
        return count

    def write_overwrite(self, data: BytesLike) -> int:
        view = memoryview(data)
        n = len(view)
        if n >= self._capacity:
            dropped = len(self._data) + n - self._capacity
            self._data[:] = view[n - self._capacity :]
            return dropped
        dropped = max(0, len(self._data) + n - self._capacity)
        del self._data[:dropped]
        self._data += view
        return dropped

    def read(self, n: int) -> bytes:
        out = self.peek(n)
        del self._data[: len(out)]
        return out

    def peek(self, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"byte count must be >= 0, got {n}")
        return bytes(self._data[:n])

    def skip(self, n: int) -> int:
        if n < 0:
            raise ValueError(f"byte count must be >= 0, got {n}")
        count = min(n, len(self._data))
        del self._data[:count]
        return count

    def reset(self) -> None:
        self._data.clear()


@final
class Rechunker:
    """Cuts a byte stream into frames of exactly ``frame_bytes`` (see ring.py)."""

    __slots__ = ("_frame", "_pending")

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes < 1:
            raise ValueError(f"frame_bytes must be at least 1, got {frame_bytes}")
        self._frame = frame_bytes
        self._pending = bytearray()  # always shorter than a frame between calls

    @property
    def frame_bytes(self) -> int:
        return self._frame

    @property
    def pending(self) -> int:
        return len(self._pending)

    def push(self, data: BytesLike) -> list[memoryview]:
        source = memoryview(data)
        if source.format != "B" or source.ndim != 1:
            source = source.cast("B")  # slice bytes, not items
        immutable = source.readonly and type(source.obj) is bytes
        f = self._frame
        chunks: list[memoryview] = []
        start = 0
        if self._pending:
            need = f - len(self._pending)
            if len(source) < need:
                self._pending += source
                return chunks
            # The frame straddling two pushes is assembled: one frame copied.
            chunks.append(memoryview(bytes(self._pending + source[:need])))
            self._pending.clear()
            start = need
        frames = (len(source) - start) // f
        end = start + frames * f
        if frames:
            # A buffer the caller may change later is copied, once for all frames.
            body = source[start:end] if immutable else memoryview(bytes(source[start:end]))
            chunks.extend(body[i : i + f] for i in range(0, len(body), f))
        self._pending += source[end:]
        return chunks

    def flush(self, pad: bool) -> bytes | None:
        if not self._pending:
            return None
        out = bytes(self._pending)
        self._pending.clear()
        return out + bytes(self._frame - len(out)) if pad else out

    def reset(self) -> None:
        self._pending.clear()
