"""Compiled G.711 kernels: a thin Cython layer over csrc/g711.c.

Private: import :mod:`vbgraph.dsp.g711`, which checks arguments and falls back to
the numpy reference (:mod:`vbgraph.dsp._g711_ref`) when this module is missing.
See csrc/g711.h for the coding rules.

Caller's contract (g711.py keeps it): ``data`` is a C-contiguous buffer; for the
encoders its length is a whole number of int16 samples (a trailing odd byte
would be ignored).

Each function takes an optional instruction set, ``ISA_AUTO`` (the default: the
fastest this CPU runs), ``ISA_SCALAR`` or ``ISA_AVX2``, so that the tests and
benchmarks can run every variant on one machine; :func:`isa` names the one
``ISA_AUTO`` picks. An instruction set the CPU lacks raises ValueError.

Buffers follow _pcm_c.pyx: the input is read in place through the buffer
protocol (copied only when an int16 input is misaligned, see ``_acquire``) and
the kernel writes straight into the ``bytes`` it returns.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uint8_t, uintptr_t

from ._g711 cimport (
    VB_G711_EINVAL,
    VB_G711_ENOTSUP,
    VB_G711_ISA_AUTO,
    VB_G711_ISA_AVX2,
    VB_G711_ISA_SCALAR,
    VB_G711_OK,
    vb_g711_alaw_decode_isa,
    vb_g711_alaw_encode_isa,
    vb_g711_isa,
    vb_g711_ulaw_decode_isa,
    vb_g711_ulaw_encode_isa,
)

__all__ = [
    "ISA_AUTO",
    "ISA_AVX2",
    "ISA_SCALAR",
    "alaw_decode",
    "alaw_encode",
    "isa",
    "ulaw_decode",
    "ulaw_encode",
]

ISA_AUTO = VB_G711_ISA_AUTO
ISA_SCALAR = VB_G711_ISA_SCALAR
ISA_AVX2 = VB_G711_ISA_AVX2

ctypedef int (*encode_fn)(int, const int16_t*, uint8_t*, size_t) noexcept nogil
ctypedef int (*decode_fn)(int, const uint8_t*, int16_t*, size_t) noexcept nogil

# The GIL is released around the C call only from this many input bytes up, for
# the reason given at NOGIL_MIN_BYTES in _pcm_c.pyx: a 20 ms frame (160 bytes of
# G.711 at 8 kHz) codes in about 0.1 us, far less than a GIL handoff may cost.
cdef Py_ssize_t NOGIL_MIN_BYTES = 16384


cdef int _check(int rc, str name) except -1:
    """Raise, naming the C function, if it returned an error status."""
    if rc == VB_G711_OK:
        return 0
    if rc == VB_G711_EINVAL:
        raise ValueError(f"{name}: invalid argument (NULL buffer or unknown isa), status {rc}")
    if rc == VB_G711_ENOTSUP:
        raise ValueError(f"{name}: instruction set not supported here, status {rc}")
    raise RuntimeError(f"{name} failed with status {rc}")


cdef int _acquire(object data, Py_buffer* view, size_t align) except -1:
    """Get a read-only view of ``data``'s bytes, starting at a multiple of ``align``.

    As in _pcm_c.pyx: a misaligned int16 buffer (a memoryview sliced at an odd
    offset) is copied, because C requires aligned int16 pointers.
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


cdef bytes _encode(object data, int isa, encode_fn fn, str name):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef uint8_t* dst
    _acquire(data, &src, sizeof(int16_t))
    try:
        n = <size_t>src.len // sizeof(int16_t)
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
        dst = <uint8_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = fn(isa, <const int16_t*>src.buf, dst, n)
        else:
            rc = fn(isa, <const int16_t*>src.buf, dst, n)
    finally:
        PyBuffer_Release(&src)
    _check(rc, name)
    return out


cdef bytes _decode(object data, int isa, decode_fn fn, str name):
    cdef Py_buffer src
    cdef size_t n
    cdef int rc
    cdef bytes out
    cdef int16_t* dst
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)  # bytes need no alignment
    try:
        n = <size_t>src.len
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>(n * sizeof(int16_t)))
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if src.len >= NOGIL_MIN_BYTES:
            with nogil:
                rc = fn(isa, <const uint8_t*>src.buf, dst, n)
        else:
            rc = fn(isa, <const uint8_t*>src.buf, dst, n)
    finally:
        PyBuffer_Release(&src)
    _check(rc, name)
    return out


def ulaw_encode(data, int isa=VB_G711_ISA_AUTO):
    return _encode(data, isa, vb_g711_ulaw_encode_isa, "vb_g711_ulaw_encode")


def ulaw_decode(data, int isa=VB_G711_ISA_AUTO):
    return _decode(data, isa, vb_g711_ulaw_decode_isa, "vb_g711_ulaw_decode")


def alaw_encode(data, int isa=VB_G711_ISA_AUTO):
    return _encode(data, isa, vb_g711_alaw_encode_isa, "vb_g711_alaw_encode")


def alaw_decode(data, int isa=VB_G711_ISA_AUTO):
    return _decode(data, isa, vb_g711_alaw_decode_isa, "vb_g711_alaw_decode")


def isa():
    """The instruction set the functions use by default here: "avx2" or "scalar"."""
    return "avx2" if vb_g711_isa() == VB_G711_ISA_AVX2 else "scalar"
