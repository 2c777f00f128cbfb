package io.azsdp.metrics;

import io.azsdp.nativeio.NativeLib;
import io.azsdp.sdp.SdpConnection;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Logs a warning, with the state of every connection, when a thread has waited on a protected page for longer than a
 * threshold. Diagnostic only: waiters are released by the peer or by the native handler, never by this thread (which,
 * as a Java thread, may itself be held at a safepoint that the waiter is delaying).
 */
final class FaultWatchdog {
    private static final Logger LOG = LoggerFactory.getLogger(FaultWatchdog.class);

    private FaultWatchdog() {
    }

    static void start(long warnMillis) {
        Thread t = new Thread(() -> watch(TimeUnit.MILLISECONDS.toNanos(warnMillis)), "azsdp-fault-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void watch(long warnNanos) {
        long warnedFor = 0;
        while (true) {
            try {
                Thread.sleep(Math.max(50, TimeUnit.NANOSECONDS.toMillis(warnNanos) / 4));
            } catch (InterruptedException e) {
                return;
            }
            // Both clocks are CLOCK_MONOTONIC: System.nanoTime() on Linux, clock_gettime in the handler.
            long oldest = NativeLib.protectionOldestWaitStart();
            if (oldest != 0 && oldest != warnedFor && System.nanoTime() - oldest > warnNanos) {
                warnedFor = oldest;
                StringBuilder b = new StringBuilder();
                SdpConnection.live().forEach(c -> b.append("\n  ").append(c.describe()));
                LOG.warn("AZ-SDP: {} thread(s) blocked on protected pages, the oldest for {} ms; connections:{}",
                        NativeLib.protectionWaiters(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - oldest), b);
            }
        }
    }
}
