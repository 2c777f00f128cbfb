package io.azsdp.sdp;

/**
 * Protect or wait: for an azsdp-mode write, whether to protect its pages (and return at once) or send it by
 * synchronous zero copy. Protecting pages that are no longer read-only from an earlier send costs two mprotect calls,
 * each with a TLB flush (8 us for the pair at 64 KiB on one development machine, 109 us on another, and as much at
 * 1 MiB there: {@code azsdp micro}, protectThenRelease), which can be more than a synchronous READ of that size takes
 * on shm. Lazy unprotect makes re-sending an unchanged buffer free, as does a send of pages still in flight, so only a
 * run of protected sends that each had to make their pages read-only (the application rewrites its buffers, or rotates
 * more of them than lazy unprotect keeps) switches to waiting. Below {@code syncBelow} every such send counts; from it
 * on, only one whose protect call, doubled for the release to come, took longer per byte than the connection's recent
 * synchronous sends (measured in the waits; until then it counts). It tries protecting again after a number of sends
 * that doubles while those tries keep finding fresh pages. {@code syncBelow} 0: always protect. Guarded by the
 * connection's write lock; no allocation.
 */
final class ProtectChoice {
    /** More than LingeringRanges keeps: a rotation it can hold reaches its first reuse before this many misses. */
    private static final int MISSES = 8;
    private static final int MIN_WAITS = 64;
    private static final int MAX_WAITS = 4096;
    /** Weight of a new sample in the cost averages. */
    private static final double NEW = 0.125;

    private final int syncBelow;
    private int misses;
    private int waitsLeft;
    private int nextWaits = MIN_WAITS;
    /** The next synchronous send is the first of its waits: it also waits for the protected sends before it. */
    private boolean firstWait;
    /** Recent costs in ns per byte (0: not measured yet): a protect call that changed pages, a synchronous send. */
    private double protectNsPerByte;
    private double syncNsPerByte;

    ProtectChoice(int syncBelow) {
        this.syncBelow = syncBelow;
    }

    /** True: protect this write; false: send it synchronously (and report it to {@link #synchronousSend}). */
    boolean protect() {
        if (waitsLeft > 0) {
            waitsLeft--;
            return false;
        }
        return true;
    }

    /**
     * A protected send of {@code len} bytes found its pages read-only already ({@code reused}: under a send still in
     * flight, or one whose range lingers), or had to change their protection, in a protect call of {@code protectNs}.
     */
    void protectedSend(boolean reused, int len, long protectNs) {
        if (reused || syncBelow == 0) {
            misses = 0;
            nextWaits = MIN_WAITS;
            return;
        }
        protectNsPerByte = average(protectNsPerByte, (double) protectNs / len);
        if (len >= syncBelow && syncNsPerByte > 0 && 2 * protectNsPerByte <= syncNsPerByte) {
            misses = 0; // protecting fresh pages of this size is cheaper than waiting
            nextWaits = MIN_WAITS;
        } else if (++misses == MISSES) {
            misses = 0;
            waitsLeft = nextWaits;
            nextWaits = Math.min(2 * nextWaits, MAX_WAITS);
            firstWait = true;
        }
    }

    /** A write that {@link #protect} refused took {@code ns} to send {@code len} bytes synchronously. */
    void synchronousSend(int len, long ns) {
        if (firstWait) {
            firstWait = false;
            return;
        }
        syncNsPerByte = average(syncNsPerByte, (double) ns / len);
    }

    private static double average(double avg, double sample) {
        return avg == 0 ? sample : avg + NEW * (sample - avg);
    }
}
