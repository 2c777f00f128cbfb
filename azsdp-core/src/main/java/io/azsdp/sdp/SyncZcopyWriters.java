package io.azsdp.sdp;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * How many auto-mode writes of this JVM may wait for synchronous zero copy at once. Such a write returns only after the
 * peer's reader has run and READ it, so each one costs two thread hand-offs. With more of them waiting than half the
 * cores, those hand-offs queue behind each other and behind the pollers, and BCopy, which does not wait for the peer,
 * moves more: on the 2-core development machine, shm `auto` with 8 connections moved 2.3 GB/s by synchronous zero copy
 * against 6.2 by BCopy (docs/BENCHMARKS-HISTORY.md, session 16). A write that finds the bound taken goes by BCopy.
 */
final class SyncZcopyWriters {
    static final int MAX = Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
    private static final AtomicInteger ACTIVE = new AtomicInteger();

    private SyncZcopyWriters() {
    }

    /** True: the caller may write by synchronous zero copy and must call {@link #exit} after. */
    static boolean tryEnter() {
        if (ACTIVE.incrementAndGet() <= MAX) {
            return true;
        }
        ACTIVE.decrementAndGet();
        return false;
    }

    static void exit() {
        ACTIVE.decrementAndGet();
    }
}
