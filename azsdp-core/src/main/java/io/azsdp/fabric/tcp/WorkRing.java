package io.azsdp.fabric.tcp;

/**
 * FIFO of pre-allocated, reused {@link Work} entries. Mutated only under the owning endpoint's lock; {@link #isEmpty}
 * may be read without it as a hint (for spinning). It grows (doubling) instead of rejecting, because posts must never
 * block; a consumer that took entry references under the lock may keep using them after a growth, since growth moves
 * references, not entries.
 */
final class WorkRing {
    private Work[] ring;
    private int mask;
    private volatile long head;
    private volatile long tail;

    WorkRing(int capacity) {
        int size = Integer.highestOneBit(Math.max(2, capacity - 1)) << 1;
        ring = new Work[size];
        mask = size - 1;
        for (int i = 0; i < size; i++) {
            ring[i] = new Work();
        }
    }

    boolean isEmpty() {
        return head == tail;
    }

    int size() {
        return (int) (tail - head);
    }

    /** Appends and returns the entry to fill (the caller still holds the lock). */
    Work add() {
        if (tail - head == ring.length) {
            grow();
        }
        Work w = ring[(int) tail & mask];
        tail = tail + 1;
        return w;
    }

    /** The i-th oldest entry, i &lt; size(). */
    Work peek(int i) {
        return ring[(int) (head + i) & mask];
    }

    /** Releases the n oldest entries for reuse. */
    void advance(int n) {
        for (int i = 0; i < n; i++) {
            ring[(int) (head + i) & mask].release();
        }
        head = head + n;
    }

    private void grow() {
        int size = ring.length << 1;
        Work[] bigger = new Work[size];
        int newMask = size - 1;
        for (long s = head; s < tail; s++) {
            bigger[(int) s & newMask] = ring[(int) s & mask];
        }
        for (int i = 0; i < size; i++) {
            if (bigger[i] == null) {
                bigger[i] = new Work();
            }
        }
        ring = bigger;
        mask = newMask;
    }
}
