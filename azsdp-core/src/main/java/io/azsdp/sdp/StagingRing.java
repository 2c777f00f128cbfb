package io.azsdp.sdp;

/**
 * FIFO allocator of contiguous byte ranges in a fixed buffer: ranges are freed in the order they were allocated, which
 * is the order the application consumes a byte stream. No allocation; all state is four ints.
 */
final class StagingRing {
    private final int capacity;
    private int head;
    private int tail;
    private int used;
    /** When allocation has wrapped to offset 0, the allocated bytes are [head, wrapMark) and [0, tail). */
    private int wrapMark = -1;

    StagingRing(int capacity) {
        this.capacity = capacity;
    }

    /** Offset of a new range of {@code len} bytes, or -1 when no contiguous space is free. */
    int alloc(int len) {
        if (len <= 0 || len > maxAlloc()) {
            return -1;
        }
        if (used == 0) {
            head = tail = 0;
            wrapMark = -1;
        }
        int off;
        if (wrapMark < 0 && capacity - tail < len) {
            wrapMark = tail;
            off = 0;
            tail = len;
        } else {
            off = tail;
            tail += len;
        }
        used += len;
        return off;
    }

    /** Frees the oldest allocated range, which must be [off, off+len). */
    void free(int off, int len) {
        if (off != head || len > used) {
            throw new IllegalStateException("staging ranges freed out of order: " + off + "+" + len + ", head " + head);
        }
        head = off + len;
        used -= len;
        if (used == 0) {
            head = tail = 0;
            wrapMark = -1;
        } else if (head == wrapMark) {
            head = 0;
            wrapMark = -1;
        }
    }

    /** Largest range {@link #alloc} would grant now. */
    int maxAlloc() {
        if (used == 0) {
            return capacity;
        }
        return wrapMark < 0 ? Math.max(capacity - tail, head) : head - tail;
    }

    int used() {
        return used;
    }
}
