package io.azsdp.fabric;

/**
 * The pause of a bounded spin by a thread about to wait (a poller, a thread watching for another's signal): a
 * spin-wait hint, and every {@link #YIELD_EVERY_NANOS} a yield, because on 2 cores the thread whose work it waits for
 * may be queued behind it.
 */
public final class Spin {
    public static final long YIELD_EVERY_NANOS = 10_000;

    private Spin() {
    }

    /** The first yield time of a spin starting at {@code now}. */
    public static long firstYield(long now) {
        return now + YIELD_EVERY_NANOS;
    }

    /** Pauses once at {@code now}: yields when {@code nextYield} has come. Returns the next yield time. */
    public static long pause(long now, long nextYield) {
        if (now < nextYield) {
            Thread.onSpinWait();
            return nextYield;
        }
        Thread.yield();
        return now + YIELD_EVERY_NANOS;
    }
}
