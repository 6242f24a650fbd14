"""Compiled byte ring and rechunker: a thin Cython layer over csrc/ring.c.

Private: import :mod:`vbgraph.dsp.ring`, which checks arguments and falls back to
the pure-Python reference (:mod:`vbgraph.dsp._ring_ref`) when this module is
missing. Both implement the same contract, stated in ring.py.

Caller's contract (ring.py keeps it): sizes are ints >= 1, counts ints >= 0,
and ``data`` is a contiguous buffer; it is read as raw bytes. (A memoryview of
another item format is still cut correctly, through the copying path.)

The GIL is kept for every call, a deliberate departure from STYLE.md rule 8.
These objects hold state, so releasing the GIL would let two threads write the
same handle at once and would need a lock per object, and each call copies a
few kilobytes at most (a 20 ms frame takes tens of nanoseconds to copy), less
than a GIL handoff costs.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t

from ._ring cimport (
    vb_rechunk,
    vb_rechunk_flush,
    vb_rechunk_frame_bytes,
    vb_rechunk_free,
    vb_rechunk_new,
    vb_rechunk_out_frames,
    vb_rechunk_pending,
    vb_rechunk_process,
    vb_rechunk_reset,
    vb_ring,
    vb_ring_capacity,
    vb_ring_free,
    vb_ring_new,
    vb_ring_peek,
    vb_ring_read,
    vb_ring_reset,
    vb_ring_size,
    vb_ring_skip,
    vb_ring_space,
    vb_ring_write,
    vb_ring_write_overwrite,
)

__all__ = ["Rechunker", "RingBuffer"]


@cython.final
cdef class RingBuffer:
    """A fixed-capacity FIFO of bytes over a C ring (see ring.py for the contract)."""

    cdef vb_ring* _h

    def __cinit__(self, Py_ssize_t capacity):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._h = vb_ring_new(<size_t>capacity)
        if self._h == NULL:
            raise MemoryError(f"vb_ring_new({capacity}) failed")

    def __dealloc__(self):
        vb_ring_free(self._h)

    @property
    def capacity(self):
        return vb_ring_capacity(self._h)

    @property
    def size(self):
        return vb_ring_size(self._h)

    @property
    def space(self):
        return vb_ring_space(self._h)

    def __len__(self):
        return vb_ring_size(self._h)

    def write(self, data):
        cdef Py_buffer src
        cdef size_t written
        PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            written = vb_ring_write(self._h, <const uint8_t*>src.buf, <size_t>src.len)
        finally:
            PyBuffer_Release(&src)
        return written

    def write_overwrite(self, data):
        cdef Py_buffer src
        cdef size_t dropped
        PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            dropped = vb_ring_write_overwrite(self._h, <const uint8_t*>src.buf, <size_t>src.len)
        finally:
            PyBuffer_Release(&src)
        return dropped

    def read(self, Py_ssize_t n):
        cdef size_t count = self._available(n)
        cdef bytes out
        if count == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>count)
        vb_ring_read(self._h, <uint8_t*>PyBytes_AS_STRING(out), count)
        return out

    def peek(self, Py_ssize_t n):
        cdef size_t count = self._available(n)
        cdef bytes out
        if count == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>count)
        vb_ring_peek(self._h, <uint8_t*>PyBytes_AS_STRING(out), count)
        return out

    def skip(self, Py_ssize_t n):
        return vb_ring_skip(self._h, self._available(n))

    def reset(self):
        vb_ring_reset(self._h)

    cdef size_t _available(self, Py_ssize_t n) except? 0:
        """min(n, size), refusing a negative n."""
        cdef size_t size = vb_ring_size(self._h)
        if n < 0:
            raise ValueError(f"byte count must be >= 0, got {n}")
        return <size_t>n if <size_t>n < size else size


@cython.final
cdef class Rechunker:
    """Cuts a byte stream into frames of exactly ``frame_bytes`` (see ring.py).

    Where ``push`` copies and where it does not (the contract ring.py documents):

    - A frame lying wholly inside an immutable input (``bytes``, or a read-only
      memoryview of ``bytes``) is a memoryview slice of it: no copy.
    - A frame that straddles two pushes is assembled into a new ``bytes`` from
      the pending bytes and the head of the input. That is one frame copied,
      unavoidably: its bytes live in two buffers.
    - Input that may change after ``push`` returns (bytearray, writable or
      bytearray-backed memoryview, numpy array) is copied once: all its whole
      frames go into one new ``bytes``, and the frames are slices of that.
      Views of the caller's buffer would change with it, and would stop a
      bytearray from being resized.
    - The trailing partial frame (< frame_bytes) is copied into the C
      rechunker, so no input is held after ``push`` returns.
    """

    cdef vb_rechunk* _h
    cdef size_t _frame

    def __cinit__(self, Py_ssize_t frame_bytes):
        if frame_bytes < 1:
            raise ValueError(f"frame_bytes must be at least 1, got {frame_bytes}")
        self._h = vb_rechunk_new(<size_t>frame_bytes)
        if self._h == NULL:
            raise MemoryError(f"vb_rechunk_new({frame_bytes}) failed")
        self._frame = <size_t>frame_bytes

    def __dealloc__(self):
        vb_rechunk_free(self._h)

    @property
    def frame_bytes(self):
        return vb_rechunk_frame_bytes(self._h)

    @property
    def pending(self):
        return vb_rechunk_pending(self._h)

    def push(self, data):
        cdef Py_buffer src
        cdef list chunks
        PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            if type(data) is bytes:
                chunks = self._push_views(data, &src)
            elif (
                type(data) is memoryview
                and (<object>data).readonly
                and type((<object>data).obj) is bytes
                and (<object>data).format == "B"  # slices count items: bytes only
                and (<object>data).ndim == 1
            ):
                chunks = self._push_views(data, &src)
            else:
                chunks = self._push_copy(&src)
        finally:
            PyBuffer_Release(&src)
        return chunks

    cdef list _push_copy(self, Py_buffer* src):
        """All whole frames copied, once, into one new bytes; returns slices of it."""
        cdef const uint8_t* buf = <const uint8_t*>src.buf
        cdef size_t n = <size_t>src.len
        cdef size_t frames = vb_rechunk_out_frames(self._h, n)
        cdef size_t f = self._frame
        cdef size_t i
        cdef bytes out
        if frames == 0:
            vb_rechunk_process(self._h, buf, n, NULL)
            return []
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(frames * f))
        vb_rechunk_process(self._h, buf, n, <uint8_t*>PyBytes_AS_STRING(out))
        view = memoryview(out)
        if frames == 1:
            return [view]
        return [view[i * f : (i + 1) * f] for i in range(frames)]

    cdef list _push_views(self, object view, Py_buffer* src):
        """Frames inside ``view`` (bytes, or a memoryview of bytes) returned as slices of it."""
        cdef const uint8_t* buf = <const uint8_t*>src.buf
        cdef size_t n = <size_t>src.len
        cdef size_t f = self._frame
        cdef size_t pending = vb_rechunk_pending(self._h)
        cdef size_t start = 0
        cdef size_t frames
        cdef size_t i
        cdef bytes first
        cdef list chunks = []
        if pending > 0:
            if n < f - pending:
                vb_rechunk_process(self._h, buf, n, NULL)
                return chunks
            # Completes the pending frame: the one copy on this path.
            start = f - pending
            first = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>f)
            vb_rechunk_process(self._h, buf, start, <uint8_t*>PyBytes_AS_STRING(first))
            chunks.append(memoryview(first))
        frames = (n - start) // f
        if frames > 0 and type(view) is bytes:
            view = memoryview(view)
        if frames == 1 and start == 0 and n == f:
            chunks.append(view)  # exactly one frame: the view itself
        else:
            for i in range(frames):
                chunks.append(view[start + i * f : start + (i + 1) * f])
        # Nothing is pending now and the tail is shorter than a frame, so this
        # only stores it.
        start += frames * f
        vb_rechunk_process(self._h, buf + start, n - start, NULL)
        return chunks

    def flush(self, bint pad):
        cdef size_t pending = vb_rechunk_pending(self._h)
        cdef size_t written
        cdef bytes out
        if pending == 0:
            return None
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(self._frame if pad else pending))
        written = vb_rechunk_flush(self._h, <uint8_t*>PyBytes_AS_STRING(out), pad)
        if written != <size_t>len(out):  # cannot happen; a broken invariant must not pass
            raise RuntimeError(f"vb_rechunk_flush wrote {written} bytes, expected {len(out)}")
        return out

    def reset(self):
        vb_rechunk_reset(self._h)
