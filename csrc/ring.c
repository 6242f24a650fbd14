/* ring.c - the byte ring and the rechunker of ring.h; the contract is there.
 *
 * The ring keeps a read index `head` and a byte count `size` instead of head
 * and tail indices, so that full and empty need no spare byte or flag. Every
 * transfer is at most two memcpy calls, split where the storage wraps.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

struct vb_ring {
    size_t capacity;
    size_t head; /* index of the oldest byte, 0 .. capacity - 1 */
    size_t size; /* bytes stored, 0 .. capacity */
    uint8_t data[];
};

struct vb_rechunk {
    size_t frame_bytes;
    size_t pending; /* 0 .. frame_bytes - 1 between calls */
    uint8_t data[];
};

/* -- ring ------------------------------------------------------------------ */

vb_ring *vb_ring_new(size_t capacity) {
    vb_ring *h;
    if (capacity == 0 || capacity > SIZE_MAX - sizeof(vb_ring)) {
        return NULL;
    }
    h = malloc(sizeof(vb_ring) + capacity);
    if (h == NULL) {
        return NULL;
    }
    h->capacity = capacity;
    h->head = 0;
    h->size = 0;
    return h;
}

void vb_ring_free(vb_ring *h) { free(h); }

void vb_ring_reset(vb_ring *h) {
    h->head = 0;
    h->size = 0;
}

size_t vb_ring_capacity(const vb_ring *h) { return h->capacity; }

size_t vb_ring_size(const vb_ring *h) { return h->size; }

size_t vb_ring_space(const vb_ring *h) { return h->capacity - h->size; }

/* Copy n <= capacity - size bytes in after the stored ones. */
static void vb_ring_put(vb_ring *h, const uint8_t *data, size_t n) {
    size_t tail = h->head + h->size; /* < 2 * capacity, so no overflow */
    size_t first;
    if (n == 0) {
        return;
    }
    if (tail >= h->capacity) {
        tail -= h->capacity;
    }
    first = h->capacity - tail;
    if (first > n) {
        first = n;
    }
    memcpy(h->data + tail, data, first);
    if (n > first) {
        memcpy(h->data, data + first, n - first);
    }
    h->size += n;
}

/* Copy the oldest n <= size bytes out, without consuming them. */
static void vb_ring_get(const vb_ring *h, uint8_t *out, size_t n) {
    size_t first = h->capacity - h->head;
    if (n == 0) {
        return;
    }
    if (first > n) {
        first = n;
    }
    memcpy(out, h->data + h->head, first);
    if (n > first) {
        memcpy(out + first, h->data, n - first);
    }
}

/* Drop the oldest n <= size bytes. */
static void vb_ring_drop(vb_ring *h, size_t n) {
    h->size -= n;
    if (h->size == 0) {
        h->head = 0; /* keeps the next writes in one piece, for free */
    } else {
        h->head += n;
        if (h->head >= h->capacity) {
            h->head -= h->capacity;
        }
    }
}

size_t vb_ring_write(vb_ring *h, const uint8_t *data, size_t n) {
    size_t space = h->capacity - h->size;
    if (n > space) {
        n = space;
    }
    vb_ring_put(h, data, n);
    return n;
}

size_t vb_ring_write_overwrite(vb_ring *h, const uint8_t *data, size_t n) {
    size_t dropped;
    if (n >= h->capacity) {
        /* Everything stored goes, and so does the input's head: keep its tail. */
        dropped = h->size + (n - h->capacity);
        h->head = 0;
        h->size = 0;
        vb_ring_put(h, data + (n - h->capacity), h->capacity);
        return dropped;
    }
    dropped = 0;
    if (n > h->capacity - h->size) {
        dropped = n - (h->capacity - h->size);
        vb_ring_drop(h, dropped);
    }
    vb_ring_put(h, data, n);
    return dropped;
}

size_t vb_ring_read(vb_ring *h, uint8_t *out, size_t n) {
    if (n > h->size) {
        n = h->size;
    }
    vb_ring_get(h, out, n);
    vb_ring_drop(h, n);
    return n;
}

size_t vb_ring_peek(const vb_ring *h, uint8_t *out, size_t n) {
    if (n > h->size) {
        n = h->size;
    }
    vb_ring_get(h, out, n);
    return n;
}

size_t vb_ring_skip(vb_ring *h, size_t n) {
    if (n > h->size) {
        n = h->size;
    }
    vb_ring_drop(h, n);
    return n;
}

/* -- rechunker ------------------------------------------------------------- */

vb_rechunk *vb_rechunk_new(size_t frame_bytes) {
    vb_rechunk *h;
    if (frame_bytes == 0 || frame_bytes > SIZE_MAX - sizeof(vb_rechunk)) {
        return NULL;
    }
    h = malloc(sizeof(vb_rechunk) + frame_bytes);
    if (h == NULL) {
        return NULL;
    }
    h->frame_bytes = frame_bytes;
    h->pending = 0;
    return h;
}

void vb_rechunk_free(vb_rechunk *h) { free(h); }

void vb_rechunk_reset(vb_rechunk *h) { h->pending = 0; }

size_t vb_rechunk_frame_bytes(const vb_rechunk *h) { return h->frame_bytes; }

size_t vb_rechunk_pending(const vb_rechunk *h) { return h->pending; }

size_t vb_rechunk_out_frames(const vb_rechunk *h, size_t in_bytes) {
    /* pending + in_bytes could overflow; pending < frame_bytes, so this cannot. */
    size_t f = h->frame_bytes;
    return in_bytes / f + (in_bytes % f + h->pending) / f;
}

size_t vb_rechunk_process(vb_rechunk *h, const uint8_t *in, size_t n, uint8_t *out) {
    size_t f = h->frame_bytes;
    size_t frames = 0;
    size_t whole;
    if (h->pending > 0) {
        size_t need = f - h->pending;
        if (n < need) {
            if (n > 0) {
                memcpy(h->data + h->pending, in, n);
                h->pending += n;
            }
            return 0;
        }
        /* The first frame straddles the previous input and this one. */
        memcpy(out, h->data, h->pending);
        memcpy(out + h->pending, in, need);
        h->pending = 0;
        in += need;
        n -= need;
        out += f;
        frames = 1;
    }
    whole = n / f * f;
    if (whole > 0) {
        memcpy(out, in, whole);
    }
    if (n > whole) {
        memcpy(h->data, in + whole, n - whole);
    }
    h->pending = n - whole;
    return frames + n / f;
}

size_t vb_rechunk_flush(vb_rechunk *h, uint8_t *out, int pad) {
    size_t n = h->pending;
    if (n == 0) {
        return 0;
    }
    memcpy(out, h->data, n);
    h->pending = 0;
    if (!pad) {
        return n;
    }
    memset(out + n, 0, h->frame_bytes - n);
    return h->frame_bytes;
}
