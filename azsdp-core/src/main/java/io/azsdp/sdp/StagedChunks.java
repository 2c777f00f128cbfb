package io.azsdp.sdp;

/**
 * Receiver side: the chunks of adverts pulled into the staging pool, in stream order. A chunk is allocated from the
 * {@link StagingRing} when its READ is posted, becomes ready when the READ completes, and its range goes back to the
 * ring once the application has consumed it. Fixed capacity, no allocation per chunk.
 */
final class StagedChunks {
    private final StagingRing ring;
    private final int[] off;
    private final int[] len;
    private final boolean[] ready;
    private int head;
    private int count;
    /** Bytes of the head chunk already consumed. */
    private int consumed;

    StagedChunks(StagingRing ring, int capacity) {
        this.ring = ring;
        off = new int[capacity];
        len = new int[capacity];
        ready = new boolean[capacity];
    }

    int count() {
        return count;
    }

    boolean isFull() {
        return count == off.length;
    }

    /** Largest chunk the ring can hold now. */
    int maxAlloc() {
        return ring.maxAlloc();
    }

    /** Allocates a chunk of {@code n} bytes (n <= maxAlloc()); returns its index; offset via {@link #offset}. */
    int add(int n) {
        int at = ring.alloc(n);
        if (at < 0) {
            throw new IllegalStateException("staging ring cannot hold " + n + " bytes");
        }
        int i = (head + count) % off.length;
        off[i] = at;
        len[i] = n;
        ready[i] = false;
        count++;
        return i;
    }

    int offset(int i) {
        return off[i];
    }

    void markReady(int i) {
        ready[i] = true;
    }

    boolean headReady() {
        return count > 0 && ready[head];
    }

    /** Pool offset of the head chunk's next unconsumed byte. */
    int headPosition() {
        return off[head] + consumed;
    }

    int headRemaining() {
        return len[head] - consumed;
    }

    /** Marks {@code n} bytes of the head chunk consumed, returning its range to the ring when all are. */
    void consume(int n) {
        consumed += n;
        if (consumed == len[head]) {
            ring.free(off[head], len[head]);
            head = (head + 1) % off.length;
            count--;
            consumed = 0;
        }
    }
}
