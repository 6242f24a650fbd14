# Declarations of csrc/pcm.h for Cython. Only the extern block lives here (STYLE.md
# rule 7); the wrappers are in _pcm_c.pyx. `nogil` here only permits calling these
# without the GIL; the wrapper releases it explicitly.

from libc.stdint cimport int16_t, int32_t


cdef extern from "pcm.h" nogil:
    int VB_PCM_OK
    int VB_PCM_EINVAL
    int VB_PCM_ERANGE
    size_t VB_PCM_MIX_MAX_STREAMS

    int vb_pcm_s16_to_f32(const int16_t* inp, float* out, size_t n)
    int vb_pcm_f32_to_s16(const float* inp, int16_t* out, size_t n)
    int vb_pcm_gain_s16(const int16_t* inp, int16_t* out, size_t n, float gain)
    int vb_pcm_gain_f32(const float* inp, float* out, size_t n, float gain)
    int vb_pcm_peak_s16(const int16_t* inp, size_t n, int32_t* peak)
    int vb_pcm_rms_s16(const int16_t* inp, size_t n, double* rms)
    int vb_pcm_peak_f32(const float* inp, size_t n, float* peak)
    int vb_pcm_rms_f32(const float* inp, size_t n, double* rms)
    int vb_pcm_mix_s16(const int16_t* const* inp, size_t streams, int16_t* out, size_t n)
    int vb_pcm_mix_f32(const float* const* inp, size_t streams, float* out, size_t n)
    int vb_pcm_stereo_to_mono_s16(const int16_t* inp, int16_t* out, size_t frames)
    int vb_pcm_stereo_to_mono_f32(const float* inp, float* out, size_t frames)
    int vb_pcm_mono_to_stereo_s16(const int16_t* inp, int16_t* out, size_t frames)
    int vb_pcm_mono_to_stereo_f32(const float* inp, float* out, size_t frames)
