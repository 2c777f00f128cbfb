package io.azsdp.memory;

import io.azsdp.nativeio.NativeLib;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pages protected while the peer reads them (AZ-SDP). The native library keeps the ranges and handles the faults; this
 * class adds what Java needs on top: one-time initialisation with a single log line when protection is unavailable,
 * and a registry of live ranges so a buffer can be awaited before the kernel writes into it (a syscall that writes a
 * protected page fails with EFAULT instead of faulting).
 */
public final class ProtectedMemory {
    private static final Logger LOG = LoggerFactory.getLogger(ProtectedMemory.class);
    private static final int MAX_RANGES = 4096;
    /**
     * Every range protected and not yet released, by the native slot index of its id ({@code id & 0xffff}, unique
     * among live ranges): id + 1 (0 = none), published after its address and length. Preallocated, so that a
     * protected send allocates nothing.
     */
    private static final AtomicIntegerArray LIVE_ID = new AtomicIntegerArray(MAX_RANGES);
    private static final long[] LIVE_ADDRESS = new long[MAX_RANGES];
    private static final long[] LIVE_LENGTH = new long[MAX_RANGES];
    private static final AtomicInteger LIVE_COUNT = new AtomicInteger();
    /** 1 + the highest slot index ever used: scans stop there. */
    private static final AtomicInteger LIVE_LIMIT = new AtomicInteger();
    private static volatile String unavailable;
    private static volatile boolean initialised;

    private ProtectedMemory() {
    }

    /** Null when memory protection works in this process, else why not (logged once). */
    public static String unavailableReason() {
        if (!initialised) {
            synchronized (ProtectedMemory.class) {
                if (!initialised) {
                    String why = NativeLib.unavailableReason();
                    if (why == null) {
                        int rc = NativeLib.protectionInit(MAX_RANGES);
                        why = rc == 0 ? null : "protection init failed: errno " + -rc;
                    }
                    if (why != null) {
                        LOG.warn("AZ-SDP memory protection unavailable ({}): asynchronous zero copy copies instead", why);
                    }
                    unavailable = why;
                    initialised = true;
                }
            }
        }
        return unavailable;
    }

    /** Native address of a direct buffer's first byte (position 0). */
    public static long address(ByteBuffer direct) {
        return NativeLib.address(direct);
    }

    /** Page size of this machine. */
    public static int pageSize() {
        return NativeLib.pageSize();
    }

    /**
     * Makes the page-aligned range read-only until the 32-bit word at {@code word} reaches {@code target} (written by
     * the peer), the peer process dies, or {@link #release} is called. Returns the range id, with
     * {@link NativeLib#CHANGED_PAGES} set when this call changed page protection (see {@link #id}).
     */
    public static int protect(long address, long length, long word, int target, int peerPid) {
        int rc = NativeLib.protect(address, length, word, target, peerPid);
        if (rc < 0) {
            throw new IllegalStateException("mprotect of " + length + " bytes failed: errno " + -rc);
        }
        int id = id(rc);
        int slot = id & 0xffff;
        LIVE_ADDRESS[slot] = address;
        LIVE_LENGTH[slot] = length;
        LIVE_ID.set(slot, id + 1);
        LIVE_COUNT.incrementAndGet();
        LIVE_LIMIT.accumulateAndGet(slot + 1, Math::max);
        return rc;
    }

    /** The id in what {@link #protect} returned, without {@link NativeLib#CHANGED_PAGES}. */
    public static int id(int protectResult) {
        return protectResult & ~NativeLib.CHANGED_PAGES;
    }

    /** True when the {@link #protect} call that returned this had to change page protection. */
    public static boolean changedPages(int protectResult) {
        return (protectResult & NativeLib.CHANGED_PAGES) != 0;
    }

    /**
     * Makes the range's pages writable again (unless another live range covers them) and wakes blocked writers.
     * Releasing an id twice is harmless (the second call finds its slot empty or reused by another id).
     */
    public static void release(int id) {
        id = id(id);
        if (LIVE_ID.compareAndSet(id & 0xffff, id + 1, 0)) {
            LIVE_COUNT.decrementAndGet();
        }
        NativeLib.release(id);
    }

    /**
     * The peer reported the range read: complete from now on, whatever its completion word says (see
     * NativeLib#settle). Costs no read of the word, a line the peer writes.
     */
    public static void settle(int id) {
        NativeLib.settle(id(id));
    }

    /** True while the range's pages are read-only under it (see NativeLib#isProtected); false once released. */
    public static boolean isProtected(int id) {
        return NativeLib.isProtected(id);
    }

    /**
     * Blocks until no transfer still reads from {@code buf}'s [position, limit): call it before handing the buffer
     * to the kernel (FileChannel.read, a socket read) after sending it with AZ-SDP. Java stores need no such call:
     * they wait on the page fault by themselves.
     */
    public static void awaitReusable(ByteBuffer buf) {
        if (!buf.isDirect() || LIVE_COUNT.get() == 0) {
            return;
        }
        long start = NativeLib.address(buf) + buf.position();
        long end = start + buf.remaining();
        for (int slot = 0, limit = LIVE_LIMIT.get(); slot < limit; slot++) {
            int v = LIVE_ID.get(slot);
            if (v == 0) {
                continue;
            }
            long address = LIVE_ADDRESS[slot];
            long length = LIVE_LENGTH[slot];
            if (LIVE_ID.get(slot) == v && address < end && start < address + length) {
                // Complete is not yet writable: pages are unprotected when a range is retired, so retire it here
                // (the engine's own release later is a no-op for an id already released).
                NativeLib.awaitRange(v - 1, 0);
                release(v - 1);
            }
        }
    }

    /**
     * A direct buffer of {@code size} bytes whose first byte is page-aligned, in memory that extends to the end of its
     * last page, so no other object shares a page with it.
     */
    public static ByteBuffer allocateAligned(int size) {
        ByteBuffer shareable = ShareableMemory.allocate(size);
        if (shareable != null) {
            return shareable;
        }
        int page = NativeLib.isAvailable() ? NativeLib.pageSize() : 4096;
        int rounded = (int) ((size + (long) page - 1) / page * page);
        ByteBuffer raw = ByteBuffer.allocateDirect(rounded + page);
        int skip = NativeLib.isAvailable() ? (int) ((page - NativeLib.address(raw) % page) % page) : 0;
        raw.position(skip).limit(skip + size);
        return raw.slice();
    }
}
