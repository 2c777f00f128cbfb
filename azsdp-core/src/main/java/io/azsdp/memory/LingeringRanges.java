package io.azsdp.memory;

import java.nio.ByteBuffer;

/**
 * Lazy unprotect for one connection: the pages of a completed protected send stay read-only while its range lingers
 * here, so that sending the same buffer again changes no page protection. The new send's range is protected while
 * the lingering one still covers its pages (no mprotect), then the lingering one is released while the new one covers
 * them (no mprotect either). A lingering range is settled (the peer reported it read, see ProtectedMemory#settle): a
 * store into one of its pages faults once, and the handler makes it writable at once.
 *
 * <p>Only for {@link ShareableMemory} (what {@code AzSdp.allocate} returns): its cleaner unmaps it, and cannot while a
 * lingering range holds the buffer. An arbitrary direct buffer may be freed by the application at any time (its
 * cleaner invoked), and the stack must never change the protection of memory that was unmapped and reused.
 *
 * <p>Ranges leave when a new send covers them, when the table is full (oldest first), and all at once when the
 * connection ends. Being settled, they need not leave before the completion word moves 2^31 past their target. When
 * the application stores into its buffers between sends (a lingering range found writable), lingering would only add
 * a fault per send: it pauses for {@value #BACKOFF} sends. Guarded by the connection's lock; no allocation after
 * construction.
 */
public final class LingeringRanges {
    private static final int CAPACITY = 4;
    private static final int BACKOFF = 64;

    private final int[] id = new int[CAPACITY];
    private final long[] start = new long[CAPACITY];
    private final long[] end = new long[CAPACITY];
    /** Never read: holding the buffers keeps their memory mapped (the cleaner unmaps it) while their ranges linger. */
    private final ByteBuffer[] buffer = new ByteBuffer[CAPACITY];
    private int count;
    private int backoff;
    /** The buffer last offered and whether it lies in shareable memory: senders re-send the same few buffers. */
    private ByteBuffer lastBuffer;
    private boolean lastShareable;

    /**
     * Takes a range of {@code buf} that the peer reported read instead of releasing it; false when the caller must
     * release it.
     */
    public boolean offer(int rangeId, long address, long length, ByteBuffer buf) {
        if (backoff > 0) {
            backoff--;
            return false;
        }
        if (!shareable(buf)) {
            return false;
        }
        // Complete from now on: a store must not wait for a word that a lying peer leaves behind.
        ProtectedMemory.settle(rangeId);
        if (count == CAPACITY) {
            release(0);
        }
        id[count] = rangeId;
        start[count] = address;
        end[count] = address + length;
        buffer[count] = buf;
        count++;
        return true;
    }

    /**
     * Call after protecting [address, address + length) for a new send: releases the ranges it covers (redundant
     * now). Returns how many of them were still read-only (the new range needed no mprotect for them).
     */
    public int protectedAgain(long address, long length) {
        int reused = 0;
        for (int i = count - 1; i >= 0; i--) {
            if (start[i] >= address && end[i] <= address + length && release(i)) {
                reused++;
            }
        }
        return reused;
    }

    /** Makes every lingering range writable again (the connection is ending). */
    public void releaseAll() {
        while (count > 0) {
            release(count - 1);
        }
        lastBuffer = null;
    }

    /** The buffer (each advert lies within it) is shareable memory; a lookup only for another buffer than last time. */
    private boolean shareable(ByteBuffer buf) {
        if (buf != lastBuffer) {
            lastShareable = ShareableMemory.find(ProtectedMemory.address(buf), buf.capacity()) != null;
            lastBuffer = buf; // held, so its memory stays mapped and the answer stays true
        }
        return lastShareable;
    }

    /** Releases entry i; true when its pages were still read-only. */
    private boolean release(int i) {
        boolean stillProtected = ProtectedMemory.isProtected(id[i]);
        if (!stillProtected) {
            backoff = BACKOFF; // a store made it writable: this application rewrites its buffers between sends
        }
        ProtectedMemory.release(id[i]);
        count--;
        for (int j = i; j < count; j++) {
            id[j] = id[j + 1];
            start[j] = start[j + 1];
            end[j] = end[j + 1];
            buffer[j] = buffer[j + 1];
        }
        buffer[count] = null;
        return stillProtected;
    }
}
