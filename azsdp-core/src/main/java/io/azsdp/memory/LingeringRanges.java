package io.azsdp.memory;

import java.nio.ByteBuffer;

/**
 * Lazy unprotect for one connection: the pages of a completed protected send stay read-only while its range lingers
 * here, so that sending the same buffer again changes no page protection. The new send's range is protected while
 * the lingering one still covers its pages (no mprotect), then the lingering one is released while the new one covers
 * them (no mprotect either). A store into a lingering page faults once; the range is complete, so the handler makes
 * it writable at once.
 *
 * <p>Only for {@link ShareableMemory} (what {@code AzSdp.allocate} returns): its cleaner unmaps it, and cannot while a
 * lingering range holds the buffer. An arbitrary direct buffer may be freed by the application at any time (its
 * cleaner invoked), and the stack must never change the protection of memory that was unmapped and reused.
 *
 * <p>Ranges leave when a new send covers them, when the table is full (oldest first), before an advert would take the
 * completion word 2^29 bytes past them (it must stay within 2^31 of a range's target, or a store into the range
 * would wait for a completion that already happened), and all at once when the connection ends. When the application stores into its buffers between sends (a lingering range found writable), lingering
 * would only add a fault per send: it pauses for {@value #BACKOFF} sends. Guarded by the connection's lock; no
 * allocation after construction.
 */
public final class LingeringRanges {
    private static final int CAPACITY = 4;
    private static final int MAX_AGE = 1 << 29;
    private static final int BACKOFF = 64;

    private final int[] id = new int[CAPACITY];
    private final long[] start = new long[CAPACITY];
    private final long[] end = new long[CAPACITY];
    private final int[] target = new int[CAPACITY];
    /** Never read: holding the buffers keeps their memory mapped (the cleaner unmaps it) while their ranges linger. */
    private final ByteBuffer[] buffer = new ByteBuffer[CAPACITY];
    private int count;
    private int backoff;

    /**
     * Takes a completed range (advertised up to {@code target} on the completion word) instead of releasing it; false
     * when the caller must release it.
     */
    public boolean offer(int rangeId, long address, long length, int rangeTarget, ByteBuffer buf) {
        if (backoff > 0) {
            backoff--;
            return false;
        }
        if (ShareableMemory.find(address, length) == null || !ProtectedMemory.isComplete(rangeId)) {
            return false; // only complete ranges: a store into an incomplete one would wait
        }
        if (count == CAPACITY) {
            release(0);
        }
        id[count] = rangeId;
        start[count] = address;
        end[count] = address + length;
        target[count] = rangeTarget;
        buffer[count] = buf;
        count++;
        return true;
    }

    /**
     * Call before every advert of the connection (of any kind: all of them move the completion word), with the
     * advertised total it brings the word to: releases the ranges that would fall too far behind.
     */
    public void advertising(int advertised) {
        for (int i = count - 1; i >= 0; i--) {
            if (advertised - target[i] > MAX_AGE) {
                release(i);
            }
        }
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
            target[j] = target[j + 1];
            buffer[j] = buffer[j + 1];
        }
        buffer[count] = null;
        return stillProtected;
    }
}
