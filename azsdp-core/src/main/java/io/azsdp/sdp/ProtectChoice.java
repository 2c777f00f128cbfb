package io.azsdp.sdp;

/**
 * Protect or wait: for an azsdp-mode write below the fabric's {@code azsdp.protection.syncBelow}, whether to protect
 * its pages (and return at once) or send it by synchronous zero copy. Protecting pages that are no longer read-only
 * from an earlier send costs two mprotect calls, each with a TLB flush (8 us for the pair at 64 KiB on one
 * development machine, 109 us on another: {@code azsdp micro}, protectThenRelease), which is more than a synchronous
 * READ of that size takes on shm. Lazy unprotect makes re-sending an unchanged buffer free, as does a send of pages
 * still in flight, so only a run of protected sends that each had to make their pages read-only (the application
 * rewrites its buffers, or rotates more of them than lazy unprotect keeps) switches to waiting; it tries protecting
 * again after a number of sends that doubles while those tries keep finding fresh pages. Guarded by the connection's
 * write lock; no allocation.
 */
final class ProtectChoice {
    /** More than LingeringRanges keeps: a rotation it can hold reaches its first reuse before this many misses. */
    private static final int MISSES = 8;
    private static final int MIN_WAITS = 64;
    private static final int MAX_WAITS = 4096;

    private int misses;
    private int waitsLeft;
    private int nextWaits = MIN_WAITS;

    /** True: protect this write; false: send it synchronously (counted). */
    boolean protect() {
        if (waitsLeft > 0) {
            waitsLeft--;
            return false;
        }
        return true;
    }

    /**
     * A protected send found its pages read-only already ({@code reused}: under a send still in flight, or one whose
     * range lingers), or had to change their protection.
     */
    void protectedSend(boolean reused) {
        if (reused) {
            misses = 0;
            nextWaits = MIN_WAITS;
        } else if (++misses == MISSES) {
            misses = 0;
            waitsLeft = nextWaits;
            nextWaits = Math.min(2 * nextWaits, MAX_WAITS);
        }
    }
}
