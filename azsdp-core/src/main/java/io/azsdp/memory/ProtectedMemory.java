package io.azsdp.memory;

import io.azsdp.nativeio.NativeLib;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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
    /** Range id → {address, length} of every range protected and not yet released. */
    private static final Map<Integer, long[]> LIVE = new ConcurrentHashMap<>();
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
     * the peer), the peer process dies, or {@link #release} is called. Returns the range id.
     */
    public static int protect(long address, long length, long word, int target, int peerPid) {
        int id = NativeLib.protect(address, length, word, target, peerPid);
        if (id < 0) {
            throw new IllegalStateException("mprotect of " + length + " bytes failed: errno " + -id);
        }
        LIVE.put(id, new long[] {address, length});
        return id;
    }

    /** Makes the range's pages writable again (unless another live range covers them) and wakes blocked writers. */
    public static void release(int id) {
        LIVE.remove(id);
        NativeLib.release(id);
    }

    /**
     * Blocks until no transfer still reads from {@code buf}'s [position, limit): call it before handing the buffer
     * to the kernel (FileChannel.read, a socket read) after sending it with AZ-SDP. Java stores need no such call:
     * they wait on the page fault by themselves.
     */
    public static void awaitReusable(ByteBuffer buf) {
        if (!buf.isDirect() || LIVE.isEmpty()) {
            return;
        }
        long start = NativeLib.address(buf) + buf.position();
        long end = start + buf.remaining();
        for (Map.Entry<Integer, long[]> e : LIVE.entrySet()) {
            long[] r = e.getValue();
            if (r[0] < end && start < r[0] + r[1]) {
                // Complete is not yet writable: pages are unprotected when a range is retired, so retire it here
                // (the engine's own release later is a no-op for an id already released).
                NativeLib.awaitRange(e.getKey(), 0);
                release(e.getKey());
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
