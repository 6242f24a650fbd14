/* ring.h - a fixed-capacity byte ring and a rechunker, for vbgraph.
 *
 * Plain C99 with the STYLE.md rule 6 shape: an opaque handle made by `new`,
 * released by `free`, cleared by `reset`. Memory is allocated in `new` only;
 * writing, reading and rechunking copy between the handle and caller-owned
 * buffers and never allocate. Handles are not thread-safe: one thread at a time
 * per handle (the Python wrapper keeps the GIL for this reason).
 *
 * Ring: a FIFO of at most `capacity` bytes, for jitter and playout buffers.
 * When it is full, the caller chooses the policy: vb_ring_write stores what
 * fits and returns that count (the rest is the caller's to keep, retry or
 * drop), while vb_ring_write_overwrite stores everything by dropping the oldest
 * bytes and returns how many it dropped (a playout buffer that must stay
 * current). Counts are in bytes; the ring knows nothing about samples.
 *
 * Rechunker: turns a byte stream arriving in pieces of any size into frames of
 * exactly `frame_bytes` bytes (say TTS output into 20 ms transport frames). It
 * holds at most frame_bytes - 1 bytes between calls (its latency, reported by
 * vb_rechunk_pending). Any split of a stream into pieces yields the same frames
 * as one piece.
 *
 * Preconditions, not checked beyond what is stated: handles come from `new`;
 * buffers may be NULL only when their byte count is 0; input and output
 * buffers do not overlap the handle's memory (they cannot, as it is private).
 */
#ifndef VB_RING_H
#define VB_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -- ring ------------------------------------------------------------------ */

typedef struct vb_ring vb_ring;

/* A new empty ring of `capacity` bytes; NULL if capacity is 0 or memory is short. */
vb_ring *vb_ring_new(size_t capacity);

/* Release the ring; NULL is allowed and ignored. */
void vb_ring_free(vb_ring *h);

/* Empty the ring (O(1), the bytes are not cleared). */
void vb_ring_reset(vb_ring *h);

size_t vb_ring_capacity(const vb_ring *h);

/* Bytes stored, readable now. */
size_t vb_ring_size(const vb_ring *h);

/* Bytes that vb_ring_write can take now: capacity - size. */
size_t vb_ring_space(const vb_ring *h);

/* Append min(n, space) bytes of `data`; returns that count. */
size_t vb_ring_write(vb_ring *h, const uint8_t *data, size_t n);

/* Append all n bytes, dropping the oldest stored bytes to make room; when
 * n > capacity only the last `capacity` bytes of `data` are kept, and the ones
 * before count as dropped too. Returns the bytes dropped, so that
 * size after = size before + n - dropped. */
size_t vb_ring_write_overwrite(vb_ring *h, const uint8_t *data, size_t n);

/* Move the oldest min(n, size) bytes into `out`; returns that count. */
size_t vb_ring_read(vb_ring *h, uint8_t *out, size_t n);

/* Copy the oldest min(n, size) bytes into `out` without consuming them. */
size_t vb_ring_peek(const vb_ring *h, uint8_t *out, size_t n);

/* Drop the oldest min(n, size) bytes; returns that count. */
size_t vb_ring_skip(vb_ring *h, size_t n);

/* -- rechunker ------------------------------------------------------------- */

typedef struct vb_rechunk vb_rechunk;

/* A new rechunker for frames of `frame_bytes` bytes; NULL if 0 or memory is short. */
vb_rechunk *vb_rechunk_new(size_t frame_bytes);

/* Release the rechunker; NULL is allowed and ignored. */
void vb_rechunk_free(vb_rechunk *h);

/* Drop the pending bytes (on interruption). */
void vb_rechunk_reset(vb_rechunk *h);

size_t vb_rechunk_frame_bytes(const vb_rechunk *h);

/* Bytes held back for the next frame, 0 .. frame_bytes - 1: the latency. */
size_t vb_rechunk_pending(const vb_rechunk *h);

/* How many whole frames a vb_rechunk_process of `in_bytes` bytes returns now:
 * (pending + in_bytes) / frame_bytes, computed without overflow. */
size_t vb_rechunk_out_frames(const vb_rechunk *h, size_t in_bytes);

/* Append n bytes to the stream: write the out_frames(n) whole frames that are
 * now complete, back to back, into `out` (which must hold that many frames;
 * NULL is fine when it is 0) and keep the rest pending. Returns the frame
 * count. Every byte is copied exactly once. */
size_t vb_rechunk_process(vb_rechunk *h, const uint8_t *in, size_t n, uint8_t *out);

/* End of stream: write the pending bytes into `out` (room for frame_bytes),
 * followed by zero bytes up to a whole frame if `pad` is nonzero, and empty the
 * rechunker. Returns the bytes written: 0 when nothing was pending (pad or not),
 * else frame_bytes with pad, else the pending count. */
size_t vb_rechunk_flush(vb_rechunk *h, uint8_t *out, int pad);

#ifdef __cplusplus
}
#endif

#endif /* VB_RING_H */
