# Declarations of csrc/vad.h for Cython. Only the extern block lives here
# (STYLE.md rule 7); the wrapper is in _vad_c.pyx. `nogil` here only permits
# calling these without the GIL; the wrapper decides where to release it.

from libc.stdint cimport int16_t


cdef extern from "vad.h" nogil:
    int VB_VAD_OK
    int VB_VAD_EINVAL
    int VB_VAD_EUNSUPPORTED
    int VB_VAD_ENOMEM

    ctypedef struct vb_vad:
        pass

    int vb_vad_check(int rate, size_t frame_samples, int aggressiveness)
    vb_vad* vb_vad_new(int rate, size_t frame_samples, int aggressiveness)
    void vb_vad_free(vb_vad* h)
    void vb_vad_reset(vb_vad* h)
    int vb_vad_process(vb_vad* h, const int16_t* samples, size_t n)
    double vb_vad_probability(const vb_vad* h)
    double vb_vad_volume_db(const vb_vad* h)
    size_t vb_vad_frame_samples(const vb_vad* h)
    size_t vb_vad_latency(const vb_vad* h)
