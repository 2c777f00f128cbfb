package io.azsdp.fabric.shm;

import io.azsdp.fabric.MemoryRegion;

/**
 * Posted receives, oldest first: a fixed array ring, so posting and matching never allocate. Producers call
 * {@link #offer} under the endpoint's receive lock; the single consumer (the progress thread, or the closing thread
 * when there is none) reads the head entry and {@link #remove}s it. The volatile counters order the entry fields.
 */
final class RecvQueue {
    private final int limit;
    private final int mask;
    private final long[] wrIds;
    private final MemoryRegion[] regions;
    private final int[] offsets;
    private final int[] lengths;
    private volatile long head;
    private volatile long tail;

    RecvQueue(int limit) {
        this.limit = limit;
        int capacity = Integer.highestOneBit(Math.max(1, limit - 1)) << 1;
        this.mask = capacity - 1;
        wrIds = new long[capacity];
        regions = new MemoryRegion[capacity];
        offsets = new int[capacity];
        lengths = new int[capacity];
    }

    int limit() {
        return limit;
    }

    /** @return false when {@code limit} receives are already posted */
    boolean offer(long wrId, MemoryRegion region, int offset, int length) {
        long t = tail;
        if (t - head >= limit) {
            return false;
        }
        int i = (int) t & mask;
        wrIds[i] = wrId;
        regions[i] = region;
        offsets[i] = offset;
        lengths[i] = length;
        tail = t + 1;
        return true;
    }

    int size() {
        return (int) (tail - head);
    }

    boolean isEmpty() {
        return head == tail;
    }

    // Head entry accessors: consumer only, and only when not empty.

    long wrId() {
        return wrIds[(int) head & mask];
    }

    MemoryRegion region() {
        return regions[(int) head & mask];
    }

    int offset() {
        return offsets[(int) head & mask];
    }

    int length() {
        return lengths[(int) head & mask];
    }

    void remove() {
        long h = head;
        regions[(int) h & mask] = null; // do not keep the buffer reachable
        head = h + 1;
    }
}
