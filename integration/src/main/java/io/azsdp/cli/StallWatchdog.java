package io.azsdp.cli;

import io.azsdp.sdp.SdpConnection;

/**
 * When the open connections have moved no byte for 30 s, prints their protocol state to stderr once: a stalled
 * benchmark explains itself.
 */
final class StallWatchdog {
    private StallWatchdog() {
    }

    static void start() {
        Thread t = new Thread(StallWatchdog::watch, "azsdp-stall-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void watch() {
        long last = -1;
        boolean reported = false;
        while (true) {
            try {
                Thread.sleep(30_000);
            } catch (InterruptedException e) {
                return;
            }
            long progress = 0;
            for (SdpConnection c : SdpConnection.live()) {
                progress += c.stats().messagesSent() + c.stats().bytesReceived();
            }
            boolean stalled = progress == last && !SdpConnection.live().isEmpty();
            if (stalled && !reported) {
                SdpConnection.live().forEach(c -> System.err.println("azsdp: no progress for 30 s: " + c.describe()));
            }
            reported = stalled;
            last = progress;
        }
    }
}
