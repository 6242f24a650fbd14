"""Compiled PCM kernels: a thin Cython layer over csrc/pcm.c.

Private: import :mod:`vbgraph.dsp.pcm`, which checks arguments and falls back to
the numpy reference (:mod:`vbgraph.dsp._pcm_ref`) when this module is missing.
Both modules implement the same contract; see csrc/pcm.h for the numerics.

Caller's contract (pcm.py keeps it): ``data`` is a C-contiguous buffer whose
length in bytes is a whole number of samples. A trailing partial sample would be
ignored.

Zero-copy: the input is read in place through the buffer protocol, and the
output is a fresh ``bytes`` that the kernel writes into directly (no
intermediate array). The one copy is for misaligned input; see ``_acquire``.

Inputs are taken as plain buffer objects (``PyObject_GetBuffer`` with
``PyBUF_SIMPLE``) rather than typed memoryviews (STYLE.md rule 7): on a 20 ms
frame that halves the wrapper's cost (about 100 ns against 200 ns per call,
measured with Cython 3.3 on CPython 3.11), and the sample type is a property of
the function, not of the buffer, which arrives as bytes.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int16_t, int32_t, uintptr_t

from ._pcm cimport (
    VB_PCM_EINVAL,
    VB_PCM_ERANGE,
    VB_PCM_OK,
    vb_pcm_f32_to_s16,
    vb_pcm_gain_f32,
    vb_pcm_gain_s16,
    vb_pcm_mix_f32,
    vb_pcm_mix_s16,
    vb_pcm_mono_to_stereo_f32,
    vb_pcm_mono_to_stereo_s16,
    vb_pcm_peak_f32,
    vb_pcm_peak_s16,
    vb_pcm_rms_f32,
    vb_pcm_rms_s16,
    vb_pcm_s16_to_f32,
    vb_pcm_stereo_to_mono_f32,
    vb_pcm_stereo_to_mono_s16,
)

__all__ = [
    "f32_to_s16",
    "gain_f32",
    "gain_s16",
    "mix_f32",
    "mix_s16",
    "mono_to_stereo_f32",
    "mono_to_stereo_s16",
    "peak_f32",
    "peak_s16",
    "rms_f32",
    "rms_s16",
    "s16_to_f32",
    "stereo_to_mono_f32",
    "stereo_to_mono_s16",
]

# The GIL is released around the C call only for buffers of at least this many
# bytes (8192 int16 samples, about 0.5 s at 16 kHz). A 20 ms frame takes well
# under a microsecond in C, and dropping the GIL for that is a loss: when another
# thread is waiting, it takes the GIL and this thread may then wait a whole
# switch interval (5 ms by default) to get it back, the convoy effect that turns
# a 300 ns call into a 5 ms stall on the audio path. Long buffers are where
# threads gain from running in parallel; benchmarks/bench_pcm.py shows both.
cdef Py_ssize_t NOGIL_MIN_BYTES = 16384


cdef int _check(int rc, str name) except -1:
    """Raise, naming the C function, if it returned an error status."""
    if rc == VB_PCM_OK:
        return 0
    if rc == VB_PCM_EINVAL:
        raise ValueError(f"{name}: invalid argument (NULL buffer), status {rc}")
    if rc == VB_PCM_ERANGE:
        raise ValueError(f"{name}: too many streams, status {rc}")
    raise RuntimeError(f"{name} failed with status {rc}")


cdef int _acquire(object data, Py_buffer* view, size_t align) except -1:
    """Get a read-only view of ``data``'s bytes, starting at a multiple of ``align``.

    A misaligned buffer is copied, deliberately: C requires int16/float
    pointers to be aligned, and gcc's vectorised loops may rely on it (they
    peel iterations to reach an aligned address, which never comes from an odd
    one). Only a memoryview sliced at an odd offset gets here; bytes and
    bytearray data are always aligned. The view keeps the copy alive.
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


def s16_to_f32(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef float* dst
    _acquire(data, &src, sizeof(int16_t))
    try:
        n = <size_t>src.len // sizeof(int16_t)
        if n == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * sizeof(float)))
        dst = <float*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_s16_to_f32(<const int16_t*>src.buf, dst, n)
        else:
            rc = vb_pcm_s16_to_f32(<const int16_t*>src.buf, dst, n)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_s16_to_f32")
    return out


def f32_to_s16(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef int16_t* dst
    _acquire(data, &src, sizeof(float))
    try:
        n = <size_t>src.len // sizeof(float)
        if n == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * sizeof(int16_t)))
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_f32_to_s16(<const float*>src.buf, dst, n)
        else:
            rc = vb_pcm_f32_to_s16(<const float*>src.buf, dst, n)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_f32_to_s16")
    return out


def gain_s16(data, float gain):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef int16_t* dst
    _acquire(data, &src, sizeof(int16_t))
    try:
        n = <size_t>src.len // sizeof(int16_t)
        if n == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * sizeof(int16_t)))
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_gain_s16(<const int16_t*>src.buf, dst, n, gain)
        else:
            rc = vb_pcm_gain_s16(<const int16_t*>src.buf, dst, n, gain)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_gain_s16")
    return out


def gain_f32(data, float gain):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef float* dst
    _acquire(data, &src, sizeof(float))
    try:
        n = <size_t>src.len // sizeof(float)
        if n == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * sizeof(float)))
        dst = <float*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_gain_f32(<const float*>src.buf, dst, n, gain)
        else:
            rc = vb_pcm_gain_f32(<const float*>src.buf, dst, n, gain)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_gain_f32")
    return out


def peak_s16(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef int32_t result = 0
    _acquire(data, &src, sizeof(int16_t))
    try:
        n = <size_t>src.len // sizeof(int16_t)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_peak_s16(<const int16_t*>src.buf, n, &result)
        else:
            rc = vb_pcm_peak_s16(<const int16_t*>src.buf, n, &result)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_peak_s16")
    return result


def rms_s16(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef double result = 0.0
    _acquire(data, &src, sizeof(int16_t))
    try:
        n = <size_t>src.len // sizeof(int16_t)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_rms_s16(<const int16_t*>src.buf, n, &result)
        else:
            rc = vb_pcm_rms_s16(<const int16_t*>src.buf, n, &result)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_rms_s16")
    return result


def peak_f32(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef float result = 0.0
    _acquire(data, &src, sizeof(float))
    try:
        n = <size_t>src.len // sizeof(float)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_peak_f32(<const float*>src.buf, n, &result)
        else:
            rc = vb_pcm_peak_f32(<const float*>src.buf, n, &result)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_peak_f32")
    return <double>result


def rms_f32(data):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef double result = 0.0
    _acquire(data, &src, sizeof(float))
    try:
        n = <size_t>src.len // sizeof(float)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_rms_f32(<const float*>src.buf, n, &result)
        else:
            rc = vb_pcm_rms_f32(<const float*>src.buf, n, &result)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_rms_f32")
    return result


# Channel layout. Each takes whole frames (pairs of samples for stereo input);
# the caller's contract is the same as above.

def stereo_to_mono_s16(data):
    cdef Py_buffer src
    cdef size_t frames
    cdef int rc
    cdef bytes out
    cdef int16_t* dst
    _acquire(data, &src, sizeof(int16_t))
    try:
        frames = <size_t>src.len // (2 * sizeof(int16_t))
        if frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(frames * sizeof(int16_t)))
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_stereo_to_mono_s16(<const int16_t*>src.buf, dst, frames)
        else:
            rc = vb_pcm_stereo_to_mono_s16(<const int16_t*>src.buf, dst, frames)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_stereo_to_mono_s16")
    return out


def stereo_to_mono_f32(data):
    cdef Py_buffer src
    cdef size_t frames
    cdef int rc
    cdef bytes out
    cdef float* dst
    _acquire(data, &src, sizeof(float))
    try:
        frames = <size_t>src.len // (2 * sizeof(float))
        if frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(frames * sizeof(float)))
        dst = <float*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_stereo_to_mono_f32(<const float*>src.buf, dst, frames)
        else:
            rc = vb_pcm_stereo_to_mono_f32(<const float*>src.buf, dst, frames)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_stereo_to_mono_f32")
    return out


def mono_to_stereo_s16(data):
    cdef Py_buffer src
    cdef size_t frames
    cdef int rc
    cdef bytes out
    cdef int16_t* dst
    _acquire(data, &src, sizeof(int16_t))
    try:
        frames = <size_t>src.len // sizeof(int16_t)
        if frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(2 * frames * sizeof(int16_t)))
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_mono_to_stereo_s16(<const int16_t*>src.buf, dst, frames)
        else:
            rc = vb_pcm_mono_to_stereo_s16(<const int16_t*>src.buf, dst, frames)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_mono_to_stereo_s16")
    return out


def mono_to_stereo_f32(data):
    cdef Py_buffer src
    cdef size_t frames
    cdef int rc
    cdef bytes out
    cdef float* dst
    _acquire(data, &src, sizeof(float))
    try:
        frames = <size_t>src.len // sizeof(float)
        if frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(2 * frames * sizeof(float)))
        dst = <float*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = vb_pcm_mono_to_stereo_f32(<const float*>src.buf, dst, frames)
        else:
            rc = vb_pcm_mono_to_stereo_f32(<const float*>src.buf, dst, frames)
    finally:
        PyBuffer_Release(&src)
    _check(rc, "vb_pcm_mono_to_stereo_f32")
    return out


# Mixing. The caller's contract: ``buffers`` is a list or tuple of at least one
# buffer, all of the same whole number of samples (checked again here, since a
# shorter buffer would be read past its end). Up to MIX_STACK buffers are held
# in arrays on the C stack; more take one PyMem allocation per call, in this
# wrapper, not in the kernel.

cdef enum:
    MIX_STACK = 8


cdef object _mix(object buffers, size_t size, bint is_float):
    cdef Py_buffer stack_views[MIX_STACK]
    cdef const void* stack_ptrs[MIX_STACK]
    cdef Py_buffer* views = stack_views
    cdef const void** ptrs = stack_ptrs
    cdef Py_ssize_t count = len(buffers)
    cdef Py_ssize_t acquired = 0
    cdef Py_ssize_t k
    cdef Py_ssize_t nbytes = 0
    cdef size_t n = 0
    cdef int rc = VB_PCM_OK
    cdef bytes out = b""
    cdef char* dst
    name = "vb_pcm_mix_f32" if is_float else "vb_pcm_mix_s16"
    if count == 0:
        return b""
    if count > MIX_STACK:
        views = <Py_buffer*>PyMem_Malloc(count * sizeof(Py_buffer))
        ptrs = <const void**>PyMem_Malloc(count * sizeof(void*))
        if views == NULL or ptrs == NULL:
            PyMem_Free(views)
            PyMem_Free(ptrs)
            raise MemoryError()
    try:
        for k in range(count):
            _acquire(buffers[k], &views[k], size)
            acquired += 1
            ptrs[k] = views[k].buf
            if k == 0:
                nbytes = views[0].len
            elif views[k].len != nbytes:
                raise ValueError(f"{name}: buffers differ in length")
        n = <size_t>nbytes // size
        if n == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * size))
        dst = PyBytes_AS_STRING(out)
        if nbytes * count >= NOGIL_MIN_BYTES:
            with nogil:
                if is_float:
                    rc = vb_pcm_mix_f32(<const float* const*>ptrs, count, <float*>dst, n)
                else:
                    rc = vb_pcm_mix_s16(<const int16_t* const*>ptrs, count, <int16_t*>dst, n)
        elif is_float:
            rc = vb_pcm_mix_f32(<const float* const*>ptrs, count, <float*>dst, n)
        else:
            rc = vb_pcm_mix_s16(<const int16_t* const*>ptrs, count, <int16_t*>dst, n)
    finally:
        for k in range(acquired):
            PyBuffer_Release(&views[k])
        if views != stack_views:
            PyMem_Free(views)
            PyMem_Free(ptrs)
    _check(rc, name)
    return out


def mix_s16(buffers):
    return _mix(buffers, sizeof(int16_t), False)


def mix_f32(buffers):
    return _mix(buffers, sizeof(float), True)
