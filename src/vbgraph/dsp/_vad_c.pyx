"""Compiled frame-level VAD: a thin Cython layer over csrc/vad.c.

Private: import :mod:`vbgraph.dsp.vad`, which checks arguments and falls back
to the numpy reference (:mod:`vbgraph.dsp._vad_ref`) when this module is
missing. Both implement the same algorithm and give the same decisions.

Caller's contract (vad.py keeps it): the constructor's arguments pass
``vb_vad_check``, and ``data`` is a C-contiguous buffer of exactly
``frame_samples`` int16 samples (the C code checks the count again).

Zero-copy: the frame is read in place through the buffer protocol; a frame
at an odd address (a memoryview sliced at an odd byte) is copied once, since C
needs aligned int16. The GIL is kept: one call is about 2 us of work, and
dropping and retaking the GIL would cost more than it frees (see the note on
``NOGIL_MIN_MACS`` in _resample_c.pyx).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uintptr_t

from ._vad cimport (
    VB_VAD_EINVAL,
    VB_VAD_OK,
    vb_vad,
    vb_vad_check,
    vb_vad_free,
    vb_vad_new,
    vb_vad_probability,
    vb_vad_process,
    vb_vad_reset,
    vb_vad_volume_db,
)

__all__ = ["Vad"]


cdef class Vad:
    """One stream's VAD; owns a ``vb_vad`` handle."""

    cdef vb_vad* _h
    cdef size_t _frame_samples

    def __cinit__(self, int rate, size_t frame_samples, int aggressiveness):
        self._h = NULL
        if vb_vad_check(rate, frame_samples, aggressiveness) != VB_VAD_OK:
            raise ValueError(
                f"vb_vad_new: not supported: rate {rate}, frame_samples {frame_samples}, "
                f"aggressiveness {aggressiveness}"
            )
        self._h = vb_vad_new(rate, frame_samples, aggressiveness)
        if self._h == NULL:
            raise MemoryError("vb_vad_new: out of memory")
        self._frame_samples = frame_samples

    def __dealloc__(self):
        vb_vad_free(self._h)  # NULL is allowed

    def process(self, data):
        cdef Py_buffer view
        cdef int rc
        cdef bytes copy
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if (<uintptr_t>view.buf) % sizeof(int16_t) == 0:
                rc = vb_vad_process(
                    self._h, <const int16_t*>view.buf, <size_t>view.len // sizeof(int16_t)
                )
            else:  # misaligned: copy once (see the module docstring)
                copy = PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
                rc = vb_vad_process(
                    self._h, <const int16_t*><const char*>copy, <size_t>view.len // sizeof(int16_t)
                )
        finally:
            PyBuffer_Release(&view)
        if rc < 0:
            if rc == VB_VAD_EINVAL:
                raise ValueError(
                    f"vb_vad_process: a frame must be {self._frame_samples} int16 samples, "
                    f"status {rc}"
                )
            raise RuntimeError(f"vb_vad_process failed with status {rc}")
        return rc == 1

    def reset(self):
        vb_vad_reset(self._h)

    @property
    def probability(self):
        return vb_vad_probability(self._h)

    @property
    def volume_db(self):
        return vb_vad_volume_db(self._h)
