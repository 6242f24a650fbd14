# Declarations of csrc/g711.h for Cython. Only the extern block lives here (STYLE.md
# rule 7); the wrappers are in _g711_c.pyx. `nogil` here only permits calling these
# without the GIL; the wrapper releases it explicitly.

from libc.stdint cimport int16_t, uint8_t


cdef extern from "g711.h" nogil:
    int VB_G711_OK
    int VB_G711_EINVAL
    int VB_G711_ENOTSUP
    int VB_G711_ISA_AUTO
    int VB_G711_ISA_SCALAR
    int VB_G711_ISA_AVX2

    int vb_g711_isa()
    int vb_g711_ulaw_encode(const int16_t* inp, uint8_t* out, size_t n)
    int vb_g711_ulaw_decode(const uint8_t* inp, int16_t* out, size_t n)
    int vb_g711_alaw_encode(const int16_t* inp, uint8_t* out, size_t n)
    int vb_g711_alaw_decode(const uint8_t* inp, int16_t* out, size_t n)
    int vb_g711_ulaw_encode_isa(int isa, const int16_t* inp, uint8_t* out, size_t n)
    int vb_g711_ulaw_decode_isa(int isa, const uint8_t* inp, int16_t* out, size_t n)
    int vb_g711_alaw_encode_isa(int isa, const int16_t* inp, uint8_t* out, size_t n)
    int vb_g711_alaw_decode_isa(int isa, const uint8_t* inp, int16_t* out, size_t n)
