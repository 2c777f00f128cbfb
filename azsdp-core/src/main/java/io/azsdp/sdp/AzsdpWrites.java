package io.azsdp.sdp;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Azsdp-mode writes of this JVM under way, which decide how mid sizes travel: a write from a direct buffer between
 * {@code azsdp.zcopy.soloThreshold} and the zero-copy threshold goes by asynchronous zero copy only while fewer other
 * such writes than half the cores are under way, else by BCopy. One stream gains from not waiting for its peer:
 * shm 32 KiB moved 6-10 GB/s so against about 3 by BCopy on the 2-core development machine. With every core busy, a
 * SrcAvail, a READ and an RdmaRdCompl per message cost more than BCopy's one message: 8 connections x 16 KiB all sent
 * so moved about half as much (docs/BENCHMARKS-HISTORY.md, sessions 16 and 17). A busy BCopy stream spends most of its
 * time in its writes (copying, waiting for credits), so it is seen; an idle connection is not.
 */
final class AzsdpWrites {
    /** Half the cores, as for synchronous zero-copy writers. */
    static final int MAX = SyncZcopyWriters.MAX;
    private static final AtomicInteger WRITING = new AtomicInteger();

    private AzsdpWrites() {
    }

    static void enter() {
        WRITING.incrementAndGet();
    }

    static void exit() {
        WRITING.decrementAndGet();
    }

    /** True when fewer other azsdp-mode writes than {@link #MAX} are under way; the caller's own is counted. */
    static boolean few() {
        return WRITING.get() - 1 < MAX;
    }
}
