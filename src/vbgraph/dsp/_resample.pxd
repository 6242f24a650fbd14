# Declarations of csrc/resample.h for Cython. Only the extern block lives here
# (STYLE.md rule 7); the wrapper is in _resample_c.pyx. `nogil` here only permits
# calling these without the GIL; the wrapper releases it explicitly.

from libc.stdint cimport uint32_t, uint64_t


cdef extern from "resample.h" nogil:
    int VB_RESAMPLE_OK
    int VB_RESAMPLE_EINVAL
    int VB_RESAMPLE_EUNSUPPORTED
    int VB_RESAMPLE_ENOMEM
    int VB_RESAMPLE_EDRAINING

    int VB_RESAMPLE_S16
    int VB_RESAMPLE_F32

    int VB_RESAMPLE_KERNEL_AUTO
    int VB_RESAMPLE_KERNEL_SCALAR
    int VB_RESAMPLE_KERNEL_AVX2

    ctypedef struct vb_resampler:
        pass

    int vb_resampler_check(int in_rate, int out_rate, int channels, int format, int quality)
    vb_resampler* vb_resampler_new(int in_rate, int out_rate, int channels, int format,
                                   int quality)
    void vb_resampler_free(vb_resampler* h)
    void vb_resampler_reset(vb_resampler* h)
    int vb_resampler_process(vb_resampler* h, const void* inp, size_t in_frames, void* out,
                             size_t out_capacity, size_t* in_used, size_t* out_written)
    int vb_resampler_flush(vb_resampler* h, void* out, size_t out_capacity,
                           size_t* out_written)
    size_t vb_resampler_out_frames(const vb_resampler* h, size_t in_frames)
    size_t vb_resampler_flush_frames(const vb_resampler* h)
    size_t vb_resampler_latency(const vb_resampler* h)
    uint64_t vb_resampler_latency_ns(const vb_resampler* h)
    void vb_resampler_ratio(const vb_resampler* h, uint32_t* phases, uint32_t* step)
    size_t vb_resampler_taps(const vb_resampler* h)
    const float* vb_resampler_coefficients(const vb_resampler* h)
    int vb_resampler_kernel(const vb_resampler* h)
    int vb_resampler_set_kernel(vb_resampler* h, int kernel)
