"""Compiled streaming resampler: a thin Cython layer over csrc/resample.c.

Private: import :mod:`vbgraph.dsp.resample`, which checks arguments and falls
back to the numpy reference (:mod:`vbgraph.dsp._resample_ref`) when this
module is missing. Both implement the same contract and give the same bits.

Caller's contract (resample.py keeps it): the constructor's arguments pass
``vb_resampler_check``, and ``data`` is a C-contiguous buffer of whole frames;
a trailing partial frame would be ignored.

Zero-copy: the input is read in place through the buffer protocol and the
kernel writes straight into a fresh ``bytes`` of exactly ``out_frames(n)``
frames, allocated with ``PyBytes_FromStringAndSize(NULL, size)``. That count is
exact, so the ``bytes`` is never shrunk; if the C code ever wrote fewer frames,
``process`` would return a slice (a copy) rather than undefined bytes. The one
other copy is for misaligned input; see ``_acquire``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uint32_t, uintptr_t

from ._resample cimport (
    VB_RESAMPLE_EDRAINING,
    VB_RESAMPLE_EINVAL,
    VB_RESAMPLE_EUNSUPPORTED,
    VB_RESAMPLE_F32,
    VB_RESAMPLE_KERNEL_AUTO,
    VB_RESAMPLE_KERNEL_AVX2,
    VB_RESAMPLE_KERNEL_SCALAR,
    VB_RESAMPLE_OK,
    vb_resampler,
    vb_resampler_check,
    vb_resampler_coefficients,
    vb_resampler_flush,
    vb_resampler_flush_frames,
    vb_resampler_free,
    vb_resampler_kernel,
    vb_resampler_latency,
    vb_resampler_latency_ns,
    vb_resampler_new,
    vb_resampler_out_frames,
    vb_resampler_process,
    vb_resampler_ratio,
    vb_resampler_reset,
    vb_resampler_set_kernel,
    vb_resampler_taps,
)

__all__ = ["Resampler"]

# The GIL is released around the C call only when the call does at least this
# many multiply-adds (output frames x taps x channels), about 35 us of work
# with the AVX2 kernel: 0.36 s of audio at 48 -> 16 kHz on the high preset. A
# 20 ms chunk is 60 000 of them, about 2 us, and keeps the GIL: dropping it
# while another thread waits lets that thread take the GIL, and this one may
# then wait a whole switch interval (5 ms by default) to get it back, the
# convoy effect that would turn a 2 us call into a 5 ms stall on the audio
# path. Long buffers are where threads gain from running in parallel;
# benchmarks/bench_resample.py measures both.
cdef size_t NOGIL_MIN_MACS = 1 << 20

_KERNELS = {VB_RESAMPLE_KERNEL_SCALAR: "scalar", VB_RESAMPLE_KERNEL_AVX2: "avx2"}
_KERNEL_IDS = {
    "auto": VB_RESAMPLE_KERNEL_AUTO,
    "scalar": VB_RESAMPLE_KERNEL_SCALAR,
    "avx2": VB_RESAMPLE_KERNEL_AVX2,
}


cdef int _check(int rc, str name) except -1:
    """Raise, naming the C function, if it returned an error status."""
    if rc == VB_RESAMPLE_OK:
        return 0
    if rc == VB_RESAMPLE_EINVAL:
        raise ValueError(f"{name}: invalid argument (NULL handle or buffer), status {rc}")
    if rc == VB_RESAMPLE_EUNSUPPORTED:
        raise ValueError(f"{name}: not supported, status {rc}")
    if rc == VB_RESAMPLE_EDRAINING:
        raise RuntimeError(f"{name}: a flush is unfinished, status {rc}")
    raise RuntimeError(f"{name} failed with status {rc}")


cdef int _acquire(object data, Py_buffer* view, size_t align) except -1:
    """Get a read-only view of ``data``'s bytes, starting at a multiple of ``align``.

    A misaligned buffer is copied, deliberately: C requires int16/float
    pointers to be aligned. Only a memoryview sliced at an odd offset gets
    here; bytes and bytearray data are always aligned. The view keeps the copy
    alive.
    """
    PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    if (<uintptr_t>view.buf) % align == 0:
        return 0
    try:
        copy = PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(view)
    PyObject_GetBuffer(copy, view, PyBUF_SIMPLE)
    return 0


cdef class Resampler:
    """One stream's resampler; owns a ``vb_resampler`` handle."""

    cdef vb_resampler* _h
    cdef size_t _sample_bytes
    cdef size_t _frame_bytes
    cdef size_t _macs_per_frame  # taps x channels
    cdef bint _busy  # a call runs without the GIL: refuse a second one

    def __cinit__(
        self, int in_rate, int out_rate, int channels, int sample_format, int quality
    ):
        self._h = NULL
        _check(
            vb_resampler_check(in_rate, out_rate, channels, sample_format, quality),
            "vb_resampler_new",
        )
        self._h = vb_resampler_new(in_rate, out_rate, channels, sample_format, quality)
        if self._h == NULL:
            raise MemoryError("vb_resampler_new: out of memory")
        self._sample_bytes = sizeof(float) if sample_format == VB_RESAMPLE_F32 else sizeof(int16_t)
        self._frame_bytes = self._sample_bytes * <size_t>channels
        self._macs_per_frame = vb_resampler_taps(self._h) * <size_t>channels
        self._busy = False

    def __dealloc__(self):
        vb_resampler_free(self._h)  # NULL is allowed

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("Resampler: already in use by another thread")
        return 0

    def process(self, data):
        cdef Py_buffer src
        cdef size_t n, want, used = 0, written = 0
        cdef int rc
        cdef bytes out
        cdef char* dst = NULL
        self._enter()
        _acquire(data, &src, self._sample_bytes)
        try:
            n = <size_t>src.len // self._frame_bytes
            want = vb_resampler_out_frames(self._h, n)
            if want == 0:
                out = b""
            else:
                out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(want * self._frame_bytes))
                dst = PyBytes_AS_STRING(out)
            if want * self._macs_per_frame >= NOGIL_MIN_MACS:
                self._busy = True
                with nogil:
                    rc = vb_resampler_process(self._h, src.buf, n, dst, want, &used, &written)
                self._busy = False
            else:
                rc = vb_resampler_process(self._h, src.buf, n, dst, want, &used, &written)
        finally:
            PyBuffer_Release(&src)
        _check(rc, "vb_resampler_process")
        if used != n:
            raise RuntimeError(f"vb_resampler_process: consumed {used} of {n} frames")
        if written != want:  # never: out_frames() is exact (see the module docstring)
            return out[: written * self._frame_bytes]
        return out

    def flush(self):
        cdef size_t want, written = 0
        cdef int rc
        cdef bytes out
        self._enter()
        want = vb_resampler_flush_frames(self._h)
        if want == 0:
            vb_resampler_reset(self._h)  # a flush always leaves a fresh stream
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(want * self._frame_bytes))
        rc = vb_resampler_flush(self._h, PyBytes_AS_STRING(out), want, &written)
        _check(rc, "vb_resampler_flush")
        if written != want:
            raise RuntimeError(f"vb_resampler_flush: wrote {written} of {want} frames")
        return out

    def reset(self):
        self._enter()
        vb_resampler_reset(self._h)

    def out_frames(self, size_t in_frames):
        return vb_resampler_out_frames(self._h, in_frames)

    def flush_frames(self):
        return vb_resampler_flush_frames(self._h)

    @property
    def latency_frames(self):
        return vb_resampler_latency(self._h)

    @property
    def latency_ns(self):
        return vb_resampler_latency_ns(self._h)

    @property
    def taps(self):
        return vb_resampler_taps(self._h)

    @property
    def ratio(self):
        cdef uint32_t phases = 0, step = 0
        vb_resampler_ratio(self._h, &phases, &step)
        return (phases, step)

    def coefficients(self):
        phases, _ = self.ratio
        return PyBytes_FromStringAndSize(
            <const char*>vb_resampler_coefficients(self._h),
            <Py_ssize_t>(phases * vb_resampler_taps(self._h) * sizeof(float)),
        )

    @property
    def kernel(self):
        return _KERNELS[vb_resampler_kernel(self._h)]

    @kernel.setter
    def kernel(self, str name):
        self._enter()
        if name not in _KERNEL_IDS:
            raise ValueError(f"kernel must be one of {sorted(_KERNEL_IDS)}, got {name!r}")
        _check(vb_resampler_set_kernel(self._h, _KERNEL_IDS[name]), "vb_resampler_set_kernel")
