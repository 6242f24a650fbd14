# Declarations of csrc/ring.h for Cython. Only the extern block lives here (STYLE.md
# rule 7); the wrappers are in _ring_c.pyx.

from libc.stdint cimport uint8_t


cdef extern from "ring.h" nogil:
    ctypedef struct vb_ring:
        pass

    vb_ring* vb_ring_new(size_t capacity)
    void vb_ring_free(vb_ring* h)
    void vb_ring_reset(vb_ring* h)
    size_t vb_ring_capacity(const vb_ring* h)
    size_t vb_ring_size(const vb_ring* h)
    size_t vb_ring_space(const vb_ring* h)
    size_t vb_ring_write(vb_ring* h, const uint8_t* data, size_t n)
    size_t vb_ring_write_overwrite(vb_ring* h, const uint8_t* data, size_t n)
    size_t vb_ring_read(vb_ring* h, uint8_t* out, size_t n)
    size_t vb_ring_peek(const vb_ring* h, uint8_t* out, size_t n)
    size_t vb_ring_skip(vb_ring* h, size_t n)

    ctypedef struct vb_rechunk:
        pass

    vb_rechunk* vb_rechunk_new(size_t frame_bytes)
    void vb_rechunk_free(vb_rechunk* h)
    void vb_rechunk_reset(vb_rechunk* h)
    size_t vb_rechunk_frame_bytes(const vb_rechunk* h)
    size_t vb_rechunk_pending(const vb_rechunk* h)
    size_t vb_rechunk_out_frames(const vb_rechunk* h, size_t in_bytes)
    size_t vb_rechunk_process(vb_rechunk* h, const uint8_t* inp, size_t n, uint8_t* out)
    size_t vb_rechunk_flush(vb_rechunk* h, uint8_t* out, int pad)
