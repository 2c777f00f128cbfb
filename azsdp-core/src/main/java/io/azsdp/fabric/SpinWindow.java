package io.azsdp.fabric;

/**
 * How long a thread about to wait polls first, adapted as KVM adapts its halt polling: after a wait the poll did not
 * cover, an event that came within the largest window doubles the window (polling that long would have saved the
 * sleep and the wake-up, which on a virtual machine whose idle vCPU halts takes tens of microseconds); a longer wait
 * halves it, down to the configured value, so an idle connection costs one short poll per wait. Not thread-safe: its
 * owner guards it.
 */
public final class SpinWindow {
    /** The window grows up to this many times the configured poll. */
    public static final int MAX_FACTOR = 8;

    private final long min;
    private final long max;
    private long nanos;

    /** A window of {@code minNanos} (the configured poll), growing up to {@link #MAX_FACTOR} times that. */
    public SpinWindow(long minNanos) {
        this.min = minNanos;
        this.max = minNanos * MAX_FACTOR;
        this.nanos = minNanos;
    }

    /** How long to poll now. */
    public long nanos() {
        return nanos;
    }

    /** After a wait that began with a poll of the current window and took {@code waitedNanos} in all. */
    public void waited(boolean eventCame, long waitedNanos) {
        if (eventCame && waitedNanos <= max) {
            nanos = Math.min(max, nanos * 2);
        } else {
            nanos = Math.max(min, nanos / 2);
        }
    }
}
